"""Tests for bench.train.state: a killed training run, resumed from its saved state, ends
bit-identical to an uninterrupted one (CPU), in the loop and through the sweep.

A "kill" here is an exception raised from a forward pre-hook at a chosen forward call: the
process state it leaves behind is thrown away (a fresh model, optimiser and loader are built
for the resumed run, and the global random states are scrambled first), so only the state file
carries over, as after ``kill -9``. The subprocess version (``run``, SIGKILL, ``run --resume``)
is ``tests/test_resume_after_kill.py``.
"""

from __future__ import annotations

import dataclasses
import random
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from bench.data import build_dataset
from bench.errors import CheckpointError
from bench.train import TrainConfig, TrainResult, train
from bench.train import state as state_module
from tests.factories import (
    fixture_arch_info,
    read_record_files,
    registry_restored,
    run_metrics,
    write_suite,
)

# One thread for the whole module, module fixtures included: the reference run and the resumed
# runs must reduce in the same order to compare bit for bit.
pytestmark = pytest.mark.usefixtures("one_thread_per_module")

SEED = 3
# 8 images, 2 per step: 4 steps per epoch, so 9 steps cross two epoch boundaries.
CFG = TrainConfig(steps=9, batch_size=2, lr=0.01, precise_bn_batches=2, checkpoint_every=3)


class Killed(Exception):
    """Stands in for the process dying: raised from inside training."""


def tiny_net(num_classes: int) -> nn.Module:
    """BatchNorm (running statistics, precise BN) and dropout (the global RNG) included."""
    torch.manual_seed(123)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.Dropout2d(0.5),
        nn.Conv2d(8, num_classes, 1),
    )


def run_train(model: nn.Module, dataset, cfg, info, **options):
    """``train`` with this module's seed, no progress bar and the dataset's ignore index."""
    return train(
        model, dataset, cfg, ignore_index=info.ignore_index, seed=SEED, progress=False, **options
    )


def kill_at_forward(model: nn.Module, call: int) -> None:
    """Makes ``model``'s forward call number ``call`` (1-based) raise :class:`Killed`."""
    calls = [0]

    def hook(*_: object) -> None:
        calls[0] += 1
        if calls[0] == call:
            raise Killed

    model.register_forward_pre_hook(hook)


def scramble_global_rngs() -> None:
    """What a new process would have: other global random states than the killed one's."""
    torch.manual_seed(987654)
    np.random.seed(4321)
    random.seed(55)


@pytest.fixture(scope="module")
def synthetic():
    return build_dataset("synthetic", split="train", size=(32, 32), num_samples=8)


@pytest.fixture(scope="module")
def uninterrupted(synthetic, one_thread_per_module):
    """The run every resumed run must reproduce, and its trained model."""
    dataset, info = synthetic
    model = tiny_net(info.num_classes)
    result = train(model, dataset, CFG, ignore_index=info.ignore_index, seed=SEED, progress=False)
    return result, model.state_dict()


def killed_then_resumed(
    dataset, info, cfg: TrainConfig, kill_call: int, path: Path
) -> tuple[TrainResult, dict]:
    """Trains until forward call ``kill_call`` dies, then resumes in fresh objects."""
    doomed = tiny_net(info.num_classes)
    kill_at_forward(doomed, kill_call)
    with pytest.raises(Killed):
        run_train(doomed, dataset, cfg, info, state_file=path)
    assert path.is_file()
    scramble_global_rngs()
    fresh = tiny_net(info.num_classes)
    result = run_train(fresh, dataset, cfg, info, state_file=path, resume=True)
    return result, fresh.state_dict()


def assert_same_weights(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    different = [k for k in a if not torch.equal(a[k], b[k])]
    assert different == []


# -- the loop ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kill_call", "saved_step"),
    [
        (5, 3),  # killed in step 5: the state of step 3, in epoch 0
        (7, 6),  # killed in step 7: the state of step 6, 2 batches into epoch 1
        (10, 9),  # killed in precise BN (forward call 10): the state after the last step
    ],
)
def test_a_killed_run_resumes_to_the_same_loss_and_weights(
    synthetic, uninterrupted, tmp_path, kill_call, saved_step
):
    dataset, info = synthetic
    expected, weights = uninterrupted
    result, resumed_weights = killed_then_resumed(
        dataset, info, CFG, kill_call, tmp_path / "state.pt"
    )
    assert result.resumed_from_step == saved_step
    assert result.final_loss == expected.final_loss  # exactly: same floats
    assert result.loss_curve == expected.loss_curve
    assert result.steps == 9 and result.precise_bn_batches == 2
    assert_same_weights(resumed_weights, weights)  # BN running statistics included
    assert expected.resumed_from_step is None


