"""Run records as a pandas frame: flattening, de-duplication, ordering and the CSV.

Everything the Markdown (:mod:`bench.reporting.markdown`) and the figures
(:mod:`bench.reporting.plots`) show is built here from :class:`~bench.records.RunRecord` objects,
so both renderers read the same rows; neither imports the other.

* The flat frame (:func:`records_to_frame`) is ``pd.json_normalize`` over
  :meth:`RunRecord.to_dict` with a column map to :data:`FRAME_COLUMNS`, plus a few derived
  columns (params in millions, the complexity resolution ``HxW``, the skipped heavy operators,
  the device label).
* **Device.** ``device`` is the speed device (``speed.device``), or ``env.device`` when speed
  was not measured (``dtype`` is then missing). CPU kernels are part of the device: a CPU record
  that names its CPU (``env.cpu``, schema 2) is on ``cpu (<capability>)``, torch's CPU capability
  (``cpu (AVX512)``; ``cpu-AVX512`` in plot file names), or on ``cpu (<kernel key>)``
  (``cpu (AuthenticAMD/25/17/AVX512)``) where CPUs of one capability but another
  :attr:`~bench.devices.CpuInfo.kernel_key` (vendor, family, model, kernel pins) are rendered
  together. Records that do not name their CPU stay on ``cpu``. So speed from different kernels
  never shares a column, a table or a figure.
* **De-duplication** (:func:`select_latest`): among ``status == "ok"`` records, only the newest
  (by ``created``, then ``run_id``) is kept per *combination* ``(suite, dataset, setting, arch,
  weights, device, dtype)`` (``weights``: the published weights of a ``loaded`` record, so
  each published model of one architecture keeps its row). An error record is kept only when no ok record exists for its ``(suite,
  dataset, setting, arch, device)`` (and its dtype, when the failed run recorded one; devices
  compare by type, ``cuda:0`` ~ ``cuda``), so a re-run that succeeded hides the old failure; of
  several such errors only the newest is kept.
* Metric fractions stay fractions in the frame and the CSV; the Markdown shows percentages.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from bench.errors import ConfigError
from bench.records import RunRecord
from bench.reporting.tables import GROUP, rank_column, rank_order

__all__ = [  # rank_order and GROUP live in bench.reporting.tables; imported from here too
    "FRAME_COLUMNS",
    "GROUP",
    "known_cpu",
    "leaderboard_csv",
    "leaderboard_frame",
    "per_class_iou_frame",
    "per_class_rows",
    "rank_order",
    "records_to_frame",
    "report_frame",
    "select_latest",
]
from bench.reporting.ties import per_image_loader

if TYPE_CHECKING:
    from bench.devices import CpuInfo

# Every column of the frame, in order: (pd.json_normalize column of RunRecord.to_dict() that it
# copies, or None where it is derived below; its dtype).
_COLUMNS: dict[str, tuple[str | None, str]] = {
    "suite": ("suite", "text"),
    "setting": ("setting", "text"),
    "dataset": ("dataset", "text"),
    "arch": ("arch", "text"),
    "title": (None, "text"),  # arch_info.title, else arch
    "paper": ("arch_info.paper", "text"),
    "year": ("arch_info.year", "Int64"),
    "family": ("arch_info.family", "text"),
    "kind": ("kind", "text"),
    "weights": ("weights.name", "text"),  # kind "loaded": the published weights evaluated
    "published_miou": (None, "float64"),  # their published mIoU (fraction), where declared
    "status": ("status", "text"),
    "error_type": ("error.type", "text"),  # error columns: failed runs only
    "error_stage": ("error.stage", "text"),
    "error_message": ("error.message", "text"),
    "rank": (None, "text"),  # in its ranking table (leaderboard_frame; "=2": a tie)
    "miou": ("metrics.miou", "float64"),
    "miou_ci95_lo": (None, "float64"),  # metrics.miou_ci95: 95% bootstrap over the images
    "miou_ci95_hi": (None, "float64"),
    "n_seeds": (None, "Int64"),  # ok rows pooled over seeds (records sharing a seed_group)
    "miou_seed_mean": (None, "float64"),  # their mean and sample standard deviation
    "miou_seed_std": (None, "float64"),
    "pixel_acc": ("metrics.pixel_acc", "float64"),
    "mean_acc": ("metrics.mean_acc", "float64"),
    "fwiou": ("metrics.fwiou", "float64"),
    "mean_dice": ("metrics.mean_dice", "float64"),
    "params_m": (None, "float64"),  # complexity.params / 1e6
    "gmacs": ("complexity.gmacs", "float64"),
    "gflops": ("complexity.gflops", "float64"),
    "complexity_res": (None, "text"),  # complexity.input_shape as HxW
    "complexity_counter": ("complexity.counter", "text"),
    "unsupported_ops": (None, "Int64"),  # calls of operators the counter skipped
    "unsupported_heavy_ops": (None, "text"),  # those of them that carry compute
    "disagreement": ("complexity.disagreement", "boolean"),
    "device": (None, "text"),  # see device_labels
    "device_name": (None, "text"),  # speed.device_name, else env.device_name
    "dtype": ("speed.dtype", "text"),
    "latency_batch_size": ("speed.batch_size", "Int64"),
    "latency_p50_ms": ("speed.latency_ms.p50", "float64"),
    "latency_p90_ms": ("speed.latency_ms.p90", "float64"),
    "latency_p99_ms": ("speed.latency_ms.p99", "float64"),
    "latency_cv": ("speed.latency_ms.cv", "float64"),
    "throughput_ips": ("speed.throughput_ips", "float64"),
    "throughput_batch": ("speed.throughput_batch_size", "Int64"),
    "speed_variant": (None, "text"),  # speed.variants: the ok one with the lowest p50
    "speed_variant_p50_ms": (None, "float64"),  # its latency p50
    "speed_variant_speedup": (None, "float64"),  # its speed-up over eager
    "peak_mem_mb": ("speed.peak_mem_mb", "float64"),
    "peak_mem_kind": ("speed.peak_mem_kind", "text"),
    "efficiency": ("speed.efficiency", "float64"),
    "achieved_gflops_per_s": ("speed.achieved_gflops_per_s", "float64"),
    "matmul_gflops_per_s": (None, "float64"),  # speed's, else env's
    "threads": (None, "Int64"),  # speed's, else env's
    "train_steps": ("train.steps", "Int64"),
    "train_seconds": ("train.seconds", "float64"),
    "train_final_loss": ("train.final_loss", "float64"),
    "created": ("created", "text"),
    "run_id": ("run_id", "text"),
    "git_commit": ("env.git_commit", "text"),
    "torch": ("env.torch", "text"),
}
FRAME_COLUMNS: tuple[str, ...] = tuple(_COLUMNS)
"""Column order of :func:`records_to_frame` and of ``leaderboard.csv``."""

# The json_normalize columns the derived columns read.
_DERIVED_SOURCES = (
    "arch",
    "arch_info.title",
    "complexity.params",
    "speed.device_name",
    "env.device_name",
    "speed.threads",
    "env.threads",
    "speed.matmul_gflops_per_s",
    "env.matmul_gflops_per_s",
)
_ERROR_COLUMNS = ["error_type", "error_stage", "error_message"]
# Operators that carry real compute (convolutions, matrix products, attention).
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


def is_heavy_op(op_name: str) -> bool:
    """Tells whether an operator a FLOP counter skipped carries real compute.

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


