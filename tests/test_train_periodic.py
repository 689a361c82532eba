"""Tests for periodic validation (``train.eval_every``): bench.train.periodic in the loop, its
saved curve across a resume, and the sweep's val split, best checkpoint and record fields."""

from __future__ import annotations

import dataclasses
import json
import random

import numpy as np
import pytest
import torch
from torch import nn

from bench.checkpoint import read_checkpoint
from bench.data import build_dataset
from bench.data.info import DatasetInfo
from bench.errors import ConfigError
from bench.evaluate import evaluate
from bench.sweep_validation import validation_set
from bench.train import TrainConfig, Validation, train
from bench.train import periodic as periodic_module
from tests.factories import fixture_arch_info, registry_restored, run_cli, write_suite
from tests.test_train_state import Killed, kill_at_forward, scramble_global_rngs, tiny_net

pytestmark = pytest.mark.usefixtures("one_thread_per_module")

SEED = 3
# 8 images, 2 per step; validation after steps 2, 4 and 5 (the last), saved states at 2 and 4.
CFG = TrainConfig(
    steps=5, batch_size=2, lr=0.01, precise_bn_batches=2, eval_every=2, checkpoint_every=2
)


@pytest.fixture(scope="module")
def data():
    train_set, info = build_dataset("synthetic", split="train", size=(32, 32), num_samples=8)
    val_set, _ = build_dataset("synthetic", split="val", size=(32, 32), num_samples=4)
    return train_set, val_set, info


class Scorer:
    """Real mIoU on the val split; it also draws from every global generator, as a validation
    DataLoader with workers draws its base seed from torch's, so a validation that failed to
    put the random states back would change the training that follows."""

    def __init__(self, val_set, info) -> None:
        self.val_set, self.info = val_set, info
        self.modes: list[bool] = []  # model.training as each scoring started
        self.saved: list[tuple[int, float]] = []  # what save_best was given

    def score(self, model: nn.Module) -> float:
        self.modes.append(model.training)
        torch.rand(3), np.random.rand(), random.random()
        return evaluate(model, self.val_set, self.info, batch_size=4, progress=False).metrics.miou

    def save_best(self, _model: nn.Module, step: int, miou: float) -> None:
        self.saved.append((step, miou))

    def validation(self) -> Validation:
        return Validation(score=self.score, save_best=self.save_best)


def run(train_set, info, cfg, validation=None, **options):
    model = tiny_net(info.num_classes)
    result = train(
        model, train_set, cfg, ignore_index=info.ignore_index, seed=SEED, progress=False,
        validation=validation, **options,
    )  # fmt: skip
    return result, model


@pytest.fixture(scope="module")
def unvalidated(data):
    train_set, _, info = data
    result, model = run(train_set, info, CFG)
    return result, model.state_dict()


def test_validation_scores_every_n_steps_and_after_the_last(data, unvalidated):
    train_set, val_set, info = data
    scorer = Scorer(val_set, info)
    result, model = run(train_set, info, CFG, scorer.validation())
    assert result.val_steps == [2, 4, 5]
    assert len(result.val_miou) == 3 and all(0 <= m <= 1 for m in result.val_miou)
    best = max(range(3), key=lambda i: (result.val_miou[i], -i))  # the first of equal bests
    assert result.best_step == result.val_steps[best]
    assert result.best_val_miou == result.val_miou[best]
    # The model was training each time validation began, and is again afterwards.
    assert scorer.modes == [True, True, True] and model.training
    # save_best: the first score, then only strict improvements, the last being the best.
    assert scorer.saved[0][0] == 2
    assert all(b[1] > a[1] for a, b in zip(scorer.saved, scorer.saved[1:], strict=False))
    assert scorer.saved[-1] == (result.best_step, pytest.approx(result.best_val_miou, abs=1e-6))
    # In the record's dict only when the run validated.
    assert {"val_steps", "val_miou", "best_step", "best_val_miou"} <= result.to_dict().keys()
    assert "val_steps" not in unvalidated[0].to_dict()


def test_validation_changes_no_result(data, unvalidated):
    train_set, val_set, info = data
    expected, weights = unvalidated
    result, model = run(train_set, info, CFG, Scorer(val_set, info).validation())
    assert result.final_loss == expected.final_loss and result.loss_curve == expected.loss_curve
    assert all(torch.equal(model.state_dict()[k], v) for k, v in weights.items())


def test_without_putting_the_random_states_back_validation_would_change_the_run(
    data, unvalidated, monkeypatch
):
    # The check above can fail: the scorer's draws reach training when nothing restores them.
    train_set, val_set, info = data
    monkeypatch.setattr(periodic_module, "restore_rng_states", lambda states: None)
    result, model = run(train_set, info, CFG, Scorer(val_set, info).validation())
    _, weights = unvalidated
    assert any(not torch.equal(model.state_dict()[k], v) for k, v in weights.items())


