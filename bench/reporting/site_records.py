"""Per-record detail of the static site (:mod:`bench.reporting.site`): how each row was made.

One collapsible ``<details id="run-<run_id>">`` per leaderboard row: the command, the run's
identity, then the record's typed sections as key/value lists, read through
:class:`~bench.records.RunRecord`'s dataclasses (environment and git commit, evaluation
protocol, training, published weights, semi-supervised setup, speed conditions, the error of a
failed run, amendments; the architecture and complexity are the tables' columns). Long series (loss curves, confusion matrices, per-class metrics,
throughput sweeps) are left to the record file; the page names it.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from bench.records import RECORDS_DIR, RunRecord
from bench.reporting.site_tables import esc

# Fields whose values are long series or shown elsewhere on the page (section.field).
_LEFT_OUT = frozenset(
    {
        "train.loss_curve",
        "train.val_steps",
        "train.val_miou",
        "speed.throughput_sweep",
        "complexity.non_mac_ops",
    }
)
_MAX_ITEMS = 16  # longer sequences are summarised by their length

_SECTIONS = (
    ("env", "Environment"),
    ("protocol", "Evaluation protocol"),
    ("train", "Training"),
    ("weights", "Published weights"),
    ("semisup", "Semi-supervised setup"),
    ("speed", "Speed"),
)


def _empty(value: Any) -> bool:
    return value is None or (isinstance(value, str | tuple | list | dict) and not value)


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def _value(value: Any, path: str) -> str:
    """HTML of one field's value (a nested dataclass is a nested list)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _fields(value, path)
    if isinstance(value, dict):
        items = sorted(value.items(), key=lambda kv: str(kv[0]))
        if len(items) > _MAX_ITEMS:
            return esc(f"{len(items)} entries (see the record file)")
        return esc(", ".join(f"{k}: {_scalar(v)}" for k, v in items))
    if isinstance(value, tuple | list):
        if any(dataclasses.is_dataclass(v) for v in value):
            return "".join(_value(v, path) for v in value)
        if len(value) > _MAX_ITEMS:
            return esc(f"{len(value)} values (see the record file)")
        return esc(", ".join(_scalar(v) for v in value))
    return esc(_scalar(value))


def _fields(section: Any, path: str) -> str:
    """A dataclass as a ``<dl>``: its fields that hold a value, in declaration order."""
    items = []
    for field in dataclasses.fields(section):
        value = getattr(section, field.name)
        where = f"{path}.{field.name}"
        if _empty(value) or where in _LEFT_OUT:
            continue
        items.append(f"<dt>{esc(field.name)}</dt><dd>{_value(value, where)}</dd>")
    return f'<dl class="kv">{"".join(items)}</dl>' if items else ""


def _summary(record: RunRecord) -> str:
    title = record.arch_info.title if record.arch_info and record.arch_info.title else record.arch
    name = record.weights.name if record.weights is not None else record.arch
    device = record.device or "unknown device"
    where = f"{record.suite} / {record.dataset} / {record.setting}"
    status = "" if record.ok else " — failed"
    return f"{esc(title)} (<code>{esc(name)}</code>) · {esc(where)} · {esc(device)}{status}"


def record_details(record: RunRecord) -> str:
    """The collapsible detail of one record (closed until opened or linked to).

    Args:
        record: A record shown on the page.

    Returns:
        The ``<details>`` element.
    """
    env = record.env
    commit = env.git_commit if env is not None and env.git_commit else "not recorded"
    if env is not None and env.git_dirty:
        commit += " (uncommitted changes)"
    identity = [
        ("command", f"<code>{esc(record.command or 'not recorded')}</code>"),
        ("git commit", f"<code>{esc(commit)}</code>"),
        ("run id", f"<code>{esc(record.run_id)}</code>"),
        ("record file", f"<code>{esc(RECORDS_DIR)}/{esc(record.run_id)}.json</code>"),
        ("created", esc(record.created)),
        ("kind", esc(record.kind)),
        ("status", esc(record.status)),
        ("suite / dataset / setting", esc(f"{record.suite} / {record.dataset} / {record.setting}")),
    ]
    parts = [
        '<dl class="kv">' + "".join(f"<dt>{esc(k)}</dt><dd>{v}</dd>" for k, v in identity) + "</dl>"
    ]
    if record.error is not None:
        error = record.error
        stage = f" (stage {error.stage})" if error.stage else ""
        parts.append(
            f"<h4>Error{esc(stage)}</h4><pre>{esc(error.type)}: {esc(error.message)}</pre>"
        )
        if error.traceback:
            parts.append(
                f"<details><summary>traceback</summary><pre>{esc(error.traceback)}</pre></details>"
            )
    for key, heading in _SECTIONS:
        section = getattr(record, key)
        body = _fields(section, key) if section is not None else ""
        if body:
            parts.append(f"<h4>{esc(heading)}</h4>{body}")
    if record.amendments:
        parts.append(
            "<h4>Amendments</h4>" + "".join(_fields(a, "amendments") for a in record.amendments)
        )
    return (
        f'<details class="run" id="run-{esc(record.run_id)}"><summary>{_summary(record)}</summary>'
        + "".join(parts)
        + "</details>"
    )
