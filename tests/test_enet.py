"""Tests for ``architectures.enet``: ENet (Paszke et al., arXiv 1606.02147).

Parameter and MAC counts are derived by hand from the layer shapes of the paper's Table 1 and
compared with the built model, the module docstring and the paper's Table 3; the output sizes of
Table 1, the asymmetric and dilated main convolutions, PReLU/ReLU placement, spatial dropout and
the max-unpooling indices are checked. The shared contract is
``tests/test_architecture_contract.py``; shape-only checks run on the meta device.

The ntkhoa95/ENet_PyTorch variant (``NTKHOA95_OPTIONS``): its parameters by hand, its layer
layout, the key conversion, and (``realdata``) the shared CamVid checkpoint in
``../shared/checkpoints/camvid`` loading strictly; those skip with a reason when the folder is
absent.
"""

from __future__ import annotations

import dataclasses
import hashlib
import inspect
import math
import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import architectures
from architectures import enet as enet_module
from architectures.enet import (
    NTKHOA95_OPTIONS,
    PAPER_OPTIONS,
    Bottleneck,
    DownsamplingBottleneck,
    ENet,
    ENetOptions,
    InitialBlock,
    UpsamplingBottleneck,
)
from architectures.enet_ntkhoa95 import ntkhoa95_state_dict
from bench.complexity import count_complexity, count_params
from tests.factories import ROOT, meta_build
from tests.hand_counts import bn_params, conv_bn_params, conv_params

PAPER_ENET_PARAMS = 370_000  # ENet paper, Table 3: 0.37M
PAPER_ENET_GFLOPS = 3.83  # ENet paper, Table 3, 3x640x360

CHECKPOINTS = ROOT.parent / "shared" / "checkpoints" / "camvid"
CAMVID = ROOT.parent / "shared" / "datasets" / "camvid"
NTKHOA95_FILE = CHECKPOINTS / "ntkhoa95_enet_camvid.pth"
NTKHOA95_SHA256 = "5765d37ee5917a1b6e68df6cb227581587a2db295aad2a5593da98a91efb1c56"
checkpoints_only = pytest.mark.skipif(not CHECKPOINTS.is_dir(), reason=f"{CHECKPOINTS} not found")
camvid_only = pytest.mark.skipif(not CAMVID.is_dir(), reason=f"{CAMVID} not found")


@pytest.fixture(scope="module")
def enet_meta() -> ENet:
    """ENet for 20 outputs on the meta device (shapes only), in eval mode."""
    return meta_build("enet", 20).eval()


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
    """Spatial dropout draws in train mode (the contract test checks that eval is
    deterministic)."""
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(5))
    enet_model.eval()
    with torch.no_grad():
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


# --------------------------------------------------------------------------- ntkhoa95 variant


def ntkhoa95_hand_params(k: int) -> int:
    """The ntkhoa95/ENet_PyTorch variant by hand: one PReLU slope per bottleneck (shared by its
    three non-linearities), ``in // 4`` branches in 1.0, 2.0, 4.0, 5.0 with a 1x1 projection,
    batch norm on the 13 initial convolution channels, no bias on the asymmetric pair nor the
    upsampling transposed convolution, an upsampling main branch of conv + bias (no BN), and a
    bias-free 3x3 fullconv."""

    def regular(c: int, asym: bool = False) -> int:
        i = c // 4
        main = (
            2 * conv_params(i, i, (5, 1), bias=False) if asym else conv_params(i, i, 3, bias=True)
        )
        return conv_bn_params(c, i, 1) + main + bn_params(i) + conv_bn_params(i, c, 1) + 1

    def down(cin: int, cout: int) -> int:
        i = cin // 4
        middle = conv_bn_params(i, i, 3, bias=True)
        return conv_bn_params(cin, i, 1) + middle + conv_bn_params(i, cout, 1) + 1

    def up(cin: int, cout: int) -> int:
        i = cin // 4
        main = conv_params(cin, cout, 1, bias=True)
        return (
            main
            + conv_bn_params(cin, i, 1)
            + conv_bn_params(i, i, 3)
            + conv_bn_params(i, cout, 1)
            + 1
        )

    stage23 = 6 * regular(128) + 2 * regular(128, asym=True)
    return (
        conv_params(3, 13, 3, bias=True)
        + bn_params(13)
        + 16  # initial: BN(13), PReLU(16)
        + down(16, 64)
        + 4 * regular(64)
        + down(64, 128)
        + 2 * stage23
        + up(128, 64)
        + 2 * regular(64)
        + up(64, 16)
        + regular(16)
        + conv_params(16, k, 3, bias=False)  # fmt: skip
    )


