"""Timing loops: autocast, synchronisation, timed iterations and the batch-1 latency.

CPU iterations are timed with ``time.perf_counter``; CUDA iterations with a pair of
``torch.cuda.Event(enable_timing=True)`` and a synchronisation after each iteration. After
``warmup`` untimed iterations, timing continues under
:func:`~bench.speed.statistics.keep_iterating`.

``torch.utils.benchmark.Timer`` is not used: it reports means over blocks of calls rather than
each call's time (so no p90/p99/CV of single forwards), runs with one thread unless told
otherwise, and cannot express the ``min_iters``/``min_time_s``/``max_iters`` rule, the
minor-fault count or the interleaved model/reference rounds of the normalised latency.

Every clock read of the model timing loops goes through this module's ``time`` (:func:`now`,
:func:`timed_both`, :func:`time_iterations`), so a test can drive them with one fake clock.
"""

from __future__ import annotations

import contextlib
import os
import resource
import time
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import nn

from bench.complexity import check_model_device, evaluating, validate_input_shape
from bench.devices import parse_device
from bench.errors import ConfigError
from bench.speed.config import SpeedConfig
from bench.speed.statistics import LatencyStats, keep_iterating, latency_stats

DTYPES: dict[str, torch.dtype] = {
    "fp32": torch.float32,
    "fp16": torch.float16,
    "bf16": torch.bfloat16,
}


def now() -> float:
    """``time.perf_counter()``, the wall clock of every timing loop, in seconds."""
    return time.perf_counter()


def autocast(dev: torch.device, dtype: str) -> contextlib.AbstractContextManager[Any]:
    """The autocast context for ``dtype`` on ``dev``, validating the combination.

    The context spans all iterations of one measurement, so autocast's weight-cast cache is
    reused between iterations, approximating a model converted once.

    Args:
        dev: The measurement device.
        dtype: ``"fp32"`` (no autocast), ``"bf16"``, or ``"fp16"`` (CUDA only).

    Returns:
        ``contextlib.nullcontext()`` for fp32, else ``torch.autocast``.

    Raises:
        ConfigError: An unknown dtype, or fp16 on the CPU.
    """
    if dtype not in DTYPES:
        raise ConfigError(
            f"dtype must be one of {', '.join(DTYPES)}; found {dtype!r}. Fix: use fp32, bf16 "
            f"or (on CUDA) fp16."
        )
    if dtype == "fp32":
        return contextlib.nullcontext()
    if dev.type == "cpu" and dtype == "fp16":
        raise ConfigError(
            "dtype 'fp16' is only supported on CUDA (CPU autocast to float16 is not a meaningful "
            "deployment target); use dtype='bf16' or 'fp32' on CPU, or device='cuda'."
        )
    return torch.autocast(device_type=dev.type, dtype=DTYPES[dtype])


def model_device(model: nn.Module, device: str | torch.device) -> torch.device:
    """Validates ``device`` (:func:`bench.devices.parse_device`) and that ``model`` is on it.

    Args:
        model: The module to be measured.
        device: ``"cpu"`` or ``"cuda[:index]"``.

    Returns:
        The device (a bare ``"cuda"`` resolved to the current index).

    Raises:
        ConfigError: An unknown device, or CUDA where it is not available.
        ValueError: A parameter or buffer of ``model`` is on another device.
    """
    return check_model_device(model, parse_device(device))


def synchronise(dev: torch.device) -> None:
    """Waits for queued CUDA work on ``dev`` (no-op on the CPU)."""
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def example_input(shape: tuple[int, ...], dev: torch.device, channels_last: bool) -> torch.Tensor:
    """A seeded random input; random rather than zeros so no kernel can exploit sparsity.

    Args:
        shape: ``(N, C, H, W)``.
        dev: Where the tensor goes.
        channels_last: Return it in channels-last memory format.

    Returns:
        The input tensor (the same values for the same shape on every call).
    """
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(shape, generator=generator).to(dev)
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x


@contextlib.contextmanager
def prepared(model: nn.Module, channels_last: bool) -> Iterator[nn.Module]:
    """Eval mode (+ channels-last weights), restoring flags and the original tensors on exit.

    Args:
        model: The module to measure.
        channels_last: Convert its weights to channels-last for the block.

    Yields:
        ``model``, prepared.
    """
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


