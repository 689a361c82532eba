"""Tests for bench.reporting.plots and bench.reporting.qualitative on FIXTURE records and tiny
FIXTURE sample files.

Every number below is a FIXTURE value chosen by hand for the test; none is a measurement.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import matplotlib.image
import numpy as np
import pytest

from bench.errors import ConfigError
from bench.records import DatasetSection, RunRecord
from bench.reporting.frame import leaderboard_frame
from bench.reporting.plots import (
    pareto_front,
    plot_miou_vs_gflops,
    plot_miou_vs_latency,
    plot_per_class_heatmap,
    write_plots,
)
from bench.reporting.qualitative import plot_qualitative_grid
from tests.factories import fixture_cpu, run_record
from tests.site_expect import write_samples

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
SETTING = "res8-steps5-b2"
PREFIX = f"quick__synthetic__{SETTING}"


def plot_record(arch: str, miou: float, **kwargs: Any) -> RunRecord:
    """A FIXTURE record of this module's group (8x8 images, sample files unless told)."""
    options: dict[str, Any] = {"res": (8, 8), "params": 2_000_000, "samples": True} | kwargs
    return run_record(arch, setting=SETTING, miou=miou, **options)


def fixture_records() -> list[RunRecord]:
    return [
        plot_record("fcn8s", 0.61, p50=12.0, params=134_000_000, gflops=50.0),
        plot_record("enet", 0.52, p50=3.0, params=360_000, gflops=0.5),
        plot_record("segnet", 0.58, p50=40.0, params=29_000_000, gflops=80.0),
        plot_record("fcn8s", 0.60, p50=1.2, device="cuda", dtype="fp16", samples=False),
        plot_record("background", 0.10, kind="baseline", dtype=None, params=None, samples=False),
    ]


def assert_png(path: Path, min_side: int = 200) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE
    height, width = matplotlib.image.imread(path).shape[:2]
    assert min_side <= height <= 6000 and min_side <= width <= 6000
    return height, width


def test_pareto_front_by_hand() -> None:
    # (latency, mIoU): #1 is slower and worse than #0; #3 is the fastest; #4 the most accurate.
    points = [(10.0, 60.0), (20.0, 55.0), (15.0, 70.0), (2.0, 40.0), (50.0, 75.0)]
    assert pareto_front(points) == [3, 0, 2, 4]
    # Same latency, better mIoU dominates; identical points are both kept.
    assert pareto_front([(5.0, 50.0), (5.0, 60.0)]) == [1]
    assert pareto_front([(5.0, 50.0), (5.0, 50.0)]) == [0, 1]
    assert pareto_front([]) == []
    with pytest.raises(ValueError, match=r"point #1 should be finite"):
        pareto_front([(1.0, 2.0), (float("nan"), 3.0)])
    with pytest.raises(ValueError, match=r"point #0 should be an \(x, y\) pair"):
        pareto_front([(1.0,)])  # type: ignore[list-item]


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Path]]:
    """Every figure of the fixture records, written once for the module (plots take ~0.5 s)."""
    results_dir = tmp_path_factory.mktemp("results")
    write_samples(results_dir, fixture_records())
    return results_dir, write_plots(fixture_records(), results_dir)


def test_write_plots_writes_every_figure(written: tuple[Path, list[Path]]) -> None:
    results_dir, paths = written
    assert [p.name for p in paths] == [
        f"{PREFIX}__miou_vs_latency_cpu-fp32.png",  # not cuda-fp16: one point ranks nothing
        f"{PREFIX}__miou_vs_gflops_8x8.png",
        f"{PREFIX}__per_class_iou.png",
        f"{PREFIX}__qualitative.png",
    ]
    for path in paths:
        assert path.parent == results_dir / "plots"
        assert_png(path)
        umask = os.umask(0)
        os.umask(umask)
        assert path.stat().st_mode & 0o777 == 0o666 & ~umask  # atomic writer, not mkstemp's 0600
    assert sorted(p.name for p in (results_dir / "plots").iterdir()) == sorted(
        p.name for p in paths
    )  # no temporary file left behind
    # Grid: 2 sample rows x (image, ground truth, 3 predictions) -> wider than tall.
    height, width = assert_png(results_dir / "plots" / f"{PREFIX}__qualitative.png")
    assert width > height


def test_plots_are_deterministic(written: tuple[Path, list[Path]], tmp_path: Path) -> None:
    results_dir, _ = written
    records = fixture_records()
    cpu = [r for r in records if r.device == "cpu"]
    latency = plot_miou_vs_latency(cpu, tmp_path / "latency.png")
    grid = plot_qualitative_grid(records, results_dir, tmp_path / "grid.png")
    plots = results_dir / "plots"
    assert latency.read_bytes() == (plots / f"{PREFIX}__miou_vs_latency_cpu-fp32.png").read_bytes()
    assert grid == tmp_path / "grid.png"
    assert grid.read_bytes() == (plots / f"{PREFIX}__qualitative.png").read_bytes()


