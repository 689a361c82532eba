"""Speed variants: one model timed under several deployment settings (``speed.variants``).

Each variant is the suite's speed setting (its ``dtype`` and ``channels_last``) with one change:

* ``eager``: as is; the reference of every variant's ``speedup``;
* ``channels_last``: channels-last weights and input (the weights are put back afterwards);
* ``compile``: ``torch.compile(model, dynamic=False)`` (the default backend, inductor; on the
  CPU it needs a C++ compiler). Compilation happens lazily, at the first call with each input
  shape: those calls are made before timing, and their seconds are ``compile_s``;
* ``fp16`` / ``bf16``: autocast to that dtype (``fp16`` on CUDA only: on the CPU the variant is
  recorded as failed).

Every variant is timed like the main measurement, with the same loops and the config's warm-up
and iteration bounds: the batch-1 latency loop (:func:`~bench.speed.timing.latency_run`) and the
throughput at one batch size (:func:`~bench.speed.throughput.throughput_run`; the caller passes
the best batch size of the main sweep, so a compiled model compiles for two shapes only). A
variant that fails (no C++ compiler, fp16 on the CPU, out of memory, ...) is recorded with status
``error`` and its exception's type and first line, and the next variant runs.

``speedup`` is ``eager``'s p50 over the variant's. Both are measured in the same process, one
after the other (not interleaved like :mod:`~bench.speed.normalised`): on a busy machine the
ratio carries the load changes between the two loops.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from bench.complexity import validate_input_shape
from bench.speed.config import SpeedConfig, check_variants
from bench.speed.statistics import LatencyStats, latency_stats
from bench.speed.throughput import release_memory, throughput_run
from bench.speed.timing import (
    autocast,
    example_input,
    latency_run,
    model_device,
    now,
    prepared,
    synchronise,
)
from bench.validation import require_int

# What each variant changes in the suite's setting (eager and compile change no field of it).
_CHANGES: dict[str, dict[str, Any]] = {
    "eager": {},
    "channels_last": {"channels_last": True},
    "compile": {},
    "fp16": {"dtype": "fp16"},
    "bf16": {"dtype": "bf16"},
}
_ERROR_CHARS = 300  # an error's message is cut to this many characters


@dataclass(frozen=True)
class VariantResult:
    """The speed of one variant (one entry of the record's ``speed.variants``).

    Attributes:
        name: The variant (``eager``, ``channels_last``, ``compile``, ``fp16``, ``bf16``).
        status: ``ok``, or ``error`` when it failed.
        error: ``"<exception type>: <first line>"`` of the failure; None when ok.
        dtype: The dtype it ran with.
        channels_last: Whether weights and inputs were channels-last.
        compiled: Whether the model ran through ``torch.compile``.
        latency: Batch-1 latency statistics (ms); None when it failed.
        throughput_ips: Images/s at ``throughput_batch_size``; None when it failed.
        throughput_batch_size: The batch size of ``throughput_ips``.
        compile_s: Seconds of the compiling first calls (``compile`` only).
        speedup: ``eager``'s p50 / this p50; None without an ok ``eager``, or when it failed.
    """

    name: str
    status: str
    error: str | None
    dtype: str
    channels_last: bool
    compiled: bool
    latency: LatencyStats | None = None
    throughput_ips: float | None = None
    throughput_batch_size: int | None = None
    compile_s: float | None = None
    speedup: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """Returns the record's ``speed.variants[]`` entry (JSON-ready values only)."""
        return {
            "name": self.name,
            "status": self.status,
            "error": self.error,
            "dtype": self.dtype,
            "channels_last": self.channels_last,
            "compiled": self.compiled,
            "latency_ms": None if self.latency is None else self.latency.to_dict(),
            "throughput_ips": self.throughput_ips,
            "throughput_batch_size": self.throughput_batch_size,
            "compile_s": self.compile_s,
            "speedup": self.speedup,
        }


def variant_config(config: SpeedConfig, name: str) -> SpeedConfig:
    """The setting variant ``name`` runs with: ``config`` with the variant's one change.

    Args:
        config: The suite's ``speed`` section.
        name: A variant name (:data:`~bench.speed.config.VARIANT_NAMES`).

    Returns:
        The config (its own ``variants`` empty).
    """
    check_variants([name])
    return dataclasses.replace(config, variants=[], **_CHANGES[name])


def error_text(exc: BaseException) -> str:
    """``"<type>: <first line>"`` of ``exc`` (two lines where the first ends with a colon).

    Args:
        exc: The exception a variant raised.

    Returns:
        The text, at most a few hundred characters.
    """
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    text = lines[0] if lines else ""
    if text.endswith(":") and len(lines) > 1:  # e.g. "backend='inductor' raised:"
        text = f"{text} {lines[1]}"
    text = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return text if len(text) <= _ERROR_CHARS else text[: _ERROR_CHARS - 3] + "..."


def _first_calls(
    model: nn.Module, shapes: Sequence[tuple[int, ...]], dev: torch.device, config: SpeedConfig
) -> float:
    """One untimed call per input shape (a compiled model compiles in them); their seconds."""
    start = now()
    for shape in dict.fromkeys(shapes):  # each shape once, in order
        x = example_input(shape, dev, config.channels_last)
        with torch.inference_mode(), autocast(dev, config.dtype):
            model(x)
    synchronise(dev)
    return now() - start


def measure_variant(
    model: nn.Module,
    shape: tuple[int, int, int],
    dev: torch.device,
    config: SpeedConfig,
    name: str,
    batch_size: int,
) -> VariantResult:
    """Times one variant; a failure becomes a result with status ``error``.

    Args:
        model: The module, on ``dev``; its flags and tensors are restored afterwards.
        shape: ``(C, H, W)`` of one image.
        dev: The measurement device.
        config: The suite's ``speed`` section.
        name: The variant.
        batch_size: The batch size of the throughput figure.

    Returns:
        The :class:`VariantResult` (``speedup`` not yet set).
    """
    setting = variant_config(config, name)
    compiled = name == "compile"
    result = VariantResult(
        name=name,
        status="ok",
        error=None,
        dtype=setting.dtype,
        channels_last=setting.channels_last,
        compiled=compiled,
    )
    try:
        with prepared(model, setting.channels_last):
            runner = torch.compile(model, dynamic=False) if compiled else model
            shapes = [(1, *shape), (batch_size, *shape)]
            compile_s = _first_calls(runner, shapes, dev, setting) if compiled else None
            times, _ = latency_run(runner, (1, *shape), dev, setting)
            throughput = throughput_run(runner, shape, dev, setting, [batch_size])
    except Exception as exc:  # noqa: BLE001 - one variant's failure must not end the others
        return dataclasses.replace(result, status="error", error=error_text(exc))
    finally:
        if compiled:
            torch.compiler.reset()  # drop the compiled graphs (and their hold on the model)
        release_memory(dev)
    return dataclasses.replace(
        result,
        latency=latency_stats(times),
        throughput_ips=throughput.best_images_per_s,
        throughput_batch_size=batch_size,
        compile_s=compile_s,
    )


def measure_variants(
    model: nn.Module,
    image_shape: tuple[int, int, int],
    config: SpeedConfig,
    *,
    device: str | torch.device = "cpu",
    batch_size: int = 1,
) -> tuple[VariantResult, ...]:
    """Times ``model`` under each variant of ``config.variants``, in that order.

    Args:
        model: The module; its parameters and buffers must already be on ``device``. Its
            training flags and tensors are restored afterwards.
        image_shape: ``(C, H, W)`` of one image.
        config: The suite's ``speed`` section: ``variants``, and the setting and iteration
            bounds every variant starts from.
        device: ``"cpu"`` or ``"cuda[:index]"``.
        batch_size: The batch size of each variant's throughput figure (the main sweep's best).

    Returns:
        One :class:`VariantResult` per variant (none for an empty list); failed variants have
        status ``error``.

    Raises:
        ConfigError: An invalid device, variant list or batch size.
        ValueError: An invalid shape, or the model on another device.
    """
    shape = validate_input_shape(image_shape, rank=3)
    dev = model_device(model, device)
    check_variants(config.variants)
    require_int("batch_size", batch_size, minimum=1)
    results = [measure_variant(model, shape, dev, config, n, batch_size) for n in config.variants]
    eager = next((r.latency for r in results if r.name == "eager" and r.latency), None)
    if eager is None:
        return tuple(results)
    return tuple(
        dataclasses.replace(r, speedup=eager.p50 / r.latency.p50)
        if r.latency is not None and r.latency.p50 > 0
        else r
        for r in results
    )
