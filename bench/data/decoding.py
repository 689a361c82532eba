"""Decoding image and label files, and the problems a file can have.

The same functions read every file whether it is loaded for training, walked by ``run_bench.py
data check`` or scored against predictions, so the three report a broken file in the same words:
unreadable or truncated files, colour (RGB) labels where index labels are expected, label values
that are neither a class nor ignored, and image/label size mismatches. Each raises a
:class:`~bench.data.problems.DatasetError` holding one :class:`~bench.data.problems.Problem`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from bench.data.codecs import LabelCodec
from bench.data.problems import DatasetError, Problem

# PIL modes that hold one integer per pixel: index labels. "RGB"/"RGBA" labels are colour-coded.
INDEX_MODES = ("L", "P", "I;16", "I", "1")
COLOUR_MODES = ("RGB", "RGBA", "RGBX", "CMYK", "YCbCr", "HSV", "LAB")


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


def open_image(name: str, path: Path) -> Image.Image:
    """Open ``path`` lazily (header only; nothing is decoded yet).

    Args:
        name: The dataset, for messages.
        path: An image or label file.

    Returns:
        The open PIL image (use it as a context manager).

    Raises:
        DatasetError: the file is missing, not an image or its header is corrupt.
    """
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

    Args:
        name: The dataset, for messages.
        path: The image file.
        grayscale: The dataset's images are single-channel.

    Returns:
        ``(image, mode)``: the ``(H, W, 3)`` uint8 array and the file's PIL mode.

    Raises:
        DatasetError: unreadable or truncated file.
    """
    with open_image(name, path) as im:
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


def colour_problem(
    name: str, path: Path, mode: str, size: tuple[int, int], codec: LabelCodec
) -> Problem:
    """The problem of a label that is not a single-channel index image.

    Args:
        name: The dataset.
        path: The label file.
        mode: Its PIL mode (e.g. ``"RGB"``).
        size: Its ``(W, H)``.
        codec: The dataset's label encoding (described in the message).

    Returns:
        A ``colour_label`` problem saying how to convert the label.
    """
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
    """Decode an index label as a 2-D array of raw values.

    Args:
        name: The dataset, for messages.
        path: The label file.
        codec: The dataset's label encoding (described in messages).

    Returns:
        ``(H, W)`` uint8 raw values (mode ``1`` labels read as 0/255).

    Raises:
        DatasetError: unreadable/truncated file, or a colour (RGB) label.
    """
    with open_image(name, path) as im:
        if im.mode not in INDEX_MODES:
            raise DatasetError([colour_problem(name, path, im.mode, im.size, codec)])
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
    """Count the raw values of a label, after checking that each one is valid.

    Args:
        name: The dataset, for messages.
        path: The label file, for messages.
        raw: Its raw values, as returned by :func:`read_label`.
        codec: The dataset's label encoding.

    Returns:
        ``(256,)`` int64 pixels per raw value.

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
    """Pixels per class id ``0..num_classes-1`` and the ignored pixel count, from raw counts.

    Args:
        raw_hist: ``(256,)`` pixels per raw value (summed :func:`label_histogram` results).
        codec: The dataset's label encoding.
        num_classes: Number of classes.
        ignore_index: The class id of ignored pixels.

    Returns:
        ``(classes, ignored)``: ``(num_classes,)`` int64 pixels per class, ignored pixels.
    """
    per_value = np.zeros(256, dtype=np.int64)
    np.add.at(per_value, codec.lut.astype(np.intp), raw_hist)
    return per_value[:num_classes].copy(), int(per_value[ignore_index])


def size_problem(
    name: str, image: Path, isize: tuple[int, int], label: Path, lsize: tuple[int, int]
) -> Problem:
    """The problem of an image and its label of different sizes.

    Args:
        name: The dataset.
        image: The image file.
        isize: Its ``(W, H)``.
        label: The label file.
        lsize: Its ``(W, H)``.

    Returns:
        A ``size_mismatch`` problem.
    """
    return Problem(
        "size_mismatch",
        f"{name}: image {image} is {_size_str(isize)} but its label {label} is "
        f"{_size_str(lsize)} (W x H); an image and its label must have the same size.",
        str(label),
    )
