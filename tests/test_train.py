"""Tests for bench.train: schedule, loss, determinism and the failures it reports."""

from __future__ import annotations

import copy
import math

import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from bench.data import build_dataset
from bench.errors import ConfigError
from bench.train import (
    TrainConfig,
    class_frequencies,
    make_optimizer,
    poly_lr_factor,
    recompute_bn_stats,
    require_one_batch,
    segmentation_loss,
    summed_losses,
    train,
)
from bench.train import loop as train_loop
from tests.factories import FakeClock

pytestmark = pytest.mark.usefixtures("one_thread")


# -- learning-rate schedule ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("step", "total", "power", "warmup", "expected"),
    [
        (0, 10, 0.9, 0, 1.0),
        (5, 10, 1.0, 0, 0.5),
        (5, 10, 2.0, 0, 0.25),
        (5, 10, 0.9, 0, 0.5**0.9),
        (9, 10, 1.0, 0, 0.1),
        (10, 10, 0.9, 0, 0.0),
        (12, 10, 1.0, 0, 0.0),  # past the end: clamped, never negative
        (0, 0, 0.9, 0, 1.0),  # zero steps: no division by zero
        # Linear warm-up over 4 steps: (step + 1) / 4, then poly over the remaining 6 steps,
        # so the rate is continuous where warm-up ends.
        (0, 10, 1.0, 4, 0.25),
        (1, 10, 1.0, 4, 0.5),
        (3, 10, 1.0, 4, 1.0),
        (4, 10, 1.0, 4, 1.0),
        (7, 10, 1.0, 4, 0.5),
    ],
)
def test_poly_lr_factor_hand_values(step, total, power, warmup, expected):
    assert poly_lr_factor(step, total, power, warmup) == pytest.approx(expected, abs=1e-12)


# -- the config checks every value on construction -------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"steps": -1}, "steps must be an int >= 0; found -1."),
        ({"steps": 2.5}, "steps must be an int >= 0; found 2.5."),
        ({"steps": True}, "steps must be an int >= 0; found bool True."),
        ({"batch_size": 0}, "batch_size must be an int >= 1; found 0."),
        (
            {"optimizer": "lamb"},
            "optimizer must be one of 'adamw', 'sgd', 'adam', 'rmsprop'; found 'lamb'.",
        ),
        ({"lr": -1.0}, "lr must be a finite number > 0; found -1.0. Set a learning rate"),
        ({"lr": 0.0}, "lr must be a finite number > 0; found 0.0."),
        ({"lr": math.nan}, "lr must be a finite number > 0; found nan."),
        ({"lr": math.inf}, "lr must be a finite number > 0; found inf."),
        ({"lr": "0.1"}, "lr must be a finite number > 0; found '0.1'."),
        ({"weight_decay": -1e-4}, "weight_decay must be a finite number >= 0; found -0.0001."),
        ({"weight_decay": math.inf}, "weight_decay must be a finite number >= 0; found inf."),
        ({"momentum": 1.0}, "momentum must be a number in [0, 1); found 1.0."),
        ({"momentum": 1.5}, "momentum must be a number in [0, 1); found 1.5."),
        ({"momentum": -0.5}, "momentum must be a number in [0, 1); found -0.5."),
        ({"poly_power": -0.9}, "poly_power must be a finite number >= 0; found -0.9."),
        ({"warmup_steps": -2}, "warmup_steps must be an int >= 0; found -2."),
        ({"grad_clip": -1.0}, "grad_clip must be a finite number >= 0; found -1.0."),
        ({"grad_clip": math.nan}, "grad_clip must be a finite number >= 0; found nan."),
        ({"class_weighting": "inverse"}, "class_weighting must be one of 'none', 'enet'"),
        ({"class_weight_samples": 0}, "class_weight_samples must be an int >= 1; found 0."),
        ({"precise_bn_batches": -1}, "precise_bn_batches must be an int >= 0; found -1."),
        ({"num_workers": -1}, "num_workers must be an int >= 0; found -1."),
    ],
)
def test_train_config_rejects(kwargs, expected):
    with pytest.raises(ConfigError) as exc:
        TrainConfig(**kwargs)
    assert str(exc.value).startswith(expected)


