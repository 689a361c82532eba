"""Inference speed of a model: latency, throughput sweep, peak memory and compute efficiency.

What is measured, and how:

* **Latency** (batch 1): per-iteration wall time of ``model(x)`` in eval mode under
  ``torch.inference_mode()``. CPU iterations are timed with ``time.perf_counter``; CUDA iterations
  with a pair of ``torch.cuda.Event(enable_timing=True)`` and a synchronisation after each
  iteration. After ``warmup`` untimed iterations, timing continues until both ``min_iters`` and
  ``min_time_s`` are reached, or ``max_iters`` iterations were timed.
* **Reduced precision**: ``"fp16"``/``"bf16"`` run under ``torch.autocast`` (CUDA: both; CPU:
  ``bf16`` only, ``fp16`` raises ``ValueError``). The autocast context spans all iterations of one
  measurement, so autocast's weight-cast cache is reused between iterations, approximating a model
  converted once.
* **Throughput**: images/s at batch sizes 1, 2, 4, ... up to ``max_batch``. An out-of-memory
  error stops the doubling; the largest batch that fitted is reported.
* **Peak memory** (:class:`PeakMemory`): CUDA ``max_memory_allocated`` (absolute, weights
  included); on CPU the growth of the resident set size over the value on entry, sampled by a
  background thread from ``/proc/self/statm`` (fallback: ``ru_maxrss`` delta, which only sees new
  process-lifetime highs). The CPU figure is a lower bound on working memory: pages the allocator
  kept from earlier work are reused without growing the RSS.
* **Efficiency**: achieved GFLOP/s (``2 x GMACs x images/s``) divided by the GFLOP/s of a dense
  GEMM measured on the same device and dtype (:func:`matmul_rate`).

Sizes in MB are MiB (2**20 bytes). Backend flags (``cudnn.benchmark``) are not touched at import;
:func:`measure_speed` sets ``cudnn.benchmark`` for its own duration on CUDA only, restores it, and
reports the value used.

This module is pure measurement: modules in, numbers out. It imports neither datasets nor
training code.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import math
import os
import platform
import resource
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import torch
from torch import nn

from bench.complexity import (
    check_model_device,
    evaluating,
    macs_to_gflops,
    validate_input_shape,
)

DTYPES: dict[str, torch.dtype] = {
    "fp32": torch.float32,
    "fp16": torch.float16,
    "bf16": torch.bfloat16,
}
PEAK_MEM_KINDS = ("cuda_max_allocated", "cpu_rss_delta_sampled", "cpu_maxrss_delta")
_MIB = float(2**20)
_OOM_MESSAGES = ("out of memory", "can't allocate memory")


# --------------------------------------------------------------------------------------------
# Statistics (pure)
# --------------------------------------------------------------------------------------------


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


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Percentile by linear interpolation between closest ranks (NumPy's default method).

    Args:
        sorted_values: Non-empty values in ascending order.
        q: Percentile in ``[0, 100]``.

    Returns:
        The value at rank ``q / 100 * (n - 1)``, interpolated linearly.

    Raises:
        ValueError: If ``sorted_values`` is empty or ``q`` is outside ``[0, 100]``.
    """
    if not sorted_values:
        raise ValueError("percentile of an empty sequence is undefined.")
    if not 0.0 <= q <= 100.0:
        raise ValueError(f"percentile q must be in [0, 100]; got {q}.")
    rank = q / 100.0 * (len(sorted_values) - 1)
    lo = math.floor(rank)
    hi = min(lo + 1, len(sorted_values) - 1)
    frac = rank - lo
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * frac


def latency_stats(times_ms: Sequence[float]) -> LatencyStats:
    """Summarises per-iteration times.

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
    ordered = sorted(values)
    return LatencyStats(
        p50=percentile(ordered, 50),
        p90=percentile(ordered, 90),
        p99=percentile(ordered, 99),
        mean=mean,
        std=std,
        cv=std / mean,
        n=n,
    )


def keep_iterating(
    n_done: int, elapsed_s: float, *, min_iters: int, max_iters: int, min_time_s: float
) -> bool:
    """The stopping rule of every timing loop in this module.

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


