"""Leaderboard rendering: run records (schema_version 1 dicts) in, Markdown and CSV out.

Reporting reads run records and nothing else: this module never builds a model, loads a dataset
or measures anything, so a leaderboard can be regenerated anywhere from the JSON records alone.

Conventions (also written into the header of every rendered leaderboard):

* Records are validated field by field; a malformed record raises ``ValueError`` naming the
  record, the field, what was expected and what was found.
* De-duplication (:func:`select_latest`): among ``status == "ok"`` records, only the newest (by
  ``created``, then ``run_id``) is kept per *combination* ``(suite, dataset, setting, arch, device,
  dtype)``, where ``device``/``dtype`` come from the record's ``speed`` section (``device`` falls
  back to ``env.device`` when speed was not measured, ``dtype`` is then empty). An error record is
  kept only when no ok record exists for its ``(suite, dataset, setting, arch, device)`` (and its
  dtype, when the failed run recorded one; devices compare by type, ``cuda:0`` ~ ``cuda``), so a
  re-run that succeeded hides the old failure; of several such errors only the newest is kept.
* Speed measured on different devices or dtypes is never put in one column: the Markdown has one
  ranking table per ``(suite, dataset, setting, device, dtype)``. A record without a speed section
  (baseline, failed run, suite that skipped timing) is listed in every table of its
  ``(suite, dataset, setting)`` whose device type matches its ``env.device`` and which has no ok row
  for the same architecture; when no such table exists it gets a table of its own.
* Metric fractions stay fractions in the frame and the CSV; the Markdown shows percentages.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd
from tabulate import tabulate

from bench.records import SCHEMA_VERSION, RunRecord, baseline_title

NA = "–"
"""What the Markdown shows for a missing value (an en dash)."""

FRAME_COLUMNS: tuple[str, ...] = (
    "suite",
    "setting",
    "dataset",
    "arch",
    "title",
    "paper",
    "year",
    "family",
    "kind",
    "status",
    "error_type",
    "error_stage",
    "error_message",
    "miou",
    "pixel_acc",
    "mean_acc",
    "fwiou",
    "mean_dice",
    "params_m",
    "gmacs",
    "gflops",
    "complexity_res",
    "complexity_counter",
    "unsupported_ops",
    "unsupported_heavy_ops",
    "disagreement",
    "device",
    "device_name",
    "dtype",
    "latency_batch_size",
    "latency_p50_ms",
    "latency_p90_ms",
    "latency_p99_ms",
    "latency_cv",
    "throughput_ips",
    "throughput_batch",
    "peak_mem_mb",
    "peak_mem_kind",
    "efficiency",
    "achieved_gflops_per_s",
    "matmul_gflops_per_s",
    "threads",
    "train_steps",
    "train_seconds",
    "train_final_loss",
    "created",
    "run_id",
    "git_commit",
    "torch",
)
"""Column order of :func:`records_to_frame` and of ``leaderboard.csv``."""

_INT_COLUMNS = (
    "year",
    "unsupported_ops",
    "latency_batch_size",
    "throughput_batch",
    "threads",
    "train_steps",
)
_FLOAT_COLUMNS = (
    "miou",
    "pixel_acc",
    "mean_acc",
    "fwiou",
    "mean_dice",
    "params_m",
    "gmacs",
    "gflops",
    "latency_p50_ms",
    "latency_p90_ms",
    "latency_p99_ms",
    "latency_cv",
    "throughput_ips",
    "peak_mem_mb",
    "efficiency",
    "achieved_gflops_per_s",
    "matmul_gflops_per_s",
    "train_seconds",
    "train_final_loss",
)

_KINDS = ("model", "baseline")
_STATUSES = ("ok", "error")
_SECTIONS = (
    "arch_info",
    "dataset_info",
    "protocol",
    "error",
    "metrics",
    "complexity",
    "speed",
    "train",
    "env",
    "samples",
)
_METRIC_KEYS = ("miou", "pixel_acc", "mean_acc", "fwiou", "mean_dice")
_FIX = (
    "Fix: correct the record's JSON file, or delete it and re-create it with "
    "`python run_bench.py run`."
)
_ARXIV_NEW = re.compile(r"^\d{4}\.\d{4,5}(v\d+)?$")
_ARXIV_OLD = re.compile(r"^[a-z][a-z.-]*/\d{7}(v\d+)?$", re.IGNORECASE)
_HEAVY_OP_NAMES = frozenset(
    {
        "mm",
        "bmm",
        "addmm",
        "addbmm",
        "baddbmm",
        "matmul",
        "linear",
        "einsum",
        "scaled_dot_product_attention",
        "_scaled_dot_product_attention",
    }
)
_HEAVY_OP_PREFIXES = (
    "conv",
    "_conv",
    "cudnn_conv",
    "mkldnn_conv",
    "miopen_conv",
    "_scaled_dot_product",
    "_flash_attention",
    "_efficient_attention",
)
_DISAGREE_MARK = "†"
_UNSUPPORTED_MARK = "‡"


def is_heavy_op(op_name: str) -> bool:
    """Tell whether an operator a FLOP counter skipped carries real compute.

    Convolutions, matrix products and attention kernels dominate a segmentation network's cost;
    when a counter skips one of them, its GFLOPs are an undercount. Pooling, interpolation
    (including ``upsample_bilinear2d``) and element-wise operators are not "heavy".

    Args:
        op_name: Operator name as the counter reports it, e.g. ``"aten::convolution"``.

    Returns:
        True when the operator is a convolution, matrix product or attention kernel.
    """
    base = op_name.rsplit("::", 1)[-1].lower()
    return base in _HEAVY_OP_NAMES or base.startswith(_HEAVY_OP_PREFIXES)


# --------------------------------------------------------------------------------------------
# Parsing and validation
# --------------------------------------------------------------------------------------------


def _missing(value: Any) -> bool:
    """True for None and float NaN (pandas' and JSON's two spellings of "absent")."""
    return value is None or (isinstance(value, float) and math.isnan(value))


class _Reader:
    """Typed, validated access to one record's fields, with errors that name the record."""

    def __init__(self, record: Mapping[str, Any], index: int) -> None:
        self.record = record
        run_id = record.get("run_id")
        self.where = f"run record #{index}" + (
            f" (run_id {run_id!r})" if isinstance(run_id, str) and run_id else ""
        )

    def error(self, field: str, expected: str, found: Any, hint: str = "") -> ValueError:
        shown = repr(found)
        if len(shown) > 80:
            shown = shown[:77] + "..."
        hint = f" {hint}" if hint else ""
        return ValueError(
            f"{self.where}: field {field!r} should be {expected}; found {shown} "
            f"({type(found).__name__}).{hint} {_FIX}"
        )

    def section(self, key: str) -> Mapping[str, Any] | None:
        value = self.record.get(key)
        if value is None:
            return None
        if not isinstance(value, Mapping):
            raise self.error(key, "an object or null", value)
        return value

    def text(self, section: Mapping[str, Any] | None, path: str, key: str) -> str | None:
        value = None if section is None else section.get(key)
        if value is not None and not isinstance(value, str):
            raise self.error(f"{path}.{key}", "a string or null", value)
        return value

    def required(self, key: str) -> str:
        """A required, non-empty top-level string field."""
        value = self.record.get(key)
        if not isinstance(value, str) or not value:
            hint = "The field is required." if value is None else ""
            raise self.error(key, "a non-empty string", value, hint)
        return value

    def number(
        self,
        section: Mapping[str, Any] | None,
        path: str,
        key: str,
        *,
        lo: float | None = None,
        hi: float | None = None,
        hint: str = "",
    ) -> float:
        value = None if section is None else section.get(key)
        if value is None:
            return math.nan
        field = f"{path}.{key}"
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.error(field, "a number or null", value)
        result = float(value)
        if math.isnan(result):
            return math.nan
        low = -math.inf if lo is None else lo
        high = math.inf if hi is None else hi
        if math.isinf(result) or not low <= result <= high:
            expected = "a finite number" + (
                f" in [{lo:g}, {hi:g}]" if lo is not None and hi is not None else ""
            )
            if lo is not None and hi is None:
                expected += f" >= {lo:g}"
            raise self.error(field, expected, value, hint)
        return result

    def integer(
        self, section: Mapping[str, Any] | None, path: str, key: str, *, lo: int | None = None
    ) -> int | None:
        value = None if section is None else section.get(key)
        if value is None:
            return None
        field = f"{path}.{key}"
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(field, "an integer or null", value)
        if lo is not None and value < lo:
            raise self.error(field, f"an integer >= {lo}", value)
        return value

    def flag(self, section: Mapping[str, Any] | None, path: str, key: str) -> bool | None:
        value = None if section is None else section.get(key)
        if value is None:
            return None
        if not isinstance(value, bool):
            raise self.error(f"{path}.{key}", "true, false or null", value)
        return value

    def resolution(self, section: Mapping[str, Any] | None, path: str, key: str) -> str | None:
        """An ``[H, W]`` (or ``[N, C, H, W]``) list as ``"HxW"``."""
        value = None if section is None else section.get(key)
        if value is None:
            return None
        ok = (
            isinstance(value, (list, tuple))
            and len(value) >= 2
            and all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value)
        )
        if not ok:
            raise self.error(
                f"{path}.{key}", "a list of positive integers ending in [H, W], or null", value
            )
        return f"{value[-2]}x{value[-1]}"


