"""Tests of the training recipes (issue 13, B.3): optimisers, schedules, lr multipliers,
gradient accumulation, median-frequency class weights and per-architecture suite recipes."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import Subset, TensorDataset

from bench.errors import ConfigError
from bench.models import PadCrop
from bench.stored_labels import LABEL_READ_SEED
from bench.suites import load_suite
from bench.train import (
    TrainConfig,
    class_frequencies,
    class_weights_for,
    enet_class_weights,
    label_counts,
    lr_factor,
    make_optimizer,
    median_frequency_weights,
    train,
)
from bench.train.scalars import LR_TAG
from tests.factories import write_suite

pytestmark = pytest.mark.usefixtures("one_thread")


# -- optimisers ---------------------------------------------------------------------------------


def test_adam_and_rmsprop_are_built_with_the_configured_values():
    model = nn.Linear(2, 1)
    adam = make_optimizer(model, TrainConfig(optimizer="adam", lr=0.01, weight_decay=0.5))
    assert type(adam) is torch.optim.Adam
    assert (adam.param_groups[0]["lr"], adam.param_groups[0]["weight_decay"]) == (0.01, 0.5)
    rms = make_optimizer(model, TrainConfig(optimizer="rmsprop", lr=0.02, momentum=0.5))
    assert type(rms) is torch.optim.RMSprop
    assert (rms.param_groups[0]["lr"], rms.param_groups[0]["momentum"]) == (0.02, 0.5)


def test_adam_weight_decay_is_l2_unlike_adamw():
    """With a zero loss gradient, Adam's L2 term is the whole gradient g = wd * p, and its first
    step moves p by lr * g / (|g| + eps) ~ lr; AdamW's decoupled decay moves it by lr * wd * p
    and its Adam part sees g = 0 (no move)."""
    moved = {}
    for kind in ("adam", "adamw"):
        p = nn.Parameter(torch.tensor([1.0]))
        holder = nn.Module()
        holder.p = p
        opt = make_optimizer(holder, TrainConfig(optimizer=kind, lr=0.1, weight_decay=0.01))
        (p * 0.0).sum().backward()
        opt.step()
        moved[kind] = 1.0 - p.item()
    # Adam: 0.1 * 0.01 / (0.01 + 1e-8) = 0.09999990; AdamW: 0.1 * 0.01 * 1.0 = 0.001.
    # p is float32: near 1 its spacing is 2**-23 ~ 1.2e-7, the tolerance.
    assert moved["adam"] == pytest.approx(0.1 * 0.01 / (0.01 + 1e-8), abs=1.2e-7)
    assert moved["adamw"] == pytest.approx(0.001, abs=1.2e-7)


# -- learning-rate schedules --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cfg", "step", "expected"),
    [
        # poly, power 1 over 10 steps: 1 - 5 / 10.
        ({"schedule": "poly", "poly_power": 1.0}, 5, 0.5),
        # step: gamma 0.1 every 3 steps: steps 0-2 x1, 3-5 x0.1, 6-8 x0.01, 9 x0.001.
        ({"schedule": "step", "step_size": 3}, 0, 1.0),
        ({"schedule": "step", "step_size": 3}, 2, 1.0),
        ({"schedule": "step", "step_size": 3}, 3, 0.1),
        ({"schedule": "step", "step_size": 3}, 8, 0.01),
        ({"schedule": "step", "step_size": 3}, 9, 0.001),
        ({"schedule": "step", "step_size": 4, "gamma": 0.5}, 9, 0.25),
        # step after 2 warm-up steps: 0.5, 1.0, then counted from the end of warm-up.
        ({"schedule": "step", "step_size": 3, "warmup_steps": 2}, 0, 0.5),
        ({"schedule": "step", "step_size": 3, "warmup_steps": 2}, 4, 1.0),
        ({"schedule": "step", "step_size": 3, "warmup_steps": 2}, 5, 0.1),
        # cosine over 10 steps: (1 + cos(pi * t / 10)) / 2.
        ({"schedule": "cosine"}, 0, 1.0),
        ({"schedule": "cosine"}, 2, (1 + math.cos(0.2 * math.pi)) / 2),  # 0.9045085
        ({"schedule": "cosine"}, 5, 0.5),
        ({"schedule": "cosine"}, 10, 0.0),
        ({"schedule": "cosine"}, 12, 0.0),  # past the end: held at 0
        # cosine after 2 warm-up steps runs over the 8 steps after: t = 4 of 8 is the middle.
        ({"schedule": "cosine", "warmup_steps": 2}, 1, 1.0),
        ({"schedule": "cosine", "warmup_steps": 2}, 6, 0.5),
    ],
)
def test_lr_factor_hand_values(cfg, step, expected):
    assert lr_factor(step, TrainConfig(steps=10, **cfg)) == pytest.approx(expected, abs=1e-12)


def test_the_loop_follows_the_schedule():
    class Scalars:
        def __init__(self) -> None:
            self.lr: list[float] = []

        def add_scalar(self, tag: str, value: float, step: int) -> None:
            if tag == LR_TAG:
                self.lr.append(value)

    data = TensorDataset(torch.randn(4, 3, 4, 4), torch.zeros(4, 4, 4, dtype=torch.long))
    cfg = TrainConfig(steps=4, batch_size=2, lr=0.1, schedule="step", step_size=2, gamma=0.5)
    scalars = Scalars()
    train(nn.Conv2d(3, 2, 1), data, cfg, ignore_index=255, progress=False, scalars=scalars)
    assert scalars.lr == pytest.approx([0.1, 0.1, 0.05, 0.05], abs=1e-12)


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"schedule": "exp"}, "schedule must be one of 'poly', 'step', 'cosine'; found 'exp'."),
        ({"schedule": "step"}, "schedule: step needs step_size (steps between decays, >= 1)"),
        ({"step_size": -1}, "step_size must be an int >= 0; found -1."),
        ({"gamma": 0.0}, "gamma must be a finite number > 0; found 0.0."),
        ({"gamma": 1.5}, "gamma must be a number in (0, 1] (a decay); found 1.5."),
        ({"accumulate": 0}, "accumulate must be an int >= 1; found 0."),
        ({"lr_mult": {"head": 0}}, "lr_mult.head must be a finite number > 0; found 0."),
        ({"lr_mult": [1]}, "lr_mult must be a mapping of parameter-name prefix to multiplier"),
        ({"class_weighting": "inverse"}, "class_weighting must be one of 'none', 'enet', "),
    ],
)
def test_new_train_fields_are_checked(kwargs, expected):
    with pytest.raises(ConfigError) as exc:
        TrainConfig(**kwargs)
    assert str(exc.value).startswith(expected)


def test_new_fields_at_their_defaults_are_not_hashed():
    plain = TrainConfig().hashed_values()
    defaults = TrainConfig(schedule="poly", step_size=0, gamma=0.1, lr_mult={}, accumulate=1)
    assert defaults.hashed_values() == plain
    assert TrainConfig(accumulate=2).hashed_values() == {**plain, "accumulate": 2}
    # 10 and 10.0 are one setting (YAML may spell it either way).
    assert TrainConfig(lr_mult={"head": 10}).hashed_values()["lr_mult"] == {"head": 10.0}


# -- per-parameter-group learning rates ---------------------------------------------------------


class TwoPart(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.backbone = nn.Conv2d(3, 4, 1)
        self.head = nn.Sequential(nn.Conv2d(4, 2, 1), nn.Conv2d(2, 2, 1))
        self.header = nn.Conv2d(2, 2, 1)  # "head" must not match it (dotted prefixes)


def group_lr_by_param(opt: torch.optim.Optimizer, model: nn.Module) -> dict[str, float]:
    lr_of = {id(p): g["lr"] for g in opt.param_groups for p in g["params"]}
    return {name: lr_of[id(p)] for name, p in model.named_parameters()}


def test_lr_mult_gives_each_prefix_its_rate_and_the_longest_prefix_wins():
    model = TwoPart()
    cfg = TrainConfig(optimizer="sgd", lr=0.01, lr_mult={"head": 10, "head.1": 0.5})
    opt = make_optimizer(model, cfg)
    assert group_lr_by_param(opt, model) == pytest.approx(
        {
            "backbone.weight": 0.01,
            "backbone.bias": 0.01,
            "head.0.weight": 0.1,
            "head.0.bias": 0.1,
            "head.1.weight": 0.005,
            "head.1.bias": 0.005,
            "header.weight": 0.01,
            "header.bias": 0.01,
        }
    )
    assert opt.param_groups[0]["lr"] == 0.01  # the base group comes first


def test_lr_mult_names_the_architectures_parameters_through_the_wrapper():
    model = PadCrop(TwoPart(), divisor=1)
    opt = make_optimizer(model, TrainConfig(lr=0.01, lr_mult={"head": 10}))
    lrs = group_lr_by_param(opt, model)
    assert lrs["model.head.0.weight"] == pytest.approx(0.1)
    assert lrs["model.backbone.weight"] == pytest.approx(0.01)


def test_unknown_lr_mult_prefix_lists_the_top_level_modules():
    with pytest.raises(ConfigError) as exc:
        make_optimizer(TwoPart(), TrainConfig(lr_mult={"decoder": 10}))
    assert str(exc.value) == (
        "train.lr_mult: prefix 'decoder' matches no trainable parameter of the model. Expected "
        "a parameter-name prefix such as a top-level module: backbone, head, header. Fix the "
        "prefix, or remove it."
    )


# -- gradient accumulation ----------------------------------------------------------------------


def test_two_accumulated_batches_of_2_equal_one_batch_of_4():
    """No BatchNorm, no dropout, no ignored pixels: the batch-4 mean loss is the mean of the two
    batch-2 means, and the data order (one permutation of the 8 images, drawn before batching)
    is the same. The weights may differ only by float32 summation order: after 2 SGD steps of
    lr 0.1 on O(1) weights that is ~1e-7, so atol 1e-6 would still catch a missing 1/N (a
    gradient twice too large moves the weights by ~1e-2)."""
    torch.manual_seed(0)
    data = TensorDataset(torch.randn(8, 3, 6, 6), torch.randint(0, 3, (8, 6, 6)))
    torch.manual_seed(1)
    start = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 3, 1))
    runs = {}
    for batch, accumulate in ((4, 1), (2, 2)):
        model = copy.deepcopy(start)
        cfg = TrainConfig(steps=2, batch_size=batch, accumulate=accumulate, optimizer="sgd", lr=0.1)
        result = train(model, data, cfg, ignore_index=255, seed=3, progress=False)
        runs[accumulate] = (result.final_loss, model.state_dict())
    (loss1, w1), (loss2, w2) = runs[1], runs[2]
    assert loss2 == pytest.approx(loss1, abs=1e-6)
    for key in w1:
        torch.testing.assert_close(w2[key], w1[key], atol=1e-6, rtol=0)
    assert not torch.equal(w1["0.weight"], start.state_dict()["0.weight"])  # it trained


# -- median frequency balancing -----------------------------------------------------------------


def two_masks() -> TensorDataset:
    # Image A: 3 pixels of class 0, 1 of class 1. Image B: 1 of class 0, 2 of class 2, 1 ignored.
    masks = torch.tensor([[[0, 0], [0, 1]], [[0, 2], [2, 255]]])
    return TensorDataset(torch.zeros(2, 3, 2, 2), masks)


def test_median_frequency_weights_hand_computed():
    # freq_c = pixels of c / pixels of the images where c is present:
    # class 0: 4 / (4 + 3) = 4/7; class 1: 1/4 (A only); class 2: 2/3 (B only); class 3: absent.
    # median(4/7, 1/4, 2/3) = 4/7: w = (1, 16/7, 6/7), and 1 for the absent class.
    weights = median_frequency_weights(two_masks(), num_classes=4, ignore_index=255)
    assert weights.dtype == torch.float32
    assert weights.tolist() == pytest.approx([1.0, 16 / 7, 6 / 7, 1.0], rel=1e-6)


def test_median_frequency_of_an_even_number_of_classes_is_the_middle_mean():
    # One image: 3 pixels of class 0, 1 of class 1: freq 3/4 and 1/4, median 1/2 -> (2/3, 2).
    data = TensorDataset(torch.zeros(1, 3, 2, 2), torch.tensor([[[0, 0], [0, 1]]]))
    weights = median_frequency_weights(data, num_classes=2, ignore_index=255)
    assert weights.tolist() == pytest.approx([2 / 3, 2.0], rel=1e-6)


def test_class_weights_for_each_weighting():
    data = two_masks()
    assert class_weights_for("none", data, 4, 255, 10) is None
    enet = enet_class_weights(class_frequencies(data, 4, 255))
    assert torch.equal(class_weights_for("enet", data, 4, 255, 10), enet)
    median = class_weights_for("median_frequency", data, 4, 255, 1)  # image A alone
    # Image A alone: freq 3/4 and 1/4, median 1/2: (2/3, 2); classes 2 and 3 absent: 1.
    assert median.tolist() == pytest.approx([2 / 3, 2.0, 1.0, 1.0], rel=1e-6)


# -- recipes in suites --------------------------------------------------------------------------

BASE = "dataset: synthetic\nresolution: [64, 64]\narchs: [fcn8s, enet]\ntrain: {lr: 0.01}\n"


def test_recipes_override_train_for_their_architecture_only(tmp_path):
    text = BASE + "recipes: {enet: {optimizer: adam, lr: 5.0e-4, weight_decay: 2, accumulate: 2}}\n"
    suite = load_suite(str(write_suite(tmp_path, text)))
    enet = suite.train_for("enet")
    assert (enet.optimizer, enet.lr, enet.weight_decay, enet.accumulate) == ("adam", 5e-4, 2.0, 2)
    assert isinstance(enet.weight_decay, float)  # YAML's 2 is read as the float field's 2.0
    assert enet.steps == suite.train.steps == 200  # the rest is the suite's train
    assert suite.train_for("fcn8s") is suite.train
    assert [t.optimizer for t in suite.train_configs()] == ["adamw", "adam"]


def test_recipes_enter_the_setting_id_only_when_set(tmp_path):
    plain = load_suite(str(write_suite(tmp_path, BASE, "a.yaml")))
    empty = load_suite(str(write_suite(tmp_path, BASE + "recipes: {}\n", "b.yaml")))
    adam = load_suite(str(write_suite(tmp_path, BASE + "recipes: {enet: {lr: 0.1}}\n", "c.yaml")))
    sgd = load_suite(str(write_suite(tmp_path, BASE + "recipes: {enet: {lr: 0.2}}\n", "d.yaml")))
    kept = BASE + "recipes: {enet: {lr: 0.1, checkpoint_every: 5}}\n"
    saved = load_suite(str(write_suite(tmp_path, kept, "e.yaml")))
    assert empty.setting == plain.setting
    assert len({plain.setting, adam.setting, sgd.setting}) == 3
    assert saved.setting == adam.setting  # checkpoint_every changes no result


@pytest.mark.parametrize(
    ("recipes", "expected"),
    [
        (
            "{unet: {lr: 0.1}}",
            "recipes names 'unet', which is not in the suite's archs (fcn8s, enet). Add it to "
            "archs, or remove its recipe.",
        ),
        (
            "{enet: {lrate: 0.1}}",
            "unknown key 'recipes.enet.lrate'. Valid keys (those of train:): steps, batch_size,",
        ),
        ("{enet: {lr: fast}}", "key 'recipes.enet.lr' expects float; found str 'fast'."),
        ("{enet: {lr: -1}}", "recipes.enet: lr must be a finite number > 0; found -1.0."),
        ("{enet: {schedule: step}}", "recipes.enet: schedule: step needs step_size"),
        ("{enet: adam}", "recipes must map architecture names to overrides of train:"),
    ],
)
def test_bad_recipes_fail_when_the_suite_loads(tmp_path, recipes, expected):
    path = write_suite(tmp_path, BASE + f"recipes: {recipes}\n")
    with pytest.raises(ConfigError) as exc:
        load_suite(str(path))
    assert str(path) in str(exc.value)
    assert expected in str(exc.value)


def test_recipe_of_an_unregistered_architecture_fails_before_any_work(tmp_path):
    text = "dataset: synthetic\narchs: all\nrecipes: {enett: {lr: 0.1}}\n"
    suite = load_suite(str(write_suite(tmp_path, text)))
    with pytest.raises(ConfigError) as exc:
        suite.arch_names(["enet", "fcn8s"])
    assert "recipes: " in str(exc.value) and "enett" in str(exc.value)


def test_the_camvid_recipes_suite_loads_with_each_papers_recipe():
    suite = load_suite("camvid_recipes")
    camvid = load_suite("camvid")
    assert (suite.dataset, suite.resolution, suite.archs) == (
        camvid.dataset,
        camvid.resolution,
        camvid.archs,
    )
    assert (suite.dataset_options, suite.eval, suite.speed) == (
        camvid.dataset_options,
        camvid.eval,
        camvid.speed,
    )
    enet, linknet, bisenet = (suite.train_for(a) for a in ("enet", "linknet", "bisenet_r18"))
    assert (enet.optimizer, enet.lr, enet.weight_decay, enet.batch_size) == ("adam", 5e-4, 2e-4, 10)
    assert enet.class_weighting == linknet.class_weighting == "enet"
    assert (linknet.optimizer, linknet.lr, linknet.batch_size) == ("rmsprop", 5e-4, 8)
    assert (bisenet.optimizer, bisenet.lr, bisenet.momentum) == ("sgd", 0.025, 0.9)
    assert (bisenet.weight_decay, bisenet.poly_power, bisenet.batch_size) == (1e-4, 0.9, 16)
    assert bisenet.class_weighting == "none"
    assert suite.setting == "180x240-steps120-bs8-fp32-seed0-e8a371"


def test_a_sweep_trains_each_architecture_with_its_recipe(tmp_path):
    """Two 1x1-conv entries, one with a recipe: each record's train section says what ran."""
    from architectures import _registry
    from bench.runner import Sweep
    from tests.factories import fixture_arch_info, read_record_files, registry_restored

    text = (
        "dataset: synthetic\ndataset_options: {num_samples: 4}\nresolution: [16, 16]\n"
        "archs: [plain_test_arch, recipe_test_arch]\nthreads: 1\n"
        "train: {steps: 2, batch_size: 2}\n"
        "recipes: {recipe_test_arch: {optimizer: rmsprop, lr: 0.01, accumulate: 2, "
        "class_weighting: median_frequency}}\n"
        "eval: {num_samples: 0}\nspeed: {enabled: false}\ncomplexity: {enabled: false}\n"
    )
    suite = load_suite(str(write_suite(tmp_path, text)))
    with registry_restored():
        for name in ("plain_test_arch", "recipe_test_arch"):
            info = fixture_arch_info(name, title="1x1 conv (test)", year=2026, input_divisor=1)
            _registry.register(info)(lambda *, num_classes: nn.Conv2d(3, num_classes, 1))
        out = tmp_path / "out"
        sweep = Sweep(suite, results_dir=out, device="cpu", progress=False, log=lambda m: None)
        sweep.run(["plain_test_arch", "recipe_test_arch"])
    records = {r["arch"]: r for r in read_record_files(tmp_path / "out")}
    plain, recipe = records["plain_test_arch"]["train"], records["recipe_test_arch"]["train"]
    assert records["recipe_test_arch"]["status"] == "ok"
    assert (plain["optimizer"], plain["lr"], plain["class_weighting"]) == ("adamw", 0.001, "none")
    assert "class_weights" not in plain or plain["class_weights"] is None
    assert (recipe["optimizer"], recipe["lr"]) == ("rmsprop", 0.01)
    assert recipe["class_weighting"] == "median_frequency"
    info = sweep.info
    expected = median_frequency_weights(sweep.train_set, info.num_classes, info.ignore_index)
    assert recipe["class_weights"] == pytest.approx(expected.tolist(), abs=1e-6)


