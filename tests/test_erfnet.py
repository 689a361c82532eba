"""Tests for ``erfnet``, ``bisenet_r18``, ``segformer_b0`` and ``icnet``.

ERFNet (DOI 10.1109/TITS.2017.2750080), BiSeNet (arXiv 1808.00897), SegFormer (arXiv 2105.15203),
ICNet (arXiv 1704.08545). Parameter counts are derived by hand from the layer shapes; layer
counts, dilations, strides and head configurations are checked against the papers' tables;
the blocks' arithmetic (downsampler concatenation, ARM/FFM gating, pyramid sum, CFF, efficient
attention) against direct computation; SegFormer's attention MACs against a hand count with both
counters. Everything runs on CPU at tiny sizes (or on the meta device); nothing downloads.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models import ResNet18_Weights, ResNet50_Weights, resnet18, resnet50

import architectures
from architectures.bisenet import AttentionRefinement, BiSeNet, FeatureFusion, SpatialPath
from architectures.erfnet import (
    ENCODER_DILATIONS,
    DownsamplerBlock,
    ERFNet,
    NonBottleneck1D,
    UpsamplerBlock,
)
from architectures.icnet import CascadeFeatureFusion, ICNet, PyramidPoolingSum
from architectures.segformer import EfficientSelfAttention, MixFFN, SegFormer
from bench.complexity import count_complexity, count_params


@pytest.fixture(scope="module", autouse=True)
def _one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _meta_params(name: str, num_classes: int, **options: object) -> int:
    with torch.device("meta"):
        return count_params(architectures.build(name, num_classes=num_classes, **options))[0]


def _bn(c: int) -> int:
    return 2 * c


def _conv(cin: int, cout: int, k: int | tuple[int, int], bias: bool) -> int:
    kh, kw = (k, k) if isinstance(k, int) else k
    return cin * cout * kh * kw + (cout if bias else 0)


@pytest.fixture
def no_download(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """An empty torch hub directory; any attempt to download fails the test."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a builder tried to download")

    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", refuse)
    monkeypatch.setattr(torch.hub, "download_url_to_file", refuse)
    return tmp_path


# --------------------------------------------------------------------------- ERFNet


def nb1d_params(c: int) -> int:
    """Non-bottleneck-1D: four factorised convs (3x1, 1x3, with bias) and two batch norms."""
    return 2 * (_conv(c, c, (3, 1), True) + _conv(c, c, (1, 3), True)) + 2 * _bn(c)


def erfnet_params(k: int) -> int:
    down = sum(_conv(i, o - i, 3, True) + _bn(o) for i, o in ((3, 16), (16, 64), (64, 128)))
    up = sum(_conv(i, o, 3, True) + _bn(o) for i, o in ((128, 64), (64, 16)))
    blocks = 7 * nb1d_params(64) + 8 * nb1d_params(128) + 2 * nb1d_params(16)
    return down + up + blocks + _conv(16, k, 2, True)


def test_erfnet_nb1d_param_count() -> None:
    assert nb1d_params(128) == 197_632
    assert count_params(NonBottleneck1D(128, 2))[0] == nb1d_params(128)


@pytest.mark.parametrize("k", [19, 20])
def test_erfnet_param_count_by_hand(k: int) -> None:
    total = _meta_params("erfnet", k)
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


def test_erfnet_output_stride_8_and_full_resolution() -> None:
    model = ERFNet(5).eval()
    x = torch.randn(1, 3, 32, 48)
    with torch.no_grad():
        assert model.encoder(x).shape == (1, 128, 4, 6)
        assert model(x).shape == (1, 5, 32, 48)


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


# --------------------------------------------------------------------------- BiSeNet

RESNET18_TRUNK = 11_176_512  # torchvision resnet18 without fc (11,689,512 - 513,000)


def bisenet_params(k: int, aux: bool) -> int:
    def cbr(cin: int, cout: int, kk: int) -> int:
        return _conv(cin, cout, kk, False) + _bn(cout)

    spatial = cbr(3, 64, 7) + 2 * cbr(64, 64, 3) + cbr(64, 128, 1)
    tail = cbr(512, 128, 1)
    arms = sum(cbr(c, 128, 3) + _conv(128, 128, 1, False) + _bn(128) for c in (512, 256))
    refines = 2 * cbr(128, 128, 3)
    ffm = cbr(256, 256, 1) + 2 * _conv(256, 256, 1, False)
    head = cbr(256, 64, 3) + _conv(64, k, 1, True)
    aux_heads = 2 * (cbr(128, 128, 3) + _conv(128, k, 1, True)) if aux else 0
    return RESNET18_TRUNK + spatial + tail + arms + refines + ffm + head + aux_heads