@dataclass(frozen=True, eq=False)
class _Run:
    """One validated record: its flat frame row plus the nested parts the report needs."""

    flat: dict[str, Any]
    created_at: datetime
    per_class_iou: dict[str, float]
    class_names: tuple[str, ...]
    protocol: Mapping[str, Any] | None
    train: Mapping[str, Any] | None
    env: Mapping[str, Any] | None
    paper_params_m: float
    paper_gflops: float
    paper_convention: str | None
    paper_resolution: str | None
    paper_params_note: str | None
    record: dict[str, Any]

    @property
    def ok(self) -> bool:
        return self.flat["status"] == "ok"

    @property
    def timed(self) -> bool:
        return self.flat["dtype"] is not None

    @property
    def group(self) -> tuple[str, str, str]:
        """The ``(suite, dataset, setting)`` the record belongs to."""
        return (self.flat["suite"], self.flat["dataset"], self.flat["setting"])

    @property
    def newest_key(self) -> tuple[datetime, str]:
        return (self.created_at, self.flat["run_id"])


def _parse_created(reader: _Reader, value: str) -> datetime:
    text = value[:-1] + "+00:00" if value.endswith(("Z", "z")) else value
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise reader.error(
            "created", "an ISO-8601 timestamp such as '2026-11-27T06:16:00Z'", value
        ) from None
    # Naive timestamps are read as UTC, the zone the harness writes.
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _parse_record(record: Any, index: int) -> _Run:
    """Validate one record and flatten it into a frame row."""
    if not isinstance(record, Mapping):
        raise ValueError(
            f"run record #{index}: expected a dict (one parsed JSON run record); found "
            f"{type(record).__name__}. Fix: pass the list returned by the results loader."
        )
    if not isinstance(record, dict):
        record = dict(record)
    r = _Reader(record, index)
    version = record.get("schema_version")
    if version != SCHEMA_VERSION or isinstance(version, bool):
        raise r.error(
            "schema_version",
            f"{SCHEMA_VERSION}",
            version,
            f"This leaderboard reads schema version {SCHEMA_VERSION}; re-create the record "
            "with this version of the harness.",
        )
    run_id = r.required("run_id")
    created = r.required("created")
    suite = r.required("suite")
    setting = r.required("setting")
    arch = r.required("arch")
    dataset = r.required("dataset")
    kind = record.get("kind")
    if kind not in _KINDS:
        raise r.error("kind", " or ".join(repr(k) for k in _KINDS), kind)
    status = record.get("status")
    if status not in _STATUSES:
        raise r.error("status", " or ".join(repr(s) for s in _STATUSES), status)
    sections = {key: r.section(key) for key in _SECTIONS}
    arch_info, dataset_info = sections["arch_info"], sections["dataset_info"]
    error, metrics, complexity = sections["error"], sections["metrics"], sections["complexity"]
    speed, train, env = sections["speed"], sections["train"], sections["env"]

    error_message = r.text(error, "error", "message")
    if status == "error" and error_message is None:
        raise r.error("error.message", "a string (the record has status 'error')", error_message)

    pct_hint = "Metrics are fractions in [0, 1], not percentages."
    flat_metrics = {
        key: r.number(metrics, "metrics", key, lo=0.0, hi=1.0, hint=pct_hint)
        for key in _METRIC_KEYS
    }
    per_class: dict[str, float] = {}
    raw_per_class = None if metrics is None else metrics.get("per_class_iou")
    if raw_per_class is not None:
        if not isinstance(raw_per_class, Mapping):
            raise r.error(
                "metrics.per_class_iou", "an object {class name: IoU or null}", raw_per_class
            )
        for name in raw_per_class:
            if not isinstance(name, str):
                raise r.error("metrics.per_class_iou", "string class names as keys", name)
            per_class[name] = r.number(
                raw_per_class, "metrics.per_class_iou", name, lo=0.0, hi=1.0, hint=pct_hint
            )

    class_names: tuple[str, ...] = ()
    raw_names = None if dataset_info is None else dataset_info.get("class_names")
    if raw_names is not None:
        if not isinstance(raw_names, list) or not all(isinstance(n, str) for n in raw_names):
            raise r.error("dataset_info.class_names", "a list of strings", raw_names)
        class_names = tuple(raw_names)

    params = r.number(complexity, "complexity", "params", lo=0.0)
    unsupported = None if complexity is None else complexity.get("unsupported_ops")
    unsupported_count: int | None = None
    heavy: list[str] = []
    if unsupported is not None:
        if not isinstance(unsupported, Mapping) or not all(
            isinstance(k, str) and isinstance(v, int) and not isinstance(v, bool) and v >= 0
            for k, v in unsupported.items()
        ):
            raise r.error(
                "complexity.unsupported_ops", "an object {operator name: count >= 0}", unsupported
            )
        unsupported_count = sum(unsupported.values())
        heavy = sorted(op for op, count in unsupported.items() if count > 0 and is_heavy_op(op))

    latency = None
    if speed is not None:
        latency = speed.get("latency_ms")
        if latency is not None and not isinstance(latency, Mapping):
            raise r.error("speed.latency_ms", "an object {p50, p90, ...} or null", latency)
    speed_device = r.text(speed, "speed", "device")
    dtype = r.text(speed, "speed", "dtype")
    if speed is not None and (speed_device is None or dtype is None):
        raise r.error(
            "speed.device" if speed_device is None else "speed.dtype",
            "a string whenever the speed section is present",
            None,
        )
    device = speed_device if speed_device is not None else r.text(env, "env", "device")
    threads = r.integer(speed, "speed", "threads", lo=1)
    if threads is None:
        threads = r.integer(env, "env", "threads", lo=1)
    convention = None if arch_info is None else arch_info.get("paper_flops_convention")
    if convention not in (None, "macs", "2*macs"):
        raise r.error("arch_info.paper_flops_convention", "'macs', '2*macs' or null", convention)
    matmul = r.number(speed, "speed", "matmul_gflops_per_s", lo=0.0)
    if math.isnan(matmul):
        matmul = r.number(env, "env", "matmul_gflops_per_s", lo=0.0)

    title = r.text(arch_info, "arch_info", "title") or arch
    class0 = (class_names or tuple(per_class) or ("background",))[0]
    if kind == "baseline" and title == "all background (baseline)" and class0 != "background":
        # Records written before the runner named the class: the constant prediction is class 0.
        title = baseline_title(class0)
    flat: dict[str, Any] = {
        "suite": suite,
        "setting": setting,
        "dataset": dataset,
        "arch": arch,
        "title": title,
        "paper": r.text(arch_info, "arch_info", "paper"),
        "year": r.integer(arch_info, "arch_info", "year"),
        "family": r.text(arch_info, "arch_info", "family"),
        "kind": kind,
        "status": status,
        "error_type": r.text(error, "error", "type") if status == "error" else None,
        "error_stage": r.text(error, "error", "stage") if status == "error" else None,
        "error_message": error_message if status == "error" else None,
        **flat_metrics,
        "params_m": params / 1e6,
        "gmacs": r.number(complexity, "complexity", "gmacs", lo=0.0),
        "gflops": r.number(complexity, "complexity", "gflops", lo=0.0),
        "complexity_res": r.resolution(complexity, "complexity", "input_shape"),
        "complexity_counter": r.text(complexity, "complexity", "counter"),
        "unsupported_ops": unsupported_count,
        "unsupported_heavy_ops": ",".join(heavy) if heavy else None,
        "disagreement": r.flag(complexity, "complexity", "disagreement"),
        "device": device,
        "device_name": r.text(speed, "speed", "device_name") or r.text(env, "env", "device_name"),
        "dtype": dtype,
        "latency_batch_size": r.integer(speed, "speed", "batch_size", lo=1),
        "latency_p50_ms": r.number(latency, "speed.latency_ms", "p50", lo=0.0),
        "latency_p90_ms": r.number(latency, "speed.latency_ms", "p90", lo=0.0),
        "latency_p99_ms": r.number(latency, "speed.latency_ms", "p99", lo=0.0),
        "latency_cv": r.number(latency, "speed.latency_ms", "cv", lo=0.0),
        "throughput_ips": r.number(speed, "speed", "throughput_ips", lo=0.0),
        "throughput_batch": r.integer(speed, "speed", "throughput_batch_size", lo=1),
        "peak_mem_mb": r.number(speed, "speed", "peak_mem_mb"),
        "peak_mem_kind": r.text(speed, "speed", "peak_mem_kind"),
        "efficiency": r.number(speed, "speed", "efficiency", lo=0.0),
        "achieved_gflops_per_s": r.number(speed, "speed", "achieved_gflops_per_s", lo=0.0),
        "matmul_gflops_per_s": matmul,
        "threads": threads,
        "train_steps": r.integer(train, "train", "steps", lo=0),
        "train_seconds": r.number(train, "train", "seconds", lo=0.0),
        "train_final_loss": r.number(train, "train", "final_loss"),
        "created": created,
        "run_id": run_id,
        "git_commit": r.text(env, "env", "git_commit"),
        "torch": r.text(env, "env", "torch"),
    }
    return _Run(
        flat=flat,
        created_at=_parse_created(r, created),
        per_class_iou=per_class,
        class_names=class_names,
        protocol=sections["protocol"],
        train=train,
        env=env,
        paper_params_m=r.number(arch_info, "arch_info", "paper_params", lo=0.0) / 1e6,
        paper_gflops=r.number(arch_info, "arch_info", "paper_gflops", lo=0.0),
        paper_convention=convention,
        paper_resolution=r.resolution(arch_info, "arch_info", "paper_resolution"),
        paper_params_note=r.text(arch_info, "arch_info", "paper_params_note"),
        record=record,
    )


