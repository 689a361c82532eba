"""Published trained weights, declared beside the builder they load into.

A :class:`WeightsInfo` says everything the harness needs to evaluate a checkpoint file the way
its authors did, the way torchvision's ``Weights`` enums (``meta``, ``transforms``) and timm's
``PretrainedCfg`` do: the file and its sha256, where it came from, the dataset and how the
network's output channels map to the dataset's classes, the input preprocessing, the authors'
evaluation protocol, the builder options, a key conversion from the file's names to ours, and
the published figures with their sources. Names are ``<arch>.<tag>``
(``espnet.camvid_skd_base``).

Weights are data: nothing here downloads or reads a file (``bench.weights`` finds, verifies and
loads them). Like the architecture registry, this module knows nothing of the harness.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from torch import Tensor

from architectures._registry import ArchitectureError, get_entry

KeyConversion = Callable[[Mapping[str, Tensor]], Mapping[str, Tensor]]

_NAME_RE = re.compile(r"^[a-z0-9_]+\.[a-z0-9_]+$")
_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")


CAMVID_CLASSES = (
    "sky",
    "building",
    "pole",
    "road",
    "pavement",
    "tree",
    "sign_symbol",
    "fence",
    "car",
    "pedestrian",
    "bicyclist",
)
"""The 11 classes of the SegNet release of CamVid, in its order, for weights trained on it.
(``bench.data.camvid`` has the same list; this package cannot import the harness, and loading
weights checks that the two agree.)"""


def strip_module_prefix(state: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """The keys without a leading ``module.`` (files saved from a DataParallel wrapper).

    Args:
        state: A state dict, prefixed or not.

    Returns:
        The same tensors under the unprefixed names.
    """
    return {k.removeprefix("module."): v for k, v in state.items()}


@dataclass(frozen=True)
class WeightsSource:
    """Where a checkpoint file was published.

    Attributes:
        repository: ``owner/name`` of the public repository (or a URL).
        commit: The commit the file was copied from.
        path: The file's path in that repository.
        licence: The licence the file is released under, as the repository states it.
    """

    repository: str
    commit: str
    path: str
    licence: str


@dataclass(frozen=True)
class Preprocess:
    """How the authors turned an image into the network's input.

    The image is first read as 0-1 floats in RGB order; then ``channel_order`` picks the order,
    the values are multiplied by ``scale`` (255 for the 0-255 range), and ``(x - mean) / std``
    is applied per channel, in that order and on that scale.

    Attributes:
        channel_order: ``"RGB"`` or ``"BGR"`` (OpenCV's order).
        scale: 1.0 for 0-1 values, 255.0 for 0-255.
        mean: Per-channel mean, in ``channel_order`` and on ``scale``.
        std: Per-channel standard deviation, likewise.
    """

    channel_order: Literal["RGB", "BGR"] = "RGB"
    scale: float = 1.0
    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)
    std: tuple[float, float, float] = (1.0, 1.0, 1.0)


@dataclass(frozen=True)
class WeightsProtocol:
    """The authors' evaluation: at what size the network sees the image, and how its logits
    are brought back to the label's size.

    Attributes:
        resolution: ``(H, W)`` the image is resized to before the network (``None``: as
            loaded). Logits are resized back to the loaded image's size.
        interpolation: ``"bilinear"`` or ``"nearest"``, for the image and the logits.
        align_corners: ``align_corners`` of the bilinear resizes (ignored for nearest).
        mode: ``"whole"`` (one pass over the whole image).
    """

    resolution: tuple[int, int] | None = None
    interpolation: Literal["bilinear", "nearest"] = "bilinear"
    align_corners: bool = False
    mode: Literal["whole"] = "whole"


@dataclass(frozen=True)
class PublishedMetric:
    """One figure the authors published for these weights.

    Attributes:
        metric: ``"miou"`` (percent) or another metric name of ``bench.metrics``.
        value: The figure as published (percent for mIoU).
        split: The split it was measured on, e.g. ``"test"``.
        source: Where it is stated (a README table row, a file name, a paper table).
    """

    metric: str
    value: float
    split: str
    source: str


@dataclass(frozen=True)
class WeightsInfo:
    """A published checkpoint, as declared beside its architecture's builder.

    Attributes:
        name: ``<arch>.<tag>``; ``arch`` is a registered architecture.
        file: The file name, relative to a weights folder (e.g. ``camvid/x.pth``).
        sha256: The file's sha256 (64 lower-case hex digits); checked before loading.
        source: Where it came from.
        dataset: The registered dataset it was trained for (e.g. ``"camvid"``).
        class_names: The dataset classes, in the dataset's order.
        channels: For each output channel of the network, the dataset class id it scores, or
            ``None`` for a channel that is not a class (e.g. void); those channels are dropped
            before the argmax.
        preprocess: The authors' input preprocessing.
        protocol: The authors' evaluation protocol.
        builder_options: Keyword options for the builder (e.g. ``{"p": 2, "q": 8}``).
        convert_keys: Renames the file's keys to the model's (e.g. strips ``module.``), or
            ``None``.
        published: The published figures.
        notes: What differs from the published protocol, and anything else a reader needs.

    Raises:
        ArchitectureError: On construction, for a field that is not as described.
    """

    name: str
    file: str
    sha256: str
    source: WeightsSource
    dataset: str
    class_names: tuple[str, ...]
    channels: tuple[int | None, ...]
    preprocess: Preprocess = field(default_factory=Preprocess)
    protocol: WeightsProtocol = field(default_factory=WeightsProtocol)
    builder_options: Mapping[str, Any] = field(default_factory=dict)
    convert_keys: KeyConversion | None = None
    published: tuple[PublishedMetric, ...] = ()
    notes: str = ""

    @property
    def arch(self) -> str:
        """The architecture the weights load into (the name's first part)."""
        return self.name.split(".", 1)[0]

    @property
    def num_outputs(self) -> int:
        """The network's output channels (the class count to build it with)."""
        return len(self.channels)

    def _fail(self, name: str, expected: str, found: object, fix: str) -> ArchitectureError:
        return ArchitectureError(
            f"WeightsInfo {self.name!r}: {name} must be {expected}; got {found!r}. {fix}"
        )

    def __post_init__(self) -> None:
        """Checks the name, the hash, the channel map and the preprocessing."""
        if not isinstance(self.name, str) or not _NAME_RE.match(self.name):
            raise ArchitectureError(
                f"WeightsInfo.name must be '<arch>.<tag>' in lower-case letters, digits and "
                f"'_'; got {self.name!r}. E.g. 'espnet.camvid_skd_base'."
            )
        if not isinstance(self.sha256, str) or not _SHA256_RE.match(self.sha256):
            raise self._fail(
                "sha256",
                "64 lower-case hex digits",
                self.sha256,
                "Give `sha256sum FILE`'s first field.",
            )
        k = len(self.class_names)
        ids = [c for c in self.channels if c is not None]
        if not ids or sorted(ids) != list(range(k)):
            raise self._fail(
                "channels",
                f"a class id in 0..{k - 1} for each class exactly once (None for the others)",
                self.channels,
                "List, for each output channel in order, the dataset class it scores.",
            )
        p = self.preprocess
        if p.channel_order not in ("RGB", "BGR"):
            raise self._fail("preprocess.channel_order", "'RGB' or 'BGR'", p.channel_order, "")
        bad_std = [s for s in p.std if not (isinstance(s, int | float) and s > 0)]
        if not (math.isfinite(p.scale) and p.scale > 0) or len(p.mean) != 3 or bad_std:
            raise self._fail(
                "preprocess",
                "a positive scale and three means and positive stds",
                p,
                "Give the values the authors' code uses, in its channel order and scale.",
            )
        for metric in self.published:
            if not isinstance(metric, PublishedMetric):
                raise self._fail("published", "PublishedMetric items", metric, "")


_WEIGHTS: dict[str, WeightsInfo] = {}


def register_weights(info: WeightsInfo) -> WeightsInfo:
    """Adds ``info`` to the weights table (append-only, like the architecture registry).

    Args:
        info: The declaration.

    Returns:
        ``info``.

    Raises:
        ArchitectureError: The architecture is not registered, or the name is already taken.
    """
    get_entry(info.arch)  # declare weights after the builder they load into
    if info.name in _WEIGHTS:
        raise ArchitectureError(
            f"Weights {info.name!r} are already declared (file {_WEIGHTS[info.name].file}). "
            f"Give the new declaration another tag."
        )
    _WEIGHTS[info.name] = info
    return info


def unregister_weights(name: str) -> None:
    """Removes a declaration (for tests and plugin reloads); unknown names are ignored."""
    _WEIGHTS.pop(name, None)


def get_weights(name: str) -> WeightsInfo:
    """The declaration named ``name``.

    Args:
        name: ``<arch>.<tag>``.

    Returns:
        The declaration.

    Raises:
        ArchitectureError: Unknown name; the message lists the declared ones.
    """
    try:
        return _WEIGHTS[name]
    except KeyError:
        known = ", ".join(_WEIGHTS) or "none"
        raise ArchitectureError(
            f"Unknown weights {name!r}. Declared weights: {known}. Run `python run_bench.py "
            f"list weights` to see them with their datasets and published figures (a "
            f"plugin's weights need its --plugin)."
        ) from None


def weights_entries(arch: str | None = None) -> Iterator[WeightsInfo]:
    """The declarations in declaration order (of one architecture when ``arch`` is given)."""
    return (w for w in _WEIGHTS.values() if arch is None or w.arch == arch)
