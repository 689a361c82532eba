"""Ranks that tie where a paired bootstrap cannot tell two rows apart (``"=2"``).

Two rows of one ranking table were scored on the same evaluation images. Each row's record
points to its per-image confusion matrices (``metrics.per_image_file``, checked against
``metrics.per_image_sha256``); every row is scored on the same seeded bootstrap resamples of
those images (:func:`bench.bootstrap.resampled_metric`: same image count, same seed, same draws),
so the interval of a difference is paired. Rows whose 95% difference interval contains 0 are
not told apart; a row's rank is one plus the number of rows that are both higher and told apart
from it (:func:`bench.bootstrap.tie_ranks`), and shared ranks are written ``=k``.

A row without per-image matrices (a record from before they were kept, or a results folder
copied without ``samples/``) is told apart from every other row: its rank is the plain
competition rank of its mIoU. Reading a file whose hash is not the record's raises
:class:`~bench.errors.RecordError`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from bench import bootstrap
from bench.records import RunRecord

PerImage = Callable[[RunRecord], "np.ndarray | None"]
"""Returns a record's ``(N, K, K)`` per-image matrices, or None when it has none."""


def no_per_image(record: RunRecord) -> None:  # noqa: ARG001 - a PerImage that knows no files
    """The :data:`PerImage` of a render without a results folder: no record has matrices."""
    return None


def per_image_loader(results_dir: Path | str | None) -> PerImage:
    """A :data:`PerImage` reading the files under ``results_dir`` (each read once).

    A missing file counts as no matrices (the row's rank is then its plain rank).
    """
    if results_dir is None:
        return no_per_image
    folder = Path(results_dir)
    cache: dict[str, np.ndarray | None] = {}

    def load(record: RunRecord) -> np.ndarray | None:
        metrics = record.metrics
        rel = metrics.per_image_file if metrics is not None else None
        if not rel:
            return None
        if rel not in cache:
            path = folder / rel
            cache[rel] = (
                bootstrap.load_per_image(path, metrics.per_image_sha256) if path.is_file() else None
            )
        return cache[rel]

    return load


def _has_no_class(record: RunRecord, matrices: np.ndarray) -> bool:
    """Whether the matrices have the extra "no class" row and column of published weights."""
    classes = record.metrics.per_class_iou if record.metrics is not None else None
    return classes is not None and matrices.shape[1] == len(classes) + 1


def paired_miou(records: Sequence[RunRecord], per_image: PerImage) -> np.ndarray:
    """``(R, B)`` mIoU of each record on the shared resamples; NaN rows where none can be paired.

    Rows are paired when their matrices hold the same number of images (the most common count
    among the rows; the others are NaN).
    """
    mats = [per_image(r) for r in records]
    counts = [len(m) for m in mats if m is not None and len(m)]
    out = np.full((len(records), bootstrap.RESAMPLES), np.nan)
    if not counts:
        return out
    n = max(set(counts), key=counts.count)
    for i, (record, m) in enumerate(zip(records, mats, strict=True)):
        if m is not None and len(m) == n:
            out[i] = bootstrap.resampled_metric(m, "miou", no_class=_has_no_class(record, m))
    return out


def rank_texts(
    records: Sequence[RunRecord], mious: Sequence[float], per_image: PerImage
) -> list[str]:
    """Tie ranks (``"1"``, ``"=2"``, ...) of rows that are ranked, in their order.

    Args:
        records: The ranked rows' records (one table: the same evaluation images).
        mious: Their mIoU.
        per_image: Where their per-image matrices come from.
    """
    if not records:
        return []
    apart = bootstrap.differs(paired_miou(records, per_image))
    return bootstrap.tie_ranks([float(v) for v in mious], apart.tolist())