def _parse_all(records: Sequence[Mapping[str, Any]]) -> list[_Run]:
    if isinstance(records, (Mapping, str, bytes)):
        raise ValueError(
            f"records: expected a list of run-record dicts; found {type(records).__name__}. "
            "Fix: wrap a single record in a list."
        )
    typed = [
        r if isinstance(r, RunRecord) else RunRecord.from_dict(r, source=f"run record #{i}")
        for i, r in enumerate(records)
    ]
    return [_parse_record(record.to_dict(), i) for i, record in enumerate(typed)]


def _device_type(device: str | None) -> str:
    """``"cuda:1"`` -> ``"cuda"``: the env device may name an index the speed device omits."""
    return (device or "").split(":", 1)[0]


def _select(runs: list[_Run]) -> list[_Run]:
    """The de-duplication rule documented in the module docstring; returns runs sorted."""
    newest_ok: dict[tuple[Any, ...], _Run] = {}
    for run in runs:
        if not run.ok:
            continue
        f = run.flat
        key = (*run.group, f["arch"], f["device"], f["dtype"])
        if key not in newest_ok or run.newest_key > newest_ok[key].newest_key:
            newest_ok[key] = run
    ok_devices = {(*key[:4], _device_type(key[4])) for key in newest_ok}
    newest_error: dict[tuple[Any, ...], _Run] = {}
    for run in runs:
        if run.ok:
            continue
        f = run.flat
        key = (*run.group, f["arch"], f["device"], f["dtype"])
        if f["dtype"] is not None:
            covered = key in newest_ok
        else:
            covered = (*key[:4], _device_type(key[4])) in ok_devices
        if covered:
            continue
        if key not in newest_error or run.newest_key > newest_error[key].newest_key:
            newest_error[key] = run
    return sorted([*newest_ok.values(), *newest_error.values()], key=_csv_sort_key)


