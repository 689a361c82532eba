"""Shared pieces of the hand-counted parameter tests of the architecture files.

Not a test module: imported as ``tests.hand_counts``. The per-layer counts are what every
architecture's hand count is built from; the VGG16 and ResNet figures are published ones.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import ModuleType

from torch import nn

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

# torchvision ResNet parameters without the 1000-way fc (weight + bias), from the published
# ``ResNet*_Weights.IMAGENET1K_V1.meta["num_params"]`` (the tests re-count them on a meta build).
RESNET18_TRUNK = 11_689_512 - (512 * 1000 + 1000)  # 11,176,512
RESNET50_TRUNK = 25_557_032 - (2048 * 1000 + 1000)  # 23,508,032
RESNET101_TRUNK = 44_549_160 - (2048 * 1000 + 1000)  # 42,500,160


def conv_params(cin: int, cout: int, k: int | tuple[int, int], *, bias: bool) -> int:
    """Parameters of a ``k`` x ``k`` (or ``kh`` x ``kw``) convolution, transposed or not."""
    kh, kw = (k, k) if isinstance(k, int) else k
    return cin * cout * kh * kw + (cout if bias else 0)


def bn_params(c: int) -> int:
    """Parameters of a batch norm over ``c`` channels (weight and bias; statistics are buffers)."""
    return 2 * c


def conv_bn_params(cin: int, cout: int, k: int | tuple[int, int], *, bias: bool = False) -> int:
    """A convolution followed by batch norm (bias-free by default, as the BN shift replaces it)."""
    return conv_params(cin, cout, k, bias=bias) + bn_params(cout)


def conv_layers(model: nn.Module) -> list[nn.Module]:
    """Every convolution of ``model``, transposed ones included, in module order."""
    return [m for m in model.modules() if isinstance(m, nn.Conv2d | nn.ConvTranspose2d)]


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
