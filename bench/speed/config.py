"""The settings of a speed measurement (:class:`SpeedConfig`) and the checks they share.

A suite's ``speed:`` section is read into a :class:`SpeedConfig`; the same object is what
:func:`bench.speed.measure_speed` and its building blocks take. Every field is checked when the
object is built, so a bad value fails when the suite loads, not after training. This module
imports no torch: the suite layer can build a config cheaply.
"""

from __future__ import annotations

import math
import typing
from dataclasses import dataclass
from typing import Any, Literal

from bench.errors import ConfigError

Dtype = Literal["fp32", "fp16", "bf16"]
DTYPE_NAMES: tuple[str, ...] = typing.get_args(Dtype)


def _found(value: Any) -> str:
    """How a message shows a wrong value: its type as well where that is what is wrong."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return repr(value)
    return f"{type(value).__name__} {value!r}"


def check_int(name: str, value: Any, low: int, *, low_name: str | None = None) -> int:
    """Checks that ``value`` is an int (not a bool) of at least ``low``.

    Args:
        name: How the message names the value (e.g. ``"min_iters"``).
        value: The value to check.
        low: Smallest allowed value.
        low_name: How the message names the bound when it is another setting
            (``"min_iters (10)"``); default ``str(low)``.

    Returns:
        ``value``.

    Raises:
        ConfigError: Not an int, or below ``low``.
    """
    bound = low_name or str(low)
    if not isinstance(value, int) or isinstance(value, bool) or value < low:
        raise ConfigError(
            f"{name} must be an int >= {bound}; found {_found(value)}. "
            f"Fix: set {name} to a whole number of at least {low}."
        )
    return value


def check_seconds(name: str, value: Any) -> float:
    """Checks that ``value`` is a finite, non-negative number of seconds.

    Args:
        name: How the message names the value (e.g. ``"min_time_s"``).
        value: The value to check.

    Returns:
        ``value`` as a float.

    Raises:
        ConfigError: Not a number (a bool is not one), not finite, or negative.
    """
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not number or not math.isfinite(value) or value < 0:
        raise ConfigError(
            f"{name} must be a finite number of seconds >= 0; found {_found(value)}. "
            f"Fix: set {name} to 0 or a positive number such as 1.0."
        )
    return float(value)


def check_bool(name: str, value: Any) -> bool:
    """Checks that ``value`` is a bool.

    Args:
        name: How the message names the value.
        value: The value to check.

    Returns:
        ``value``.

    Raises:
        ConfigError: Not a bool (``1`` and ``"yes"`` are not).
    """
    if not isinstance(value, bool):
        raise ConfigError(
            f"{name} must be a bool; found {_found(value)}. Fix: set {name} to true or false."
        )
    return value


def check_dtype(dtype: Any) -> str:
    """Checks that ``dtype`` names a supported precision (see :data:`DTYPE_NAMES`).

    Args:
        dtype: The value to check.

    Returns:
        ``dtype``.

    Raises:
        ConfigError: Not one of ``fp32``, ``fp16``, ``bf16``.
    """
    if dtype not in DTYPE_NAMES:
        raise ConfigError(
            f"dtype must be one of {', '.join(DTYPE_NAMES)}; found {_found(dtype)}. "
            f"Fix: use fp32, or bf16 (CPU and CUDA) or fp16 (CUDA only) for autocast."
        )
    return str(dtype)


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
    check_int(warmup_name, warmup, 0)
    check_int(min_name, min_iters, 1)
    check_int(max_name, max_iters, min_iters, low_name=f"{min_name} ({min_iters})")
    check_seconds(time_name, min_time_s)


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

    def __post_init__(self) -> None:
        """Checks every field.

        Raises:
            ConfigError: ``warmup`` < 0, ``min_iters`` < 1, ``max_iters`` < ``min_iters``,
                ``min_time_s`` negative or not finite, ``max_batch`` < 1, an unknown ``dtype``,
                or ``enabled``/``channels_last`` not a bool. The message names the field, the
                allowed range and the value found.
        """
        check_bool("enabled", self.enabled)
        check_iterations(self.warmup, self.min_iters, self.max_iters, self.min_time_s)
        check_int("max_batch", self.max_batch, 1)
        check_dtype(self.dtype)
        check_bool("channels_last", self.channels_last)
