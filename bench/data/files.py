"""File-backed datasets: what every loader of an official on-disk layout shares.

A loader module (``camvid.py``, ``voc.py``, ...) describes its dataset with a
:class:`FileDatasetSpec`: the :class:`~bench.data.base.DatasetInfo`, the expected folder tree (shown
in every "not found" message), a :class:`LabelCodec` (raw label values -> class ids), the expected
sample counts and an ``index(root, split)`` function that pairs image and label files and reports
structural problems (missing folders, an image without label, a label without image).
:func:`register_file_dataset` registers it by name with a factory that builds a
:class:`SegmentationFiles` dataset.

The same functions read, check and decode every file whether it is loaded for training, walked by
``run_bench.py data check`` (:mod:`bench.data.check`) or scored against predictions
(:mod:`bench.scoring`), so the three report a broken file with the same message: missing root or
split folder (with the tree that was looked for), unpaired files, unreadable or truncated files,
image/label size mismatch, colour (RGB) labels where index labels are expected, and label values
that are neither a class nor ignored.

Loading fails fast: building a dataset indexes the split and opens every file's header (size and
mode, no decoding; ``verify="headers"``), so a structural problem stops a run before training
starts; content problems (truncated data, out-of-range label values) raise at the first sample
that has them. ``run_bench.py data check`` decodes everything up front.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset
from torchvision import tv_tensors

from bench.data.base import DatasetInfo, register_dataset
from bench.data.transforms import EvalProtocol, TrainAugment, eval_transform, train_transform

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
# PIL modes that hold one integer per pixel: index labels. "RGB"/"RGBA" labels are colour-coded.
INDEX_MODES = ("L", "P", "I;16", "I", "1")
COLOUR_MODES = ("RGB", "RGBA", "RGBX", "CMYK", "YCbCr", "HSV", "LAB")
_MAX_LISTED = 10  # problems spelled out in an exception message


# -- problems -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a dataset on disk.

    Attributes:
        kind: Stable identifier: ``missing_root``, ``missing_folder``, ``missing_list``,
            ``missing_label``, ``missing_image``, ``unreadable``, ``size_mismatch``,
            ``colour_label``, ``invalid_labels``, ``image_mode``, ``count``, ``excluded``,
            ``mat_labels``, ``empty_split``.
        message: A full sentence naming the file, what was expected and what was found.
        path: The file or folder concerned.
        split: The split it belongs to ("" for the whole dataset).
        severity: ``"error"`` (loading refuses) or ``"warning"`` (reported, loading goes on).
    """

    kind: str
    message: str
    path: str = ""
    split: str = ""
    severity: str = "error"

    def to_dict(self) -> dict[str, str]:
        return {
            "kind": self.kind,
            "severity": self.severity,
            "split": self.split,
            "path": self.path,
            "message": self.message,
        }


class DatasetError(ValueError):
    """A dataset on disk is missing or broken; ``problems`` lists every problem found."""

    def __init__(self, problems: Sequence[Problem], hint: str = "") -> None:
        self.problems = list(problems)
        lines = [p.message for p in self.problems[:_MAX_LISTED]]
        if len(self.problems) > _MAX_LISTED:
            lines.append(f"... and {len(self.problems) - _MAX_LISTED} more problems.")
        if hint:
            lines.append(hint)
        super().__init__("\n".join(lines))


def errors(problems: Iterable[Problem]) -> list[Problem]:
    return [p for p in problems if p.severity == "error"]


