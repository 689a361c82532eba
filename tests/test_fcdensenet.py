"""Tests for ``architectures.fcdensenet``: FC-DenseNet 56, 67 and 103 (Jegou et al., arXiv
1611.09326).

Parameter and multiply-add counts are derived by hand from the paper's description (growth
rates, layers per block, Table 2's channel counts) and compared with the built models and with
``bench.complexity``; the dense concatenations and transitions up are checked value by value, the
He-uniform initialisation, and a small variant must fit a fixed batch quickly. The shared
contract is ``tests/test_architecture_contract.py``; the full-size models are built on the meta
device, except where initialisation statistics are checked.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import architectures
from architectures.fcdensenet import (
    CONFIGS,
    DenseBlock,
    FCDenseNet,
    TransitionDown,
    TransitionUp,
)
from bench.complexity import count_complexity, count_params
from bench.models import build_model
from tests.factories import fits_a_fixed_batch, meta_build
from tests.hand_counts import conv_layers

DENSE_NAMES = ("fcdensenet56", "fcdensenet67", "fcdensenet103")

pytestmark = pytest.mark.usefixtures("one_thread")


def dense_hand_channels(growth: int, layers: tuple[int, ...], first: int = 48) -> list[int]:
    """Stack channels after each dense block (Table 2's m; README's +16 correction)."""
    pools = len(layers) // 2
    m, skips, out = first, [], []
    for n in layers[:pools]:
        m += n * growth
        skips.append(m)
        out.append(m)
    out.append(m + layers[pools] * growth)  # bottleneck
    prev_new = layers[pools] * growth
    for n, skip in zip(layers[pools + 1 :], reversed(skips), strict=True):
        m = skip + prev_new + n * growth
        out.append(m)
        prev_new = n * growth
    return out


def dense_hand_counts(
    growth: int, layers: tuple[int, ...], k: int, h: int, w: int, first: int = 48
) -> tuple[int, int]:
    """``(params, macs)`` from the paper's description; MACs at ``h x w``, transposed convs
    counted per input pixel (fvcore's convention)."""
    pools = len(layers) // 2
    params = 9 * 3 * first + first
    macs = 9 * 3 * first * h * w

    def block(m: int, n: int, hw: int) -> tuple[int, int, int]:
        p = c = 0
        for _ in range(n):  # BN (2m) + 3x3 conv m -> growth (with bias)
            p += 2 * m + 9 * m * growth + growth
            c += 9 * m * growth * hw
            m += growth
        return p, c, m

    m, skips = first, []
    for level, n in enumerate(layers[:pools]):
        hw = (h >> level) * (w >> level)
        p, c, m = block(m, n, hw)
        skips.append(m)
        params += p + 2 * m + m * m + m  # transition down: BN, 1x1 conv m -> m, bias
        macs += c + m * m * hw
    p, c, _ = block(m, layers[pools], (h >> pools) * (w >> pools))
    params, macs = params + p, macs + c
    new = layers[pools] * growth
    for i, (n, skip) in enumerate(zip(layers[pools + 1 :], reversed(skips), strict=True)):
        level = pools - 1 - i
        hw = (h >> level) * (w >> level)
        params += 9 * new * new + new  # transition up: 3x3 transposed conv on new maps only
        macs += 9 * new * new * (hw // 4)
        p, c, m = block(new + skip, n, hw)
        params, macs = params + p, macs + c
        new = n * growth
    return params + m * k + k, macs + m * k * h * w


@pytest.mark.parametrize("name", DENSE_NAMES)
def test_fcdensenet_depth_and_channels(name: str) -> None:
    """The name is the depth: convolutions incl. transitions; Table 2's m per block."""
    model = meta_build(name, 11)
    assert len(conv_layers(model)) == int(name.removeprefix("fcdensenet"))
    growth, layers = CONFIGS[name]
    blocks = [*model.down_blocks, model.bottleneck, *model.up_blocks]
    assert [len(b.layers) for b in blocks] == list(layers)
    assert [b.out_channels for b in blocks] == dense_hand_channels(growth, layers)
    assert all(layer[2].out_channels == growth for b in blocks for layer in b.layers)
    # Transitions up see only the previous block's new feature maps, in = out channels.
    prev = [model.bottleneck, *model.up_blocks[:-1]]
    assert [(t.up.in_channels, t.up.out_channels) for t in model.transitions_up] == [
        (b.new_channels, b.new_channels) for b in prev
    ]
    assert all(t.up.kernel_size == (3, 3) and t.up.stride == (2, 2) for t in model.transitions_up)
    assert model.first_conv.out_channels == 48
    drops = [m.p for m in model.modules() if isinstance(m, nn.Dropout)]
    assert drops == [0.2] * (sum(layers) + len(layers) // 2)  # every dense layer and each TD


def test_fcdensenet103_table2_channels() -> None:
    growth, layers = CONFIGS["fcdensenet103"]
    assert (growth, layers) == (16, (4, 5, 7, 10, 12, 15, 12, 10, 7, 5, 4))
    assert dense_hand_channels(growth, layers) == [
        112, 192, 304, 464, 656, 896, 1088, 816, 576, 384, 256,
    ]  # fmt: skip
    assert CONFIGS["fcdensenet56"] == (12, (4,) * 11)
    assert CONFIGS["fcdensenet67"] == (16, (5,) * 11)


@pytest.mark.parametrize(
    ("name", "params_11"),
    [("fcdensenet56", 1_376_795), ("fcdensenet67", 3_463_243), ("fcdensenet103", 9_322_091)],
)
def test_fcdensenet_params_by_hand(name: str, params_11: int) -> None:
    growth, layers = CONFIGS[name]
    for k in (11, 21):
        hand, _ = dense_hand_counts(growth, layers, k, 32, 32)
        assert count_params(meta_build(name, k))[0] == hand
    assert dense_hand_counts(growth, layers, 11, 32, 32)[0] == params_11
    info = architectures.get_info(name)
    assert info.paper_num_classes == 11 and info.input_divisor == 32


def test_fcdensenet_bn_statistics_explain_reference_count() -> None:
    """The reference's count adds 2 running statistics per BN channel: 9.43M ~ '9.4M'."""
    model = meta_build("fcdensenet103", 11)
    stats = sum(b.numel() for n, b in model.named_buffers() if not n.endswith("batches_tracked"))
    assert count_params(model)[0] + stats == 9_425_163


def test_fcdensenet_macs_by_hand() -> None:
    """FC-DenseNet56 (the same code builds 67 and 103, whose layouts are checked above)."""
    name = "fcdensenet56"
    growth, layers = CONFIGS[name]
    report = count_complexity(build_model(name, num_classes=11), (1, 3, 32, 64))
    assert report.macs == dense_hand_counts(growth, layers, 11, 32, 64)[1]
    assert report.crosscheck_macs == report.macs


def test_dense_block_concatenates_input_and_new_maps() -> None:
    torch.manual_seed(0)
    block = DenseBlock(6, 4, 3, dropout=0.0, keep_stack=True, keep_new=True).eval()
    x = torch.randn(2, 6, 8, 8)
    with torch.no_grad():
        stack, new = block(x)
        assert stack.shape == (2, 18, 8, 8) and new.shape == (2, 12, 8, 8)
        assert torch.equal(stack[:, :6], x)  # the input passes through untouched
        assert torch.equal(stack[:, 6:], new)
        # Layer i sees the input and the i earlier outputs, nothing else.
        second = block.layers[1](torch.cat([x, new[:, :4]], 1))
        assert torch.equal(second, new[:, 4:8])
    only_new = DenseBlock(6, 4, 3, dropout=0.0, keep_stack=False, keep_new=True)
    only_new.load_state_dict(block.state_dict())
    with torch.no_grad():
        none, new2 = only_new.eval()(x)
    assert none is None and torch.equal(new2, new)


def test_dense_layer_order_is_bn_relu_conv_dropout() -> None:
    block = DenseBlock(5, 3, 1, dropout=0.2)
    kinds = [type(m) for m in block.layers[0]]
    assert kinds == [nn.BatchNorm2d, nn.ReLU, nn.Conv2d, nn.Dropout]
    down = TransitionDown(7, dropout=0.2)
    assert [type(m) for m in down] == [nn.BatchNorm2d, nn.ReLU, nn.Conv2d, nn.Dropout,
                                       nn.MaxPool2d]  # fmt: skip
    assert down[2].kernel_size == (1, 1) and down[2].out_channels == 7
    assert down.eval()(torch.randn(1, 7, 8, 6)).shape == (1, 7, 4, 3)


def test_transition_up_crops_and_puts_upsampled_first() -> None:
    torch.manual_seed(0)
    tu = TransitionUp(4)
    new, skip = torch.randn(2, 4, 5, 3), torch.randn(2, 7, 10, 6)
    with torch.no_grad():
        out = tu(new, skip)
        full = F.conv_transpose2d(new, tu.up.weight, tu.up.bias, stride=2)  # (2, 4, 11, 7)
    assert full.shape[-2:] == (11, 7)
    assert out.shape == (2, 11, 10, 6)
    assert torch.equal(out[:, :4], full[..., :10, :6])  # valid deconv, top-left crop
    assert torch.equal(out[:, 4:], skip)


def test_fcdensenet_init_is_he_uniform() -> None:
    torch.manual_seed(0)
    model = architectures.build("fcdensenet103", num_classes=11)
    for conv in conv_layers(model):
        fan_in = conv.weight[0].numel()  # Lasagne and PyTorch agree, transposed ones included
        bound = math.sqrt(6 / fan_in)
        assert float(conv.weight.detach().abs().max()) <= bound
        assert not conv.bias.detach().any()
    big = model.up_blocks[0].layers[-1][2]  # 3x3, 1072 -> 16
    bound = math.sqrt(6 / (9 * big.in_channels))
    assert big.weight.std().item() == pytest.approx(bound / math.sqrt(3), rel=0.03)


def test_fcdensenet_validates_config() -> None:
    with pytest.raises(ValueError, match="2 \\* num_pools \\+ 1"):
        FCDenseNet(2, 4, (1, 1, 1, 1))
    with pytest.raises(ValueError, match="from scratch"):
        architectures.build("fcdensenet56", num_classes=2, pretrained_backbone=True)


def test_fits_a_fixed_batch_quickly() -> None:
    """A small FC-DenseNet fits a simple mask in 20 steps."""
    torch.manual_seed(0)
    losses = fits_a_fixed_batch(FCDenseNet(2, 6, (2, 2, 2, 2, 2), first_channels=12))
    assert losses[-1] < 0.55 * losses[0], losses
