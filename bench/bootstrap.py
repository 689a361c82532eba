"""Percentile bootstrap intervals over test images, from per-image confusion matrices.

An evaluation can keep one ``(K, K)`` confusion matrix per image (rows = ground truth). A
bootstrap resample draws N images with replacement; its confusion matrix is the sum of the drawn
images' matrices, so a resample is a vector of draw counts ``c`` (a multinomial draw, summing to
N) and its matrix is ``c @ M`` with ``M`` the ``(N, K * K)`` per-image matrices. All B resamples
are one ``(B, N) @ (N, K * K)`` product: no Python loop per resample. The metrics of each
resampled matrix follow ``bench.metrics.compute_metrics`` (classes absent from both ground truth
and prediction are left out of the means), and the interval is the 2.5th and 97.5th percentile.

A **paired** bootstrap scores two models on the same resamples (the same draw counts), so the
interval of their difference accounts for the images they share; two rows whose difference
interval contains 0 are not told apart (:func:`tie_ranks`).

NumPy only: the reporting layer (which renders from records alone) and measurement both use it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from bench.errors import ConfigError

RESAMPLES = 1000
"""The default number of resamples (the issue's minimum)."""


def draw_counts(num_images: int, resamples: int = RESAMPLES, seed: int = 0) -> np.ndarray:
    """``(B, N)`` int64 draw counts of B resamples of N images with replacement (seeded)."""
    if num_images < 1 or resamples < 1:
        raise ConfigError(
            f"A bootstrap needs at least one image and one resample; got {num_images} images "
            f"and {resamples} resamples."
        )
    rng = np.random.default_rng(seed)
    return rng.multinomial(num_images, np.full(num_images, 1.0 / num_images), size=resamples)


def resampled_matrices(per_image: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """``(B, K, K)`` summed confusion matrices of the resamples ``counts`` of ``per_image``.

    Args:
        per_image: ``(N, K, K)`` non-negative counts, one matrix per image.
        counts: ``(B, N)`` draw counts (:func:`draw_counts`).
    """
    m = np.asarray(per_image)
    if m.ndim != 3 or m.shape[1] != m.shape[2] or counts.shape[1] != m.shape[0]:
        raise ConfigError(
            f"Expected (N, K, K) per-image matrices and (B, N) draw counts; got {m.shape} and "
            f"{counts.shape}."
        )
    n, k, _ = m.shape
    flat = m.reshape(n, k * k).astype(np.float64)  # exact: counts below 2**53
    return (counts.astype(np.float64) @ flat).reshape(-1, k, k)


def batch_metrics(matrices: np.ndarray) -> dict[str, np.ndarray]:
    """``miou``, ``pixel_acc`` and ``mean_acc`` (fractions) of each of ``(B, K, K)`` matrices."""
    cm = np.asarray(matrices, dtype=np.float64)
    tp = np.diagonal(cm, axis1=1, axis2=2)
    gt, pr = cm.sum(axis=2), cm.sum(axis=1)
    union = gt + pr - tp
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = np.where(union > 0, tp / union, np.nan)
        acc = np.where(gt > 0, tp / gt, np.nan)
        total = cm.sum(axis=(1, 2))
        pixel_acc = np.where(total > 0, tp.sum(axis=1) / total, np.nan)
    return {"miou": _nanmean(iou), "pixel_acc": pixel_acc, "mean_acc": _nanmean(acc)}


def _nanmean(values: np.ndarray) -> np.ndarray:
    valid = ~np.isnan(values)
    n = valid.sum(axis=1)
    with np.errstate(invalid="ignore"):
        return np.where(n > 0, np.where(valid, values, 0.0).sum(axis=1) / n, np.nan)


def interval(samples: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """The percentile interval holding ``level`` of the (finite) bootstrap ``samples``."""
    finite = np.asarray(samples, dtype=np.float64)
    finite = finite[np.isfinite(finite)]
    if finite.size == 0:
        return (float("nan"), float("nan"))
    tail = 100 * (1 - level) / 2
    lo, hi = np.percentile(finite, [tail, 100 - tail])
    return (float(lo), float(hi))


def bootstrap_intervals(
    per_image: np.ndarray, resamples: int = RESAMPLES, seed: int = 0, level: float = 0.95
) -> dict[str, tuple[float, float]]:
    """95% percentile intervals of mIoU, pixel accuracy and mean accuracy over the images."""
    counts = draw_counts(len(per_image), resamples, seed)
    stats = batch_metrics(resampled_matrices(per_image, counts))
    return {name: interval(values, level) for name, values in stats.items()}


def paired_difference(
    a: np.ndarray,
    b: np.ndarray,
    metric: str = "miou",
    resamples: int = RESAMPLES,
    seed: int = 0,
    level: float = 0.95,
) -> tuple[float, float]:
    """The interval of ``metric(a) - metric(b)`` over resamples shared by both (same images).

    Raises:
        ConfigError: ``a`` and ``b`` do not hold the same number of images and classes.
    """
    if np.shape(a) != np.shape(b):
        raise ConfigError(
            f"A paired bootstrap needs the same images for both rows; got per-image matrices "
            f"of shapes {np.shape(a)} and {np.shape(b)}."
        )
    counts = draw_counts(len(a), resamples, seed)
    da = batch_metrics(resampled_matrices(a, counts))[metric]
    db = batch_metrics(resampled_matrices(b, counts))[metric]
    return interval(da - db, level)


def tie_ranks(values: Sequence[float], differs: Sequence[Sequence[bool]]) -> list[str]:
    """Competition ranks in which rows that are not told apart share a rank (``"=2"``).

    Rows are ranked by ``values`` (higher first). A row's rank is one plus the number of rows
    that are significantly better than it (``differs[i][j]``: the interval of ``i - j``
    excludes 0); rows with the same rank are shown with ``=``.

    Args:
        values: The metric of each row.
        differs: ``differs[i][j]`` is True when rows i and j are told apart (symmetric).

    Returns:
        The rank of each row, in input order: ``"1"``, ``"=2"``, ...
    """
    n = len(values)
    ranks = [
        1 + sum(1 for j in range(n) if j != i and differs[i][j] and values[j] > values[i])
        for i in range(n)
    ]
    shared = {r for r in ranks if ranks.count(r) > 1}
    return [f"={r}" if r in shared else str(r) for r in ranks]
