"""Learning curves: training loss and validation mIoU against the step, one line per model.

Drawn from the records' ``train`` section alone: ``loss_curve`` (the mean loss of each window
of ``steps // 20`` steps, at least 1, plotted at the window's last step) and, where the run
validated periodically (``train.eval_every``), ``val_steps`` / ``val_miou``. One figure per
``(suite, dataset, setting)``, written by :func:`bench.reporting.plots.write_plots` as
``<suite>__<dataset>__<setting>__learning_curves.png``.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from matplotlib.ticker import ScalarFormatter

from bench.errors import ConfigError
from bench.records import RunRecord
from bench.reporting._figure import Data, as_frame, labels, new_figure, one_group, save

CURVE_KINDS = ("model",)
"""Rows trained here (published weights are loaded, not trained)."""


def loss_points(record: RunRecord) -> tuple[list[int], list[float]]:
    """``(steps, losses)`` of a record's loss curve: each window's mean at its last step."""
    t = record.train
    if t is None or not t.loss_curve or not t.steps:
        return [], []
    window = max(1, t.steps // 20)
    curve = list(t.loss_curve)
    return [window * (i + 1) for i in range(len(curve))], curve


def curve_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """The ok model rows of ``frame`` with a loss curve of two points or more."""
    ok = frame[(frame["status"] == "ok") & frame["kind"].isin(CURVE_KINDS)]
    has = [len(loss_points(r)[0]) >= 2 for r in ok["record"]]
    return ok[has] if len(ok) else ok


def plot_learning_curves(data: Data, out_path: Path, *, title: str | None = None) -> Path:
    """Training loss (log scale) and, when recorded, validation mIoU (%) against the step.

    Args:
        data: Run records of one ``(suite, dataset, setting)``, or their
            :func:`~bench.reporting.frame.report_frame`.
        out_path: PNG file to write.
        title: Figure title; defaults to the group.

    Returns:
        ``out_path``.

    Raises:
        ConfigError: Records span several groups, none has a loss curve of two points, or
            ``out_path`` cannot be written.
    """
    frame = as_frame(data, "plot_learning_curves", ("record", "status", "kind", "title"))
    rows = curve_rows(frame)
    if rows.empty:
        raise ConfigError(
            "plot_learning_curves: no ok model record has a train.loss_curve of 2 points or "
            "more; nothing to plot. Fix: pass records of runs that trained."
        )
    suite, dataset, setting = one_group(frame, "plot_learning_curves")
    records = list(rows["record"])
    validated = [r for r in records if r.train.val_steps]
    figure = new_figure(11.0 if validated else 6.5, 4.2)
    axes = figure.subplots(1, 2 if validated else 1, squeeze=False)[0]
    names = labels(rows)
    for record, name in zip(records, names, strict=True):
        steps, losses = loss_points(record)
        (line,) = axes[0].plot(steps, losses, label=name, linewidth=1.2)
        if record.train.val_steps:
            miou = [100.0 * m for m in record.train.val_miou]
            axes[1].plot(record.train.val_steps, miou, marker="o", markersize=3,
                         color=line.get_color(), label=name)  # fmt: skip
            if record.train.best_step is not None:
                best = 100.0 * record.train.best_val_miou
                last = record.train.best_step == max(record.train.val_steps)
                # At the last point the label ends there, so it stays inside the axes.
                axes[1].annotate(f"best {best:.1f}", (record.train.best_step, best),
                                 textcoords="offset points", xytext=(-4 if last else 0, 6),
                                 ha="right" if last else "center", fontsize=7,
                                 color=line.get_color())  # fmt: skip
    axes[0].set_yscale("log")
    # Plain numbers on the log axis ("2", "0.9"), not "2 x 10^0".
    axes[0].yaxis.set_major_formatter(ScalarFormatter())
    axes[0].yaxis.set_minor_formatter(ScalarFormatter())
    axes[0].set_xlabel("optimiser step")
    axes[0].set_ylabel("training loss (window mean)")
    axes[0].grid(True, which="both", alpha=0.3)
    axes[0].legend(fontsize=7)
    if validated:
        axes[1].set_xlabel("optimiser step")
        axes[1].set_ylabel("validation mIoU (%)")
        axes[1].grid(True, alpha=0.3)
        axes[1].margins(y=0.1)  # room above the best point for its label
        axes[1].legend(fontsize=7)
    figure.suptitle(title or f"{suite} / {dataset} ({setting}): learning curves", fontsize=10)
    return save(figure, out_path)
