"""Tests for bench.reporting.curves: the learning-curve figure drawn from records alone."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bench.errors import ConfigError
from bench.records import RunRecord, TrainInfo
from bench.reporting import curves
from bench.reporting.plots import write_plots
from tests.factories import run_record

SETTING = "res8-steps100-b2"


def trained(arch: str, losses: list[float], steps: int = 100, **val: object) -> RunRecord:
    """A FIXTURE record whose train section has ``losses`` as its curve (and ``val`` fields)."""
    record = run_record(arch, setting=SETTING, res=(8, 8))
    info = {**record.train.to_dict(), "steps": steps, "loss_curve": losses, **val}
    return record.replace(train=TrainInfo.from_dict(info))


def drawn(monkeypatch: pytest.MonkeyPatch) -> list:
    """Captures the figures curves.save is given (the drawn data, not the PNG's pixels)."""
    figures: list = []

    def keep(figure, out_path):
        figures.append(figure)
        return Path(out_path)

    monkeypatch.setattr(curves, "save", keep)
    return figures


def test_each_window_mean_sits_at_the_windows_last_step():
    # 100 steps: windows of 100 // 20 = 5 steps; 10 steps: windows of 1 (at least 1).
    record = trained("enet", [2.0, 1.5, 1.0], steps=100)
    assert curves.loss_points(record) == ([5, 10, 15], [2.0, 1.5, 1.0])
    assert curves.loss_points(trained("enet", [3.0, 2.0], steps=10)) == ([1, 2], [3.0, 2.0])
    assert curves.loss_points(run_record("enet")) == ([], [])  # the fixture has no curve


def test_the_figure_draws_the_recorded_loss_and_validation_curves(monkeypatch, tmp_path):
    figures = drawn(monkeypatch)
    records = [
        trained(
            "enet",
            [2.0, 1.5, 1.0, 0.8],
            val_steps=[10, 20],
            val_miou=[0.3, 0.45],
            best_step=20,
            best_val_miou=0.45,
        ),  # fmt: skip
        trained("linknet", [2.5, 1.2, 0.9]),
    ]
    curves.plot_learning_curves(records, tmp_path / "c.png")
    (figure,) = figures
    loss_ax, val_ax = figure.axes
    lines = {line.get_label(): line for line in loss_ax.get_lines()}
    assert list(lines["ENET"].get_xdata()) == [5, 10, 15, 20]
    assert list(lines["ENET"].get_ydata()) == [2.0, 1.5, 1.0, 0.8]
    assert list(lines["LINKNET"].get_xdata()) == [5, 10, 15]
    assert loss_ax.get_yscale() == "log"
    (val,) = val_ax.get_lines()  # LinkNet did not validate
    assert list(val.get_xdata()) == [10, 20]
    assert np.allclose(val.get_ydata(), [30.0, 45.0])  # percent
    assert val.get_color() == lines["ENET"].get_color()
    assert [t.get_text() for t in val_ax.texts] == ["best 45.0"]


def test_without_validation_the_figure_has_one_panel(monkeypatch, tmp_path):
    figures = drawn(monkeypatch)
    curves.plot_learning_curves([trained("enet", [2.0, 1.0])], tmp_path / "c.png")
    assert len(figures[0].axes) == 1


def test_write_plots_adds_the_figure_only_for_trained_models(tmp_path):
    names = [p.name for p in write_plots([trained("enet", [2.0, 1.0])], tmp_path)]
    assert f"quick__synthetic__{SETTING}__learning_curves.png" in names
    assert (tmp_path / "plots" / names[-1]).read_bytes()[:4] == b"\x89PNG"
    # One point is no curve; a baseline trains nothing.
    untrained = [trained("enet", [2.0]), run_record("background", kind="baseline", dtype=None)]
    names = [p.name for p in write_plots(untrained, tmp_path / "none")]
    assert not any("learning_curves" in n for n in names)
    with pytest.raises(ConfigError, match=r"no ok model record has a train.loss_curve"):
        curves.plot_learning_curves(untrained, tmp_path / "x.png")
