"""Architecture entries: one module per paper, each registering builders with ``@register``.

Importing this package registers every built-in entry. Users add their own entries with
``--plugin FILE.py`` or an installed package exposing the entry-point group
``semseg_bench.architectures`` (see ``bench.plugins``).
"""

from architectures._pretrained import backbone_file
from architectures._registry import (
    ArchEntry,
    ArchInfo,
    ArchitectureError,
    build,
    entries,
    get_entry,
    get_info,
    names,
    register,
)
from architectures._weights import (
    Preprocess,
    PublishedMetric,
    WeightsInfo,
    WeightsProtocol,
    WeightsSource,
    get_weights,
    register_weights,
    strip_module_prefix,
    weights_entries,
)

# Built-in entries (import order = listing order).
from architectures import fcn, torchvision_refs  # noqa: E402,F401  isort: skip
from architectures import segnet, enet, enet_ntkhoa95  # noqa: E402,F401  isort: skip
from architectures import unet, fcdensenet  # noqa: E402,F401  isort: skip
from architectures import linknet, refinenet, pspnet  # noqa: E402,F401  isort: skip
from architectures import erfnet, bisenet, segformer, icnet  # noqa: E402,F401  isort: skip
from architectures import deeplabv3plus, frrn, maskrcnn  # noqa: E402,F401  isort: skip
from architectures import espnet  # noqa: E402,F401  isort: skip
from architectures import decouplednet  # noqa: E402,F401  isort: skip

__all__ = [
    "ArchEntry",
    "ArchInfo",
    "ArchitectureError",
    "Preprocess",
    "PublishedMetric",
    "WeightsInfo",
    "WeightsProtocol",
    "WeightsSource",
    "backbone_file",
    "build",
    "entries",
    "get_entry",
    "get_info",
    "get_weights",
    "names",
    "register",
    "register_weights",
    "strip_module_prefix",
    "weights_entries",
]
