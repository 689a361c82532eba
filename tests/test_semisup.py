"""Tests for the semi-supervised track: the labelled/unlabelled protocol (bench.data.semisup),
the methods' loss terms against hand-computed values (bench.train.semisup), exact resume of a
method's extra networks, and the suite's expansion into one setting per method and share."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from bench.data import build_dataset
from bench.data.semisup import UnlabelledImages, classes_present, draw_labelled, split_file
from bench.errors import CheckpointError, ConfigError
from bench.suites import load_suite
from bench.sweep_semisup import prepare, semisup_archs
from bench.train import TrainConfig, train
from bench.train.semisup import AdvSemi, GanSS, SemiSupConfig
from bench.train.semisup import losses as L
from bench.train.semisup.nets import FCDiscriminator, Generator, RealClasses

LN2, LN3 = math.log(2.0), math.log(3.0)
pytestmark = pytest.mark.usefixtures("one_thread_per_module")


# -- the protocol ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def synthetic():
    return build_dataset("synthetic", split="train", size=(32, 32), num_samples=40, num_classes=4)


def test_the_labelled_draw_is_deterministic_and_seeded(synthetic):
    data, info = synthetic
    a = draw_labelled(data, num_classes=4, fraction=0.125, split_seed=0)
    assert a == draw_labelled(data, num_classes=4, fraction=0.125, split_seed=0)
    assert len(a) == 5 and a == sorted(a)  # round(0.125 * 40)
    assert a != draw_labelled(data, num_classes=4, fraction=0.125, split_seed=1)


def test_per_class_draw_reaches_the_count_of_every_class(synthetic):
    data, info = synthetic
    chosen = draw_labelled(data, num_classes=4, per_class=3, split_seed=0)
    counts = sum(classes_present(data[i][1], 4) for i in chosen)
    assert counts.min().item() >= 3
    assert len(chosen) < len(data)


def test_per_class_draw_reads_the_stored_labels_whatever_the_random_state(tmp_path):
    # A CamVid miniature whose training samples are random 4x4 crops: read through dataset[i],
    # the classes an image holds (and so the draw) would change with the global random state.
    from bench.data.fixtures import write_fixture

    root = write_fixture("camvid", tmp_path / "camvid", size=(12, 16))
    data, _ = build_dataset(
        "camvid", split="train", root=root, size=(12, 16), crop=(4, 4), scale_range=(0.5, 1.0)
    )
    draws = []
    for seed in (1, 2):
        torch.manual_seed(seed)
        draws.append(draw_labelled(data, num_classes=11, per_class=2, split_seed=0))
    assert draws[0] == draws[1]
    # By hand: the stored labels of the fixture's three images hold every class (12x16
    # pixels of 12 values), so the first two images of the seeded permutation reach 2 each.
    import numpy as np

    order = np.random.default_rng(0).permutation(len(data))
    assert draws[0] == sorted(int(i) for i in order[:2])


def test_the_split_file_is_written_once_and_read_back(synthetic, tmp_path):
    data, _ = synthetic
    ids = [str(i) for i in range(len(data))]
    path, idx, sha = split_file(tmp_path, "synthetic__f0.5__seed0", ["3", "1"], ids)
    assert path.read_text() == "3\n1\n" and idx == [1, 3]
    # A later draw does not replace the file: the subset stays fixed.
    again = split_file(tmp_path, "synthetic__f0.5__seed0", ["7"], ids)
    assert again == (path, [1, 3], sha)
    with pytest.raises(ConfigError, match="does not hold"):
        split_file(tmp_path, "synthetic__f0.5__seed0", [], ["a", "b"])


def test_labelled_and_unlabelled_are_disjoint_and_cover_the_split(synthetic, tmp_path):
    data, info = synthetic
    cfg = SemiSupConfig(method="advsemi", labelled_fraction=0.25)
    cut = prepare(cfg, data, info, "synthetic", tmp_path)
    labelled, unlabelled = set(cut.labelled.indices), set(cut.unlabelled.indices)
    assert labelled.isdisjoint(unlabelled)
    assert labelled | unlabelled == set(range(len(data)))
    assert len(labelled) == 10 and cut.split_file == "splits/synthetic__f0.25__seed0.txt"
    section = cut.section()
    assert (section.labelled_images, section.unlabelled_images) == (10, 30)
    assert section.image_labels is False and section.params["lambda_adv"] == 0.01


class _Marked(Dataset):
    """Masks filled with 7 (a value no image holds): a leaked mask would show it."""

    def __len__(self) -> int:
        return 6

    def __getitem__(self, i: int):
        mask = torch.full((4, 4), 2, dtype=torch.uint8)
        mask[0, 0] = 0
        return torch.zeros(3, 4, 4), mask


def test_no_mask_reaches_an_unlabelled_batch():
    plain = next(iter(DataLoader(UnlabelledImages(_Marked(), [0, 1, 2], 3), batch_size=3)))
    assert isinstance(plain, torch.Tensor) and plain.shape == (3, 3, 4, 4)
    weak = next(iter(DataLoader(UnlabelledImages(_Marked(), [0, 1], 3, True), batch_size=2)))
    images, labels = weak
    assert images.shape == (2, 3, 4, 4)
    # Only which classes the image holds: classes 0 and 2, not the mask.
    assert labels.tolist() == [[1.0, 0.0, 1.0], [1.0, 0.0, 1.0]]


# -- loss terms, by hand --------------------------------------------------------------------------


def test_bce_to_a_constant_target():
    logits = torch.tensor([[[[0.0, LN3]]]])  # sigmoid 0.5 and 0.75
    assert L.bce_to(logits, 1.0).item() == pytest.approx((LN2 - math.log(0.75)) / 2)
    assert L.bce_to(logits, 0.0).item() == pytest.approx((LN2 + LN3 - math.log(0.75)) / 2 + 0)
    valid = torch.tensor([[[True, False]]])
    assert L.bce_to(logits, 1.0, valid).item() == pytest.approx(LN2)


def test_one_hot_masks_zero_the_ignored_pixels():
    onehot, valid = L.one_hot_masks(torch.tensor([[[0, 255], [2, 1]]]), 3, 255)
    assert valid.tolist() == [[[True, False], [True, True]]]
    assert onehot[0, :, 0, 1].tolist() == [0.0, 0.0, 0.0]
    assert onehot[0, :, 1, 0].tolist() == [0.0, 0.0, 1.0]


def test_confident_targets_keep_the_pixels_the_discriminator_trusts():
    logits = torch.tensor([[[[1.0, 0.0]], [[0.0, 2.0]]]])  # argmax 0, then 1
    d = torch.tensor([[[[0.0, -3.0]]]])  # sigmoid 0.5 > 0.2; 0.047 < 0.2
    assert L.confident_targets(logits, d, 0.2, 255).tolist() == [[[0, 255]]]


def test_gan_ss_terms():
    # One pixel, K = 2 real classes plus fake.
    lab = torch.tensor([LN2, 0.0, 0.0]).view(1, 3, 1, 1)  # p(y=0 | real) = 2/3
    unl = torch.zeros(1, 3, 1, 1)  # p(fake) = 1/3
    fake = torch.tensor([0.0, 0.0, LN2]).view(1, 3, 1, 1)  # p(fake) = 2/4
    assert L.log_p_fake(unl).item() == pytest.approx(math.log(1 / 3))
    assert L.log_p_real(unl).item() == pytest.approx(math.log(2 / 3))
    loss, terms = L.gan_ss_segmenter_loss(
        lab, torch.zeros(1, 1, 1, dtype=torch.long), unl, fake, gamma=2.0, ignore_index=255
    )
    expected = 2 * -math.log(2 / 3) + -math.log(2 / 3) + -math.log(0.5)
    assert loss.item() == pytest.approx(expected)
    assert terms["ce"] == pytest.approx(-math.log(2 / 3))
    assert L.gan_ss_generator_loss(fake).item() == pytest.approx(LN2)


class _Fixed(nn.Module):
    """A "segmenter" whose logits are one learnable map: [ln 3, 0] at every pixel (K = 2)."""

    def __init__(self) -> None:
        super().__init__()
        self.logits = nn.Parameter(torch.tensor([LN3, 0.0]).view(1, 2, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.logits.expand(x.shape[0], 2, *x.shape[-2:])


def test_advsemi_loss_by_hand_and_the_discriminator_is_not_trained_by_it():
    cfg = SemiSupConfig(method="advsemi", labelled_fraction=0.5, semi_start=0)
    method = AdvSemi(cfg, 2)
    method.setup(nn.Identity(), "cpu")
    for p in method.d.parameters():
        nn.init.zeros_(p)  # D says 0 (sigmoid 0.5) everywhere: above T_semi = 0.2
    net, images = _Fixed(), torch.zeros(2, 3, 32, 32)
    masks = torch.zeros(2, 32, 32, dtype=torch.long)
    loss = method.loss(net, images, masks, images, step=0, ignore_index=255, aux_weights=None,
                       class_weights=None)  # fmt: skip
    ce = -math.log(0.75)  # labelled: class 0 at p 0.75; unlabelled: its own argmax, 0
    assert loss.item() == pytest.approx(ce + 0.01 * LN2 + 0.001 * LN2 + 0.1 * ce, rel=1e-6)
    loss.backward()
    assert all(p.grad is None for p in method.d.parameters())
    for m in method.d.modules():  # an all-zero D gets no gradient: "real" and "fake" cancel
        if isinstance(m, nn.Conv2d):
            m.reset_parameters()
    before = [p.detach().clone() for p in method.d.parameters()]
    method.after_step(net, 0, 1.0)  # D: (BCE(pred, 0) + BCE(one-hot, 1)) / 2, one Adam step
    assert any(not torch.equal(a, b) for a, b in zip(before, method.d.parameters(), strict=True))
    # Before semi_start the self-training term is off.
    late = AdvSemi(SemiSupConfig(method="advsemi", labelled_fraction=0.5, semi_start=5), 2)
    late.setup(nn.Identity(), "cpu")
    for p in late.d.parameters():
        nn.init.zeros_(p)
    loss = late.loss(net, images, masks, images, step=4, ignore_index=255, aux_weights=None,
                     class_weights=None)  # fmt: skip
    assert loss.item() == pytest.approx(ce + 0.011 * LN2, rel=1e-6)


def test_gan_ss_generator_step_trains_the_generator_alone():
    cfg = SemiSupConfig(method="gan_ss", labelled_fraction=0.5, noise_dim=8)
    method = GanSS(cfg, 2, (16, 16))
    method.setup(nn.Identity(), "cpu")
    torch.manual_seed(0)
    net = nn.Conv2d(3, 3, 1)  # K + 1 = 3 outputs
    frozen = nn.Parameter(torch.ones(1), requires_grad=False)
    net.register_parameter("frozen", frozen)
    images, masks = torch.randn(2, 3, 16, 16), torch.zeros(2, 16, 16, dtype=torch.long)
    method.loss(net, images, masks, images, step=0, ignore_index=255, aux_weights=None,
                class_weights=None)  # fmt: skip
    g_before = [p.detach().clone() for p in method.g.parameters()]
    method.after_step(net, 0, 1.0)
    assert net.weight.grad is None and net.weight.requires_grad and not frozen.requires_grad
    assert any(not torch.equal(a, b) for a, b in zip(g_before, method.g.parameters(), strict=True))


def test_the_extra_networks_have_the_right_shapes():
    d = FCDiscriminator(5)
    assert d(torch.rand(2, 5, 48, 64)).shape == (2, 1, 48, 64)
    g = Generator((36, 40), noise_dim=8, num_labels=3)
    out = g(torch.randn(2, 8), torch.ones(2, 3))
    assert out.shape == (2, 3, 36, 40) and out.abs().max() < 2.5
    wrapped = RealClasses(nn.Conv2d(3, 5, 1))
    assert wrapped(torch.zeros(1, 3, 4, 4)).shape[1] == 5
    assert wrapped.eval()(torch.zeros(1, 3, 4, 4)).shape[1] == 4


# -- exact resume with a method's own networks -------------------------------------------------


class Killed(Exception):
    pass


def _net() -> nn.Module:
    torch.manual_seed(5)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                         nn.Conv2d(8, 4, 1))  # fmt: skip


@pytest.mark.parametrize("method", ["advsemi", "gan_ss"])
def test_a_killed_semi_supervised_run_resumes_bit_identical(synthetic, tmp_path, method):
    data, info = synthetic
    semi = SemiSupConfig(method=method, labelled_fraction=0.25, semi_start=2, noise_dim=8)
    cut = prepare(semi, data, info, "synthetic", tmp_path)
    cfg = TrainConfig(steps=6, batch_size=2, lr=0.01, checkpoint_every=2)
    k = 5 if method == "gan_ss" else 4

    def run(model, **kw):
        sup = cut.supervision(4, (32, 32), 2)
        return train(model, cut.labelled, cfg, ignore_index=255, seed=1, progress=False,
                     semisup=sup, **kw), sup  # fmt: skip

    def net():
        torch.manual_seed(5)
        return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                             nn.Conv2d(8, k, 1))  # fmt: skip

    straight, sup = run(net())
    extra = sup.method.state_dict()
    doomed, calls = net(), [0]

    def hook(*_):
        calls[0] += 1
        if calls[0] == 12:  # in step 4 or 5: the state of step 2 or 4 is on disk
            raise Killed

    doomed.register_forward_pre_hook(hook)
    with pytest.raises(Killed):
        run(doomed, state_file=tmp_path / "s.pt")
    torch.manual_seed(999)
    fresh = net()
    resumed, sup2 = run(fresh, state_file=tmp_path / "s.pt", resume=True)
    assert resumed.resumed_from_step in (2, 4)
    assert resumed.final_loss == straight.final_loss and resumed.loss_curve == straight.loss_curve
    again = sup2.method.state_dict()
    key = "discriminator" if method == "advsemi" else "generator"
    for name, value in extra[key].items():
        assert torch.equal(value, again[key][name]), name


def test_a_supervised_state_is_refused_by_a_semi_supervised_run(synthetic, tmp_path):
    data, info = synthetic
    cfg = TrainConfig(steps=2, batch_size=2, lr=0.01, checkpoint_every=1)
    train(_net(), data, cfg, ignore_index=255, seed=1, progress=False, state_file=tmp_path / "s.pt")
    cut = prepare(SemiSupConfig(method="advsemi", labelled_fraction=0.5), data, info, "synthetic",
                  tmp_path)  # fmt: skip
    with pytest.raises(CheckpointError, match="semi-supervised"):
        train(_net(), cut.labelled, cfg, ignore_index=255, seed=1, progress=False,
              semisup=cut.supervision(4, (32, 32), 2), state_file=tmp_path / "s.pt", resume=True)  # fmt: skip


# -- suites ---------------------------------------------------------------------------------------


def test_a_suite_expands_into_one_setting_per_method_share_and_seed(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(
        "dataset: synthetic\narchs: [enet]\nseeds: [0, 1]\ntrain: {steps: 2}\n"
        "semisup: {method: [supervised, advsemi], labelled_fraction: [0.125, 0.25]}\n"
    )
    suite = load_suite(str(path))
    variants = suite.variants()
    assert len(variants) == 8
    assert [(v.semisup.method, v.semisup.labelled_fraction, v.seed) for v in variants[:3]] == [
        ("supervised", 0.125, 0), ("supervised", 0.125, 1), ("supervised", 0.25, 0),
    ]  # fmt: skip
    assert len({v.setting for v in variants}) == 8
    assert "-seed1-advsemi-f0.25-" in variants[-1].setting


def test_suites_without_semisup_keep_their_setting_ids():
    # The ids of committed results (results/records): adding the sections changed none.
    assert load_suite("quick").setting == "64x64-steps60-bs4-fp32-seed0-18fb5f"
    assert load_suite("smoke").setting == "64x64-steps40-bs8-fp32-seed0-a7eb2e"
    assert load_suite("smoke").variants() == [load_suite("smoke")]


def test_bad_semisup_settings_are_refused_with_the_fix(tmp_path):
    with pytest.raises(ConfigError, match="exactly one of labelled_fraction"):
        SemiSupConfig(method="advsemi")
    with pytest.raises(ConfigError, match="semisup.method"):
        SemiSupConfig(method="mean_teacher", labelled_fraction=0.5)
    with pytest.raises(ConfigError, match="labelled_fraction"):
        SemiSupConfig(labelled_fraction=1.5)


def test_gan_ss_with_periodic_validation_is_refused(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(
        "dataset: synthetic\narchs: [enet]\ntrain: {steps: 4, eval_every: 2}\n"
        "semisup: {method: [advsemi, gan_ss], labelled_fraction: 0.5}\n"
    )
    with pytest.raises(ConfigError, match="gan_ss does not support train.eval_every"):
        load_suite(str(path))


def test_each_method_runs_the_architectures_it_can_train():
    adv = SemiSupConfig(method="advsemi", labelled_fraction=0.5)
    assert semisup_archs(adv, ["enet", "maskrcnn_r50_fpn"]) == ["enet"]
    dec = SemiSupConfig(method="decouplednet", labelled_fraction=0.5)
    assert semisup_archs(dec, ["enet"]) == []
    assert semisup_archs(None, ["enet", "maskrcnn_r50_fpn"]) == ["enet", "maskrcnn_r50_fpn"]


# -- end to end -----------------------------------------------------------------------------------


def test_run_writes_one_record_per_method_with_its_semisup_section(tmp_path, capsys):
    from bench.cli import main
    from bench.records import load_records
    from tests.factories import write_suite

    suite = write_suite(
        tmp_path,
        "dataset: synthetic\ndataset_options: {num_samples: 16}\nresolution: [32, 32]\n"
        "archs: [enet, maskrcnn_r50_fpn]\nthreads: 1\n"
        "train: {steps: 2, batch_size: 2, precise_bn_batches: 0}\n"
        "eval: {split: val, batch_size: 8, num_samples: 0}\nspeed: {enabled: false}\n"
        "complexity: {enabled: false}\n"
        "semisup: {method: [supervised, advsemi], labelled_fraction: 0.25}\n",
    )
    results = tmp_path / "results"
    argv = ["run", "--suite", str(suite), "--archs", "enet", "--results-dir", str(results), "-q"]
    assert main(argv) == 0
    models = [r for r in load_records(results) if r.kind == "model"]
    assert sorted(r.semisup.method for r in models) == ["advsemi", "supervised"]
    split = {r.semisup.split_sha256 for r in models}
    assert len(split) == 1  # both methods saw the same labelled images
    listed = (results / models[0].semisup.split_file).read_text().split()
    assert len(listed) == 4 and models[0].semisup.unlabelled_images == 12
    assert "## Semi-supervised track" in (results / "LEADERBOARD.md").read_text()