def test_marker_size_follows_params(written: tuple[Path, list[Path]], tmp_path: Path) -> None:
    """Markers are sized by params: an unknown count (a version-1 record with auxiliary heads)
    changes the figure, a known one gives the same figure."""
    results_dir, _ = written
    gflops = (results_dir / "plots" / f"{PREFIX}__miou_vs_gflops_8x8.png").read_bytes()
    same = plot_miou_vs_gflops(fixture_records(), tmp_path / "same.png")
    assert same.read_bytes() == gflops
    records = fixture_records()
    segnet = records[2]
    records[2] = segnet.replace(complexity=dataclasses.replace(segnet.complexity, params=None))
    unknown = plot_miou_vs_gflops(records, tmp_path / "unknown.png")
    assert unknown.read_bytes() != gflops


def test_latency_plot_refuses_mixed_devices(tmp_path: Path) -> None:
    frame = leaderboard_frame(fixture_records())
    with pytest.raises(ConfigError, match=r"latencies from 2 devices/dtypes"):
        plot_miou_vs_latency(frame, tmp_path / "mixed.png")
    cpu_only = frame[(frame["device"] == "cpu")]
    assert_png(plot_miou_vs_latency(cpu_only, tmp_path / "cpu.png"))
    with pytest.raises(ConfigError, match="lacks column"):
        plot_miou_vs_latency(frame.drop(columns=["latency_p50_ms"]), tmp_path / "x.png")
    untimed = [r for r in fixture_records() if r.speed is None]
    with pytest.raises(ConfigError, match=r"no ok model row has both mIoU and a positive"):
        plot_miou_vs_latency(untimed, tmp_path / "none.png")


def test_heatmap_needs_per_class_iou(tmp_path: Path) -> None:
    failed = [run_record("enet", status="error", dtype=None)]
    with pytest.raises(ConfigError, match="no ok record has metrics.per_class_iou"):
        plot_per_class_heatmap(failed, tmp_path / "none.png")
    assert not (tmp_path / "none.png").exists()


def test_known_cpus_get_their_own_latency_figures(tmp_path: Path) -> None:
    records = [
        plot_record("fcn8s", 0.61, p50=12.0, cpu=fixture_cpu("AVX2"), samples=False, run_id="a"),
        plot_record("enet", 0.52, p50=6.0, cpu=fixture_cpu("AVX2"), samples=False, run_id="b"),
        plot_record("fcn8s", 0.61, p50=6.0, cpu=fixture_cpu("AVX512"), samples=False, run_id="c"),
        plot_record("enet", 0.52, p50=3.0, cpu=fixture_cpu("AVX512"), samples=False, run_id="d"),
    ]
    names = [p.name for p in write_plots(records, tmp_path)]
    # Each CPU its own figure, and each with two points at least (one point ranks nothing).
    assert not any("AVX512" in p.name for p in write_plots(records[:3], tmp_path / "one"))
    assert names[:2] == [
        f"{PREFIX}__miou_vs_latency_cpu-AVX2-fp32.png",
        f"{PREFIX}__miou_vs_latency_cpu-AVX512-fp32.png",
    ]


# -- the qualitative grid ---------------------------------------------------------------------


def test_qualitative_grid_skips_missing_files_with_warning(tmp_path: Path) -> None:
    records = fixture_records()
    write_samples(tmp_path, records)
    (tmp_path / records[1].samples.file).unlink()  # enet's predictions are gone
    out = tmp_path / "grid.png"
    with pytest.warns(UserWarning, match=r"does not exist; skipped"):
        result = plot_qualitative_grid(records, tmp_path, out, max_images=2)
    assert result == out
    assert_png(out)
    # No sample files at all: a warning and no figure, not a crash.
    with pytest.warns(UserWarning) as caught:
        assert plot_qualitative_grid(records, tmp_path / "empty", tmp_path / "none.png") is None
    messages = [str(w.message) for w in caught]
    assert len(messages) == 2  # the inputs file once (not once per record), then the outcome
    assert "inputs.npz does not exist; skipped" in messages[0]
    assert "no grid written" in messages[1]
    assert not (tmp_path / "none.png").exists()
    with pytest.raises(ConfigError, match="max_images should be an integer >= 1"):
        plot_qualitative_grid(records, tmp_path, out, max_images=0)


def test_qualitative_grid_skips_predictions_of_the_wrong_shape(tmp_path: Path) -> None:
    records = fixture_records()
    write_samples(tmp_path, records)
    np.savez(tmp_path / records[0].samples.file, pred=np.zeros((2, 4, 4)), indices=np.array([4, 9]))
    with pytest.warns(UserWarning, match=r"expected pred \(S, H, W\) with H, W = \(8, 8\)"):
        assert (
            plot_qualitative_grid(records, tmp_path, tmp_path / "grid.png") == tmp_path / "grid.png"
        )