def _csv_sort_key(run: _Run) -> tuple[Any, ...]:
    f = run.flat
    miou = f["miou"]
    return (
        *run.group,
        f["device"] or "",
        f["dtype"] is None,  # timed rows first, then records without speed
        f["dtype"] or "",
        0 if run.ok else 1,
        0 if not math.isnan(miou) else 1,
        -miou if not math.isnan(miou) else 0.0,
        f["arch"],
        f["run_id"],
    )


def _frame(runs: list[_Run]) -> pd.DataFrame:
    frame = pd.DataFrame([run.flat for run in runs], columns=list(FRAME_COLUMNS))
    for column in _INT_COLUMNS:
        frame[column] = frame[column].astype("Int64")
    for column in _FLOAT_COLUMNS:
        frame[column] = frame[column].astype("float64")
    frame["disagreement"] = frame["disagreement"].astype("boolean")
    return frame


def records_to_frame(records: list[dict]) -> pd.DataFrame:
    """Flatten run records into a table, one row per record, in the order given.

    No de-duplication happens here; see :func:`select_latest`. Metric columns (``miou``,
    ``pixel_acc``, ``mean_acc``, ``fwiou``, ``mean_dice``, ``efficiency``) are fractions in [0, 1];
    ``params_m`` is in millions; ``gflops`` is the record's 2 x GMACs; latencies are in ms;
    ``device`` is the speed device, or ``env.device`` when speed was not measured (``dtype`` is
    then missing). Missing values are NaN / ``<NA>`` / None.

    Args:
        records: Parsed JSON run records (schema_version 1).

    Returns:
        A DataFrame with exactly the columns of :data:`FRAME_COLUMNS`, in that order.

    Raises:
        ValueError: A record is not a dict, has another schema version, or has a field of the
            wrong type or range; the message names the record, field, expectation and fix.
    """
    return _frame(_parse_all(records))


def select_latest(records: list[dict]) -> list[dict]:
    """Apply the leaderboard's de-duplication rule and return the surviving records.

    Among ok records, the newest (``created``, then ``run_id``) per ``(suite, dataset, setting,
    arch, device, dtype)`` is kept. An error record survives only when there is no ok record for
    its ``(suite, dataset, setting, arch, device)`` (and dtype, when it has one); of several such
    errors the newest is kept.

    Args:
        records: Parsed JSON run records (schema_version 1).

    Returns:
        The surviving records (the same dict objects), sorted by suite, dataset, setting, device,
        dtype (records without speed after the timed ones), then ok before error, mIoU
        descending, arch and run_id.

    Raises:
        ValueError: A record is malformed (see :func:`records_to_frame`).
    """
    return [run.record for run in _select(_parse_all(records))]


def leaderboard_frame(records: list[dict]) -> pd.DataFrame:
    """The de-duplicated leaderboard as a frame: what ``leaderboard.csv`` holds.

    Args:
        records: Parsed JSON run records (schema_version 1).

    Returns:
        :func:`records_to_frame` of the records kept by :func:`select_latest`, in the order
        :func:`select_latest` documents, with a fresh ``RangeIndex``.

    Raises:
        ValueError: A record is malformed (see :func:`records_to_frame`).
    """
    return _frame(_select(_parse_all(records)))


def leaderboard_csv(records: list[dict]) -> str:
    """Render the de-duplicated leaderboard as CSV text.

    Columns are :data:`FRAME_COLUMNS` in order; rows are ordered as :func:`select_latest`
    documents; floats are written with ``%.10g`` and missing values as empty fields, so the same
    records always give byte-identical text.

    Args:
        records: Parsed JSON run records (schema_version 1).

    Returns:
        The CSV text, ``\\n`` line endings, header first.

    Raises:
        ValueError: A record is malformed (see :func:`records_to_frame`).
    """
    return leaderboard_frame(records).to_csv(index=False, float_format="%.10g", lineterminator="\n")


# --------------------------------------------------------------------------------------------
# Formatting helpers
# --------------------------------------------------------------------------------------------


