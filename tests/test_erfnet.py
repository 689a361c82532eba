"""Tests for ``architectures.erfnet``: ERFNet (Romera et al., DOI 10.1109/TITS.2017.2750080).

The parameter count is derived by hand from the layer shapes; the layer list, dilations and
dropout rates are checked against the paper's Table 1; the downsampler's concatenation and the
non-bottleneck-1D's residual against direct computation. The shared contract (shapes,
gradients, counters, paper figures) is ``tests/test_architecture_contract.py``. Everything runs on
CPU at tiny sizes (or on the meta device).
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import architectures
from architectures.erfnet import (
    ENCODER_DILATIONS,
    DownsamplerBlock,
    ERFNet,
    NonBottleneck1D,
    UpsamplerBlock,
)
from bench.complexity import count_params
from tests.factories import meta_build
from tests.hand_counts import bn_params, conv_params

pytestmark = pytest.mark.usefixtures("one_thread_per_module")


def nb1d_params(c: int) -> int:
    """Non-bottleneck-1D: four factorised convs (3x1, 1x3, with bias) and two batch norms."""
    factorised = conv_params(c, c, (3, 1), bias=True) + conv_params(c, c, (1, 3), bias=True)
    return 2 * factorised + 2 * bn_params(c)


def erfnet_params(k: int) -> int:
    down = sum(
        conv_params(i, o - i, 3, bias=True) + bn_params(o)
        for i, o in ((3, 16), (16, 64), (64, 128))
    )
    up = sum(conv_params(i, o, 3, bias=True) + bn_params(o) for i, o in ((128, 64), (64, 16)))
    blocks = 7 * nb1d_params(64) + 8 * nb1d_params(128) + 2 * nb1d_params(16)
    return down + up + blocks + conv_params(16, k, 2, bias=True)


def test_erfnet_nb1d_param_count() -> None:
    assert nb1d_params(128) == 197_632
    assert count_params(NonBottleneck1D(128, 2))[0] == nb1d_params(128)


@pytest.mark.parametrize("k", [19, 20])
def test_erfnet_param_count_by_hand(k: int) -> None:
    total = count_params(meta_build("erfnet", k))[0]
    assert total == erfnet_params(k)
    assert total == 2_062_956 + 65 * k
    assert abs(total - 2_100_000) / 2_100_000 < 0.02  # the paper's "2.1M"


def test_erfnet_layers_follow_table1() -> None:
    """23 layers: 3 downsamplers, 5 + 8 non-bt-1D, 2 upsamplers, 4 non-bt-1D, output deconv."""
    model = ERFNet(20)
    enc, dec = list(model.encoder), list(model.decoder)
    assert [type(m) for m in enc] == (
        [DownsamplerBlock] * 2 + [NonBottleneck1D] * 5 + [DownsamplerBlock] + [NonBottleneck1D] * 8
    )
    assert [type(m) for m in dec] == [UpsamplerBlock] + [NonBottleneck1D] * 2 + [UpsamplerBlock] + [
        NonBottleneck1D
    ] * 2
    assert len(enc) + len(dec) + 1 == 23
    dilated = [m.conv3x1_2.dilation[0] for m in enc[8:]]
    assert tuple(dilated) == ENCODER_DILATIONS == (2, 4, 8, 16, 2, 4, 8, 16)
    assert [m.conv1x3_2.dilation[1] for m in enc[8:]] == dilated
    assert all(m.conv3x1_2.dilation == (1, 1) for m in enc[2:7] + dec[1:3] + dec[4:])
    assert [m.dropout.p for m in enc[2:7]] == [0.03] * 5
    assert [m.dropout.p for m in enc[8:]] == [0.3] * 8
    assert model.output_conv.kernel_size == (2, 2) and model.output_conv.stride == (2, 2)


def test_erfnet_encoder_output_stride_is_8() -> None:
    model = ERFNet(5).eval()
    with torch.no_grad():
        assert model.encoder(torch.randn(1, 3, 32, 48)).shape == (1, 128, 4, 6)


def test_erfnet_downsampler_concatenates_max_pool() -> None:
    """The last ``in`` channels are the 2x2 max pooling of the input (through BN and ReLU)."""
    block = DownsamplerBlock(4, 16).eval()
    with torch.no_grad():
        block.conv.weight.zero_()
        block.conv.bias.fill_(-1.0)  # the conv part is ReLU'd away
        x = torch.randn(2, 4, 8, 8)
        out = block(x)
    scale = 1 / (1 + block.bn.eps) ** 0.5
    torch.testing.assert_close(out[:, 12:], F.relu(F.max_pool2d(x, 2)) * scale)
    assert torch.all(out[:, :12] == 0)


def test_erfnet_nb1d_is_residual() -> None:
    """With the last BN zeroed the block is ReLU(identity)."""
    block = NonBottleneck1D(8, 4).eval()
    with torch.no_grad():
        block.bn2.weight.zero_()
        x = torch.randn(1, 8, 10, 10)
        torch.testing.assert_close(block(x), F.relu(x))


def test_erfnet_has_no_pretrained_backbone() -> None:
    with pytest.raises(ValueError, match="pretrained_backbone=False"):
        architectures.build("erfnet", num_classes=3, pretrained_backbone=True)