def doubling_batch_sizes(max_batch: int) -> list[int]:
    """Returns ``[1, 2, 4, ...]`` up to and including the largest power of two <= ``max_batch``.

    Args:
        max_batch: Largest batch size to try (>= 1).

    Returns:
        The batch sizes of a throughput sweep.

    Raises:
        ValueError: If ``max_batch`` is not a positive int.
    """
    if not isinstance(max_batch, int) or isinstance(max_batch, bool) or max_batch < 1:
        raise ValueError(f"max_batch must be a positive int; got {max_batch!r}.")
    sizes = [1]
    while sizes[-1] * 2 <= max_batch:
        sizes.append(sizes[-1] * 2)
    return sizes


def is_oom_error(exc: BaseException) -> bool:
    """Whether ``exc`` is an out-of-memory error.

    Recognises ``torch.cuda.OutOfMemoryError``, ``MemoryError``, and ``RuntimeError`` messages
    containing "out of memory" or "can't allocate memory" (PyTorch's CPU allocator).

    Args:
        exc: The exception to classify.

    Returns:
        True for an out-of-memory error.
    """
    if isinstance(exc, (torch.cuda.OutOfMemoryError, MemoryError)):
        return True
    return isinstance(exc, RuntimeError) and any(m in str(exc).lower() for m in _OOM_MESSAGES)


# --------------------------------------------------------------------------------------------
# Devices, dtypes and model preparation
# --------------------------------------------------------------------------------------------


def _autocast(dev: torch.device, dtype: str) -> contextlib.AbstractContextManager[Any]:
    """Returns the autocast context for ``dtype`` on ``dev`` (validating the combination)."""
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {sorted(DTYPES)}; got {dtype!r}.")
    if dtype == "fp32":
        return contextlib.nullcontext()
    if dev.type == "cpu" and dtype == "fp16":
        raise ValueError(
            "dtype 'fp16' is only supported on CUDA (CPU autocast to float16 is not a meaningful "
            "deployment target); use dtype='bf16' or 'fp32' on CPU, or device='cuda'."
        )
    return torch.autocast(device_type=dev.type, dtype=DTYPES[dtype])


def _validate_iteration_args(
    warmup: int, min_iters: int, max_iters: int, min_time_s: float
) -> None:
    if warmup < 0:
        raise ValueError(f"warmup must be >= 0; got {warmup}.")
    if min_iters < 1:
        raise ValueError(f"min_iters must be >= 1; got {min_iters}.")
    if max_iters < min_iters:
        raise ValueError(f"max_iters ({max_iters}) must be >= min_iters ({min_iters}).")
    if not math.isfinite(min_time_s) or min_time_s < 0:
        raise ValueError(f"min_time_s must be finite and >= 0; got {min_time_s}.")


def _synchronize(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def _release_memory(dev: torch.device) -> None:
    gc.collect()
    if dev.type == "cuda":
        torch.cuda.empty_cache()


def _example_input(shape: tuple[int, ...], dev: torch.device, channels_last: bool) -> torch.Tensor:
    """A seeded random input; random rather than zeros so no kernel can exploit sparsity."""
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(shape, generator=generator).to(dev)
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x


@contextlib.contextmanager
def _prepared(model: nn.Module, channels_last: bool) -> Iterator[nn.Module]:
    """Eval mode (+ channels-last weights), restoring flags and the original tensors on exit."""
    with evaluating(model):
        if not channels_last:
            yield model
            return
        saved_params = [
            (p, p.data) for m in model.modules() for p in m._parameters.values() if p is not None
        ]
        saved_buffers = [(m, dict(m._buffers)) for m in model.modules()]
        model.to(memory_format=torch.channels_last)
        try:
            yield model
        finally:
            for param, data in saved_params:
                param.data = data
            for module, buffers in saved_buffers:
                module._buffers.update(buffers)


def _minor_faults() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def _time_iterations(
    step: Callable[[], object],
    dev: torch.device,
    *,
    warmup: int,
    min_iters: int,
    max_iters: int,
    min_time_s: float,
) -> tuple[list[float], int]:
    """Runs ``step`` ``warmup`` times, then times it under :func:`keep_iterating`.

    Returns:
        ``(times_ms, minor_faults)``: per-iteration times and the process's minor page faults
        during the timed iterations.
    """
    for _ in range(warmup):
        step()
    _synchronize(dev)
    times: list[float] = []
    events = (
        (torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True))
        if dev.type == "cuda"
        else None
    )
    faults_before = _minor_faults()
    loop_start = time.perf_counter()
    while keep_iterating(
        len(times),
        time.perf_counter() - loop_start,
        min_iters=min_iters,
        max_iters=max_iters,
        min_time_s=min_time_s,
    ):
        if events is not None:
            start_evt, end_evt = events
            start_evt.record()
            step()
            end_evt.record()
            end_evt.synchronize()
            times.append(float(start_evt.elapsed_time(end_evt)))
        else:
            t0 = time.perf_counter()
            step()
            times.append((time.perf_counter() - t0) * 1e3)
    return times, _minor_faults() - faults_before