def _cell(text: str) -> str:
    """Make free text safe inside a Markdown table cell."""
    return " ".join(text.split()).replace("|", "\\|")


def _fmt(value: Any, digits: int, scale: float = 1.0) -> str:
    if _missing(value):
        return NA
    return f"{float(value) * scale:.{digits}f}"


def _pct(value: Any) -> str:
    return _fmt(value, 1, 100.0)


def _paper_link(paper: str | None) -> str:
    if not paper:
        return NA
    if _ARXIV_NEW.match(paper) or _ARXIV_OLD.match(paper):
        return f"[{paper}](https://arxiv.org/abs/{paper})"
    return _cell(paper)


def _arch_label(run: _Run, *, with_device: bool = False) -> str:
    f = run.flat
    label = f"{_cell(f['title'])} (`{f['arch']}`)" if f["title"] != f["arch"] else f"`{f['arch']}`"
    if f["kind"] == "baseline":
        label += " *baseline*"
    if with_device:
        label += f" [{_device_label(f['device'], f['dtype'])}]"
    return label


def _device_label(device: str | None, dtype: str | None) -> str:
    return f"{device or 'unknown device'}/{dtype}" if dtype else f"{device or 'unknown device'}"


def _uniform(values: list[Any]) -> Any:
    """The single distinct non-missing value, or None when there are none or several."""
    distinct = {v for v in values if not _missing(v)}
    return next(iter(distinct)) if len(distinct) == 1 else None


def _first_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    line = lines[0] if lines else "(empty message)"
    return line if len(line) <= 160 else line[:157] + "..."


def _table(headers: list[str], rows: list[list[str]], align: list[str]) -> str:
    return tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True, colalign=align)


# --------------------------------------------------------------------------------------------
# Markdown sections
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class _Table:
    device: str | None
    dtype: str | None
    runs: list[_Run]


def _device_tables(runs: list[_Run]) -> list[_Table]:
    """Split one (suite, dataset, setting) into ranking tables, one per (device, dtype)."""
    timed_keys = sorted({(r.flat["device"] or "", r.flat["dtype"]) for r in runs if r.timed})
    tables: list[_Table] = []
    placed: set[int] = set()
    for device, dtype in timed_keys:
        members = [
            r
            for r in runs
            if r.timed and (r.flat["device"] or "", r.flat["dtype"]) == (device, dtype)
        ]
        ok_archs = {r.flat["arch"] for r in members if r.ok}
        for run in runs:
            if not run.timed and _device_type(run.flat["device"]) == _device_type(device):
                placed.add(id(run))
                if run.flat["arch"] not in ok_archs:
                    members.append(run)
        tables.append(_Table(device or None, dtype, members))
    leftovers = [r for r in runs if not r.timed and id(r) not in placed]
    for device in sorted({r.flat["device"] or "" for r in leftovers}):
        members = [r for r in leftovers if (r.flat["device"] or "") == device]
        tables.append(_Table(device or None, None, members))
    return tables


def _rank_order(runs: list[_Run]) -> list[_Run]:
    def key(run: _Run) -> tuple[Any, ...]:
        miou = run.flat["miou"]
        has = not math.isnan(miou)
        tier = 0 if run.ok and has else 1 if run.ok else 2
        return (tier, -miou if has else 0.0, run.flat["arch"], run.flat["run_id"])

    return sorted(runs, key=key)


def _complexity_marks(run: _Run) -> str:
    marks = ""
    if run.flat["disagreement"]:
        marks += _DISAGREE_MARK
    if run.flat["unsupported_heavy_ops"]:
        marks += _UNSUPPORTED_MARK
    return marks


def _ranking_table(table: _Table) -> list[str]:
    runs = _rank_order(table.runs)
    flats = [r.flat for r in runs]
    res = _uniform([f["complexity_res"] for f in flats])
    has_res = any(f["complexity_res"] for f in flats)
    bs = _uniform([f["latency_batch_size"] for f in flats])
    timed = table.dtype is not None
    where = _device_label(table.device, table.dtype)
    headers = [
        "rank",
        "architecture",
        "paper",
        "year",
        "mIoU %",
        "pixel acc %",
        "mean acc %",
        "params (M)",
        f"GFLOPs @ {res}" if res else ("GFLOPs @ res" if has_res else "GFLOPs"),
    ]
    if timed:
        headers += [
            f"latency p50 ms @ {where}/bs{bs}" if bs else f"latency p50 ms @ {where}",
            f"throughput img/s @ {where} (best bs)",
            f"peak mem MiB @ {table.device}",
            f"efficiency % @ {where}",
        ]
    has_errors = any(not r.ok for r in runs)
    if has_errors:
        headers.append("status")

    rows: list[list[str]] = []
    rank = 0
    previous: float | None = None
    position = 0
    for run in runs:
        f = run.flat
        if f["kind"] == "baseline":
            rank_text = "baseline"
        elif run.ok and not math.isnan(f["miou"]):
            position += 1
            if previous is None or f["miou"] != previous:
                rank = position
            previous = f["miou"]
            rank_text = str(rank)
        else:
            rank_text = NA
        gflops = _fmt(f["gflops"], 2)
        if gflops != NA:
            gflops += _complexity_marks(run)
            if not res and f["complexity_res"]:
                gflops += f" @ {f['complexity_res']}"
        row = [
            rank_text,
            _arch_label(run),
            _paper_link(f["paper"]),
            NA if f["year"] is None else str(f["year"]),
            _pct(f["miou"]),
            _pct(f["pixel_acc"]),
            _pct(f["mean_acc"]),
            _fmt(f["params_m"], 2),
            gflops,
        ]
        if timed:
            latency = _fmt(f["latency_p50_ms"], 2)
            if latency != NA and not bs and f["latency_batch_size"] is not None:
                latency += f" (bs{f['latency_batch_size']})"
            throughput = _fmt(f["throughput_ips"], 1)
            if throughput != NA and f["throughput_batch"] is not None:
                throughput += f" (bs{f['throughput_batch']})"
            row += [latency, throughput, _fmt(f["peak_mem_mb"], 1), _pct(f["efficiency"])]
        if has_errors:
            if run.ok:
                row.append("ok")
            else:
                stage = f" (stage: {_cell(f['error_stage'])})" if f["error_stage"] else ""
                row.append(f"error: {_cell(_first_line(f['error_message']))}{stage}")
        rows.append(row)
    align = ["right", "left", "left", "right"] + ["right"] * (len(headers) - 4)
    if has_errors:
        align[-1] = "left"
    lines = [_table(headers, rows, align), ""]

    notes: list[str] = []
    if any(r.flat["disagreement"] and not math.isnan(r.flat["gflops"]) for r in runs):
        notes.append(
            f"{_DISAGREE_MARK} The FLOP counter and its cross-check disagree for this model "
            "(see `complexity.crosscheck` in the run record)."
        )
    heavy = sorted(
        {
            op
            for r in runs
            if r.flat["unsupported_heavy_ops"]
            for op in r.flat["unsupported_heavy_ops"].split(",")
        }
    )
    if heavy:
        notes.append(
            f"{_UNSUPPORTED_MARK} The FLOP counter skipped compute-heavy operators "
            f"({', '.join(f'`{op}`' for op in heavy)}), so the figure is an undercount."
        )
    if notes:
        lines += [*notes, ""]
    return lines


