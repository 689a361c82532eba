"""Checks of one sample (an image and its label) against its dataset's spec.

:func:`header_problems` opens only the file headers (sizes and modes; what loading does for every
sample by default, ``verify="headers"``); :func:`check_pair` decodes both files fully and checks
every label value (what ``run_bench.py data check`` and ``verify="full"`` do).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bench.data.decoding import (
    INDEX_MODES,
    colour_problem,
    label_histogram,
    open_image,
    read_image,
    read_label,
    size_problem,
)
from bench.data.pairing import SamplePair
from bench.data.problems import DatasetError, Problem
from bench.data.spec import FileDatasetSpec


def header_problems(spec: FileDatasetSpec, pair: SamplePair) -> list[Problem]:
    """Problems visible from the file headers alone: unreadable, colour label, size mismatch.

    Args:
        spec: The dataset.
        pair: The sample.

    Returns:
        Its problems (at most one per file; empty when the headers are fine).
    """
    name = spec.name
    try:
        with open_image(name, pair.image) as im:
            isize = im.size
        with open_image(name, pair.label) as lb:
            lsize, lmode = lb.size, lb.mode
    except DatasetError as exc:
        return exc.problems
    if lmode not in INDEX_MODES:
        return [colour_problem(name, pair.label, lmode, lsize, spec.codec)]
    if isize != lsize:
        return [size_problem(name, pair.image, isize, pair.label, lsize)]
    return []


@dataclass
class PairStats:
    """What :func:`check_pair` learnt from one readable sample.

    Attributes:
        size: ``(W, H)`` of the label.
        image_mode: The image file's PIL mode.
        raw_hist: ``(256,)`` int64 pixels per raw label value.
    """

    size: tuple[int, int]  # (W, H)
    image_mode: str
    raw_hist: np.ndarray


def check_pair(
    spec: FileDatasetSpec, pair: SamplePair, stats: list[PairStats] | None = None
) -> list[Problem]:
    """Decode one sample fully and return its problems.

    Args:
        spec: The dataset.
        pair: The sample.
        stats: When given, the sample's :class:`PairStats` are appended to it if both files
            are readable and every label value is valid.

    Returns:
        Its problems: unreadable files, size mismatch, colour label, invalid label values
        (errors), and an image mode other than RGB (L for grayscale datasets; a warning).
    """
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
            size_problem(name, pair.image, (w, h), pair.label, (raw.shape[1], raw.shape[0]))
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