def test_enet_ntkhoa95_params_by_hand() -> None:
    variant = meta_build("enet", 12, **NTKHOA95_OPTIONS)
    assert count_params(variant)[0] == ntkhoa95_hand_params(12) == 353_913
    assert ntkhoa95_hand_params(13) - ntkhoa95_hand_params(12) == 144  # 16 x 3 x 3 per class
    # Their state dict lists each bottleneck's one PReLU under four names (27 bottlenecks).
    assert 353_913 + 27 * 3 == 353_994
    # The default is unchanged: the paper's network.
    assert count_params(meta_build("enet", 12))[0] == enet_hand_params(12) == 363_856
    assert count_params(meta_build("enet", 20))[0] == enet_hand_params(20) == 364_376


def test_enet_options_default_to_the_paper() -> None:
    builder = architectures.get_entry("enet").builder
    params = inspect.signature(builder).parameters
    options = {n: p.default for n, p in params.items() if n != "num_classes"}
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in params.values())
    assert options == {f.name: f.default for f in dataclasses.fields(ENetOptions)}
    assert ENetOptions(**options) == PAPER_OPTIONS == ENetOptions()
    # One option per difference: the variant sets every option away from its default.
    assert set(NTKHOA95_OPTIONS) == set(options)
    assert all(NTKHOA95_OPTIONS[n] != options[n] for n in options)
    with pytest.raises(TypeError):
        NTKHOA95_OPTIONS["prelu"] = "channel"  # type: ignore[index]
    doc = " ".join(enet_module.__doc__.split())
    assert "353,913 parameters at 12 outputs" in doc
    assert all(f"``{n}``" in doc for n in options)  # each option documented under "Variants"
    assert all(f"{n}:" in (builder.__doc__ or "") for n in options)


@pytest.mark.parametrize(
    "option,value,expected",
    [
        ("prelu", "per-channel", "enet option prelu must be one of 'channel', 'shared'"),
        ("fullconv", 3, "enet option fullconv must be one of '2x2', '3x3'; got 3"),
        ("decoder_dropout", 1.0, "decoder_dropout must be a probability in [0, 1); got 1.0"),
        ("bn_eps", 0.0, "bn_eps must be a positive float; got 0.0"),
        ("fullconv_bias", "no", "fullconv_bias must be a bool; got 'no'"),
    ],
)
def test_enet_options_are_validated(option: str, value: object, expected: str) -> None:
    with pytest.raises(ValueError, match=re.escape(expected)):
        architectures.build("enet", num_classes=12, **{option: value})


