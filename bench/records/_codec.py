"""Reading and writing frozen dataclasses from and to JSON-ready values, by their type hints.

The schema of a run record is declared once, as dataclasses (:mod:`bench.records.schema`); this
module turns a parsed JSON object into those dataclasses, checking every value against its type
hint and the bounds in the field's metadata, and back. Supported hints: ``str``, ``int``,
``float``, ``bool``, ``Any`` (free JSON), ``Literal[...]``, unions (``X | None``, ``X | str``),
``tuple[X, ...]``, ``tuple[X, Y]``, ``dict[str, X]`` and nested dataclasses.

Field metadata (``dataclasses.field(metadata=...)``):

* ``lo`` / ``hi``: inclusive bounds of a number (also applied to the values of a ``dict``);
* ``nonempty``: a string must not be empty;
* ``hint``: a sentence added to the error message (e.g. "Metrics are fractions in [0, 1]");
* ``required_hint``: the sentence for a missing required field (default "The field is
  required.");
* ``omit_none``: :func:`dump` leaves the key out while the value is None. For fields added to a
  section without a schema version of their own (``train.amp``): records written before them
  read back and write out unchanged, and records that have the value carry the key.

A missing key takes the field's default (a field without a default is required); a key the
dataclass does not declare is an error. Every error is a :class:`~bench.errors.RecordError`
naming where the record came from, the dotted field, what was expected, what was found and the
fix.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import types
import typing
from collections.abc import Mapping
from typing import Any

from bench.errors import RecordError

FIX = (
    "Fix: correct the record's JSON file, or delete it and re-create it with "
    "`python run_bench.py run`."
)


class Context:
    """Where a record came from, for error messages: ``"run record #3 (run_id 'x')"``.

    Args:
        where: How messages name the record (they start with it).
    """

    def __init__(self, where: str) -> None:
        self.where = where

    def error(self, field: str, expected: str, found: Any, hint: str = "") -> RecordError:
        """An error naming the record, the field, the expectation, the value found and the fix."""
        shown = repr(found)
        if len(shown) > 80:
            shown = shown[:77] + "..."
        hint = f" {hint}" if hint else ""
        return RecordError(
            f"{self.where}: field {field!r} should be {expected}; found {shown} "
            f"({type(found).__name__}).{hint} {FIX}"
        )


@functools.cache
def hints(cls: type) -> dict[str, Any]:
    """The resolved type hints of a dataclass (cached)."""
    return typing.get_type_hints(cls)


def describe(hint: Any) -> str:
    """A reader's phrase for a type hint: ``"a number or null"``, ``"'ok' or 'error'"``."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(hint)
        parts = [describe(a) for a in args if a is not type(None)]
        text = " or ".join(parts)
        return f"{text} or null" if type(None) in args else text
    if origin is typing.Literal:
        return " or ".join(repr(a) for a in typing.get_args(hint))
    if origin is tuple:
        args = typing.get_args(hint)
        if len(args) == 2 and args[1] is Ellipsis:
            return f"a list of {_plural(args[0])}"
        return f"a list of {len(args)} {_plural(args[0])}"
    if origin is dict:
        return f"an object {{name: {describe(typing.get_args(hint)[1])}}}"
    if dataclasses.is_dataclass(hint):
        return "an object"
    return {str: "a string", int: "an integer", float: "a number", bool: "true or false"}.get(
        hint, "a JSON value"
    )


def _plural(hint: Any) -> str:
    return {str: "strings", int: "integers", float: "numbers", bool: "booleans"}.get(
        hint, "objects"
    )


def _bounds(meta: Mapping[str, Any]) -> str:
    lo, hi = meta.get("lo"), meta.get("hi")
    if lo is not None and hi is not None:
        return f" in [{lo:g}, {hi:g}]"
    if lo is not None:
        return f" >= {lo:g}"
    return ""


