"""Everything together: :func:`measure_speed` and the :class:`SpeedReport` of a run record."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from bench.complexity import validate_input_shape
from bench.devices import device_name
from bench.errors import ConfigError
from bench.speed.config import SpeedConfig
from bench.speed.memory import PeakMemory
from bench.speed.roofline import efficiency, matmul_rate
from bench.speed.statistics import LatencyStats, latency_stats
from bench.speed.throughput import ThroughputResult, batch_sizes_for, throughput_run
from bench.speed.timing import (
    autocast,
    cpu_affinity,
    example_input,
    latency_run,
    model_device,
    prepared,
)

# Untimed batch-1 forward passes inside the peak-memory measurement: more than one, so that the
# CPU sampler (every 2 ms) has several chances to see the peak of a short forward pass.
MEMORY_ITERS = 3


@dataclass(frozen=True)
class SpeedReport:
    """Speed measurements of one model under one condition.

    Attributes:
        device: Device string, e.g. ``"cpu"`` or ``"cuda:0"``.
        device_name: CPU model or CUDA device name.
        dtype: ``"fp32"``, ``"fp16"`` or ``"bf16"``.
        channels_last: Whether weights and inputs were channels-last.
        input_shape: ``(1, C, H, W)`` of the latency measurement.
        batch_size: Batch size of the latency and memory measurements (always 1).
        latency: Batch-1 latency statistics (ms).
        throughput: The throughput sweep.
        peak_mem_mb: Peak memory (MiB) over untimed batch-1 forward passes, see ``peak_mem_kind``.
        peak_mem_kind: One of ``PEAK_MEM_KINDS``.
        achieved_gflops_per_s: ``2 x GMACs x best images/s``.
        efficiency: ``achieved_gflops_per_s / matmul_gflops_per_s``.
        matmul_gflops_per_s: Dense GEMM rate on the same device and dtype.
        threads: ``torch.get_num_threads()`` during the run.
        cpu_affinity: Number of CPUs the process may run on.
        minor_faults: Minor page faults of the process during the timed batch-1 iterations.
        cudnn_benchmark: ``torch.backends.cudnn.benchmark`` used on CUDA; None on CPU.
    """

    device: str
    device_name: str
    dtype: str
    channels_last: bool
    input_shape: tuple[int, int, int, int]
    batch_size: int
    latency: LatencyStats
    throughput: ThroughputResult
    peak_mem_mb: float
    peak_mem_kind: str
    achieved_gflops_per_s: float
    efficiency: float
    matmul_gflops_per_s: float
    threads: int
    cpu_affinity: int
    minor_faults: int
    cudnn_benchmark: bool | None

    def to_dict(self) -> dict[str, Any]:
        """Returns the run record's ``speed`` object (JSON-ready values only)."""
        return {
            "device": self.device,
            "device_name": self.device_name,
            "dtype": self.dtype,
            "channels_last": self.channels_last,
            "input_shape": list(self.input_shape),
            "batch_size": self.batch_size,
            "latency_ms": self.latency.to_dict(),
            "throughput_ips": self.throughput.best_images_per_s,
            "throughput_batch_size": self.throughput.best_batch_size,
            "throughput_sweep": [p.to_dict() for p in self.throughput.points],
            "max_batch_fitted": self.throughput.max_batch_fitted,
            "peak_mem_mb": self.peak_mem_mb,
            "peak_mem_kind": self.peak_mem_kind,
            "achieved_gflops_per_s": self.achieved_gflops_per_s,
            "efficiency": self.efficiency,
            "matmul_gflops_per_s": self.matmul_gflops_per_s,
            "threads": self.threads,
            "cpu_affinity": self.cpu_affinity,
            "minor_faults": self.minor_faults,
            "cudnn_benchmark": self.cudnn_benchmark,
        }


@contextlib.contextmanager
def _cudnn_benchmark(dev: torch.device, enabled: bool) -> Iterator[bool | None]:
    """Sets ``cudnn.benchmark`` on CUDA for the block and restores it; yields the value used."""
    if dev.type != "cuda":
        yield None
        return
    previous = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = enabled
    try:
        yield enabled
    finally:
        torch.backends.cudnn.benchmark = previous