def test_enet_ntkhoa95_layout() -> None:
    """The variant's layers, as read from their state dict (shapes, names) and code."""
    model = meta_build("enet", 12, **NTKHOA95_OPTIONS)
    assert model.initial.bn.num_features == 13 and model.initial.act.num_parameters == 16
    assert {m.eps for m in model.modules() if isinstance(m, nn.BatchNorm2d)} == {1e-5}
    assert not any(isinstance(m, nn.ReLU) for m in model.modules())  # PReLU in the decoder too
    blocks = [model.bottleneck1_0, *model.stage1, model.bottleneck2_0, *model.stage2]
    blocks += [*model.stage3, model.bottleneck4_0, *model.stage4, model.bottleneck5_0]
    blocks += [*model.stage5]
    assert len(blocks) == 27
    for block in blocks:  # one single-slope PReLU per bottleneck, at its three places
        prelus = [m for m in block.branch if isinstance(m, nn.PReLU)] + [block.act]
        assert len(prelus) == 3 and all(p is prelus[0] for p in prelus)
        assert prelus[0].num_parameters == 1
    widths = [b.branch[0].out_channels for b in (model.bottleneck1_0, model.bottleneck2_0)]
    widths += [b.branch[0].out_channels for b in (model.bottleneck4_0, model.bottleneck5_0)]
    assert widths == [4, 16, 32, 16]  # in // 4 (the paper's out // 4: 16, 32, 16, 4)
    for down in (model.bottleneck1_0, model.bottleneck2_0):
        assert down.branch[0].kernel_size == (1, 1) and down.branch[3].stride == (2, 2)
        assert down.branch[3].bias is not None
    for block in (model.stage2[2], model.stage2[6], model.stage3[2], model.stage3[6]):
        assert [block.branch[i].kernel_size for i in (3, 4)] == [(1, 5), (5, 1)]
        assert block.branch[3].bias is None and block.branch[4].bias is None
        assert isinstance(block.branch[8], nn.Dropout2d)  # before the expansion's BN
        assert isinstance(block.branch[9], nn.BatchNorm2d)
    for up in (model.bottleneck4_0, model.bottleneck5_0):
        assert len(up.main) == 1 and up.main[0].bias is not None  # conv + bias, no BN
        assert isinstance(up.branch[3], nn.ConvTranspose2d) and up.branch[3].bias is None
    fc = model.fullconv
    assert (fc.kernel_size, fc.stride, fc.padding, fc.output_padding) == (
        (3, 3),
        (2, 2),
        (1, 1),
        (1, 1),
    )
    assert fc.bias is None
    rates = [m.p for m in model.modules() if isinstance(m, nn.Dropout2d)]
    assert rates == [0.01] * 5 + [0.1] * 17 + [0.1] * 5  # decoder: 4.0, 4.1, 4.2, 5.0, 5.1
    # 360x480 needs no padding: both sides are multiples of 8.
    assert model(torch.empty(1, 3, 360, 480, device="meta")).shape == (1, 12, 360, 480)


def test_ntkhoa95_state_dict_renames_and_swaps_1x1_transposed_weights() -> None:
    g = torch.Generator().manual_seed(10)
    slope = torch.rand(1, generator=g)
    theirs = {
        "initial.norm.running_var": torch.rand(13, generator=g),
        "b10.conv1.weight": torch.randn(4, 16, 1, 1, generator=g),
        "b12.activation.weight": slope,
        "b12.activation1.weight": slope,
        "b12.activation3.weight": slope.clone(),
        "b23.conv21.weight": torch.randn(32, 32, 1, 5, generator=g),
        "b23.norm3.bias": torch.randn(128, generator=g),
        "b38.conv2.bias": torch.randn(32, generator=g),
        "b40.convt1.weight": torch.randn(128, 32, 1, 1, generator=g),
        "b40.convt2.weight": torch.randn(32, 32, 3, 3, generator=g),
        "b40.main_conv.bias": torch.randn(64, generator=g),
        "b51.norm1.num_batches_tracked": torch.tensor(72),
        "fullconv.weight": torch.randn(16, 12, 3, 3, generator=g),
    }
    ours = ntkhoa95_state_dict({"state_dict": theirs})
    assert list(ours) == [
        "initial.bn.running_var",
        "bottleneck1_0.branch.0.weight",
        "stage1.1.branch.2.weight",
        "stage1.1.act.weight",
        "stage2.2.branch.3.weight",
        "stage2.2.branch.9.bias",
        "stage3.7.branch.3.bias",
        "bottleneck4_0.branch.0.weight",
        "bottleneck4_0.branch.3.weight",
        "bottleneck4_0.main.0.bias",
        "stage5.0.branch.1.num_batches_tracked",
        "fullconv.weight",
    ]
    assert ours["bottleneck1_0.branch.0.weight"] is theirs["b10.conv1.weight"]  # renamed only
    assert ours["bottleneck4_0.branch.3.weight"] is theirs["b40.convt2.weight"]  # a real 3x3
    w = theirs["b40.convt1.weight"]
    assert torch.equal(ours["bottleneck4_0.branch.0.weight"], w.transpose(0, 1))
    x = torch.randn(2, 128, 5, 7, generator=g)  # the same map: 1x1 transposed conv == conv
    torch.testing.assert_close(
        F.conv2d(x, ours["bottleneck4_0.branch.0.weight"]), F.conv_transpose2d(x, w)
    )
    assert ntkhoa95_state_dict(theirs).keys() == ours.keys()  # unwrapped input works too