def known_cpu(record: RunRecord) -> CpuInfo | None:
    """The CPU whose kernels ran ``record`` on the CPU, or None where the record does not say.

    Args:
        record: A run record.

    Returns:
        ``env.cpu`` when the record's device is the CPU and ``env.cpu`` has a non-empty
        :attr:`~bench.devices.CpuInfo.kernel_key`; None otherwise (schema-1 records, CUDA runs).
    """
    cpu = record.env.cpu if record.env is not None else None
    if record.device_type != "cpu" or cpu is None or not cpu.kernel_key:
        return None
    return cpu


def device_labels(records: Sequence[RunRecord]) -> list[str | None]:
    """The ``device`` each record is shown under (see the module docstring), in record order.

    Args:
        records: The records rendered together; a CPU label is short (``cpu (AVX512)``) unless
            another of these records ran on CPU kernels of the same capability but another
            kernel key.

    Returns:
        One label per record: the raw device (``cpu``, ``cuda:0``; None when unknown) for records
        that do not name their CPU, ``cpu (<capability>)`` or ``cpu (<kernel key>)`` otherwise.
    """
    keys = {cpu.kernel_key: cpu.capability for r in records if (cpu := known_cpu(r)) is not None}
    per_capability = Counter(keys.values())
    labels: list[str | None] = []
    for record in records:
        cpu = known_cpu(record)
        if cpu is None:
            labels.append(record.device)
        elif cpu.capability and per_capability[cpu.capability] == 1:
            labels.append(f"cpu ({cpu.capability})")
        else:
            labels.append(f"cpu ({cpu.kernel_key})")
    return labels


