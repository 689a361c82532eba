"""Tests for bench.plots on hand-written fixture records and tiny fixture sample files.

Every number below is a FIXTURE value chosen by hand for the test; none is a measurement.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import matplotlib.image
import numpy as np
import pytest

from bench.leaderboard import leaderboard_frame
from bench.plots import (
    pareto_front,
    plot_miou_vs_latency,
    plot_qualitative_grid,
    write_plots,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
CLASSES = ["background", "disc", "square"]
PALETTE = [[0, 0, 0], [255, 0, 0], [0, 255, 0]]
SETTING = "res8-steps5-b2"
PREFIX = f"quick__synthetic__{SETTING}"
INPUTS_FILE = "samples/quick__synthetic__inputs.npz"


def fixture_record(
    arch: str,
    miou: float,
    *,
    kind: str = "model",
    p50: float | None = 10.0,
    params: int | None = 2_000_000,
    gflops: float | None = 1.0,
    device: str = "cpu",
    dtype: str = "fp32",
    samples: bool = True,
) -> dict[str, Any]:
    """A schema-version-1 FIXTURE record; speed is omitted when ``p50`` is None."""
    run_id = f"quick__{arch}__synthetic__20261127T061600Z_{device}{dtype}"
    return {
        "schema_version": 1,
        "run_id": run_id,
        "created": "2026-11-27T06:16:00Z",
        "kind": kind,
        "suite": "quick",
        "setting": SETTING,
        "arch": arch,
        "arch_info": {"title": arch.upper(), "paper": "1411.4038", "year": 2015},
        "dataset": "synthetic",
        "dataset_info": {
            "num_classes": 3,
            "class_names": CLASSES,
            "palette": PALETTE,
            "ignore_index": 255,
        },
        "status": "ok",
        "error": None,
        "metrics": {
            "miou": miou,
            "pixel_acc": 0.9,
            "mean_acc": 0.8,
            "per_class_iou": {"background": 0.9, "disc": miou, "square": None},
        },
        "complexity": None
        if params is None
        else {
            "params": params,
            "gflops": gflops,
            "gmacs": None if gflops is None else gflops / 2,
            "input_shape": [1, 3, 8, 8],
            "unsupported_ops": {},
            "disagreement": False,
        },
        "speed": None
        if p50 is None
        else {
            "device": device,
            "dtype": dtype,
            "batch_size": 1,
            "latency_ms": {"p50": p50},
            "throughput_ips": 100.0,
            "throughput_batch_size": 4,
        },
        "train": None,
        "env": {"device": device, "torch": "2.5.1"},
        "samples": {"file": f"samples/{run_id}.npz", "inputs_file": INPUTS_FILE}
        if samples
        else None,
    }


def write_samples(results_dir: Path, records: list[dict[str, Any]]) -> None:
    """Tiny FIXTURE sample files: 2 images of 8x8, each prediction = label shifted by one pixel."""
    (results_dir / "samples").mkdir(parents=True, exist_ok=True)
    label = np.zeros((2, 8, 8), dtype=np.uint8)
    label[:, 2:5, 2:5] = 1
    label[:, 5:7, 5:7] = 2
    label[0, 0, 0] = 255  # one ignore pixel
    image = np.stack([label * 80] * 3, axis=-1).astype(np.uint8)
    indices = np.array([4, 9])
    np.savez(results_dir / INPUTS_FILE, image=image, label=label, indices=indices)
    for record in records:
        if record["samples"]:
            pred = np.roll(label, 1, axis=2) % 3
            np.savez(
                results_dir / record["samples"]["file"], pred=pred.astype(np.uint8), indices=indices
            )


def fixture_records() -> list[dict[str, Any]]:
    return [
        fixture_record("fcn8s", 0.61, p50=12.0, params=134_000_000, gflops=50.0),
        fixture_record("enet", 0.52, p50=3.0, params=360_000, gflops=0.5),
        fixture_record("segnet", 0.58, p50=40.0, params=29_000_000, gflops=80.0),
        fixture_record("fcn8s", 0.60, p50=1.2, device="cuda", dtype="fp16", samples=False),
        fixture_record("background", 0.10, kind="baseline", p50=None, params=None, samples=False),
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
    names = [p.name for p in paths]
    assert names == [
        f"{PREFIX}__miou_vs_latency_cpu-fp32.png",
        f"{PREFIX}__miou_vs_latency_cuda-fp16.png",
        f"{PREFIX}__miou_vs_gflops_8x8.png",
        f"{PREFIX}__per_class_iou.png",
        f"{PREFIX}__qualitative.png",
    ]
    for path in paths:
        assert path.parent == results_dir / "plots"
        assert_png(path)
    # Grid: 2 sample rows x (image, ground truth, 3 predictions) -> wider than tall.
    height, width = assert_png(results_dir / "plots" / f"{PREFIX}__qualitative.png")
    assert width > height


def test_plots_are_deterministic(written: tuple[Path, list[Path]], tmp_path: Path) -> None:
    results_dir, _ = written
    records = copy.deepcopy(fixture_records())
    cpu = [r for r in records if r["env"]["device"] == "cpu"]
    latency = plot_miou_vs_latency(cpu, tmp_path / "latency.png")
    grid = plot_qualitative_grid(records, results_dir, tmp_path / "grid.png")
    plots = results_dir / "plots"
    assert latency.read_bytes() == (plots / f"{PREFIX}__miou_vs_latency_cpu-fp32.png").read_bytes()
    assert grid is not None
    assert grid.read_bytes() == (plots / f"{PREFIX}__qualitative.png").read_bytes()


def test_qualitative_grid_skips_missing_files_with_warning(tmp_path: Path) -> None:
    records = fixture_records()
    write_samples(tmp_path, records)
    (tmp_path / records[1]["samples"]["file"]).unlink()  # enet's predictions are gone
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
    with pytest.raises(ValueError, match="max_images should be an integer >= 1"):
        plot_qualitative_grid(records, tmp_path, out, max_images=0)


def test_latency_plot_refuses_mixed_devices(tmp_path: Path) -> None:
    frame = leaderboard_frame(fixture_records())
    with pytest.raises(ValueError, match=r"latencies from 2 devices/dtypes"):
        plot_miou_vs_latency(frame, tmp_path / "mixed.png")
    cpu_only = frame[(frame["device"] == "cpu")]
    assert_png(plot_miou_vs_latency(cpu_only, tmp_path / "cpu.png"))
    with pytest.raises(ValueError, match="lacks column"):
        plot_miou_vs_latency(frame.drop(columns=["latency_p50_ms"]), tmp_path / "x.png")
