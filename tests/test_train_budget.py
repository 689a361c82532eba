"""Tests for epoch-based budgets (``train.epochs``) and auxiliary loss weights set in a suite
(``train.aux_weights``): issue 13, part B 3."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from bench.data import build_dataset
from bench.errors import ConfigError
from bench.suites import SuiteConfig
from bench.train import TrainConfig, merged_aux_weights, segmentation_loss, train

pytestmark = pytest.mark.usefixtures("one_thread")


def test_epochs_resolve_to_whole_batches_per_pass():
    # 10 images, batches of 4: 2 whole batches a pass (the last 2 images are dropped).
    assert TrainConfig(epochs=3, batch_size=4).for_samples(10).steps == 6
    # Two micro-batches per optimiser step: half the steps.
    assert TrainConfig(epochs=3, batch_size=4, accumulate=2).for_samples(10).steps == 3
    assert TrainConfig(epochs=1, batch_size=4, accumulate=4).for_samples(10).steps == 1  # >= 1
    plain = TrainConfig(steps=7)
    assert plain.for_samples(10) is plain


def test_an_epoch_budget_trains_exactly_as_its_step_count():
    dataset, info = build_dataset("synthetic", split="train", size=(16, 16), num_samples=8)
    results = []
    for cfg in (TrainConfig(epochs=2, batch_size=2, lr=0.02), TrainConfig(steps=8, batch_size=2, lr=0.02)):  # fmt: skip
        torch.manual_seed(0)
        model = nn.Conv2d(3, info.num_classes, 1)
        results.append(train(model, dataset, cfg, ignore_index=info.ignore_index, progress=False))
    by_epochs, by_steps = results
    assert by_epochs.steps == 8  # 2 passes x 4 batches: the record's count is the resolved one
    assert by_epochs.final_loss == by_steps.final_loss
    assert by_epochs.loss_curve == by_steps.loss_curve


def test_the_setting_id_names_the_epoch_budget():
    assert SuiteConfig(name="s", train=TrainConfig(epochs=30)).setting.startswith(
        "128x128-epochs30-bs8-"
    )
    assert "-steps200-" in SuiteConfig(name="s").setting
    with pytest.raises(ConfigError, match=r"epochs: 3 sets a training budget, but steps: 0"):
        TrainConfig(epochs=3, steps=0)
    with pytest.raises(ConfigError, match=r"epochs must be .*>= 0"):
        TrainConfig(epochs=-1)


def test_suite_aux_weights_replace_the_declared_ones_by_name():
    assert merged_aux_weights({"aux": 0.4}, {"aux": 0.1}, "pspnet50") == {"aux": 0.1}
    assert merged_aux_weights({"aux": 0.4, "aux2": 1.0}, {}, "x") == {"aux": 0.4, "aux2": 1.0}
    with pytest.raises(ConfigError, match=r"names auxx, but pspnet50 declares aux\. Fix:"):
        merged_aux_weights({"aux": 0.4}, {"auxx": 0.1}, "pspnet50")
    with pytest.raises(ConfigError, match=r"but enet declares no auxiliary outputs"):
        merged_aux_weights({}, {"aux": 0.1}, "enet")
    assert TrainConfig(aux_weights={"aux": 1}).aux_weights == {"aux": 1.0}
    with pytest.raises(ConfigError, match=r"aux_weights.aux must be"):
        TrainConfig(aux_weights={"aux": -0.5})


def test_an_aux_weight_scales_the_auxiliary_loss():
    torch.manual_seed(0)
    main, aux = torch.randn(2, 3, 4, 4), torch.randn(2, 3, 4, 4)
    target = torch.randint(0, 3, (2, 4, 4))
    out = {"out": main, "aux": aux}
    ce_main, ce_aux = F.cross_entropy(main, target), F.cross_entropy(aux, target)
    for weight in (0.0, 0.4, 1.0):
        loss = segmentation_loss(out, target, ignore_index=255, aux_weights={"aux": weight})
        torch.testing.assert_close(loss, ce_main + weight * ce_aux)