def test_bisenet_param_count_by_hand() -> None:
    with torch.device("meta"):
        tv = resnet18(weights=None)
    assert count_params(tv)[0] - 512 * 1000 - 1000 == RESNET18_TRUNK
    assert _meta_params("bisenet_r18", 19) == bisenet_params(19, aux=True) == 13_194_489
    assert _meta_params("bisenet_r18", 19, aux_heads=False) == bisenet_params(19, aux=False)


@pytest.fixture(scope="module")
def bisenet() -> BiSeNet:
    torch.manual_seed(0)
    return BiSeNet(3)


def test_bisenet_paths_resolution(bisenet: BiSeNet) -> None:
    """Spatial path at 1/8 (three stride-2 layers); context path at 1/8, 1/16, 1/32."""
    x = torch.randn(1, 3, 64, 96)
    sp = bisenet.spatial_path
    strides = [m[0].stride[0] for m in sp.layers]
    assert strides == [2, 2, 2, 1]
    b = bisenet.backbone
    with torch.no_grad():
        assert SpatialPath()(x).shape == (1, 128, 8, 12)
        f8 = b.layer2(b.layer1(b.maxpool(b.relu(b.bn1(b.conv1(x))))))
        f16 = b.layer3(f8)
        f32 = b.layer4(f16)
    assert (f8.shape, f16.shape, f32.shape) == (
        (1, 128, 8, 12),
        (1, 256, 4, 6),
        (1, 512, 2, 3),
    )
    assert all(m.dilation == (1, 1) for m in b.modules() if isinstance(m, nn.Conv2d))


def test_bisenet_aux_heads_train_only(bisenet: BiSeNet) -> None:
    x = torch.randn(2, 3, 64, 64)
    bisenet.train()
    try:
        out = bisenet(x)
    finally:
        bisenet.eval()
    assert isinstance(out, dict) and set(out) == {"out", "aux_32", "aux_16"}
    assert all(v.shape == (2, 3, 64, 64) for v in out.values())
    with torch.no_grad():
        ev = bisenet(x)
    assert isinstance(ev, torch.Tensor) and ev.shape == (2, 3, 64, 64)
    info = architectures.get_info("bisenet_r18")
    assert dict(info.aux_weights) == {"aux_32": 1.0, "aux_16": 1.0}  # paper: alpha = 1


def test_bisenet_arm_and_ffm_gating() -> None:
    torch.manual_seed(1)
    arm = AttentionRefinement(16, 8).eval()
    x = torch.randn(2, 16, 5, 5)
    with torch.no_grad():
        f = arm.conv(x)
        att = arm.attention(f)
        assert att.shape == (2, 8, 1, 1)
        torch.testing.assert_close(arm(x), f * att)
        ffm = FeatureFusion(16, 16).eval()
        a, b = torch.randn(2, 8, 5, 5), torch.randn(2, 8, 5, 5)
        g = ffm.conv(torch.cat([a, b], 1))
        torch.testing.assert_close(ffm(a, b), g * (1 + ffm.attention(g)))


def test_bisenet_pretrained(no_download: Path, bisenet: BiSeNet) -> None:
    expected = no_download / "checkpoints" / os.path.basename(ResNet18_Weights.IMAGENET1K_V1.url)
    with pytest.raises(FileNotFoundError) as info, torch.device("meta"):
        architectures.build("bisenet_r18", num_classes=3, pretrained_backbone=True)
    assert str(expected) in str(info.value)
    torch.manual_seed(2)
    state = resnet18(weights=None).state_dict()
    model = BiSeNet(3)
    model.load_resnet18_imagenet(state)
    assert torch.equal(model.backbone.layer4[1].conv2.weight, state["layer4.1.conv2.weight"])


# --------------------------------------------------------------------------- SegFormer

MIT_B0 = {"dims": (32, 64, 160, 256), "heads": (1, 2, 5, 8), "sr": (8, 4, 2, 1), "depths": (2,) * 4}