def _describe_protocol(run: _Run) -> str:
    p = run.protocol
    if p is None:
        return "not recorded"
    parts: list[str] = []
    if p.get("split") is not None:
        parts.append(f"split `{p['split']}`")
    if p.get("mode") is not None:
        parts.append(f"{p['mode']} inference")
    if p.get("scales") is not None:
        parts.append(f"scales {p['scales']}")
    if p.get("flip") is not None:
        parts.append("with flip" if p["flip"] else "no flip")
    if p.get("mode") == "slide" and p.get("crop") and p.get("stride"):
        parts.append(f"crop {p['crop'][0]}x{p['crop'][1]} stride {p['stride'][0]}x{p['stride'][1]}")
    res = p.get("resolution")
    if isinstance(res, list) and len(res) == 2:
        parts.append(f"at {res[0]}x{res[1]}")
    elif isinstance(res, str):
        parts.append(f"at {res}")
    if p.get("short_side"):
        parts.append(f"short side {p['short_side']}")
    if p.get("label_resolution") is not None:
        parts.append(f"scored at the {p['label_resolution']} label size")
    if p.get("num_images") is not None:
        parts.append(f"{p['num_images']} images")
    return ", ".join(parts) if parts else "not recorded"


def _describe_train(run: _Run) -> str:
    t = run.train
    if t is None:
        return "no training recorded"
    parts: list[str] = []
    if t.get("steps") is not None:
        parts.append(f"{t['steps']} steps")
    if t.get("batch_size") is not None:
        parts.append(f"batch {t['batch_size']}")
    if t.get("optimizer") is not None:
        lr = f" lr {t['lr']:g}" if isinstance(t.get("lr"), (int, float)) else ""
        parts.append(f"{t['optimizer']}{lr}")
    return ", ".join(parts) if parts else "not recorded"


def _varying(label: str, runs: list[_Run], describe: Any) -> str:
    """One line for a per-table property; lists each variant when the runs disagree."""
    variants: dict[str, list[str]] = {}
    for run in runs:
        variants.setdefault(describe(run), []).append(run.flat["arch"])
    if len(variants) == 1:
        return f"{label}: {next(iter(variants))}."
    listed = "; ".join(
        f"{text} ({', '.join(sorted(set(archs)))})" for text, archs in sorted(variants.items())
    )
    return f"{label} (differs between records!): {listed}."


def _table_context(table: _Table) -> list[str]:
    ok_runs = [r for r in table.runs if r.ok] or table.runs
    lines = [
        _varying("Evaluation protocol", ok_runs, _describe_protocol),
        "",
        _varying(
            "Training",
            [r for r in ok_runs if r.flat["kind"] == "model"] or ok_runs,
            _describe_train,
        ),
        "",
    ]
    if table.dtype is not None:
        timed = [r for r in table.runs if r.timed]
        names = sorted({r.flat["device_name"] for r in timed if r.flat["device_name"]})
        threads = sorted({r.flat["threads"] for r in timed if r.flat["threads"] is not None})
        kinds = sorted({r.flat["peak_mem_kind"] for r in timed if r.flat["peak_mem_kind"]})
        detail = f"Speed: `{table.device}`"
        if names:
            detail += f" ({'; '.join(_cell(n) for n in names)})"
        detail += f", dtype `{table.dtype}`"
        if threads:
            detail += f", {'/'.join(str(t) for t in threads)} threads"
        detail += (
            f"; peak memory measured as {', '.join(f'`{k}`' for k in kinds) or 'not recorded'}."
        )
        lines += [detail, ""]
    else:
        lines += ["Speed: not measured for these records.", ""]
    return lines


def _per_class_runs(runs: list[_Run]) -> tuple[list[_Run], list[str], bool]:
    """Ok runs with per-class IoU in rank order, the class columns, and whether to show device."""
    chosen = _rank_order([r for r in runs if r.ok and r.per_class_iou])
    names: list[str] = []
    for run in sorted(chosen, key=lambda r: r.flat["run_id"]):
        for name in run.class_names:
            if name not in names:
                names.append(name)
    extra = sorted({n for r in chosen for n in r.per_class_iou} - set(names))
    devices = {(r.flat["device"], r.flat["dtype"]) for r in chosen}
    return chosen, names + extra, len(devices) > 1


def _per_class_table(runs: list[_Run]) -> list[str]:
    chosen, classes, with_device = _per_class_runs(runs)
    if not chosen:
        return []
    headers = ["architecture", "mIoU %", *(_cell(c) for c in classes)]
    rows = [
        [
            _arch_label(run, with_device=with_device),
            _pct(run.flat["miou"]),
            *(_pct(run.per_class_iou.get(c)) for c in classes),
        ]
        for run in chosen
    ]
    return [
        "### Per-class IoU (%)",
        "",
        f"{NA} = class absent from both ground truth and predictions (excluded from the mean).",
        "",
        _table(headers, rows, ["left"] + ["right"] * (len(headers) - 1)),
        "",
    ]


def _signed_pct(measured: float, reference: float) -> str:
    if _missing(measured) or _missing(reference) or reference == 0:
        return NA
    return f"{(measured - reference) / reference * 100.0:+.1f}"


