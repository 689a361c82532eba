"""SegFormer-B0: Mix Transformer (MiT-B0) encoder and all-MLP decoder.

Paper: E. Xie, W. Wang, Z. Yu, A. Anandkumar, J. M. Alvarez, P. Luo, "SegFormer: Simple and
Efficient Design for Semantic Segmentation with Transformers", NeurIPS 2021, arXiv 2105.15203.
Reference implementation consulted (for understanding only): https://github.com/NVlabs/SegFormer
(``mmseg/models/backbones/mix_transformer.py``, ``mmseg/models/decode_heads/segformer_head.py``,
``tools/get_flops.py``). Our own code.

Encoder (MiT-B0, the paper's Table 6): four stages at 1/4, 1/8, 1/16, 1/32 resolution with
embedding dims 32/64/160/256, 2 blocks each, 1/2/5/8 heads (head dim 32), spatial-reduction
ratios 8/4/2/1 and MLP expansion 4.

* Overlapping patch embedding: a 7x7 stride-4 convolution (padding 3) for stage 1 and 3x3
  stride-2 (padding 1) for the others, then LayerNorm.
* Efficient self-attention: queries from all N tokens; keys and values from the tokens reduced
  by a ``R x R`` stride-``R`` convolution + LayerNorm (when R > 1), so the attention matrix is
  ``N x N / R^2``. Written with explicit ``q @ k.transpose(-2, -1)``, softmax and ``attn @ v``
  so that both MAC counters (fvcore and ``FlopCounterMode``) see the attention products.
* Mix-FFN: Linear (C -> 4C), 3x3 depthwise convolution, GELU, Linear (4C -> C).
* Pre-norm residual blocks with stochastic depth (rate rising linearly from 0 to 0.1 over the 8
  blocks, train mode only) and a LayerNorm after each stage.

Decoder (all-MLP, 256 channels): per stage a Linear (C_i -> 256) at the stage's resolution,
bilinear upsampling to 1/4, concatenation (1024 ch), a 1x1 conv-BN-ReLU fusion (1024 -> 256),
dropout 0.1, a 1x1 classifier, and bilinear 4x upsampling to the input size.

Initialisation as the reference: in the encoder, truncated normal (std 0.02) for Linear weights,
zero biases, LayerNorm weight 1 / bias 0, normal(0, sqrt(2 / fan_out)) for convolutions; in the
decoder, PyTorch's default for the Linear layers, Kaiming-normal (fan-out) for the fusion conv,
BN weight 1 / bias 0 and normal(0, 0.01) for the classifier (mmseg's decode-head rule).

Figures (paper Table 1, ADE20K, 150 classes): 3.8M parameters, 8.4 GFLOPs at 512x512. Measured
(torch 2.14.1, fvcore 0.1.5): 3,752,694 parameters at 150 classes (3,319,392 in the encoder;
-1.2%) and 8.388 GMACs at 512x512 (-0.1%), of which 1.040 GMACs are the attention products
(QK^T and AV) and 7.348 the convolutions and linear layers. The paper's convention is therefore
``"macs"``: the reference counts with mmcv's ``get_model_complexity_info`` (one multiply-add =
one FLOP) and its ``tools/get_flops.py`` adds the attention products, ``2 * h * w * (h / R) *
(w / R) * C`` per block (QK^T plus AV), in the same unit; without them 7.35 would be 12.5% short,
and twice the MACs (16.8 G) is far from 8.4.

Deviations: no ImageNet-pretrained MiT weights (not a torchvision model, so no
``pretrained_backbone``); bilinear ``align_corners=False`` as the reference.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops import StochasticDepth

from architectures._registry import ArchInfo, register

_PAPER = "2105.15203"
_REFERENCE = "https://github.com/NVlabs/SegFormer"
LN_EPS = 1e-6  # the reference's block and stage norms


class OverlapPatchEmbed(nn.Module):
    """Strided convolution with overlapping windows, then LayerNorm over channels."""

    def __init__(self, in_channels: int, dim: int, kernel_size: int, stride: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(in_channels, dim, kernel_size, stride, padding=kernel_size // 2)
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, int, int]:
        x = self.proj(x)  # (N, C, H/s, W/s)
        _, _, h, w = x.shape
        return self.norm(x.flatten(2).transpose(1, 2)), h, w  # (N, h*w, C)


class EfficientSelfAttention(nn.Module):
    """Multi-head self-attention whose keys/values come from a ``R x R``-reduced token map."""

    def __init__(self, dim: int, num_heads: int, sr_ratio: int) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim {dim} is not divisible by num_heads {num_heads}.")
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.scale = self.head_dim**-0.5
        self.sr_ratio = sr_ratio
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(dim, 2 * dim)
        self.proj = nn.Linear(dim, dim)
        if sr_ratio > 1:
            self.sr = nn.Conv2d(dim, dim, sr_ratio, stride=sr_ratio)
            self.norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor, h: int, w: int) -> torch.Tensor:
        n, length, c = x.shape
        heads, d = self.num_heads, self.head_dim
        q = self.q(x).reshape(n, length, heads, d).transpose(1, 2)  # (N, heads, L, d)
        if self.sr_ratio > 1:
            kv_in = x.transpose(1, 2).reshape(n, c, h, w)
            kv_in = self.sr(kv_in).flatten(2).transpose(1, 2)  # (N, L / R^2, C)
            kv_in = self.norm(kv_in)
        else:
            kv_in = x
        kv = self.kv(kv_in).reshape(n, -1, 2, heads, d).permute(2, 0, 3, 1, 4)
        k, v = kv[0], kv[1]  # (N, heads, S, d)
        attn = (q @ k.transpose(-2, -1)) * self.scale  # (N, heads, L, S)
        attn = attn.softmax(dim=-1)
        out = (attn @ v).transpose(1, 2).reshape(n, length, c)  # (N, L, C)
        return self.proj(out)


class MixFFN(nn.Module):
    """Linear, 3x3 depthwise conv (positional information), GELU, Linear."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.dwconv = nn.Conv2d(hidden, hidden, 3, padding=1, groups=hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor, h: int, w: int) -> torch.Tensor:
        n, length, _ = x.shape
        x = self.fc1(x)  # (N, L, 4C)
        x = self.dwconv(x.transpose(1, 2).reshape(n, -1, h, w)).flatten(2).transpose(1, 2)
        return self.fc2(F.gelu(x))  # (N, L, C)


