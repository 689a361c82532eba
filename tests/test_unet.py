"""Tests for ``architectures.unet`` (arXiv 1505.04597) and ``architectures.fcdensenet``
(arXiv 1611.09326).

Parameter and multiply-add counts are derived by hand from the papers' layer descriptions
(channel widths, layers per block, growth rates) and compared with the built models and with
``bench.complexity``; block-level checks verify the concatenations (skips, dense stacks,
transitions up) value by value. Functional checks use narrow variants (``widths`` / small
configurations) to stay fast on one CPU core; the full-size models are built on the meta
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
from architectures.unet import UNet
from bench.complexity import count_complexity, count_params
from bench.models import build_model

UNET_WIDTHS = (64, 128, 256, 512, 1024)  # Ronneberger et al., Fig. 1
DENSE_NAMES = ("fcdensenet56", "fcdensenet67", "fcdensenet103")


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _meta(name: str, num_classes: int, **options: object) -> nn.Module:
    with torch.device("meta"):
        return architectures.build(name, num_classes=num_classes, **options)


def _convs(model: nn.Module) -> list[nn.Module]:
    return [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]


# --------------------------------------------------------------------------- U-Net: by hand


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
    model = _meta("unet", k, batch_norm=batch_norm)
    assert count_params(model)[0] == unet_hand_params(k, batch_norm)


def test_unet_param_figures() -> None:
    """The docstring's figures: ~31M, the often quoted size of the 64..1024 U-Net."""
    assert count_params(_meta("unet", 2, batch_norm=False))[0] == 31_031_810
    assert count_params(_meta("unet", 2))[0] == 31_037_698
    assert architectures.get_info("unet").paper_params is None  # the paper states none
    assert architectures.get_info("unet").input_divisor == 16  # 4 poolings


@pytest.mark.parametrize("batch_norm", [False, True])
def test_unet_layout(batch_norm: bool) -> None:
    model = _meta("unet", 5, batch_norm=batch_norm)
    convs = _convs(model)
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
    torch.manual_seed(0)
    model = UNet(2, widths=(4, 8, 16, 32, 64))
    assert [m.p for m in model.modules() if isinstance(m, nn.Dropout)] == [0.5]
    x = torch.randn(2, 3, 32, 32)
    model.train()
    a, b = model(x), model(x)
    assert not torch.equal(a, b)  # dropout active (and BN batch statistics)
    model.eval()
    with torch.no_grad():
        assert torch.equal(model(x), model(x))


def test_unet_rejects_pretrained_backbone() -> None:
    with pytest.raises(ValueError, match="from scratch"):
        architectures.build("unet", num_classes=2, pretrained_backbone=True)


# --------------------------------------------------------------------------- FC-DenseNet


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
    model = _meta(name, 11)
    assert len(_convs(model)) == int(name.removeprefix("fcdensenet"))
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
        assert count_params(_meta(name, k))[0] == hand
    assert dense_hand_counts(growth, layers, 11, 32, 32)[0] == params_11
    info = architectures.get_info(name)
    assert info.paper_num_classes == 11 and info.input_divisor == 32


def test_fcdensenet_bn_statistics_explain_reference_count() -> None:
    """The reference's count adds 2 running statistics per BN channel: 9.43M ~ '9.4M'."""
    model = _meta("fcdensenet103", 11)
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
    for conv in _convs(model):
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


# --------------------------------------------------------------------------- learning


@pytest.mark.parametrize(
    "make",
    [
        lambda: UNet(2, widths=(8, 16, 32, 64, 128)),
        lambda: FCDenseNet(2, 6, (2, 2, 2, 2, 2), first_channels=12),
    ],
    ids=["unet", "fcdensenet"],
)
def test_fits_a_fixed_batch_quickly(make) -> None:
    """Nothing in init or normalisation stalls learning: 20 AdamW steps fit a simple mask.

    (The narrow U-Net without batch norm stalls near ln 2 here: why ``batch_norm=True`` is the
    default.)
    """
    torch.manual_seed(0)
    model = make().train()
    x = torch.randn(4, 3, 32, 32)
    target = (x[:, 0] > 0).long()
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(20):
        loss = F.cross_entropy(model(x), target)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.55 * losses[0], losses
