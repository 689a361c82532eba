"""Tests for ``bench.speed.report``: ``measure_speed`` runs every measurement with one
SpeedConfig and returns the run record's ``speed`` object with its documented keys and values."""

from __future__ import annotations

import json
import os

import pytest
import torch
from torch import nn

from bench.errors import ConfigError
from bench.speed import matmul_rate, measure_latency
from bench.speed.config import SpeedConfig
from bench.speed.report import MEMORY_ITERS, measure_speed
from bench.speed.throughput import THROUGHPUT_MIN_ITERS
from tests.factories import device_error, touch_fresh_pages

MIB_64 = 16 * 2**20  # float32 elements in 64 MiB
FAULT_PAGES = 256
GEMM = 100.0  # a given GEMM rate, so efficiency is checked against a known divisor
SMALL = SpeedConfig(warmup=1, min_iters=3, max_iters=10, min_time_s=0.0, max_batch=4)


class Probe(nn.Module):
    """A 3x3 convolution whose forward also touches a 64 MiB tensor (seen by peak memory) and
    ``FAULT_PAGES`` fresh pages (seen by the page-fault count), and records its batch sizes."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.batches: list[int] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.batches.append(x.shape[0])
        scratch = torch.ones(MIB_64)
        touch_fresh_pages(FAULT_PAGES)
        return self.conv(x) + scratch[0]


def cpuinfo_model_name() -> str | None:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        return None
    return None


def test_measure_speed_report() -> None:
    model = Probe().train()
    gmacs = 4 * 3 * 9 * 16 * 16 / 1e9
    report = measure_speed(
        model, (3, 16, 16), SMALL, gmacs_per_image=gmacs, matmul_gflops_per_s=GEMM
    )
    d = report.to_dict()
    assert json.loads(json.dumps(d)) == d
    assert list(d) == [
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
    ]
    assert (d["device"], d["dtype"], d["channels_last"]) == ("cpu", "fp32", False)
    assert d["input_shape"] == [1, 3, 16, 16] and d["batch_size"] == 1
    assert d["latency_ms"]["n"] == 3
    assert [p["batch_size"] for p in d["throughput_sweep"]] == [1, 2, 4]
    assert d["max_batch_fitted"] == 4
    assert d["throughput_ips"] == max(p["images_per_s"] for p in d["throughput_sweep"])
    assert d["achieved_gflops_per_s"] == pytest.approx(2 * gmacs * d["throughput_ips"])
    assert d["matmul_gflops_per_s"] == GEMM
    assert d["efficiency"] == pytest.approx(d["achieved_gflops_per_s"] / GEMM)
    assert d["peak_mem_kind"] == "cpu_rss_delta_sampled"
    assert d["peak_mem_mb"] >= 48  # the 64 MiB each forward touches
    # Faults are counted over the 3 timed batch-1 calls only, each touching FAULT_PAGES pages.
    assert d["minor_faults"] >= 3 * FAULT_PAGES // 2
    assert d["threads"] == torch.get_num_threads()
    assert d["cpu_affinity"] == len(os.sched_getaffinity(0))
    assert d["cudnn_benchmark"] is None
    if cpuinfo_model_name() is not None:
        assert d["device_name"] == cpuinfo_model_name()
    # Order and counts: memory passes, latency (warm-up + min_iters), then per batch size
    # warm-up + THROUGHPUT_MIN_ITERS.
    throughput_calls = [b for b in (1, 2, 4) for _ in range(1 + THROUGHPUT_MIN_ITERS)]
    assert model.batches == [1] * (MEMORY_ITERS + 1 + 3) + throughput_calls
    assert model.training is True


def test_measure_speed_measures_the_gemm_when_not_given() -> None:
    matmul_rate.cache_clear()
    try:
        report = measure_speed(nn.Conv2d(3, 2, 1), (3, 8, 8), SMALL, gmacs_per_image=0.0)
        assert report.matmul_gflops_per_s == matmul_rate("cpu")  # the cached default-size rate
        assert matmul_rate.cache_info().misses == 1
    finally:
        matmul_rate.cache_clear()


def test_measure_speed_rejects_bad_arguments() -> None:
    model = nn.Conv2d(3, 2, 1)
    with pytest.raises(ConfigError, match=device_error("meta")):
        measure_speed(model, (3, 8, 8), SMALL, gmacs_per_image=0.0, device="meta")
    with pytest.raises(ConfigError, match="gmacs_per_image must be finite and >= 0; found -1"):
        measure_speed(model, (3, 8, 8), SMALL, gmacs_per_image=-1.0)
    with pytest.raises(ConfigError, match="'fp16' is only supported on CUDA"):
        measure_speed(model, (3, 8, 8), SpeedConfig(dtype="fp16"), gmacs_per_image=0.0)


@pytest.mark.cuda
def test_cuda_latency_fp16_and_bf16() -> None:
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU()).cuda()
    for dtype in ("fp16", "bf16"):
        config = SpeedConfig(min_iters=3, dtype=dtype)
        assert measure_latency(model, (1, 3, 32, 32), config, device="cuda").n >= 3


@pytest.mark.cuda
def test_cuda_measure_speed_restores_cudnn_flag() -> None:
    previous = torch.backends.cudnn.benchmark
    report = measure_speed(
        nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU()).cuda(),
        (3, 32, 32),
        SpeedConfig(min_iters=3, min_time_s=0.0, max_batch=4),
        gmacs_per_image=4 * 3 * 9 * 32 * 32 / 1e9,
        device="cuda",
        matmul_gflops_per_s=matmul_rate("cuda", n=1024),
        cudnn_benchmark=not previous,
    )
    assert report.cudnn_benchmark is (not previous)
    assert torch.backends.cudnn.benchmark is previous
    assert report.peak_mem_kind == "cuda_max_allocated"
    assert report.device.startswith("cuda:")
