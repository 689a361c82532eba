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

import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import IO

import numpy as np

from bench.errors import ConfigError, RecordError
from bench.fileio import sha256_of, write_atomic

RESAMPLES = 1000
"""The default number of resamples (the issue's minimum)."""

PER_IMAGE_SUFFIX = ".confusion.npz"
"""A run's per-image matrices: ``samples/<run_id>.confusion.npz``, beside its samples file."""


def save_per_image(path: Path, matrices: np.ndarray) -> str:
    """Writes ``(N, K, K)`` per-image confusion matrices (compressed, atomic); returns the sha256.

    The file holds ``matrices`` (uint32: an image has fewer than 2**32 pixels) and ``images``
    (their indices in the evaluation split, in order).
    """
    m = np.asarray(matrices)
    if m.ndim != 3 or m.shape[1] != m.shape[2] or (m < 0).any() or (m >= 2**32).any():
        raise ConfigError(f"Expected (N, K, K) counts below 2**32; got shape {m.shape}.")
    arrays = {"matrices": m.astype(np.uint32), "images": np.arange(len(m))}

    def write(handle: IO[bytes]) -> None:
        # numpy.savez_compressed's zip entries carry the time of writing; fixed times here, so
        # the same matrices always give the same bytes (and sha256).
        with zipfile.ZipFile(handle, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for name, array in arrays.items():
                entry = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
                entry.compress_type = zipfile.ZIP_DEFLATED
                with archive.open(entry, "w") as member:
                    np.lib.format.write_array(member, array, allow_pickle=False)

    write_atomic(path, write)
    return sha256_of(Path(path))


def load_per_image(path: Path, sha256: str | None = None) -> np.ndarray:
    """The ``(N, K, K)`` int64 matrices of a :func:`save_per_image` file, checked against its hash.

    Raises:
        RecordError: The file is missing, unreadable, or its sha256 is not the record's.
    """
    path = Path(path)
    if not path.is_file():
        raise RecordError(
            f"Per-image confusion matrices {path} not found. Fix: copy the results folder with "
            f"its samples/ subfolder, or re-run the record's command."
        )
    if sha256 is not None and (found := sha256_of(path)) != sha256:
        raise RecordError(
            f"Per-image confusion matrices {path}: expected sha256 {sha256} (the record's), "
            f"found {found}. The file was changed or belongs to another run; re-run the "
            f"record's command to rebuild it."
        )
    try:
        with np.load(path) as npz:
            return npz["matrices"].astype(np.int64)
    except (OSError, ValueError, KeyError) as exc:
        raise RecordError(f"Per-image confusion matrices {path} cannot be read: {exc}") from exc


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


def batch_metrics(matrices: np.ndarray, no_class: bool = False) -> dict[str, np.ndarray]:
    """``miou``, ``pixel_acc`` and ``mean_acc`` (fractions) of each of ``(B, K, K)`` matrices.

    With ``no_class`` the matrices are ``(K + 1, K + 1)`` and the last column counts pixels
    predicted as no class: misses of their true class, false positives of none (as in
    ``bench.metrics.compute_metrics``); only the K classes are scored.
    """
    cm = np.asarray(matrices, dtype=np.float64)
    k = cm.shape[1] - (1 if no_class else 0)
    cm = cm[:, :k]  # rows: the K classes (with no_class, K + 1 columns)
    tp = np.diagonal(cm[:, :, :k], axis1=1, axis2=2)
    gt, pr = cm.sum(axis=2), cm[:, :, :k].sum(axis=1)
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
    per_image: np.ndarray,
    resamples: int = RESAMPLES,
    seed: int = 0,
    level: float = 0.95,
    no_class: bool = False,
) -> dict[str, tuple[float, float]]:
    """95% percentile intervals of mIoU, pixel accuracy and mean accuracy over the images."""
    counts = draw_counts(len(per_image), resamples, seed)
    stats = batch_metrics(resampled_matrices(per_image, counts), no_class)
    return {name: interval(values, level) for name, values in stats.items()}


def resampled_metric(
    per_image: np.ndarray,
    metric: str = "miou",
    resamples: int = RESAMPLES,
    seed: int = 0,
    no_class: bool = False,
) -> np.ndarray:
    """``(B,)`` values of ``metric`` on the seeded resamples of ``per_image``'s images.

    Two calls with the same number of images, ``resamples`` and ``seed`` draw the same images:
    the difference of their results is a paired bootstrap (:func:`paired_difference`).
    """
    counts = draw_counts(len(per_image), resamples, seed)
    return batch_metrics(resampled_matrices(per_image, counts), no_class)[metric]


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
    da = resampled_metric(a, metric, resamples, seed)
    db = resampled_metric(b, metric, resamples, seed)
    return interval(da - db, level)


def differs(values: np.ndarray, level: float = 0.95) -> np.ndarray:
    """``(R, R)`` bools: rows i and j told apart, from ``(R, B)`` paired resampled values.

    Row i of ``values`` holds one row's metric on the B resamples that every row shares (the
    same draw counts: :func:`resampled_metric` with one seed). Rows i and j differ when the
    percentile interval of their differences excludes 0. NaN rows (no per-image data) are told
    apart from every other row (nothing shows them equal).
    """
    v = np.asarray(values, dtype=np.float64)
    n = len(v)
    out = np.ones((n, n), dtype=bool)
    tail = 100 * (1 - level) / 2
    for i in range(n):
        out[i, i] = False
        for j in range(i + 1, n):
            diff = v[i] - v[j]
            diff = diff[np.isfinite(diff)]
            if diff.size:
                lo, hi = np.percentile(diff, [tail, 100 - tail])
                out[i, j] = out[j, i] = not lo <= 0.0 <= hi
    return out


def tie_ranks(values: Sequence[float], differs: Sequence[Sequence[bool]]) -> list[str]:
    """Competition ranks in which rows that are not told apart share a rank (``"=2"``).

    Rows are taken by ``values``, higher first. Each row either joins the group of the row that
    opened the current group (when the two are not told apart: ``differs[i][j]`` False) and gets
    its rank (so does an equal value), or opens a new group with its own position as rank (1,
    2, 2, 4: competition ranking). Ties are not transitive: a row within noise of its neighbour but told apart from
    the group's first row opens a group of its own. Shared ranks are written with ``=``.

    Args:
        values: The metric of each row.
        differs: ``differs[i][j]`` is True when rows i and j are told apart (symmetric).

    Returns:
        The rank of each row, in input order: ``"1"``, ``"=2"``, ...
    """
    order = sorted(range(len(values)), key=lambda i: -values[i])  # stable: input order on ties
    ranks = [0] * len(values)
    leader = None
    for position, i in enumerate(order, start=1):
        if leader is not None and (values[i] == values[leader] or not differs[i][leader]):
            ranks[i] = ranks[leader]
        else:
            leader, ranks[i] = i, position
    shared = {r for r in ranks if ranks.count(r) > 1}
    return [f"={r}" if r in shared else str(r) for r in ranks]