def _latency_run(
    model: nn.Module,
    shape: tuple[int, ...],
    dev: torch.device,
    dtype: str,
    channels_last: bool,
    *,
    warmup: int,
    min_iters: int,
    max_iters: int,
    min_time_s: float,
) -> tuple[list[float], int]:
    """Latency loop on an already prepared model."""
    x = _example_input(shape, dev, channels_last)
    with torch.inference_mode(), _autocast(dev, dtype):
        return _time_iterations(
            lambda: model(x),
            dev,
            warmup=warmup,
            min_iters=min_iters,
            max_iters=max_iters,
            min_time_s=min_time_s,
        )


# --------------------------------------------------------------------------------------------
# Latency
# --------------------------------------------------------------------------------------------


def measure_latency(
    model: nn.Module,
    input_shape: tuple[int, int, int, int],
    *,
    device: str | torch.device = "cpu",
    dtype: str = "fp32",
    channels_last: bool = False,
    warmup: int = 5,
    min_iters: int = 10,
    max_iters: int = 200,
    min_time_s: float = 1.0,
) -> LatencyStats:
    """Measures the per-forward latency of ``model`` at ``input_shape``.

    Args:
        model: The module; its parameters and buffers must already be on ``device``. It is run in
            eval mode; its training flags (and, with ``channels_last``, its tensors) are restored.
        input_shape: ``(N, C, H, W)`` of the input.
        device: ``"cpu"`` or ``"cuda[:index]"``.
        dtype: ``"fp32"``, ``"fp16"`` (CUDA only) or ``"bf16"``, via autocast.
        channels_last: Run with channels-last weights and input.
        warmup: Untimed iterations first.
        min_iters: Minimum timed iterations.
        max_iters: Maximum timed iterations (wins over ``min_time_s``).
        min_time_s: Minimum total timing duration in seconds.

    Returns:
        A :class:`LatencyStats` in milliseconds.

    Raises:
        ValueError: On an invalid shape, device, dtype/device combination or iteration bounds.
    """
    shape = validate_input_shape(input_shape)
    dev = check_model_device(model, device)
    _autocast(dev, dtype)  # validate before doing any work
    _validate_iteration_args(warmup, min_iters, max_iters, min_time_s)
    with _prepared(model, channels_last):
        times, _ = _latency_run(
            model,
            shape,
            dev,
            dtype,
            channels_last,
            warmup=warmup,
            min_iters=min_iters,
            max_iters=max_iters,
            min_time_s=min_time_s,
        )
    return latency_stats(times)


# --------------------------------------------------------------------------------------------
# Throughput
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ThroughputPoint:
    """One batch size of a throughput sweep.

    Attributes:
        batch_size: Images per forward pass.
        images_per_s: Measured throughput, or None when the batch ran out of memory.
        oom: Whether this batch size ran out of memory.
    """

    batch_size: int
    images_per_s: float | None
    oom: bool

    def to_dict(self) -> dict[str, Any]:
        """Returns ``{batch_size, images_per_s, oom}``."""
        return {"batch_size": self.batch_size, "images_per_s": self.images_per_s, "oom": self.oom}


@dataclass(frozen=True)
class ThroughputResult:
    """Result of :func:`throughput_sweep`.

    Attributes:
        points: One entry per batch size tried, in order; an OOM entry, if any, is last.
        best_images_per_s: Highest throughput measured.
        best_batch_size: Batch size that gave ``best_images_per_s``.
        max_batch_fitted: Largest batch size that ran without running out of memory.
    """

    points: tuple[ThroughputPoint, ...]
    best_images_per_s: float
    best_batch_size: int
    max_batch_fitted: int

    def to_dict(self) -> dict[str, Any]:
        """Returns the sweep as JSON-ready values."""
        return {
            "sweep": [p.to_dict() for p in self.points],
            "best_images_per_s": self.best_images_per_s,
            "best_batch_size": self.best_batch_size,
            "max_batch_fitted": self.max_batch_fitted,
        }


