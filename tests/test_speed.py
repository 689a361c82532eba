"""Tests for ``bench.speed``: pure statistics by hand, timing control with a fake clock, OOM back-off.

No test asserts on an absolute duration: loops are driven by a fake clock or by iteration counts.
"""

from __future__ import annotations

import json
import math
import time
import types

import pytest
import torch
from torch import nn

import bench.speed as speed
from bench.speed import (
    PEAK_MEM_KINDS,
    LatencyStats,
    PeakMemory,
    doubling_batch_sizes,
    efficiency,
    is_oom_error,
    keep_iterating,
    latency_stats,
    matmul_rate,
    measure_latency,
    measure_speed,
    percentile,
    release_free_heap,
    throughput_sweep,
)

FAST = {"warmup": 0, "min_time_s": 0.0}


def tiny_net() -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU())


class CountingNet(nn.Module):
    """Counts forward calls; optionally advances a fake clock by ``step_s`` per call."""

    def __init__(self, clock: FakeClock | None = None, step_s: float = 0.0) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 2, 1)
        self.calls = 0
        self.clock = clock
        self.step_s = step_s

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        if self.clock is not None:
            self.clock.now += self.step_s
        return self.conv(x)


class FakeClock:
    """Stands in for ``time`` inside ``bench.speed``; time moves only when the model runs."""

    def __init__(self) -> None:
        self.now = 100.0

    def perf_counter(self) -> float:
        return self.now


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


# --- pure statistics -------------------------------------------------------------------------


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


def test_latency_stats_single_value() -> None:
    assert latency_stats([4.0]) == LatencyStats(4.0, 4.0, 4.0, 4.0, 0.0, 0.0, 1)


@pytest.mark.parametrize("bad", [[], [1.0, -0.5], [1.0, float("nan")], [0.0, 0.0]])
def test_latency_stats_rejects(bad: list[float]) -> None:
    with pytest.raises(ValueError):
        latency_stats(bad)


def test_percentile_edges() -> None:
    assert percentile([1.0, 2.0], 0) == 1.0
    assert percentile([1.0, 2.0], 100) == 2.0
    assert percentile([1.0, 2.0], 25) == 1.25
    with pytest.raises(ValueError, match="empty"):
        percentile([], 50)
    with pytest.raises(ValueError, match=r"\[0, 100\]"):
        percentile([1.0], 101)


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


def test_efficiency_arithmetic() -> None:
    achieved, frac = efficiency(gmacs_per_image=2.0, images_per_s=50.0, matmul_gflops=400.0)
    assert achieved == pytest.approx(200.0)  # 2 FLOPs/MAC x 2 GMACs x 50 img/s
    assert frac == pytest.approx(0.5)
    with pytest.raises(ValueError, match="matmul_gflops"):
        efficiency(1.0, 1.0, 0.0)
    with pytest.raises(ValueError, match="images_per_s"):
        efficiency(1.0, -1.0, 1.0)


def test_doubling_batch_sizes() -> None:
    assert doubling_batch_sizes(1) == [1]
    assert doubling_batch_sizes(64) == [1, 2, 4, 8, 16, 32, 64]
    assert doubling_batch_sizes(48) == [1, 2, 4, 8, 16, 32]
    with pytest.raises(ValueError, match="max_batch"):
        doubling_batch_sizes(0)


