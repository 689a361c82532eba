"""Tests for bench.runner: a real sweep of the tiny suite, failure isolation and resume.

The tiny suite (``tests/data/tiny_suite.yaml``) trains two mobile architectures for 3 steps at
32x32; one sweep, shared by the tests of this module, also holds a deliberately broken entry.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator

import numpy as np
import pytest
import torch
from torch import nn

import architectures
from architectures import _registry
from bench.bootstrap import bootstrap_intervals, load_per_image
from bench.complexity import count_complexity
from bench.data import build_dataset
from bench.models import build_model
from bench.records import SCHEMA_VERSION
from bench.runner import BASELINE_ARCH, Sweep
from bench.suites import load_suite
from tests.factories import (
    TINY_SUITE,
    fixture_arch_info,
    read_record_files,
    registry_restored,
    torch_threads,
)

REAL_ARCHS = ["tv_lraspp_mobilenet_v3_large", "tv_deeplabv3_mobilenet_v3_large"]
BROKEN = "broken_test_arch"
TINY_CONV = "tiny_conv_test_arch"
SCHEMA_KEYS = {
    "amendments",
    "schema_version",
    "run_id",
    "created",
    "kind",
    "suite",
    "setting",
    "arch",
    "arch_info",
    "dataset",
    "dataset_info",
    "protocol",
    "status",
    "error",
    "metrics",
    "complexity",
    "speed",
    "train",
    "weights",
    "env",
    "command",
    "samples",
    "seed_group",
}
TEST_ENTRY = {"year": 2026, "input_divisor": 1}  # of the temporary entries
SPEED_ITERS = (2, 3)  # min_iters and max_iters of the tiny suite's speed section
METRIC_KEYS = ("miou", "pixel_acc", "mean_acc", "fwiou", "mean_dice")


class Broken(nn.Module):
    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        raise RuntimeError("deliberate failure in Broken.forward")


@pytest.fixture(scope="module")
def temp_archs() -> Iterator[None]:
    """Registers a broken entry and a 1x1-conv entry for the module; removes them after, and
    restores the thread count (the tiny suite sets ``threads: 1`` for the whole process)."""
    with torch_threads(None), registry_restored():
        _registry.register(fixture_arch_info(BROKEN, title="Broken (test)", **TEST_ENTRY))(
            lambda *, num_classes: Broken(num_classes)
        )
        _registry.register(fixture_arch_info(TINY_CONV, title="1x1 conv (test)", **TEST_ENTRY))(
            lambda *, num_classes: nn.Conv2d(3, num_classes, 1)
        )
        yield


@pytest.fixture(scope="module")
def sweep(tmp_path_factory, temp_archs):
    results_dir = tmp_path_factory.mktemp("sweep")
    logs: list[str] = []
    sw = Sweep(
        load_suite(str(TINY_SUITE)),
        results_dir=results_dir,
        device="cpu",
        command="python run_bench.py run --suite tiny",
        progress=False,
        log=logs.append,
    )
    # The broken entry sits between the two real ones: the sweep must carry on after it.
    summary = sw.run([REAL_ARCHS[0], BROKEN, REAL_ARCHS[1]])
    by_arch = {r["arch"]: r for r in read_record_files(results_dir)}
    return sw, summary, by_arch, results_dir, logs


def test_one_record_per_arch_plus_the_baseline(sweep):
    _, summary, by_arch, results_dir, _ = sweep
    assert sorted(by_arch) == sorted([BASELINE_ARCH, *REAL_ARCHS, BROKEN])
    assert len(summary.written) == 4
    assert sorted(p.name for p in (results_dir / "records").iterdir()) == sorted(
        p.name for p in summary.written
    )
    assert summary.skipped == []


@pytest.mark.parametrize("arch", REAL_ARCHS)
def test_ok_record_is_complete(sweep, arch):
    _, _, by_arch, results_dir, _ = sweep
    r = by_arch[arch]
    assert set(r) == SCHEMA_KEYS
    assert r["status"] == "ok" and r["error"] is None
    assert r["kind"] == "model"
    assert r["suite"] == "tiny_suite" and r["dataset"] == "synthetic"
    assert r["setting"].startswith("32x32-steps3-bs2-fp32-seed0-")
    assert r["run_id"].startswith(f"tiny_suite__{arch}__synthetic__")
    assert r["command"] == "python run_bench.py run --suite tiny"
    assert r["arch_info"]["title"] == architectures.get_info(arch).title
    assert r["protocol"] == {
        "split": "val",
        "mode": "whole",
        "scales": [1.0],
        "flip": False,
        "resolution": [32, 32],
        "num_images": 16,
        # Keys of file-backed datasets' protocols, null on the synthetic set:
        **dict.fromkeys(
            ("crop", "stride", "short_side", "label_resolution", "train_augment"), None
        ),
    }
    assert r["amendments"] == []
    assert r["env"]["threads"] == 1 and r["env"]["seed"] == 0 and r["env"]["device"] == "cpu"
    for key in METRIC_KEYS:
        assert 0.0 <= r["metrics"][key] <= 1.0, key
    assert len(r["metrics"]["per_class_iou"]) == r["dataset_info"]["num_classes"]
    for v in r["metrics"]["per_class_iou"].values():
        assert v is None or 0.0 <= v <= 1.0
    # The confusion matrix the metrics come from: its diagonal over row + column - diagonal.
    m = np.array(r["metrics"]["confusion_matrix"])
    assert m.shape == (r["dataset_info"]["num_classes"],) * 2
    assert m.sum() == r["protocol"]["num_images"] * 32 * 32  # no ignored pixels in the tiny set
    union = m.sum(0) + m.sum(1) - np.diag(m)
    present = union > 0
    assert r["metrics"]["miou"] == pytest.approx((np.diag(m)[present] / union[present]).mean())
    assert r["weights"] is None and r["kind"] == "model"
    # The per-image matrices, named with their hash, sum to it; the intervals come from them.
    metrics = r["metrics"]
    per_image = load_per_image(results_dir / metrics["per_image_file"], metrics["per_image_sha256"])
    assert per_image.shape == (16, *m.shape) and (per_image.sum(axis=0) == m).all()
    intervals = bootstrap_intervals(per_image, metrics["bootstrap_resamples"])
    assert metrics["miou_ci95"] == list(intervals["miou"]) and metrics["bootstrap_seed"] == 0
    assert r["seed_group"] == load_suite(str(TINY_SUITE)).seed_group


@pytest.mark.parametrize("arch", REAL_ARCHS)
def test_ok_record_complexity_speed_train(sweep, arch):
    _, _, by_arch, _, _ = sweep
    r = by_arch[arch]
    cx = r["complexity"]
    model = build_model(arch, num_classes=r["dataset_info"]["num_classes"])
    every = sum(p.numel() for p in model.parameters())
    aux = sum(p.numel() for n, p in model.named_parameters() if ".aux_classifier." in n)
    assert (aux > 0) == bool(architectures.get_info(arch).aux_weights)  # DeepLabV3 has one
    assert cx["params_with_aux"] == every
    assert cx["params"] == cx["trainable_params"] == every - aux  # the network as evaluated
    assert cx["input_shape"] == [1, 3, 64, 64]
    assert cx["macs"] == count_complexity(model, (1, 3, 64, 64)).macs  # the library's count
    assert cx["gflops"] == pytest.approx(2 * cx["macs"] / 1e9)
    sp = r["speed"]
    assert sp["device"] == "cpu" and sp["dtype"] == "fp32"
    assert sp["input_shape"] == [1, 3, 32, 32]
    assert SPEED_ITERS[0] <= sp["latency_ms"]["n"] <= SPEED_ITERS[1]  # the suite's budget
    assert sp["throughput_batch_size"] in (1, 2)  # max_batch 2
    tr = r["train"]
    assert (tr["steps"], tr["batch_size"], tr["optimizer"], tr["lr"]) == (3, 2, "adamw", 0.001)
    assert len(tr["loss_curve"]) == 3 and tr["final_loss"] > 0


@pytest.mark.parametrize("arch", REAL_ARCHS)
def test_sample_files_exist_and_hold_predictions(sweep, arch):
    _, _, by_arch, results_dir, _ = sweep
    samples = by_arch[arch]["samples"]
    assert samples["inputs_file"] == "samples/tiny_suite__synthetic__inputs.npz"
    with np.load(results_dir / samples["file"]) as f:
        assert f["pred"].shape == (2, 32, 32) and f["pred"].dtype == np.uint8
        assert f["pred"].max() < 8
    eval_set, _ = build_dataset("synthetic", split="val", size=(32, 32), num_samples=16)
    with np.load(results_dir / samples["inputs_file"]) as f:
        assert f["image"].shape == (2, 32, 32, 3) and f["image"].dtype == np.uint8
        np.testing.assert_array_equal(f["label"][1], eval_set[1][1].numpy())


def test_baseline_record_matches_the_masks(sweep):
    _, _, by_arch, _, _ = sweep
    r = by_arch[BASELINE_ARCH]
    assert r["kind"] == "baseline" and r["status"] == "ok"
    assert set(r) == SCHEMA_KEYS
    assert r["complexity"] is None and r["speed"] is None and r["train"] is None
    # Predicting class 0 everywhere: IoU_0 = pixel accuracy = share of class-0 pixels; every
    # other class present in the masks has IoU 0, absent classes are undefined (None).
    eval_set, info = build_dataset("synthetic", split="val", size=(32, 32), num_samples=16)
    masks = np.stack([eval_set[i][1].numpy() for i in range(len(eval_set))])
    valid = masks != info.ignore_index
    share0 = (masks[valid] == 0).mean()
    present = [c for c in range(info.num_classes) if (masks == c).any()]
    m = r["metrics"]
    assert m["pixel_acc"] == pytest.approx(share0)
    assert m["miou"] == pytest.approx(share0 / len(present))
    for c, name in enumerate(info.class_names):
        expected = share0 if c == 0 else (0.0 if c in present else None)
        assert m["per_class_iou"][name] == pytest.approx(expected), name


def test_failing_arch_becomes_an_error_record_and_the_sweep_goes_on(sweep):
    _, summary, by_arch, _, logs = sweep
    r = by_arch[BROKEN]
    assert set(r) == SCHEMA_KEYS
    assert r["status"] == "error"
    err = r["error"]
    assert err["type"] == "RuntimeError"
    # Complexity is the first stage that runs the model; it names what it was counting.
    assert err["stage"] == "complexity"
    assert err["message"] == (
        "fvcore could not count PadCrop at input shape (1, 3, 64, 64): "
        "RuntimeError: deliberate failure in Broken.forward"
    )
    assert "Traceback (most recent call last)" in err["traceback"]
    assert "in forward" in err["traceback"]
    assert r["metrics"] is None and r["train"] is None and r["speed"] is None
    assert r["arch_info"]["title"] == "Broken (test)"
    assert summary.failed == [(BROKEN, f"complexity: RuntimeError: {err['message']}")]
    # The architecture after the broken one still ran.
    assert by_arch[REAL_ARCHS[1]]["status"] == "ok"
    assert len(logs) == 3
    assert logs[1] == f"[2/3] {BROKEN}: ERROR in complexity: RuntimeError: {err['message']}"
    assert logs[0].startswith(f"[1/3] {REAL_ARCHS[0]}: mIoU ")


def test_records_are_plain_json(sweep):
    _, summary, _, _, _ = sweep
    for path in summary.written:
        data = json.loads(path.read_text(encoding="utf-8"))
        assert isinstance(data, dict) and data["schema_version"] == SCHEMA_VERSION == 3
        assert path.stem == data["run_id"]


# -- resume, with the cheap 1x1-conv entry ------------------------------------------------------


def test_resume_skips_archs_with_ok_records(tmp_path, temp_archs):
    suite = load_suite(str(TINY_SUITE))
    quiet = {"results_dir": tmp_path, "device": "cpu", "progress": False, "log": lambda m: None}
    first = Sweep(suite, **quiet).run([TINY_CONV, BROKEN])
    assert [p.name.split("__")[1] for p in first.written] == [BASELINE_ARCH, TINY_CONV, BROKEN]
    r = next(x for x in read_record_files(tmp_path) if x["arch"] == TINY_CONV)
    k = r["dataset_info"]["num_classes"]
    # A 1x1 conv 3 -> K: 3K weights + K biases; 3K MACs per pixel at the 64x64 complexity input.
    assert r["complexity"]["params"] == 3 * k + k
    assert r["complexity"]["macs"] == 3 * k * 64 * 64

    again = Sweep(suite, **quiet).run([TINY_CONV, BROKEN], resume=True)
    assert again.skipped == [TINY_CONV]
    assert [p.name.split("__")[1] for p in again.written] == [BROKEN]  # error: retried
    assert [a for a, _ in again.failed] == [BROKEN]
    assert len(read_record_files(tmp_path)) == 4

    # Another setting (seed) is another experiment: nothing is skipped.
    other = Sweep(dataclasses.replace(suite, seed=1), **quiet).run([TINY_CONV], resume=True)
    assert other.skipped == []
    assert [p.name.split("__")[1] for p in other.written] == [BASELINE_ARCH, TINY_CONV]

    # Without resume everything runs again.
    fresh = Sweep(suite, **quiet).run([TINY_CONV])
    assert fresh.skipped == [] and len(fresh.written) == 2


# -- devices ----------------------------------------------------------------------------------
