"""Tests for ``architectures.unet``: U-Net (Ronneberger et al., arXiv 1505.04597).

Parameter and multiply-add counts are derived by hand from the paper's Fig. 1 (channel widths,
double 3x3 convolutions, 2x2 up-convolutions) and compared with the built model and with
``bench.complexity``; the skip concatenation is checked value by value, the initialisation
against the paper's Gaussian, and a narrow variant must fit a fixed batch quickly. The shared
contract is ``tests/test_architecture_contract.py``; the full-size model is built on the meta
device, except where initialisation statistics are checked.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

import architectures
from architectures.unet import UNet
from bench.complexity import count_complexity, count_params
from bench.models import build_model
from tests.factories import fits_a_fixed_batch, meta_build
from tests.hand_counts import conv_layers

UNET_WIDTHS = (64, 128, 256, 512, 1024)  # Ronneberger et al., Fig. 1

pytestmark = pytest.mark.usefixtures("one_thread")


def unet_hand_params(k: int, batch_norm: bool, widths: tuple[int, ...] = UNET_WIDTHS) -> int:
    """Parameters from Fig. 1: double 3x3 convs, 2x2 up-convs halving channels, 1x1 scorer."""

    def double(cin: int, cout: int) -> int:
        weights = 9 * cin * cout + 9 * cout * cout
        per_conv_extra = 2 * cout if batch_norm else cout  # BN scale+shift, or conv bias
        return weights + 2 * per_conv_extra

    total, cin = 0, 3
    for w in widths:  # contracting path and bottom
        total += double(cin, w)
        cin = w
    for w in reversed(widths[:-1]):  # expanding path
        total += 2 * w * w * 4 + w  # up-conv 2x2, 2w -> w, bias
        total += double(2 * w, w)  # after concatenation with the skip
    return total + widths[0] * k + k  # 1x1 classifier


def unet_hand_macs(h: int, w: int, k: int, widths: tuple[int, ...] = UNET_WIDTHS) -> int:
    """Multiply-adds at ``h x w`` ('same' convs); transposed convs counted per input pixel."""
    total, cin = 0, 3
    for level, c in enumerate(widths):
        hw = (h >> level) * (w >> level)
        total += 9 * cin * c * hw + 9 * c * c * hw
        cin = c
    for level in reversed(range(len(widths) - 1)):
        c = widths[level]
        hw = (h >> level) * (w >> level)
        total += (2 * c) * c * 4 * (hw // 4)  # up-conv on the coarser map
        total += 9 * (2 * c) * c * hw + 9 * c * c * hw
    return total + widths[0] * k * h * w


@pytest.mark.parametrize("batch_norm", [False, True])
@pytest.mark.parametrize("k", [2, 21])
def test_unet_params_by_hand(batch_norm: bool, k: int) -> None:
    model = meta_build("unet", k, batch_norm=batch_norm)
    assert count_params(model)[0] == unet_hand_params(k, batch_norm)


def test_unet_param_figures() -> None:
    """The docstring's figures: ~31M, the often quoted size of the 64..1024 U-Net."""
    assert count_params(meta_build("unet", 2, batch_norm=False))[0] == 31_031_810
    assert count_params(meta_build("unet", 2))[0] == 31_037_698
    assert architectures.get_info("unet").paper_params is None  # the paper states none
    assert architectures.get_info("unet").input_divisor == 16  # 4 poolings


@pytest.mark.parametrize("batch_norm", [False, True])
def test_unet_layout(batch_norm: bool) -> None:
    model = meta_build("unet", 5, batch_norm=batch_norm)
    convs = conv_layers(model)
    assert len(convs) == 23  # "In total the network has 23 convolutional layers."
    three = [c for c in convs if c.kernel_size == (3, 3)]
    assert len(three) == 18
    assert all((c.bias is None) == batch_norm for c in three)
    assert all(c.padding == (1, 1) for c in three)  # 'same' convolutions (deviation)
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    assert len(bns) == (18 if batch_norm else 0)
    assert [b[0].out_channels for b in model.down] + [model.bottom[0].out_channels] == list(
        UNET_WIDTHS
    )
    ups = [(u.in_channels, u.out_channels, u.kernel_size, u.stride) for u in model.up]
    assert ups == [(2 * c, c, (2, 2), (2, 2)) for c in (512, 256, 128, 64)]  # halve channels
    assert [d[0].in_channels for d in model.decode] == [1024, 512, 256, 128]  # skip + up
    assert (model.classifier.in_channels, model.classifier.out_channels) == (64, 5)


