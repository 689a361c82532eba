"""Tests for ``architectures.segformer``: SegFormer-B0 (Xie et al., arXiv 2105.15203).

The parameter count is derived by hand from the layer shapes; the MiT-B0 configuration (widths,
heads, reduction ratios, depths, stochastic depth) against the paper's tables; the efficient
attention against ``F.scaled_dot_product_attention``, and its MACs (QK^T and AV included)
against a hand count with both counters; the Mix-FFN's depthwise mixing and the near-uniform
start on values. The shared contract is ``tests/test_architecture_contract.py``.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import architectures
from architectures.segformer import EfficientSelfAttention, MixFFN, SegFormer
from bench.complexity import count_complexity, count_params
from tests.factories import meta_build
from tests.hand_counts import conv_bn_params, conv_params

pytestmark = pytest.mark.usefixtures("one_thread_per_module")

MIT_B0 = {"dims": (32, 64, 160, 256), "heads": (1, 2, 5, 8), "sr": (8, 4, 2, 1), "depths": (2,) * 4}


def mit_block_params(c: int, sr: int) -> int:
    ln = 2 * c
    attn = (c * c + c) + (2 * c * c + 2 * c) + (c * c + c)
    if sr > 1:
        attn += conv_params(c, c, sr, bias=True) + ln
    ffn = (4 * c * c + 4 * c) + (4 * c * 9 + 4 * c) + (4 * c * c + c)
    return 2 * ln + attn + ffn


def segformer_params(k: int) -> int:
    total, cin = 0, 3
    for i, (c, sr) in enumerate(zip(MIT_B0["dims"], MIT_B0["sr"], strict=True)):
        total += conv_params(cin, c, 7 if i == 0 else 3, bias=True) + 2 * c  # patch embed + its LN
        total += 2 * mit_block_params(c, sr) + 2 * c  # two blocks + the stage LN
        cin = c
    decoder = sum(c * 256 + 256 for c in MIT_B0["dims"])
    decoder += conv_bn_params(1024, 256, 1) + conv_params(256, k, 1, bias=True)
    return total + decoder


def test_segformer_param_count_by_hand() -> None:
    total = count_params(meta_build("segformer_b0", 150))[0]
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