def test_train_config_accepts_its_bounds():
    cfg = TrainConfig(
        steps=0,
        batch_size=1,
        optimizer="sgd",
        lr=1e-12,
        weight_decay=0.0,
        momentum=0.0,
        poly_power=0.0,
        warmup_steps=0,
        grad_clip=0.0,
        class_weighting="enet",
        class_weight_samples=1,
        precise_bn_batches=0,
        num_workers=0,
    )
    assert (cfg.steps, cfg.batch_size, cfg.lr, cfg.momentum) == (0, 1, 1e-12, 0.0)
    assert TrainConfig(momentum=0.999, lr=1).momentum == 0.999  # an int is a number


def test_warmup_longer_than_the_run_is_valid_and_ramps_for_the_whole_run():
    # 4 steps of a 10-step warm-up: factors 0.1 .. 0.4, never the full rate (documented).
    cfg = TrainConfig(steps=4, warmup_steps=10)
    factors = [poly_lr_factor(s, cfg.steps, cfg.poly_power, cfg.warmup_steps) for s in range(4)]
    assert factors == pytest.approx([0.1, 0.2, 0.3, 0.4], abs=1e-12)
    assert TrainConfig(steps=0, warmup_steps=10).warmup_steps == 10


# -- loss --------------------------------------------------------------------------------------


def tiny_logits(a: float, b: float) -> torch.Tensor:
    """(1, 2, 1, 2): pixel 0 has logits (a, b), pixel 1 has logits (0, 0)."""
    return torch.tensor([[[[a, 0.0]], [[b, 0.0]]]])


# Pixel 0 is class 1, pixel 1 is ignored (255).
TARGET = torch.tensor([[[1, 255]]], dtype=torch.uint8)


def test_segmentation_loss_is_cross_entropy_over_non_ignored_pixels():
    # Logits (0, ln 3): softmax gives class 1 probability 3/4, so the loss is ln(4/3).
    loss = segmentation_loss(tiny_logits(0.0, math.log(3)), TARGET, ignore_index=255)
    assert loss.item() == pytest.approx(math.log(4 / 3), rel=1e-6)


def test_segmentation_loss_with_class_weights():
    # One non-ignored pixel: the weighted mean over one pixel is that pixel's loss.
    loss = segmentation_loss(
        tiny_logits(0.0, math.log(3)),
        TARGET,
        ignore_index=255,
        class_weights=torch.tensor([1.0, 5.0]),
    )
    assert loss.item() == pytest.approx(math.log(4 / 3), rel=1e-6)
    # Two pixels of different classes: (w0 * l0 + w1 * l1) / (w0 + w1).
    logits = torch.tensor([[[[0.0, 0.0]], [[math.log(3), 0.0]]]])  # p1 = 3/4, then 1/2
    target = torch.tensor([[[1, 0]]])
    loss = segmentation_loss(
        logits, target, ignore_index=255, class_weights=torch.tensor([1.0, 3.0])
    )
    expected = (3 * math.log(4 / 3) + 1 * math.log(2)) / 4
    assert loss.item() == pytest.approx(expected, rel=1e-6)


def test_segmentation_loss_adds_weighted_aux_loss():
    out = {
        "out": tiny_logits(0.0, math.log(3)),  # p(class 1) = 3/4 -> ln(4/3)
        "aux": tiny_logits(math.log(3), 0.0),  # p(class 1) = 1/4 -> ln 4
    }
    loss = segmentation_loss(out, TARGET, ignore_index=255, aux_weights={"aux": 0.4})
    assert loss.item() == pytest.approx(math.log(4 / 3) + 0.4 * math.log(4), rel=1e-6)


def test_segmentation_loss_dict_without_aux_is_the_main_loss():
    out = {"out": tiny_logits(0.0, math.log(3))}
    loss = segmentation_loss(out, TARGET, ignore_index=255, aux_weights={"aux": 0.4})
    assert loss.item() == pytest.approx(math.log(4 / 3), rel=1e-6)


def test_segmentation_loss_unknown_aux_key_is_named():
    out = {"out": tiny_logits(0.0, 0.0), "deep_sup": tiny_logits(0.0, 0.0)}
    with pytest.raises(ConfigError) as exc:
        segmentation_loss(out, TARGET, ignore_index=255, aux_weights={"aux": 0.4})
    msg = str(exc.value)
    assert "auxiliary outputs ['deep_sup'] without a loss weight" in msg
    assert "aux_weights=(('deep_sup', 0.4),)" in msg


# -- optimiser -------------------------------------------------------------------------------


