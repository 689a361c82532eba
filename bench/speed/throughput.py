"""Throughput: images/s over increasing batch sizes, backing off at the first out-of-memory."""

from __future__ import annotations

import gc
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from bench.complexity import validate_input_shape
from bench.errors import ConfigError
from bench.speed.config import SpeedConfig
from bench.speed.timing import (
    autocast,
    example_input,
    model_device,
    prepared,
    time_iterations,
)
from bench.validation import require_int

# Minimum timed iterations per batch size (min_time_s and max_iters of the config still apply):
# a large batch already averages over many images, so three calls give a stable images/s.
THROUGHPUT_MIN_ITERS = 3
_OOM_MESSAGES = ("out of memory", "can't allocate memory")


def doubling_batch_sizes(max_batch: int) -> list[int]:
    """Returns ``[1, 2, 4, ...]`` up to and including the largest power of two <= ``max_batch``.

    Args:
        max_batch: Largest batch size to try (>= 1).

    Returns:
        The batch sizes of a throughput sweep.

    Raises:
        ConfigError: If ``max_batch`` is not a positive int.
    """
    require_int("max_batch", max_batch, minimum=1)
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


def release_memory(dev: torch.device) -> None:
    """Collects garbage and, on CUDA, returns the allocator's cached blocks (after an OOM)."""
    gc.collect()
    if dev.type == "cuda":
        torch.cuda.empty_cache()


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


def batch_sizes_for(batch_sizes: Sequence[int] | None, max_batch: int) -> list[int]:
    """The batch sizes of a sweep: ``batch_sizes`` checked, or the doubling up to ``max_batch``.

    Args:
        batch_sizes: Explicit sizes, or None.
        max_batch: Largest size of the default doubling sweep.

    Returns:
        The sizes to try, in order.

    Raises:
        ConfigError: ``batch_sizes`` empty, not strictly increasing or not positive ints.
    """
    if batch_sizes is None:
        return doubling_batch_sizes(max_batch)
    sizes = list(batch_sizes)
    valid = all(isinstance(b, int) and not isinstance(b, bool) and b > 0 for b in sizes)
    if not sizes or not valid or any(a >= b for a, b in zip(sizes, sizes[1:], strict=False)):
        raise ConfigError(
            f"batch_sizes must be a non-empty, strictly increasing list of positive ints; "
            f"found {batch_sizes!r}. Fix: pass e.g. [1, 2, 4], or None for 1, 2, 4, ... "
            f"up to max_batch."
        )
    return sizes


def throughput_run(
    model: nn.Module,
    image_shape: tuple[int, ...],
    dev: torch.device,
    config: SpeedConfig,
    sizes: Sequence[int],
    *,
    min_iters: int = THROUGHPUT_MIN_ITERS,
) -> ThroughputResult:
    """The throughput sweep on a model already :func:`~bench.speed.timing.prepared`.

    Args:
        model: The prepared module.
        image_shape: ``(C, H, W)`` of one image.
        dev: The measurement device.
        config: ``warmup``, ``max_iters``, ``min_time_s``, ``dtype`` and ``channels_last``.
        sizes: Batch sizes to try, in order.
        min_iters: Minimum timed iterations per batch size (capped at ``config.max_iters``).

    Returns:
        A :class:`ThroughputResult`.

    Raises:
        RuntimeError: The first batch size runs out of memory (the OOM is chained), or the
            timer reports zero total time.
    """
    points: list[ThroughputPoint] = []
    for batch in sizes:
        oom = False
        x: torch.Tensor | None = None
        try:
            x = example_input((batch, *image_shape), dev, config.channels_last)
            with torch.inference_mode(), autocast(dev, config.dtype):
                times, _ = time_iterations(
                    lambda x=x: model(x),
                    dev,
                    warmup=config.warmup,
                    min_iters=min(min_iters, config.max_iters),
                    max_iters=config.max_iters,
                    min_time_s=config.min_time_s,
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
            release_memory(dev)
            points.append(ThroughputPoint(batch_size=batch, images_per_s=None, oom=True))
            break
        total_s = sum(times) / 1e3
        if total_s <= 0:
            raise RuntimeError(
                f"timer reported zero total time at batch size {batch}; raise min_time_s."
            )
        points.append(
            ThroughputPoint(batch_size=batch, images_per_s=batch * len(times) / total_s, oom=False)
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
    config: SpeedConfig,
    *,
    device: str | torch.device = "cpu",
    batch_sizes: Sequence[int] | None = None,
    min_iters: int = THROUGHPUT_MIN_ITERS,
) -> ThroughputResult:
    """Measures images/s over increasing batch sizes, backing off at the first out-of-memory.

    At each batch size the model runs ``config.warmup`` untimed iterations and then is timed as
    in :func:`~bench.speed.timing.measure_latency`; images/s = ``batch x iterations / total
    time``. On an out-of-memory error (see :func:`is_oom_error`) the sweep records it for that
    batch, frees the allocator cache, and stops.

    Args:
        model: The module; its parameters and buffers must already be on ``device``.
        image_shape: ``(C, H, W)`` of one image.
        config: ``max_batch`` (the default doubling sweep), ``warmup``, ``max_iters``,
            ``min_time_s``, ``dtype`` and ``channels_last`` apply.
        device: ``"cpu"`` or ``"cuda[:index]"``.
        batch_sizes: Strictly increasing batch sizes to try; default
            :func:`doubling_batch_sizes` of ``config.max_batch``.
        min_iters: Minimum timed iterations per batch size (capped at ``config.max_iters``).

    Returns:
        A :class:`ThroughputResult`.

    Raises:
        ConfigError: An invalid device, dtype/device combination or batch sizes.
        ValueError: An invalid shape, or the model on another device.
        RuntimeError: If even the first batch size runs out of memory (the OOM is chained).
    """
    shape = validate_input_shape(image_shape, rank=3)
    dev = model_device(model, device)
    autocast(dev, config.dtype)
    require_int("min_iters", min_iters, minimum=1)
    sizes = batch_sizes_for(batch_sizes, config.max_batch)
    with prepared(model, config.channels_last):
        return throughput_run(model, shape, dev, config, sizes, min_iters=min_iters)
