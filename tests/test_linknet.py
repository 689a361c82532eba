"""Tests for ``architectures.linknet``, ``architectures.refinenet`` and ``architectures.pspnet``.

LinkNet (Chaurasia & Culurciello, arXiv 1707.03718), RefineNet (Lin et al., arXiv 1611.06612)
and PSPNet (Zhao et al., arXiv 1612.01105). Parameter counts are derived by hand from the layer
shapes the papers give; block behaviour (additive links, chained residual pooling, pyramid
pooling, output stride, auxiliary head) is checked on values. Structural checks run on the meta
device (shapes only, no compute); no test downloads anything.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models import (
    ResNet18_Weights,
    ResNet50_Weights,
    ResNet101_Weights,
    resnet18,
    resnet50,
    resnet101,
)

import architectures
from architectures import linknet as linknet_module
from architectures.linknet import DECODER_CHANNELS, DecoderBlock, LinkNet
from architectures.pspnet import BINS, PSPNet, PyramidPooling
from architectures.refinenet import (
    ChainedResidualPooling,
    RefineNet,
    RefineNetBlock,
    ResidualConvUnit,
)
from bench.complexity import count_complexity, count_params

# torchvision ResNet parameters without the 1000-way fc (weight + bias).
RESNET18_TRUNK = 11_689_512 - (512 * 1000 + 1000)  # 11,176,512
RESNET50_TRUNK = 25_557_032 - (2048 * 1000 + 1000)  # 23,508,032
RESNET101_TRUNK = 44_549_160 - (2048 * 1000 + 1000)  # 42,500,160


_META_CACHE: dict[tuple, nn.Module] = {}


def _meta_build(name: str, num_classes: int, **options: object) -> nn.Module:
    """The model on the meta device (shapes only), built once per arguments in this module."""
    key = (name, num_classes, *sorted(options.items()))
    if key not in _META_CACHE:
        with torch.device("meta"):
            _META_CACHE[key] = architectures.build(name, num_classes=num_classes, **options)
    return _META_CACHE[key]


@pytest.fixture(scope="module", autouse=True)
def _clear_meta_cache() -> Iterator[None]:
    yield
    _META_CACHE.clear()


def _conv_bn(cin: int, cout: int, k: int, bias: bool = True) -> int:
    """Parameters of a k x k conv (or full-conv) followed by batch norm (weight + bias)."""
    return k * k * cin * cout + (cout if bias else 0) + 2 * cout


# --------------------------------------------------------------------------- LinkNet


def linknet_decoder_params(m: int, n: int) -> int:
    """Decoder block of Table 1: 1x1 m -> m/4, 3x3 full-conv m/4 -> m/4, 1x1 m/4 -> n."""
    q = m // 4
    return _conv_bn(m, q, 1) + _conv_bn(q, q, 3) + _conv_bn(q, n, 1)


def linknet_params(k: int) -> int:
    decoders = sum(linknet_decoder_params(m, n) for m, n in DECODER_CHANNELS)
    final = _conv_bn(64, 32, 3) + _conv_bn(32, 32, 3) + (4 * 32 * k + k)
    return RESNET18_TRUNK + decoders + final


def test_linknet_decoder_table1_channels_and_params() -> None:
    model = _meta_build("linknet", 12)
    blocks = [model.decoder1, model.decoder2, model.decoder3, model.decoder4]
    for block, (m, n), stride in zip(blocks, DECODER_CHANNELS, (1, 2, 2, 2), strict=True):
        convs = [c for c in block if isinstance(c, nn.Conv2d | nn.ConvTranspose2d)]
        assert [(c.in_channels, c.out_channels) for c in convs] == [
            (m, m // 4),
            (m // 4, m // 4),
            (m // 4, n),
        ]
        assert isinstance(convs[1], nn.ConvTranspose2d) and convs[1].kernel_size == (3, 3)
        assert convs[1].stride == (stride, stride)
        assert count_params(block)[0] == linknet_decoder_params(m, n)
    assert linknet_decoder_params(512, 256) == 247_296  # the largest block, by hand


@pytest.mark.parametrize("k", [12, 21])
def test_linknet_param_count_matches_hand_count_and_paper(k: int) -> None:
    total = count_params(_meta_build("linknet", k))[0]
    assert total == linknet_params(k)
    assert linknet_params(12) == 11_535_788
    assert abs(total - 11_500_000) / 11_500_000 < 0.01  # the paper's "11.5 million"


def test_linknet_links_add_encoder_block_inputs_to_decoder_outputs() -> None:
    """Decoder i's output plus encoder i's input feeds the next decoder (a sum, not a concat)."""
    torch.manual_seed(0)
    model = LinkNet(num_classes=3).eval()
    seen: dict[str, torch.Tensor] = {}

    def keep(name: str, inputs: bool = False):
        def hook(module: nn.Module, args: tuple, out: torch.Tensor) -> None:
            seen[name] = (args[0] if inputs else out).detach().clone()

        return hook

    b = model.backbone
    for name, mod in [
        ("x0", b.maxpool),
        ("e1", b.layer1),
        ("e2", b.layer2),
        ("e3", b.layer3),
        ("d4", model.decoder4),
        ("d3", model.decoder3),
        ("d2", model.decoder2),
        ("d1", model.decoder1),
    ]:
        mod.register_forward_hook(keep(name))
    for name, mod in [
        ("in3", model.decoder3),
        ("in2", model.decoder2),
        ("in1", model.decoder1),
        ("in_final", model.final),
    ]:
        mod.register_forward_hook(keep(name, inputs=True))
    with torch.no_grad():
        out = model(torch.randn(1, 3, 64, 64))
    assert out.shape == (1, 3, 64, 64)
    torch.testing.assert_close(seen["in3"], seen["d4"] + seen["e3"])
    torch.testing.assert_close(seen["in2"], seen["d3"] + seen["e2"])
    torch.testing.assert_close(seen["in1"], seen["d2"] + seen["e1"])
    torch.testing.assert_close(seen["in_final"], seen["d1"] + seen["x0"])
    assert seen["in_final"].shape == (1, 64, 16, 16)  # H/4 before the final block


@pytest.mark.parametrize(("kernel", "stride"), [(3, 2), (3, 1), (2, 2)])
def test_linknet_full_conv_scales_size_exactly(kernel: int, stride: int) -> None:
    conv = linknet_module._full_conv(4, 4, kernel, stride)
    assert conv(torch.zeros(1, 4, 5, 7)).shape == (1, 4, 5 * stride, 7 * stride)


def test_linknet_decoder_init_is_kaiming_fan_out() -> None:
    torch.manual_seed(0)
    block = LinkNet(num_classes=3).decoder4
    assert isinstance(block, DecoderBlock)
    for module in (m for m in block.modules() if isinstance(m, nn.Conv2d | nn.ConvTranspose2d)):
        k = module.kernel_size[0] * module.kernel_size[1]
        expected = (2.0 / (k * module.out_channels)) ** 0.5
        assert module.weight.std().item() == pytest.approx(expected, rel=0.05)


# --------------------------------------------------------------------------- RefineNet


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
    model = _meta_build(name, 21)
    assert count_params(model)[0] == trunk + refinement_params(21)
    assert count_params(model.backbone)[0] == trunk


def test_refinenet101_total_params() -> None:
    assert RESNET101_TRUNK + refinement_params(21) == 109_794_901  # as in the docstring


def test_refinenet_cascade_widths_and_block_counts() -> None:
    model = _meta_build("refinenet101", 21)
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
    model = _meta_build("refinenet50", 21).eval()
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


# --------------------------------------------------------------------------- PSPNet


def psp_params(trunk: int, k: int, aux: bool) -> int:
    ppm = len(BINS) * (2048 * 512 + 2 * 512)  # 1x1 conv, no bias, + BN, per level
    head = _conv_bn(4096, 512, 3, bias=False) + 512 * k + k
    aux_head = _conv_bn(1024, 256, 3, bias=False) + 256 * k + k
    return trunk + ppm + head + (aux_head if aux else 0)


@pytest.mark.parametrize(
    ("name", "trunk"), [("pspnet50", RESNET50_TRUNK), ("pspnet101", RESNET101_TRUNK)]
)
@pytest.mark.parametrize("aux", [True, False])
def test_pspnet_param_count_matches_hand_count(name: str, trunk: int, aux: bool) -> None:
    model = _meta_build(name, 21, aux_loss=aux)
    assert count_params(model)[0] == psp_params(trunk, 21, aux)
    assert psp_params(RESNET50_TRUNK, 21, True) == 48_957_802


def test_pspnet_backbone_is_dilated_to_output_stride_8() -> None:
    model = _meta_build("pspnet101", 21).eval()
    b = model.backbone
    for layer, dilation in ((b.layer3, 2), (b.layer4, 4)):
        assert all(blk.conv2.stride == (1, 1) for blk in layer)
        assert layer[0].downsample[0].stride == (1, 1)
        # torchvision keeps the first block of a dilated stage at the previous dilation.
        assert layer[0].conv2.dilation == (dilation // 2,) * 2
        assert all(blk.conv2.dilation == (dilation, dilation) for blk in layer[1:])
    assert len(b.layer3) == 23  # ResNet-101: 3, 4, 23, 3 bottlenecks
    shapes: dict[str, tuple[int, ...]] = {}
    handle = b.layer4.register_forward_hook(
        lambda m, a, o: shapes.__setitem__("c4", tuple(o.shape))
    )
    with torch.no_grad():
        out = model(torch.empty(1, 3, 64, 80, device="meta"))
    handle.remove()
    assert shapes["c4"] == (1, 2048, 8, 10)
    assert tuple(out.shape) == (1, 21, 64, 80)


def test_pyramid_pooling_levels_and_concat_order() -> None:
    torch.manual_seed(0)
    ppm = PyramidPooling(8).eval()
    assert [s[0].output_size for s in ppm.stages] == list(BINS)
    assert all(s[1].out_channels == 2 and s[1].bias is None for s in ppm.stages)
    x = torch.randn(1, 8, 12, 12)
    y = ppm(x)
    assert y.shape == (1, 16, 12, 12)
    torch.testing.assert_close(y[:, :8], x)  # the features come first, unchanged
    # Bin 1 is global average pooling: a constant map after upsampling.
    level1 = y[:, 8:10]
    assert torch.allclose(level1, level1[..., :1, :1].expand_as(level1))
    pooled = F.adaptive_avg_pool2d(x, 6)
    stage6 = ppm.stages[3]
    expected = F.interpolate(
        stage6[1:](pooled), size=(12, 12), mode="bilinear", align_corners=False
    )
    torch.testing.assert_close(y[:, 14:16], expected)


def test_pyramid_pooling_counted_by_both_counters() -> None:
    """Adaptive average pooling is known to fvcore (not 'unsupported'); MACs agree exactly."""
    ppm = PyramidPooling(16)
    report = count_complexity(ppm, (1, 16, 12, 12))
    assert report.macs == sum(16 * 4 * b * b for b in BINS)  # 1x1 convs on b x b maps
    assert report.crosscheck_macs == report.macs
    assert "adaptive_avg_pool2d" in report.non_mac_ops
    assert not any("adaptive" in op for op in report.unsupported_ops)


def test_pspnet_aux_head_only_in_train_mode() -> None:
    model = _meta_build("pspnet50", 21)
    calls = []
    handle = model.aux_head.register_forward_hook(lambda m, a, o: calls.append(tuple(o.shape)))
    x = torch.empty(2, 3, 32, 48, device="meta")
    try:
        model.train()
        out = model(x)
        assert set(out) == {"out", "aux"}
        assert tuple(out["aux"].shape) == tuple(out["out"].shape) == (2, 21, 32, 48)
        assert calls == [(2, 21, 4, 6)]  # on layer3, at 1/8
        model.eval()
        with torch.no_grad():
            assert tuple(model(x).shape) == (2, 21, 32, 48)
        assert len(calls) == 1  # not run in eval
    finally:
        handle.remove()
        model.eval()
    assert architectures.get_info("pspnet50").aux_weights == (("aux", 0.4),)
    no_aux = _meta_build("pspnet50", 21, aux_loss=False).train()
    assert no_aux.aux_head is None and tuple(no_aux(x).shape) == (2, 21, 32, 48)


def test_pspnet_classifier_init_keeps_initial_logits_small() -> None:
    torch.manual_seed(0)
    model = PSPNet(resnet50, num_classes=4)
    assert model.head[-1].weight.std().item() == pytest.approx(0.01, rel=0.1)
    assert model.head[0].weight.std().item() == pytest.approx((2 / (512 * 9)) ** 0.5, rel=0.02)
    model.train()  # batch statistics: a fresh model's eval-mode running stats are (0, 1)
    with torch.no_grad():
        out = model(torch.randn(2, 3, 32, 32))
    for key in ("out", "aux"):
        assert 0.001 < out[key].std().item() < 0.5


# --------------------------------------------------------------------------- registry, weights


@pytest.mark.parametrize(
    ("name", "divisor", "family"),
    [
        ("linknet", 32, "encoder-decoder"),
        ("refinenet101", 32, "encoder-decoder"),
        ("refinenet50", 32, "encoder-decoder"),
        ("pspnet50", 8, "pyramid"),
        ("pspnet101", 8, "pyramid"),
    ],
)
def test_arch_info(name: str, divisor: int, family: str) -> None:
    info = architectures.get_info(name)
    assert info.input_divisor == divisor and info.family == family and info.year == 2017
    if name == "linknet":
        # 21.2 GFLOPs counted as 2 per multiply-add: 10.6 GMACs, 3x640x360 (W x H).
        assert info.paper_gmacs == pytest.approx(10.6)
        assert info.paper_resolution == (360, 640) and info.paper_num_classes == 12
    else:
        assert info.paper_params is None and info.paper_gflops is None


@pytest.fixture
def no_download(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """An empty torch hub dir; any download attempt fails the test."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a builder tried to download")

    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", refuse)
    monkeypatch.setattr(torch.hub, "download_url_to_file", refuse)
    return tmp_path


