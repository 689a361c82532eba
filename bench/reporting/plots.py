"""Leaderboard figures: accuracy/cost trade-offs, per-class IoU and qualitative samples.

Like :mod:`bench.reporting.markdown`, this module builds on :mod:`bench.reporting.frame`: it
reads run records (and the sample ``.npz`` files they point to) and nothing else. Figures are
drawn on ``matplotlib.figure.Figure`` objects with the Agg canvas, never through ``pyplot``: no
global figure registry, no GUI backend, so it works headless and leaves the caller's matplotlib
state alone. PNGs are saved without the ``Software`` metadata entry, so the same records give the
same files on the same matplotlib/font installation, and written atomically (a killed render
leaves the old file or the new one).

File names written by :func:`write_plots` under ``<results_dir>/plots/`` (each part reduced to
``[A-Za-z0-9._-]``):

* ``<suite>__<dataset>__<setting>__miou_vs_latency_<device>-<dtype>.png``: one per speed device
  (CPU kernels are part of the device: ``miou_vs_latency_cpu-AVX512-fp32.png`` for records that
  name their CPU, see :mod:`bench.reporting.frame`).
* ``<suite>__<dataset>__<setting>__miou_vs_gflops_<H>x<W>.png``: one per complexity resolution.
* ``<suite>__<dataset>__<setting>__per_class_iou.png``
* ``<suite>__<dataset>__<setting>__qualitative.png``: when sample files exist (drawn by
  :mod:`bench.reporting.qualitative`).
* ``<suite>__<dataset>__<setting>__learning_curves.png``: when a model record has a loss curve
  (drawn by :mod:`bench.reporting.curves`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from bench.errors import ConfigError
from bench.records import RunRecord
from bench.reporting._figure import Data, as_frame, labels, new_figure, one_group, save, slug
from bench.reporting._labels import place_labels
from bench.reporting.curves import curve_rows, plot_learning_curves
from bench.reporting.frame import FRAME_COLUMNS, GROUP, per_class_iou_frame
from bench.reporting.qualitative import plot_qualitative_grid

_MAX_MARKER_AREA = 600.0
_MIN_MARKER_AREA = 12.0


SCORED_KINDS = ("model", "loaded")
"""Rows drawn as points: models trained here and published weights scored here."""


def pareto_front(points: Sequence[tuple[float, float]]) -> list[int]:
    """Indices of the Pareto-optimal points when minimising x and maximising y.

    A point is dominated when another point is at least as good in both coordinates and strictly
    better in one. Identical points do not dominate each other, so duplicates on the front are all
    returned.

    Args:
        points: ``(x, y)`` pairs, e.g. ``(latency_ms, miou)``; finite numbers.

    Returns:
        Indices into ``points`` of the non-dominated points, sorted by x ascending (then y
        descending, then index), i.e. in the order the front is drawn.

    Raises:
        ValueError: A point is not a pair of finite numbers.
    """
    pts: list[tuple[float, float]] = []
    for i, point in enumerate(points):
        try:
            x, y = (float(v) for v in point)
        except (TypeError, ValueError):
            raise ValueError(
                f"pareto_front: point #{i} should be an (x, y) pair of numbers; found {point!r}."
            ) from None
        if not (math.isfinite(x) and math.isfinite(y)):
            raise ValueError(
                f"pareto_front: point #{i} should be finite; found {point!r}. Fix: drop points "
                "with missing latency/GFLOPs/mIoU before computing the front."
            )
        pts.append((x, y))
    front = [
        i
        for i, (x, y) in enumerate(pts)
        if not any(x2 <= x and y2 >= y and (x2 < x or y2 > y) for x2, y2 in pts)
    ]
    return sorted(front, key=lambda i: (pts[i][0], -pts[i][1], i))


def _scatter(
    frame: pd.DataFrame,
    x_column: str,
    x_label: str,
    out_path: Path,
    title: str,
    caller: str,
    baseline_note: str,
) -> Path:
    ok = frame[frame["status"] == "ok"]
    models = ok[ok["kind"].isin(SCORED_KINDS) & ok["miou"].notna() & (ok[x_column] > 0)]
    if models.empty:
        raise ConfigError(
            f"{caller}: no ok model row has both mIoU and a positive {x_column!r}; nothing to "
            "plot. Fix: pass records that were evaluated and measured."
        )
    models = models.sort_values(["miou", "arch", "run_id"], ascending=[False, True, True])
    baselines = (
        ok[(ok["kind"] == "baseline") & ok["miou"].notna()]
        .sort_values(["created", "run_id"], ascending=False)
        .drop_duplicates("arch")
        .sort_values("arch")
    )
    xs = models[x_column].to_numpy(dtype=float)
    ys = models["miou"].to_numpy(dtype=float) * 100.0
    params = models["params_m"].to_numpy(dtype=float)
    largest = float(np.nanmax(params)) if np.isfinite(params).any() else math.nan
    sizes = np.where(
        np.isfinite(params),
        np.maximum(_MIN_MARKER_AREA, _MAX_MARKER_AREA * params / (largest or 1.0)),
        40.0,
    )
    front = pareto_front(list(zip(xs.tolist(), ys.tolist(), strict=True)))
    on_front = np.zeros(len(xs), dtype=bool)
    on_front[front] = True

    names = labels(models)
    # Labels are placed most important first: the Pareto front, then by mIoU.
    order = [*front, *(i for i in range(len(xs)) if not on_front[i])]
    figure, numbered = _draw(
        xs, ys, sizes, on_front, front, baselines, x_label, title, largest, baseline_note,
        names, order, key=False,
    )  # fmt: skip
    if numbered:  # some labels did not fit: again, with a column for the key of their numbers
        figure, numbered = _draw(
            xs, ys, sizes, on_front, front, baselines, x_label, title, largest, baseline_note,
            names, order, key=True,
        )  # fmt: skip
    return save(figure, out_path)


def _draw(
    xs: np.ndarray,
    ys: np.ndarray,
    sizes: np.ndarray,
    on_front: np.ndarray,
    front: list[int],
    baselines: pd.DataFrame,
    x_label: str,
    title: str,
    largest: float,
    baseline_note: str,
    names: list[str],
    order: list[int],
    *,
    key: bool,
) -> tuple[Figure, list[int]]:
    """The scatter figure; returns it and the points labelled by number (see ``key``).

    With ``key`` a column right of the plot lists the numbered points' names.
    """
    figure = new_figure(10.5 if key else 8.0, 5.5)
    if key:
        ax, key_ax = figure.subplots(1, 2, width_ratios=[3.2, 1.0])
        key_ax.axis("off")
    else:
        ax = figure.add_subplot()
    ax.scatter(
        xs[~on_front],
        ys[~on_front],
        s=sizes[~on_front],
        color="tab:blue",
        alpha=0.6,
        edgecolors="black",
        linewidths=0.5,
        zorder=3,
    )
    ax.scatter(
        xs[on_front],
        ys[on_front],
        s=sizes[on_front],
        color="tab:orange",
        alpha=0.9,
        edgecolors="tab:red",
        linewidths=1.5,
        zorder=4,
    )
    ax.step(xs[front], ys[front], where="post", color="tab:red", linewidth=1.2, zorder=2)
    notes = []
    for row in baselines.itertuples(index=False):
        ax.axhline(row.miou * 100.0, linestyle="--", color="grey", linewidth=1.0, zorder=1)
        # The baseline's title may say "baseline" already: "all background (baseline)".
        name = str(row.title) if "baseline" in str(row.title) else f"baseline: {row.title}"
        note = ax.annotate(
            f"{name}: {row.miou * 100.0:.1f}%",
            (0.01, row.miou * 100.0),
            xycoords=("axes fraction", "data"),
            xytext=(0, 3),
            textcoords="offset points",
            fontsize=8,
            color="dimgrey",
        )
        notes.append(note)
    if xs.max() / xs.min() > 10.0:
        ax.set_xscale("log")
    ax.margins(x=0.08, y=0.1)  # room for labels next to the outermost markers
    ax.set_xlabel(x_label)
    ax.set_ylabel("mIoU (%)")
    ax.set_title(title, fontsize=10)
    ax.grid(True, linewidth=0.3, alpha=0.5)
    size_note = (
        f"marker area ∝ params (largest {largest:.2f} M)"
        if math.isfinite(largest)
        else "params not recorded"
    )
    handles = [
        Line2D(
            [], [], color="tab:red", marker="o", markerfacecolor="tab:orange", label="Pareto front"
        ),
        Line2D([], [], linestyle="", marker="o", color="tab:blue", alpha=0.6, label="other models"),
        Line2D([], [], linestyle="", marker="", label=size_note),
    ]
    if not baselines.empty:
        handles.append(Line2D([], [], linestyle="--", color="grey", label=baseline_note))
    legend = ax.legend(handles=handles, loc="best", fontsize=8)
    texts = [names[i] for i in order]
    picked = place_labels(
        figure, ax, xs[order], ys[order], sizes[order], texts, avoid=[legend, *notes]
    )
    numbered = [order[i] for i in picked]
    if key and numbered:
        lines = [f"{n}  {names[i]}" for n, i in enumerate(numbered, start=1)]
        key_ax.text(0.0, 1.0, "\n".join(["crowded points:", *lines]), va="top", fontsize=7,
                    transform=key_ax.transAxes, wrap=True)  # fmt: skip
    return figure, numbered


def plot_miou_vs_latency(data: Data, out_path: Path, *, title: str | None = None) -> Path:
    """Scatter mIoU against batch-1 p50 latency for one group on one device/dtype.

    Marker area is proportional to the parameter count; the Pareto front (lower latency, higher
    mIoU) is drawn as a step line with highlighted points; baseline rows are horizontal dashed
    lines. The x axis is logarithmic when latencies span more than 10x.

    Args:
        data: Run records, or a frame from :func:`~bench.reporting.frame.leaderboard_frame`, of
            one ``(suite, dataset, setting)``. Model rows with latency must share one
            device/dtype.
        out_path: PNG file to write.
        title: Figure title; defaults to the group and device.

    Returns:
        ``out_path``.

    Raises:
        ConfigError: Rows span several groups or devices, no model row has mIoU and latency,
            or ``out_path`` cannot be written.
    """
    caller = "plot_miou_vs_latency"
    frame = as_frame(data, caller)
    suite, dataset, setting = one_group(frame, caller)
    timed = frame[(frame["status"] == "ok") & frame["kind"].isin(SCORED_KINDS)]
    timed = timed[timed["latency_p50_ms"].notna()]
    devices = sorted(
        {(str(d), str(t)) for d, t in zip(timed["device"], timed["dtype"], strict=True)}
    )
    if len(devices) > 1:
        raise ConfigError(
            f"{caller}: latencies from {len(devices)} devices/dtypes {devices} would share one "
            "axis; expected one. Fix: filter rows by device and dtype (write_plots draws one "
            "figure per device)."
        )
    where = f"{devices[0][0]}/{devices[0][1]}" if devices else "unknown device"
    return _scatter(
        frame,
        "latency_p50_ms",
        f"latency p50 (ms, batch 1, {where})",
        out_path,
        title or f"{suite} / {dataset} ({setting}): mIoU vs latency on {where}",
        caller,
        "baseline predictor (not timed)",
    )


def plot_miou_vs_gflops(data: Data, out_path: Path, *, title: str | None = None) -> Path:
    """Scatter mIoU against GFLOPs (2 x GMACs) for one group at one complexity resolution.

    Same encoding as :func:`plot_miou_vs_latency`: marker area proportional to params, Pareto
    front (fewer GFLOPs, higher mIoU) as a step line, baselines as dashed lines.

    Args:
        data: Run records, or a frame from :func:`~bench.reporting.frame.leaderboard_frame`, of
            one ``(suite, dataset, setting)``. Model rows with GFLOPs must share one resolution.
        out_path: PNG file to write.
        title: Figure title; defaults to the group.

    Returns:
        ``out_path``.

    Raises:
        ConfigError: Rows span several groups or resolutions, no model row has mIoU and
            GFLOPs, or ``out_path`` cannot be written.
    """
    caller = "plot_miou_vs_gflops"
    frame = as_frame(data, caller)
    suite, dataset, setting = one_group(frame, caller)
    counted = frame[(frame["status"] == "ok") & frame["kind"].isin(SCORED_KINDS)]
    resolutions = sorted(set(counted.loc[counted["gflops"].notna(), "complexity_res"].astype(str)))
    if len(resolutions) > 1:
        raise ConfigError(
            f"{caller}: GFLOPs counted at {len(resolutions)} resolutions {resolutions} would "
            "share one axis; expected one. Fix: filter rows by complexity_res."
        )
    res = resolutions[0] if resolutions else "unknown resolution"
    return _scatter(
        frame,
        "gflops",
        f"GFLOPs @ {res} (2 x GMACs, one image)",
        out_path,
        title or f"{suite} / {dataset} ({setting}): mIoU vs compute",
        caller,
        "baseline predictor (no model compute)",
    )


def plot_per_class_heatmap(data: Data, out_path: Path, *, title: str | None = None) -> Path:
    """Heatmap of per-class IoU (%), architectures x classes, annotated, with a colour bar.

    Classes absent from both ground truth and predictions (null IoU) are grey and marked "–".

    Args:
        data: Run records of one ``(suite, dataset, setting)``, or their
            :func:`~bench.reporting.frame.report_frame`.
        out_path: PNG file to write.
        title: Figure title; defaults to the group.

    Returns:
        ``out_path``.

    Raises:
        ConfigError: Records span several groups, none has per-class IoU, or ``out_path``
            cannot be written.
    """
    frame = as_frame(data, "plot_per_class_heatmap", ("record", *GROUP))
    table = per_class_iou_frame(frame)
    if table.empty:
        raise ConfigError(
            "plot_per_class_heatmap: no ok record has metrics.per_class_iou; nothing to plot. "
            "Fix: pass evaluated records."
        )
    suite, dataset, setting = one_group(frame, "plot_per_class_heatmap")
    values = table.to_numpy(dtype=float) * 100.0
    n_rows, n_cols = values.shape
    # Room for the row labels (about 0.075 in a character at 9 pt) beside the cells and the bar.
    label_in = 0.075 * max((len(str(i)) for i in table.index), default=0)
    width = min(40.0, max(6.0, 0.6 * n_cols + 2.5 + label_in))
    figure = new_figure(width, min(30.0, 0.45 * n_rows + 2.2))
    ax = figure.add_subplot()
    cmap = matplotlib.colormaps["viridis"].with_extremes(bad="lightgrey")
    image = ax.imshow(np.ma.masked_invalid(values), cmap=cmap, vmin=0.0, vmax=100.0, aspect="auto")
    ax.set_xticks(range(n_cols), [str(c) for c in table.columns], rotation=45, ha="right")
    ax.set_yticks(range(n_rows), [str(i) for i in table.index], fontsize=9)
    if n_cols <= 30 and n_rows <= 40:
        for r in range(n_rows):
            for c in range(n_cols):
                v = values[r, c]
                text, colour = (
                    ("–", "black")
                    if math.isnan(v)
                    else (
                        f"{v:.0f}",
                        "white" if v < 60.0 else "black",
                    )
                )
                ax.text(c, r, text, ha="center", va="center", fontsize=7, color=colour)
    figure.colorbar(image, ax=ax, label="IoU (%)")
    figure.suptitle(title or f"{suite} / {dataset} ({setting}): per-class IoU (%)", fontsize=10)
    return save(figure, out_path)


def write_plots(records: Sequence[RunRecord] | pd.DataFrame, results_dir: Path) -> list[Path]:
    """Writes every figure the records support under ``results_dir/plots/``.

    Per ``(suite, dataset, setting)``: mIoU vs latency per speed device/dtype, mIoU vs GFLOPs per
    complexity resolution, the per-class IoU heatmap, the qualitative grid when sample files
    exist, and the learning curves of trained models (see the module docstring for file names). Records are de-duplicated as in the
    leaderboard. Existing files of other names are left alone.

    Args:
        records: Run records, or their :func:`~bench.reporting.frame.report_frame`.
        results_dir: Results directory; figures go to its ``plots/`` subdirectory.

    Returns:
        The written PNG paths, in a deterministic order.

    Raises:
        ConfigError: A figure cannot be written (the message names the file).
        TypeError: An element of ``records`` is not a :class:`RunRecord`.
    """
    plots_dir = Path(results_dir) / "plots"
    frame = as_frame(records, "write_plots", ("record", *FRAME_COLUMNS))
    written: list[Path] = []
    for (suite, dataset, setting), group in frame.groupby(GROUP, sort=True):
        prefix = f"{slug(suite)}__{slug(dataset)}__{slug(setting)}"
        ok = group[group["status"] == "ok"]
        models = ok[ok["kind"].isin(SCORED_KINDS) & ok["miou"].notna()]
        baselines = ok["kind"] == "baseline"

        # A scatter of one point ranks nothing: trade-off figures need two rows or more (of
        # the figure's own device: latencies of other devices are not drawn beside them).
        timed = models[models["latency_p50_ms"] > 0]
        for device, dtype in sorted(set(zip(timed["device"], timed["dtype"], strict=True))):
            same = (ok["device"] == device) & (ok["dtype"] == dtype)
            if (same & ok.index.isin(timed.index)).sum() < 2:
                continue
            subset = ok[same | baselines]
            path = plots_dir / f"{prefix}__miou_vs_latency_{slug(device)}-{slug(dtype)}.png"
            written.append(plot_miou_vs_latency(subset, path))

        counted = models[models["gflops"] > 0]
        if len(counted) < 2:
            counted = counted.iloc[0:0]
        for res in sorted(set(counted["complexity_res"].dropna())):
            subset = ok[(ok["complexity_res"] == res) | baselines]
            path = plots_dir / f"{prefix}__miou_vs_gflops_{slug(res)}.png"
            written.append(plot_miou_vs_gflops(subset, path))

        if not per_class_iou_frame(group).empty:
            path = plots_dir / f"{prefix}__per_class_iou.png"
            written.append(plot_per_class_heatmap(group, path))

        if any(r.samples is not None for r in ok["record"]):
            grid = plot_qualitative_grid(
                group, Path(results_dir), plots_dir / f"{prefix}__qualitative.png"
            )
            if grid is not None:
                written.append(grid)

        if not curve_rows(group).empty:
            path = plots_dir / f"{prefix}__learning_curves.png"
            written.append(plot_learning_curves(group, path))
    return written
