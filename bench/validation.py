"""Range checks for configuration values, shared by every config dataclass's ``__post_init__``.

Each check raises :class:`bench.errors.ConfigError` with one message shape: the field, what was
expected, what was found, and the fix (``"lr must be a finite number > 0; found -1.0. Set ..."``).
The message starts with the field name so that :func:`bench.suites.load_suite` can prefix it
with the suite file and section. Types are checked too, because a config built in Python (not
from a suite file, whose loader checks types first) reaches these checks unchecked; ``bool`` is
never accepted as a number, and a bool found is shown as ``bool True`` (``True`` alone reads
like the number 1).

This module imports only :mod:`bench.errors`, so every layer may use it (the configs of the
training, suite and speed layers and the measurement functions' own arguments).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from bench.errors import ConfigError


def _fail(name: str, expected: str, value: Any, fix: str) -> ConfigError:
    """The error for ``value`` of ``name``: what was expected, what was found, the fix."""
    shown = f"bool {value!r}" if isinstance(value, bool) else repr(value)
    return ConfigError(f"{name} must be {expected}; found {shown}. {fix}".rstrip())


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def require_int(
    name: str,
    value: Any,
    *,
    minimum: int,
    maximum: int | None = None,
    minimum_label: str | None = None,
    fix: str = "",
) -> None:
    """Checks that ``value`` is an int in ``[minimum, maximum]``.

    Args:
        name: The field, as the user spells it (e.g. ``"batch_size"``).
        value: The value found.
        minimum: Smallest allowed value.
        maximum: Largest allowed value; ``None`` for no upper bound.
        minimum_label: How the message names ``minimum`` when it is another setting's value
            (``"min_iters (10)"``); default: the number.
        fix: One sentence telling the user what to set instead; default: "Fix: set <name> to
            a whole number of at least <minimum>." (or "from <minimum> to <maximum>.").

    Raises:
        ConfigError: ``value`` is not an int (``bool`` included) or is out of range.
    """
    low = minimum_label or str(minimum)
    expected = f"an int >= {low}" if maximum is None else f"an int in [{low}, {maximum}]"
    if not _is_int(value) or value < minimum or (maximum is not None and value > maximum):
        span = f"of at least {minimum}" if maximum is None else f"from {minimum} to {maximum}"
        raise _fail(name, expected, value, fix or f"Fix: set {name} to a whole number {span}.")


def require_float(
    name: str,
    value: Any,
    *,
    minimum: float,
    strict: bool = False,
    below: float | None = None,
    unit: str = "",
    fix: str = "",
) -> None:
    """Checks that ``value`` is a finite number ``>= minimum`` (``> minimum`` if ``strict``).

    Args:
        name: The field, as the user spells it (e.g. ``"lr"``).
        value: The value found (an int is accepted as a number).
        minimum: Lower bound.
        strict: Whether ``minimum`` itself is excluded.
        below: Exclusive upper bound; ``None`` for none.
        unit: What the number counts, named in the message (``"seconds"``: "must be a finite
            number of seconds >= 0"); default: nothing.
        fix: One sentence telling the user what to set instead.

    Raises:
        ConfigError: ``value`` is not a number, is NaN or infinite, or is out of range.
    """
    low = f"> {minimum:g}" if strict else f">= {minimum:g}"
    number = f"number of {unit}" if unit else "number"
    expected = (
        f"a finite {number} {low}"
        if below is None
        else f"a {number} in {'(' if strict else '['}{minimum:g}, {below:g})"
    )
    ok = (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(value)
        and (value > minimum if strict else value >= minimum)
        and (below is None or value < below)
    )
    if not ok:
        raise _fail(name, expected, value, fix)


def require_bool(name: str, value: Any, *, fix: str = "") -> None:
    """Checks that ``value`` is a bool (``1`` and ``"yes"`` are not).

    Args:
        name: The field, as the user spells it (e.g. ``"channels_last"``).
        value: The value found.
        fix: One sentence telling the user what to set instead; default: "Fix: set <name> to
            true or false."

    Raises:
        ConfigError: ``value`` is not a bool.
    """
    if not isinstance(value, bool):
        raise _fail(name, "a bool", value, fix or f"Fix: set {name} to true or false.")


def require_choice(name: str, value: Any, choices: Sequence[Any], *, fix: str = "") -> None:
    """Checks that ``value`` is one of ``choices`` (e.g. ``typing.get_args`` of a ``Literal``).

    Args:
        name: The field, as the user spells it.
        value: The value found.
        choices: The allowed values.
        fix: One sentence telling the user what to set instead; default: pick one of them.

    Raises:
        ConfigError: ``value`` is not one of ``choices``.
    """
    if value not in choices:
        shown = ", ".join(repr(c) for c in choices)
        raise _fail(name, f"one of {shown}", value, fix or "Use one of these.")


def require_size(name: str, value: Any, *, fix: str = "") -> None:
    """Checks that ``value`` is ``[H, W]``: a list or tuple of two positive ints.

    Args:
        name: The field, as the user spells it (e.g. ``"resolution"``).
        value: The value found.
        fix: One sentence telling the user what to set instead.

    Raises:
        ConfigError: ``value`` is not a pair of ints >= 1.
    """
    ok = (
        isinstance(value, (list, tuple))
        and len(value) == 2
        and all(_is_int(v) and v >= 1 for v in value)
    )
    if not ok:
        raise _fail(name, "[H, W] with two positive ints", value, fix)


def require_text(name: str, value: Any, *, fix: str = "") -> None:
    """Checks that ``value`` is a non-empty string.

    Args:
        name: The field, as the user spells it.
        value: The value found.
        fix: One sentence telling the user what to set instead.

    Raises:
        ConfigError: ``value`` is not a string or is empty (or only blanks).
    """
    if not isinstance(value, str) or not value.strip():
        raise _fail(name, "a non-empty string", value, fix)