@pytest.mark.parametrize(
    ("name", "weights"),
    [
        ("linknet", ResNet18_Weights.IMAGENET1K_V1),
        ("refinenet101", ResNet101_Weights.IMAGENET1K_V1),
        ("refinenet50", ResNet50_Weights.IMAGENET1K_V1),
        ("pspnet50", ResNet50_Weights.IMAGENET1K_V1),
        ("pspnet101", ResNet101_Weights.IMAGENET1K_V1),
    ],
)
def test_pretrained_backbone_missing_raises_with_path(
    name: str, weights, no_download: Path
) -> None:
    expected = no_download / "checkpoints" / os.path.basename(weights.url)
    with pytest.raises(FileNotFoundError) as info, torch.device("meta"):
        architectures.build(name, num_classes=3, pretrained_backbone=True)
    assert str(expected) in str(info.value)


def test_linknet_pretrained_backbone_loads_from_cache(no_download: Path) -> None:
    torch.manual_seed(5)
    state = resnet18(weights=None).state_dict()
    path = no_download / "checkpoints" / os.path.basename(ResNet18_Weights.IMAGENET1K_V1.url)
    path.parent.mkdir(parents=True)
    torch.save(state, path)
    model = architectures.build("linknet", num_classes=3, pretrained_backbone=True)
    loaded = model.backbone.state_dict()
    assert set(loaded) == {k for k in state if not k.startswith("fc.")}
    for key in ("conv1.weight", "layer4.1.bn2.running_var", "layer2.0.downsample.0.weight"):
        torch.testing.assert_close(loaded[key], state[key])


@pytest.mark.parametrize(
    ("name", "resnet"),
    [
        ("refinenet101", resnet101),
        ("refinenet50", resnet50),
        ("pspnet50", resnet50),
        ("pspnet101", resnet101),
    ],
)
def test_resnet_state_dict_keys_fit_the_trunk(name: str, resnet) -> None:
    """A torchvision ResNet state dict (fc included) loads strictly into the trunk."""
    with torch.device("meta"):
        state = resnet(weights=None).state_dict()
    model = _meta_build(name, 21)
    model.load_resnet_imagenet(state)  # strict: raises on any missing or unexpected key
    assert set(model.backbone.state_dict()) == {k for k in state if not k.startswith("fc.")}