@pytest.mark.parametrize(
    "key",
    ["b10.conv9.weight", "b23.conv2.weight", "b60.conv1.weight", "initial.bn.weight", "module.x"],
)
def test_ntkhoa95_state_dict_rejects_keys_their_model_lacks(key: str) -> None:
    with pytest.raises(ValueError, match=rf"unexpected key '{re.escape(key)}'.*67a87d1"):
        ntkhoa95_state_dict({key: torch.zeros(1)})


def test_ntkhoa95_state_dict_rejects_our_own_state_dict_and_unequal_prelu_aliases() -> None:
    ours = meta_build("enet", 12, **NTKHOA95_OPTIONS).state_dict()
    with pytest.raises(ValueError, match="unexpected key 'initial.bn.weight'"):
        ntkhoa95_state_dict(ours)
    slopes = {
        "b11.activation1.weight": torch.tensor([0.25]),
        "b11.activation2.weight": torch.tensor([0.5]),
    }
    with pytest.raises(ValueError, match="'b11.activation2.weight' differs from 'b11.activation1"):
        ntkhoa95_state_dict(slopes)


def _ntkhoa95_checkpoint() -> dict[str, object]:
    assert NTKHOA95_FILE.is_file(), f"{NTKHOA95_FILE} missing from {CHECKPOINTS}"
    data = NTKHOA95_FILE.read_bytes()
    assert hashlib.sha256(data).hexdigest() == NTKHOA95_SHA256, f"{NTKHOA95_FILE}: other bytes"
    return torch.load(NTKHOA95_FILE, map_location="cpu", weights_only=True)


@pytest.mark.realdata
@checkpoints_only
def test_ntkhoa95_checkpoint_loads_strictly() -> None:
    checkpoint = _ntkhoa95_checkpoint()
    assert list(checkpoint) == ["state_dict"] and len(checkpoint["state_dict"]) == 632
    state = ntkhoa95_state_dict(checkpoint)
    assert len(state) == 632 - 27  # each bottleneck's PReLU alias ``activation`` dropped
    torch.manual_seed(0)
    model = architectures.build("enet", num_classes=12, **NTKHOA95_OPTIONS)
    result = model.load_state_dict(state, strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    assert count_params(model)[0] == 353_913
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, state[name]), name
    assert model.bottleneck4_0.act.weight.item() == pytest.approx(0.27302, abs=1e-5)


@pytest.mark.realdata
@checkpoints_only
@camvid_only
def test_ntkhoa95_checkpoint_segments_camvid_rgb_at_360x480() -> None:
    """Their input is RGB 0-255 (``cv2.imread`` then ``cvtColor(BGR2RGB)``), not normalised.

    On the first three test images at 360x480 (void ignored, the void channel dropped), RGB
    gives 56.4% pixel accuracy and channel-reversed (BGR) input 23.6%."""
    from PIL import Image

    model = architectures.build("enet", num_classes=12, **NTKHOA95_OPTIONS).eval()
    model.load_state_dict(ntkhoa95_state_dict(_ntkhoa95_checkpoint()), strict=True)
    names = [
        line.split()[0].rsplit("/", 1)[-1]
        for line in (CAMVID / "test.txt").read_text().splitlines()[:3]
    ]
    correct = {"rgb": 0, "bgr": 0}
    counted = 0
    for name in names:
        image = torch.from_numpy(
            np.asarray(Image.open(CAMVID / "test" / name).convert("RGB")).copy()
        )
        label = torch.from_numpy(
            np.asarray(Image.open(CAMVID / "testannot" / name)).astype(np.int64)
        )
        x = image.permute(2, 0, 1)[None].float()  # (1, 3, 360, 480), 0-255
        keep = label != 11
        counted += int(keep.sum())
        for order, inp in (("rgb", x), ("bgr", x.flip(1))):
            with torch.no_grad():
                pred = model(inp)[0, :11].argmax(0)  # (360, 480)
            correct[order] += int((pred == label)[keep].sum())
    acc = {k: v / counted for k, v in correct.items()}
    assert acc["rgb"] == pytest.approx(0.5641, abs=0.005)
    assert acc["bgr"] < 0.3
