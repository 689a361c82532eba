"""Shared pieces of the hand-counted parameter tests (FCN, SegNet, the papers table).

Not a test module: imported as ``tests.hand_counts``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import ModuleType

# VGG16's 13 convolutions (3x3, with bias): (in, out) channels, Simonyan & Zisserman, Table 1 D.
VGG16_CONVS = [
    (3, 64),
    (64, 64),
    (64, 128),
    (128, 128),
    (128, 256),
    (256, 256),
    (256, 256),
    (256, 512),
    (512, 512),
    (512, 512),
    (512, 512),
    (512, 512),
    (512, 512),
]
VGG16_CONV_PARAMS = sum(9 * cin * cout + cout for cin, cout in VGG16_CONVS)


def assert_docstring_states(
    module: ModuleType, parts: Mapping[str, int], patterns: Mapping[str, str]
) -> None:
    """The module docstring states each hand-counted part in millions, rounded to the digits it
    shows: ``patterns[key]`` is a regex whose group 1 is the stated number for ``parts[key]``."""
    doc = " ".join((module.__doc__ or "").split())
    for key, pattern in patterns.items():
        match = re.search(pattern, doc)
        assert match, f"{module.__name__} docstring lacks {pattern!r}"
        decimals = len(match.group(1).split(".")[1])
        assert f"{parts[key] / 1e6:.{decimals}f}" == match.group(1), key
