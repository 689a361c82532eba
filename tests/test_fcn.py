"""Tests for ``architectures.fcn``: FCN-32s/16s/8s (Long, Shelhamer, Darrell, arXiv 1411.4038).

Parameter counts are derived by hand from the layer shapes; the upsampling is checked against
``F.interpolate`` (bilinear, ``align_corners=False``) and hand-computed values; ``Im2colConv2d``
against ``nn.Conv2d``. Shape-only checks run on the meta device (no memory, no compute). No
test downloads anything.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models import vgg16

import architectures
from architectures import fcn as fcn_module
from architectures.fcn import (
    FCN,
    Im2colConv2d,
    _FixedUpsample,
    _learnable_up2,
    bilinear_kernel,
)
from bench.complexity import count_params
from tests.factories import meta_build
from tests.hand_counts import VGG16_CONV_PARAMS, VGG16_CONVS, assert_docstring_states

FC6_PARAMS = 7 * 7 * 512 * 4096 + 4096  # convolutionalised fc6: 7x7, 512 -> 4096, bias
FC7_PARAMS = 4096 * 4096 + 4096  # convolutionalised fc7: 1x1, 4096 -> 4096, bias
PAPER_FCN8S_PARAMS = 134_000_000  # "134M", FCN-VGG16, arXiv 1411.4038 Table 1


def hand_param_count(stride: int, k: int) -> dict[str, int]:
    """Parameters of FCN-{stride}s for ``k`` classes, by component, from the layer shapes."""
    parts = {
        "vgg16_convs": VGG16_CONV_PARAMS,
        "fc6": FC6_PARAMS,
        "fc7": FC7_PARAMS,
        "scorers": 4096 * k + k,
        "up2": 0,
    }
    if stride <= 16:  # score_pool4 (1x1, 512 -> k, bias) and one 4x4 k -> k up2, no bias
        parts["scorers"] += 512 * k + k
        parts["up2"] += k * k * 16
    if stride == 8:  # score_pool3 (1x1, 256 -> k, bias) and a second up2
        parts["scorers"] += 256 * k + k
        parts["up2"] += k * k * 16
    return parts


@pytest.fixture(scope="module")
def fcn8s_model() -> Iterator[FCN]:
    """One real FCN-8s for 3 classes, in eval mode (building one takes seconds)."""
    torch.manual_seed(0)
    model = architectures.build("fcn8s", num_classes=3).eval()
    yield model
    del model


# --------------------------------------------------------------------------- parameters


def test_hand_count_of_vgg16_convolutions() -> None:
    # torchvision's VGG16 features hold exactly these convolutions (shapes from a meta build).
    with torch.device("meta"):
        convs = [m for m in vgg16(weights=None).features if isinstance(m, nn.Conv2d)]
    assert [(c.in_channels, c.out_channels) for c in convs] == VGG16_CONVS
    assert VGG16_CONV_PARAMS == 14_714_688


@pytest.mark.parametrize(("name", "stride"), [("fcn32s", 32), ("fcn16s", 16), ("fcn8s", 8)])
@pytest.mark.parametrize("k", [21, 2])
def test_param_count_matches_hand_derivation(name: str, stride: int, k: int) -> None:
    total, trainable = count_params(meta_build(name, k))
    assert total == trainable == sum(hand_param_count(stride, k).values())


def test_fcn8s_params_match_paper_and_docstring() -> None:
    parts = hand_param_count(8, 21)
    total = count_params(meta_build("fcn8s", 21))[0]
    assert total == sum(parts.values()) == 134_376_863
    # Within 2% of the paper's "134M" (arXiv 1411.4038, Table 1: FCN-VGG16, 134M parameters).
    assert abs(total - PAPER_FCN8S_PARAMS) / PAPER_FCN8S_PARAMS <= 0.02
    # The fcn.py docstring states the same derivation, rounded.
    stated = {
        "vgg16_convs": r"VGG16 convolutions ([\d.]+)M",
        "fc6": r"fc6 ([\d.]+)M",
        "fc7": r"fc7 ([\d.]+)M",
        "scorers": r"scorers ([\d.]+)M",
        "up2": r"upsamplings ([\d.]+)M",
        "total": r"= ([\d.]+)M",
    }
    assert_docstring_states(fcn_module, {**parts, "total": total}, stated)


def test_fixed_upsampling_is_a_buffer_not_a_parameter(fcn8s_model: FCN) -> None:
    names = dict(fcn8s_model.named_buffers())
    assert "upsample.weight" in names
    assert "upsample.weight" not in dict(fcn8s_model.named_parameters())
    assert "upsample.weight" not in fcn8s_model.state_dict()  # rebuilt, never loaded


# --------------------------------------------------------------------------- upsampling


def test_bilinear_kernel_hand_values() -> None:
    # factor 2: taps 1 - |i - 1.5| / 2 = (0.25, 0.75, 0.75, 0.25); the 2-D kernel is the outer
    # product, on the channel diagonal only.
    k = bilinear_kernel(2, 2)
    taps = torch.tensor([0.25, 0.75, 0.75, 0.25])
    assert k.shape == (2, 2, 4, 4)
    torch.testing.assert_close(k[0, 0], taps[:, None] * taps[None, :])
    torch.testing.assert_close(k[1, 1], k[0, 0])
    assert k[0, 1].abs().sum() == 0 and k[1, 0].abs().sum() == 0


@pytest.mark.parametrize("factor", [2, 8, 16, 32])
def test_fixed_upsample_constant_and_ramp(factor: int) -> None:
    up = _FixedUpsample(2, factor)
    m = factor // 2  # output pixels closer than f/2 to a border see the zero padding
    const = up(torch.full((1, 2, 4, 5), 3.5))
    assert const.shape == (1, 2, 4 * factor, 5 * factor)
    torch.testing.assert_close(const[..., m:-m, m:-m], torch.full_like(const[..., m:-m, m:-m], 3.5))
    # At the border, the transposed convolution sees zeros (F.interpolate would clamp).
    assert const[0, 0, 0, 0] < 3.5

    # A ramp x[j] = j is sampled at the align_corners=False coordinate (o + 0.5) / f - 0.5.
    ramp = torch.arange(5.0).expand(1, 2, 4, 5)
    out = up(ramp)[0, 0, m, m:-m]
    cols = torch.arange(m, 5 * factor - m, dtype=torch.float32)
    torch.testing.assert_close(out, (cols + 0.5) / factor - 0.5)


@pytest.mark.parametrize("factor", [2, 8, 16, 32])
def test_fixed_upsample_matches_interpolate_in_interior(factor: int) -> None:
    x = torch.randn(2, 3, 5, 6, generator=torch.Generator().manual_seed(0))
    out = _FixedUpsample(3, factor)(x)
    ref = F.interpolate(x, scale_factor=factor, mode="bilinear", align_corners=False)
    m = factor // 2
    torch.testing.assert_close(out[..., m:-m, m:-m], ref[..., m:-m, m:-m], atol=1e-5, rtol=0)


def test_learnable_up2_starts_as_bilinear() -> None:
    up = _learnable_up2(4)
    assert up.weight.requires_grad and up.bias is None
    x = torch.randn(1, 4, 6, 7, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        out = up(x)
    ref = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
    assert out.shape == ref.shape == (1, 4, 12, 14)
    torch.testing.assert_close(out[..., 1:-1, 1:-1], ref[..., 1:-1, 1:-1], atol=1e-5, rtol=0)


def test_fcn8s_up2_layers_initialised_bilinear(fcn8s_model: FCN) -> None:
    expected = bilinear_kernel(3, 2)
    for layer in (fcn8s_model.up2_fr, fcn8s_model.up2_pool4):
        assert torch.equal(layer.weight, expected)
        assert layer.weight.requires_grad


# --------------------------------------------------------------------------- initialisation


def test_scorers_zero_initialised_as_in_the_paper(fcn8s_model: FCN) -> None:
    for layer in (fcn8s_model.score_fr, fcn8s_model.score_pool4, fcn8s_model.score_pool3):
        assert layer.weight.abs().sum() == 0 and layer.bias.abs().sum() == 0
    with torch.no_grad():
        out = fcn8s_model(torch.randn(1, 3, 64, 64))
    assert torch.equal(out, torch.zeros_like(out))  # zero class scorer: zero logits at init


def test_skip_branches_contribute_nothing_at_init(fcn8s_model: FCN) -> None:
    """With a non-zero ``score_fr``, FCN-8s at init equals its pure upsampling path.

    This is what zero-initialising the skip scorers guarantees, exactly. It is *not* FCN-32s's
    output: up2, up2 and up8 bilinear compose to a different (smoother) filter than one 32x
    bilinear upsampling, so the two nets differ even with identical backbone weights.
    """
    m = fcn8s_model
    torch.manual_seed(2)
    saved = {k: v.clone() for k, v in m.score_fr.state_dict().items()}
    try:
        with torch.no_grad():
            nn.init.normal_(m.score_fr.weight, std=0.01)
            nn.init.normal_(m.score_fr.bias, std=0.01)
            x = torch.randn(1, 3, 64, 96)
            out = m(x)
            pool5 = m.to_pool5(m.to_pool4(m.to_pool3(x)))
            score = m.score_fr(F.relu(m.fc7(F.relu(m.fc6(pool5)))))  # (1, 3, 2, 3)
            ref = m.upsample(m.up2_pool4(m.up2_fr(score)))
    finally:
        m.score_fr.load_state_dict(saved)
    assert out.abs().max() > 0
    assert torch.equal(out, ref)


# --------------------------------------------------------------------------- shapes


@pytest.mark.parametrize("name", ["fcn32s", "fcn16s", "fcn8s"])
@pytest.mark.parametrize("hw", [(32, 32), (64, 96), (160, 32), (512, 384)])
def test_output_is_exactly_input_size_for_multiples_of_32(name: str, hw: tuple[int, int]) -> None:
    model = meta_build(name, 5).eval()
    out = model(torch.empty(2, 3, *hw, device="meta"))
    assert tuple(out.shape) == (2, 5, *hw)


def test_invalid_stride_rejected() -> None:
    with pytest.raises(ValueError, match="stride must be 32, 16 or 8; got 4"), torch.device("meta"):
        FCN(3, stride=4)


# --------------------------------------------------------------------------- fc6 as matmul


@pytest.mark.parametrize(
    ("kernel", "size"),
    # On maps smaller than the kernel some taps only meet padding: (7, (2, 2)) leaves only the
    # central 3x3 taps with data, (7, (1, 3)) one kernel row.
    [(7, (5, 4)), (7, (2, 2)), (7, (1, 3)), (7, (4, 9)), (3, (5, 4)), (1, (5, 4))],
)
def test_im2col_conv_equals_conv2d(kernel: int, size: tuple[int, int]) -> None:
    """Outputs and all gradients equal a plain ``nn.Conv2d`` with "same" padding, including
    the zero gradient of the taps that only meet padding."""
    torch.manual_seed(3)
    ours = Im2colConv2d(6, 10, kernel)
    ref = nn.Conv2d(6, 10, kernel, padding=kernel // 2)
    ref.load_state_dict(ours.state_dict())
    x = torch.randn(2, 6, *size)
    x_ours, x_ref = x.clone().requires_grad_(), x.clone().requires_grad_()
    y_ours, y_ref = ours(x_ours), ref(x_ref)
    torch.testing.assert_close(y_ours, y_ref, atol=1e-4, rtol=1e-4)
    grad_out = torch.randn_like(y_ref)
    y_ours.backward(grad_out)
    y_ref.backward(grad_out)
    for a, b in [
        (x_ours.grad, x_ref.grad),
        (ours.weight.grad, ref.weight.grad),
        (ours.bias.grad, ref.bias.grad),
    ]:
        torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)
    if size == (2, 2):  # only taps [2:5, 2:5] can see the 2x2 map
        outside = ours.weight.grad.clone()
        outside[:, :, 2:5, 2:5] = 0
        assert outside.abs().max() == 0
        assert ours.weight.grad[:, :, 2:5, 2:5].abs().min() > 0


def test_im2col_conv_rejects_even_kernel() -> None:
    with pytest.raises(ValueError, match="odd kernel size; got 4"):
        Im2colConv2d(2, 2, 4)


# --------------------------------------------------------------------------- pretrained


def test_load_vgg16_convolutionalises_fc6_and_fc7(fcn8s_model: FCN) -> None:
    """fc6 on a 7x7 pool5 map computes VGG16's first Linear on the flattened map."""
    with torch.device("meta"):
        shapes = {k: v.shape for k, v in vgg16(weights=None).state_dict().items()}
    gen = torch.Generator().manual_seed(4)
    state = {k: torch.randn(s, generator=gen) * 0.01 for k, s in shapes.items()}
    saved = {k: v.clone() for k, v in fcn8s_model.state_dict().items()}
    try:
        fcn8s_model.load_vgg16_imagenet(state)
        convs = [m for m in fcn8s_model.to_pool3 if isinstance(m, nn.Conv2d)]
        assert torch.equal(convs[0].weight, state["features.0.weight"])
        assert torch.equal(convs[-1].bias, state["features.14.bias"])
        last = [m for m in fcn8s_model.to_pool5 if isinstance(m, nn.Conv2d)][-1]
        assert torch.equal(last.weight, state["features.28.weight"])
        pool5 = torch.randn(1, 512, 7, 7, generator=gen)
        with torch.no_grad():
            linear6 = F.linear(
                pool5.flatten(1), state["classifier.0.weight"], state["classifier.0.bias"]
            )  # (1, 4096)
            conv6 = F.conv2d(pool5, fcn8s_model.fc6.weight, fcn8s_model.fc6.bias)  # (1, 4096, 1, 1)
            h = torch.randn(1, 4096, generator=gen)
            linear7 = F.linear(h, state["classifier.3.weight"], state["classifier.3.bias"])
            conv7 = fcn8s_model.fc7(h[:, :, None, None])
        torch.testing.assert_close(conv6.flatten(1), linear6, atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(conv7.flatten(1), linear7, atol=1e-4, rtol=1e-4)
    finally:
        fcn8s_model.load_state_dict(saved)
