"""The fused CPU count behind :class:`bench.metrics.ConfusionMatrix` for labels wider than uint8.

``argmax`` and most data loaders give int64 class ids: 16 bytes of labels per pixel, eight
times the uint8 path's. Built from NumPy or torch operations, an update reads those bytes at
least twice (an exact range check, then the narrowing into a flat index) and counts in a third
pass (``torch.bincount``, which scans its input for its minimum and maximum before counting):
2.2-2.6x a bare int32 ``bincount`` of the same pixels on one thread. This kernel, compiled by
numba, reads each (target, prediction) pair once, checks both exactly and counts it, in one
loop over the pixels, with no temporary array: 1.1-1.3x that bare ``bincount`` in the
pytest-benchmark benchmark (``tests/benchmarks/test_bench_metrics.py``). Two histograms take
alternate pixels, so runs of one flat index (real masks are made of regions) do not make every
increment wait for the one before it.

Compiled on first use for each pair of input dtypes (about a second) and cached on disk by numba
(``cache=True``) next to this file.
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True, nogil=True, boundscheck=False)
def count_pairs(
    target: np.ndarray,
    pred: np.ndarray,
    lo: int,
    rows: int,
    k: int,
    hist: np.ndarray,
    hist2: np.ndarray,
) -> bool:  # pragma: no cover - compiled; tests/test_metrics.py runs it against NumPy
    """Adds each pixel's pair to ``hist[(target - lo) * k + pred]`` (alternate pixels to ``hist2``).

    Args:
        target: Flat ground-truth labels, any integer dtype.
        pred: Flat predicted class ids, as many, any integer dtype.
        lo: The smallest target label given a row (0, or a negative ignore index).
        rows: Target label values ``lo .. lo + rows - 1`` each have a row.
        k: Number of classes: predictions must lie in ``[0, k)``.
        hist: Zeroed int64 counts, ``rows * k`` of them.
        hist2: A second zeroed array like ``hist``.

    Returns:
        True when every target lies in ``[lo, lo + rows)`` and every prediction in ``[0, k)``;
        False at the first pixel that does not (the counts are then partial: discard them).
    """
    n = target.size
    ur, uk, slo = np.uint64(rows), np.uint64(k), np.int64(lo)
    # As unsigned numbers a negative difference is huge, so one comparison bounds both sides.
    for i in range(0, n - n % 2, 2):
        a = np.uint64(np.int64(target[i]) - slo)
        b = np.uint64(np.int64(pred[i]))
        c = np.uint64(np.int64(target[i + 1]) - slo)
        d = np.uint64(np.int64(pred[i + 1]))
        if (a >= ur) | (b >= uk) | (c >= ur) | (d >= uk):
            return False
        hist[a * uk + b] += 1
        hist2[c * uk + d] += 1
    if n % 2:
        a = np.uint64(np.int64(target[n - 1]) - slo)
        b = np.uint64(np.int64(pred[n - 1]))
        if (a >= ur) | (b >= uk):
            return False
        hist[a * uk + b] += 1
    return True