def test_is_oom_error() -> None:
    assert is_oom_error(torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate"))
    assert is_oom_error(RuntimeError("CUDA error: out of memory"))
    assert is_oom_error(RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried"))
    assert is_oom_error(MemoryError())
    assert not is_oom_error(RuntimeError("shape mismatch"))
    assert not is_oom_error(ValueError("out of memory"))


# --- timing loops ----------------------------------------------------------------------------


def test_min_iters_and_warmup_respected() -> None:
    model = CountingNet()
    stats = measure_latency(
        model, (1, 3, 8, 8), warmup=2, min_iters=7, max_iters=100, min_time_s=0.0
    )
    assert stats.n == 7
    assert model.calls == 2 + 7


def test_max_iters_caps_min_time() -> None:
    stats = measure_latency(
        CountingNet(), (1, 3, 8, 8), warmup=0, min_iters=2, max_iters=3, min_time_s=1e6
    )
    assert stats.n == 3


def test_min_time_drives_iterations(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = FakeClock()
    monkeypatch.setattr(speed, "time", types.SimpleNamespace(perf_counter=clock.perf_counter))
    model = CountingNet(clock, step_s=0.010)
    stats = measure_latency(
        model, (1, 3, 8, 8), warmup=1, min_iters=1, max_iters=100, min_time_s=0.035
    )
    # Each forward takes 10 ms of fake time; 4 iterations are the first to reach 35 ms.
    assert stats.n == 4
    assert stats.p50 == pytest.approx(10.0)
    assert stats.std == pytest.approx(0.0, abs=1e-9)
    assert model.calls == 1 + 4


def test_invalid_iteration_args() -> None:
    with pytest.raises(ValueError, match="max_iters"):
        measure_latency(tiny_net(), (1, 3, 8, 8), min_iters=5, max_iters=2)
    with pytest.raises(ValueError, match="min_iters"):
        measure_latency(tiny_net(), (1, 3, 8, 8), min_iters=0)


def test_fp16_on_cpu_raises_clear_error() -> None:
    with pytest.raises(ValueError, match="'fp16' is only supported on CUDA"):
        measure_latency(tiny_net(), (1, 3, 8, 8), dtype="fp16")
    with pytest.raises(ValueError, match="'fp16' is only supported on CUDA"):
        throughput_sweep(tiny_net(), (3, 8, 8), dtype="fp16")
    with pytest.raises(ValueError, match="'fp16' is only supported on CUDA"):
        matmul_rate("cpu", n=8, dtype="fp16")
    with pytest.raises(ValueError, match="dtype must be one of"):
        measure_latency(tiny_net(), (1, 3, 8, 8), dtype="float16")


def test_bf16_on_cpu_runs() -> None:
    stats = measure_latency(tiny_net(), (1, 3, 8, 8), dtype="bf16", min_iters=2, **FAST)
    assert stats.n == 2


def test_model_state_restored_after_channels_last() -> None:
    model = tiny_net().train()
    weight = model[0].weight
    before = weight.detach().clone()
    measure_latency(model, (1, 3, 8, 8), channels_last=True, min_iters=2, **FAST)
    assert model.training is True
    assert model[0].weight is weight
    assert weight.is_contiguous()
    assert torch.equal(weight, before)
    assert model[1].num_batches_tracked.item() == 0  # eval mode: BN stats untouched


# --- throughput and OOM back-off -------------------------------------------------------------


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
    monkeypatch.setattr(speed, "_release_memory", released.append)
    result = throughput_sweep(
        OOMAtBatch(8, error), (3, 8, 8), max_batch=64, min_iters=1, warmup=0, min_time_s=0.0
    )
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
        throughput_sweep(model, (3, 8, 8), max_batch=4, **FAST)


def test_non_oom_error_propagates() -> None:
    model = OOMAtBatch(2, RuntimeError("shape mismatch"))
    with pytest.raises(RuntimeError, match="shape mismatch"):
        throughput_sweep(model, (3, 8, 8), max_batch=4, **FAST)


def test_throughput_without_oom_and_explicit_sizes() -> None:
    result = throughput_sweep(
        tiny_net(), (3, 8, 8), batch_sizes=[1, 3], min_iters=2, warmup=0, min_time_s=0.0
    )
    assert [p.batch_size for p in result.points] == [1, 3]
    assert not any(p.oom for p in result.points)
    assert result.max_batch_fitted == 3
    assert all((p.images_per_s or 0) > 0 for p in result.points)
    with pytest.raises(ValueError, match="strictly increasing"):
        throughput_sweep(tiny_net(), (3, 8, 8), batch_sizes=[4, 2])
    with pytest.raises(ValueError, match=r"\(C, H, W\)"):
        throughput_sweep(tiny_net(), (1, 3, 8, 8))  # type: ignore[arg-type]


# --- peak memory -----------------------------------------------------------------------------


def test_peak_memory_sees_large_allocation() -> None:
    with PeakMemory("cpu") as mem:
        block = torch.ones(50_000_000)  # 200e6 bytes = 190.7 MiB, pages touched by the fill
    del block
    assert mem.kind == "cpu_rss_delta_sampled"
    assert mem.peak_mb >= 150


def test_peak_memory_sees_allocation_freed_inside() -> None:
    with PeakMemory("cpu", interval_s=0.001) as mem:
        block = torch.ones(50_000_000)
        time.sleep(0.5)  # give the sampler thread the chance to run; not a timing assertion
        del block
    assert mem.peak_mb >= 150


def test_peak_memory_empty_block_and_errors() -> None:
    mem = PeakMemory("cpu")
    with pytest.raises(RuntimeError, match="after the with-block"):
        _ = mem.peak_mb
    with mem:
        pass
    assert mem.peak_mb >= 0.0
    with PeakMemory("cpu", cpu_method="maxrss") as fallback:
        pass
    assert fallback.kind == "cpu_maxrss_delta"
    assert fallback.peak_mb >= 0.0
    with pytest.raises(ValueError, match="cpu_method"):
        PeakMemory("cpu", cpu_method="psutil")


# --- GEMM reference and the full report ------------------------------------------------------


def test_matmul_rate_positive_and_cached() -> None:
    matmul_rate.cache_clear()
    first = matmul_rate(n=128, min_time_s=0.0)
    again = matmul_rate("cpu", n=128, min_time_s=0.0)  # same normalised key
    assert first > 0
    assert again == first  # identical float: not re-measured
    info = matmul_rate.cache_info()
    assert (info.misses, info.hits) == (1, 1)
    matmul_rate.cache_clear()
    assert matmul_rate.cache_info().currsize == 0


def test_measure_speed_report() -> None:
    model = tiny_net()
    gmacs = 4 * 3 * 9 * 16 * 16 / 1e9
    report = measure_speed(
        model,
        (3, 16, 16),
        gmacs_per_image=gmacs,
        warmup=1,
        min_iters=3,
        max_iters=10,
        min_time_s=0.0,
        max_batch=4,
        throughput_min_iters=1,
        matmul_n=64,
    )
    d = report.to_dict()
    assert json.loads(json.dumps(d)) == d
    assert set(d) == {
        "device",
        "device_name",
        "dtype",
        "channels_last",
        "input_shape",
        "batch_size",
        "latency_ms",
        "throughput_ips",
        "throughput_batch_size",
        "throughput_sweep",
        "max_batch_fitted",
        "peak_mem_mb",
        "peak_mem_kind",
        "achieved_gflops_per_s",
        "efficiency",
        "matmul_gflops_per_s",
        "threads",
        "cpu_affinity",
        "minor_faults",
        "cudnn_benchmark",
    }
    assert d["device"] == "cpu"
    assert d["input_shape"] == [1, 3, 16, 16]
    assert d["batch_size"] == 1
    assert d["latency_ms"]["n"] == 3
    assert [p["batch_size"] for p in d["throughput_sweep"]] == [1, 2, 4]
    assert d["max_batch_fitted"] == 4
    assert d["throughput_ips"] == max(p["images_per_s"] for p in d["throughput_sweep"])
    assert d["achieved_gflops_per_s"] == pytest.approx(2 * gmacs * d["throughput_ips"])
    assert d["efficiency"] == pytest.approx(d["achieved_gflops_per_s"] / d["matmul_gflops_per_s"])
    assert d["peak_mem_kind"] in PEAK_MEM_KINDS
    assert d["peak_mem_mb"] >= 0
    assert d["threads"] == torch.get_num_threads()
    assert d["cpu_affinity"] >= 1
    assert d["minor_faults"] >= 0
    assert d["cudnn_benchmark"] is None
    assert isinstance(d["device_name"], str) and d["device_name"]
    assert model.training is True


def test_measure_speed_rejects_unknown_device() -> None:
    with pytest.raises(ValueError, match="device must be"):
        measure_speed(tiny_net(), (3, 8, 8), gmacs_per_image=0.0, device="meta")


# --- CUDA ------------------------------------------------------------------------------------

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@pytest.mark.cuda
@cuda
def test_cuda_latency_fp16_and_bf16() -> None:
    model = tiny_net().cuda()
    for dtype in ("fp16", "bf16"):
        stats = measure_latency(model, (1, 3, 32, 32), device="cuda", dtype=dtype, min_iters=3)
        assert stats.n >= 3


@pytest.mark.cuda
@cuda
def test_cuda_peak_memory_sees_allocation() -> None:
    with PeakMemory("cuda") as mem:
        block = torch.ones(50_000_000, device="cuda")
        del block
    assert mem.kind == "cuda_max_allocated"
    assert mem.peak_mb >= 150


@pytest.mark.cuda
@cuda
def test_cuda_measure_speed_restores_cudnn_flag() -> None:
    previous = torch.backends.cudnn.benchmark
    report = measure_speed(
        tiny_net().cuda(),
        (3, 32, 32),
        gmacs_per_image=4 * 3 * 9 * 32 * 32 / 1e9,
        device="cuda",
        min_iters=3,
        min_time_s=0.0,
        max_batch=4,
        matmul_n=1024,
        cudnn_benchmark=not previous,
    )
    assert report.cudnn_benchmark is (not previous)
    assert torch.backends.cudnn.benchmark is previous
    assert report.peak_mem_kind == "cuda_max_allocated"
    assert report.matmul_gflops_per_s > 0


def test_peak_memory_sees_memory_reused_after_training() -> None:
    """The harness measures memory after training, which leaves freed pages in the C heap; the
    forward pass reuses them, so plain RSS growth read 0.0 MiB here (measured: this network,
    after the same two steps, without the heap trim). With it the batch-1 forward at 256x256
    shows its activations (32 x 256 x 256 float32 = 8 MiB per map, 3-4 alive: ~26-34 MiB)."""
    if not release_free_heap():
        pytest.skip("glibc malloc_trim not available: heap pages cannot be released")
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(3, 32, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(32, 32, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(32, 4, 1),
    )
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    for _ in range(3):  # batch 4: more memory allocated and freed than the forward needs
        loss = net(torch.randn(4, 3, 128, 128)).square().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    del loss
    net.eval()
    with torch.inference_mode(), PeakMemory("cpu") as mem:
        out = net(torch.randn(1, 3, 128, 128))
    del out
    assert mem.trimmed
    assert mem.peak_mb >= 4, mem.peak_mb
