"""Helpers shared by the figure modules (private to :mod:`bench.reporting`).

A figure without pyplot, atomic PNG files, and the checks of a frame passed in.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from bench.errors import ConfigError
from bench.fileio import write_atomic
from bench.records import RunRecord
from bench.reporting._output import writing
from bench.reporting.frame import FRAME_COLUMNS, GROUP, report_frame

DPI = 110

Data = pd.DataFrame | Sequence[RunRecord]
"""Run records, or a frame built from them (see each function)."""


def slug(text: Any) -> str:
    """``text`` reduced to ``[A-Za-z0-9._-]`` in file names: ``cpu (AVX512)`` -> ``cpu-AVX512``."""
    reduced = re.sub(r"[^A-Za-z0-9._-]+", "-", str(text)).strip("-")
    return reduced or "unknown"


def new_figure(width: float, height: float) -> Figure:
    """A figure on the Agg canvas, never registered with pyplot (no GUI, no global state)."""
    figure = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def save(figure: Figure, out_path: Path) -> Path:
    """Writes ``figure`` as a PNG (no ``Software`` entry) atomically; returns ``out_path``.

    Raises:
        ConfigError: The file cannot be written (the message names it).
    """
    out_path = Path(out_path)
    with writing(out_path):
        write_atomic(
            out_path,
            lambda handle: figure.savefig(
                handle, format="png", dpi=DPI, metadata={"Software": None}
            ),
        )
    return out_path


def as_frame(data: Data, caller: str, needed: Sequence[str] = FRAME_COLUMNS) -> pd.DataFrame:
    """``data`` as a :func:`~bench.reporting.frame.report_frame` (records are de-duplicated)."""
    if isinstance(data, pd.DataFrame):
        missing = [c for c in needed if c not in data.columns]
        if missing:
            raise ConfigError(
                f"{caller}: the frame lacks column(s) {missing}; expected the columns of "
                "bench.reporting.frame.report_frame. Fix: pass run records, or a frame built by "
                "report_frame(records) or leaderboard_frame(records)."
            )
        return data
    return report_frame(data)


def one_group(frame: pd.DataFrame, caller: str) -> tuple[str, str, str]:
    """The one ``(suite, dataset, setting)`` of ``frame``; ConfigError when there are several."""
    groups = sorted(set(frame[GROUP].itertuples(index=False, name=None)))
    if len(groups) != 1:
        raise ConfigError(
            f"{caller}: expected rows of exactly one (suite, dataset, setting); found "
            f"{len(groups)}: {groups}. Fix: filter the records first, or call write_plots, "
            "which draws one figure per group."
        )
    return groups[0]  # type: ignore[return-value]


def labels(rows: pd.DataFrame) -> list[str]:
    """Figure labels of frame rows.

    The title (published weights: their name, as several share an architecture), plus
    ``[device/dtype]`` when the rows span several devices.
    """
    # Rows without a speed measurement (the baseline) have no device of their own to tell apart.
    timed = rows[rows["dtype"].notna()]
    with_device = timed[["device", "dtype"]].astype(str).drop_duplicates().shape[0] > 1
    out = []
    for row in rows.itertuples(index=False):
        weights = getattr(row, "weights", None)
        label = str(weights) if isinstance(weights, str) and weights else str(row.title)
        if with_device:
            label += f" [{row.device}/{row.dtype}]" if isinstance(row.dtype, str) else ""
        out.append(label)
    return out