def test_a_resumed_run_keeps_the_curve_of_the_steps_before_the_kill(data, tmp_path):
    train_set, val_set, info = data
    full, _ = run(train_set, info, CFG, Scorer(val_set, info).validation())
    path = tmp_path / "state.pt"
    doomed = tiny_net(info.num_classes)
    # Forward calls: steps 1-2, validation, steps 3-4, validation, then step 5 is call 7.
    kill_at_forward(doomed, 7)  # in step 5: the state of step 4, after two validations
    with pytest.raises(Killed):
        train(
            doomed, train_set, CFG, ignore_index=info.ignore_index, seed=SEED, progress=False,
            validation=Scorer(val_set, info).validation(), state_file=path,
        )  # fmt: skip
    scramble_global_rngs()
    scorer = Scorer(val_set, info)
    resumed, _ = run(train_set, info, CFG, scorer.validation(), state_file=path, resume=True)
    assert resumed.resumed_from_step == 4
    assert resumed.val_steps == full.val_steps and resumed.val_miou == full.val_miou
    assert (resumed.best_step, resumed.best_val_miou) == (full.best_step, full.best_val_miou)
    assert len(scorer.modes) == 1  # only step 5 is scored again


def test_eval_every_is_checked_and_not_part_of_the_setting():
    with pytest.raises(ConfigError, match=r"eval_every must be .*>= 0.*0 for none"):
        TrainConfig(eval_every=-1)
    assert TrainConfig(eval_every=50).hashed_values() == TrainConfig().hashed_values()


def test_a_dataset_without_a_val_split_cannot_validate():
    info = DatasetInfo(
        name="two_splits",
        title="Two splits",
        num_classes=2,
        class_names=("a", "b"),
        palette=((0, 0, 0), (255, 255, 255)),
        splits=("train", "test"),
    )
    configs = [TrainConfig(steps=4, eval_every=2)]
    with pytest.raises(ConfigError, match=r"'val' split, but dataset 'two_splits' has only "):
        validation_set(configs, "two_splits", info, None, {})
    # Nothing to validate: no split is built (and none is needed).
    assert validation_set([TrainConfig(steps=4)], "two_splits", info, None, {}) is None


SUITE = """\
dataset: synthetic
dataset_options: {num_samples: 8}
resolution: [16, 16]
archs: [val_test_conv]
threads: 1
train: {steps: 4, batch_size: 2, lr: 0.05, eval_every: 2}
eval: {split: test, batch_size: 8, num_samples: 0}
speed: {enabled: false}
complexity: {enabled: false}
"""


def test_a_sweep_records_the_curve_and_keeps_the_best_checkpoint(tmp_path, restore_threads):
    results = tmp_path / "results"
    with registry_restored():
        from architectures import _registry

        _registry.register(fixture_arch_info("val_test_conv", input_divisor=1))(
            lambda *, num_classes: nn.Conv2d(3, num_classes, 1)
        )
        suite = write_suite(tmp_path, SUITE, "val_suite.yaml")
        code, out, _ = run_cli(["run", "--suite", suite, "--results-dir", results, "-q"])
        assert code == 0, out
    (path,) = (results / "records").glob("val_suite__val_test_conv__*.json")
    record = json.loads(path.read_text(encoding="utf-8"))
    t = record["train"]
    assert t["val_steps"] == [2, 4] and len(t["val_miou"]) == 2
    assert t["best_val_miou"] == max(t["val_miou"])
    assert t["best_step"] == t["val_steps"][t["val_miou"].index(t["best_val_miou"])]
    (best,) = (results / "train_state").glob("val_suite__val_test_conv__*.best.pt")
    saved = read_checkpoint(best)
    assert saved["arch"] == "val_test_conv" and saved["meta"]["step"] == t["best_step"]
    assert saved["meta"]["run_id"] == record["run_id"]
    assert saved["meta"]["val_miou"] == pytest.approx(t["best_val_miou"], abs=1e-6)


def test_the_record_type_reads_the_validation_fields_back():
    from bench.records import TrainInfo

    info = TrainInfo.from_dict(
        {"steps": 4, "val_steps": [2, 4], "val_miou": [0.25, 0.5], "best_step": 4,
         "best_val_miou": 0.5}
    )  # fmt: skip
    assert info.val_steps == (2, 4) and info.val_miou == (0.25, 0.5)
    with pytest.raises(Exception, match="val_miou"):
        TrainInfo.from_dict({"steps": 4, "val_steps": [2], "val_miou": [50.0]})
    assert "val_steps" not in TrainInfo.from_dict({"steps": 4}).to_dict()
    assert dataclasses.fields(info)  # a dataclass, read and written through its type