class Block(nn.Module):
    """Pre-norm transformer block: efficient attention and Mix-FFN, each residual."""

    def __init__(
        self, dim: int, num_heads: int, sr_ratio: int, mlp_ratio: int, drop_path: float
    ) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=LN_EPS)
        self.attn = EfficientSelfAttention(dim, num_heads, sr_ratio)
        self.norm2 = nn.LayerNorm(dim, eps=LN_EPS)
        self.mlp = MixFFN(dim, dim * mlp_ratio)
        self.drop_path = StochasticDepth(drop_path, "row")

    def forward(self, x: torch.Tensor, h: int, w: int) -> torch.Tensor:
        x = x + self.drop_path(self.attn(self.norm1(x), h, w))
        return x + self.drop_path(self.mlp(self.norm2(x), h, w))  # (N, L, C)


class MixTransformerStage(nn.Module):
    """Patch embedding, blocks, LayerNorm; returns the stage's feature map."""

    def __init__(
        self,
        in_channels: int,
        dim: int,
        *,
        patch_size: int,
        stride: int,
        depth: int,
        num_heads: int,
        sr_ratio: int,
        mlp_ratio: int,
        drop_paths: list[float],
    ) -> None:
        super().__init__()
        self.patch_embed = OverlapPatchEmbed(in_channels, dim, patch_size, stride)
        self.blocks = nn.ModuleList(
            Block(dim, num_heads, sr_ratio, mlp_ratio, drop_paths[i]) for i in range(depth)
        )
        self.norm = nn.LayerNorm(dim, eps=LN_EPS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens, h, w = self.patch_embed(x)  # (N, h*w, C)
        for block in self.blocks:
            tokens = block(tokens, h, w)
        tokens = self.norm(tokens)
        return tokens.transpose(1, 2).reshape(x.shape[0], -1, h, w)  # (N, C, h, w)


class MixTransformer(nn.Module):
    """MiT encoder: four stages, features at strides 4, 8, 16, 32."""

    def __init__(
        self,
        dims: tuple[int, ...] = (32, 64, 160, 256),
        depths: tuple[int, ...] = (2, 2, 2, 2),
        num_heads: tuple[int, ...] = (1, 2, 5, 8),
        sr_ratios: tuple[int, ...] = (8, 4, 2, 1),
        mlp_ratio: int = 4,
        drop_path_rate: float = 0.1,
    ) -> None:
        super().__init__()
        total = sum(depths)
        # Stochastic depth rises linearly from 0 over all blocks (plain floats: meta-safe).
        rates = [drop_path_rate * i / max(total - 1, 1) for i in range(total)]
        stages, in_channels, start = [], 3, 0
        for i, dim in enumerate(dims):
            stages.append(
                MixTransformerStage(
                    in_channels,
                    dim,
                    patch_size=7 if i == 0 else 3,
                    stride=4 if i == 0 else 2,
                    depth=depths[i],
                    num_heads=num_heads[i],
                    sr_ratio=sr_ratios[i],
                    mlp_ratio=mlp_ratio,
                    drop_paths=rates[start : start + depths[i]],
                )
            )
            in_channels, start = dim, start + depths[i]
        self.stages = nn.ModuleList(stages)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        features = []
        for stage in self.stages:
            x = stage(x)  # (N, C_i, H/s_i, W/s_i)
            features.append(x)
        return features


class AllMLPDecoder(nn.Module):
    """Per-stage Linear to ``dim``, upsample to 1/4, concat, 1x1 conv-BN-ReLU fuse, classify."""

    def __init__(
        self, in_dims: tuple[int, ...], num_classes: int, dim: int = 256, dropout: float = 0.1
    ) -> None:
        super().__init__()
        self.linears = nn.ModuleList(nn.Linear(c, dim) for c in in_dims)
        self.fuse = nn.Sequential(
            nn.Conv2d(dim * len(in_dims), dim, 1, bias=False),
            nn.BatchNorm2d(dim),
            nn.ReLU(inplace=True),
        )
        self.dropout = nn.Dropout2d(dropout)
        self.classifier = nn.Conv2d(dim, num_classes, 1)

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        size = features[0].shape[-2:]
        unified = []
        for linear, f in zip(self.linears, features, strict=True):
            n, _, h, w = f.shape
            f = linear(f.flatten(2).transpose(1, 2)).transpose(1, 2).reshape(n, -1, h, w)
            unified.append(F.interpolate(f, size=size, mode="bilinear", align_corners=False))
        x = self.fuse(torch.cat(unified[::-1], dim=1))  # (N, 256, H/4, W/4), order c4..c1
        return self.classifier(self.dropout(x))  # (N, K, H/4, W/4)


class SegFormer(nn.Module):
    """SegFormer: MiT encoder + all-MLP decoder, logits upsampled to the input size."""

    def __init__(self, num_classes: int, decoder_dim: int = 256) -> None:
        super().__init__()
        self.encoder = MixTransformer()
        self.decoder = AllMLPDecoder((32, 64, 160, 256), num_classes, decoder_dim)
        self.encoder.apply(_init_weights)
        # Decoder as the reference's head: Linear layers keep PyTorch's default, the fusion conv
        # is Kaiming (fan-out, ReLU), the classifier normal(0, 0.01) so the first logits are
        # small (the encoder rule, std sqrt(2 / K), would give logits of std ~8 for K = 4).
        fuse, classifier = self.decoder.fuse[0], self.decoder.classifier
        nn.init.kaiming_normal_(fuse.weight, mode="fan_out", nonlinearity="relu")
        nn.init.normal_(classifier.weight, std=0.01)
        nn.init.zeros_(classifier.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.decoder(self.encoder(x))  # (N, K, H/4, W/4)
        return F.interpolate(logits, size=x.shape[-2:], mode="bilinear", align_corners=False)


def _init_weights(m: nn.Module) -> None:
    if isinstance(m, nn.Linear):
        nn.init.trunc_normal_(m.weight, std=0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, nn.LayerNorm):
        nn.init.ones_(m.weight)
        nn.init.zeros_(m.bias)
    elif isinstance(m, nn.Conv2d):
        fan_out = m.kernel_size[0] * m.kernel_size[1] * m.out_channels // m.groups
        nn.init.normal_(m.weight, 0.0, math.sqrt(2.0 / fan_out))
        if m.bias is not None:
            nn.init.zeros_(m.bias)


@register(
    ArchInfo(
        name="segformer_b0",
        title="SegFormer-B0",
        paper=_PAPER,
        year=2021,
        family="transformer",
        reference=_REFERENCE,
        input_divisor=32,
        paper_params=3_800_000,
        paper_params_note="the paper's '3.8M' for B0 (Table 1, ADE20K, 150 classes)",
        paper_num_classes=150,
        paper_gflops=8.4,
        paper_resolution=(512, 512),
        paper_flops_convention="macs",
        notes="From scratch (no ImageNet MiT weights); attention written as explicit matmuls.",
    )
)
def segformer_b0(*, num_classes: int, pretrained_backbone: bool = False) -> nn.Module:
    """SegFormer-B0 (MiT-B0 + 256-channel all-MLP decoder; 3.75M params at 150 classes).

    ``pretrained_backbone`` is accepted for a uniform interface: ImageNet MiT-B0 weights are not
    a torchvision model, so ``True`` raises ``ValueError``.
    """
    if pretrained_backbone:
        raise ValueError(
            "segformer_b0 has no torchvision pretrained backbone (the ImageNet MiT-B0 weights are "
            "the authors' own). Build it with pretrained_backbone=False."
        )
    return SegFormer(num_classes)