class _OwnLoss(nn.Module):
    """A 1x1 conv that, given targets in training, returns its own (unweighted) loss."""

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, num_classes, 1)

    def forward(self, x, targets=None, ignore_index=255):
        out = self.conv(x)
        if targets is None:
            return out
        return {"ce": nn.functional.cross_entropy(out, targets.long(), ignore_index=ignore_index)}


def test_an_entry_with_its_own_losses_is_recorded_without_the_class_weights_it_never_used(
    tmp_path,
):
    """DecoupledNet and Mask R-CNN compute their own losses: a suite's class weights do not
    reach them, and their records must not say they trained with them."""
    from architectures import _registry
    from bench.records import load_records
    from bench.runner import Sweep
    from tests.factories import fixture_arch_info, registry_restored

    text = (
        "dataset: synthetic\ndataset_options: {num_samples: 4}\nresolution: [16, 16]\n"
        "archs: [own_loss_test_arch, plain_test_arch]\nthreads: 1\n"
        "train: {steps: 2, batch_size: 2, class_weighting: enet}\n"
        "eval: {num_samples: 0}\nspeed: {enabled: false}\ncomplexity: {enabled: false}\n"
    )
    suite = load_suite(str(write_suite(tmp_path, text)))
    with registry_restored():
        own = fixture_arch_info("own_loss_test_arch", input_divisor=1, train_needs_targets=True)
        _registry.register(own)(lambda *, num_classes: _OwnLoss(num_classes))
        plain = fixture_arch_info("plain_test_arch", input_divisor=1)
        _registry.register(plain)(lambda *, num_classes: nn.Conv2d(3, num_classes, 1))
        sweep = Sweep(suite, results_dir=tmp_path / "out", device="cpu", progress=False,
                      log=lambda m: None)  # fmt: skip
        sweep.run(["own_loss_test_arch", "plain_test_arch"])
    records = {r.arch: r for r in load_records(tmp_path / "out")}
    assert records["own_loss_test_arch"].status == "ok"
    trained = records["own_loss_test_arch"].train
    assert trained.class_weighting == "none" and trained.class_weights is None
    weighted = records["plain_test_arch"].train
    info = sweep.info
    expected = enet_class_weights(
        class_frequencies(sweep.train_set, info.num_classes, info.ignore_index)
    )
    assert weighted.class_weighting == "enet"
    assert list(weighted.class_weights) == pytest.approx(expected.tolist(), abs=1e-6)