def test_random_augmentation_in_worker_processes_is_replayed_exactly(camvid, tmp_path):
    """CamVid's training transforms draw scales, crops and flips from torch's RNG inside a
    DataLoader worker; the resumed run must draw the same ones for the batches after the
    saved step."""
    dataset, info = build_dataset("camvid", split="train", root=str(camvid), size=(32, 48))
    cfg = dataclasses.replace(CFG, num_workers=1, checkpoint_every=2)
    reference = tiny_net(info.num_classes)
    expected = train(
        reference, dataset, cfg, ignore_index=info.ignore_index, seed=SEED, progress=False
    )
    result, weights = killed_then_resumed(dataset, info, cfg, 6, tmp_path / "state.pt")
    assert result.resumed_from_step == 4
    assert (result.final_loss, result.loss_curve) == (expected.final_loss, expected.loss_curve)
    assert_same_weights(weights, reference.state_dict())


@pytest.mark.parametrize(
    ("broken", "why"),
    [
        ("restore_rng_states", "dropout masks drawn from the scrambled global RNG"),
        ("seek", "the data order restarted from the seed instead of the saved position"),
    ],
)
def test_without_each_part_of_the_state_the_resumed_run_differs(
    synthetic, uninterrupted, tmp_path, monkeypatch, broken, why
):
    """The exactness test can fail: leave out the random states or the data position and the
    resumed run ends elsewhere."""
    dataset, info = synthetic
    if broken == "seek":
        monkeypatch.setattr(state_module.BatchStream, "seek", lambda self, position: None)
    else:
        monkeypatch.setattr(state_module, broken, lambda states: None)
    expected, weights = uninterrupted
    result, resumed = killed_then_resumed(dataset, info, CFG, 7, tmp_path / "state.pt")
    assert result.final_loss != expected.final_loss, why
    assert not torch.equal(resumed["0.weight"], weights["0.weight"]), why


def test_the_state_file_is_weights_only_and_says_where_the_run_was(synthetic, tmp_path):
    dataset, info = synthetic
    path = tmp_path / "state.pt"
    model = tiny_net(info.num_classes)
    kill_at_forward(model, 8)  # dies in step 8: the last state saved is step 6's
    with pytest.raises(Killed):
        run_train(model, dataset, CFG, info, state_file=path, run_name="suite/arch")
    state = torch.load(path, map_location="cpu", weights_only=True)
    assert state["format"] == "semseg-bench-train-state/1"
    assert state["progress"]["step"] == 6
    assert len(state["progress"]["loss_curve"]) == 6  # window 1: one point per step
    # 4 batches per epoch: step 6 is the second batch of epoch 1.
    assert (state["data"]["epoch"], state["data"]["batches"]) == (1, 2)
    assert state["identity"]["name"] == "suite/arch" and state["identity"]["seed"] == SEED
    assert state["identity"]["device"] == "cpu"
    # checkpoint_every is not part of the identity: resuming with another interval is fine.
    assert "checkpoint_every" not in state["identity"]["config"]
    assert state["identity"]["config"]["steps"] == 9
    assert state["scheduler"]["last_epoch"] == 6
    assert set(state["rng"]) == {"torch", "cuda", "numpy", "python"}
    assert set(state["model"]) == set(model.state_dict())
    assert [p.name for p in tmp_path.iterdir()] == ["state.pt"]  # no temporary file left


def test_a_state_of_another_run_is_refused_naming_what_differs(synthetic, tmp_path):
    dataset, info = synthetic
    path = tmp_path / "state.pt"
    model = tiny_net(info.num_classes)
    kill_at_forward(model, 5)
    with pytest.raises(Killed):
        run_train(model, dataset, CFG, info, state_file=path)
    with pytest.raises(CheckpointError) as exc:
        train(
            tiny_net(info.num_classes),
            dataset,
            dataclasses.replace(CFG, lr=0.02),
            ignore_index=info.ignore_index,
            seed=SEED + 1,
            progress=False,
            state_file=path,
            resume=True,
        )
    message = str(exc.value)
    assert f"Training state {path} belongs to another run (" in message
    assert "seed: saved 3, now 4" in message
    assert "'lr': 0.01" in message and "'lr': 0.02" in message
    assert message.endswith(f"Fix: delete {path} to train this run from the start.")


def test_an_unreadable_state_file_is_refused(synthetic, tmp_path):
    dataset, info = synthetic
    path = tmp_path / "state.pt"
    path.write_bytes(b"not a torch file")
    with pytest.raises(CheckpointError, match="could not be read .* Fix: delete"):
        train(
            tiny_net(info.num_classes),
            dataset,
            CFG,
            ignore_index=info.ignore_index,
            progress=False,
            state_file=path,
            resume=True,
        )


