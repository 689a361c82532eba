"""The ranking tables of one ``(suite, dataset, setting)``: one per speed device and dtype.

Speed measured on different devices or dtypes is never put in one column, and CPU kernels are
part of the device (``cpu (AVX512)``, see :mod:`bench.reporting.frame`). A record without a
speed section (baseline, failed run, suite that skipped timing) is listed in every table of its
``(suite, dataset, setting)`` whose device type matches its ``env.device`` and which has no ok
row for the same architecture; when no such table exists it gets a table of its own. Rows are
ranked by mIoU (equal mIoU, equal rank); baselines are marked, not ranked; failed runs come
last with the first line of their error. Each table states its evaluation protocol, training
and speed conditions, and the per-class IoU table follows the rankings.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd

from bench.records import RunRecord
from bench.reporting._format import (
    NA,
    Row,
    arch_label,
    cell,
    device_label,
    first_line,
    fmt,
    is_ok,
    is_timed,
    md_table,
    missing,
    paper_link,
    pct,
    signed_points,
    uniform,
)
from bench.reporting.frame import per_class_rows
from bench.reporting.tables import Table, device_tables, rank_order, table_ranks
from bench.reporting.ties import PerImage, no_per_image

DISAGREE_MARK = "†"
"""Marks GFLOPs where the FLOP counter and its cross-check disagree."""
UNSUPPORTED_MARK = "‡"
"""Marks GFLOPs where the counter skipped a compute-heavy operator (an undercount)."""


def _complexity_marks(row: Row) -> str:
    marks = DISAGREE_MARK if row["disagreement"] else ""
    return marks + (UNSUPPORTED_MARK if row["unsupported_heavy_ops"] else "")


def _ranking_cells(row: Row, rank_text: str, res: str | None, bs: Any, timed: bool) -> list[str]:
    gflops = fmt(row["gflops"], 2)
    if gflops != NA:
        gflops += _complexity_marks(row)
        if not res and row["complexity_res"]:
            gflops += f" @ {row['complexity_res']}"
    cells = [
        rank_text,
        arch_label(row),
        paper_link(row["paper"]),
        NA if row["year"] is None else str(row["year"]),
        miou_cell(row),
        pct(row["pixel_acc"]),
        pct(row["mean_acc"]),
        fmt(row["params_m"], 2),
        gflops,
    ]
    if timed:
        latency = fmt(row["latency_p50_ms"], 2)
        if latency != NA and not bs and row["latency_batch_size"] is not None:
            latency += f" (bs{row['latency_batch_size']})"
        throughput = fmt(row["throughput_ips"], 1)
        if throughput != NA and row["throughput_batch"] is not None:
            throughput += f" (bs{row['throughput_batch']})"
        cells += [latency, throughput, fmt(row["peak_mem_mb"], 1), pct(row["efficiency"])]
    return cells


def _variant_cell(row: Row) -> str:
    """The fastest ok speed variant: ``compile 12.34 ms (1.80x)``, or NA."""
    if not row["speed_variant"]:
        return NA
    text = f"{row['speed_variant']} {fmt(row['speed_variant_p50_ms'], 2)} ms"
    speedup = row["speed_variant_speedup"]
    return text if missing(speedup) else f"{text} ({speedup:.2f}x)"


def miou_cell(row: Row) -> str:
    """MIoU in percent with its 95% bootstrap interval where the record has one."""
    text = pct(row["miou"])
    if text != NA and not missing(row.get("miou_ci95_lo")):
        text += f" [{100 * row['miou_ci95_lo']:.1f}, {100 * row['miou_ci95_hi']:.1f}]"
    return text


def seeds_cell(row: Row) -> str:
    """``28.9 ± 0.8 (3)``: mean and sample std of the mIoU over the row's seeds, or NA."""
    if missing(row.get("n_seeds")):
        return NA
    mean, std = 100 * row["miou_seed_mean"], 100 * row["miou_seed_std"]
    return f"{mean:.1f} ± {std:.1f} ({row['n_seeds']})"


