"""Tests for ``architectures.frrn``: full-resolution residual networks A and B (Pohlen et al.,
arXiv 1611.08323).

The layouts of the paper's Table (units, widths and scales per stage) and the FRRU's parameter
count by hand; the residual stream's block-wise update from pooled input and its full
resolution on values and shapes. The shared contract is ``tests/test_architecture_contract.py``.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

import architectures
from architectures.frrn import FRRN, FRRU, LANES
from bench.complexity import count_params
from tests.factories import meta_build
from tests.hand_counts import conv_bn_params

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize(
    ("variant", "encoder", "decoder"),
    [
        (
            "A",
            [(3, 96, 2), (4, 192, 4), (2, 384, 8), (2, 384, 16)],
            [(2, 192, 8), (2, 192, 4), (2, 96, 2)],
        ),
        (
            "B",
            [(3, 96, 2), (4, 192, 4), (2, 384, 8), (2, 384, 16), (2, 384, 32)],
            [(2, 192, 16), (2, 192, 8), (2, 192, 4), (2, 96, 2)],
        ),
    ],
)
def test_frrn_layout_matches_the_table(variant, encoder, decoder):
    with torch.device("meta"):
        model = FRRN(19, variant)

    def layout(stages: nn.ModuleList) -> list[tuple[int, int, int]]:
        return [(len(s), s[0].body[0][0].out_channels, s[0].scale) for s in stages]

    assert layout(model.encoder) == encoder
    assert layout(model.decoder) == decoder
    assert model.input_divisor == (16 if variant == "A" else 32)
    assert architectures.get_info(f"frrn_{variant.lower()}").input_divisor == model.input_divisor
    # Input: 5x5 conv 48 then 3 RUs of 48; output: 3 RUs, the first projecting 96 + 32 -> 48.
    assert model.stem[0][0].kernel_size == (5, 5) and model.stem[0][0].out_channels == 48
    assert model.split[0].out_channels == LANES == 32
    assert model.head[0].proj.in_channels == 96 + 32 and model.head[0].proj.out_channels == 48


def test_frru_parameter_count_by_hand():
    frru = FRRU(48, 96, scale=2)
    expected = (
        conv_bn_params(48 + 32, 96, 3)  # concat(pooling stream, pooled residual stream)
        + conv_bn_params(96, 96, 3)
        + 96 * 32
        + 32  # 1x1 to the 32 residual lanes, with bias
    )
    assert count_params(frru)[0] == expected == 155_552


@pytest.mark.parametrize(
    ("arch", "measured", "paper"), [("frrn_a", 17_746_803, 17.7e6), ("frrn_b", 24_755_699, 24.8e6)]
)
def test_frrn_parameter_counts(arch, measured, paper):
    total = count_params(meta_build(arch, 19))[0]
    assert total == measured
    assert abs(total - paper) / paper < 0.005  # the paper's 17.7M / 24.8M, to its precision


def test_frru_updates_the_residual_stream_blockwise_from_pooled_input():
    torch.manual_seed(0)
    frru = FRRU(4, 8, scale=4).eval()
    y = torch.randn(1, 4, 3, 5)
    z = torch.randn(1, 32, 12, 20)
    y2, z2 = frru(y, z)
    assert y2.shape == (1, 8, 3, 5) and z2.shape == z.shape
    update = (z2 - z).view(1, 32, 3, 4, 5, 4)
    # Nearest upsampling by 4: the update is constant over every 4x4 block.
    assert torch.allclose(update, update[:, :, :, :1, :, :1].expand_as(update), atol=1e-6)
    # The unit sees z only through its 4x4 max-pool: changing a non-maximal pixel does nothing.
    z_other = z.clone()
    block = z_other[0, :, :4, :4]
    block[block < block.amax(dim=(1, 2), keepdim=True)] -= 1.0
    assert torch.allclose(frru(y, z_other)[0], y2)


def test_frrn_residual_stream_is_full_resolution():
    with torch.device("meta"):
        model = FRRN(3, "A").eval()
    seen = []
    for stage in (*model.encoder, *model.decoder):
        for frru in stage:
            frru.register_forward_hook(lambda _m, _i, out: seen.append(tuple(out[1].shape)))
    model(torch.empty(1, 3, 32, 48, device="meta"))
    assert len(seen) == 11 + 6 and set(seen) == {(1, 32, 32, 48)}
