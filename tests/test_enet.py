"""Tests for ``architectures.enet``: ENet (Paszke et al., arXiv 1606.02147).

Parameter and MAC counts are derived by hand from the layer shapes of the paper's Table 1 and
compared with the built model, the module docstring and the paper's Table 3; the output sizes of
Table 1, the asymmetric and dilated main convolutions, PReLU/ReLU placement, spatial dropout and
the max-unpooling indices are checked. The shared contract is
``tests/test_architecture_contract.py``; shape-only checks run on the meta device.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import architectures
from architectures import enet as enet_module
from architectures.enet import (
    Bottleneck,
    DownsamplingBottleneck,
    ENet,
    InitialBlock,
    UpsamplingBottleneck,
)
from bench.complexity import count_complexity, count_params
from tests.factories import meta_build

PAPER_ENET_PARAMS = 370_000  # ENet paper, Table 3: 0.37M
PAPER_ENET_GFLOPS = 3.83  # ENet paper, Table 3, 3x640x360


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