def measure_speed(
    model: nn.Module,
    image_shape: tuple[int, int, int],
    config: SpeedConfig,
    *,
    gmacs_per_image: float,
    device: str | torch.device = "cpu",
    matmul_gflops_per_s: float | None = None,
    batch_sizes: Sequence[int] | None = None,
    cudnn_benchmark: bool = True,
) -> SpeedReport:
    """Measures latency, throughput, peak memory and efficiency of ``model``.

    Order: peak memory over :data:`MEMORY_ITERS` untimed batch-1 forward passes (before
    anything else, so the CPU RSS growth is not hidden by pages kept from the timing runs),
    batch-1 latency, the throughput sweep, and the dense-GEMM reference rate (cached per
    process).

    Args:
        model: The module; its parameters and buffers must already be on ``device``. Its
            training flags and tensors are restored afterwards.
        image_shape: ``(C, H, W)`` of one image.
        config: Every field but ``enabled`` applies: ``warmup`` before each timed loop,
            ``min_iters`` for the latency loop (the throughput points use
            :data:`~bench.speed.throughput.THROUGHPUT_MIN_ITERS`), ``max_iters`` and
            ``min_time_s`` for every loop, ``max_batch``, ``dtype``, ``channels_last``.
        gmacs_per_image: Multiply-accumulates per image in units of 1e9 (from
            ``bench.complexity``), for the achieved-GFLOP/s figure.
        device: ``"cpu"`` or ``"cuda[:index]"``.
        matmul_gflops_per_s: A GEMM rate already measured on this device and dtype (e.g. by
            the parent of a child process that runs one architecture, or with another ``n``);
            measured with :func:`~bench.speed.roofline.matmul_rate`'s default size when None.
        batch_sizes: Explicit throughput batch sizes (overrides ``config.max_batch``).
        cudnn_benchmark: Value of ``torch.backends.cudnn.benchmark`` during the run (CUDA only;
            restored afterwards, and recorded in the report).

    Returns:
        A :class:`SpeedReport`.

    Raises:
        ConfigError: An invalid device, dtype/device combination, batch sizes or GMACs.
        ValueError: An invalid shape, or the model on another device.
        RuntimeError: If the throughput sweep runs out of memory at its first batch size; an
            out-of-memory error of the batch-1 memory or latency passes propagates as raised.
    """
    shape = validate_input_shape(image_shape, rank=3)
    dev = model_device(model, device)
    autocast(dev, config.dtype)
    if not math.isfinite(gmacs_per_image) or gmacs_per_image < 0:
        raise ConfigError(
            f"gmacs_per_image must be finite and >= 0; found {gmacs_per_image}. Fix: pass "
            f"bench.complexity.count_complexity(model, (1, C, H, W)).gmacs."
        )
    sizes = batch_sizes_for(batch_sizes, config.max_batch)
    latency_shape = (1, *shape)

    with (
        _cudnn_benchmark(dev, cudnn_benchmark) as cudnn_used,
        prepared(model, config.channels_last),
    ):
        x = example_input(latency_shape, dev, config.channels_last)
        with torch.inference_mode(), autocast(dev, config.dtype), PeakMemory(dev) as memory:
            for _ in range(MEMORY_ITERS):
                model(x)
        del x
        times, faults = latency_run(model, latency_shape, dev, config)
        throughput = throughput_run(model, shape, dev, config, sizes)
    gemm = matmul_gflops_per_s or matmul_rate(dev, None, config.dtype)
    achieved, eff = efficiency(gmacs_per_image, throughput.best_images_per_s, gemm)
    return SpeedReport(
        device=str(dev),
        device_name=device_name(dev),
        dtype=config.dtype,
        channels_last=config.channels_last,
        input_shape=latency_shape,  # type: ignore[arg-type]  # (1, C, H, W)
        batch_size=1,
        latency=latency_stats(times),
        throughput=throughput,
        peak_mem_mb=memory.peak_mb,
        peak_mem_kind=memory.kind,
        achieved_gflops_per_s=achieved,
        efficiency=eff,
        matmul_gflops_per_s=gemm,
        threads=torch.get_num_threads(),
        cpu_affinity=cpu_affinity(),
        minor_faults=faults,
        cudnn_benchmark=cudnn_used,
    )
