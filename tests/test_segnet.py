"""Tests for ``architectures.segnet``: SegNet (Badrinarayanan et al., arXiv 1511.00561).

Parameter and MAC counts are derived by hand from the layer shapes (VGG16's encoder, the
reference prototxt's decoder) and compared with the built model, the module docstring and the
figures of the ENet paper's Table 3; the max-pooling indices are checked to be where the decoder
writes its values, and any input size to come back exactly. The shared contract is
``tests/test_architecture_contract.py``; shape-only checks run on the meta device and nothing
downloads.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models import vgg16_bn

import architectures
from architectures import segnet as segnet_module
from architectures.segnet import SegNet
from bench.complexity import count_complexity, count_params
from tests.factories import meta_build
from tests.hand_counts import assert_docstring_states, conv_params

# VGG16's 13 convolutions per stage, (in, out) channels (Simonyan & Zisserman, Table 1, D).
VGG16_STAGES = [
    [(3, 64), (64, 64)],
    [(64, 128), (128, 128)],
    [(128, 256), (256, 256), (256, 256)],
    [(256, 512), (512, 512), (512, 512)],
    [(512, 512), (512, 512), (512, 512)],
]
# SegNet's decoder, deepest stage first (reference prototxt); the classifier 64 -> K follows.
SEGNET_DECODER = [
    [(512, 512), (512, 512), (512, 512)],
    [(512, 512), (512, 512), (512, 256)],
    [(256, 256), (256, 256), (256, 128)],
    [(128, 128), (128, 64)],
    [(64, 64)],
]
PAPER_SEGNET_PARAMS = 29_500_000  # "29.5M" (the paper figure; ENet Table 3: 29.46M)
ENET_SEGNET_GFLOPS = 286.03  # ENet paper, Table 3: SegNet at 3x640x360


def _conv3x3(cin: int, cout: int) -> int:
    return conv_params(cin, cout, 3, bias=True)


def segnet_hand_params(k: int) -> dict[str, int]:
    enc = [c for stage in VGG16_STAGES for c in stage]
    dec = [c for stage in SEGNET_DECODER for c in stage]
    return {
        "encoder_convs": sum(_conv3x3(a, b) for a, b in enc),
        "encoder_bn": sum(2 * b for _, b in enc),
        "decoder_convs": sum(_conv3x3(a, b) for a, b in dec),
        "decoder_bn": sum(2 * b for _, b in dec),
        "classifier": _conv3x3(64, k),
    }


def segnet_hand_macs(h: int, w: int, k: int) -> int:
    """Conv multiply-adds with ceil-mode pooling (stage j runs at ceil(size / 2**j))."""
    sizes = [(h, w)]
    for _ in range(4):
        sizes.append((math.ceil(sizes[-1][0] / 2), math.ceil(sizes[-1][1] / 2)))
    macs = 0
    for (sh, sw), enc, dec in zip(sizes, VGG16_STAGES, SEGNET_DECODER[::-1], strict=True):
        macs += sh * sw * 9 * sum(a * b for a, b in enc + dec)
    return macs + h * w * 9 * 64 * k


@pytest.fixture(scope="module")
def segnet_model() -> SegNet:
    torch.manual_seed(0)
    return architectures.build("segnet", num_classes=3).eval()


@pytest.fixture(scope="module")
def segnet_meta() -> SegNet:
    """SegNet for 11 classes on the meta device (shapes only), in eval mode."""
    return meta_build("segnet", 11).eval()


def test_segnet_params_by_hand_and_docstring(segnet_meta: SegNet) -> None:
    parts = segnet_hand_params(11)
    total = count_params(segnet_meta)[0]
    assert total == sum(parts.values()) == 29_449_355
    assert abs(total - PAPER_SEGNET_PARAMS) / PAPER_SEGNET_PARAMS < 0.002  # -0.17%
    assert parts["encoder_convs"] == 14_714_688  # the paper's "14.7M" VGG16 encoder
    assert sum(segnet_hand_params(21).values()) == total + 10 * 577
    stated = {
        "encoder_convs": r"encoder convolutions ([\d.]+)M",
        "encoder_bn": r"encoder batch norm ([\d.]+)M",
        "decoder_convs": r"decoder convolutions ([\d.]+)M",
        "decoder_bn": r"decoder batch norm ([\d.]+)M",
        "classifier": r"classifier ([\d.]+)M",
        "total": r"= ([\d.]+)M",
    }
    assert_docstring_states(segnet_module, {**parts, "total": total}, stated)


def test_segnet_encoder_is_torchvision_vgg16_bn_features(segnet_meta: SegNet) -> None:
    with torch.device("meta"):
        ref = {k: v.shape for k, v in vgg16_bn(weights=None).features.state_dict().items()}
    ours = {k: v.shape for k, v in segnet_meta.encoder.state_dict().items()}
    assert ours == ref
    layers = list(segnet_meta.encoder)
    assert sum(isinstance(m, nn.Conv2d) for m in layers) == 13
    assert sum(isinstance(m, nn.BatchNorm2d) for m in layers) == 13
    pools = [m for m in layers if isinstance(m, nn.MaxPool2d)]
    assert len(pools) == 5
    assert all(p.return_indices and p.ceil_mode and p.kernel_size == p.stride == 2 for p in pools)


def test_segnet_decoder_layout(segnet_meta: SegNet) -> None:
    model = segnet_meta
    convs = [
        [(m.in_channels, m.out_channels) for m in stage if isinstance(m, nn.Conv2d)]
        for stage in model.decoder
    ]
    assert convs == SEGNET_DECODER
    assert all(
        m.kernel_size == (3, 3) and m.padding == (1, 1)
        for m in model.decoder.modules()
        if isinstance(m, nn.Conv2d)
    )
    assert sum(isinstance(m, nn.BatchNorm2d) for m in model.decoder.modules()) == 12
    c = model.classifier
    assert (c.in_channels, c.out_channels, c.kernel_size) == (64, 11, (3, 3))
    assert c.bias is not None
    # 13 encoder + 12 decoder convolutions + the classifier.
    assert sum(isinstance(m, nn.Conv2d) for m in model.modules()) == 26


def test_segnet_pool_indices_are_window_argmax(segnet_model: SegNet) -> None:
    x = torch.randn(1, 3, 10, 14, generator=torch.Generator().manual_seed(1))
    pre = segnet_model.encoder[:6](x)  # conv1_1, bn, relu, conv1_2, bn, relu: (1, 64, 10, 14)
    _, pools = segnet_model.encode(x)
    indices, size = pools[0]
    assert size == [10, 14]
    assert indices.shape == (1, 64, 5, 7)
    # Hand argmax: unfold the 2x2 windows and map the winner back to a flat index h * W + w.
    windows = F.unfold(pre, 2, stride=2).view(1, 64, 4, 5 * 7)  # (N, C, 4 taps, windows)
    tap = windows.argmax(dim=2)  # (1, 64, 35)
    oh, ow = torch.div(torch.arange(35), 7, rounding_mode="floor"), torch.arange(35) % 7
    h = 2 * oh + torch.div(tap, 2, rounding_mode="floor")
    w = 2 * ow + tap % 2
    assert torch.equal(indices.flatten(2), h * 14 + w)


def test_segnet_unpooling_writes_values_at_the_indices(segnet_model: SegNet) -> None:
    """The decoder's first unpooling puts each pool5 value at its encoder argmax, zero elsewhere."""
    x = torch.randn(1, 3, 64, 96, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        pool5, pools = segnet_model.encode(x)  # (1, 512, 2, 3)
        indices, size = pools[-1]
        unpooled = F.max_unpool2d(pool5, indices, 2, stride=2, output_size=size)
    assert unpooled.shape == (1, 512, 4, 6)
    flat = unpooled.flatten(2)
    assert torch.equal(flat.gather(2, indices.flatten(2)), pool5.flatten(2))
    mask = torch.zeros_like(flat, dtype=torch.bool).scatter_(2, indices.flatten(2), True)
    assert (flat[~mask] == 0).all()
    assert mask.sum() == pool5.numel()  # one position per 2x2 window


@pytest.mark.parametrize("hw", [(45, 37), (23, 30), (1, 1)])
def test_segnet_any_input_size(segnet_model: SegNet, hw: tuple[int, int]) -> None:
    """Ceil-mode pooling and size-exact unpooling: odd sizes come back exactly (divisor 1)."""
    assert architectures.get_info("segnet").input_divisor == 1
    with torch.no_grad():
        out = segnet_model(torch.randn(1, 3, *hw))
    assert out.shape == (1, 3, *hw)


def test_segnet_paper_resolution_shapes_on_meta(segnet_meta: SegNet) -> None:
    model = segnet_meta
    _, pools = model.encode(torch.empty(1, 3, 360, 480, device="meta"))
    assert [s for _, s in pools] == [[360, 480], [180, 240], [90, 120], [45, 60], [23, 30]]
    assert model(torch.empty(1, 3, 360, 480, device="meta")).shape == (1, 11, 360, 480)


def test_segnet_macs_by_hand(segnet_model: SegNet) -> None:
    report = count_complexity(segnet_model, (1, 3, 45, 37))
    assert report.macs == segnet_hand_macs(45, 37, 3)
    # The docstring's figures, and the ENet paper's SegNet GFLOPs being 2 x MACs (-0.5%).
    assert round(segnet_hand_macs(360, 480, 11) / 1e9, 2) == 106.71
    at_640 = segnet_hand_macs(360, 640, 11)
    assert round(at_640 / 1e9, 2) == 142.28
    assert abs(2 * at_640 / 1e9 - ENET_SEGNET_GFLOPS) / ENET_SEGNET_GFLOPS < 0.01


def test_segnet_loads_vgg16_bn_features(segnet_model: SegNet) -> None:
    with torch.device("meta"):
        shapes = {k: (v.shape, v.dtype) for k, v in vgg16_bn(weights=None).state_dict().items()}
    gen = torch.Generator().manual_seed(3)
    state = {
        k: torch.randn(s, generator=gen) if d.is_floating_point else torch.tensor(7)
        for k, (s, d) in shapes.items()
        if k.startswith("features.")
    }
    state["classifier.0.weight"] = torch.zeros(1)  # ignored: only features.* are read
    saved = {k: v.clone() for k, v in segnet_model.state_dict().items()}
    try:
        segnet_model.load_vgg16_bn_imagenet(state)
        enc = segnet_model.encoder.state_dict()
        assert torch.equal(enc["0.weight"], state["features.0.weight"])
        assert torch.equal(enc["41.running_var"], state["features.41.running_var"])
        assert torch.equal(segnet_model.decoder[0][0].weight, saved["decoder.0.0.weight"])
    finally:
        segnet_model.load_state_dict(saved)
