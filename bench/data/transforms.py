"""The data side of the protocol: training augmentation and the description of evaluation.

Training (:class:`TrainAugment`, built into a ``torchvision.transforms.v2`` pipeline by
:func:`train_transform`): random rescale by a factor in ``scale_range`` (0.5-2.0 by default),
random crop to ``crop`` with the image padded with 0 and the label padded with the ignore index
where the rescaled image is smaller than the crop, horizontal flip, photometric jitter
(brightness, contrast, saturation, hue: image only), then conversion to float and normalisation.
The label is a :class:`torchvision.tv_tensors.Mask`, so every geometric step resizes it with
nearest-neighbour and never blends class ids; the photometric steps and the normalisation leave
it alone (torchvision's dispatch, not code of ours, guarantees both).

Evaluation (:class:`EvalProtocol`): the dataset yields the image and its label at the label's
native resolution; the protocol says how the model sees the image (whole image at native size,
resized to a fixed size or to a short side, or by sliding window; single scale or multi-scale,
with or without horizontal flip) and :mod:`bench.inference` carries it out, scoring always at
the label's native resolution. Both are frozen dataclasses with ``to_dict()`` for run records.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torchvision import tv_tensors
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as F

from bench.errors import ConfigError

EVAL_MODES = ("whole", "slide")


def _pair(value: object, what: str) -> tuple[int, int]:
    """``(H, W)`` from an int or a pair of positive ints (lists come from YAML)."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = (value, value)
    if (
        isinstance(value, (tuple, list))
        and len(value) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value)
    ):
        return int(value[0]), int(value[1])
    raise ConfigError(
        f"{what} must be a positive int or a pair [H, W] of positive ints; got {value!r}."
    )