# -- label codecs -------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class LabelCodec:
    """Maps raw label values (as stored in the files) to class ids.

    Attributes:
        lut: ``(256,)`` uint8: class id (or the ignore index) of each raw value.
        valid: ``(256,)`` bool: raw values that may occur (a class or ignored).
        description: The raw encoding in words, for error messages.
    """

    lut: np.ndarray
    valid: np.ndarray
    description: str

    @classmethod
    def build(
        cls,
        mapping: Mapping[int, int],
        *,
        ignore_raw: Iterable[int] = (),
        ignore_index: int = 255,
        description: str,
    ) -> LabelCodec:
        """Raw value ``v`` -> ``mapping[v]``; ``ignore_raw`` and ``ignore_index`` -> ignored.

        (A raw value equal to ``ignore_index`` is ignored unless ``mapping`` maps it.)

        Every other raw value is invalid and reported when it occurs.
        """
        lut = np.full(256, ignore_index, dtype=np.uint8)
        valid = np.zeros(256, dtype=bool)
        for raw, cls_id in mapping.items():
            lut[raw] = cls_id
            valid[raw] = True
        # The raw value equal to the ignore index means "ignored" unless it encodes a class
        # (ISBI stores its "cell" class as 255).
        for raw in (*ignore_raw, *(() if ignore_index in mapping else (ignore_index,))):
            lut[raw] = ignore_index
            valid[raw] = True
        lut.setflags(write=False)
        valid.setflags(write=False)
        return cls(lut=lut, valid=valid, description=description)

    @classmethod
    def identity(
        cls,
        num_classes: int,
        *,
        ignore_raw: Iterable[int] = (),
        ignore_index: int = 255,
        description: str,
    ) -> LabelCodec:
        """Raw ``0..num_classes-1`` are the class ids."""
        return cls.build(
            {i: i for i in range(num_classes)},
            ignore_raw=ignore_raw,
            ignore_index=ignore_index,
            description=description,
        )

    @classmethod
    def shifted(cls, num_classes: int, *, ignore_index: int = 255, description: str) -> LabelCodec:
        """Raw 0 is ignored and raw ``1..num_classes`` are class ids ``0..num_classes-1``."""
        return cls.build(
            {i + 1: i for i in range(num_classes)},
            ignore_raw=(0,),
            ignore_index=ignore_index,
            description=description,
        )


# -- reading files ------------------------------------------------------------------------------


def _size_str(size: tuple[int, int]) -> str:
    return f"{size[0]}x{size[1]}"  # PIL order: W x H


def _unreadable(name: str, path: Path, exc: BaseException) -> DatasetError:
    return DatasetError(
        [
            Problem(
                "unreadable",
                f"{name}: cannot read {path}: {type(exc).__name__}: {exc}. The file is truncated, "
                f"corrupt or not an image; re-extract it from the dataset archive.",
                str(path),
            )
        ]
    )


def _open(name: str, path: Path) -> Image.Image:
    try:
        return Image.open(path)
    except (OSError, SyntaxError, ValueError) as exc:  # UnidentifiedImageError is an OSError
        raise _unreadable(name, path, exc) from None


def _decode(name: str, im: Image.Image, path: Path) -> np.ndarray:
    try:
        im.load()
    except (OSError, SyntaxError, ValueError) as exc:
        raise _unreadable(name, path, exc) from None
    return np.asarray(im)


def read_image(name: str, path: Path, *, grayscale: bool = False) -> tuple[np.ndarray, str]:
    """Decode an image as ``(H, W, 3)`` uint8 RGB; also returns its original PIL mode.

    A grayscale dataset (``grayscale=True``) reads mode L and repeats it to three channels.
    Other modes are converted (palette, RGBA, CMYK, 16-bit gray...).
    """
    with _open(name, path) as im:
        mode = im.mode
        try:
            im.load()
            if grayscale or mode in ("L", "I;16", "I", "1"):
                gray = np.asarray(im.convert("L")) if mode != "L" else np.asarray(im)
                arr = np.repeat(gray[:, :, None], 3, axis=2)
            else:
                arr = np.array(im if mode == "RGB" else im.convert("RGB"))
        except (OSError, SyntaxError, ValueError) as exc:
            raise _unreadable(name, path, exc) from None
    return arr, mode


def _colour_problem(
    name: str, path: Path, mode: str, size: tuple[int, int], codec: LabelCodec
) -> Problem:
    what = "a colour image" if mode in COLOUR_MODES else "not a single-channel index image"
    return Problem(
        "colour_label",
        f"{name}: label {path} is {what} (mode {mode}, {_size_str(size)}); expected an "
        f"index label (mode L or P, one class id per pixel: {codec.description}). Colour-coded "
        f"labels must be converted to class ids first (map each palette colour to its id; the "
        f"dataset's palette is in `run_bench.py list datasets --format json`). For a palette "
        f"(mode P) PNG, do not .convert('RGB') it when saving.",
        str(path),
    )