def _ranking_table(table: Table, per_image: PerImage = no_per_image) -> list[str]:
    rows = rank_order(table.rows)
    ranks = table_ranks(table, per_image)
    res = uniform([r["complexity_res"] for r in rows])
    has_res = any(r["complexity_res"] for r in rows)
    bs = uniform([r["latency_batch_size"] for r in rows])
    timed = table.dtype is not None
    where = device_label(table.device, table.dtype)
    variants = timed and any(r["speed_variant"] for r in rows)  # speed.variants measured
    seeds = any(not missing(r.get("n_seeds")) for r in rows)  # run over several seeds
    headers = [
        "rank",
        "architecture",
        "paper",
        "year",
        "mIoU % [95% CI]" if any(not missing(r.get("miou_ci95_lo")) for r in rows) else "mIoU %",
        "pixel acc %",
        "mean acc %",
        "params (M)",
        f"GFLOPs @ {res}" if res else ("GFLOPs @ res" if has_res else "GFLOPs"),
    ]
    if seeds:
        headers.insert(5, "mIoU % over seeds (mean ± std, n)")
    if timed:
        headers += [
            f"latency p50 ms @ {where}/bs{bs}" if bs else f"latency p50 ms @ {where}",
            f"throughput img/s @ {where} (best bs)",
            f"peak mem MiB @ {table.device}",
            f"efficiency % @ {where}",
        ]
    if variants:
        headers.append("fastest variant (p50 ms, speed-up)")
    loaded = any(r["kind"] == "loaded" for r in rows)
    if loaded:  # published weights beside models trained here: say which row is which
        headers += ["weights", "published mIoU %", "measured - published (points)"]
    has_errors = any(not is_ok(r) for r in rows)
    if has_errors:
        headers.append("status")

    cells: list[list[str]] = []
    for row in rows:
        line = _ranking_cells(row, ranks[row["run_id"]], res, bs, timed)
        if seeds:
            line.insert(5, seeds_cell(row))
        if variants:
            line.append(_variant_cell(row))
        if loaded:
            trained = "baseline" if row["kind"] == "baseline" else "trained here"
            line += [
                "published" if row["weights"] else trained,
                pct(row["published_miou"]),
                signed_points(row["miou"], row["published_miou"]),
            ]
        if has_errors:
            if is_ok(row):
                line.append("ok")
            else:
                stage = f" (stage: {cell(row['error_stage'])})" if row["error_stage"] else ""
                line.append(f"error: {cell(first_line(row['error_message']))}{stage}")
        cells.append(line)
    align = ["right", "left", "left", "right"] + ["right"] * (len(headers) - 4)
    if has_errors:
        align[-1] = "left"
    return [md_table(headers, cells, align), "", *_ranking_notes(rows)]


def _ranking_notes(rows: list[Row]) -> list[str]:
    notes: list[str] = []
    if any(r["disagreement"] and not missing(r["gflops"]) for r in rows):
        notes.append(
            f"{DISAGREE_MARK} The FLOP counter and its cross-check disagree for this model "
            "(see `complexity.crosscheck` in the run record)."
        )
    heavy = sorted(
        {
            op
            for r in rows
            if r["unsupported_heavy_ops"]
            for op in r["unsupported_heavy_ops"].split(",")
        }
    )
    if heavy:
        notes.append(
            f"{UNSUPPORTED_MARK} The FLOP counter skipped compute-heavy operators "
            f"({', '.join(f'`{op}`' for op in heavy)}), so the figure is an undercount."
        )
    return [*notes, ""] if notes else []


def _describe_protocol(record: RunRecord) -> str:
    p = record.protocol
    if p is None:
        return "not recorded"
    parts: list[str] = []
    if p.split is not None:
        parts.append(f"split `{p.split}`")
    if p.mode is not None:
        parts.append(f"{p.mode} inference")
    if p.scales is not None:
        parts.append(f"scales {list(p.scales)}")
    if p.flip is not None:
        parts.append("with flip" if p.flip else "no flip")
    if p.mode == "slide" and p.crop and p.stride:
        parts.append(f"crop {p.crop[0]}x{p.crop[1]} stride {p.stride[0]}x{p.stride[1]}")
    if isinstance(p.resolution, tuple):
        parts.append(f"at {p.resolution[0]}x{p.resolution[1]}")
    elif isinstance(p.resolution, str):
        parts.append(f"at {p.resolution}")
    if p.short_side:
        parts.append(f"short side {p.short_side}")
    if p.label_resolution is not None:
        parts.append(f"scored at the {p.label_resolution} label size")
    if p.num_images is not None:
        parts.append(f"{p.num_images} images")
    return _joined(*parts)