# -- class frequencies are the training labels', the same in every process ---------------------


def _stored_counts(root, names: list[str], num_classes: int = 11) -> torch.Tensor:
    """Hand count of CamVid label files: values 0..10 are classes, 11 (void) is not counted."""
    from PIL import Image

    rows = []
    for name in names:
        raw = torch.from_numpy(np.array(Image.open(root / "trainannot" / name))).long()
        rows.append(torch.bincount(raw[raw < num_classes], minlength=num_classes).double())
    return torch.stack(rows)


@pytest.fixture
def augmented_camvid(tmp_path):
    from bench.data import build_dataset
    from bench.data.fixtures import write_fixture

    root = write_fixture("camvid", tmp_path / "camvid", size=(12, 16))
    # Strong augmentation: a 6x8 crop after a 0.5-2x rescale sees a different part each read.
    dataset, info = build_dataset(
        "camvid", split="train", root=root, size=(12, 16), crop=(6, 8), scale_range=(0.5, 2.0)
    )
    names = [
        line.split()[1].rsplit("/", 1)[1]
        for line in (root / "train.txt").read_text().split("\n")
        if line
    ]
    return dataset, info, root, names


def test_class_weights_count_the_stored_labels_not_an_augmented_draw(augmented_camvid):
    dataset, info, root, names = augmented_camvid
    assert not torch.equal(dataset[0][1], dataset[0][1])  # the samples are augmented
    hand = _stored_counts(root, names)
    torch.manual_seed(1)
    first = label_counts(dataset, 11, info.ignore_index)
    state = torch.get_rng_state()
    torch.manual_seed(2)
    second = class_frequencies(dataset, 11, info.ignore_index)
    assert torch.equal(first, hand)
    assert torch.equal(second, hand.sum(0) / hand.sum())
    torch.manual_seed(1)
    label_counts(dataset, 11, info.ignore_index)
    assert torch.equal(torch.get_rng_state(), state)  # the caller's random state is untouched