def _paper_section(runs: list[_Run]) -> list[str]:
    """Paper-reported params/compute against the measurement, per (dataset, architecture)."""
    by_key: dict[tuple[str, str], list[_Run]] = {}
    for run in runs:
        if run.ok and run.flat["kind"] == "model":
            by_key.setdefault((run.flat["dataset"], run.flat["arch"]), []).append(run)
    rows: list[list[str]] = []
    for (dataset, _arch), group in sorted(by_key.items()):
        # Prefer a record counted at the paper's resolution, then any with complexity.
        at_res = [
            r
            for r in group
            if r.paper_resolution and r.flat["complexity_res"] == r.paper_resolution
        ]
        with_complexity = [r for r in group if not math.isnan(r.flat["params_m"])]
        run = max(at_res or with_complexity or group, key=lambda r: r.newest_key)
        f = run.flat
        if math.isnan(run.paper_params_m) and math.isnan(run.paper_gflops):
            continue
        paper_res = run.paper_resolution
        if math.isnan(run.paper_gflops):
            paper_text = measured_text = compute_diff = NA
        else:
            unit = {"macs": "GMACs", "2*macs": "GFLOPs (2 x MACs)"}.get(
                run.paper_convention or "", "G (convention not stated)"
            )
            paper_text = f"{run.paper_gflops:.2f} {unit}" + (f" @ {paper_res}" if paper_res else "")
            compute_diff = NA
            if paper_res is None or f["complexity_res"] != paper_res:
                where = f" (measured at {f['complexity_res']})" if f["complexity_res"] else ""
                measured_text = f"not measured at paper resolution{where}"
            elif run.paper_convention == "macs":
                measured_text = f"{_fmt(f['gmacs'], 2)} GMACs"
                compute_diff = _signed_pct(f["gmacs"], run.paper_gflops)
            elif run.paper_convention == "2*macs":
                measured_text = f"{_fmt(f['gflops'], 2)} GFLOPs"
                compute_diff = _signed_pct(f["gflops"], run.paper_gflops)
            else:
                measured_text = f"{_fmt(f['gmacs'], 2)} GMACs = {_fmt(f['gflops'], 2)} GFLOPs"
        rows.append(
            [
                _arch_label(run),
                f"{dataset} ({len(run.class_names)} classes)" if run.class_names else dataset,
                _fmt(run.paper_params_m, 2),
                _fmt(f["params_m"], 2),
                _signed_pct(f["params_m"], run.paper_params_m),
                paper_text,
                measured_text,
                compute_diff,
                _cell(run.paper_params_note or ""),
            ]
        )
    lines = [
        "## Paper vs measured",
        "",
        "Measured here at this suite's class count and complexity resolution. `PAPERS.md` "
        "(`python run_bench.py papers`) measures every entry under its paper's own class count "
        "and resolution.",
        "",
    ]
    if not rows:
        return [*lines, "No architecture in these records declares paper params or compute.", ""]
    headers = [
        "architecture",
        "dataset",
        "paper params (M)",
        "measured params (M)",
        "params diff %",
        "paper compute @ res (convention)",
        "measured, same res & convention",
        "compute diff %",
        "paper params note",
    ]
    align = ["left", "left", "right", "right", "right", "left", "left", "right", "left"]
    if not any(row[-1] for row in rows):
        headers, align, rows = headers[:-1], align[:-1], [row[:-1] for row in rows]
    return [
        *lines,
        "Parameter counts depend on the number of classes (the classifier head), so a paper's "
        "count for its own dataset can differ from ours by the head's size. Compute is compared "
        "only when the record's complexity was counted at the paper's resolution, in the paper's "
        "own convention (GMACs or 2 x MACs).",
        "",
        _table(headers, rows, align),
        "",
    ]


def _environment_section(runs: list[_Run]) -> list[str]:
    def distinct(key: str) -> str:
        values = sorted({str(r.env[key]) for r in runs if r.env and r.env.get(key) is not None})
        return ", ".join(values) if values else "not recorded"

    lines = [
        "## Environment",
        "",
        f"- torch {distinct('torch')}; torchvision {distinct('torchvision')}; "
        f"Python {distinct('python')}",
    ]
    devices: dict[str, list[_Run]] = {}
    for run in runs:
        devices.setdefault(run.flat["device"] or "unknown", []).append(run)
    for device, members in sorted(devices.items()):
        names = sorted({r.flat["device_name"] for r in members if r.flat["device_name"]})
        threads = sorted({r.flat["threads"] for r in members if r.flat["threads"] is not None})
        matmul = sorted(
            {
                r.flat["matmul_gflops_per_s"]
                for r in members
                if not math.isnan(r.flat["matmul_gflops_per_s"])
            }
        )
        line = f"- device `{device}`: {'; '.join(_cell(n) for n in names) or 'name not recorded'}"
        if threads:
            line += f"; {'/'.join(str(t) for t in threads)} threads"
        if matmul:
            line += f"; measured dense matmul {', '.join(f'{m:.1f}' for m in matmul)} GFLOP/s"
        lines.append(line)
    commits = sorted(
        {
            f"{r.env['git_commit']}{' (dirty)' if r.env.get('git_dirty') else ''}"
            for r in runs
            if r.env and r.env.get("git_commit")
        }
    )
    lines.append(f"- git commit(s): {', '.join(f'`{c}`' for c in commits) or 'not recorded'}")
    lines.append(f"- seed(s): {distinct('seed')}")
    first = min(runs, key=lambda r: r.newest_key).flat["created"]
    last = max(runs, key=lambda r: r.newest_key).flat["created"]
    lines.append(f"- runs created {first} to {last}" if first != last else f"- run created {first}")
    return [*lines, ""]