def _describe_train(record: RunRecord) -> str:
    t = record.train
    if t is None:
        return "no training recorded"
    lr = f" lr {t.lr:g}" if t.lr is not None else ""
    return _joined(
        f"{t.steps} steps" if t.steps is not None else None,
        f"batch {t.batch_size}" if t.batch_size is not None else None,
        t.optimizer + lr if t.optimizer is not None else None,
    )


def _joined(*parts: str | None) -> str:
    """The parts that are there, comma-separated; "not recorded" when none is."""
    return ", ".join(p for p in parts if p) or "not recorded"


def _varying(label: str, rows: list[Row], describe: Callable[[RunRecord], str]) -> str:
    """One line for a per-table property; lists each variant when the rows disagree."""
    variants: dict[str, list[str]] = {}
    for row in rows:
        variants.setdefault(describe(row["record"]), []).append(row["arch"])
    if len(variants) == 1:
        return f"{label}: {next(iter(variants))}."
    listed = "; ".join(
        f"{text} ({', '.join(sorted(set(archs)))})" for text, archs in sorted(variants.items())
    )
    return f"{label} (differs between records!): {listed}."


def _table_context(table: Table) -> list[str]:
    ok_rows = [r for r in table.rows if is_ok(r)] or table.rows
    models = [r for r in ok_rows if r["kind"] == "model"] or ok_rows
    lines = [
        _varying("Evaluation protocol", ok_rows, _describe_protocol),
        "",
        _varying("Training", models, _describe_train),
        "",
    ]
    if table.dtype is None:
        return [*lines, "Speed: not measured for these records.", ""]
    timed = [r for r in table.rows if is_timed(r)]
    names = sorted({r["device_name"] for r in timed if r["device_name"]})
    threads = sorted({r["threads"] for r in timed if r["threads"] is not None})
    kinds = sorted({r["peak_mem_kind"] for r in timed if r["peak_mem_kind"]})
    detail = f"Speed: `{table.device}`"
    if names:
        detail += f" ({'; '.join(cell(n) for n in names)})"
    detail += f", dtype `{table.dtype}`"
    if threads:
        detail += f", {'/'.join(str(t) for t in threads)} threads"
    detail += f"; peak memory measured as {', '.join(f'`{k}`' for k in kinds) or 'not recorded'}."
    return [*lines, detail, ""]


def _per_class_table(frame: pd.DataFrame) -> list[str]:
    chosen, classes, with_device = per_class_rows(frame)
    if not chosen:
        return []
    headers = ["architecture", "mIoU %", *(cell(c) for c in classes)]
    cells = []
    for row in chosen:
        per_class = row["record"].metrics.per_class_iou
        cells.append(
            [
                arch_label(row, with_device=with_device),
                pct(row["miou"]),
                *(pct(per_class.get(c)) for c in classes),
            ]
        )
    return [
        "### Per-class IoU (%)",
        "",
        f"{NA} = class absent from both ground truth and predictions (excluded from the mean).",
        "",
        md_table(headers, cells, ["left"] + ["right"] * (len(headers) - 1)),
        "",
    ]


def group_tables(frame: pd.DataFrame, per_image: PerImage = no_per_image) -> list[str]:
    """Markdown lines of one ``(suite, dataset, setting)``: its ranking tables, then per-class IoU.

    Args:
        frame: :func:`~bench.reporting.frame.report_frame` rows of one group.
        per_image: The rows' per-image confusion matrices, for tie ranks
            (:func:`bench.reporting.ties.per_image_loader`; none: plain ranks).

    Returns:
        The lines, each table preceded by its heading and conditions.
    """
    lines: list[str] = []
    for tab in device_tables(frame.to_dict("records")):
        title = (
            f"### Ranking, speed on {device_label(tab.device, tab.dtype)}"
            if tab.dtype is not None
            else f"### Ranking, device {tab.device or 'unknown'} (speed not measured)"
        )
        lines += [title, "", *_table_context(tab), *_ranking_table(tab, per_image)]
    return lines + _per_class_table(frame)
