"""The settings of a speed measurement (:class:`SpeedConfig`) and the timing-loop check they share.

A suite's ``speed:`` section is read into a :class:`SpeedConfig`; the same object is what
:func:`bench.speed.measure_speed` and its building blocks take. Every field is checked when the
object is built (with the range checks of :mod:`bench.validation`, shared with the training and
suite configs), so a bad value fails when the suite loads, not after training. This module
imports no torch: the suite layer can build a config cheaply.
"""

from __future__ import annotations

import typing
from dataclasses import dataclass, field
from typing import Any, Literal

from bench.errors import ConfigError
from bench.validation import require_bool, require_choice, require_float, require_int

Dtype = Literal["fp32", "fp16", "bf16"]
DTYPE_NAMES: tuple[str, ...] = typing.get_args(Dtype)
Variant = Literal["eager", "channels_last", "compile", "fp16", "bf16"]
VARIANT_NAMES: tuple[str, ...] = typing.get_args(Variant)


def check_iterations(
    warmup: Any,
    min_iters: Any,
    max_iters: Any,
    min_time_s: Any,
    *,
    names: tuple[str, str, str, str] = ("warmup", "min_iters", "max_iters", "min_time_s"),
) -> None:
    """Checks the bounds of a timing loop (see :func:`bench.speed.statistics.keep_iterating`).

    Args:
        warmup: Untimed iterations first (>= 0).
        min_iters: Minimum timed iterations (>= 1).
        max_iters: Maximum timed iterations (>= ``min_iters``).
        min_time_s: Minimum timing duration (finite, >= 0).
        names: How the messages name the four values (the normalised latency says
            ``rounds`` and ``max_rounds``).

    Raises:
        ConfigError: A value out of its range, naming it, the range and the value found.
    """
    warmup_name, min_name, max_name, time_name = names
    require_int(warmup_name, warmup, minimum=0)
    require_int(min_name, min_iters, minimum=1)
    require_int(max_name, max_iters, minimum=min_iters, minimum_label=f"{min_name} ({min_iters})")
    require_float(
        time_name,
        min_time_s,
        minimum=0.0,
        unit="seconds",
        fix=f"Fix: set {time_name} to 0 or a positive number such as 1.0.",
    )


@dataclass(frozen=True)
class SpeedConfig:
    """How one model's speed is measured (a suite's ``speed:`` section).

    The field names, order and defaults are part of every suite's setting id (a hash of the
    suite's fields): change them only together with new baselines.

    Attributes:
        enabled: Whether a sweep measures speed at all.
        warmup: Untimed iterations before each timed loop.
        min_iters: Minimum timed iterations of the batch-1 latency loop.
        max_iters: Maximum timed iterations of every loop (wins over ``min_time_s``).
        min_time_s: Minimum timing duration of each loop, in seconds.
        max_batch: Largest batch of the throughput sweep (batch sizes 1, 2, 4, ... up to it).
        dtype: ``fp32``, or autocast to ``fp16`` (CUDA only) or ``bf16``.
        channels_last: Run with channels-last weights and input.
        variants: Deployment variants timed after the main measurement, each with one change
            to the setting above (:mod:`bench.speed.variants`): ``eager`` (as is),
            ``channels_last``, ``compile`` (``torch.compile``), ``fp16`` (CUDA only) or
            ``bf16`` autocast. Empty (the default): none. Not part of the setting id: the
            variants change none of the main figures, they add their own.

    Raises:
        ConfigError: When built with a value out of range (see :meth:`__post_init__`).
    """

    enabled: bool = True
    warmup: int = 3
    min_iters: int = 10
    max_iters: int = 100
    min_time_s: float = 1.0
    max_batch: int = 16
    dtype: Dtype = "fp32"  # autocast; fp16 on CUDA only (checked against the device when run)
    channels_last: bool = False
    variants: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        """Checks every field.

        Raises:
            ConfigError: ``warmup`` < 0, ``min_iters`` < 1, ``max_iters`` < ``min_iters``,
                ``min_time_s`` negative or not finite, ``max_batch`` < 1, an unknown ``dtype``,
                or ``enabled``/``channels_last`` not a bool. The message names the field, the
                allowed range and the value found; ``variants`` not a list of distinct
                names of :data:`VARIANT_NAMES`.
        """
        require_bool("enabled", self.enabled)
        check_iterations(self.warmup, self.min_iters, self.max_iters, self.min_time_s)
        require_int("max_batch", self.max_batch, minimum=1)
        require_choice(
            "dtype",
            self.dtype,
            DTYPE_NAMES,
            fix="Fix: use fp32, or bf16 (CPU and CUDA) or fp16 (CUDA only) for autocast.",
        )
        require_bool("channels_last", self.channels_last)
        check_variants(self.variants)


def check_variants(variants: Any) -> None:
    """Checks a ``speed.variants`` list: distinct names of :data:`VARIANT_NAMES`.

    Args:
        variants: The value found.

    Raises:
        ConfigError: Not a list or tuple, an unknown name or a name given twice; the message
            names the allowed values, what was found and the fix.
    """
    allowed = ", ".join(VARIANT_NAMES)
    fix = f"Fix: list some of {allowed} once each, e.g. variants: [eager, channels_last, compile]."
    if not isinstance(variants, list | tuple):
        raise ConfigError(f"variants must be a list of names; found {variants!r}. {fix}")
    unknown = [v for v in variants if v not in VARIANT_NAMES]
    if unknown:
        raise ConfigError(
            f"variants must be names out of {allowed}; found {unknown[0]!r} in {list(variants)}. "
            f"{fix}"
        )
    repeated = sorted({v for v in variants if list(variants).count(v) > 1})
    if repeated:
        raise ConfigError(
            f"variants must name each variant once; found {', '.join(repeated)} more than once "
            f"in {list(variants)}. {fix}"
        )