def parse_value(hint: Any, value: Any, path: str, ctx: Context, meta: Mapping[str, Any]) -> Any:
    """Checks ``value`` against ``hint`` (and ``meta``) and returns it in its typed form."""
    origin = typing.get_origin(hint)
    if hint is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(hint)
        if value is None:
            if type(None) in args:
                return None
            raise ctx.error(path, describe(hint), value, "The field is required.")
        errors: list[RecordError] = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return parse_value(arg, value, path, ctx, meta)
            except RecordError as exc:
                errors.append(exc)
        if len(errors) == 1:
            raise errors[0]
        raise ctx.error(path, describe(hint), value, meta.get("hint", ""))
    if origin is typing.Literal:
        if value not in typing.get_args(hint) or isinstance(value, bool) != any(
            isinstance(a, bool) for a in typing.get_args(hint)
        ):
            raise ctx.error(path, describe(hint), value)
        return value
    if dataclasses.is_dataclass(hint):
        return parse_dataclass(hint, value, path, ctx)
    if origin is tuple:
        args = typing.get_args(hint)
        if not isinstance(value, list | tuple):
            raise ctx.error(path, describe(hint), value)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(
                parse_value(args[0], v, f"{path}[{i}]", ctx, meta) for i, v in enumerate(value)
            )
        if len(value) != len(args):
            raise ctx.error(path, describe(hint), value)
        return tuple(
            parse_value(a, v, f"{path}[{i}]", ctx, meta)
            for i, (a, v) in enumerate(zip(args, value, strict=True))
        )
    if origin is dict:
        key_hint, value_hint = typing.get_args(hint)
        if not isinstance(value, Mapping):
            raise ctx.error(path, describe(hint), value)
        out = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise ctx.error(path, "an object with string keys", key)
            out[key] = parse_value(value_hint, item, f"{path}.{key}", ctx, meta)
        return out
    if hint is bool:
        if not isinstance(value, bool):
            raise ctx.error(path, "true or false", value)
        return value
    if hint is str:
        if not isinstance(value, str):
            raise ctx.error(path, "a string", value)
        if meta.get("nonempty") and not value:
            raise ctx.error(path, "a non-empty string", value)
        return value
    if hint in (int, float):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ctx.error(path, describe(hint) + _bounds(meta), value, meta.get("hint", ""))
        if hint is int and not isinstance(value, int):
            raise ctx.error(path, "an integer" + _bounds(meta), value, meta.get("hint", ""))
        number = int(value) if hint is int else float(value)
        lo, hi = meta.get("lo", -math.inf), meta.get("hi", math.inf)
        if not math.isfinite(number) or not lo <= number <= hi:
            expected = ("a finite number" if hint is float else "an integer") + _bounds(meta)
            raise ctx.error(path, expected, value, meta.get("hint", ""))
        return number
    raise TypeError(f"bench.records: unsupported type hint {hint!r} at {path}")  # schema bug


def parse_dataclass(cls: type, data: Any, path: str, ctx: Context) -> Any:
    """Builds dataclass ``cls`` from a JSON object, checking every field (see module docstring)."""
    if not isinstance(data, Mapping):
        raise ctx.error(path or "record", "an object or null" if path else "an object", data)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        where = f"{path}." if path else ""
        raise ctx.error(
            f"{where}{unknown[0]}",
            f"one of the fields of {path or 'a run record'} ({', '.join(fields)})",
            data[unknown[0]],
            "This harness does not know the field (a record from a newer harness, or a typo).",
        )
    kwargs: dict[str, Any] = {}
    types_of = hints(cls)
    for name, f in fields.items():
        dotted = f"{path}.{name}" if path else name
        if name not in data:
            has_default = (
                f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
            )
            if not has_default:
                hint = f.metadata.get("required_hint", "The field is required.")
                raise ctx.error(dotted, describe(types_of[name]), None, hint)
            continue
        kwargs[name] = parse_value(types_of[name], data[name], dotted, ctx, f.metadata)
    return cls(**kwargs)


def dump(value: Any) -> Any:
    """The JSON-ready form of a typed value: dataclasses become dicts, tuples lists.

    Every field of a dataclass is written (None as null), except ``omit_none`` fields whose
    value is None (see the module docstring).
    """
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            f.name: dump(getattr(value, f.name))
            for f in dataclasses.fields(value)
            if f.init and not (f.metadata.get("omit_none") and getattr(value, f.name) is None)
        }
    if isinstance(value, tuple | list):
        return [dump(v) for v in value]
    if isinstance(value, Mapping):
        return {k: dump(v) for k, v in value.items()}
    return value