def _throughput_run(
    model: nn.Module,
    image_shape: tuple[int, ...],
    dev: torch.device,
    dtype: str,
    channels_last: bool,
    sizes: Sequence[int],
    *,
    warmup: int,
    min_iters: int,
    max_iters: int,
    min_time_s: float,
) -> ThroughputResult:
    """Throughput sweep on an already prepared model."""
    points: list[ThroughputPoint] = []
    for batch in sizes:
        oom = False
        x: torch.Tensor | None = None
        try:
            x = _example_input((batch, *image_shape), dev, channels_last)
            with torch.inference_mode(), _autocast(dev, dtype):
                times, _ = _time_iterations(
                    lambda x=x: model(x),
                    dev,
                    warmup=warmup,
                    min_iters=min_iters,
                    max_iters=max_iters,
                    min_time_s=min_time_s,
                )
        except Exception as exc:
            if not is_oom_error(exc):
                raise
            if not points:
                raise RuntimeError(
                    f"{type(model).__name__} ran out of memory at batch size {batch}, the "
                    f"smallest in the sweep, for images of shape {tuple(image_shape)} on {dev}."
                ) from exc
            oom = True
        x = None  # drop this batch's input before the next batch or the cache release
        if oom:
            # The exception (and the tensors its traceback held) is gone here; free the cache.
            _release_memory(dev)
            points.append(ThroughputPoint(batch_size=batch, images_per_s=None, oom=True))
            break
        total_s = sum(times) / 1e3
        if total_s <= 0:
            raise RuntimeError(
                f"timer reported zero total time at batch size {batch}; raise min_time_s."
            )
        points.append(
            ThroughputPoint(
                batch_size=batch,
                images_per_s=batch * len(times) / total_s,
                oom=False,
            )
        )
    fitted = [p for p in points if not p.oom]
    best = max(fitted, key=lambda p: p.images_per_s or 0.0)
    return ThroughputResult(
        points=tuple(points),
        best_images_per_s=float(best.images_per_s or 0.0),
        best_batch_size=best.batch_size,
        max_batch_fitted=fitted[-1].batch_size,
    )


def throughput_sweep(
    model: nn.Module,
    image_shape: tuple[int, int, int],
    *,
    device: str | torch.device = "cpu",
    dtype: str = "fp32",
    channels_last: bool = False,
    batch_sizes: Sequence[int] | None = None,
    max_batch: int = 64,
    warmup: int = 2,
    min_iters: int = 3,
    max_iters: int = 50,
    min_time_s: float = 0.5,
) -> ThroughputResult:
    """Measures images/s over increasing batch sizes, backing off at the first out-of-memory.

    At each batch size the model runs ``warmup`` untimed iterations and then is timed as in
    :func:`measure_latency`; images/s = ``batch x iterations / total time``. On an out-of-memory
    error (see :func:`is_oom_error`) the sweep records it for that batch, frees the allocator
    cache, and stops.

    Args:
        model: The module; its parameters and buffers must already be on ``device``.
        image_shape: ``(C, H, W)`` of one image.
        device: ``"cpu"`` or ``"cuda[:index]"``.
        dtype: ``"fp32"``, ``"fp16"`` (CUDA only) or ``"bf16"``, via autocast.
        channels_last: Run with channels-last weights and input.
        batch_sizes: Strictly increasing batch sizes to try; default
            :func:`doubling_batch_sizes` of ``max_batch``.
        max_batch: Largest batch of the default doubling sweep.
        warmup: Untimed iterations per batch size.
        min_iters: Minimum timed iterations per batch size.
        max_iters: Maximum timed iterations per batch size.
        min_time_s: Minimum timing duration per batch size, in seconds.

    Returns:
        A :class:`ThroughputResult`.

    Raises:
        ValueError: On invalid arguments.
        RuntimeError: If even the first batch size runs out of memory (the OOM is chained).
    """
    shape = validate_input_shape(image_shape, rank=3)
    dev = check_model_device(model, device)
    _autocast(dev, dtype)
    _validate_iteration_args(warmup, min_iters, max_iters, min_time_s)
    sizes = _validate_batch_sizes(batch_sizes, max_batch)
    with _prepared(model, channels_last):
        return _throughput_run(
            model,
            shape,
            dev,
            dtype,
            channels_last,
            sizes,
            warmup=warmup,
            min_iters=min_iters,
            max_iters=max_iters,
            min_time_s=min_time_s,
        )


