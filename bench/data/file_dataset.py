"""The dataset of a file-backed spec, :class:`SegmentationFiles`, and its registration.

:func:`register_file_dataset` puts a :class:`~bench.data.spec.FileDatasetSpec` into the registry
together with a factory that builds a :class:`SegmentationFiles` split from it.

Loading fails fast: building a dataset indexes the split and opens every file's header (size and
mode, no decoding; ``verify="headers"``), so a structural problem stops a run before training
starts; content problems (truncated data, out-of-range label values) raise at the first sample
that has them. ``run_bench.py data check`` (:mod:`bench.data.check`) decodes everything up front.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset
from torchvision import tv_tensors

from bench.data.decoding import label_histogram, read_image, read_label, size_problem
from bench.data.info import DatasetInfo
from bench.data.pairing import SamplePair
from bench.data.problems import MAX_LISTED, Problem, dataset_error, errors
from bench.data.registry import DatasetFactory, register_dataset
from bench.data.spec import FileDatasetSpec
from bench.data.transforms import EvalProtocol, TrainAugment, eval_transform, train_transform
from bench.data.verify import check_pair, header_problems
from bench.errors import ConfigError


def register_file_dataset(spec: FileDatasetSpec) -> FileDatasetSpec:
    """Register ``spec`` under ``spec.info.name``, with a factory building from it.

    Args:
        spec: The dataset.

    Returns:
        ``spec`` (loader modules keep it as their ``SPEC``).

    Raises:
        ValueError: the name is already registered.
    """
    register_dataset(spec.name, spec.description, spec=spec)(_factory(spec))
    return spec


def _factory(spec: FileDatasetSpec) -> DatasetFactory:
    def factory(
        *, split: str, root: str | Path | None = None, **options: Any
    ) -> tuple[SegmentationFiles, DatasetInfo]:
        return SegmentationFiles(spec, split, root, **options), spec.info

    factory.__doc__ = (
        f"Build one split of {spec.info.title} ({spec.name}); see SegmentationFiles for the "
        f"options."
    )
    # The options are SegmentationFiles' own, declared there once; the signature shows them
    # (``DatasetEntry.options`` reads it to list and check a suite's dataset options).
    factory.__signature__ = _FACTORY_SIGNATURE  # type: ignore[attr-defined]
    return factory


# -- the dataset --------------------------------------------------------------------------------


_JITTER_KEYS = ("brightness", "contrast", "saturation", "hue")


def _size_option(size: object, what: str = "size") -> tuple[int, int] | None:
    if size is None:
        return None
    if isinstance(size, int) and not isinstance(size, bool):
        size = (size, size)
    if (
        isinstance(size, (tuple, list))
        and len(size) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in size)
    ):
        return int(size[0]), int(size[1])
    raise ConfigError(
        f"{what} must be a positive int or a pair (H, W) of positive ints; got {size!r}. "
        + (
            "Set the suite's resolution (or the size option) to e.g. 512 or [360, 480]."
            if what == "size"
            else "Set dataset_options.crop to e.g. [180, 240], or remove it to crop at the "
            "suite's resolution."
        )
    )


class SegmentationFiles(Dataset):
    """One split of a file-backed dataset: yields ``(image, mask)`` like every dataset here.

    ``image`` is float32 ``(3, H, W)`` normalised with the dataset's mean/std; ``mask`` is uint8
    ``(H, W)`` class ids with the ignore index (255) for ignored pixels. Training splits are
    augmented (:class:`TrainAugment`, all samples ``crop``-sized); evaluation splits come at the
    label's native size, with :attr:`protocol` saying how to run the model on them.

    Args:
        spec: The dataset.
        split: One of ``spec.info.splits``.
        root: The data root (see the dataset's layout).
        size: The working resolution ``(H, W)``. Training: the crop size; for datasets with a
            fixed resolution (``info.eval_resolution``) images are also fitted to it before the
            random rescale, and evaluation runs the model at it (scored at the label's size).
            ``None``: the dataset's standard crop and protocol.
        crop: The training crop ``(H, W)`` when it differs from ``size``, e.g. ``[180, 240]``
            crops of images kept at ``size`` 360x480 (each step costs a quarter of a full
            image's, and evaluation still runs at ``size``). ``None``: ``size``.
        augment: Augment this split (default: for the dataset's training splits).
        scale_range: Random rescale factors.
        flip: Random horizontal flip.
        color_jitter: ``True`` (defaults), ``False`` (off) or a dict of ``brightness``,
            ``contrast``, ``saturation``, ``hue``.
        protocol: Overrides of the evaluation protocol fields (see :class:`EvalProtocol`),
            e.g. ``{"mode": "slide", "crop": [769, 769], "stride": [513, 513]}``.
        verify: ``"headers"`` (open every file's header now: sizes, label modes), ``"full"``
            (decode and check every file now, as ``data check`` does) or ``"none"``.

    Raises:
        ConfigError: an option has an invalid value or ``split`` is not a split of the
            dataset.
        MissingDataError: (a DatasetError) the root, or a folder or list file of the layout,
            does not exist; the message shows the expected layout.
        DatasetError: files are unpaired or broken; the message lists the problems with file
            names.
    """

    def __init__(
        self,
        spec: FileDatasetSpec,
        split: str,
        root: str | Path | None,
        *,
        size: int | tuple[int, int] | list[int] | None = None,
        crop: int | tuple[int, int] | list[int] | None = None,
        augment: bool | None = None,
        scale_range: tuple[float, float] | list[float] = (0.5, 2.0),
        flip: bool = True,
        color_jitter: Mapping[str, float] | bool = True,
        protocol: Mapping[str, Any] | None = None,
        verify: str = "headers",
    ) -> None:
        if verify not in ("headers", "full", "none"):
            raise ConfigError(f"verify must be 'headers', 'full' or 'none'; got {verify!r}.")
        work = _size_option(size)  # options first: a typo should not wait for the disk scan
        train_crop = _size_option(crop, "crop") or work
        self.spec = spec
        self.info = spec.info
        self.split = split
        self.root = spec.locate(root)
        index = spec.split_index(self.root, split)
        hint = (
            f"Run `python run_bench.py data check --dataset {spec.name} --data-root {root} "
            f"--split {split}` for the full report."
        )
        if errors(index.problems):
            raise dataset_error(errors(index.problems), hint)
        self.pairs: list[SamplePair] = index.pairs
        self.warnings: list[Problem] = index.problems
        if verify != "none":
            found = []
            for pair in self.pairs:
                found += errors(
                    check_pair(spec, pair) if verify == "full" else header_problems(spec, pair)
                )
                if len(found) > MAX_LISTED:
                    break
            if found:
                raise dataset_error(found, hint)

        fixed = spec.info.eval_resolution is not None
        self.augment: TrainAugment | None = None
        do_augment = split in spec.train_splits if augment is None else bool(augment)
        if do_augment:
            jitter: dict[str, float] = {}
            if color_jitter is False:
                jitter = dict.fromkeys(_JITTER_KEYS, 0.0)
            elif isinstance(color_jitter, Mapping):
                unknown = sorted(set(color_jitter) - set(_JITTER_KEYS))
                if unknown:
                    raise ConfigError(
                        f"color_jitter: unknown key(s) {', '.join(unknown)}; "
                        f"valid: {', '.join(_JITTER_KEYS)}."
                    )
                for k, v in color_jitter.items():
                    if not isinstance(v, (int, float)) or isinstance(v, bool):
                        raise ConfigError(f"color_jitter: {k} must be a number; got {v!r}.")
                jitter = {k: float(v) for k, v in color_jitter.items()}
            self.augment = TrainAugment(
                crop=train_crop or spec.train_crop,
                scale_range=tuple(scale_range),  # type: ignore[arg-type]
                scale_base=work if (work and fixed) else spec.scale_base,
                flip=flip,
                ignore_index=spec.info.ignore_index,
                **jitter,
            )
            self.transform = train_transform(self.augment, spec.info.mean, spec.info.std)
        else:
            self.transform = eval_transform(spec.info.mean, spec.info.std)
        base = spec.protocol
        if work and fixed:
            base = base.replace({"size": work, "short_side": None})
        self.protocol: EvalProtocol = base.replace(protocol)

    def __len__(self) -> int:
        """Number of samples in the split."""
        return len(self.pairs)

    @property
    def ids(self) -> list[str]:
        """The sample ids, in sample order (predictions are matched to them by file name)."""
        return [p.id for p in self.pairs]

    def read(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Sample ``index`` as stored: ``(H, W, 3)`` uint8 image and ``(H, W)`` uint8 class ids.

        Raises:
            DatasetError: the files are unreadable, differ in size, or the label is a colour
                image or holds invalid values.
        """
        pair = self.pairs[index]
        image, _ = read_image(self.spec.name, pair.image, grayscale=self.spec.grayscale)
        label = self.label(index)
        if image.shape[:2] != label.shape:
            h, w = image.shape[:2]
            raise dataset_error(
                [
                    size_problem(
                        self.spec.name,
                        pair.image,
                        (w, h),
                        pair.label,
                        (label.shape[1], label.shape[0]),
                    )
                ]
            )
        return image, label

    def label(self, index: int) -> np.ndarray:
        """The ``(H, W)`` uint8 class-id label of sample ``index`` (checked and decoded)."""
        pair = self.pairs[index]
        raw = read_label(self.spec.name, pair.label, self.spec.codec)
        label_histogram(self.spec.name, pair.label, raw, self.spec.codec)
        return self.spec.codec.lut[raw]

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Sample ``index`` through the split's transform.

        Args:
            index: ``0 <= index < len(self)``.

        Returns:
            ``(image, mask)``: float32 ``(3, H, W)`` normalised, uint8 ``(H, W)`` class ids.

        Raises:
            DatasetError: the files are unreadable or broken (see :meth:`read`).
        """
        image, label = self.read(index)
        img = tv_tensors.Image(torch.from_numpy(image).permute(2, 0, 1))  # (3, H, W) uint8
        mask = tv_tensors.Mask(torch.from_numpy(label))  # (H, W) uint8
        img, mask = self.transform(img, mask)
        return img.as_subclass(torch.Tensor), mask.as_subclass(torch.Tensor)

    def describe(self) -> dict[str, Any]:
        """JSON-ready description of the split and its protocol, for run records."""
        return {
            "dataset": self.spec.name,
            "split": self.split,
            "root": str(self.root),
            "num_samples": len(self),
            "augment": self.augment.to_dict() if self.augment else None,
            "protocol": self.protocol.to_dict(),
        }


def _factory_signature() -> inspect.Signature:
    """``SegmentationFiles(spec, split, root, *, ...)`` as keyword-only ``(split, root=None, ...)``."""
    params = list(inspect.signature(SegmentationFiles).parameters.values())[1:]  # no spec
    keyword = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in params]
    keyword = [p.replace(default=None) if p.name == "root" else p for p in keyword]
    return inspect.Signature(keyword, return_annotation="tuple[SegmentationFiles, DatasetInfo]")


_FACTORY_SIGNATURE = _factory_signature()