def test_short_palette_falls_back_to_tab20_with_a_warning(tmp_path: Path) -> None:
    records = [r for r in fixture_records() if r.samples is not None]
    short = DatasetSection(
        num_classes=3,
        class_names=records[0].dataset_info.class_names,
        palette=((0, 0, 0),),
        ignore_index=255,
    )
    records = [r.replace(dataset_info=short) for r in records]
    write_samples(tmp_path, records)
    with pytest.warns(UserWarning, match=r"palette should be 3 \[r, g, b\].*found 1 colours"):
        assert (
            plot_qualitative_grid(records, tmp_path, tmp_path / "grid.png") == tmp_path / "grid.png"
        )


def test_published_weights_are_points_labelled_by_name_and_one_point_draws_no_tradeoff(
    tmp_path: Path,
) -> None:
    from bench.records import WeightsUsed
    from bench.reporting._figure import labels
    from bench.reporting.plots import write_plots

    def loaded(name: str, miou: float, p50: float) -> RunRecord:
        weights = WeightsUsed(name=name, file="f.pth", sha256="0" * 64)
        return run_record("espnet", miou=miou, p50=p50).replace(kind="loaded", weights=weights)

    two = [loaded("espnet.a", 0.57, 60.0), loaded("espnet.b", 0.60, 200.0)]
    written = {p.name for p in write_plots(two, tmp_path)}
    assert any("miou_vs_latency" in n for n in written)
    assert any("miou_vs_gflops" in n for n in written)
    assert sorted(labels(leaderboard_frame(two))) == ["espnet.a", "espnet.b"]
    written = {p.name for p in write_plots(two[:1], tmp_path / "one")}
    assert not any("miou_vs" in n for n in written)


# -- layout: nothing cut off, nothing run together (issue 15, item 7) ---------------------------


def captured(monkeypatch: pytest.MonkeyPatch, module: Any) -> list:
    """The figures ``module.save`` is given, drawn (so text has its final place) but not saved."""
    figures: list = []

    def keep(figure, out_path):
        figure.canvas.draw()
        figures.append(figure)
        return Path(out_path)

    monkeypatch.setattr(module, "save", keep)
    return figures


LONG = "DeepLabV3-MobileNetV3-L (torchvision) with a long name"


def test_heatmap_row_labels_fit_inside_the_figure(monkeypatch, tmp_path: Path) -> None:
    import bench.reporting.plots as plots

    figures = captured(monkeypatch, plots)
    records = [
        plot_record("enet", 0.52, title=LONG),
        plot_record("background", 0.10, kind="baseline", dtype=None, params=None, samples=False),
    ]
    plots.plot_per_class_heatmap(records, tmp_path / "h.png")
    (figure,) = figures
    renderer = figure.canvas.get_renderer()
    width = figure.bbox.width
    labels = figure.axes[0].get_yticklabels()
    texts = [t.get_text() for t in labels]
    # The baseline has no speed record: it is no second device, so no row names a device.
    assert texts and not any("[" in t for t in texts)
    for label in labels:
        box = label.get_window_extent(renderer)
        assert box.x0 >= 0 and box.x1 <= width, (label.get_text(), box)


def test_long_prediction_titles_wrap_and_do_not_overlap(tmp_path: Path, monkeypatch) -> None:
    import bench.reporting.qualitative as qualitative

    figures = captured(monkeypatch, qualitative)
    records = [plot_record("enet", 0.52, title=LONG), plot_record("segnet", 0.5, title=LONG)]
    write_samples(tmp_path, records)
    plot_qualitative_grid(records, tmp_path, tmp_path / "q.png")
    (figure,) = figures
    renderer = figure.canvas.get_renderer()
    titles = [ax.title for ax in figure.axes if ax.get_title()]
    boxes = [t.get_window_extent(renderer) for t in titles]
    assert any("\n" in t.get_text() for t in titles)  # the long ones wrapped
    for a, b in zip(boxes, boxes[1:], strict=False):
        assert a.x1 <= b.x0, "titles run into each other"
    assert all(b.x0 >= 0 and b.x1 <= figure.bbox.width for b in boxes)


def test_the_baseline_line_names_it_once(monkeypatch, tmp_path: Path) -> None:
    import bench.reporting.plots as plots

    figures = captured(monkeypatch, plots)
    base = plot_record("background", 0.186, kind="baseline", dtype=None, params=None)
    named = base.replace(
        arch_info=dataclasses.replace(base.arch_info, title="all background (baseline)")
    )
    plain = base.replace(arch_info=dataclasses.replace(base.arch_info, title="all sky"))
    models = fixture_records()[:3]
    for baseline in (named, plain):
        plots.plot_miou_vs_gflops([*models, baseline], tmp_path / "g.png")
    texts = [[t.get_text() for t in f.axes[0].texts if "18.6" in t.get_text()] for f in figures]
    assert texts == [["all background (baseline): 18.6%"], ["baseline: all sky: 18.6%"]]