def _validate_batch_sizes(batch_sizes: Sequence[int] | None, max_batch: int) -> list[int]:
    if batch_sizes is None:
        return doubling_batch_sizes(max_batch)
    sizes = list(batch_sizes)
    valid = all(isinstance(b, int) and not isinstance(b, bool) and b > 0 for b in sizes)
    if not sizes or not valid or any(a >= b for a, b in zip(sizes, sizes[1:], strict=False)):
        raise ValueError(
            f"batch_sizes must be a non-empty, strictly increasing list of positive ints; "
            f"got {batch_sizes!r}."
        )
    return sizes


# --------------------------------------------------------------------------------------------
# Peak memory
# --------------------------------------------------------------------------------------------


def _statm_rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        resident_pages = int(f.read().split()[1])
    return resident_pages * os.sysconf("SC_PAGE_SIZE")


def _maxrss_bytes() -> int:
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return maxrss if sys.platform == "darwin" else maxrss * 1024  # Linux reports KiB


class PeakMemory:
    """Context manager measuring peak memory of the code inside it.

    Kinds (``.kind``):

    * ``"cuda_max_allocated"``: ``torch.cuda.max_memory_allocated`` after resetting the peak on
      entry; absolute, so it includes the model's weights and any tensor alive on entry.
    * ``"cpu_rss_delta_sampled"``: maximum resident set size seen by a background thread reading
      ``/proc/self/statm`` every ``interval_s``, minus the RSS on entry. Allocations shorter than
      the interval can be missed; the values on entry and exit are always sampled.
    * ``"cpu_maxrss_delta"``: growth of ``ru_maxrss`` (the process-lifetime high-water mark);
      zero unless the block sets a new high for the process. Used where ``/proc`` is missing.

    Example:
        >>> with PeakMemory("cpu") as mem:
        ...     x = torch.ones(1024, 1024)
        >>> mem.kind
        'cpu_rss_delta_sampled'

    Args:
        device: ``"cpu"`` or ``"cuda[:index]"``.
        interval_s: Sampling interval of the CPU background thread.
        cpu_method: ``"auto"`` (sampled where ``/proc/self/statm`` is readable), ``"sampled"``
            or ``"maxrss"``.
    """

    def __init__(
        self,
        device: str | torch.device = "cpu",
        *,
        interval_s: float = 0.002,
        cpu_method: str = "auto",
    ) -> None:
        self._dev = torch.device(device)
        if self._dev.type not in ("cpu", "cuda"):
            raise ValueError(f"device must be 'cpu' or 'cuda[:index]'; got {str(device)!r}.")
        if cpu_method not in ("auto", "sampled", "maxrss"):
            raise ValueError(
                f"cpu_method must be 'auto', 'sampled' or 'maxrss'; got {cpu_method!r}."
            )
        if not interval_s > 0:
            raise ValueError(f"interval_s must be > 0; got {interval_s}.")
        self._interval_s = interval_s
        if self._dev.type == "cuda":
            self.kind = "cuda_max_allocated"
        elif cpu_method == "maxrss" or (
            cpu_method == "auto" and not os.access("/proc/self/statm", os.R_OK)
        ):
            self.kind = "cpu_maxrss_delta"
        else:
            self.kind = "cpu_rss_delta_sampled"
        self._peak_mb: float | None = None
        self._baseline = 0
        self._peak_bytes = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def peak_mb(self) -> float:
        """Peak memory in MiB (see the class docstring for what each kind means).

        Raises:
            RuntimeError: If read before the ``with`` block has exited.
        """
        if self._peak_mb is None:
            raise RuntimeError("PeakMemory.peak_mb is available after the with-block exits.")
        return self._peak_mb

    def _sample(self) -> None:
        while not self._stop.wait(self._interval_s):
            self._peak_bytes = max(self._peak_bytes, _statm_rss_bytes())

    def __enter__(self) -> PeakMemory:
        self._peak_mb = None
        if self.kind == "cuda_max_allocated":
            torch.cuda.synchronize(self._dev)
            torch.cuda.reset_peak_memory_stats(self._dev)
        elif self.kind == "cpu_maxrss_delta":
            self._baseline = _maxrss_bytes()
        else:
            self._baseline = self._peak_bytes = _statm_rss_bytes()
            self._stop.clear()
            self._thread = threading.Thread(target=self._sample, name="PeakMemory", daemon=True)
            self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.kind == "cuda_max_allocated":
            torch.cuda.synchronize(self._dev)
            self._peak_mb = torch.cuda.max_memory_allocated(self._dev) / _MIB
        elif self.kind == "cpu_maxrss_delta":
            self._peak_mb = max(0, _maxrss_bytes() - self._baseline) / _MIB
        else:
            self._stop.set()
            if self._thread is not None:
                self._thread.join()
                self._thread = None
            self._peak_bytes = max(self._peak_bytes, _statm_rss_bytes())
            self._peak_mb = max(0, self._peak_bytes - self._baseline) / _MIB


