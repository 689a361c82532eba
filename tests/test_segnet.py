"""Tests for ``architectures.segnet`` (arXiv 1511.00561) and ``architectures.enet`` (1606.02147).

Parameter and MAC counts are derived by hand from the layer shapes and compared with the built
models; the max-pooling indices are checked to be where the decoder writes its values. Shape-only
checks run on the meta device; the rest uses tiny CPU inputs. Nothing is downloaded.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models import VGG16_BN_Weights, vgg16_bn

import architectures
from architectures import enet as enet_module
from architectures import segnet as segnet_module
from architectures.enet import (
    Bottleneck,
    DownsamplingBottleneck,
    ENet,
    InitialBlock,
    UpsamplingBottleneck,
)
from architectures.segnet import SegNet
from bench.complexity import count_complexity, count_params
from tests.hand_counts import assert_docstring_states

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
PAPER_ENET_PARAMS = 370_000  # ENet paper, Table 3: 0.37M
PAPER_ENET_GFLOPS = 3.83  # ENet paper, Table 3, 3x640x360


def _conv3x3(cin: int, cout: int) -> int:
    return 9 * cin * cout + cout  # with bias


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


# --------------------------------------------------------------------------- SegNet


@pytest.fixture(scope="module")
def segnet_model() -> SegNet:
    torch.manual_seed(0)
    return architectures.build("segnet", num_classes=3).eval()


def _meta(name: str, k: int) -> nn.Module:
    with torch.device("meta"):
        return architectures.build(name, num_classes=k)


@pytest.fixture(scope="module")
def segnet_meta() -> SegNet:
    """SegNet for 11 classes on the meta device (shapes only), in eval mode."""
    return _meta("segnet", 11).eval()


@pytest.fixture(scope="module")
def enet_meta() -> ENet:
    """ENet for 20 outputs on the meta device (shapes only), in eval mode."""
    return _meta("enet", 20).eval()


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


@pytest.fixture
def no_download(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a builder tried to download")

    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", refuse)
    monkeypatch.setattr(torch.hub, "download_url_to_file", refuse)
    return tmp_path


def test_segnet_pretrained_missing_raises_with_path(no_download: Path) -> None:
    expected = no_download / "checkpoints" / os.path.basename(VGG16_BN_Weights.IMAGENET1K_V1.url)
    with pytest.raises(FileNotFoundError) as info, torch.device("meta"):
        architectures.build("segnet", num_classes=11, pretrained_backbone=True)
    assert str(expected) in str(info.value)


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


# --------------------------------------------------------------------------- ENet


def _regular(c: int, prelu: bool = True, asym: int = 0) -> int:
    i = c // 4
    main = 2 * asym * i * i + i if asym else 9 * i * i + i
    acts = (2 * i + c) if prelu else 0
    return 2 * c * i + main + 2 * (2 * i) + 2 * c + acts


def _down(cin: int, cout: int) -> int:
    i = cout // 4
    return 4 * cin * i + 9 * i * i + i + i * cout + 2 * (2 * i) + 2 * cout + (2 * i + cout)


def _up(cin: int, cout: int) -> int:
    i = cout // 4
    return cin * cout + 2 * cout + cin * i + 9 * i * i + i + i * cout + 2 * (2 * i) + 2 * cout


def enet_hand_params(k: int) -> int:
    stage23 = 6 * _regular(128) + 2 * _regular(128, asym=5)
    return (
        (13 * 27 + 13)
        + 2 * 16
        + 16  # initial: conv with bias, BN(16), PReLU(16)
        + _down(16, 64)
        + 4 * _regular(64)
        + _down(64, 128)
        + 2 * stage23
        + _up(128, 64)
        + 2 * _regular(64, prelu=False)
        + _up(64, 16)
        + _regular(16, prelu=False)
        + 16 * k * 4
        + k  # fmt: skip
    )


def enet_hand_macs(h: int, w: int, k: int) -> int:
    """Multiply-adds of every (transposed) convolution; transposed ones per input pixel."""
    p2, p4, p8 = (h // 2) * (w // 2), (h // 4) * (w // 4), (h // 8) * (w // 8)

    def regular(px: int, c: int, main_taps: int = 9) -> int:
        i = c // 4
        return px * (2 * c * i + main_taps * i * i)

    stage23 = 6 * regular(p8, 128) + 2 * regular(p8, 128, main_taps=10)
    return (
        p2 * 13 * 3 * 9
        + p4 * (4 * 16 * 16 + 9 * 16 * 16 + 16 * 64)
        + 4 * regular(p4, 64)
        + p8 * (4 * 64 * 32 + 9 * 32 * 32 + 32 * 128)
        + 2 * stage23
        + p8 * (128 * 64 + 128 * 16 + 9 * 16 * 16)
        + p4 * 16 * 64
        + 2 * regular(p4, 64)
        + p4 * (64 * 16 + 64 * 4 + 9 * 4 * 4)
        + p2 * 4 * 16
        + regular(p2, 16)
        + p2 * 16 * k * 4  # fmt: skip
    )


@pytest.fixture(scope="module")
def enet_model() -> ENet:
    torch.manual_seed(0)
    return architectures.build("enet", num_classes=5).eval()


def test_enet_params_by_hand(enet_meta: ENet, enet_model: ENet) -> None:
    assert count_params(enet_meta)[0] == enet_hand_params(20)
    assert count_params(enet_model)[0] == enet_hand_params(5)
    total = enet_hand_params(20)
    assert total == 364_376
    assert abs(total - PAPER_ENET_PARAMS) / PAPER_ENET_PARAMS < 0.02  # -1.5%
    assert architectures.get_info("enet").paper_num_classes == 20
    # Hand-computed blocks (Table 1 widths): bottleneck1.x and the asymmetric 2.3.
    assert count_params(Bottleneck(64))[0] == 4656
    assert count_params(Bottleneck(128, asymmetric=5))[0] == 19040
    assert count_params(DownsamplingBottleneck(64, 128, dropout=0.1))[0] == 22112
    assert count_params(UpsamplingBottleneck(128, 64))[0] == 13904


def test_enet_macs_by_hand(enet_model: ENet) -> None:
    assert count_complexity(enet_model, (1, 3, 64, 48)).macs == enet_hand_macs(64, 48, 5)
    macs = enet_hand_macs(360, 640, 20)
    assert round(macs / 1e9, 3) == 1.727  # the docstring's figure
    assert macs == enet_hand_macs(640, 360, 20)  # orientation does not matter
    paper_macs = PAPER_ENET_GFLOPS / 2 * 1e9  # "2*macs", see the module docstring
    assert -0.10 < (macs - paper_macs) / paper_macs < -0.09
    info = architectures.get_info("enet")
    assert info.paper_flops_convention == "2*macs" and info.paper_resolution == (360, 640)


def test_enet_table1_output_sizes_at_512(enet_meta: ENet) -> None:
    """Paper Table 1 (input 512x512): 16x256, 64x128, 128x64, 64x128, 16x256, Cx512."""
    model = enet_meta
    seen: dict[str, tuple[int, ...]] = {}
    names = ("initial", "stage1", "stage2", "stage3", "stage4", "stage5", "fullconv")
    hooks = [
        getattr(model, name).register_forward_hook(
            lambda m, i, o, name=name: seen.__setitem__(name, tuple(o.shape[1:]))
        )
        for name in names
    ]
    try:
        model(torch.empty(1, 3, 512, 512, device="meta"))
    finally:
        for h in hooks:
            h.remove()
    assert seen == {
        "initial": (16, 256, 256),
        "stage1": (64, 128, 128),
        "stage2": (128, 64, 64),
        "stage3": (128, 64, 64),
        "stage4": (64, 128, 128),
        "stage5": (16, 256, 256),
        "fullconv": (20, 512, 512),
    }


def test_enet_stage_2_and_3_main_convolutions(enet_meta: ENet) -> None:
    model = enet_meta
    for stage in (model.stage2, model.stage3):
        kinds = []
        for block in stage:
            convs = [m for m in block.branch if isinstance(m, nn.Conv2d)][1:-1]
            if len(convs) == 2:
                assert [c.kernel_size for c in convs] == [(5, 1), (1, 5)]
                assert convs[0].bias is None and convs[1].bias is not None
                kinds.append("asym5")
            else:
                assert convs[0].kernel_size == (3, 3)
                assert convs[0].padding == convs[0].dilation  # same size
                kinds.append(convs[0].dilation[0])
        assert kinds == [1, 2, "asym5", 4, 1, 8, "asym5", 16]


def test_enet_projections_have_no_bias_main_convs_do(enet_meta: ENet) -> None:
    model = enet_meta
    for m in model.modules():
        if isinstance(m, nn.Conv2d) and m.kernel_size in ((1, 1), (2, 2)):
            assert m.bias is None, m
        elif isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):  # 3x3 main and 5x1 / 1x5
            assert m.bias is not None or m.kernel_size == (5, 1), m
        elif isinstance(m, nn.BatchNorm2d):
            assert m.eps == 1e-3


def test_enet_prelu_in_encoder_relu_in_decoder(enet_meta: ENet) -> None:
    model = enet_meta
    encoder = [model.initial, model.bottleneck1_0, model.stage1, model.bottleneck2_0]
    encoder += [model.stage2, model.stage3]
    decoder = [model.bottleneck4_0, model.stage4, model.bottleneck5_0, model.stage5]
    for part in encoder:
        assert not any(isinstance(m, nn.ReLU) for m in part.modules())
        assert any(isinstance(m, nn.PReLU) for m in part.modules())
    for part in decoder:
        assert not any(isinstance(m, nn.PReLU) for m in part.modules())
    prelus = [m for m in model.modules() if isinstance(m, nn.PReLU)]
    assert all(p.num_parameters > 1 for p in prelus)  # one slope per channel


def test_enet_spatial_dropout_rates_and_eval(enet_meta: ENet) -> None:
    model = enet_meta
    rates = [m.p for m in model.modules() if isinstance(m, nn.Dropout2d)]
    assert rates == [0.01] * 5 + [0.1] * 17  # 1.0-1.4, then 2.0 and stages 2-3
    decoder = [model.bottleneck4_0, model.stage4, model.bottleneck5_0, model.stage5]
    dropout_types = (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout)
    assert not any(isinstance(m, dropout_types) for p in decoder for m in p.modules())
    assert not any(isinstance(m, nn.Dropout) for m in model.modules())  # no element-wise one

    drop = nn.Dropout2d(0.5)
    x = torch.ones(2, 64, 3, 3)
    torch.manual_seed(4)
    y = drop.train()(x).flatten(2)  # whole channels are dropped (or scaled by 1 / (1 - p))
    assert set(y.unique().tolist()) == {0.0, 2.0}
    assert (y.amin(2) == y.amax(2)).all()
    assert torch.equal(drop.eval()(x), x)


def test_enet_dropout_only_in_train_mode(enet_model: ENet) -> None:
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        assert torch.equal(enet_model.eval()(x), enet_model(x))
        for m in enet_model.modules():
            if isinstance(m, nn.Dropout2d):
                m.train()  # dropout alone in train mode: batch norm keeps its statistics
        torch.manual_seed(6)
        a = enet_model(x)
        b = enet_model(x)
    enet_model.eval()
    assert not torch.equal(a, b)


def test_enet_initial_block_concatenates_conv_and_pool() -> None:
    torch.manual_seed(7)
    block = InitialBlock().eval()
    nn.init.ones_(block.act.weight)  # identity PReLU; fresh BN in eval is x / sqrt(1 + eps)
    x = torch.randn(1, 3, 8, 10)
    with torch.no_grad():
        out = block(x) * math.sqrt(1 + 1e-3)
        expected = torch.cat([block.conv(x), F.max_pool2d(x, 2)], dim=1)
    assert out.shape == (1, 16, 4, 5)
    torch.testing.assert_close(out, expected)


def test_enet_downsampling_pads_channels_and_returns_indices() -> None:
    torch.manual_seed(8)
    block = DownsamplingBottleneck(16, 64, dropout=0.0).eval()
    nn.init.zeros_(block.branch[7].weight)  # last BN: the branch outputs zeros
    nn.init.ones_(block.act.weight)
    x = torch.randn(2, 16, 8, 12)
    with torch.no_grad():
        out, indices = block(x)
    pooled, ref_indices = F.max_pool2d(x, 2, return_indices=True)
    assert out.shape == (2, 64, 4, 6) and torch.equal(indices, ref_indices)
    assert torch.equal(out[:, :16], pooled)
    assert torch.equal(out[:, 16:], torch.zeros(2, 48, 4, 6))  # zero-padded feature maps


def test_enet_upsampling_unpools_at_the_encoder_indices() -> None:
    """With the branch silenced, bottleneck4.0's output is non-zero only at 2.0's indices."""
    torch.manual_seed(9)
    down = DownsamplingBottleneck(64, 128, dropout=0.0).eval()
    up = UpsamplingBottleneck(128, 64).eval()
    nn.init.zeros_(up.branch[7].weight)  # last BN of the branch: outputs zeros
    nn.init.zeros_(up.branch[7].bias)
    x = torch.randn(1, 64, 8, 12)
    with torch.no_grad():
        y, indices = down(x)  # indices over 64 channels of the 8x12 map
        out = up(y, indices)  # (1, 64, 8, 12)
        main = F.relu(up.main(y))  # (1, 64, 4, 6)
    assert out.shape == x.shape
    flat = out.flatten(2)
    assert torch.equal(flat.gather(2, indices.flatten(2)), main.flatten(2))
    mask = torch.zeros_like(flat, dtype=torch.bool).scatter_(2, indices.flatten(2), True)
    assert (flat[~mask] == 0).all()


def test_enet_decoder_uses_the_right_indices(enet_model: ENet) -> None:
    """4.0 unpools 2.0's indices, 5.0 unpools 1.0's (captured with forward hooks)."""
    got: dict[str, torch.Tensor] = {}
    hooks = [
        enet_model.bottleneck1_0.register_forward_hook(lambda m, i, o: got.update(i1=o[1])),
        enet_model.bottleneck2_0.register_forward_hook(lambda m, i, o: got.update(i2=o[1])),
        enet_model.bottleneck4_0.register_forward_hook(lambda m, i, o: got.update(u4=i[1])),
        enet_model.bottleneck5_0.register_forward_hook(lambda m, i, o: got.update(u5=i[1])),
    ]
    try:
        with torch.no_grad():
            enet_model(torch.randn(1, 3, 32, 48))
    finally:
        for h in hooks:
            h.remove()
    assert got["i1"].shape == (1, 16, 8, 12) and got["i2"].shape == (1, 64, 4, 6)
    assert got["u4"] is got["i2"] and got["u5"] is got["i1"]
    assert int(got["i1"].max()) < 16 * 24  # flat indices into the 16x24 pre-pooling map


def test_enet_docstring_and_info_agree() -> None:
    doc = " ".join(enet_module.__doc__.split())
    assert "364,376 at 20 outputs" in doc
    assert "1.727 GMACs at 360x640" in doc
    info = architectures.get_info("enet")
    assert info.input_divisor == 8 and info.paper_params == PAPER_ENET_PARAMS
    assert info.paper_gmacs == pytest.approx(1.915)