def _resolution(shape: Any) -> str | None:
    """``[N, C, H, W]`` or ``[H, W]`` as ``"HxW"``."""
    if not isinstance(shape, list | tuple) or len(shape) < 2:
        return None
    return f"{shape[-2]}x{shape[-1]}"


def _unsupported(record: RunRecord) -> tuple[int | None, str | None]:
    """(total skipped operator calls, comma-joined skipped heavy operators) of a record."""
    ops = record.complexity.unsupported_ops if record.complexity is not None else None
    if ops is None:
        return None, None
    heavy = sorted(op for op, count in ops.items() if count > 0 and is_heavy_op(op))
    return sum(ops.values()), ",".join(heavy) or None


def _first_present(first: pd.Series, second: pd.Series) -> pd.Series:
    """``first`` where it holds a value (not null, not ``""``), else ``second``."""
    present = first.notna() & first.astype(object).ne("")
    return first.astype(object).where(present, second.astype(object))


def _check_records(records: Any) -> None:
    if isinstance(records, RunRecord) or not all(isinstance(r, RunRecord) for r in records):
        found = (
            records
            if isinstance(records, RunRecord)
            else next(r for r in records if not isinstance(r, RunRecord))
        )
        raise TypeError(
            f"bench.reporting takes a list of RunRecord; found {type(found).__name__}. Read "
            "records with bench.records.load_records, or type dicts with RunRecord.from_dict."
        )


def _published_miou(record: RunRecord) -> float:
    """The published mIoU of a ``loaded`` record's weights, as a fraction (NaN if none)."""
    figures = record.weights.published if record.weights is not None else ()
    return next((m.value / 100 for m in figures if m.metric == "miou"), math.nan)


