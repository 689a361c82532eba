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
  process-lifetime highs), after returning the C heap's free pages to the OS (glibc
  ``malloc_trim``) so that pages kept from earlier work do not hide the block's own memory. Still
  a lower bound: allocations shorter than the sampling interval can be missed.
* **Efficiency**: achieved GFLOP/s (``2 x GMACs x images/s``) divided by the GFLOP/s of a dense
  GEMM measured on the same device and dtype (:func:`matmul_rate`).
* **Normalised latency** (:func:`measure_relative_latency`): the model's batch-1 latency divided
  by that of a fixed reference network (:func:`reference_net`, ``refnet-v1``) timed alternately
  with it in the same process. Absolute milliseconds drift between runs on a shared machine
  (contention, clock changes, page-fault storms); the ratio drifts much less, so regression
  checks compare it. Minor page faults, threads and CPU affinity are recorded with it.

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


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's ``malloc_trim`` (None on other C libraries)."""
    try:
        import ctypes

        libc = ctypes.CDLL(None)
        trim = libc.malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim


def release_free_heap() -> bool:
    """Return the C heap's free pages to the OS (glibc ``malloc_trim(0)``); False where that is
    not available. Without it, pages freed by earlier work (training, an earlier model) stay
    resident and are reused silently, so a later block's RSS growth reads about zero."""
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True


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
      the interval can be missed; the values on entry and exit are always sampled. On entry the
      C heap's free pages are first returned to the OS (:func:`release_free_heap`, glibc), so
      memory the block allocates shows as RSS growth even where earlier work left freed pages
      behind; ``.trimmed`` says whether that was possible.
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
        self.trimmed = False
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
            self.trimmed = release_free_heap()
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


def cpu_affinity_list() -> list[int] | None:
    """The CPUs this process may run on (``os.sched_getaffinity``), or None where unknown."""
    if hasattr(os, "sched_getaffinity"):
        return sorted(os.sched_getaffinity(0))
    return None


# --------------------------------------------------------------------------------------------
# Normalised speed: latency relative to a fixed reference network, measured interleaved
# --------------------------------------------------------------------------------------------
#
# Why: on a shared or throttled machine the absolute milliseconds of one model drift between
# runs (a 3x spread was measured between processes on the 2-core machine this was written on):
# other processes take the cores, the clock changes, and a whole process can run slower when
# glibc hands freed memory back to the OS so that every call page-faults again. Whatever slows
# the model down at a given moment slows down a similar network timed right next to it in the
# same process about as much, so the ratio of the two varies much less than either. The
# reference is timed alternately with the model in blocks of about equal duration (time slicing
# interrupts a long call more often than a short one), and the figure is the median of the
# per-round ratios. Ratios from different devices, dtypes or thread counts are not comparable:
# compare like with like (bench.regression does).

REFERENCE_NAME = "refnet-v1"
"""Identifier of :func:`reference_net`. Changing the network means a new name (and baselines)."""