# --------------------------------------------------------------------------------------------
# Dense GEMM reference rate
# --------------------------------------------------------------------------------------------


@functools.cache
def _matmul_rate_cached(device: str, n: int, dtype: str, min_time_s: float) -> float:
    dev = torch.device(device)
    generator = torch.Generator().manual_seed(0)
    a = torch.randn(n, n, generator=generator).to(dev, DTYPES[dtype])
    b = torch.randn(n, n, generator=generator).to(dev, DTYPES[dtype])
    out = torch.empty_like(a)
    torch.mm(a, b, out=out)  # warm-up: thread pool, kernel selection
    _synchronize(dev)
    iters = 0
    start = time.perf_counter()
    elapsed = 0.0
    while keep_iterating(iters, elapsed, min_iters=3, max_iters=10**9, min_time_s=min_time_s):
        torch.mm(a, b, out=out)
        _synchronize(dev)
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
    (``"cuda"`` -> ``"cuda:<current>"``, default ``n``); clear it with ``matmul_rate.cache_clear()``.
    On CUDA the fp32 rate depends on the TF32 setting in force, which this function leaves alone.

    Args:
        device: ``"cpu"`` or ``"cuda[:index]"``.
        n: Matrix size; default 2048 on CPU and 8192 on CUDA.
        dtype: ``"fp32"``, ``"bf16"`` or ``"fp16"`` (CUDA only).
        min_time_s: Minimum timing duration (at least 3 GEMMs are timed after one warm-up).

    Returns:
        Achieved GFLOP/s.

    Raises:
        ValueError: On an unknown device type or dtype, fp16 on CPU, or a non-positive ``n``.
    """
    dev = torch.device(device)
    if dev.type not in ("cpu", "cuda"):
        raise ValueError(f"device must be 'cpu' or 'cuda[:index]'; got {str(device)!r}.")
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {str(device)!r} requested, but CUDA is not available here.")
    if dev.type == "cuda" and dev.index is None:
        dev = torch.device("cuda", torch.cuda.current_device())
    _autocast(dev, dtype)  # same dtype rules as the model measurements
    size = n if n is not None else (8192 if dev.type == "cuda" else 2048)
    if size < 1:
        raise ValueError(f"n must be a positive int; got {n}.")
    if not math.isfinite(min_time_s) or min_time_s < 0:
        raise ValueError(f"min_time_s must be finite and >= 0; got {min_time_s}.")
    return _matmul_rate_cached(str(dev), size, dtype, float(min_time_s))


matmul_rate.cache_clear = _matmul_rate_cached.cache_clear  # type: ignore[attr-defined]
matmul_rate.cache_info = _matmul_rate_cached.cache_info  # type: ignore[attr-defined]


# --------------------------------------------------------------------------------------------
# Environment
# --------------------------------------------------------------------------------------------


def device_name(device: str | torch.device = "cpu") -> str:
    """Human-readable device name: the CUDA device name or the CPU model from ``/proc/cpuinfo``.

    Args:
        device: ``"cpu"`` or ``"cuda[:index]"``.

    Returns:
        E.g. ``"NVIDIA H100 80GB HBM3"`` or ``"AMD EPYC 7B13"``; ``platform.processor()`` or
        ``"unknown CPU"`` where ``/proc/cpuinfo`` has no model name.
    """
    dev = torch.device(device)
    if dev.type == "cuda":
        return torch.cuda.get_device_name(dev)
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def cpu_affinity() -> int:
    """Number of CPUs this process may run on (``os.sched_getaffinity``, else ``os.cpu_count``)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