def _build(records: Sequence[RunRecord]) -> pd.DataFrame:
    """The frame of ``records``, one row each, in order.

    :data:`FRAME_COLUMNS` plus the columns the renderers and the selection use: ``record`` (the
    RunRecord), ``created_at`` (UTC), ``device_type``, ``device_key`` and ``dtype_key``
    (``""`` for missing).
    """
    _check_records(records)
    records = list(records)
    copied = {column: source for column, (source, _) in _COLUMNS.items() if source is not None}
    sources = sorted({*copied.values(), *_DERIVED_SOURCES})
    flat = pd.json_normalize([r.to_dict() for r in records]) if records else pd.DataFrame()
    flat = flat.reindex(index=pd.RangeIndex(len(records)), columns=sources)
    frame = pd.DataFrame({column: flat[source] for column, source in copied.items()})
    frame["title"] = _first_present(flat["arch_info.title"], flat["arch"])
    frame.loc[frame["status"] != "error", _ERROR_COLUMNS] = None
    frame["params_m"] = flat["complexity.params"].astype("float64") / 1e6
    frame["complexity_res"] = [
        _resolution(r.complexity.input_shape) if r.complexity is not None else None for r in records
    ]
    unsupported = [_unsupported(r) for r in records]
    frame["unsupported_ops"] = pd.array([u[0] for u in unsupported], dtype="Int64")
    frame["unsupported_heavy_ops"] = [u[1] for u in unsupported]
    frame["published_miou"] = [_published_miou(r) for r in records]
    intervals = [r.metrics.miou_ci95 if r.metrics is not None else None for r in records]
    frame["miou_ci95_lo"] = [ci[0] if ci else math.nan for ci in intervals]
    frame["miou_ci95_hi"] = [ci[1] if ci else math.nan for ci in intervals]
    frame["rank"] = None  # set by leaderboard_frame, which knows the tables
    frame["n_seeds"] = None  # set by report_frame, over the selected rows (_seed_stats)
    frame["miou_seed_mean"] = frame["miou_seed_std"] = math.nan
    best = [r.speed.best_variant() if r.speed is not None else None for r in records]
    frame["speed_variant"] = [v.name if v else None for v in best]
    frame["speed_variant_p50_ms"] = [v.latency_ms.p50 if v else math.nan for v in best]  # type: ignore[union-attr]
    frame["speed_variant_speedup"] = [
        v.speedup if v is not None and v.speedup is not None else math.nan for v in best
    ]
    frame["device"] = device_labels(records)
    frame["device_name"] = _first_present(flat["speed.device_name"], flat["env.device_name"])
    # Both sides numeric first: filling a float column from an all-None (object) one is
    # deprecated in pandas.
    for column in ("threads", "matmul_gflops_per_s"):
        speed = pd.to_numeric(flat[f"speed.{column}"], errors="coerce")
        frame[column] = speed.fillna(pd.to_numeric(flat[f"env.{column}"], errors="coerce"))
    frame = frame[list(FRAME_COLUMNS)].copy()
    for column, (_, dtype) in _COLUMNS.items():
        if dtype == "text":  # None, not NaN, for a missing text: the renderers test its truth
            values = frame[column].astype(object)
            frame[column] = values.where(values.notna(), None)
        else:
            frame[column] = frame[column].astype(dtype)
    frame["record"] = pd.Series(records, index=frame.index, dtype=object)
    frame["created_at"] = pd.to_datetime([r.created_at for r in records], utc=True)
    frame["device_type"] = [r.device_type for r in records]
    frame["device_key"] = frame["device"].fillna("")
    frame["dtype_key"] = frame["dtype"].fillna("")
    frame["weights_key"] = frame["weights"].fillna("")
    frame["seed_group"] = [r.seed_group for r in records]
    return frame


def _seed_stats(frame: pd.DataFrame) -> pd.DataFrame:
    """Fills ``n_seeds``, ``miou_seed_mean`` and ``miou_seed_std`` of pooled rows.

    Pooled: ok rows of several seeds (records of one suite, dataset, ``seed_group``, arch,
    weights, device and dtype) among the selected rows; other rows keep them missing.
    """
    key = ["suite", "dataset", "seed_group", "arch", "weights_key", "device_key", "dtype_key"]
    pooled = frame[(frame["status"] == "ok") & frame["seed_group"].notna() & frame["miou"].notna()]
    for _, rows in pooled.groupby(key, sort=False):
        if len(rows) > 1:
            frame.loc[rows.index, "n_seeds"] = len(rows)
            frame.loc[rows.index, "miou_seed_mean"] = rows["miou"].mean()
            frame.loc[rows.index, "miou_seed_std"] = rows["miou"].std(ddof=1)
    return frame


def _select(frame: pd.DataFrame) -> pd.DataFrame:
    """The de-duplication rule of the module docstring, rows in :func:`select_latest` order."""
    # Published weights of one architecture are different models: one row each.
    combination = [*GROUP, "arch", "weights_key", "device_key", "dtype_key"]
    by_type = [*GROUP, "arch", "weights_key", "device_type"]
    newest_last = frame.sort_values(["created_at", "run_id"], kind="stable")
    ok = newest_last[newest_last["status"] == "ok"].drop_duplicates(combination, keep="last")
    errors = newest_last[newest_last["status"] != "ok"]

    def keys(rows: pd.DataFrame, columns: list[str]) -> list[tuple[Any, ...]]:
        return list(rows[columns].itertuples(index=False, name=None))

    ok_combinations, ok_types = set(keys(ok, combination)), set(keys(ok, by_type))
    covered = np.array(
        [
            (combo in ok_combinations) if dtype else (kind in ok_types)
            for combo, kind, dtype in zip(
                keys(errors, combination), keys(errors, by_type), errors["dtype_key"], strict=True
            )
        ],
        dtype=bool,
    )
    errors = errors[~covered].drop_duplicates(combination, keep="last")
    shown = pd.concat([ok, errors])
    order = shown.assign(
        untimed=shown["dtype_key"] == "",  # timed rows first, then records without speed
        failed=shown["status"] != "ok",
        no_miou=shown["miou"].isna(),
        neg_miou=-shown["miou"].fillna(0.0),
    )
    order = order.sort_values(
        [*GROUP, "device_key", "untimed", "dtype_key", "failed", "no_miou", "neg_miou"]
        + ["arch", "weights_key", "run_id"],
        kind="stable",
    )
    return shown.loc[order.index].reset_index(drop=True)