@dataclass(frozen=True)
class TrainAugment:
    """Training augmentation settings (see the module docstring for the order of the steps).

    Attributes:
        crop: ``(H, W)`` of the random crop, i.e. of every training sample.
        scale_range: Random rescale factor range; ``(1.0, 1.0)`` disables rescaling.
        scale_base: ``None``: the factor applies to the image's own size. ``(H, W)``: the image
            is first fitted into an ``H x W`` box keeping its aspect ratio, then scaled by the
            factor (mmsegmentation's ``RandomResize(scale=(W, H), ratio_range=...)``).
        flip: Random horizontal flip with probability 0.5.
        brightness: ColorJitter brightness strength (0 = off).
        contrast: ColorJitter contrast strength (0 = off).
        saturation: ColorJitter saturation strength (0 = off).
        hue: ColorJitter hue shift, at most 0.5 (0 = off, the default: its HSV round trip
            cost more than the rest of the pipeline together on CPU, about 4x brightness).
        ignore_index: Label value of padded pixels.
    """

    crop: tuple[int, int]
    scale_range: tuple[float, float] = (0.5, 2.0)
    scale_base: tuple[int, int] | None = None
    flip: bool = True
    brightness: float = 0.25
    contrast: float = 0.25
    saturation: float = 0.25
    hue: float = 0.0
    ignore_index: int = 255

    def __post_init__(self) -> None:
        """Normalise sizes to ``(H, W)`` tuples and check the ranges.

        Raises:
            ConfigError: a size is not a positive int or pair, or a range is violated.
        """
        object.__setattr__(self, "crop", _pair(self.crop, "augment crop"))
        if self.scale_base is not None:
            object.__setattr__(self, "scale_base", _pair(self.scale_base, "augment scale_base"))
        try:
            lo, hi = (float(v) for v in self.scale_range)
        except (TypeError, ValueError):  # not a pair, or not numbers
            lo = hi = float("nan")  # fails the check below, with its message
        if not 0 < lo <= hi:
            raise ConfigError(
                f"augment scale_range must satisfy 0 < min <= max; got {self.scale_range!r} "
                f"(use (1.0, 1.0) to disable random rescaling)."
            )
        object.__setattr__(self, "scale_range", (lo, hi))
        for name in ("brightness", "contrast", "saturation", "hue"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                raise ConfigError(f"augment {name} must be a number; got {value!r}.")
        for name in ("brightness", "contrast", "saturation"):
            if getattr(self, name) < 0:
                raise ConfigError(f"augment {name} must be >= 0; got {getattr(self, name)!r}.")
        if not 0 <= self.hue <= 0.5:
            raise ConfigError(f"augment hue must be in [0, 0.5]; got {self.hue!r}.")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready description for run records."""
        return {
            "crop": list(self.crop),
            "scale_range": list(self.scale_range),
            "scale_base": list(self.scale_base) if self.scale_base else None,
            "flip": self.flip,
            "color_jitter": {
                "brightness": self.brightness,
                "contrast": self.contrast,
                "saturation": self.saturation,
                "hue": self.hue,
            },
            "label_pad_value": self.ignore_index,
            "label_interpolation": "nearest",
        }


@dataclass(frozen=True)
class EvalProtocol:
    """How the model sees an evaluation image; predictions are always scored at the label's size.

    Attributes:
        mode: ``"whole"`` (one forward pass per scale) or ``"slide"`` (``crop`` windows every
            ``stride`` pixels, logits averaged where windows overlap).
        size: Resize the image to ``(H, W)`` before inference (``None``: keep its size).
        short_side: Or: resize keeping the aspect ratio so that the shorter side is this long.
        crop: Sliding-window size ``(H, W)`` (slide mode only).
        stride: Sliding-window step ``(H, W)`` (slide mode only; at most ``crop``).
        scales: Multi-scale test-time augmentation factors, applied on top of ``size`` /
            ``short_side``; ``(1.0,)`` = single scale.
        flip: Also run the horizontally flipped image and average.
    """

    mode: str = "whole"
    size: tuple[int, int] | None = None
    short_side: int | None = None
    crop: tuple[int, int] | None = None
    stride: tuple[int, int] | None = None
    scales: tuple[float, ...] = (1.0,)
    flip: bool = False

    def __post_init__(self) -> None:
        """Normalise sizes to ``(H, W)`` tuples and check that the fields fit together.

        Raises:
            ConfigError: an unknown mode, a bad size, crop, stride or scale, or fields that
                exclude each other.
        """
        if self.mode not in EVAL_MODES:
            raise ConfigError(
                f"protocol mode must be one of {', '.join(EVAL_MODES)}; got {self.mode!r}."
            )
        if self.size is not None:
            object.__setattr__(self, "size", _pair(self.size, "protocol size"))
        if self.size is not None and self.short_side is not None:
            raise ConfigError("protocol: set size or short_side, not both.")
        if self.short_side is not None and (
            not isinstance(self.short_side, int) or self.short_side < 1
        ):
            raise ConfigError(
                f"protocol short_side must be a positive int; got {self.short_side!r}."
            )
        if self.mode == "slide":
            if self.crop is None or self.stride is None:
                raise ConfigError(
                    "protocol mode 'slide' needs crop and stride, e.g. "
                    "{mode: slide, crop: [769, 769], stride: [513, 513]}."
                )
            crop = _pair(self.crop, "protocol crop")
            stride = _pair(self.stride, "protocol stride")
            if stride[0] > crop[0] or stride[1] > crop[1]:
                raise ConfigError(
                    f"protocol stride {stride} exceeds crop {crop}: windows would skip pixels."
                )
            object.__setattr__(self, "crop", crop)
            object.__setattr__(self, "stride", stride)
        elif self.crop is not None or self.stride is not None:
            raise ConfigError("protocol crop/stride only apply to mode 'slide'.")
        try:
            scales = tuple(float(s) for s in self.scales)
        except (TypeError, ValueError):  # not a sequence, or not numbers
            scales = ()
        if not scales or min(scales) <= 0:
            raise ConfigError(f"protocol scales must be positive factors; got {self.scales!r}.")
        object.__setattr__(self, "scales", scales)

    @property
    def views(self) -> int:
        """Forward passes per image (windows not counted)."""
        return len(self.scales) * (2 if self.flip else 1)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready description (keys shared with the run record's ``protocol``)."""
        return {
            "mode": self.mode,
            "resolution": list(self.size) if self.size else None,
            "short_side": self.short_side,
            "crop": list(self.crop) if self.crop else None,
            "stride": list(self.stride) if self.stride else None,
            "scales": list(self.scales),
            "flip": self.flip,
            "label_resolution": "native",
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EvalProtocol:
        """Inverse of :meth:`to_dict` (also takes ``size`` for ``resolution``; YAML lists ok)."""
        data = dict(data)
        data.pop("label_resolution", None)
        if "resolution" in data:
            data["size"] = data.pop("resolution")
        known = {"mode", "size", "short_side", "crop", "stride", "scales", "flip"}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(
                f"protocol: unknown key(s) {', '.join(unknown)}; valid keys: "
                f"{', '.join(sorted(known))}."
            )
        for key in ("size", "crop", "stride", "scales"):
            if isinstance(data.get(key), list):
                data[key] = tuple(data[key])
        return cls(**data)

    def replace(self, overrides: Mapping[str, Any] | None) -> EvalProtocol:
        """A copy with some fields overridden.

        Args:
            overrides: Field values by name (as :meth:`from_dict` takes them); ``None`` or
                empty: no change.

        Returns:
            The new protocol (``self`` when nothing is overridden).

        Raises:
            ConfigError: ``overrides`` is not a mapping, has an unknown key or a bad value.
        """
        if not overrides:
            return self
        if not isinstance(overrides, Mapping):
            raise ConfigError(
                f"protocol must be a mapping of protocol fields, e.g. {{mode: slide, crop: "
                f"[769, 769], stride: [513, 513]}}; got {overrides!r}."
            )
        return EvalProtocol.from_dict({**_fields(self), **dict(overrides)})


def _fields(p: EvalProtocol) -> dict[str, Any]:
    return {
        "mode": p.mode,
        "size": p.size,
        "short_side": p.short_side,
        "crop": p.crop,
        "stride": p.stride,
        "scales": p.scales,
        "flip": p.flip,
    }


class RandomScale(v2.Transform):
    """Rescale by a random factor in ``scale_range`` (relative to the input or to a base box).

    torchvision's ``RandomResize`` draws a pixel size and ``ScaleJitter`` always fits a fixed
    box; this draws a factor, which is what the segmentation recipes (mmsegmentation,
    torchvision's reference: 0.5-2.0) mean. Resizing goes through ``F.resize``, so a ``Mask``
    is resized with nearest-neighbour.

    Args:
        scale_range: ``(low, high)``: the factor is drawn uniformly from this range.
        base: ``(H, W)`` box: the input is first fitted into it (aspect ratio kept), then
            scaled by the factor; ``None`` scales the input's own size.
    """

    def __init__(self, scale_range: Sequence[float], base: tuple[int, int] | None = None) -> None:
        super().__init__()
        self.scale_range = (float(scale_range[0]), float(scale_range[1]))
        self.base = base

    def make_params(self, flat_inputs: list[Any]) -> dict[str, Any]:
        """Draw the factor and return the output size, shared by the image and its mask."""
        h, w = v2.query_size(flat_inputs)
        lo, hi = self.scale_range
        factor = lo + float(torch.rand(())) * (hi - lo)
        if self.base is not None:
            factor *= min(self.base[0] / h, self.base[1] / w)
        return {"size": [max(1, round(h * factor)), max(1, round(w * factor))]}

    def transform(self, inpt: Any, params: dict[str, Any]) -> Any:
        """Resize one input (nearest-neighbour for a ``Mask``, by ``F.resize``'s dispatch)."""
        return self._call_kernel(F.resize, inpt, size=params["size"], antialias=True)


def _to_float(mean: Sequence[float], std: Sequence[float]) -> list[v2.Transform]:
    return [
        v2.ToDtype({tv_tensors.Image: torch.float32, "others": None}, scale=True),
        v2.Normalize(mean=list(mean), std=list(std)),
    ]


def train_transform(
    augment: TrainAugment, mean: Sequence[float], std: Sequence[float]
) -> v2.Compose:
    """The training pipeline for ``(tv_tensors.Image uint8, tv_tensors.Mask)`` pairs."""
    steps: list[v2.Transform] = []
    if augment.scale_range != (1.0, 1.0) or augment.scale_base is not None:
        steps.append(RandomScale(augment.scale_range, augment.scale_base))
    steps.append(
        v2.RandomCrop(
            augment.crop,
            pad_if_needed=True,
            fill={tv_tensors.Image: 0, tv_tensors.Mask: augment.ignore_index},
        )
    )
    if augment.flip:
        steps.append(v2.RandomHorizontalFlip(0.5))
    jitter = {k: getattr(augment, k) for k in ("brightness", "contrast", "saturation", "hue")}
    if any(jitter.values()):
        steps.append(v2.ColorJitter(**{k: (v or None) for k, v in jitter.items()}))
    return v2.Compose(steps + _to_float(mean, std))


def eval_transform(mean: Sequence[float], std: Sequence[float]) -> v2.Compose:
    """The evaluation pipeline: native size, float, normalised (the label is untouched)."""
    return v2.Compose(_to_float(mean, std))
