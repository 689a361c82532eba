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
    """An evaluation protocol: at what size the network sees the image, how its logits are
    brought to the labels, at what size the labels are scored and whether void is a class.

    The harness's standard scoring (what its rankings compare) keeps the labels as loaded and
    ignores void; a declaration's ``protocol`` is that, with the authors' input size and logits
    interpolation. Authors who scored otherwise (labels resized to the network's size, void
    averaged in as one more class) get an ``authors_protocol`` as well, so their own figure can
    be reproduced beside the standard one.

    Attributes:
        resolution: ``(H, W)`` the image is resized to before the network (``None``: as
            loaded).
        interpolation: ``"bilinear"`` or ``"nearest"``, for the image and the logits.
        align_corners: ``align_corners`` of the bilinear resizes (ignored for nearest).
        mode: ``"whole"`` (one pass over the whole image) or ``"slide"`` (``crop`` windows
            every ``stride`` pixels over the image at ``resolution``, logits averaged where
            they overlap, as mmsegmentation's slide inference).
        labels: ``"as_loaded"``: the logits are resized to the labels, which are scored at the
            size the dataset loads them. ``"resized"``: the labels are resized to
            ``resolution`` and scored there, beside logits at that size.
        crop: The sliding window ``(H, W)`` (slide only).
        stride: Its step ``(H, W)``, at most ``crop`` (slide only).
        label_interpolation: How ``"resized"`` labels are resized: ``"nearest"``, or
            ``"bilinear"``: a linear resize of the label ids rounded to the nearest id (what
            OpenCV's ``cv2.resize(label, size, cv2.INTER_NEAREST)`` does, since its third
            positional argument is ``dst``, not the interpolation).
        void: ``"ignored"``: void pixels are not scored. ``"class"``: void is scored as one more
            class, predicted by the declaration's ``void_channel``, and the means run over
            K + 1 classes.
    """

    resolution: tuple[int, int] | None = None
    interpolation: Literal["bilinear", "nearest"] = "bilinear"
    align_corners: bool = False
    mode: Literal["whole", "slide"] = "whole"
    crop: tuple[int, int] | None = None
    stride: tuple[int, int] | None = None
    labels: Literal["as_loaded", "resized"] = "as_loaded"
    label_interpolation: Literal["nearest", "bilinear"] = "nearest"
    void: Literal["ignored", "class"] = "ignored"

    @property
    def is_standard(self) -> bool:
        """Whether the labels are scored as loaded with void ignored (comparable rows)."""
        return self.labels == "as_loaded" and self.void == "ignored"


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
            ``None`` for a channel that is not a class (e.g. void).
        preprocess: The authors' input preprocessing.
        protocol: How the harness scores the weights for its rankings: the dataset's standard
            scoring (labels as loaded, void ignored) with the authors' input size and logits
            interpolation.
        extra_channels: What the ``None`` channels do under ``protocol``: ``"drop"``: removed
            before the argmax; ``"miss"``: kept in the argmax, and a pixel whose highest score
            is one of them is predicted as no class (a miss of its true class, a false
            positive of none).
        void_channel: The output channel that predicts the dataset's void label (one of the
            ``None`` channels), for a protocol that scores void as a class.
        authors_protocol: The authors' own scoring where it is not the standard one (labels
            resized, void counted); ``None`` when ``protocol`` is already theirs.
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
    extra_channels: Literal["drop", "miss"] = "drop"
    void_channel: int | None = None
    authors_protocol: WeightsProtocol | None = None
    builder_options: Mapping[str, Any] = field(default_factory=dict)
    convert_keys: KeyConversion | None = None
    published: tuple[PublishedMetric, ...] = ()
    notes: str = ""

    @property
    def arch(self) -> str:
        """The architecture the weights load into (the name's first part)."""
        return self.name.split(".", 1)[0]

    def protocols(self) -> dict[str, WeightsProtocol]:
        """``{"standard": protocol}``, plus ``"authors"`` when the authors scored otherwise."""
        out = {"standard": self.protocol}
        if self.authors_protocol is not None:
            out["authors"] = self.authors_protocol
        return out

    def protocol_named(self, name: str) -> WeightsProtocol:
        """The protocol called ``name`` (``"standard"`` or ``"authors"``).

        Raises:
            ArchitectureError: No such protocol is declared for these weights.
        """
        known = self.protocols()
        if name not in known:
            raise ArchitectureError(
                f"Weights {self.name!r} declare the protocols {sorted(known)}; got {name!r}. "
                f"'authors' exists only where the authors scored differently from the "
                f"dataset's standard protocol."
            )
        return known[name]

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
        self._check_scoring()

    def _check_scoring(self) -> None:
        if self.extra_channels not in ("drop", "miss"):
            raise self._fail("extra_channels", "'drop' or 'miss'", self.extra_channels, "")
        v = self.void_channel
        if v is not None and not (
            isinstance(v, int) and 0 <= v < len(self.channels) and self.channels[v] is None
        ):
            raise self._fail(
                "void_channel",
                f"the index of a None channel in 0..{len(self.channels) - 1}",
                v,
                "Name the output channel that predicts void (its channels entry is None).",
            )
        if not self.protocol.is_standard:
            raise self._fail(
                "protocol",
                "the standard scoring (labels 'as_loaded', void 'ignored')",
                self.protocol,
                "Declare the authors' other scoring as authors_protocol; `protocol` is what "
                "the rankings compare.",
            )
        for name, proto in self.protocols().items():
            where = "protocol" if name == "standard" else "authors_protocol"
            if proto.labels not in ("as_loaded", "resized") or proto.void not in (
                "ignored",
                "class",
            ):
                raise self._fail(
                    where, "labels 'as_loaded'/'resized' and void 'ignored'/'class'", proto, ""
                )
            sliding = proto.mode == "slide"
            windows = proto.crop is not None and proto.stride is not None
            if (
                proto.mode not in ("whole", "slide")
                or sliding != windows
                or (
                    windows
                    and not all(0 < s <= c for s, c in zip(proto.stride, proto.crop, strict=True))
                )
            ):
                raise self._fail(
                    where,
                    "mode 'whole' without windows, or 'slide' with a crop and a stride no "
                    "larger than it",
                    proto,
                    "Give mode='slide', crop=(H, W), stride=(H, W), or neither window.",
                )
            if proto.labels == "resized" and proto.resolution is None:
                raise self._fail(
                    where, "a resolution to resize the labels to", proto, "Give resolution=(H, W)."
                )
            if proto.void == "class" and v is None:
                raise self._fail(
                    where,
                    "a protocol that scores void only with a void_channel",
                    proto,
                    "Declare void_channel, the output channel that predicts void.",
                )
        if self.authors_protocol is not None and self.authors_protocol == self.protocol:
            raise self._fail(
                "authors_protocol",
                "a protocol other than `protocol` (or None)",
                self.authors_protocol,
                "Leave it None when the authors scored the standard way.",
            )


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