def report_frame(records: Sequence[RunRecord]) -> pd.DataFrame:
    """The de-duplicated leaderboard with the columns the renderers need besides the CSV's.

    Args:
        records: Run records.

    Returns:
        :func:`leaderboard_frame` plus the columns ``record`` (the :class:`RunRecord` of each
        row), ``created_at`` (UTC timestamp), ``device_type`` (``cpu``/``cuda``), ``device_key``
        and ``dtype_key`` (``device``/``dtype`` with ``""`` for missing).

    Raises:
        TypeError: An element of ``records`` is not a :class:`RunRecord`.
    """
    return _seed_stats(_select(_build(records)))


def records_to_frame(records: Sequence[RunRecord]) -> pd.DataFrame:
    """Flattens run records into a table, one row per record, in the order given.

    No de-duplication happens here; see :func:`select_latest`. Metric columns (``miou``,
    ``pixel_acc``, ``mean_acc``, ``fwiou``, ``mean_dice``, ``efficiency``) are fractions in
    [0, 1]; ``params_m`` is in millions (the network as evaluated: unknown for a version-1 record
    of an entry with auxiliary heads); ``gflops`` is the record's 2 x GMACs; latencies are in
    ms; ``device`` is described in the module docstring (``dtype`` is missing when speed was not
    measured). Missing values are NaN / ``<NA>`` / None.

    Args:
        records: Run records.

    Returns:
        A DataFrame with exactly the columns of :data:`FRAME_COLUMNS`, in that order.

    Raises:
        TypeError: An element of ``records`` is not a :class:`RunRecord`.
    """
    return _build(records)[list(FRAME_COLUMNS)]


def select_latest(records: Sequence[RunRecord]) -> list[RunRecord]:
    """Applies the leaderboard's de-duplication rule and returns the surviving records.

    Among ok records, the newest (``created``, then ``run_id``) per ``(suite, dataset, setting,
    arch, device, dtype)`` is kept. An error record survives only when there is no ok record for
    its ``(suite, dataset, setting, arch, device)`` (and dtype, when it has one); of several such
    errors the newest is kept.

    Args:
        records: Run records.

    Returns:
        The surviving records (the same objects), sorted by suite, dataset, setting, device,
        dtype (records without speed after the timed ones), then ok before error, mIoU
        descending, arch and run_id.

    Raises:
        TypeError: An element of ``records`` is not a :class:`RunRecord`.
    """
    return list(report_frame(records)["record"])


def leaderboard_frame(
    records: Sequence[RunRecord], results_dir: Path | str | None = None
) -> pd.DataFrame:
    """The de-duplicated leaderboard as a frame: what ``leaderboard.csv`` holds.

    Args:
        records: Run records.
        results_dir: The folder they were read from: the per-image confusion matrices their
            records name are read there for tie ranks (``rank``); None: plain ranks.

    Returns:
        :func:`records_to_frame` of the records kept by :func:`select_latest`, in the order
        :func:`select_latest` documents, with a fresh ``RangeIndex``, and ``rank`` filled in.

    Raises:
        TypeError: An element of ``records`` is not a :class:`RunRecord`.
        RecordError: A per-image file's hash is not its record's.
    """
    frame = report_frame(records)
    frame["rank"] = rank_column(frame, per_image_loader(results_dir))
    return frame[list(FRAME_COLUMNS)]