def test_make_optimizer_uses_the_configured_kind_and_skips_frozen_params():
    model = nn.Sequential(nn.Conv2d(3, 4, 1), nn.Conv2d(4, 2, 1))
    model[0].weight.requires_grad_(False)
    sgd = make_optimizer(model, TrainConfig(optimizer="sgd", lr=0.1, momentum=0.5))
    assert isinstance(sgd, torch.optim.SGD)
    assert sgd.param_groups[0]["lr"] == 0.1 and sgd.param_groups[0]["momentum"] == 0.5
    assert sum(len(g["params"]) for g in sgd.param_groups) == 3  # 4 tensors, 1 frozen
    adamw = make_optimizer(model, TrainConfig(optimizer="adamw", weight_decay=0.01))
    assert isinstance(adamw, torch.optim.AdamW)
    assert adamw.param_groups[0]["weight_decay"] == 0.01


# -- the training loop --------------------------------------------------------------------------


def tiny_net(num_classes: int) -> nn.Module:
    torch.manual_seed(123)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.Dropout2d(0.5),  # draws from the global RNG: train() must seed it
        nn.Conv2d(8, num_classes, 1),
    )


CFG = TrainConfig(steps=3, batch_size=2, lr=0.01)


@pytest.fixture(scope="module")
def synthetic_train():
    return build_dataset("synthetic", split="train", size=(32, 32), num_samples=8)


def test_training_is_deterministic_for_a_seed(synthetic_train):
    dataset, info = synthetic_train
    start = tiny_net(info.num_classes)
    runs = []
    for _ in range(2):
        model = copy.deepcopy(start)
        torch.manual_seed(999)  # whatever the caller's RNG state, train() reseeds
        result = train(model, dataset, CFG, ignore_index=info.ignore_index, seed=5, progress=False)
        runs.append((result, model.state_dict()))
    (r1, w1), (r2, w2) = runs
    assert r1.final_loss == r2.final_loss
    assert r1.loss_curve == r2.loss_curve
    assert w1.keys() == w2.keys()
    for key in w1:
        assert torch.equal(w1[key], w2[key]), key
    # The weights moved, and another seed (other batches, dropout) ends elsewhere.
    assert not torch.equal(w1["0.weight"], start.state_dict()["0.weight"])
    other = copy.deepcopy(start)
    r3 = train(other, dataset, CFG, ignore_index=info.ignore_index, seed=6, progress=False)
    assert r3.final_loss != r1.final_loss
    assert not torch.equal(other.state_dict()["0.weight"], w1["0.weight"])


def test_train_result_fields(synthetic_train, monkeypatch):
    dataset, info = synthetic_train
    cfg = TrainConfig(steps=4, batch_size=2, optimizer="sgd", lr=0.05)
    clock = FakeClock()
    monkeypatch.setattr(train_loop, "time", clock)
    model = tiny_net(info.num_classes)
    # Each forward pass takes 0.25 s of fake time: 4 steps, no precise BN, so 1.0 s.
    model.register_forward_pre_hook(lambda *_: setattr(clock, "now", clock.now + 0.25))
    result = train(model, dataset, cfg, ignore_index=info.ignore_index, progress=False)
    d = result.to_dict()
    assert set(d) == {
        "steps",
        "seconds",
        "final_loss",
        "loss_curve",
        "batch_size",
        "optimizer",
        "lr",
        "precise_bn_batches",
        "amp",  # resumed_from_step only when the run continued from a saved state
    }
    assert d["amp"] == "off" and result.resumed_from_step is None
    assert (d["steps"], d["batch_size"], d["optimizer"], d["lr"]) == (4, 2, "sgd", 0.05)
    assert d["precise_bn_batches"] == 0  # not asked for
    # window = max(1, 4 // 20) = 1: one curve point per step, the last one is the final loss.
    assert len(d["loss_curve"]) == 4
    assert d["loss_curve"][-1] == round(d["final_loss"], 6)
    assert math.isfinite(d["final_loss"]) and d["final_loss"] > 0
    assert d["seconds"] == 1.0


class NaNFromStep(nn.Module):
    """A 1x1 conv whose output turns NaN from forward call ``bad_call`` (1-based) on."""

    def __init__(self, num_classes: int, bad_call: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, num_classes, 1)
        self.bad_call = bad_call
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        out = self.conv(x)
        return out * float("nan") if self.calls >= self.bad_call else out