def read_label(name: str, path: Path, codec: LabelCodec) -> np.ndarray:
    """Decode an index label as a 2-D integer array of raw values (uint8 when it fits).

    Raises:
        DatasetError: unreadable/truncated file, or a colour (RGB) label.
    """
    with _open(name, path) as im:
        if im.mode not in INDEX_MODES:
            raise DatasetError([_colour_problem(name, path, im.mode, im.size, codec)])
        arr = _decode(name, im, path)
    if arr.dtype == bool:  # mode "1"
        arr = arr.astype(np.uint8) * 255
    if arr.dtype != np.uint8:
        arr = arr.astype(np.int64)
        if arr.size and (arr.min() < 0 or arr.max() > 255):
            bad = np.unique(arr[(arr < 0) | (arr > 255)])
            raise DatasetError([_invalid_problem(name, path, bad.tolist(), None, codec)])
        arr = arr.astype(np.uint8)
    return arr


def _invalid_problem(
    name: str, path: Path, values: Sequence[int], counts: Sequence[int] | None, codec: LabelCodec
) -> Problem:
    shown = (
        [f"{v} ({c} px)" for v, c in zip(values, counts, strict=True)]
        if counts
        else [str(v) for v in values]
    )
    more = f" and {len(shown) - 8} more" if len(shown) > 8 else ""
    return Problem(
        "invalid_labels",
        f"{name}: label {path} has values {', '.join(shown[:8])}{more} that are neither a class "
        f"nor ignored (expected {codec.description}). Is this the right label file (e.g. "
        f"labelIds vs trainIds, colour labels saved as grayscale, a different class set)?",
        str(path),
    )


def label_histogram(name: str, path: Path, raw: np.ndarray, codec: LabelCodec) -> np.ndarray:
    """``(256,)`` int64 counts of the raw values, after checking that each one is valid.

    Raises:
        DatasetError: values that are neither a class nor ignored (named with pixel counts).
    """
    hist = np.bincount(raw.reshape(-1), minlength=256)
    bad = np.flatnonzero(hist * ~codec.valid)
    if bad.size:
        raise DatasetError([_invalid_problem(name, path, bad.tolist(), hist[bad].tolist(), codec)])
    return hist


def class_histogram(
    raw_hist: np.ndarray, codec: LabelCodec, num_classes: int, ignore_index: int
) -> tuple[np.ndarray, int]:
    """Pixels per class id ``0..num_classes-1`` and the ignored pixel count, from raw counts."""
    per_value = np.zeros(256, dtype=np.int64)
    np.add.at(per_value, codec.lut.astype(np.intp), raw_hist)
    return per_value[:num_classes].copy(), int(per_value[ignore_index])


def _size_problem(
    name: str, image: Path, isize: tuple[int, int], label: Path, lsize: tuple[int, int]
) -> Problem:
    return Problem(
        "size_mismatch",
        f"{name}: image {image} is {_size_str(isize)} but its label {label} is "
        f"{_size_str(lsize)} (W x H); an image and its label must have the same size.",
        str(label),
    )


# -- indexing -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SamplePair:
    """One sample: ``id`` is unique in its split; predictions are matched to it by file name."""

    id: str
    image: Path
    label: Path


@dataclass
class SplitIndex:
    """The samples of one split and the structural problems found while pairing files."""

    split: str
    pairs: list[SamplePair] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)


def list_files(folder: Path, suffixes: Sequence[str] = IMAGE_SUFFIXES) -> dict[str, Path]:
    """``{stem: path}`` of the files in ``folder`` with one of ``suffixes`` (case-insensitive)."""
    out: dict[str, Path] = {}
    for p in sorted(folder.iterdir()):
        if p.is_file() and p.suffix.lower() in suffixes and not p.name.startswith("."):
            out.setdefault(p.stem, p)
    return out