def leaderboard_csv(records: Sequence[RunRecord], results_dir: Path | str | None = None) -> str:
    r"""Renders the de-duplicated leaderboard as CSV text.

    Columns are :data:`FRAME_COLUMNS` in order; rows are ordered as :func:`select_latest`
    documents; floats are written with ``%.10g`` and missing values as empty fields, so the same
    records always give byte-identical text.

    Args:
        records: Run records.
        results_dir: See :func:`leaderboard_frame`.

    Returns:
        The CSV text, ``\n`` line endings, header first.

    Raises:
        TypeError: An element of ``records`` is not a :class:`RunRecord`.
        RecordError: See :func:`leaderboard_frame`.
    """
    frame = leaderboard_frame(records, results_dir)
    return frame.to_csv(index=False, float_format="%.10g", lineterminator="\n")


def _with_device(row: dict[str, Any]) -> str:
    dtype = row["dtype"]
    device = row["device"] or "unknown device"
    return f"{device}/{dtype}" if dtype else device


def per_class_rows(frame: pd.DataFrame) -> tuple[list[dict[str, Any]], list[str], bool]:
    """What the per-class IoU table of one section shows.

    Args:
        frame: :func:`report_frame` rows of one ``(suite, dataset, setting)``.

    Returns:
        The ok rows with per-class IoU in rank order, the class columns (the datasets' class
        order, then any other class names sorted), and whether the rows span several
        devices/dtypes (then each row names its device).
    """
    rows = frame.to_dict("records")
    chosen = rank_order([r for r in rows if r["status"] == "ok" and _per_class(r["record"])])
    names: list[str] = []
    for row in sorted(chosen, key=lambda r: r["run_id"]):
        info = row["record"].dataset_info
        for name in info.class_names if info is not None else ():
            if name not in names:
                names.append(name)
    extra = sorted({n for r in chosen for n in _per_class(r["record"])} - set(names))
    # Rows without a speed measurement (the baseline) have no device of their own to tell apart.
    devices = {(r["device"], r["dtype"]) for r in chosen if isinstance(r["dtype"], str)}
    return chosen, names + extra, len(devices) > 1


def _per_class(record: RunRecord) -> dict[str, float | None]:
    metrics = record.metrics
    return (metrics.per_class_iou or {}) if metrics is not None else {}


def per_class_iou_frame(data: Sequence[RunRecord] | pd.DataFrame) -> pd.DataFrame:
    """Per-class IoU of one ``(suite, dataset, setting)``, architectures x classes.

    Args:
        data: Run records of a single ``(suite, dataset, setting)`` (de-duplicated here), or
            their :func:`report_frame`.

    Returns:
        A frame indexed by a display label (``"FCN-8s (fcn8s)"``, plus ``" [device/dtype]"`` when
        the records span several devices), rows in mIoU order, one column per class in the
        dataset's class order, values IoU fractions (NaN where the class was absent). Empty when
        no ok record has per-class IoU.

    Raises:
        ConfigError: The records span several ``(suite, dataset, setting)`` groups.
        TypeError: An element of ``data`` is not a :class:`RunRecord`.
    """
    frame = data if isinstance(data, pd.DataFrame) else report_frame(data)
    groups = sorted(set(frame[GROUP].itertuples(index=False, name=None)))
    if len(groups) > 1:
        raise ConfigError(
            f"per_class_iou_frame: records span {len(groups)} (suite, dataset, setting) groups "
            f"{groups}; expected one. Fix: filter the records to one group first."
        )
    chosen, classes, with_device = per_class_rows(frame)
    labels = []
    for row in chosen:
        name = row["weights"] or row["arch"]  # published weights: one row per weights file
        label = f"{row['title']} ({name})" if row["title"] != name else name
        labels.append(label + (f" [{_with_device(row)}]" if with_device else ""))
    values = [
        [np.nan if (v := _per_class(r["record"]).get(c)) is None else v for c in classes]
        for r in chosen
    ]
    return pd.DataFrame(
        values, index=pd.Index(labels, name="architecture"), columns=classes, dtype="float64"
    )
