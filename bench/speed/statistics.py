"""Pure statistics of timings: latency summaries, the loops' stopping rule, paired ratios."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

# NumPy's default percentile method: linear interpolation at rank q / 100 * (n - 1).
PERCENTILE_METHOD = "linear"


@dataclass(frozen=True)
class LatencyStats:
    """Summary of per-iteration latencies, all in milliseconds.

    Attributes:
        p50: Median.
        p90: 90th percentile.
        p99: 99th percentile.
        mean: Arithmetic mean.
        std: Sample standard deviation (``ddof=1``; 0.0 for a single iteration).
        cv: Coefficient of variation, ``std / mean``.
        n: Number of timed iterations.
    """

    p50: float
    p90: float
    p99: float
    mean: float
    std: float
    cv: float
    n: int

    def to_dict(self) -> dict[str, float | int]:
        """Returns the run record's ``latency_ms`` object."""
        return {
            "p50": self.p50,
            "p90": self.p90,
            "p99": self.p99,
            "mean": self.mean,
            "std": self.std,
            "cv": self.cv,
            "n": self.n,
        }


def latency_stats(times_ms: Sequence[float]) -> LatencyStats:
    """Summarises per-iteration times.

    Percentiles are ``np.percentile(..., method="linear")`` (rank ``q / 100 * (n - 1)``,
    interpolated linearly between the neighbouring values).

    Args:
        times_ms: Per-iteration times in milliseconds, in measurement order.

    Returns:
        A :class:`LatencyStats`.

    Raises:
        ValueError: If ``times_ms`` is empty or contains a negative or non-finite value, or all
            times are zero (the coefficient of variation would be undefined).
    """
    values = [float(t) for t in times_ms]
    if not values:
        raise ValueError("latency_stats needs at least one time; got an empty sequence.")
    bad = [t for t in values if not math.isfinite(t) or t < 0]
    if bad:
        raise ValueError(f"times must be finite and non-negative; got {bad[:3]}.")
    n = len(values)
    mean = sum(values) / n
    if mean == 0:
        raise ValueError("all times are zero; the timer resolution is too coarse for this model.")
    std = math.sqrt(sum((t - mean) ** 2 for t in values) / (n - 1)) if n > 1 else 0.0
    p50, p90, p99 = np.percentile(values, [50, 90, 99], method=PERCENTILE_METHOD).tolist()
    return LatencyStats(p50=p50, p90=p90, p99=p99, mean=mean, std=std, cv=std / mean, n=n)


def keep_iterating(
    n_done: int, elapsed_s: float, *, min_iters: int, max_iters: int, min_time_s: float
) -> bool:
    """The stopping rule of every timing loop in this package.

    Args:
        n_done: Timed iterations so far.
        elapsed_s: Seconds since the first timed iteration started.
        min_iters: Minimum number of timed iterations.
        max_iters: Maximum number of timed iterations (wins over ``min_time_s``).
        min_time_s: Minimum total timing duration in seconds.

    Returns:
        True while fewer than ``max_iters`` iterations ran and either fewer than ``min_iters``
        iterations ran or less than ``min_time_s`` elapsed.
    """
    if n_done >= max_iters:
        return False
    return n_done < min_iters or elapsed_s < min_time_s


def paired_ratio(model_ms: Sequence[float], reference_ms: Sequence[float]) -> tuple[float, float]:
    """Median and coefficient of variation of per-round ``model / reference`` time ratios.

    Args:
        model_ms: The model's time in each round.
        reference_ms: The reference's time in the same rounds.

    Returns:
        ``(median ratio, std / mean of the ratios)`` (CV 0.0 for a single round).

    Raises:
        ValueError: If the sequences are empty, differ in length, or a reference time is not
            positive.
    """
    if not model_ms or len(model_ms) != len(reference_ms):
        raise ValueError(
            f"paired_ratio needs equally long, non-empty sequences; got {len(model_ms)} model "
            f"and {len(reference_ms)} reference times."
        )
    if any(not math.isfinite(r) or r <= 0 for r in reference_ms):
        raise ValueError(f"reference times must be finite and > 0; got {list(reference_ms)[:3]}.")
    stats = latency_stats([m / r for m, r in zip(model_ms, reference_ms, strict=True)])
    return stats.p50, stats.cv