def test_unet_macs_by_hand() -> None:
    model = build_model("unet", num_classes=2)
    report = count_complexity(model, (1, 3, 16, 32))
    assert report.macs == unet_hand_macs(16, 32, 2)
    assert report.crosscheck_macs == report.macs


def test_unet_same_size_and_skip_concatenation() -> None:
    """'Same' convs: logits at the input size; each decoder sees [skip, upsampled]."""
    torch.manual_seed(0)
    model = UNet(3, widths=(4, 8, 16, 32, 64), dropout=0.0).eval()
    seen: dict[str, torch.Tensor] = {}
    for i, block in enumerate(model.down):
        block.register_forward_hook(lambda m, a, out, i=i: seen.__setitem__(f"down{i}", out))
    for j, block in enumerate(model.decode):
        block.register_forward_hook(lambda m, a, out, j=j: seen.__setitem__(f"in{j}", a[0]))
    for j, up in enumerate(model.up):
        up.register_forward_hook(lambda m, a, out, j=j: seen.__setitem__(f"up{j}", out))
    with torch.no_grad():
        out = model(torch.randn(2, 3, 48, 80))
    assert out.shape == (2, 3, 48, 80)
    for j in range(4):
        skip, up, inp = seen[f"down{3 - j}"], seen[f"up{j}"], seen[f"in{j}"]
        c = skip.shape[1]
        assert up.shape == skip.shape  # the up-conv halves channels, doubles resolution
        assert torch.equal(inp[:, :c], skip) and torch.equal(inp[:, c:], up)


def test_unet_init_follows_paper() -> None:
    """Gaussian, std sqrt(2 / N), N = incoming nodes (C_in for a 2x2 stride-2 up-conv)."""
    torch.manual_seed(0)
    model = architectures.build("unet", num_classes=2)
    conv = model.down[3][0]  # 3x3, 256 -> 512
    assert conv.weight.std().item() == pytest.approx(math.sqrt(2 / (9 * 256)), rel=0.01)
    up = model.up[0]  # 2x2 stride 2, 1024 -> 512
    assert up.weight.std().item() == pytest.approx(math.sqrt(2 / 1024), rel=0.01)
    assert all(not u.bias.detach().any() for u in model.up)
    bn = model.down[0][1]
    assert isinstance(bn, nn.BatchNorm2d)
    assert torch.equal(bn.weight, torch.ones(64)) and torch.equal(bn.bias, torch.zeros(64))


def test_unet_dropout_only_in_train_mode() -> None:
    """One dropout of p = 0.5 (end of the contracting path), drawn in train mode (the contract
    test checks that eval is deterministic)."""
    torch.manual_seed(0)
    model = UNet(2, widths=(4, 8, 16, 32, 64))
    assert [m.p for m in model.modules() if isinstance(m, nn.Dropout)] == [0.5]
    x = torch.randn(2, 3, 32, 32)
    model.train()
    a, b = model(x), model(x)
    assert not torch.equal(a, b)  # dropout active (and BN batch statistics)


def test_unet_rejects_pretrained_backbone() -> None:
    with pytest.raises(ValueError, match="from scratch"):
        architectures.build("unet", num_classes=2, pretrained_backbone=True)


def test_fits_a_fixed_batch_quickly() -> None:
    """A narrow U-Net fits a simple mask in 20 steps (without batch norm it stalls near ln 2
    here: why ``batch_norm=True`` is the default)."""
    torch.manual_seed(0)
    losses = fits_a_fixed_batch(UNet(2, widths=(8, 16, 32, 64, 128)))
    assert losses[-1] < 0.55 * losses[0], losses