def test_nan_loss_raises_naming_the_step(synthetic_train):
    dataset, info = synthetic_train
    with pytest.raises(FloatingPointError) as exc:
        train(
            NaNFromStep(info.num_classes, bad_call=2),
            dataset,
            CFG,
            ignore_index=info.ignore_index,
            progress=False,
        )
    msg = str(exc.value)
    assert "Training loss became nan at step 2 of 3" in msg
    assert "Lower train.lr or enable train.grad_clip" in msg


def test_dataset_smaller_than_a_batch_raises():
    dataset = TensorDataset(torch.zeros(3, 3, 8, 8), torch.zeros(3, 8, 8, dtype=torch.uint8))
    with pytest.raises(ConfigError) as exc:
        train(
            nn.Conv2d(3, 2, 1),
            dataset,
            TrainConfig(steps=1, batch_size=4),
            ignore_index=255,
            progress=False,
        )
    assert str(exc.value) == (
        "Training set has 3 samples, fewer than one batch of 4; lower train.batch_size."
    )


def test_require_one_batch_is_the_rule_train_applies():
    require_one_batch(4, TrainConfig(batch_size=4))  # exactly one batch: fine
    with pytest.raises(ConfigError, match="has 3 samples, fewer than one batch of 4"):
        require_one_batch(3, TrainConfig(batch_size=4))


def test_class_frequencies_of_an_all_ignored_set_names_the_fix():
    dataset = TensorDataset(torch.zeros(2, 3, 4, 4), torch.full((2, 4, 4), 255, dtype=torch.uint8))
    with pytest.raises(ConfigError) as exc:
        class_frequencies(dataset, num_classes=3, ignore_index=255)
    assert str(exc.value) == (
        "Cannot estimate class frequencies: every sampled pixel is ignored. Check the "
        "training labels, or set train.class_weighting: none."
    )


def test_class_frequencies_hand_count():
    # Masks: 5 pixels of class 0, 2 of class 2, 1 ignored; class 1 absent.
    masks = torch.tensor([[[0, 0, 0, 255]], [[0, 0, 2, 2]]], dtype=torch.uint8)
    dataset = TensorDataset(torch.zeros(2, 3, 1, 4), masks)
    freq = class_frequencies(dataset, num_classes=3, ignore_index=255)
    assert freq.tolist() == pytest.approx([5 / 7, 0.0, 2 / 7])


@pytest.mark.parametrize(
    ("losses", "expected"),
    [
        ({}, "must return a non-empty dict of scalar losses in train mode when given targets; got"),
        (torch.zeros(()), "non-empty dict of scalar losses in train mode when given targets; got"),
        ({"a": torch.zeros(2)}, "Training losses must be scalar tensors; not scalar: ['a']."),
    ],
)
def test_summed_losses_rejects_what_is_not_a_dict_of_scalars(losses, expected):
    with pytest.raises(ConfigError) as exc:
        summed_losses(losses)
    assert expected in str(exc.value)


def test_precise_bn_replaces_running_stats_by_the_true_batch_average(synthetic_train):
    # BatchNorm with momentum 0.01 keeps ~96% of its initial (0, 1) statistics after 4 steps;
    # precise BN sets running_mean to the average of the per-batch means, whatever the momentum.
    dataset, info = synthetic_train
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 3, padding=1),
        torch.nn.BatchNorm2d(4, momentum=0.01),
        torch.nn.Conv2d(4, info.num_classes, 1),
    )
    cfg = TrainConfig(steps=4, batch_size=2, optimizer="sgd", lr=0.01, precise_bn_batches=3)
    result = train(model, dataset, cfg, ignore_index=info.ignore_index, progress=False)
    assert result.precise_bn_batches == 3
    loader = torch.utils.data.DataLoader(dataset, batch_size=2, shuffle=False)
    recompute_bn_stats(model, loader, 3, "cpu")
    with torch.no_grad():
        batch_means = [model[0](x).mean(dim=(0, 2, 3)) for x, _ in list(loader)[:3]]
    expected = torch.stack(batch_means).mean(0)
    assert expected.abs().max() > 1e-2  # far from the 0 a momentum-0.01 average would keep
    torch.testing.assert_close(model[1].running_mean, expected, rtol=1e-5, atol=1e-6)
    assert model.training  # the model's mode is restored
