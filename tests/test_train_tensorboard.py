"""Tests for bench.train.scalars: TensorBoard event files of training runs, read back with
TensorBoard's own reader, and a run without the (optional) tensorboard package."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from bench.data import build_dataset
from bench.train import MISSING_MESSAGE, TrainConfig, poly_lr_factor, tensorboard_writer, train
from tests.factories import fixture_arch_info, registry_restored, run_cli, write_suite

pytestmark = pytest.mark.usefixtures("one_thread")


def scalars(folder: Path) -> dict[str, list[tuple[int, float]]]:
    """Every scalar series in the event files of ``folder``: ``{tag: [(step, value)]}``."""
    accumulator = pytest.importorskip(
        "tensorboard.backend.event_processing.event_accumulator",
        reason="reading event files back needs the tensorboard package (the dev extra has it)",
    )
    events = accumulator.EventAccumulator(str(folder))
    events.Reload()
    return {
        tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]
    }


def test_the_loop_logs_loss_lr_and_throughput_at_each_step(tmp_path):
    pytest.importorskip("tensorboard")
    dataset, info = build_dataset("synthetic", split="train", size=(16, 16), num_samples=8)
    cfg = TrainConfig(steps=5, batch_size=2, lr=0.02, warmup_steps=2)
    torch.manual_seed(0)
    writer = tensorboard_writer(tmp_path / "tb")
    result = train(
        nn.Conv2d(3, info.num_classes, 1),
        dataset,
        cfg,
        ignore_index=info.ignore_index,
        progress=False,
        scalars=writer,
    )
    writer.close()
    series = scalars(tmp_path / "tb")
    assert set(series) == {"train/loss", "train/lr", "train/images_per_s"}
    steps = [1, 2, 3, 4, 5]
    # Window of 1 step (5 // 20 -> 1): the loss curve is each step's loss, rounded to 6 places;
    # event files store float32.
    assert [s for s, _ in series["train/loss"]] == steps
    assert [v for _, v in series["train/loss"]] == pytest.approx(result.loss_curve, abs=1e-5)
    assert series["train/loss"][-1][1] == pytest.approx(result.final_loss, rel=1e-6)
    # The rate each step used: warm-up 0.01, 0.02, then poly decay over the remaining 3 steps.
    lrs = [0.02 * poly_lr_factor(s - 1, 5, cfg.poly_power, 2) for s in steps]
    assert lrs[:2] == pytest.approx([0.01, 0.02])
    assert [v for _, v in series["train/lr"]] == pytest.approx(lrs, rel=1e-6)
    assert [s for s, _ in series["train/images_per_s"]] == steps
    assert all(v > 0 for _, v in series["train/images_per_s"])


SUITE = """\
dataset: synthetic
dataset_options: {num_samples: 8}
resolution: [16, 16]
archs: [tb_test_conv]
threads: 1
train: {steps: 3, batch_size: 2, lr: 0.01}
eval: {split: val, batch_size: 8, num_samples: 0}
speed: {enabled: false}
complexity: {enabled: false}
"""


@pytest.fixture
def suite_file(tmp_path, restore_threads):
    """A one-architecture suite (a 1x1 conv entry registered for the test)."""
    from architectures import _registry

    with registry_restored():
        _registry.register(fixture_arch_info("tb_test_conv", input_divisor=1))(
            lambda *, num_classes: nn.Conv2d(3, num_classes, 1)
        )
        yield write_suite(tmp_path, SUITE, "tb_suite.yaml")


def record_of(results: Path) -> dict:
    (path,) = (results / "records").glob("tb_suite__tb_test_conv__*.json")
    return json.loads(path.read_text(encoding="utf-8"))


def test_run_writes_event_files_under_the_results_folder(suite_file, tmp_path):
    pytest.importorskip("tensorboard")
    results = tmp_path / "results"
    code, out, _ = run_cli(["run", "--suite", suite_file, "--results-dir", results, "-q"])
    assert code == 0, out
    assert MISSING_MESSAGE not in out
    record = record_of(results)
    folder = results / "tensorboard" / f"tb_suite__tb_test_conv__synthetic__{record['setting']}"
    assert len(list(folder.glob("events.out.tfevents.*"))) == 1
    series = scalars(folder)
    assert [s for s, _ in series["train/loss"]] == [1, 2, 3]
    assert series["train/loss"][-1][1] == pytest.approx(record["train"]["final_loss"], rel=1e-6)
    assert series["eval/miou"] == [(3, pytest.approx(record["metrics"]["miou"], rel=1e-6))]
    assert series["eval/pixel_acc"] == [(3, pytest.approx(record["metrics"]["pixel_acc"]))]
    # The baseline trains nothing: no event files of its own.
    assert [p.name for p in (results / "tensorboard").iterdir()] == [folder.name]


def test_without_tensorboard_the_run_says_so_once_and_goes_on(suite_file, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorboard", None)  # `import tensorboard` fails
    results = tmp_path / "results"
    code, out, _ = run_cli(["run", "--suite", suite_file, "--results-dir", results, "-q"])
    assert code == 0, out
    assert out.count(MISSING_MESSAGE) == 1
    assert MISSING_MESSAGE == (
        "TensorBoard logging off: the tensorboard package is not installed "
        "(pip install tensorboard); the run goes on without event files."
    )
    assert not (results / "tensorboard").exists()
    assert record_of(results)["status"] == "ok"


def test_no_tensorboard_flag_writes_no_event_files(suite_file, tmp_path):
    results = tmp_path / "results"
    code, out, _ = run_cli(
        ["run", "--suite", suite_file, "--results-dir", results, "-q", "--no-tensorboard"]
    )
    assert code == 0, out
    assert MISSING_MESSAGE not in out
    assert not (results / "tensorboard").exists()
    assert record_of(results)["train"]["amp"] == "off"