def _header(n_records: int, n_shown: int) -> list[str]:
    return [
        "# Semantic-segmentation leaderboard",
        "",
        f"Rendered by `bench.leaderboard` from {n_records} run record(s), {n_shown} after "
        "de-duplication. Do not edit by hand: regenerate it from the run records with "
        "`python run_bench.py leaderboard`.",
        "",
        "## Conventions",
        "",
        "- **Accuracy** (mIoU, pixel accuracy, mean class accuracy, per-class IoU) is in percent, "
        "computed from one confusion matrix accumulated over the whole evaluation split. Classes "
        "absent from both ground truth and prediction are excluded from the means "
        "(mmsegmentation convention) and shown as " + NA + ".",
        "- **Params** in millions.",
        "- **GFLOPs** = 2 x GMACs (fvcore counts one multiply-add as one FLOP; we store MACs and "
        "double once), for one image at the resolution in the column header. "
        f"{_DISAGREE_MARK} = the FLOP counter and its cross-check disagree; "
        f"{_UNSUPPORTED_MARK} = the counter skipped a convolution/matmul-like operator "
        "(undercount).",
        "- **Latency** = median (p50) of batch-1 forward passes in ms, on the device/dtype named "
        "in the column header.",
        "- **Throughput** = best images/s over the batch-size sweep (the batch size that achieved "
        "it in parentheses).",
        "- **Peak memory** in MiB (2^20 bytes) over batch-1 forward passes; how it was measured "
        "(e.g. `cpu_rss_delta_sampled`, `cuda_max_allocated`) is stated under each table.",
        "- **Efficiency** = achieved GFLOP/s (2 x GMACs x best images/s) / the dense matmul "
        "GFLOP/s measured on the same device and dtype, in percent. It can exceed 100% where "
        "the backend's convolution kernels outrun the one large fp32 GEMM used as reference.",
        "- **One table per device and dtype**: speed measured on different devices is never "
        "mixed in one column. Records without speed (baselines, failed runs) appear in the tables "
        "of the device they ran on.",
        "- **De-duplication**: the newest ok record (by `created`, then `run_id`) per suite, "
        "dataset, setting, architecture, device and dtype is shown; a failed run is shown (at the "
        "bottom) only when no ok record exists for it.",
        "- **Baselines** (rank `baseline`, marked *baseline*) are trivial reference predictors, "
        "not ranked.",
        "",
    ]


def render_markdown(records: list[dict]) -> str:
    """Render the leaderboard as GitHub-flavoured Markdown.

    Sections: a header stating units and conventions; the environment taken from the records;
    per ``(suite, dataset, setting)`` one ranking table per speed device/dtype (ranked by mIoU,
    baselines marked, failed runs at the bottom) with its evaluation protocol, and a per-class
    IoU table; finally a "paper vs measured" table. Rendering is deterministic: the same records
    always give byte-identical text.

    Args:
        records: Parsed JSON run records (schema_version 1).

    Returns:
        The Markdown text, ending in a newline.

    Raises:
        ValueError: ``records`` is empty, or a record is malformed (see :func:`records_to_frame`).
    """
    runs = _parse_all(records)
    if not runs:
        raise ValueError(
            "render_markdown: no run records given; expected at least one record. Fix: run "
            "`python run_bench.py run` first, then render the records it wrote."
        )
    shown = _select(runs)
    lines = _header(len(runs), len(shown)) + _environment_section(shown)
    groups: dict[tuple[str, str, str], list[_Run]] = {}
    for run in shown:
        groups.setdefault(run.group, []).append(run)
    for (suite, dataset, setting), members in sorted(groups.items()):
        lines += [f"## {suite} / {dataset} (setting `{setting}`)", ""]
        for table in _device_tables(members):
            title = (
                f"### Ranking, speed on {_device_label(table.device, table.dtype)}"
                if table.dtype is not None
                else f"### Ranking, device {table.device or 'unknown'} (speed not measured)"
            )
            lines += [title, "", *_table_context(table), *_ranking_table(table)]
        lines += _per_class_table(members)
    lines += _paper_section(shown)
    while lines and lines[-1] == "":
        lines.pop()
    return "\n".join(lines) + "\n"


def per_class_iou_frame(records: list[dict]) -> pd.DataFrame:
    """Per-class IoU of one ``(suite, dataset, setting)``, architectures x classes.

    Args:
        records: Run records of a single ``(suite, dataset, setting)``; de-duplicated here.

    Returns:
        A frame indexed by a display label (``"FCN-8s (fcn8s)"``, plus ``" [device/dtype]"`` when
        the records span several devices), rows in mIoU order, one column per class in the
        dataset's class order, values IoU fractions (NaN where the class was absent). Empty when
        no ok record has per-class IoU.

    Raises:
        ValueError: The records span several ``(suite, dataset, setting)`` groups, or a record
            is malformed.
    """
    shown = _select(_parse_all(records))
    groups = sorted({run.group for run in shown})
    if len(groups) > 1:
        raise ValueError(
            f"per_class_iou_frame: records span {len(groups)} (suite, dataset, setting) groups "
            f"{groups}; expected one. Fix: filter the records to one group first."
        )
    chosen, classes, with_device = _per_class_runs(shown)
    labels = []
    for run in chosen:
        f = run.flat
        label = f"{f['title']} ({f['arch']})" if f["title"] != f["arch"] else f["arch"]
        if with_device:
            label += f" [{_device_label(f['device'], f['dtype'])}]"
        labels.append(label)
    data = [[run.per_class_iou.get(c, math.nan) for c in classes] for run in chosen]
    return pd.DataFrame(
        data, index=pd.Index(labels, name="architecture"), columns=classes, dtype="float64"
    )


def write_leaderboard(results_dir: Path, records: list[dict]) -> list[Path]:
    """Write ``LEADERBOARD.md``, ``leaderboard.csv`` and the figures under ``plots/``.

    Args:
        results_dir: Directory the records were loaded from; outputs go here.
        records: Parsed JSON run records (schema_version 1).

    Returns:
        The written paths: the Markdown file, the CSV file, then the PNGs in the order
        :func:`bench.plots.write_plots` returns them.

    Raises:
        ValueError: ``records`` is empty, or a record is malformed.
    """
    # Imported here because bench.plots builds on this module's frame (a module-level import
    # in both directions would be circular).
    from bench.plots import write_plots

    results_dir = Path(results_dir)
    if not records:
        raise ValueError(f"no run records in {results_dir}; run `python run_bench.py run` first.")
    markdown = render_markdown(records)
    csv_text = leaderboard_csv(records)
    results_dir.mkdir(parents=True, exist_ok=True)
    md_path = results_dir / "LEADERBOARD.md"
    csv_path = results_dir / "leaderboard.csv"
    md_path.write_text(markdown, encoding="utf-8", newline="\n")
    csv_path.write_text(csv_text, encoding="utf-8", newline="\n")
    return [md_path, csv_path, *write_plots(records, results_dir)]