def test_without_resume_a_saved_state_is_discarded(synthetic, uninterrupted, tmp_path):
    dataset, info = synthetic
    path = tmp_path / "state.pt"
    path.write_bytes(b"stale")
    leftover = tmp_path / ".state.pt.0a1b2c3d.tmp"  # a save that a kill cut short
    leftover.write_bytes(b"half")
    cfg = dataclasses.replace(CFG, checkpoint_every=0)  # saves nothing, deletes the stale file
    model = tiny_net(info.num_classes)
    result = run_train(model, dataset, cfg, info, state_file=path)
    assert list(tmp_path.iterdir()) == []  # neither the stale state nor the temporary file
    assert result.resumed_from_step is None
    assert result.final_loss == uninterrupted[0].final_loss  # checkpointing changes nothing


def test_resume_without_a_saved_state_trains_from_the_start(synthetic, uninterrupted, tmp_path):
    dataset, info = synthetic
    path = tmp_path / "state.pt"
    result = train(
        tiny_net(info.num_classes),
        dataset,
        CFG,
        ignore_index=info.ignore_index,
        seed=SEED,
        progress=False,
        state_file=path,
        resume=True,
    )
    assert result.resumed_from_step is None
    assert result.final_loss == uninterrupted[0].final_loss
    assert torch.load(path, weights_only=True)["progress"]["step"] == 9  # saved after the last


# -- through the sweep ---------------------------------------------------------------------------

SWEEP_ARCH = "resume_test_net"
SUITE = """\
dataset: synthetic
dataset_options: {num_samples: 8}
resolution: [16, 16]
archs: [resume_test_net]
threads: 1
train: {steps: 6, batch_size: 2, lr: 0.01, checkpoint_every: 2}
eval: {split: val, batch_size: 8, num_samples: 0}
speed: {enabled: false}
complexity: {enabled: false}
"""


@pytest.fixture
def sweep_entry(restore_threads):
    """A tiny registered entry whose forward pass can be made to raise KeyboardInterrupt."""
    from architectures import _registry

    plan = {"interrupt_at": 0, "calls": 0}

    class Net(nn.Module):
        def __init__(self, num_classes: int) -> None:
            super().__init__()
            self.body = tiny_net(num_classes)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            plan["calls"] += 1
            if plan["calls"] == plan["interrupt_at"]:
                raise KeyboardInterrupt
            return self.body(x)

    with registry_restored():
        _registry.register(fixture_arch_info(SWEEP_ARCH, input_divisor=1))(
            lambda *, num_classes: Net(num_classes)
        )
        yield plan


def test_the_sweep_resumes_an_interrupted_architecture_and_then_drops_its_state(
    sweep_entry, tmp_path
):
    from bench.runner import Sweep, SweepInterrupted
    from bench.suites import load_suite

    suite = load_suite(str(write_suite(tmp_path, SUITE, "resume_suite.yaml")))
    quiet = {"device": "cpu", "progress": False, "log": lambda m: None, "tensorboard": False}
    Sweep(suite, results_dir=tmp_path / "whole", **quiet).run([SWEEP_ARCH])
    (whole,) = [r for r in read_record_files(tmp_path / "whole") if r["arch"] == SWEEP_ARCH]

    sweep_entry.update(calls=0, interrupt_at=5)  # Ctrl-C in step 5: the state of step 4 stays
    cut = Sweep(suite, results_dir=tmp_path / "cut", **quiet)
    with pytest.raises(SweepInterrupted):
        cut.run([SWEEP_ARCH])
    state = cut.train_state_path(SWEEP_ARCH)
    assert state == (
        tmp_path / "cut" / "train_state" / f"resume_suite__{SWEEP_ARCH}__synthetic__"
        f"{suite.setting}.pt"
    )
    assert torch.load(state, weights_only=True)["progress"]["step"] == 4

    sweep_entry.update(calls=0, interrupt_at=0)
    summary = Sweep(suite, results_dir=tmp_path / "cut", **quiet).run([SWEEP_ARCH], resume=True)
    assert summary.resumed == [(SWEEP_ARCH, 4)]
    (resumed,) = [r for r in read_record_files(tmp_path / "cut") if r["arch"] == SWEEP_ARCH]
    assert resumed["train"]["resumed_from_step"] == 4 and "resumed_from_step" not in whole["train"]
    assert resumed["train"]["final_loss"] == whole["train"]["final_loss"]
    assert resumed["train"]["loss_curve"] == whole["train"]["loss_curve"]
    assert run_metrics(resumed) == run_metrics(whole)  # confusion matrices included
    assert not state.exists()  # the ok record supersedes it
    assert resumed["setting"] == whole["setting"]  # checkpoint_every is not in the setting id