def mit_block_params(c: int, sr: int) -> int:
    ln = 2 * c
    attn = (c * c + c) + (2 * c * c + 2 * c) + (c * c + c)
    if sr > 1:
        attn += _conv(c, c, sr, True) + ln
    ffn = (4 * c * c + 4 * c) + (4 * c * 9 + 4 * c) + (4 * c * c + c)
    return 2 * ln + attn + ffn


def segformer_params(k: int) -> int:
    total, cin = 0, 3
    for i, (c, sr) in enumerate(zip(MIT_B0["dims"], MIT_B0["sr"], strict=True)):
        total += _conv(cin, c, 7 if i == 0 else 3, True) + 2 * c  # patch embed + its LN
        total += 2 * mit_block_params(c, sr) + 2 * c  # two blocks + the stage LN
        cin = c
    decoder = sum(c * 256 + 256 for c in MIT_B0["dims"])
    decoder += _conv(1024, 256, 1, False) + _bn(256) + _conv(256, k, 1, True)
    return total + decoder


def test_segformer_param_count_by_hand() -> None:
    total = _meta_params("segformer_b0", 150)
    assert total == segformer_params(150) == 3_752_694
    assert abs(total - 3_800_000) / 3_800_000 < 0.02  # the paper's "3.8M"


def test_segformer_mit_b0_config() -> None:
    model = SegFormer(4)
    stages = model.encoder.stages
    assert tuple(s.patch_embed.proj.out_channels for s in stages) == MIT_B0["dims"]
    assert tuple(len(s.blocks) for s in stages) == MIT_B0["depths"]
    assert tuple(s.blocks[0].attn.num_heads for s in stages) == MIT_B0["heads"]
    assert {s.blocks[0].attn.head_dim for s in stages} == {32}
    assert tuple(s.blocks[0].attn.sr_ratio for s in stages) == MIT_B0["sr"]
    assert [(s.patch_embed.proj.kernel_size[0], s.patch_embed.proj.stride[0]) for s in stages] == [
        (7, 4),
        (3, 2),
        (3, 2),
        (3, 2),
    ]
    ffn = stages[2].blocks[0].mlp
    assert ffn.fc1.out_features == 4 * 160 and ffn.dwconv.groups == 4 * 160
    rates = [b.drop_path.p for s in stages for b in s.blocks]
    torch.testing.assert_close(torch.tensor(rates), torch.linspace(0, 0.1, 8))
    assert model.decoder.fuse[0].in_channels == 1024 and model.decoder.classifier.in_channels == 256
    with torch.no_grad():
        feats = model.eval().encoder(torch.randn(1, 3, 64, 64))
    assert [tuple(f.shape[1:]) for f in feats] == [
        (32, 16, 16),
        (64, 8, 8),
        (160, 4, 4),
        (256, 2, 2),
    ]


class _TokensFromMap(nn.Module):
    """Runs a token module on ``(N, C, H, W)`` input (count_complexity takes image shapes)."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = module

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, _, h, w = x.shape
        return self.module(x.flatten(2).transpose(1, 2), h, w)


@pytest.mark.parametrize(("c", "heads", "sr"), [(64, 2, 4), (32, 1, 1)])
def test_segformer_attention_macs_are_counted(c: int, heads: int, sr: int) -> None:
    """Both counters include QK^T and AV: 2 * L * S * C MACs on top of the projections."""
    h = w = 16
    length, reduced = h * w, (h // sr) * (w // sr)
    projections = length * c * c + reduced * c * 2 * c + length * c * c  # q, kv, proj
    if sr > 1:
        projections += reduced * c * c * sr * sr  # the R x R stride-R reduction conv
    attention = 2 * length * reduced * c  # heads * L * S * head_dim, twice
    report = count_complexity(_TokensFromMap(EfficientSelfAttention(c, heads, sr)), (1, c, h, w))
    assert report.macs == projections + attention
    assert report.crosscheck_macs == projections + attention
    assert report.non_mac_ops.keys() <= {"layer_norm"}


def test_segformer_attention_matches_sdpa() -> None:
    torch.manual_seed(3)
    attn = EfficientSelfAttention(64, 2, 2).eval()
    x = torch.randn(2, 64, 64)  # 8x8 tokens
    with torch.no_grad():
        q = attn.q(x).reshape(2, 64, 2, 32).transpose(1, 2)
        kv_in = attn.norm(
            attn.sr(x.transpose(1, 2).reshape(2, 64, 8, 8)).flatten(2).transpose(1, 2)
        )
        k, v = attn.kv(kv_in).reshape(2, 16, 2, 2, 32).permute(2, 0, 3, 1, 4)
        ref = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(2, 64, 64)
        torch.testing.assert_close(attn(x, 8, 8), attn.proj(ref), rtol=1e-5, atol=1e-5)


def test_segformer_mix_ffn_mixes_neighbours() -> None:
    """The depthwise 3x3 conv makes a token's output depend on its spatial neighbours."""
    torch.manual_seed(4)
    ffn = MixFFN(8, 32).eval()
    x = torch.randn(1, 16, 8)  # 4x4 tokens
    y = x.clone()
    y[0, 5] += 1.0  # token (1, 1)
    with torch.no_grad():
        d = (ffn(x, 4, 4) - ffn(y, 4, 4)).abs().sum(-1).reshape(4, 4)
    assert (d[0:3, 0:3] > 0).all() and (d[3, :] == 0).all() and (d[:, 3] == 0).all()


