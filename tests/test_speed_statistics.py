"""Tests for ``bench.speed.statistics``: latency summaries by hand and against NumPy, the stopping
rule of the timing loops, and paired ratios."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

from bench.speed.statistics import (
    PERCENTILE_METHOD,
    LatencyStats,
    keep_iterating,
    latency_stats,
    paired_ratio,
)


def test_latency_stats_one_to_ten() -> None:
    stats = latency_stats([7, 3, 10, 1, 5, 2, 9, 4, 8, 6])  # order must not matter
    assert stats.n == 10
    assert stats.mean == pytest.approx(5.5)
    assert stats.p50 == pytest.approx(5.5)
    assert stats.p90 == pytest.approx(9.1)  # rank 0.9 * 9 = 8.1 -> 9 + 0.1 * (10 - 9)
    assert stats.p99 == pytest.approx(9.91)  # rank 8.91 -> 9 + 0.91
    assert stats.std == pytest.approx(math.sqrt(82.5 / 9))  # sum of squares 82.5, ddof=1
    assert stats.cv == pytest.approx(math.sqrt(82.5 / 9) / 5.5)


def test_latency_stats_textbook_sample() -> None:
    stats = latency_stats([2, 4, 4, 4, 5, 5, 7, 9])
    assert stats.mean == 5.0
    assert stats.std == pytest.approx(math.sqrt(32 / 7))  # population std would be 2.0
    assert stats.p50 == pytest.approx(4.5)
    assert stats.p90 == pytest.approx(7.6)  # rank 6.3 -> 7 + 0.3 * (9 - 7)
    assert stats.to_dict() == {
        "p50": stats.p50,
        "p90": stats.p90,
        "p99": stats.p99,
        "mean": 5.0,
        "std": stats.std,
        "cv": stats.std / 5.0,
        "n": 8,
    }


def test_percentiles_by_hand_on_two_values() -> None:
    # Rank q / 100 * (n - 1) = 0.5, 0.9, 0.99 between 1 and 2.
    stats = latency_stats([2.0, 1.0])
    assert (stats.p50, stats.p90, stats.p99) == pytest.approx((1.5, 1.9, 1.99))


def hand_percentile(sorted_values: list[float], q: float) -> float:
    """Linear interpolation between closest ranks, as bench.speed computed it before NumPy."""
    rank = q / 100.0 * (len(sorted_values) - 1)
    lo = math.floor(rank)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (rank - lo)


def test_percentiles_are_numpy_linear_and_match_the_old_hand_written_ones() -> None:
    assert PERCENTILE_METHOD == "linear"  # NumPy's default, rank q / 100 * (n - 1)
    rng = random.Random(0)
    for _ in range(300):
        values = [rng.lognormvariate(1.0, 0.5) * 10 for _ in range(rng.randint(1, 200))]
        stats = latency_stats(values)
        got = (stats.p50, stats.p90, stats.p99)
        assert got == tuple(np.percentile(values, [50, 90, 99], method="linear"))
        ordered = sorted(values)
        # NumPy interpolates from the nearer end for fractions >= 0.5: equal to 1 ulp.
        assert got == pytest.approx(
            tuple(hand_percentile(ordered, q) for q in (50, 90, 99)), rel=1e-15, abs=0
        )


def test_latency_stats_single_value() -> None:
    assert latency_stats([4.0]) == LatencyStats(4.0, 4.0, 4.0, 4.0, 0.0, 0.0, 1)


@pytest.mark.parametrize("bad", [[], [1.0, -0.5], [1.0, float("nan")], [0.0, 0.0]])
def test_latency_stats_rejects(bad: list[float]) -> None:
    with pytest.raises(ValueError):
        latency_stats(bad)


@pytest.mark.parametrize(
    ("n_done", "elapsed", "expected"),
    [
        (0, 0.0, True),  # nothing yet
        (4, 5.0, True),  # time reached, iterations not
        (5, 0.5, True),  # iterations reached, time not
        (5, 1.0, False),  # both reached
        (9, 0.0, True),
        (10, 0.0, False),  # max_iters wins over min_time_s
    ],
)
def test_keep_iterating(n_done: int, elapsed: float, expected: bool) -> None:
    rule = {"min_iters": 5, "max_iters": 10, "min_time_s": 1.0}
    assert keep_iterating(n_done, elapsed, **rule) is expected


def test_paired_ratio_by_hand() -> None:
    ratio, cv = paired_ratio([10.0, 30.0, 20.0], [5.0, 10.0, 10.0])  # ratios 2, 3, 2
    assert ratio == 2.0
    mean = 7 / 3
    std = (((2 - mean) ** 2 * 2 + (3 - mean) ** 2) / 2) ** 0.5
    assert cv == pytest.approx(std / mean)
    assert paired_ratio([4.0], [2.0]) == (2.0, 0.0)
    with pytest.raises(ValueError, match="equally long, non-empty"):
        paired_ratio([1.0], [1.0, 2.0])
    with pytest.raises(ValueError, match="reference times must be finite and > 0"):
        paired_ratio([1.0], [0.0])
