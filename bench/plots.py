"""Leaderboard figures: accuracy/cost trade-offs, per-class IoU and qualitative samples.

Like :mod:`bench.leaderboard`, this module reads run records (and the sample ``.npz`` files they
point to) and nothing else. Figures are drawn on ``matplotlib.figure.Figure`` objects with the Agg
canvas, never through ``pyplot``: no global figure registry, no GUI backend, so it works headless
and leaves the caller's matplotlib state alone. PNGs are saved without the ``Software`` metadata
entry, so the same records give the same files on the same matplotlib/font installation.

File names written by :func:`write_plots` under ``<results_dir>/plots/`` (each part reduced to
``[A-Za-z0-9._-]``):

* ``<suite>__<dataset>__<setting>__miou_vs_latency_<device>-<dtype>.png``: one per speed device.
* ``<suite>__<dataset>__<setting>__miou_vs_gflops_<H>x<W>.png``: one per complexity resolution.
* ``<suite>__<dataset>__<setting>__per_class_iou.png``
* ``<suite>__<dataset>__<setting>__qualitative.png``: when sample files exist.
"""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from bench.leaderboard import FRAME_COLUMNS, leaderboard_frame, per_class_iou_frame, select_latest

_DPI = 110
_MAX_MARKER_AREA = 600.0
_MIN_MARKER_AREA = 12.0
_GROUP = ["suite", "dataset", "setting"]


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


def _slug(text: Any) -> str:
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", str(text)).strip("-")
    return slug or "unknown"


def _new_figure(width: float, height: float) -> Figure:
    figure = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _save(figure: Figure, out_path: Path) -> Path:
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out_path, format="png", dpi=_DPI, metadata={"Software": None})
    return out_path


def _as_frame(data: pd.DataFrame | list[dict], caller: str) -> pd.DataFrame:
    if isinstance(data, pd.DataFrame):
        missing = [c for c in FRAME_COLUMNS if c not in data.columns]
        if missing:
            raise ValueError(
                f"{caller}: the frame lacks column(s) {missing}; expected the columns of "
                "bench.leaderboard.records_to_frame. Fix: pass run records, or a frame built by "
                "leaderboard_frame(records)."
            )
        return data
    return leaderboard_frame(data)


def _one_group(frame: pd.DataFrame, caller: str) -> tuple[str, str, str]:
    groups = sorted({tuple(row) for row in frame[_GROUP].itertuples(index=False)})
    if len(groups) != 1:
        raise ValueError(
            f"{caller}: expected rows of exactly one (suite, dataset, setting); found "
            f"{len(groups)}: {groups}. Fix: filter the records first, or call write_plots, "
            "which draws one figure per group."
        )
    return groups[0]  # type: ignore[return-value]


