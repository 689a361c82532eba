"""The figures of the static site (:mod:`bench.reporting.site`): plotly specs and sample images.

* **Trade-offs** (:func:`tradeoff_specs`): mIoU against batch-1 latency, one figure per speed
  device and dtype, and against GFLOPs, one per complexity resolution, with the Pareto front
  (:func:`bench.reporting.plots.pareto_front`) and the baselines as dashed lines; the same
  figures, for the same rows, as :func:`bench.reporting.plots.write_plots` draws. Points are read
  from the CSV rows, so a hover label shows the table's numbers, and each point carries its run
  id (``customdata[0]``) for the page's script to highlight the table row.
* **Per-class IoU** (:func:`heatmap_spec`): :func:`~bench.reporting.frame.per_class_iou_frame`
  as a heat map.
* **Samples** (:func:`sample_strips`): the qualitative samples, read from the records' ``.npz``
  files by :mod:`bench.reporting.qualitative` and coloured by its palette, one PNG strip per
  column (image, ground truth, each prediction), the samples stacked top to bottom.

A spec is a plain ``{"data": [...], "layout": {...}}`` dict for ``Plotly.newPlot``, built here
without plotly's Python objects (so its JSON text depends on nothing but the records); PNGs
are written by Pillow without metadata, so re-rendering gives the same bytes.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image

from bench.reporting.frame import per_class_iou_frame
from bench.reporting.plots import SCORED_KINDS, pareto_front
from bench.reporting.qualitative import _IGNORE_INDEX, _palette, _sample_columns
from bench.reporting.site_tables import CsvRow, number_text

Spec = dict[str, Any]
"""A plotly figure as JSON-ready data: ``{"data": [...], "layout": {...}}``."""

_FRONT_COLOUR = "#e8710a"
_OTHER_COLOUR = "#4c78a8"
_MAX_MARKER_PX = 38.0
_MIN_MARKER_PX = 7.0
_PANEL_WIDTH = 240  # sample panels wider than this are reduced by a whole factor
_GAP = 4  # white pixels between stacked samples


def _log_ticks(low: float, high: float) -> list[float]:
    """1-2-5 ticks spanning ``[low, high]`` (plotly's own log ticks read "2, 5, 100")."""
    ticks = []
    for exponent in range(math.floor(math.log10(low)) - 1, math.ceil(math.log10(high)) + 1):
        for mantissa in (1, 2, 5):
            value = float(f"{mantissa}e{exponent}")
            if low / 1.3 <= value <= high * 1.3:
                ticks.append(value)
    return ticks


def _layout(title: str, x_title: str, xs: Sequence[float]) -> dict[str, Any]:
    xaxis: dict[str, Any] = {"title": {"text": x_title}, "type": "linear"}
    if max(xs) / min(xs) > 10.0:  # as the PNG figures: log when the values span over 10x
        ticks = _log_ticks(min(xs), max(xs))
        xaxis.update(type="log", tickvals=ticks, ticktext=[f"{t:g}" for t in ticks])
    return {
        "title": {"text": title, "font": {"size": 13}, "x": 0.01, "xanchor": "left"},
        "xaxis": xaxis,
        "yaxis": {"title": {"text": "mIoU (%)"}},
        "hovermode": "closest",
        "showlegend": True,
        "margin": {"l": 60, "r": 20, "t": 60, "b": 55},
        "legend": {"orientation": "h", "y": -0.2},
        "font": {"family": "system-ui, sans-serif", "size": 12},
        "paper_bgcolor": "#ffffff",
        "plot_bgcolor": "#ffffff",
        "shapes": [],
        "annotations": [],
    }


def _hover(row: CsvRow, x_column: str, x_label: str) -> str:
    name = row["weights"] or row["arch"]
    lines = [
        f"<b>{row['title']}</b> ({name})" if row["title"] != name else f"<b>{name}</b>",
        f"mIoU {number_text('miou', row['miou'])}%",
        f"{x_label} {number_text(x_column, row[x_column])}",
        f"params {number_text('params_m', row['params_m'])} M",
    ]
    return "<br>".join(lines)


def _scatter(
    rows: list[CsvRow], baselines: list[CsvRow], x_column: str, x_label: str, title: str
) -> Spec:
    """One trade-off figure: the points, the Pareto front, the baselines as dashed lines."""
    rows = sorted(rows, key=lambda r: (-float(r["miou"]), r["arch"], r["run_id"]))
    xs = [float(r[x_column]) for r in rows]
    ys = [float(r["miou"]) * 100.0 for r in rows]
    params = [float(r["params_m"]) if r["params_m"] else math.nan for r in rows]
    largest = max((p for p in params if math.isfinite(p)), default=math.nan)
    sizes = [
        max(_MIN_MARKER_PX, _MAX_MARKER_PX * math.sqrt(p / largest))
        if math.isfinite(p) and largest > 0
        else 12.0
        for p in params
    ]
    front = pareto_front(list(zip(xs, ys, strict=True)))
    on_front = set(front)
    labelled = len(rows) <= 6  # more labels than this overlap: hover names the point

    def trace(indices: Sequence[int], name: str, colour: str, *, line: bool) -> dict[str, Any]:
        return {
            "type": "scatter",
            "name": name,
            "mode": ("lines+" if line else "") + ("markers+text" if labelled else "markers"),
            "x": [xs[i] for i in indices],
            "y": [ys[i] for i in indices],
            "text": [rows[i]["weights"] or rows[i]["title"] for i in indices] if labelled else [],
            "textposition": "top center",
            "textfont": {"size": 10},
            "customdata": [
                [rows[i]["run_id"], _hover(rows[i], x_column, x_label)] for i in indices
            ],
            "hovertemplate": "%{customdata[1]}<extra></extra>",
            "marker": {
                "size": [sizes[i] for i in indices],
                "color": colour,
                "opacity": 0.85,
                "line": {"width": 1, "color": "#222222"},
            },
            "line": {"shape": "hv", "color": _FRONT_COLOUR, "width": 1.5},
        }

    others = [i for i in range(len(rows)) if i not in on_front]
    data = [trace(front, "Pareto front", _FRONT_COLOUR, line=True)]
    if others:
        data.append(trace(others, "other models", _OTHER_COLOUR, line=False))
    layout = _layout(title, x_label, xs)
    for row in baselines:
        y = float(row["miou"]) * 100.0
        layout["shapes"].append(
            {
                "type": "line",
                "xref": "paper",
                "x0": 0,
                "x1": 1,
                "y0": y,
                "y1": y,
                "line": {"dash": "dash", "color": "#888888", "width": 1},
            }
        )
        name = row["title"] if "baseline" in row["title"] else f"baseline: {row['title']}"
        layout["annotations"].append(
            {
                "xref": "paper",
                "x": 0.01,
                "y": y,
                "yanchor": "bottom",
                "xanchor": "left",
                "showarrow": False,
                "text": f"{name}: {number_text('miou', row['miou'])}%",
                "font": {"size": 10, "color": "#666666"},
            }
        )
    return {"data": data, "layout": layout}


def tradeoff_specs(
    group: pd.DataFrame, csv_rows: dict[str, CsvRow], where: str
) -> list[tuple[str, Spec]]:
    """The trade-off figures of one ``(suite, dataset, setting)``.

    Args:
        group: The group's :func:`~bench.reporting.frame.report_frame` rows.
        csv_rows: Every CSV row by run id.
        where: The group's name for figure titles.

    Returns:
        ``(kind, spec)`` pairs: ``latency`` per device/dtype with two timed models or more,
        then ``gflops`` per complexity resolution (two counted models or more).
    """
    ok = group[group["status"] == "ok"]
    models = ok[ok["kind"].isin(SCORED_KINDS) & ok["miou"].notna()]
    baselines = [
        csv_rows[r]
        for r in ok[(ok["kind"] == "baseline") & ok["miou"].notna()]
        .sort_values(["created", "run_id"], ascending=False)
        .drop_duplicates("arch")
        .sort_values("arch")["run_id"]
    ]
    specs: list[tuple[str, Spec]] = []
    timed = models[models["latency_p50_ms"] > 0]
    for device, dtype in sorted(set(zip(timed["device"], timed["dtype"], strict=True))):
        same = timed[(timed["device"] == device) & (timed["dtype"] == dtype)]
        if len(same) < 2:
            continue
        label = f"latency p50 ms (batch 1, {device}/{dtype})"
        rows = [csv_rows[r] for r in same["run_id"]]
        title = f"{where}: mIoU vs latency on {device}/{dtype}"
        specs.append(("latency", _scatter(rows, baselines, "latency_p50_ms", label, title)))
    counted = models[models["gflops"] > 0]
    if len(counted) >= 2:
        for res in sorted(set(counted["complexity_res"].dropna())):
            rows = [csv_rows[r] for r in counted[counted["complexity_res"] == res]["run_id"]]
            label = f"GFLOPs @ {res} (2 x GMACs, one image)"
            title = f"{where}: mIoU vs compute at {res}"
            specs.append(("gflops", _scatter(rows, baselines, "gflops", label, title)))
    return specs


def heatmap_spec(group: pd.DataFrame, where: str) -> Spec | None:
    """Per-class IoU (%) of one group as a heat map, or None when no record has it.

    Args:
        group: The group's :func:`~bench.reporting.frame.report_frame` rows.
        where: The group's name for the title.

    Returns:
        The spec: rows in mIoU order (best at the top), one column per class; classes absent
        from both ground truth and predictions are gaps (grey) and read "–".
    """
    table = per_class_iou_frame(group)
    if table.empty:
        return None
    values = table.to_numpy(dtype=float) * 100.0
    z = [[None if math.isnan(v) else round(float(v), 6) for v in line] for line in values]
    text = [["–" if v is None else f"{v:.0f}" for v in line] for line in z]
    labels = [str(i) for i in table.index]
    longest = max((len(label) for label in labels), default=10)
    data = [
        {
            "type": "heatmap",
            "z": z,
            "x": [str(c) for c in table.columns],
            "y": labels,
            "text": text,
            "texttemplate": "%{text}",
            "textfont": {"size": 10},
            "hovertemplate": "%{y}<br>%{x}: IoU %{z:.1f}%<extra></extra>",
            "colorscale": "Viridis",
            "zmin": 0,
            "zmax": 100,
            "xgap": 1,
            "ygap": 1,
            "colorbar": {"title": {"text": "IoU (%)"}},
        }
    ]
    layout = {
        "title": {"text": f"{where}: per-class IoU (%)", "font": {"size": 13}, "x": 0.01},
        "height": max(300, 150 + 24 * len(labels)),
        "margin": {"l": min(420, 20 + 7 * longest), "r": 20, "t": 50, "b": 90},
        "xaxis": {"tickangle": -40, "side": "bottom"},
        "yaxis": {"autorange": "reversed", "automargin": True},
        "plot_bgcolor": "#d9d9d9",
        "paper_bgcolor": "#ffffff",
        "font": {"family": "system-ui, sans-serif", "size": 12},
    }
    return {"data": data, "layout": layout}


@dataclass(frozen=True)
class SampleStrips:
    """The samples of one group, ready for the page.

    Attributes:
        titles: One title per strip (``image``, ``ground truth``, then each prediction).
        pngs: One PNG (bytes) per strip, same order.
        indices: The sample indices, top to bottom.
        legend: ``(class name, (r, g, b))`` per class shown, then the ignore label.
        width: The strips' width in pixels, as stored.
    """

    titles: tuple[str, ...]
    pngs: tuple[bytes, ...]
    indices: tuple[int, ...]
    legend: tuple[tuple[str, tuple[int, int, int]], ...]
    width: int


def _png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(array)).save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def _strip(panels: list[np.ndarray | None], shape: tuple[int, int]) -> bytes:
    """Panels (H, W, 3) stacked top to bottom with white gaps; a missing panel is light grey."""
    h, w = shape
    strip = np.full((len(panels) * (h + _GAP) - _GAP, w, 3), 255, dtype=np.uint8)
    for k, panel in enumerate(panels):
        top = k * (h + _GAP)
        strip[top : top + h] = 230 if panel is None else panel
    return _png(strip)


