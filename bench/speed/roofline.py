"""Compute efficiency: achieved GFLOP/s against a dense GEMM measured on the same device.

The GEMM loop is the package's own (:func:`~bench.speed.statistics.keep_iterating`, at least 3
GEMMs after one warm-up) rather than ``torch.utils.benchmark.Timer``, whose one-thread default
and time-only stopping rule would change the reference rate that efficiency divides by.
"""

from __future__ import annotations

import functools
import math
import time

import torch

from bench.complexity import macs_to_gflops
from bench.devices import parse_device
from bench.speed.statistics import keep_iterating
from bench.speed.timing import DTYPES, autocast, synchronise
from bench.validation import require_float, require_int


def efficiency(
    gmacs_per_image: float, images_per_s: float, matmul_gflops: float
) -> tuple[float, float]:
    """Achieved compute rate and its fraction of the dense-GEMM rate.

    Args:
        gmacs_per_image: Multiply-accumulates per image, in units of 1e9.
        images_per_s: Measured throughput.
        matmul_gflops: GFLOP/s of a dense GEMM on the same device (:func:`matmul_rate`).

    Returns:
        ``(achieved_gflops_per_s, achieved / matmul_gflops)`` where achieved is
        ``2 x gmacs_per_image x images_per_s`` (via ``macs_to_gflops``).

    Raises:
        ValueError: If an input is negative or non-finite, or ``matmul_gflops`` is not positive.
    """
    for name, value in (("gmacs_per_image", gmacs_per_image), ("images_per_s", images_per_s)):
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"{name} must be finite and >= 0; got {value}.")
    if not math.isfinite(matmul_gflops) or matmul_gflops <= 0:
        raise ValueError(f"matmul_gflops must be finite and > 0; got {matmul_gflops}.")
    achieved = macs_to_gflops(gmacs_per_image * 1e9 * images_per_s)
    return achieved, achieved / matmul_gflops


@functools.cache
def _matmul_rate_cached(device: str, n: int, dtype: str, min_time_s: float) -> float:
    dev = torch.device(device)
    generator = torch.Generator().manual_seed(0)
    a = torch.randn(n, n, generator=generator).to(dev, DTYPES[dtype])
    b = torch.randn(n, n, generator=generator).to(dev, DTYPES[dtype])
    out = torch.empty_like(a)
    torch.mm(a, b, out=out)  # warm-up: thread pool, kernel selection
    synchronise(dev)
    iters = 0
    start = time.perf_counter()
    elapsed = 0.0
    while keep_iterating(iters, elapsed, min_iters=3, max_iters=10**9, min_time_s=min_time_s):
        torch.mm(a, b, out=out)
        synchronise(dev)
        iters += 1
        elapsed = time.perf_counter() - start
    return 2.0 * n**3 * iters / elapsed / 1e9


def matmul_rate(
    device: str | torch.device = "cpu",
    n: int | None = None,
    dtype: str = "fp32",
    min_time_s: float = 0.5,
) -> float:
    """GFLOP/s of a dense ``n x n`` GEMM (``2 n^3`` FLOPs each), measured once per process.

    The result is cached per ``(device, n, dtype, min_time_s)`` after normalising the arguments
    (``"cuda"`` -> ``"cuda:<current>"``, default ``n``); clear it with
    ``matmul_rate.cache_clear()``. On CUDA the fp32 rate depends on the TF32 setting in force,
    which this function leaves alone.

    Args:
        device: ``"cpu"`` or ``"cuda[:index]"``.
        n: Matrix size; default 2048 on CPU and 8192 on CUDA.
        dtype: ``"fp32"``, ``"bf16"`` or ``"fp16"`` (CUDA only).
        min_time_s: Minimum timing duration (at least 3 GEMMs are timed after one warm-up).

    Returns:
        Achieved GFLOP/s.

    Raises:
        ConfigError: On an unknown device or dtype, fp16 on CPU, a non-positive ``n`` or a
            negative ``min_time_s``.
    """
    dev = parse_device(device)
    autocast(dev, dtype)  # same dtype rules as the model measurements
    if n is not None:
        require_int("n", n, minimum=1)
    require_float(
        "min_time_s",
        min_time_s,
        minimum=0.0,
        unit="seconds",
        fix="Fix: set min_time_s to 0 or a positive number such as 1.0.",
    )
    size = n if n is not None else (8192 if dev.type == "cuda" else 2048)
    return _matmul_rate_cached(str(dev), size, dtype, float(min_time_s))


matmul_rate.cache_clear = _matmul_rate_cached.cache_clear  # type: ignore[attr-defined]
matmul_rate.cache_info = _matmul_rate_cached.cache_info  # type: ignore[attr-defined]