def minor_faults() -> int:
    """Minor page faults of this process so far (``getrusage``'s ``ru_minflt``)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


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


def time_iterations(
    step: Callable[[], object],
    dev: torch.device,
    *,
    warmup: int,
    min_iters: int,
    max_iters: int,
    min_time_s: float,
) -> tuple[list[float], int]:
    """Runs ``step`` ``warmup`` times, then times it under :func:`keep_iterating`.

    Args:
        step: One iteration (e.g. a forward pass).
        dev: The device ``step`` runs on (CUDA is timed with events).
        warmup: Untimed iterations first.
        min_iters: Minimum timed iterations.
        max_iters: Maximum timed iterations.
        min_time_s: Minimum timing duration in seconds.

    Returns:
        ``(times_ms, minor_faults)``: per-iteration times and the process's minor page faults
        during the timed iterations.
    """
    for _ in range(warmup):
        step()
    synchronise(dev)
    times: list[float] = []
    events = (
        (torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True))
        if dev.type == "cuda"
        else None
    )
    faults_before = minor_faults()
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
    return times, minor_faults() - faults_before


def timed_both(step: Callable[[], object], dev: torch.device, calls: int) -> tuple[float, float]:
    """Times ``calls`` back-to-back calls of ``step`` (synchronised on CUDA).

    Args:
        step: One call.
        dev: The device it runs on.
        calls: How many calls in the block.

    Returns:
        ``(wall ms, process CPU ms)`` per call.
    """
    synchronise(dev)
    c0 = time.process_time()
    t0 = time.perf_counter()
    for _ in range(calls):
        step()
    synchronise(dev)
    wall = (time.perf_counter() - t0) * 1e3 / calls
    return wall, (time.process_time() - c0) * 1e3 / calls


def work_ms(step: Callable[[], object], dev: torch.device) -> float:
    """Milliseconds of work in one call of ``step``.

    Process CPU time on the CPU (time spent waiting for a core does not count), synchronised
    wall time on CUDA.

    Args:
        step: One call.
        dev: The device it runs on.

    Returns:
        The call's work in ms (at least 1e-3 on the CPU, so it can divide).
    """
    wall, cpu = timed_both(step, dev, 1)
    return wall if dev.type == "cuda" else max(cpu, 1e-3)


def latency_run(
    model: nn.Module, shape: tuple[int, ...], dev: torch.device, config: SpeedConfig
) -> tuple[list[float], int]:
    """The latency loop on a model already :func:`prepared` for ``config``.

    Args:
        model: The prepared module.
        shape: ``(N, C, H, W)`` of the input.
        dev: The measurement device.
        config: Iteration bounds, dtype and memory format.

    Returns:
        ``(times_ms, minor_faults)`` as :func:`time_iterations`.
    """
    x = example_input(shape, dev, config.channels_last)
    with torch.inference_mode(), autocast(dev, config.dtype):
        return time_iterations(
            lambda: model(x),
            dev,
            warmup=config.warmup,
            min_iters=config.min_iters,
            max_iters=config.max_iters,
            min_time_s=config.min_time_s,
        )


def measure_latency(
    model: nn.Module,
    input_shape: tuple[int, int, int, int],
    config: SpeedConfig,
    *,
    device: str | torch.device = "cpu",
) -> LatencyStats:
    """Measures the per-forward latency of ``model`` at ``input_shape``.

    Args:
        model: The module; its parameters and buffers must already be on ``device``. It is run in
            eval mode; its training flags (and, with ``channels_last``, its tensors) are restored.
        input_shape: ``(N, C, H, W)`` of the input.
        config: ``warmup``, ``min_iters``, ``max_iters``, ``min_time_s``, ``dtype`` and
            ``channels_last`` apply (``max_batch`` and ``enabled`` do not).
        device: ``"cpu"`` or ``"cuda[:index]"``.

    Returns:
        A :class:`LatencyStats` in milliseconds.

    Raises:
        ConfigError: An invalid device or dtype/device combination.
        ValueError: An invalid shape, or the model on another device.
    """
    shape = validate_input_shape(input_shape)
    dev = model_device(model, device)
    autocast(dev, config.dtype)  # validate before doing any work
    with prepared(model, config.channels_last):
        times, _ = latency_run(model, shape, dev, config)
    return latency_stats(times)
