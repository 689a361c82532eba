"""Tests for ``architectures.decouplednet``: DecoupledNet (Hong, Noh, Han, arXiv 1506.04924).

Inference is checked step by step against the reference's MATLAB rule on hand-built scores and
figure/ground maps (stubbed classifier and segmentation network); the class-specific activation
against a hand-computed product of transposed weights and against ``torch.autograd.grad``; the
training stages by which parameters receive gradients; the image-level labels on a hand-made
mask; output shapes of both trunks; parameter counts derived by hand; and a short fit of the
small trunk. The shared contract is ``tests/test_architecture_contract.py``.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

import architectures
from architectures import decouplednet as dn_module
from architectures.decouplednet import (
    NOT_DETECTED,
    DecoupledNet,
    Encoded,
    assemble_scores,
    class_specific_activation,
    image_labels_from_masks,
    plan_passes,
)
from bench.complexity import count_params
from tests.factories import meta_build
from tests.hand_counts import VGG16_CONV_PARAMS, assert_docstring_states, bn_params, conv_params

pytestmark = pytest.mark.usefixtures("one_thread")

CLASSIFIER = ("features.", "fc6.", "fc7.", "cls_score.")


def _small(num_classes: int = 4, **options) -> DecoupledNet:
    torch.manual_seed(0)
    return DecoupledNet(num_classes, trunk="small", **options)


def _logit(p: float) -> float:
    return math.log(p / (1 - p))


def _figure_ground_logits(ground: list[float], figure: list[float]) -> torch.Tensor:
    """``(2, 1, P)`` logits whose softmax is ``(ground, figure)`` where they sum to 1, or
    proportional to them (softmax of ``log``)."""
    return torch.tensor([ground, figure]).log()[:, None, :]


# --------------------------------------------------------------------------- inference


def test_plan_passes_reference_rule() -> None:
    """Image 0 detects classes 1 and 3 (scores 0.9, 0.7 > 0.5); image 1 detects none."""
    scores = torch.tensor([[0.9, 0.2, 0.7], [0.3, 0.4, 0.1]])
    passes = plan_passes(scores, 0.5, num_classes=4, background=0)
    assert passes.image.tolist() == [0, 0, 0, 1]
    assert passes.channel.tolist() == [0, 1, 3, 0]
    expected_top = [
        [0.9, 0.0, 0.7],  # background pass: every detected class on, weighted by its score
        [0.9, 0.0, 0.0],  # class 1 (object index 0)
        [0.0, 0.0, 0.7],  # class 3 (object index 2)
        [0.0, 0.0, 0.0],  # image 1: nothing detected, the reference's all-zero label
    ]
    torch.testing.assert_close(passes.top, torch.tensor(expected_top))


def test_plan_passes_top1_fallback_and_no_background() -> None:
    scores = torch.tensor([[0.9, 0.2, 0.7], [0.3, 0.4, 0.1]])
    top1 = plan_passes(scores, 0.5, num_classes=4, background=0, fallback="top1")
    assert top1.image.tolist() == [0, 0, 0, 1, 1]
    assert top1.channel.tolist() == [0, 1, 3, 0, 2]  # image 1 takes its best class, 2
    torch.testing.assert_close(top1.top[3:], torch.tensor([[0.0, 0.4, 0.0], [0.0, 0.4, 0.0]]))
    # Without a background class: no background pass, object index c is class c, and the top
    # class is taken when none passes (a pixel needs some class).
    none = plan_passes(scores, 0.5, num_classes=3, background=None)
    assert none.image.tolist() == [0, 0, 1]
    assert none.channel.tolist() == [0, 2, 1]
    # A background class other than 0: object indices skip it.
    bg2 = plan_passes(scores[:1], 0.5, num_classes=4, background=2)
    assert bg2.channel.tolist() == [2, 0, 3]


def test_plan_passes_threshold_is_strict() -> None:
    passes = plan_passes(torch.tensor([[0.5, 0.6]]), 0.5, num_classes=3, background=0)
    assert passes.channel.tolist() == [0, 2]


def _hand_example() -> tuple[torch.Tensor, torch.Tensor]:
    """Per-pass logits for the passes of :func:`test_plan_passes_reference_rule` on a 1x3
    image, and the expected ``(2, 4, 1, 3)`` normalised maps (before ``log``)."""
    rows = [
        _figure_ground_logits([0.6, 0.1, 0.5], [0.4, 0.9, 0.5]),  # image 0, background pass
        _figure_ground_logits([0.7, 0.8, 0.5], [0.3, 0.2, 0.5]),  # image 0, class 1
        _figure_ground_logits([0.7, 0.3, 0.5], [0.3, 0.7, 0.5]),  # image 0, class 3
        _figure_ground_logits([0.2, 0.9, 0.5], [0.8, 0.1, 0.5]),  # image 1, background pass
    ]
    # Image 0, pixel 0: background 0.6, class 1 0.3, class 3 0.3 -> sum 1.2 -> 0.5, 0.25, 0.25.
    # Pixel 1: 0.1, 0.2, 0.7 (sum 1). Pixel 2: 0.5, 0.5, 0.5 -> 1/3 each (argmax: the first).
    # Image 1: only the background map, normalised to 1 everywhere.
    third = 1 / 3
    maps = torch.zeros(2, 4, 1, 3)
    maps[0, 0, 0] = torch.tensor([0.5, 0.1, third])
    maps[0, 1, 0] = torch.tensor([0.25, 0.2, third])
    maps[0, 3, 0] = torch.tensor([0.25, 0.7, third])
    maps[1, 0, 0] = 1.0
    return torch.stack(rows), maps


def test_assemble_scores_by_hand() -> None:
    seg, maps = _hand_example()
    passes = plan_passes(torch.tensor([[0.9, 0.2, 0.7], [0.3, 0.4, 0.1]]), 0.5, 4, 0)
    out = assemble_scores(seg, passes, batch=2, num_classes=4, background=0)
    assert out.shape == (2, 4, 1, 3)
    detected = torch.tensor([[1, 1, 0, 1], [1, 0, 0, 0]], dtype=torch.bool)[:, :, None, None]
    torch.testing.assert_close(out.exp() * detected, maps)
    assert (out[~detected.expand_as(out)] == NOT_DETECTED).all()
    assert out.argmax(dim=1).tolist() == [[[0, 3, 0]], [[0, 0, 0]]]
    torch.testing.assert_close(out.softmax(dim=1), maps, atol=1e-6, rtol=0)


def test_assemble_scores_zero_maps_get_one_each_as_the_reference() -> None:
    """``score_map(:,:,cidx) += (sum(score_map, 3) <= 0)``: a pixel where every candidate map is
    0 gets 1 on each candidate, so 1/2 each after normalising; undetected classes stay lowest."""
    inf = float("inf")
    seg = torch.tensor(
        [[[[-inf, 0.0]], [[0.0, 0.0]]], [[[0.0, 0.0]], [[-inf, math.log(3)]]]]
    )  # (2 passes, 2, 1, 2): pixel 0 has ground 0 (background pass) and figure 0 (class 1)
    passes = plan_passes(torch.tensor([[0.9, 0.1]]), 0.5, num_classes=3, background=0)
    out = assemble_scores(seg, passes, batch=1, num_classes=3, background=0)
    torch.testing.assert_close(out[0, :2, 0, 0].exp(), torch.tensor([0.5, 0.5]))
    # Pixel 1: ground 1/2 and figure 3/4 -> 0.4 and 0.6.
    torch.testing.assert_close(out[0, :2, 0, 1].exp(), torch.tensor([0.4, 0.6]))
    assert (out[0, 2] == NOT_DETECTED).all()


def test_inference_follows_the_paper_with_stubbed_networks(monkeypatch) -> None:
    """End to end through ``forward`` with the classifier's scores and the segmentation
    network's outputs replaced by the hand-built ones: the passes (one batched call with one row
    per pass), their images and class-specific activations, and the final label map."""
    model = _small(4).eval()
    scores = torch.tensor([[0.9, 0.2, 0.7], [0.3, 0.4, 0.1]])
    cls_map = scores.logit()[:, :, None, None]  # (2, 3, 1, 1): the image-level logits
    fc = model.fc6.out_channels
    gen = torch.Generator().manual_seed(0)
    enc = Encoded(
        pool5=torch.randn(2, model.fc6.in_channels, 1, 1, generator=gen),
        switches=(),
        sizes=(),
        pre6=torch.randn(2, fc, 1, 1, generator=gen),
        pre7=torch.randn(2, fc, 1, 1, generator=gen),
        cls_map=cls_map,
    )
    seg, maps = _hand_example()
    calls = []

    def fake_segment(pool5, activation, switches, sizes):
        calls.append((pool5, activation))
        return seg

    monkeypatch.setattr(model, "encode", lambda x: enc)
    monkeypatch.setattr(model, "segment", fake_segment)
    with torch.no_grad():
        out = model(torch.zeros(2, 3, 1, 3))
    assert len(calls) == 1  # the passes of the batch run as one batch
    pool5, activation = calls[0]
    assert pool5.shape[0] == 4  # background + classes 1, 3 for image 0; background for image 1
    torch.testing.assert_close(pool5, enc.pool5[[0, 0, 0, 1]])
    # The background pass's activation is the sum of the detected classes' (linear in the top
    # signal), and image 1's (no class on) is zero.
    torch.testing.assert_close(activation[0], activation[1] + activation[2])
    assert activation[1].abs().sum() > 0 and activation[2].abs().sum() > 0
    assert (activation[3] == 0).all()
    expected = class_specific_activation(
        model.fc6.weight,
        model.fc7.weight,
        model.cls_score.weight,
        enc.pre6[[0]] > 0,
        enc.pre7[[0]] > 0,
        torch.tensor([0.9, 0.0, 0.0])[None, :, None, None],
    )
    torch.testing.assert_close(activation[1:2], expected)
    assert out.argmax(dim=1).tolist() == [[[0, 3, 0]], [[0, 0, 0]]]
    torch.testing.assert_close(out.softmax(dim=1), maps, atol=1e-6, rtol=0)


# --------------------------------------------------------------------------- bridging


def test_class_specific_activation_by_hand() -> None:
    """1x1 layers on a single position: ``W6^T (m6 * W7^T (m7 * Wc^T t))``, worked out by hand.

    Wc^T t = [[1, -1], [0, 2]] @ [0.5, 0] = [0.5, 0]; * m7 [1, 0] -> [0.5, 0];
    W7^T . = [[1, 2], [-1, 1]] @ [0.5, 0] = [0.5, -0.5]; * m6;
    W6^T . = [[1, 3], [2, -1]] @ . : m6 = [1, 1] -> [-1.0, 1.5]; m6 = [0, 1] -> [-1.5, 0.5].
    """
    w6 = torch.tensor([[1.0, 2.0], [3.0, -1.0]])[:, :, None, None]  # (F, C5, 1, 1)
    w7 = torch.tensor([[1.0, -1.0], [2.0, 1.0]])[:, :, None, None]  # (F, F, 1, 1)
    wc = torch.tensor([[1.0, 0.0], [-1.0, 2.0]])[:, :, None, None]  # (C, F, 1, 1)
    top = torch.tensor([0.5, 0.0])[None, :, None, None]
    m7 = torch.tensor([True, False])[None, :, None, None]
    for m6, expected in (([True, True], [-1.0, 1.5]), ([False, True], [-1.5, 0.5])):
        m6_t = torch.tensor(m6)[None, :, None, None]
        got = class_specific_activation(w6, w7, wc, m6_t, m7, top)
        torch.testing.assert_close(got.flatten(), torch.tensor(expected))


def test_class_specific_activation_is_the_gradient_at_pool5() -> None:
    """On the small trunk's real layers (3x3 fc6, 2x3 maps): the explicit product equals
    ``torch.autograd.grad`` of ``w * score_c[argmax]`` with respect to pool5, per pass."""
    model = _small(5)
    gen = torch.Generator().manual_seed(1)
    pool5 = torch.randn(2, model.fc6.in_channels, 2, 3, generator=gen).requires_grad_()
    pre6 = model.fc6(pool5)
    pre7 = model.fc7(F.relu(pre6))
    cls_map = model.cls_score(F.relu(pre7))  # (2, 4, 2, 3)
    enc = Encoded(pool5, (), (), pre6, pre7, cls_map)
    image = torch.tensor([0, 1, 1])
    top = torch.tensor([[0.0, 0.8, 0.0, 0.0], [0.3, 0.0, 0.0, 0.6], [0.0, 0.0, 0.9, 0.0]])
    got = model.class_activation(enc, image, top)
    for q, (i, weights) in enumerate(zip(image.tolist(), top, strict=True)):
        peak = cls_map[i].flatten(1).amax(dim=1)  # (C,): the max-pooled scores
        (grad,) = torch.autograd.grad((weights * peak).sum(), pool5, retain_graph=True)
        torch.testing.assert_close(got[q], grad[i], atol=1e-5, rtol=1e-4)


def test_fold_is_the_transposed_convolution() -> None:
    gen = torch.Generator().manual_seed(2)
    w6 = torch.randn(6, 4, 3, 3, generator=gen)
    g6 = torch.randn(2, 6, 3, 5, generator=gen)
    eye = torch.eye(6)[:, :, None, None]
    ones = torch.ones(2, 6, 3, 5, dtype=torch.bool)
    top = g6  # Wc = W7 = identity and all masks on: only fc6's transpose remains
    got = class_specific_activation(w6, eye, eye, ones, ones, top)
    torch.testing.assert_close(got, F.conv_transpose2d(g6, w6, padding=1), atol=1e-5, rtol=1e-5)


# --------------------------------------------------------------------------- training


def _batch(n: int = 2, size: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(n, 3, size, size, generator=gen)
    masks = torch.zeros(n, size, size, dtype=torch.long)
    masks[:, 8:30, 8:30] = 1
    masks[0, 35:60, 35:60] = 3
    masks[:, :2] = 255
    return x, masks


def _grads(model: DecoupledNet) -> tuple[set[str], set[str]]:
    with_grad = {n for n, p in model.named_parameters() if p.grad is not None}
    return with_grad, {n for n, _ in model.named_parameters()} - with_grad


@pytest.mark.parametrize("stage", ["classify", "segment", "joint"])
def test_which_parameters_each_stage_trains(stage: str) -> None:
    model = _small(4, stage=stage).train()
    x, masks = _batch()
    losses = model(x, targets=masks, ignore_index=255)
    expected_keys = {"classify": {"loss_cls"}, "segment": {"loss_seg"}}
    assert set(losses) == expected_keys.get(stage, {"loss_cls", "loss_seg"})
    assert all(v.shape == () and torch.isfinite(v) for v in losses.values())
    sum(losses.values()).backward()
    with_grad, without = _grads(model)
    classifier = {n for n in with_grad | without if n.startswith(CLASSIFIER)}
    segmentation = (with_grad | without) - classifier
    if stage == "classify":
        assert with_grad == classifier
    elif stage == "segment":
        assert with_grad == segmentation  # the classifier, trunk included, is fixed
    else:
        assert not without


def test_image_labels_only_train_the_classifier() -> None:
    model = _small(4, stage="classify").train()
    x, _ = _batch()
    labels = torch.tensor([[1.0, 0.0, 1.0], [0.0, 0.0, 0.0]])
    losses = model(x, image_labels=labels)
    with torch.no_grad():
        logits = model.encode(x).cls_map.mean(dim=(2, 3))
    # BCE with logits by hand: mean of softplus(-z) where y = 1 and softplus(z) where y = 0.
    hand = torch.where(labels > 0, F.softplus(-logits), F.softplus(logits)).mean()
    assert set(losses) == {"loss_cls"}
    torch.testing.assert_close(losses["loss_cls"].detach(), hand)
    model.set_stage("segment")
    with pytest.raises(ValueError, match="image_labels"):
        model(x, image_labels=labels)
    model.set_stage("classify")
    with pytest.raises(ValueError, match=r"\(N, C\)"):
        model(x, image_labels=labels[:, :2])


def test_segment_pairs_one_present_class_per_image_from_the_global_rng() -> None:
    model = _small(4).train()
    x, masks = _batch()
    masks[1, 8:30, 8:30] = 0  # image 1: background only -> no pair
    enc = model.encode(x)
    labels = image_labels_from_masks(masks, 4, 0, 255)
    drawn = set()
    for seed in range(8):
        torch.manual_seed(seed)
        image, top, target = model._pairs(enc, masks, labels, 255)
        torch.manual_seed(seed)
        assert torch.equal(model._pairs(enc, masks, labels, 255)[2], target)  # seeded
        assert image.tolist() == [0]
        (c_obj,) = torch.nonzero(top[0]).flatten().tolist()
        cls = model.object_classes[c_obj]
        drawn.add(cls)
        peak = torch.sigmoid(enc.cls_map[0, c_obj].max())
        torch.testing.assert_close(top[0, c_obj], peak)
        expected = (masks[0] == cls).long()
        expected[masks[0] == 255] = -100
        assert torch.equal(target[0], expected)
    assert drawn == {1, 3}


def test_losses_need_targets_outside_classify() -> None:
    model = _small(4).train()
    with pytest.raises(ValueError, match="set_stage"):
        model(torch.zeros(1, 3, 32, 32), image_labels=torch.zeros(1, 3))
    with pytest.raises(ValueError, match="stage must be one of"):
        model.set_stage("train")


def test_joint_training_fits_a_small_batch() -> None:
    """The small trunk, joint stage, on the overfit check's synthetic batch (64x64, 4 classes):
    the losses stay finite and both fall within 25 AdamW steps (measured at 3e-3, means of the
    first and last five steps: classification 0.75 -> 0.41, segmentation 0.65 -> 0.29; each step
    draws its own (image, class) pairs, so single steps are noisy)."""
    from tests.overfit import fixed_batch

    images, masks, ignore = fixed_batch(4)
    model = _small(4).train()
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.0)
    history = []
    for _ in range(25):
        losses = model(images, targets=masks, ignore_index=ignore)
        assert all(torch.isfinite(v) for v in losses.values())
        opt.zero_grad(set_to_none=True)
        sum(losses.values()).backward()
        opt.step()
        history.append({k: float(v.detach()) for k, v in losses.items()})
    for key in ("loss_cls", "loss_seg"):
        first = sum(h[key] for h in history[:5]) / 5
        last = sum(h[key] for h in history[-5:]) / 5
        assert last < 0.7 * first, (key, history)


# --------------------------------------------------------------------------- labels


def test_image_labels_from_masks_by_hand() -> None:
    masks = torch.tensor(
        [
            [[0, 1, 255], [3, 3, 0]],  # classes 0, 1, 3 and an ignored pixel
            [[255, 255, 255], [0, 0, 7]],  # background, ignored, and 7 (outside [0, 4))
        ]
    )
    with_bg = image_labels_from_masks(masks, 4, background=0, ignore_index=255)
    assert with_bg.tolist() == [[1.0, 0.0, 1.0], [0.0, 0.0, 0.0]]  # object classes 1, 2, 3
    no_bg = image_labels_from_masks(masks, 4, background=None, ignore_index=255)
    assert no_bg.tolist() == [[1.0, 1.0, 0.0, 1.0], [1.0, 0.0, 0.0, 0.0]]
    ignore_3 = image_labels_from_masks(masks, 4, background=0, ignore_index=3)
    assert ignore_3.tolist() == [[1.0, 0.0, 0.0], [0.0, 0.0, 0.0]]
    bg_2 = image_labels_from_masks(masks, 4, background=3, ignore_index=255)
    assert bg_2.tolist() == [[1.0, 1.0, 0.0], [1.0, 0.0, 0.0]]  # object classes 0, 1, 2


# --------------------------------------------------------------------------- shapes, options


@pytest.mark.parametrize(("background", "k"), [(0, 4), (None, 3)])
def test_small_trunk_output_shapes(background: int | None, k: int) -> None:
    model = _small(k, background=background).eval()
    with torch.no_grad():
        out = model(torch.randn(3, 3, 64, 96))
    assert out.shape == (3, k, 64, 96)
    assert torch.isfinite(out).all()
    labels = out.argmax(dim=1)
    if background is None:  # every pixel gets a detected class (top-1 when none passes)
        assert (out.gather(1, labels[:, None]) > NOT_DETECTED).all()


@pytest.mark.slow  # 7-15 s here; the contract test checks this build's shapes in the fast set
def test_vgg16_trunk_output_shape_and_train_mode_without_targets() -> None:
    torch.manual_seed(0)
    model = architectures.build("decouplednet", num_classes=3).eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        out = model(x)
        assert out.shape == (2, 3, 64, 64)
        model.train()  # e.g. precise BN: the inference procedure with batch statistics
        assert model(x).shape == (2, 3, 64, 64)


def test_input_must_be_a_multiple_of_32() -> None:
    with pytest.raises(ValueError, match="divisible by 32"):
        _small(4).eval()(torch.zeros(1, 3, 48, 64))


def test_builder_rejects_bad_options() -> None:
    with pytest.raises(ValueError, match="background"):
        meta_build("decouplednet", 4, background=4)
    with pytest.raises(ValueError, match="trunk"):
        meta_build("decouplednet", 4, trunk="vgg19")
    with pytest.raises(ValueError, match="threshold"):
        meta_build("decouplednet", 4, threshold=1.0)
    with pytest.raises(ValueError, match="fallback"):
        meta_build("decouplednet", 4, fallback="top2")
    with pytest.raises(ValueError, match="trunk='vgg16'"):
        meta_build("decouplednet", 4, trunk="small", pretrained_backbone=True)


def test_registered_metadata() -> None:
    info = architectures.get_info("decouplednet")
    assert info.train_needs_targets and info.input_divisor == 32
    assert info.paper_params is None  # the paper states no parameter count


# --------------------------------------------------------------------------- parameter counts

# Decoder of the reference prototxt, deepest stage first: (in, out) of each 3x3 deconvolution.
VGG16_DECODER = [
    [(512, 512), (512, 512), (512, 512)],
    [(512, 512), (512, 512), (512, 256)],
    [(256, 256), (256, 256), (256, 128)],
    [(128, 128), (128, 64)],
    [(64, 64), (64, 64)],
]


def vgg16_hand_params(k: int) -> dict[str, int]:
    dec = [c for stage in VGG16_DECODER for c in stage]
    parts = {
        "trunk": VGG16_CONV_PARAMS,
        "fc6": conv_params(512, 4096, 7, bias=True),
        "fc7": conv_params(4096, 4096, 1, bias=True),
        "cls_score": conv_params(4096, k - 1, 1, bias=True),
        "bridge": 2 * bn_params(512)
        + conv_params(1024, 2048, 7, bias=True)
        + bn_params(2048)
        + conv_params(2048, 2048, 1, bias=True)
        + bn_params(2048),
        "fc6_deconv": conv_params(2048, 512, 7, bias=True) + bn_params(512),
        "decoder": sum(conv_params(a, b, 3, bias=True) + bn_params(b) for a, b in dec),
        "seg_score": conv_params(64, 2, 1, bias=True),
    }
    parts["total"] = sum(parts.values())
    return parts


@pytest.mark.parametrize("k", [21, 4])
def test_vgg16_param_count_matches_hand_derivation(k: int) -> None:
    parts = vgg16_hand_params(k)
    assert count_params(meta_build("decouplednet", k))[0] == parts["total"]


def test_docstring_states_the_counts() -> None:
    parts = vgg16_hand_params(21)
    assert parts["total"] == 307_450_390
    assert vgg16_hand_params(4)["total"] == 307_380_741
    doc = " ".join((dn_module.__doc__ or "").split())
    assert "307,450,390 at 21 classes" in doc and "307,380,741 at 4 classes" in doc
    assert_docstring_states(
        dn_module,
        parts,
        {
            "fc6": r"fc6 (\d+\.\d+)M",
            "fc7": r"fc7 (\d+\.\d+)M",
            "bridge": r"bridge (\d+\.\d+)M",
            "decoder": r"decoder stages (\d+\.\d+)M",
        },
    )
    for k, stated in ((21, "9,974,550"), (4, "9,965,829")):
        small = count_params(meta_build("decouplednet", k, trunk="small"))[0]
        assert f"{small:,}" == stated and stated in doc