def sample_strips(
    group: pd.DataFrame, results_dir: Path, max_images: int = 4
) -> SampleStrips | None:
    """The qualitative samples of one group (see the module docstring).

    Args:
        group: The group's :func:`~bench.reporting.frame.report_frame` rows.
        results_dir: The folder the records' sample paths are relative to.
        max_images: Most samples shown.

    Returns:
        The strips, or None when no ok record of the group has readable sample files (the
        reasons are warned about, as for the qualitative figure).
    """
    with_samples = group["record"].map(lambda record: record.samples is not None)
    rows = group[(group["status"] == "ok") & with_samples]
    if rows.empty:
        return None
    rows = rows.sort_values(["miou", "arch", "run_id"], ascending=[False, True, True])
    inputs, columns, source = _sample_columns(rows, Path(results_dir))
    if inputs is None or not columns:
        return None
    info = source.dataset_info if source is not None else None
    class_names = list(info.class_names) if info is not None else []
    ignore = info.ignore_index if info is not None and info.ignore_index is not None else None
    ignore = _IGNORE_INDEX if ignore is None else ignore
    n = min(max_images, inputs["image"].shape[0])
    indices = [int(i) for i in inputs["indices"][:n].tolist()]
    maps = [*inputs["label"][:n], *(m[i] for _, m in columns for i in indices if i in m)]
    values = {int(v) for label_map in maps for v in np.unique(label_map)}
    present = values - {ignore}
    colours = _palette(info, max(len(class_names), max(present, default=-1) + 1))
    h, w = inputs["image"].shape[1:3]
    step = max(1, w // _PANEL_WIDTH)
    shape = (len(range(0, h, step)), len(range(0, w, step)))

    def small(array: np.ndarray) -> np.ndarray:
        return array[::step, ::step]

    strips = [
        _strip([small(inputs["image"][r]) for r in range(n)], shape),
        _strip([small(colours[inputs["label"][r]]) for r in range(n)], shape),
        *(
            _strip([small(colours[m[i]]) if i in m else None for i in indices], shape)
            for _, m in columns
        ),
    ]
    named = [
        *class_names,
        *(f"class {i}" for i in range(len(class_names), max(present, default=-1) + 1)),
    ]
    legend = [(name, tuple(int(c) for c in colours[i])) for i, name in enumerate(named)]
    if ignore in values:
        legend.append((f"ignore ({ignore})", (255, 255, 255)))
    titles = ("image", "ground truth", *(t.replace("\n", " · ") for t, _ in columns))
    return SampleStrips(
        titles=titles,
        pngs=tuple(strips),
        indices=tuple(indices),
        legend=tuple(legend),  # type: ignore[arg-type]
        width=shape[1],
    )