def test_class_weights_of_a_subset_count_its_own_images(augmented_camvid):
    dataset, info, root, names = augmented_camvid
    view = Subset(Subset(dataset, [2, 0, 1]), [0, 1])  # images 2 and 0, in that order
    assert torch.equal(
        label_counts(view, 11, info.ignore_index), _stored_counts(root, [names[2], names[0]])
    )
    assert torch.equal(
        label_counts(view, 11, info.ignore_index, max_samples=1), _stored_counts(root, [names[2]])
    )


class _RandomMasks(torch.utils.data.Dataset):
    """No stored labels: each read draws a new 2x2 mask of classes 0..2 from the global state."""

    def __len__(self) -> int:
        return 4

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.zeros(3, 2, 2), torch.randint(0, 3, (2, 2))


def test_class_weights_of_a_dataset_without_stored_labels_are_drawn_under_a_fixed_seed():
    torch.manual_seed(5)
    first = class_weights_for("median_frequency", _RandomMasks(), 3, 255, 4)
    state = torch.get_rng_state()
    torch.manual_seed(6)
    second = class_weights_for("median_frequency", _RandomMasks(), 3, 255, 4)
    assert torch.equal(first, second)
    torch.manual_seed(LABEL_READ_SEED)  # the same masks, read by hand
    masks = torch.stack([_RandomMasks()[i][1] for i in range(4)])
    assert torch.equal(
        label_counts(_RandomMasks(), 3, 255),
        torch.stack([torch.bincount(m.flatten(), minlength=3).double() for m in masks]),
    )
    torch.manual_seed(5)
    class_weights_for("median_frequency", _RandomMasks(), 3, 255, 4)
    assert torch.equal(torch.get_rng_state(), state)
