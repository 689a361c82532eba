"""Tests for ``bench.speed.throughput``: batch sizes, OOM detection and back-off, and images/s
computed as documented (driven by a fake clock)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from bench.errors import ConfigError
from bench.speed import throughput
from bench.speed.config import SpeedConfig
from bench.speed.throughput import (
    THROUGHPUT_MIN_ITERS,
    doubling_batch_sizes,
    is_oom_error,
    throughput_sweep,
)
from tests.factories import FakeClock

FAST = SpeedConfig(warmup=0, min_iters=1, max_iters=100, min_time_s=0.0, max_batch=64)


class Costly(nn.Module):
    """Each call costs ``per_call_s + per_image_s x batch`` of fake time."""

    def __init__(self, clock: FakeClock, per_call_s: float, per_image_s: float) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 2, 1)
        self.clock, self.per_call_s, self.per_image_s = clock, per_call_s, per_image_s
        self.batches: list[int] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.batches.append(x.shape[0])
        self.clock.now += self.per_call_s + self.per_image_s * x.shape[0]
        return self.conv(x)


class OOMAtBatch(nn.Module):
    """Raises ``error`` for batches of at least ``limit`` images, like a too-large batch would."""

    def __init__(self, limit: int, error: BaseException) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 2, 1)
        self.limit = limit
        self.error = error

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[0] >= self.limit:
            raise self.error
        return self.conv(x)


def test_doubling_batch_sizes() -> None:
    assert doubling_batch_sizes(1) == [1]
    assert doubling_batch_sizes(64) == [1, 2, 4, 8, 16, 32, 64]
    assert doubling_batch_sizes(48) == [1, 2, 4, 8, 16, 32]
    with pytest.raises(ConfigError, match="max_batch must be an int >= 1; found 0"):
        doubling_batch_sizes(0)


def test_is_oom_error() -> None:
    assert is_oom_error(torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate"))
    assert is_oom_error(RuntimeError("CUDA error: out of memory"))
    assert is_oom_error(RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried"))
    assert is_oom_error(MemoryError())
    assert not is_oom_error(RuntimeError("shape mismatch"))
    assert not is_oom_error(ValueError("out of memory"))


def test_images_per_second_from_fake_time(fake_clock: FakeClock) -> None:
    # 2 ms per call plus 1 ms per image: batch b takes (2 + b) ms, so b / (2 + b) * 1000 img/s.
    model = Costly(fake_clock, per_call_s=0.002, per_image_s=0.001)
    config = SpeedConfig(warmup=1, min_iters=1, max_iters=100, min_time_s=0.0, max_batch=8)
    result = throughput_sweep(model, (3, 4, 4), config)
    expected = {b: b / (2 + b) * 1000 for b in (1, 2, 4, 8)}
    assert {p.batch_size: p.images_per_s for p in result.points} == pytest.approx(expected)
    assert result.best_batch_size == 8 and result.max_batch_fitted == 8
    assert result.best_images_per_s == pytest.approx(800.0)
    # Per batch size: 1 warm-up, then THROUGHPUT_MIN_ITERS timed calls (min_time_s is 0).
    assert model.batches == [b for b in (1, 2, 4, 8) for _ in range(1 + THROUGHPUT_MIN_ITERS)]


def test_min_time_applies_per_batch_size(fake_clock: FakeClock) -> None:
    model = Costly(fake_clock, per_call_s=0.010, per_image_s=0.0)
    config = SpeedConfig(warmup=0, min_iters=1, max_iters=100, min_time_s=0.045, max_batch=2)
    throughput_sweep(model, (3, 4, 4), config)
    assert model.batches == [1] * 5 + [2] * 5  # 5 calls of 10 ms are the first to reach 45 ms


def test_max_iters_below_the_throughput_minimum_caps_it(fake_clock: FakeClock) -> None:
    # A valid config with max_iters 2 runs (it used to fail: max_iters < throughput_min_iters).
    model = Costly(fake_clock, per_call_s=0.010, per_image_s=0.0)
    config = SpeedConfig(warmup=0, min_iters=1, max_iters=2, min_time_s=0.0, max_batch=1)
    throughput_sweep(model, (3, 4, 4), config)
    assert model.batches == [1, 1]


@pytest.mark.parametrize(
    "error",
    [
        torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"),
        RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate 1 GB"),
        MemoryError(),
    ],
    ids=["cuda_oom", "cpu_allocator", "memory_error"],
)
def test_oom_backoff(monkeypatch: pytest.MonkeyPatch, error: BaseException) -> None:
    released: list[torch.device] = []
    monkeypatch.setattr(throughput, "release_memory", released.append)
    result = throughput_sweep(OOMAtBatch(8, error), (3, 8, 8), FAST, min_iters=1)
    assert [p.batch_size for p in result.points] == [1, 2, 4, 8]
    assert [p.oom for p in result.points] == [False, False, False, True]
    assert result.points[-1].images_per_s is None
    assert result.max_batch_fitted == 4
    assert result.best_batch_size in (1, 2, 4)
    assert result.best_images_per_s == max(p.images_per_s or 0 for p in result.points)
    assert released == [torch.device("cpu")]


def test_oom_at_first_batch_raises() -> None:
    model = OOMAtBatch(1, MemoryError())
    with pytest.raises(RuntimeError, match="OOMAtBatch ran out of memory at batch size 1"):
        throughput_sweep(model, (3, 8, 8), FAST)


def test_non_oom_error_propagates() -> None:
    model = OOMAtBatch(2, RuntimeError("shape mismatch"))
    with pytest.raises(RuntimeError, match="shape mismatch"):
        throughput_sweep(model, (3, 8, 8), FAST)


def test_explicit_sizes_and_their_validation(fake_clock: FakeClock) -> None:
    model = Costly(fake_clock, per_call_s=0.0, per_image_s=0.001)
    result = throughput_sweep(model, (3, 8, 8), FAST, batch_sizes=[1, 3], min_iters=2)
    assert [p.batch_size for p in result.points] == [1, 3]
    assert [p.images_per_s for p in result.points] == pytest.approx([1000.0, 1000.0])
    assert result.max_batch_fitted == 3
    with pytest.raises(ConfigError, match="strictly increasing list of positive ints; found"):
        throughput_sweep(model, (3, 8, 8), FAST, batch_sizes=[4, 2])
    with pytest.raises(ValueError, match=r"\(C, H, W\)"):
        throughput_sweep(model, (1, 3, 8, 8), FAST)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="'fp16' is only supported on CUDA"):
        throughput_sweep(model, (3, 8, 8), SpeedConfig(dtype="fp16"))