def test_segformer_full_model_macs_include_attention() -> None:
    """At 64x64 the whole model's count contains every block's attention products."""
    model = SegFormer(4).eval()
    report = count_complexity(model, (1, 3, 64, 64))
    tokens = [(16 * 16, (16 // 8) ** 2, 32), (8 * 8, (8 // 4) ** 2, 64), (16, 4, 160), (4, 4, 256)]
    attention = sum(2 * 2 * length * s * c for length, s, c in tokens)  # 2 blocks per stage
    with torch.no_grad():
        for stage in model.encoder.stages:  # drop attention from the count by hand: stub it
            for block in stage.blocks:
                block.attn.forward = _projections_only(block.attn)  # type: ignore[method-assign]
        without = count_complexity(model, (1, 3, 64, 64))
    assert report.macs - without.macs == attention
    assert report.crosscheck_macs - without.crosscheck_macs == attention


def _projections_only(attn: EfficientSelfAttention):  # noqa: ANN202 - a stub forward
    """The attention module's linear work without QK^T and AV (mean of V instead)."""

    def forward(x: torch.Tensor, h: int, w: int) -> torch.Tensor:
        n, length, c = x.shape
        q = attn.q(x)
        kv_in = x
        if attn.sr_ratio > 1:
            kv_in = attn.norm(
                attn.sr(x.transpose(1, 2).reshape(n, c, h, w)).flatten(2).transpose(1, 2)
            )
        v = attn.kv(kv_in)[..., c:]  # (N, S, C); used, so that no tracer drops the kv product
        return attn.proj(q + v.mean(dim=1, keepdim=True))

    return forward


def test_segformer_starts_near_uniform() -> None:
    """The decoder's classifier is initialised small: the first loss is close to ln K."""
    torch.manual_seed(6)
    model = SegFormer(4).eval()
    with torch.no_grad():
        logits = model(torch.randn(2, 3, 64, 64))
    loss = F.cross_entropy(logits, torch.randint(0, 4, (2, 64, 64)))
    assert logits.std() < 0.5
    assert abs(loss.item() - torch.log(torch.tensor(4.0)).item()) < 0.1


def test_segformer_has_no_pretrained_backbone() -> None:
    with pytest.raises(ValueError, match="pretrained_backbone=False"):
        architectures.build("segformer_b0", num_classes=3, pretrained_backbone=True)


# --------------------------------------------------------------------------- ICNet

RESNET50_TRUNK = 23_508_032  # torchvision resnet50 without fc (25,557,032 - 2,049,000)


def icnet_params(k: int) -> int:
    def cbr(cin: int, cout: int, kk: int) -> int:
        return _conv(cin, cout, kk, False) + _bn(cout)

    sub1 = cbr(3, 32, 3) + cbr(32, 32, 3) + cbr(32, 64, 3)
    reduce = cbr(2048, 256, 1)
    cff16 = cbr(256, 128, 3) + cbr(512, 128, 1) + _conv(256, k, 1, True)
    cff8 = cbr(128, 128, 3) + cbr(64, 128, 1) + _conv(128, k, 1, True)
    return RESNET50_TRUNK + sub1 + reduce + cff16 + cff8 + _conv(128, k, 1, True)


def test_icnet_param_count_by_hand() -> None:
    with torch.device("meta"):
        tv = resnet50(weights=None)
    assert count_params(tv)[0] - 2048 * 1000 - 1000 == RESNET50_TRUNK
    assert _meta_params("icnet", 19) == icnet_params(19) == 24_588_505


@pytest.fixture(scope="module")
def icnet() -> ICNet:
    torch.manual_seed(0)
    return ICNet(3).eval()


def test_icnet_branch_resolutions_and_dilation(icnet: ICNet) -> None:
    """1/8 light branch, conv3_1 at 1/16, dilated trunk (2, 4) at 1/32, CFF at 1/16 and 1/8.

    torchvision gives the first block of a dilated stage the previous dilation (as
    mmsegmentation's ``contract_dilation``): layer3 1, 2, 2, ...; layer4 2, 4, 4.
    """
    b = icnet.backbone

    def dilations(layer: nn.Sequential) -> list[int]:
        return [block.conv2.dilation[0] for block in layer]

    assert dilations(b.layer3) == [1, 2, 2, 2, 2, 2]
    assert dilations(b.layer4) == [2, 4, 4]
    assert [block.conv2.stride[0] for block in (*b.layer3, *b.layer4)] == [1] * 9
    shapes: dict[str, tuple[int, ...]] = {}

    def keep(name: str):  # noqa: ANN202
        def hook(module: nn.Module, args: tuple, out: object) -> None:
            shapes[name] = tuple((out[0] if isinstance(out, tuple) else out).shape)

        return hook

    handles = [
        icnet.sub1.register_forward_hook(keep("sub1")),
        b.layer2[0].register_forward_hook(keep("conv3_1")),
        b.layer4.register_forward_hook(keep("conv5")),
        icnet.cff_16.register_forward_hook(keep("cff_16")),
        icnet.cff_8.register_forward_hook(keep("cff_8")),
    ]
    try:
        with torch.no_grad():
            out = icnet(torch.randn(1, 3, 64, 128))
    finally:
        for handle in handles:
            handle.remove()
    assert out.shape == (1, 3, 64, 128)
    assert shapes == {
        "sub1": (1, 64, 8, 16),
        "conv3_1": (1, 512, 4, 8),
        "conv5": (1, 2048, 2, 4),
        "cff_16": (1, 128, 4, 8),
        "cff_8": (1, 128, 8, 16),
    }


def test_icnet_guidance_train_only(icnet: ICNet) -> None:
    info = architectures.get_info("icnet")
    assert dict(info.aux_weights) == {"aux_16": 0.16, "aux_8": 0.4}
    icnet.train()
    try:
        out = icnet(torch.randn(2, 3, 64, 64))
    finally:
        icnet.eval()
    assert set(out) == {"out", "aux_16", "aux_8"}
    assert all(v.shape == (2, 3, 64, 64) for v in out.values())
    calls = []
    handle = icnet.cff_16.classifier.register_forward_hook(lambda *a: calls.append(1))
    try:
        with torch.no_grad():
            assert isinstance(icnet(torch.randn(1, 3, 64, 64)), torch.Tensor)
    finally:
        handle.remove()
    assert not calls, "a guidance classifier ran in eval mode"


def test_icnet_pyramid_sum_and_cff() -> None:
    x = torch.full((1, 2, 6, 6), 3.0)
    torch.testing.assert_close(PyramidPoolingSum()(x), 5 * x)  # input + 4 constant pools
    torch.manual_seed(5)
    cff = CascadeFeatureFusion(8, 4, 6, 3).eval()
    low, high = torch.randn(1, 8, 3, 5), torch.randn(1, 4, 6, 10)
    with torch.no_grad():
        fused, up = cff(low, high)
        torch.testing.assert_close(up, F.interpolate(low, size=(6, 10), mode="bilinear"))
        expected = F.relu(cff.bn_low(cff.conv_low(up)) + cff.bn_high(cff.conv_high(high)))
    torch.testing.assert_close(fused, expected)
    assert cff.conv_low.dilation == (2, 2) and cff.conv_high.kernel_size == (1, 1)


def test_icnet_pretrained(no_download: Path) -> None:
    expected = no_download / "checkpoints" / os.path.basename(ResNet50_Weights.IMAGENET1K_V1.url)
    with pytest.raises(FileNotFoundError) as info, torch.device("meta"):
        architectures.build("icnet", num_classes=3, pretrained_backbone=True)
    assert str(expected) in str(info.value)
    with torch.device("meta"):
        state = resnet50(weights=None).state_dict()
        model = ICNet(3)
    model.load_resnet50_imagenet(state)  # strict: every trunk key matches