# --------------------------------------------------------------------------------------------
# Everything together
# --------------------------------------------------------------------------------------------


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
    *,
    gmacs_per_image: float,
    device: str | torch.device = "cpu",
    dtype: str = "fp32",
    channels_last: bool = False,
    warmup: int = 5,
    min_iters: int = 10,
    max_iters: int = 200,
    min_time_s: float = 1.0,
    max_batch: int = 64,
    batch_sizes: Sequence[int] | None = None,
    throughput_min_iters: int = 3,
    memory_iters: int = 3,
    matmul_n: int | None = None,
    cudnn_benchmark: bool = True,
) -> SpeedReport:
    """Measures latency, throughput, peak memory and efficiency of ``model``.

    Order: peak memory over ``memory_iters`` untimed batch-1 forward passes (before anything
    else, so the CPU RSS growth is not hidden by pages kept from the timing runs), batch-1
    latency, the throughput sweep, and the dense-GEMM reference rate (cached per process).

    Args:
        model: The module; its parameters and buffers must already be on ``device``. Its
            training flags and tensors are restored afterwards.
        image_shape: ``(C, H, W)`` of one image.
        gmacs_per_image: Multiply-accumulates per image in units of 1e9 (from
            ``bench.complexity``), for the achieved-GFLOP/s figure.
        device: ``"cpu"`` or ``"cuda[:index]"``.
        dtype: ``"fp32"``, ``"fp16"`` (CUDA only) or ``"bf16"``, via autocast.
        channels_last: Run with channels-last weights and input.
        warmup: Untimed iterations before each timed loop.
        min_iters: Minimum timed iterations of the latency loop.
        max_iters: Maximum timed iterations of every loop.
        min_time_s: Minimum timing duration of each loop, in seconds.
        max_batch: Largest batch of the throughput sweep.
        batch_sizes: Explicit throughput batch sizes (overrides ``max_batch``).
        throughput_min_iters: Minimum timed iterations per throughput batch size.
        memory_iters: Forward passes inside the peak-memory measurement.
        matmul_n: GEMM size for :func:`matmul_rate` (default by device).
        cudnn_benchmark: Value of ``torch.backends.cudnn.benchmark`` during the run (CUDA only;
            restored afterwards).

    Returns:
        A :class:`SpeedReport`.

    Raises:
        ValueError: On invalid arguments.
        RuntimeError: If the throughput sweep runs out of memory at its first batch size; an
            out-of-memory error of the batch-1 memory or latency passes propagates as raised.
    """
    shape = validate_input_shape(image_shape, rank=3)
    dev = check_model_device(model, device)
    _autocast(dev, dtype)
    _validate_iteration_args(warmup, min_iters, max_iters, min_time_s)
    _validate_iteration_args(warmup, throughput_min_iters, max_iters, min_time_s)
    if memory_iters < 1:
        raise ValueError(f"memory_iters must be >= 1; got {memory_iters}.")
    if not math.isfinite(gmacs_per_image) or gmacs_per_image < 0:
        raise ValueError(f"gmacs_per_image must be finite and >= 0; got {gmacs_per_image}.")
    sizes = _validate_batch_sizes(batch_sizes, max_batch)
    latency_shape = (1, *shape)

    with _cudnn_benchmark(dev, cudnn_benchmark) as cudnn_used, _prepared(model, channels_last):
        x = _example_input(latency_shape, dev, channels_last)
        with torch.inference_mode(), _autocast(dev, dtype), PeakMemory(dev) as memory:
            for _ in range(memory_iters):
                model(x)
        del x
        times, faults = _latency_run(
            model,
            latency_shape,
            dev,
            dtype,
            channels_last,
            warmup=warmup,
            min_iters=min_iters,
            max_iters=max_iters,
            min_time_s=min_time_s,
        )
        throughput = _throughput_run(
            model,
            shape,
            dev,
            dtype,
            channels_last,
            sizes,
            warmup=warmup,
            min_iters=throughput_min_iters,
            max_iters=max_iters,
            min_time_s=min_time_s,
        )
    gemm = matmul_rate(dev, matmul_n, dtype)
    achieved, eff = efficiency(gmacs_per_image, throughput.best_images_per_s, gemm)
    return SpeedReport(
        device=str(dev),
        device_name=device_name(dev),
        dtype=dtype,
        channels_last=channels_last,
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