def reference_net() -> nn.Module:
    """The fixed reference workload of :func:`measure_relative_latency` (``refnet-v1``).

    A small segmentation-shaped network built from the operators most architectures spend their
    time in: strided 3x3 convolutions, batch norm, ReLU, a dilated convolution, a 1x1 classifier
    and bilinear upsampling back to the input size (0.0246 GMACs per 64x64 image; it scales
    with the input area like the models it is compared with). Weights are seeded without
    touching the global RNG. Returned in eval mode, on the CPU, in float32.
    """

    def block(cin: int, cout: int, stride: int = 1, dilation: int = 1) -> list[nn.Module]:
        return [
            nn.Conv2d(cin, cout, 3, stride, padding=dilation, dilation=dilation, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU(inplace=True),
        ]

    class RefNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.body = nn.Sequential(
                *block(3, 32, stride=2),
                *block(32, 64, stride=2),
                *block(64, 64),
                *block(64, 64, dilation=2),
                nn.Conv2d(64, 8, 1),
            )

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = self.body(x)  # (N, 8, H/4, W/4)
            return nn.functional.interpolate(
                y, size=x.shape[-2:], mode="bilinear", align_corners=False
            )  # (N, 8, H, W)

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        net = RefNet()
    return net.eval()


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


@dataclass(frozen=True)
class RelativeLatency:
    """The model's batch-1 latency relative to :func:`reference_net`, timed interleaved.

    Attributes:
        reference: ``REFERENCE_NAME`` of the reference network.
        ratio: Median over rounds of ``model ms / reference ms`` per call, wall clock (the
            normalised latency that regression checks compare).
        ratio_cv: Coefficient of variation of the per-round wall-clock ratios.
        cpu_time_ratio: The same ratio from the process's CPU time (CPU runs only, else None):
            it ignores time spent waiting for a core, so it is steadier on a shared machine, but
            it also misses a change that makes the model wait or lose parallelism; recorded for
            diagnosis, not compared.
        model_ms: Median model time per call in this phase (ms).
        reference_ms: Median reference time per call in this phase (ms).
        rounds: Timed rounds (one block of model calls and one of reference calls each).
        model_calls: Model calls per block (see :func:`matched_calls`).
        reference_calls: Reference calls per block.
        minor_faults: Minor page faults of the process during the timed rounds.
        threads: ``torch.get_num_threads()`` during the rounds.
        cpu_affinity: The CPUs the process could run on (None where unknown).
    """

    reference: str
    ratio: float
    ratio_cv: float
    cpu_time_ratio: float | None
    model_ms: float
    reference_ms: float
    rounds: int
    model_calls: int
    reference_calls: int
    minor_faults: int
    threads: int
    cpu_affinity: list[int] | None

    def to_dict(self) -> dict[str, Any]:
        """Returns the run record's ``speed.normalised`` object."""
        return {
            "reference": self.reference,
            "latency_ratio": self.ratio,
            "latency_ratio_cv": self.ratio_cv,
            "cpu_time_ratio": self.cpu_time_ratio,
            "model_ms_p50": self.model_ms,
            "reference_ms_p50": self.reference_ms,
            "rounds": self.rounds,
            "model_calls": self.model_calls,
            "reference_calls": self.reference_calls,
            "minor_faults": self.minor_faults,
            "threads": self.threads,
            "cpu_affinity": self.cpu_affinity,
        }


def _timed(step: Callable[[], object], dev: torch.device, calls: int = 1) -> float:
    """Milliseconds per call of ``calls`` back-to-back calls (synchronised on CUDA)."""
    return _timed_both(step, dev, calls)[0]


def _timed_both(step: Callable[[], object], dev: torch.device, calls: int) -> tuple[float, float]:
    """``(wall ms, process CPU ms)`` per call of ``calls`` back-to-back calls."""
    _synchronize(dev)
    c0 = time.process_time()
    t0 = time.perf_counter()
    for _ in range(calls):
        step()
    _synchronize(dev)
    wall = (time.perf_counter() - t0) * 1e3 / calls
    return wall, (time.process_time() - c0) * 1e3 / calls


def _work_ms(step: Callable[[], object], dev: torch.device) -> float:
    """Milliseconds of work in one call: process CPU time on the CPU (time spent waiting for a
    core does not count), synchronised wall time on CUDA."""
    wall, cpu = _timed_both(step, dev, 1)
    return wall if dev.type == "cuda" else max(cpu, 1e-3)


def matched_calls(model_ms: float, reference_ms: float, cap: int = 1000) -> tuple[int, int]:
    """Calls per round ``(model, reference)`` that make both blocks last about as long.

    Under time slicing a long call is interrupted more often than a short one, so a model call
    of 15 ms next to a reference call of 3 ms would not see the same share of interference. The
    shorter network is therefore called ``round(longer / shorter)`` times per round (at most
    ``cap``).

    Args:
        model_ms: A single model call's time (e.g. the fastest of a few).
        reference_ms: A single reference call's time.
        cap: Largest number of calls per block.

    Returns:
        ``(model calls, reference calls)``, one of them 1.

    Raises:
        ValueError: If a time is not finite and positive.
    """
    for name, value in (("model_ms", model_ms), ("reference_ms", reference_ms)):
        if not math.isfinite(value) or value <= 0:
            raise ValueError(f"{name} must be finite and > 0; got {value}.")
    if model_ms >= reference_ms:
        return 1, min(cap, max(1, round(model_ms / reference_ms)))
    return min(cap, max(1, round(reference_ms / model_ms))), 1


def measure_relative_latency(
    model: nn.Module,
    image_shape: tuple[int, int, int],
    *,
    device: str | torch.device = "cpu",
    dtype: str = "fp32",
    channels_last: bool = False,
    warmup: int = 2,
    rounds: int = 15,
    min_time_s: float = 0.0,
    max_rounds: int = 200,
    reference: nn.Module | None = None,
) -> RelativeLatency:
    """Times ``model`` and a reference network alternately; returns the normalised latency.

    After ``warmup`` untimed calls of each, the least of three single calls' work (CPU time on
    the CPU, so that waiting for a core does not count) sets the block sizes
    (:func:`matched_calls`). Each round then times one block of each, in alternating order
    (reference first in even rounds, model first in odd ones), under the same
    ``inference_mode``, autocast dtype and memory format, with the same batch-1 input, for at
    least ``rounds`` rounds and ``min_time_s`` seconds (at most ``max_rounds`` rounds). The
    normalised latency is the median over rounds of ``model ms per call / reference ms per
    call``. See the comment above :data:`REFERENCE_NAME` for why.

    Args:
        model: The module; its parameters and buffers must already be on ``device``. Its
            training flags (and, with ``channels_last``, its tensors) are restored afterwards.
        image_shape: ``(C, H, W)`` of one image; both networks get the same input.
        device: ``"cpu"`` or ``"cuda[:index]"``.
        dtype: ``"fp32"``, ``"fp16"`` (CUDA only) or ``"bf16"``, via autocast.
        channels_last: Run both with channels-last weights and input.
        warmup: Untimed calls of each network first.
        rounds: Minimum number of timed rounds.
        min_time_s: Keep timing rounds until this many seconds passed (fast models get more
            rounds, so a steadier median, at little cost).
        max_rounds: Maximum number of timed rounds (wins over ``min_time_s``).
        reference: The reference network (default :func:`reference_net`, named
            ``REFERENCE_NAME``; another module is named ``"custom:<class name>"``).

    Returns:
        A :class:`RelativeLatency`.

    Raises:
        ValueError: On invalid arguments.
    """
    shape = validate_input_shape(image_shape, rank=3)
    dev = check_model_device(model, device)
    _autocast(dev, dtype)
    if warmup < 0 or rounds < 1 or max_rounds < rounds:
        raise ValueError(
            f"warmup must be >= 0, rounds >= 1 and max_rounds >= rounds; got {warmup}, "
            f"{rounds} and {max_rounds}."
        )
    if not math.isfinite(min_time_s) or min_time_s < 0:
        raise ValueError(f"min_time_s must be finite and >= 0; got {min_time_s}.")
    name = REFERENCE_NAME if reference is None else f"custom:{type(reference).__name__}"
    ref = (reference_net() if reference is None else reference).to(dev)
    model_t: list[tuple[float, float]] = []
    ref_t: list[tuple[float, float]] = []
    with _prepared(model, channels_last), _prepared(ref, channels_last):
        x = _example_input((1, *shape), dev, channels_last)
        with torch.inference_mode(), _autocast(dev, dtype):

            def run_model() -> object:
                return model(x)

            def run_ref() -> object:
                return ref(x)

            for _ in range(warmup):
                run_ref()
                run_model()
            calls_model, calls_ref = matched_calls(
                min(_work_ms(run_model, dev) for _ in range(3)),
                min(_work_ms(run_ref, dev) for _ in range(3)),
            )
            faults_before = _minor_faults()
            start = time.perf_counter()
            while keep_iterating(
                len(model_t),
                time.perf_counter() - start,
                min_iters=rounds,
                max_iters=max_rounds,
                min_time_s=min_time_s,
            ):
                if len(model_t) % 2 == 0:
                    ref_t.append(_timed_both(run_ref, dev, calls_ref))
                    model_t.append(_timed_both(run_model, dev, calls_model))
                else:
                    model_t.append(_timed_both(run_model, dev, calls_model))
                    ref_t.append(_timed_both(run_ref, dev, calls_ref))
            faults = _minor_faults() - faults_before
    model_ms, ref_ms = [w for w, _ in model_t], [w for w, _ in ref_t]
    ratio, cv = paired_ratio(model_ms, ref_ms)
    cpu_ratio = None
    if dev.type == "cpu" and all(c > 0 for _, c in ref_t):
        cpu_ratio = paired_ratio([c for _, c in model_t], [c for _, c in ref_t])[0]
    return RelativeLatency(
        reference=name,
        ratio=ratio,
        ratio_cv=cv,
        cpu_time_ratio=cpu_ratio,
        model_ms=latency_stats(model_ms).p50,
        reference_ms=latency_stats(ref_ms).p50,
        rounds=len(model_t),
        model_calls=calls_model,
        reference_calls=calls_ref,
        minor_faults=faults,
        threads=torch.get_num_threads(),
        cpu_affinity=cpu_affinity_list(),
    )


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
    matmul_gflops_per_s: float | None = None,
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
        matmul_gflops_per_s: A GEMM rate already measured on this device and dtype (e.g. by
            the parent of a child process that runs one architecture); measured with
            :func:`matmul_rate` when None.
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
    gemm = matmul_gflops_per_s or matmul_rate(dev, matmul_n, dtype)
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