def natural_key(text: str) -> list[object]:
    """Sort key ordering ``2 < 10`` (ISBI's ``0.png .. 29.png``)."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", text)]


def pair_folders(
    name: str,
    split: str,
    image_dir: Path,
    label_dir: Path,
    *,
    image_suffixes: Sequence[str] = IMAGE_SUFFIXES,
    label_suffixes: Sequence[str] = (".png",),
    image_stem: Callable[[str], str | None] = lambda s: s,
    label_stem: Callable[[str], str | None] = lambda s: s,
    only: Sequence[str] | None = None,
    list_name: str = "",
) -> SplitIndex:
    """Pair the files of two folders by sample id (file stem, optionally transformed).

    ``image_stem``/``label_stem`` turn a file stem into a sample id (``None`` skips the file,
    e.g. Cityscapes' ``*_gtFine_color.png``). ``only`` restricts the split to the listed ids, in
    that order (from a list file called ``list_name``); listed ids without files are problems.
    """
    index = SplitIndex(split)
    images = {
        k: v
        for s, v in list_files(image_dir, image_suffixes).items()
        if (k := image_stem(s)) is not None
    }
    labels = {
        k: v
        for s, v in list_files(label_dir, label_suffixes).items()
        if (k := label_stem(s)) is not None
    }
    if only is not None:
        wanted = list(dict.fromkeys(only))
        for sid in wanted:
            img, lbl = images.get(sid), labels.get(sid)
            if img is None:
                index.problems.append(
                    Problem(
                        "missing_image",
                        f"{name}: {list_name or 'the split list'} names {sid!r} but {image_dir} has "
                        f"no image {sid}{image_suffixes[0]}.",
                        str(image_dir / sid),
                        split,
                    )
                )
            if lbl is None:
                index.problems.append(
                    Problem(
                        "missing_label",
                        f"{name}: {list_name or 'the split list'} names {sid!r} but {label_dir} has "
                        f"no label {sid}{label_suffixes[0]}.",
                        str(label_dir / sid),
                        split,
                    )
                )
            if img is not None and lbl is not None:
                index.pairs.append(SamplePair(sid, img, lbl))
        return index
    for sid in sorted(images.keys() | labels.keys(), key=natural_key):
        img, lbl = images.get(sid), labels.get(sid)
        if img is not None and lbl is not None:
            index.pairs.append(SamplePair(sid, img, lbl))
        elif img is not None:
            index.problems.append(
                Problem(
                    "missing_label",
                    f"{name}: image {img} has no label (looked for {label_dir / sid}"
                    f"{label_suffixes[0]}).",
                    str(img),
                    split,
                )
            )
        else:
            assert lbl is not None
            index.problems.append(
                Problem(
                    "missing_image",
                    f"{name}: label {lbl} has no image (looked for {image_dir / sid}.*).",
                    str(lbl),
                    split,
                )
            )
    return index


def read_list(path: Path) -> list[str]:
    """Sample ids from a list file: one per line; the first token's base name without suffix.

    Handles plain ids (VOC), ``/SegNet/CamVid/train/x.png /SegNet/CamVid/trainannot/x.png``
    (CamVid), ``/JPEGImages/x.jpg /SegmentationClassAug/x.png`` (DeepLab's train_aug.txt) and
    Windows separators.
    """
    ids = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        token = line.strip().split()[0] if line.strip() else ""
        if token:
            base = token.replace("\\", "/").rsplit("/", 1)[-1]
            stem = base.rsplit(".", 1)[0] if "." in base else base
            ids.append(stem)
    return ids


# -- the dataset spec and the registry ----------------------------------------------------------


@dataclass(frozen=True, eq=False)
class FileDatasetSpec:
    """Everything the harness knows about one on-disk dataset.

    Attributes:
        info: Class names, palette, ignore index, mean/std, splits, evaluation resolution.
        description: One line for ``list datasets``.
        layout: The expected tree, ``{root}`` standing for the data root; shown in every
            "not found" message.
        codec: Raw label values -> class ids.
        index: ``(root, split) -> SplitIndex``; ``root`` is an existing folder.
        expected_counts: Official samples per split (a different count is a warning).
        train_crop: Default training crop ``(H, W)``.
        scale_base: Default :attr:`TrainAugment.scale_base`.
        protocol: The standard evaluation protocol.
        grayscale: Images are single-channel (repeated to 3 channels when read).
        train_splits: Splits augmented by default.
        resolve_root: Optional: find the dataset folder under a user-given root (e.g.
            ``VOCdevkit/VOC2012`` under a folder holding ``VOCdevkit``).
        notes: Protocol details for the docs (printed by ``data check``).
    """

    info: DatasetInfo
    description: str
    layout: str
    codec: LabelCodec
    index: Callable[[Path, str], SplitIndex]
    expected_counts: Mapping[str, int]
    train_crop: tuple[int, int]
    scale_base: tuple[int, int] | None = None
    protocol: EvalProtocol = field(default_factory=EvalProtocol)
    grayscale: bool = False
    train_splits: tuple[str, ...] = ("train",)
    resolve_root: Callable[[Path], Path] | None = None
    notes: str = ""

    @property
    def name(self) -> str:
        return self.info.name

    def layout_for(self, root: Path | str) -> str:
        return self.layout.replace("{root}", str(root).rstrip("/") or "/")

    def missing_folder(self, split: str, folder: Path, root: Path) -> Problem:
        return Problem(
            "missing_folder",
            f"{self.name}: split {split!r}: folder {folder} not found. Expected layout:\n"
            f"{self.layout_for(root)}",
            str(folder),
            split,
        )

    def root_problem(self, root: Path | str | None) -> Problem | None:
        if root is None:
            return Problem(
                "missing_root",
                f"{self.name}: no data root given. Pass --data-root DIR (or data_root: in a "
                f"suite file) pointing at the dataset. Expected layout:\n"
                f"{self.layout_for('DIR')}",
            )
        path = Path(root)
        if not path.is_dir():
            what = "is not a folder" if path.exists() else "does not exist"
            return Problem(
                "missing_root",
                f"{self.name}: data root {path} {what}. Expected layout:\n{self.layout_for(path)}",
                str(path),
            )
        return None

    def locate(self, root: Path | str | None) -> Path:
        """The dataset folder for a user-given root; raises DatasetError when it is missing."""
        problem = self.root_problem(root)
        if problem is not None:
            raise DatasetError([problem])
        path = Path(root)  # type: ignore[arg-type]
        return self.resolve_root(path) if self.resolve_root else path

    def split_index(self, root: Path, split: str) -> SplitIndex:
        """Index one split of an existing root (``root`` as returned by :meth:`locate`)."""
        if split not in self.info.splits:
            raise ValueError(
                f"{self.name}: unknown split {split!r}; valid splits are "
                f"{', '.join(self.info.splits)}."
            )
        index = self.index(root, split)
        if not index.pairs and not errors(index.problems):
            index.problems.append(
                Problem(
                    "empty_split",
                    f"{self.name}: split {split!r} has no samples under {root}. "
                    f"Expected layout:\n{self.layout_for(root)}",
                    str(root),
                    split,
                )
            )
        expected = self.expected_counts.get(split)
        if expected is not None and index.pairs and len(index.pairs) != expected:
            index.problems.append(
                Problem(
                    "count",
                    f"{self.name}: split {split!r} has {len(index.pairs)} samples; the official "
                    f"release has {expected} (incomplete download or extraction, or a custom "
                    f"subset?).",
                    str(root),
                    split,
                    severity="warning",
                )
            )
        return index


_SPECS: dict[str, FileDatasetSpec] = {}


def file_dataset_spec(name: str) -> FileDatasetSpec:
    """The spec of a registered file-backed dataset (ValueError for other datasets)."""
    from bench.data.base import _get

    _get(name)  # unknown names raise with close matches
    try:
        return _SPECS[name]
    except KeyError:
        raise ValueError(
            f"Dataset {name!r} is not read from files (nothing to check or score); file-backed "
            f"datasets: {', '.join(_SPECS)}."
        ) from None


def file_dataset_names() -> list[str]:
    return list(_SPECS)


def register_file_dataset(spec: FileDatasetSpec) -> FileDatasetSpec:
    """Register ``spec`` under ``spec.info.name`` (duplicates raise, like every registry)."""
    register_dataset(spec.name, spec.description)(_factory(spec))
    _SPECS[spec.name] = spec
    return spec


def _factory(spec: FileDatasetSpec) -> Callable[..., tuple[Dataset, DatasetInfo]]:
    def factory(
        *,
        split: str,
        root: str | Path | None = None,
        size: int | tuple[int, int] | list[int] | None = None,
        augment: bool | None = None,
        scale_range: tuple[float, float] | list[float] = (0.5, 2.0),
        flip: bool = True,
        color_jitter: Mapping[str, float] | bool = True,
        protocol: Mapping[str, Any] | None = None,
        verify: str = "headers",
    ) -> tuple[SegmentationFiles, DatasetInfo]:
        ds = SegmentationFiles(
            spec,
            split,
            root,
            size=size,
            augment=augment,
            scale_range=scale_range,
            flip=flip,
            color_jitter=color_jitter,
            protocol=protocol,
            verify=verify,
        )
        return ds, spec.info

    factory.__doc__ = (
        f"Build one split of {spec.info.title} ({spec.name}); see SegmentationFiles for the "
        f"options."
    )
    return factory


# -- the dataset --------------------------------------------------------------------------------


_JITTER_KEYS = ("brightness", "contrast", "saturation", "hue")


def _size_option(size: object) -> tuple[int, int] | None:
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
    raise ValueError(f"size must be a positive int or (H, W); got {size!r}.")


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
        DatasetError: (a ValueError) the root, a folder or files are missing or broken; the
            message lists the problems with file names.
    """

    def __init__(
        self,
        spec: FileDatasetSpec,
        split: str,
        root: str | Path | None,
        *,
        size: int | tuple[int, int] | list[int] | None = None,
        augment: bool | None = None,
        scale_range: tuple[float, float] | list[float] = (0.5, 2.0),
        flip: bool = True,
        color_jitter: Mapping[str, float] | bool = True,
        protocol: Mapping[str, Any] | None = None,
        verify: str = "headers",
    ) -> None:
        if verify not in ("headers", "full", "none"):
            raise ValueError(f"verify must be 'headers', 'full' or 'none'; got {verify!r}.")
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
            raise DatasetError(errors(index.problems), hint)
        self.pairs: list[SamplePair] = index.pairs
        self.warnings: list[Problem] = index.problems
        if verify != "none":
            found = []
            for pair in self.pairs:
                found += errors(
                    check_pair(spec, pair) if verify == "full" else header_problems(spec, pair)
                )
                if len(found) > _MAX_LISTED:
                    break
            if found:
                raise DatasetError(found, hint)

        work = _size_option(size)
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
                    raise ValueError(
                        f"color_jitter: unknown key(s) {', '.join(unknown)}; "
                        f"valid: {', '.join(_JITTER_KEYS)}."
                    )
                jitter = {k: float(v) for k, v in color_jitter.items()}
            self.augment = TrainAugment(
                crop=work or spec.train_crop,
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
        return len(self.pairs)

    @property
    def ids(self) -> list[str]:
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
            raise DatasetError(
                [
                    _size_problem(
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


def header_problems(spec: FileDatasetSpec, pair: SamplePair) -> list[Problem]:
    """Problems visible from the file headers alone: unreadable, colour label, size mismatch."""
    name = spec.name
    try:
        with _open(name, pair.image) as im:
            isize = im.size
        with _open(name, pair.label) as lb:
            lsize, lmode = lb.size, lb.mode
    except DatasetError as exc:
        return exc.problems
    if lmode not in INDEX_MODES:
        return [_colour_problem(name, pair.label, lmode, lsize, spec.codec)]
    if isize != lsize:
        return [_size_problem(name, pair.image, isize, pair.label, lsize)]
    return []


@dataclass
class PairStats:
    """What :func:`check_pair` learnt from one readable sample."""

    size: tuple[int, int]  # (W, H)
    image_mode: str
    raw_hist: np.ndarray


def check_pair(
    spec: FileDatasetSpec, pair: SamplePair, stats: list[PairStats] | None = None
) -> list[Problem]:
    """Decode one sample fully and return its problems (appending its stats when readable)."""
    name = spec.name
    problems: list[Problem] = []
    image = raw = None
    mode = ""
    try:
        image, mode = read_image(name, pair.image, grayscale=spec.grayscale)
    except DatasetError as exc:
        problems += exc.problems
    try:
        raw = read_label(name, pair.label, spec.codec)
    except DatasetError as exc:
        problems += exc.problems
    if image is not None and raw is not None and image.shape[:2] != raw.shape:
        h, w = image.shape[:2]
        problems.append(
            _size_problem(name, pair.image, (w, h), pair.label, (raw.shape[1], raw.shape[0]))
        )
    if raw is not None:
        try:
            hist = label_histogram(name, pair.label, raw, spec.codec)
        except DatasetError as exc:
            problems += exc.problems
            hist = None
        if hist is not None and stats is not None and image is not None:
            stats.append(PairStats((raw.shape[1], raw.shape[0]), mode, hist))
    expected = "L" if spec.grayscale else "RGB"
    if image is not None and mode != expected:
        problems.append(
            Problem(
                "image_mode",
                f"{name}: image {pair.image} is mode {mode}, expected {expected}; it is converted "
                f"to {expected} when loaded.",
                str(pair.image),
                severity="warning",
            )
        )
    return problems


def first_existing(root: Path, candidates: Sequence[str]) -> Path | None:
    """The first ``root / c`` that is a folder, or None."""
    for c in candidates:
        if (root / c).is_dir():
            return root / c
    return None


def voc_colormap(n: int) -> tuple[tuple[int, int, int], ...]:
    """The PASCAL VOC colour map (bit-interleaved class id), used for figures of datasets
    without an official palette too."""
    colours = []
    for i in range(n):
        r = g = b = 0
        c = i
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        colours.append((r, g, b))
    return tuple(colours)
