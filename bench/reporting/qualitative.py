"""The qualitative figure: sample predictions next to the image and its ground truth.

Reads the sample ``.npz`` files that run records point to (``samples.file`` and
``samples.inputs_file``, relative to the results folder); records whose files are missing,
unreadable or of the wrong shape are skipped with a warning, never a crash.
"""

from __future__ import annotations

import math
import textwrap
import warnings
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from bench.errors import ConfigError
from bench.records import DatasetSection, RunRecord
from bench.reporting._figure import Data, as_frame, labels, new_figure, one_group, save
from bench.reporting.frame import FRAME_COLUMNS

_IGNORE_INDEX = 255  # the harness's ignore label, where a record does not name one


def _palette(info: DatasetSection | None, n_classes: int) -> np.ndarray:
    """A 256-entry colour table: the dataset palette, white for ignore and unknown ids."""
    table = np.full((256, 3), 255, dtype=np.uint8)
    palette = info.palette if info is not None else None
    # The record's schema checked each colour; only the count can still be wrong.
    if palette is not None and n_classes <= len(palette) <= 256:
        table[: len(palette)] = np.asarray(palette, dtype=np.uint8)
        return table
    found = "none" if palette is None else f"{len(palette)} colours"
    warnings.warn(
        f"dataset_info.palette should be {n_classes} [r, g, b] triples of 0..255 (at most 256); "
        f"found {found}. Using matplotlib's tab20 colours instead.",
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


def _check_inputs(inputs: dict[str, np.ndarray], path: Path) -> bool:
    """Whether an inputs file holds image (S, H, W, 3), label (S, H, W), indices (S,)."""
    image, label, indices = inputs["image"], inputs["label"], inputs["indices"]
    if (
        image.ndim == 4
        and image.shape[-1] == 3
        and label.shape == image.shape[:3]
        and indices.shape == image.shape[:1]
    ):
        return True
    warnings.warn(
        f"{path}: expected image (S, H, W, 3), label (S, H, W) and indices (S,); found "
        f"{image.shape}, {label.shape}, {indices.shape}; skipped.",
        UserWarning,
        stacklevel=3,
    )
    return False


def _predictions(path: Path, label_shape: tuple[int, ...]) -> dict[int, np.ndarray] | None:
    """Sample index -> predicted label map, or None (with a warning) when unusable."""
    pred = _load_npz(path, ("pred", "indices"))
    if pred is None:
        return None
    maps, indices = pred["pred"], pred["indices"]
    if not (maps.ndim == 3 and maps.shape[1:] == label_shape and indices.shape == maps.shape[:1]):
        warnings.warn(
            f"{path}: expected pred (S, H, W) with H, W = {label_shape} and indices (S,); found "
            f"{maps.shape}, {indices.shape}; skipped.",
            UserWarning,
            stacklevel=3,
        )
        return None
    return {int(i): maps[k] for k, i in enumerate(indices.tolist())}


def _sample_columns(
    rows: pd.DataFrame, results_dir: Path
) -> tuple[dict[str, np.ndarray] | None, list[tuple[str, dict[int, np.ndarray]]], RunRecord | None]:
    """The grid's columns, read from the rows' sample files.

    Returns:
        The inputs (of the first row with a readable inputs file), one titled prediction column
        per row that refers to the same inputs, and the record whose inputs were used.
    """
    inputs: dict[str, np.ndarray] | None = None
    inputs_name: str | None = None
    source: RunRecord | None = None
    tried: set[str] = set()
    columns: list[tuple[str, dict[int, np.ndarray]]] = []
    for row, label in zip(rows.itertuples(index=False), labels(rows), strict=True):
        samples = row.record.samples
        pred_name, wanted = samples.file, samples.inputs_file
        if pred_name is None or wanted is None:
            warnings.warn(
                f"record {row.run_id}: samples.file and samples.inputs_file should be paths; "
                f"found {pred_name!r}, {wanted!r}; skipped.",
                UserWarning,
                stacklevel=3,
            )
            continue
        if inputs is None:
            if wanted in tried:
                continue  # already warned about this file
            tried.add(wanted)
            inputs = _load_npz(results_dir / wanted, ("image", "label", "indices"))
            if inputs is None or not _check_inputs(inputs, results_dir / wanted):
                inputs = None
                continue
            inputs_name, source = wanted, row.record
        if wanted != inputs_name:
            warnings.warn(
                f"record {row.run_id}: predictions refer to inputs {wanted}, not "
                f"{inputs_name} used by this grid; skipped.",
                UserWarning,
                stacklevel=3,
            )
            continue
        by_index = _predictions(results_dir / pred_name, inputs["label"].shape[1:])
        if by_index is not None:
            mean = "" if math.isnan(row.miou) else f"\nmIoU {row.miou * 100.0:.1f}%"
            columns.append((f"{label}{mean}", by_index))
    return inputs, columns, source


def plot_qualitative_grid(
    data: Data, results_dir: Path, out_path: Path, max_images: int = 4
) -> Path | None:
    """Grid of sample predictions: image | ground truth | each architecture's prediction.

    Rows are sample images (the first ``max_images`` of the inputs file); prediction columns are
    ordered by mIoU. Label maps are coloured with ``dataset_info.palette`` (ignore pixels white)
    and a legend names the classes. Records whose sample files are missing, unreadable or of the
    wrong shape are skipped with a warning.

    Args:
        data: Run records of one ``(suite, dataset, setting)``, or their
            :func:`~bench.reporting.frame.report_frame`; ok records with a ``samples`` section
            are drawn.
        results_dir: Directory the ``samples`` paths are relative to.
        out_path: PNG file to write.
        max_images: Most sample rows to draw (>= 1).

    Returns:
        ``out_path``, or None (with a warning) when no prediction could be drawn.

    Raises:
        ConfigError: ``max_images`` < 1, records span several groups, or ``out_path`` cannot be
            written.
    """
    if isinstance(max_images, bool) or not isinstance(max_images, int) or max_images < 1:
        raise ConfigError(
            f"plot_qualitative_grid: max_images should be an integer >= 1; found {max_images!r}."
        )
    frame = as_frame(data, "plot_qualitative_grid", ("record", *FRAME_COLUMNS))
    suite, dataset, setting = one_group(frame, "plot_qualitative_grid")
    with_samples = frame["record"].map(lambda record: record.samples is not None)
    rows = frame[(frame["status"] == "ok") & with_samples]
    rows = rows.sort_values(["miou", "arch", "run_id"], ascending=[False, True, True])
    inputs, columns, source = _sample_columns(rows, Path(results_dir))
    if inputs is None or not columns:
        warnings.warn(
            f"plot_qualitative_grid: no predictions with readable sample files for {suite} / "
            f"{dataset} ({setting}); no grid written.",
            UserWarning,
            stacklevel=2,
        )
        return None
    info = source.dataset_info if source is not None else None
    figure = _grid_figure(inputs, columns, info, max_images)
    figure.suptitle(f"{suite} / {dataset} ({setting}): sample predictions", fontsize=10)
    return save(figure, out_path)


def _grid_figure(
    inputs: dict[str, np.ndarray],
    columns: list[tuple[str, dict[int, np.ndarray]]],
    info: DatasetSection | None,
    max_images: int,
) -> Figure:
    """The qualitative grid: image, ground truth and the prediction columns, with a legend."""
    class_names = list(info.class_names) if info is not None else []
    ignore_index = _IGNORE_INDEX
    if info is not None and info.ignore_index is not None:
        ignore_index = info.ignore_index
    n_shown = min(max_images, inputs["image"].shape[0])
    present = {int(v) for v in np.unique(inputs["label"][:n_shown])}
    for _, by_index in columns:
        for i in inputs["indices"][:n_shown].tolist():
            if int(i) in by_index:
                present |= {int(v) for v in np.unique(by_index[int(i)])}
    n_classes = max(len(class_names), max((v for v in present if v != ignore_index), default=0) + 1)
    colours = _palette(info, n_classes)

    n_cols = 2 + len(columns)
    figure = new_figure(2.1 * n_cols, 2.1 * n_shown + 0.9)
    axes = figure.subplots(n_shown, n_cols, squeeze=False)
    # A column is 2.1 in wide: about 24 characters at 8 pt. Longer titles wrap, never overlap.
    titles = [textwrap.fill(t, 22) for t in ("image", "ground truth", *(t for t, _ in columns))]
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
    return figure
