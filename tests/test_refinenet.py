"""Tests for ``architectures.refinenet``: RefineNet (Lin et al., arXiv 1611.06612).

Parameter counts are derived by hand from the layer shapes (the cascade of four RefineNet
blocks on a ResNet trunk, no batch norm); the cascade's widths and block counts, its output
resolutions, the residual conv unit, chained residual pooling and the blocks' fusion are checked
on values, and the small initialisation that keeps the BN-free chain stable. The shared contract
is ``tests/test_architecture_contract.py``; structure checks run on the meta device and nothing
downloads.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models import resnet50

import architectures
from architectures.refinenet import (
    ChainedResidualPooling,
    RefineNet,
    RefineNetBlock,
    ResidualConvUnit,
)
from bench.complexity import count_params
from tests.factories import meta_build
from tests.hand_counts import RESNET50_TRUNK, RESNET101_TRUNK


def rcu_params(c: int) -> int:
    return 2 * 9 * c * c + c  # two 3x3 convs, only the first with a bias


def refinement_params(k: int) -> int:
    """Everything of RefineNet but the ResNet trunk, from the layer shapes (no batch norm)."""
    reduce = 9 * (256 * 256 + 512 * 256 + 1024 * 256 + 2048 * 512)
    rcus = 5 * rcu_params(512) + 15 * rcu_params(256)  # 20 RCUs, 5 of them 512 wide
    crp = 2 * 9 * 512 * 512 + 3 * 2 * 9 * 256 * 256  # two pooling convs per block
    fuse = 9 * 512 * 256 + 9 * 256 * 256 + 2 * 2 * 9 * 256 * 256
    classifier = 9 * 256 * k + k
    return reduce + rcus + crp + fuse + classifier


@pytest.mark.parametrize(
    ("name", "trunk"), [("refinenet101", RESNET101_TRUNK), ("refinenet50", RESNET50_TRUNK)]
)
def test_refinenet_param_count_matches_hand_count(name: str, trunk: int) -> None:
    model = meta_build(name, 21)
    assert count_params(model)[0] == trunk + refinement_params(21)
    assert count_params(model.backbone)[0] == trunk


def test_refinenet101_total_params() -> None:
    assert RESNET101_TRUNK + refinement_params(21) == 109_794_901  # as in the docstring


def test_refinenet_cascade_widths_and_block_counts() -> None:
    model = meta_build("refinenet101", 21)
    rcus = [m for m in model.modules() if isinstance(m, ResidualConvUnit)]
    assert len(rcus) == 20  # 2 per input path + 1 output per block, 2 final
    assert sum(r.conv1.in_channels == 512 for r in rcus) == 5
    assert model.refine4.fuse is None  # a single input path passes through unchanged
    assert [c.out_channels for c in model.reduce] == [256, 256, 256, 512]
    assert [(c.in_channels, c.out_channels) for c in model.refine3.fuse] == [(512, 256), (256, 256)]
    for block in (model.refine4, model.refine3, model.refine2, model.refine1):
        assert len(block.pool.convs) == 2
        assert all(len(path) == 2 for path in block.adapt)


def test_refinenet_output_resolutions() -> None:
    model = meta_build("refinenet50", 21).eval()
    shapes: dict[str, tuple[int, ...]] = {}
    handles = [
        getattr(model, name).register_forward_hook(
            lambda mod, args, out, name=name: shapes.__setitem__(name, tuple(out.shape))
        )
        for name in ("refine4", "refine3", "refine2", "refine1")
    ]
    with torch.no_grad():
        out = model(torch.empty(2, 3, 64, 96, device="meta"))
    for handle in handles:
        handle.remove()
    assert shapes == {
        "refine4": (2, 512, 2, 3),
        "refine3": (2, 256, 4, 6),
        "refine2": (2, 256, 8, 12),
        "refine1": (2, 256, 16, 24),
    }
    assert tuple(out.shape) == (2, 21, 64, 96)


def test_rcu_is_identity_plus_residual() -> None:
    rcu = ResidualConvUnit(3)
    nn.init.zeros_(rcu.conv2.weight)
    x = torch.randn(1, 3, 5, 5)
    torch.testing.assert_close(rcu(x), x)  # negative inputs survive: no ReLU on the skip


def test_chained_residual_pooling_values() -> None:
    """With identity 3x3 convs the chain is relu(x) + pool(relu(x)) + pool(pool(relu(x)))."""
    crp = ChainedResidualPooling(2)
    with torch.no_grad():
        for conv in crp.convs:
            conv.weight.zero_()
            conv.weight[range(2), range(2), 1, 1] = 1.0
    x = torch.randn(1, 2, 9, 9, generator=torch.Generator().manual_seed(0))
    r = F.relu(x)
    p1 = F.max_pool2d(r, 5, stride=1, padding=2)
    p2 = F.max_pool2d(p1, 5, stride=1, padding=2)
    torch.testing.assert_close(crp(x), r + p1 + p2)
    # A single bright pixel spreads 2 pixels per pooling block (5x5 windows, stride 1).
    spike = torch.zeros(1, 2, 9, 9)
    spike[..., 4, 4] = 1.0
    y = crp(spike)[0, 0]
    assert y[4, 4] == 3.0 and y[4, 2] == 2.0 and y[4, 0] == 1.0 and y[0, 0] == 1.0


def test_refinenet_block_fuses_by_upsampling_and_summing() -> None:
    torch.manual_seed(0)
    block = RefineNetBlock([4, 2])
    coarse, fine = torch.randn(1, 4, 3, 3), torch.randn(1, 2, 6, 6)
    a, b = block.adapt[0](coarse), block.adapt[1](fine)
    fused = block.fuse[1](b) + F.interpolate(
        block.fuse[0](a), size=(6, 6), mode="bilinear", align_corners=False
    )
    expected = block.out_conv(block.pool(fused))
    torch.testing.assert_close(block(coarse, fine), expected)


def test_refinenet_init_keeps_initial_logits_small() -> None:
    """N(0, 0.01) as the reference: Kaiming would make the BN-free RCU chain explode."""
    torch.manual_seed(0)
    model = RefineNet(resnet50(weights=None), num_classes=4)
    new_convs = [
        m
        for n, m in model.named_modules()
        if isinstance(m, nn.Conv2d) and not n.startswith("backbone")
    ]
    assert len(new_convs) == 4 + 2 * 20 + 8 + 6 + 1
    weights = torch.cat([m.weight.flatten() for m in new_convs])
    assert weights.std().item() == pytest.approx(0.01, rel=0.02)
    model.train()
    with torch.no_grad():
        logits = model(torch.randn(2, 3, 32, 32))
    assert 0.01 < logits.std().item() < 3.0


@pytest.mark.parametrize("name", ["refinenet101", "refinenet50"])
def test_arch_info(name: str) -> None:
    info = architectures.get_info(name)
    assert info.input_divisor == 32 and info.family == "encoder-decoder" and info.year == 2017
    assert info.paper_params is None and info.paper_gflops is None


# --------------------------------------------------------------------------- weights
