"""Tests for ``bench.speed.roofline``: the efficiency arithmetic and the cached GEMM rate."""

from __future__ import annotations

import types

import pytest

from bench.errors import ConfigError
from bench.speed import roofline
from bench.speed.roofline import efficiency, matmul_rate
from tests.factories import device_error


def test_efficiency_arithmetic() -> None:
    achieved, frac = efficiency(gmacs_per_image=2.0, images_per_s=50.0, matmul_gflops=400.0)
    assert achieved == pytest.approx(200.0)  # 2 FLOPs/MAC x 2 GMACs x 50 img/s
    assert frac == pytest.approx(0.5)
    with pytest.raises(ValueError, match="matmul_gflops"):
        efficiency(1.0, 1.0, 0.0)
    with pytest.raises(ValueError, match="images_per_s"):
        efficiency(1.0, -1.0, 1.0)


def test_matmul_rate_is_measured_once_per_key() -> None:
    matmul_rate.cache_clear()
    try:
        first = matmul_rate(n=128, min_time_s=0.0)
        again = matmul_rate("cpu", n=128, min_time_s=0.0)  # same normalised key
        assert again == first  # identical float: not re-measured
        info = matmul_rate.cache_info()
        assert (info.misses, info.hits) == (1, 1)
        matmul_rate("cpu", n=64, min_time_s=0.0)
        assert matmul_rate.cache_info().misses == 2  # another size is another measurement
    finally:
        matmul_rate.cache_clear()
    assert matmul_rate.cache_info().currsize == 0


def test_matmul_rate_rejects_bad_arguments() -> None:
    with pytest.raises(ConfigError, match="'fp16' is only supported on CUDA"):
        matmul_rate("cpu", n=8, dtype="fp16")
    with pytest.raises(ConfigError, match="n must be an int >= 1; found 0"):
        matmul_rate("cpu", n=0)
    with pytest.raises(ConfigError, match="min_time_s must be a finite number of seconds >= 0"):
        matmul_rate("cpu", n=8, min_time_s=-1.0)
    with pytest.raises(ConfigError, match=device_error("meta")):
        matmul_rate("meta", n=8)


def test_matmul_rate_formula_with_a_fake_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    ticks = iter(range(1000))  # every clock read is 10 ms after the previous one
    monkeypatch.setattr(
        roofline, "time", types.SimpleNamespace(perf_counter=lambda: 0.01 * next(ticks))
    )
    matmul_rate.cache_clear()
    try:
        rate = matmul_rate("cpu", n=64, min_time_s=0.0)
    finally:
        matmul_rate.cache_clear()
    # At least 3 GEMMs of 2 x 64^3 FLOPs, 30 ms of fake time: 2 * 262144 * 3 / 0.03 / 1e9.
    assert rate == pytest.approx(2 * 64**3 * 3 / 0.03 / 1e9)