def _labels(rows: pd.DataFrame) -> list[str]:
    with_device = rows[["device", "dtype"]].astype(str).drop_duplicates().shape[0] > 1
    labels = []
    for row in rows.itertuples(index=False):
        label = str(row.title)
        if with_device:
            label += f" [{row.device}/{row.dtype}]" if isinstance(row.dtype, str) else ""
        labels.append(label)
    return labels


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
    models = ok[(ok["kind"] == "model") & ok["miou"].notna() & (ok[x_column] > 0)]
    if models.empty:
        raise ValueError(
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

    figure = _new_figure(8.0, 5.5)
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
    for x, y, size, label in zip(xs, ys, sizes, _labels(models), strict=True):
        # Offset the label past the marker's radius (marker area is in points^2).
        offset = math.sqrt(float(size)) / 2.0 + 2.0
        ax.annotate(label, (x, y), xytext=(offset, offset), textcoords="offset points", fontsize=8)
    for row in baselines.itertuples(index=False):
        ax.axhline(row.miou * 100.0, linestyle="--", color="grey", linewidth=1.0, zorder=1)
        ax.annotate(
            f"baseline: {row.title} ({row.miou * 100.0:.1f}%)",
            (0.01, row.miou * 100.0),
            xycoords=("axes fraction", "data"),
            xytext=(0, 3),
            textcoords="offset points",
            fontsize=8,
            color="dimgrey",
        )
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
    ax.legend(handles=handles, loc="best", fontsize=8)
    return _save(figure, out_path)


def plot_miou_vs_latency(
    data: pd.DataFrame | list[dict], out_path: Path, *, title: str | None = None
) -> Path:
    """Scatter mIoU against batch-1 p50 latency for one group on one device/dtype.

    Marker area is proportional to the parameter count; the Pareto front (lower latency, higher
    mIoU) is drawn as a step line with highlighted points; baseline rows are horizontal dashed
    lines. The x axis is logarithmic when latencies span more than 10x.

    Args:
        data: Run records, or a frame from :func:`bench.leaderboard.leaderboard_frame`, of one
            ``(suite, dataset, setting)``. Model rows with latency must share one device/dtype.
        out_path: PNG file to write.
        title: Figure title; defaults to the group and device.

    Returns:
        ``out_path``.

    Raises:
        ValueError: Rows span several groups or devices, or no model row has mIoU and latency.
    """
    caller = "plot_miou_vs_latency"
    frame = _as_frame(data, caller)
    suite, dataset, setting = _one_group(frame, caller)
    timed = frame[(frame["status"] == "ok") & (frame["kind"] == "model")]
    timed = timed[timed["latency_p50_ms"].notna()]
    devices = sorted(
        {(str(d), str(t)) for d, t in zip(timed["device"], timed["dtype"], strict=True)}
    )
    if len(devices) > 1:
        raise ValueError(
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


def plot_miou_vs_gflops(
    data: pd.DataFrame | list[dict], out_path: Path, *, title: str | None = None
) -> Path:
    """Scatter mIoU against GFLOPs (2 x GMACs) for one group at one complexity resolution.

    Same encoding as :func:`plot_miou_vs_latency`: marker area proportional to params, Pareto
    front (fewer GFLOPs, higher mIoU) as a step line, baselines as dashed lines.

    Args:
        data: Run records, or a frame from :func:`bench.leaderboard.leaderboard_frame`, of one
            ``(suite, dataset, setting)``. Model rows with GFLOPs must share one resolution.
        out_path: PNG file to write.
        title: Figure title; defaults to the group.

    Returns:
        ``out_path``.

    Raises:
        ValueError: Rows span several groups or resolutions, or no model row has mIoU and GFLOPs.
    """
    caller = "plot_miou_vs_gflops"
    frame = _as_frame(data, caller)
    suite, dataset, setting = _one_group(frame, caller)
    counted = frame[(frame["status"] == "ok") & (frame["kind"] == "model")]
    resolutions = sorted(set(counted.loc[counted["gflops"].notna(), "complexity_res"].astype(str)))
    if len(resolutions) > 1:
        raise ValueError(
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


def plot_per_class_heatmap(
    records: list[dict], out_path: Path, *, title: str | None = None
) -> Path:
    """Heatmap of per-class IoU (%), architectures x classes, annotated, with a colour bar.

    Classes absent from both ground truth and predictions (null IoU) are grey and marked "–".

    Args:
        records: Run records of one ``(suite, dataset, setting)``.
        out_path: PNG file to write.
        title: Figure title; defaults to the group.

    Returns:
        ``out_path``.

    Raises:
        ValueError: Records span several groups, or none has per-class IoU.
    """
    table = per_class_iou_frame(records)
    if table.empty:
        raise ValueError(
            "plot_per_class_heatmap: no ok record has metrics.per_class_iou; nothing to plot. "
            "Fix: pass evaluated records."
        )
    suite, dataset, setting = _one_group(leaderboard_frame(records), "plot_per_class_heatmap")
    values = table.to_numpy(dtype=float) * 100.0
    n_rows, n_cols = values.shape
    figure = _new_figure(min(40.0, max(6.0, 0.6 * n_cols + 4.0)), min(30.0, 0.45 * n_rows + 2.2))
    ax = figure.add_subplot()
    cmap = matplotlib.colormaps["viridis"].with_extremes(bad="lightgrey")
    image = ax.imshow(np.ma.masked_invalid(values), cmap=cmap, vmin=0.0, vmax=100.0, aspect="auto")
    ax.set_xticks(range(n_cols), [str(c) for c in table.columns], rotation=45, ha="right")
    ax.set_yticks(range(n_rows), [str(i) for i in table.index])
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
    return _save(figure, out_path)


def _palette(dataset_info: Mapping[str, Any] | None, n_classes: int) -> np.ndarray:
    """A 256-entry colour table: the dataset palette, white for ignore and unknown ids."""
    table = np.full((256, 3), 255, dtype=np.uint8)
    raw = None if dataset_info is None else dataset_info.get("palette")
    valid = (
        isinstance(raw, list)
        and len(raw) >= n_classes
        and len(raw) <= 256
        and all(
            isinstance(c, list)
            and len(c) == 3
            and all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 255 for v in c)
            for c in raw
        )
    )
    if valid:
        table[: len(raw)] = np.asarray(raw, dtype=np.uint8)
        return table
    warnings.warn(
        f"dataset_info.palette should be {n_classes} [r, g, b] triples of 0..255; found "
        f"{raw!r:.80}. Using matplotlib's tab20 colours instead.",
        UserWarning,
        stacklevel=3,
    )
    tab20 = matplotlib.colormaps["tab20"]
    for i in range(min(n_classes, 255)):
        table[i] = np.round(np.asarray(tab20(i % 20)[:3]) * 255).astype(np.uint8)
    return table


def _load_npz(path: Path, keys: tuple[str, ...]) -> dict[str, np.ndarray] | None:
    """Arrays ``keys`` from ``path``, or None (with a warning) when missing or unreadable."""
    if not path.is_file():
        warnings.warn(f"sample file {path} does not exist; skipped.", UserWarning, stacklevel=3)
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            return {key: np.asarray(data[key]) for key in keys}
    except (OSError, ValueError, KeyError) as exc:
        warnings.warn(
            f"sample file {path} is unreadable or lacks {keys} ({exc}); skipped.",
            UserWarning,
            stacklevel=3,
        )
        return None


def plot_qualitative_grid(
    records: list[dict], results_dir: Path, out_path: Path, max_images: int = 4
) -> Path | None:
    """Grid of sample predictions: image | ground truth | each architecture's prediction.

    Rows are sample images (the first ``max_images`` of the inputs file); prediction columns are
    ordered by mIoU. Label maps are coloured with ``dataset_info.palette`` (ignore pixels white)
    and a legend names the classes. Records whose sample files are missing, unreadable or of the
    wrong shape are skipped with a warning.

    Args:
        records: Run records of one ``(suite, dataset, setting)``; ok records with a ``samples``
            section are drawn.
        results_dir: Directory the ``samples`` paths are relative to.
        out_path: PNG file to write.
        max_images: Most sample rows to draw (>= 1).

    Returns:
        ``out_path``, or None (with a warning) when no prediction could be drawn.

    Raises:
        ValueError: ``max_images`` < 1, records span several groups, or a record is malformed.
    """
    if isinstance(max_images, bool) or not isinstance(max_images, int) or max_images < 1:
        raise ValueError(
            f"plot_qualitative_grid: max_images should be an integer >= 1; found {max_images!r}."
        )
    results_dir = Path(results_dir)
    frame = leaderboard_frame(records)
    suite, dataset, setting = _one_group(frame, "plot_qualitative_grid")
    kept = {record["run_id"]: record for record in select_latest(records)}
    rows = frame[
        (frame["status"] == "ok")
        & frame["run_id"].map(lambda run_id: isinstance(kept[run_id].get("samples"), Mapping))
    ]
    rows = rows.sort_values(["miou", "arch", "run_id"], ascending=[False, True, True])
    labels = _labels(rows)

    inputs: dict[str, np.ndarray] | None = None
    inputs_name: str | None = None
    tried_inputs: set[str] = set()
    columns: list[tuple[str, dict[int, np.ndarray]]] = []
    dataset_info: Mapping[str, Any] | None = None
    for row, label in zip(rows.itertuples(index=False), labels, strict=True):
        record = kept[row.run_id]
        samples = record["samples"]
        pred_name, wanted_inputs = samples.get("file"), samples.get("inputs_file")
        if not isinstance(pred_name, str) or not isinstance(wanted_inputs, str):
            warnings.warn(
                f"record {row.run_id}: samples.file and samples.inputs_file should be paths; "
                f"found {pred_name!r}, {wanted_inputs!r}; skipped.",
                UserWarning,
                stacklevel=2,
            )
            continue
        if inputs is None:
            if wanted_inputs in tried_inputs:
                continue  # already warned about this file
            tried_inputs.add(wanted_inputs)
            inputs = _load_npz(results_dir / wanted_inputs, ("image", "label", "indices"))
            if inputs is not None and not (
                inputs["image"].ndim == 4
                and inputs["image"].shape[-1] == 3
                and inputs["label"].shape == inputs["image"].shape[:3]
                and inputs["indices"].shape == inputs["image"].shape[:1]
            ):
                warnings.warn(
                    f"{results_dir / wanted_inputs}: expected image (S, H, W, 3), label (S, H, W) "
                    f"and indices (S,); found {inputs['image'].shape}, {inputs['label'].shape}, "
                    f"{inputs['indices'].shape}; skipped.",
                    UserWarning,
                    stacklevel=2,
                )
                inputs = None
            if inputs is None:
                continue
            inputs_name = wanted_inputs
            dataset_info = record.get("dataset_info")
        if wanted_inputs != inputs_name:
            warnings.warn(
                f"record {row.run_id}: predictions refer to inputs {wanted_inputs}, not "
                f"{inputs_name} used by this grid; skipped.",
                UserWarning,
                stacklevel=2,
            )
            continue
        pred = _load_npz(results_dir / pred_name, ("pred", "indices"))
        if pred is None:
            continue
        if not (
            pred["pred"].ndim == 3
            and pred["pred"].shape[1:] == inputs["label"].shape[1:]
            and pred["indices"].shape == pred["pred"].shape[:1]
        ):
            warnings.warn(
                f"{results_dir / pred_name}: expected pred (S, H, W) with H, W = "
                f"{inputs['label'].shape[1:]} and indices (S,); found {pred['pred'].shape}, "
                f"{pred['indices'].shape}; skipped.",
                UserWarning,
                stacklevel=2,
            )
            continue
        by_index = {int(i): pred["pred"][k] for k, i in enumerate(pred["indices"].tolist())}
        mean = "" if math.isnan(row.miou) else f"\nmIoU {row.miou * 100.0:.1f}%"
        columns.append((f"{label}{mean}", by_index))

    if inputs is None or not columns:
        warnings.warn(
            f"plot_qualitative_grid: no predictions with readable sample files for {suite} / "
            f"{dataset} ({setting}); no grid written.",
            UserWarning,
            stacklevel=2,
        )
        return None

    class_names = list((dataset_info or {}).get("class_names") or [])
    ignore_index = (dataset_info or {}).get("ignore_index", 255)
    n_shown = min(max_images, inputs["image"].shape[0])
    present = {int(v) for v in np.unique(inputs["label"][:n_shown])}
    for _, by_index in columns:
        for i in inputs["indices"][:n_shown].tolist():
            if int(i) in by_index:
                present |= {int(v) for v in np.unique(by_index[int(i)])}
    n_classes = max(len(class_names), max((v for v in present if v != ignore_index), default=0) + 1)
    colours = _palette(dataset_info, n_classes)

    n_cols = 2 + len(columns)
    figure = _new_figure(2.1 * n_cols, 2.1 * n_shown + 0.9)
    axes = figure.subplots(n_shown, n_cols, squeeze=False)
    titles = ["image", "ground truth", *(title for title, _ in columns)]
    for r in range(n_shown):
        index = int(inputs["indices"][r])
        panels: list[np.ndarray | None] = [
            inputs["image"][r],
            colours[inputs["label"][r]],
            *(colours[m[index]] if index in m else None for _, m in columns),
        ]
        for c, panel in enumerate(panels):
            ax = axes[r][c]
            ax.set_xticks([])
            ax.set_yticks([])
            if panel is None:
                ax.text(0.5, 0.5, "not sampled", ha="center", va="center", fontsize=8)
            else:
                ax.imshow(panel, interpolation="nearest")
            if r == 0:
                ax.set_title(titles[c], fontsize=8)
        axes[r][0].set_ylabel(f"sample #{index}", fontsize=8)

    legend_ids = range(n_classes) if n_classes <= 24 else sorted(present - {ignore_index})
    handles = [
        Patch(
            facecolor=colours[i] / 255.0,
            edgecolor="black",
            linewidth=0.5,
            label=class_names[i] if i < len(class_names) else f"class {i}",
        )
        for i in legend_ids
    ]
    if ignore_index in present:
        handles.append(
            Patch(
                facecolor="white",
                edgecolor="black",
                linewidth=0.5,
                label=f"ignore ({ignore_index})",
            )
        )
    figure.legend(
        handles=handles, loc="outside lower center", ncol=min(len(handles), 6), fontsize=8
    )
    figure.suptitle(f"{suite} / {dataset} ({setting}): sample predictions", fontsize=10)
    return _save(figure, out_path)


def write_plots(records: list[dict], results_dir: Path) -> list[Path]:
    """Write every figure the records support under ``results_dir/plots/``.

    Per ``(suite, dataset, setting)``: mIoU vs latency per speed device/dtype, mIoU vs GFLOPs per
    complexity resolution, the per-class IoU heatmap, and the qualitative grid when sample files
    exist (see the module docstring for file names). Records are de-duplicated as in the
    leaderboard. Existing files of other names are left alone.

    Args:
        records: Parsed JSON run records (schema_version 1).
        results_dir: Results directory; figures go to its ``plots/`` subdirectory.

    Returns:
        The written PNG paths, in a deterministic order.

    Raises:
        ValueError: A record is malformed (see :func:`bench.leaderboard.records_to_frame`).
    """
    plots_dir = Path(results_dir) / "plots"
    frame = leaderboard_frame(records)
    kept = select_latest(records)
    written: list[Path] = []
    for suite, dataset, setting in sorted(
        {tuple(g) for g in frame[_GROUP].itertuples(index=False)}
    ):
        group = frame[
            (frame["suite"] == suite)
            & (frame["dataset"] == dataset)
            & (frame["setting"] == setting)
        ]
        group_records = [
            r for r in kept if (r["suite"], r["dataset"], r["setting"]) == (suite, dataset, setting)
        ]
        prefix = f"{_slug(suite)}__{_slug(dataset)}__{_slug(setting)}"
        ok = group[group["status"] == "ok"]
        models = ok[(ok["kind"] == "model") & ok["miou"].notna()]
        baselines = ok["kind"] == "baseline"

        timed = models[models["latency_p50_ms"] > 0]
        for device, dtype in sorted(set(zip(timed["device"], timed["dtype"], strict=True))):
            subset = ok[((ok["device"] == device) & (ok["dtype"] == dtype)) | baselines]
            path = plots_dir / f"{prefix}__miou_vs_latency_{_slug(device)}-{_slug(dtype)}.png"
            written.append(plot_miou_vs_latency(subset, path))

        counted = models[models["gflops"] > 0]
        for res in sorted(set(counted["complexity_res"].dropna())):
            subset = ok[(ok["complexity_res"] == res) | baselines]
            path = plots_dir / f"{prefix}__miou_vs_gflops_{_slug(res)}.png"
            written.append(plot_miou_vs_gflops(subset, path))

        if not per_class_iou_frame(group_records).empty:
            path = plots_dir / f"{prefix}__per_class_iou.png"
            written.append(plot_per_class_heatmap(group_records, path))

        if any(r["status"] == "ok" and r.get("samples") for r in group_records):
            grid = plot_qualitative_grid(
                group_records, Path(results_dir), plots_dir / f"{prefix}__qualitative.png"
            )
            if grid is not None:
                written.append(grid)
    return written
