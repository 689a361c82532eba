"""BiSeNet (v1) with a ResNet-18 context path.

Paper: C. Yu, J. Wang, C. Peng, C. Gao, G. Yu, N. Sang, "BiSeNet: Bilateral Segmentation Network
for Real-time Semantic Segmentation", ECCV 2018, arXiv 1808.00897.
Reference implementation consulted (for understanding only): the authors' TorchSeg,
https://github.com/ycszen/TorchSeg (the ResNet-18 BiSeNet ``network.py`` under ``model/bisenet``).
Our own code.

Structure:

* Spatial path (1/8 resolution): three conv-BN-ReLU layers of stride 2 (the paper). Channel
  widths are not in the paper; as the reference: 7x7 (3 -> 64), 3x3 (64 -> 64), 3x3 (64 -> 64),
  then a 1x1 conv-BN-ReLU (64 -> 128).
* Context path: torchvision ResNet-18 (``weights=None``; output stride 32, no dilation), with a
  global-average-pooling tail (pool, 1x1 conv-BN-ReLU 512 -> 128, broadcast back). An attention
  refinement module (ARM) refines the 32x (512 ch) and the 16x (256 ch) features: a 3x3
  conv-BN-ReLU to 128 channels (reference; the paper's ARM has no such conv and the channel
  counts would not match without it), then the paper's channel attention (global pool, 1x1 conv,
  BN, sigmoid, multiply). Top-down: ``arm32 + tail`` is upsampled 2x and refined by a 3x3
  conv-BN-ReLU (1/16), ``arm16 +`` that is upsampled 2x and refined again (1/8).
* Feature fusion module (FFM): concatenation of both paths (256 ch), 1x1 conv-BN-ReLU
  (reference; the paper's figure draws an unspecified conv+BN+ReLU), then the paper's attention
  (pool, 1x1 conv, ReLU, 1x1 conv, sigmoid) applied as ``f + f * attention``.
* Main head: 3x3 conv-BN-ReLU (256 -> 64), 1x1 conv to K classes, bilinear 8x upsampling.
* Two auxiliary heads supervise the context path (paper: "auxiliary loss functions to supervise
  the output of the Context Path", weight alpha = 1): one on the refined output of the 32x stage
  (1/16 resolution, key ``aux_32``) and one on that of the 16x stage (1/8, key ``aux_16``); keys
  name the backbone stage whose ARM they supervise. Each is a 3x3 conv-BN-ReLU (128 -> 128) and a
  1x1 conv to K, upsampled to the input size. They run only in train mode.

Initialisation: torchvision's ResNet-18 initialisation for the backbone; Kaiming-normal
(fan-in, ReLU) for the other convolutions, zero conv biases, BN weight 1 / bias 0.

Measured (no paper figure is declared; torch 2.14.1, fvcore 0.1.5): 13,188,352 + 323 K
parameters with the auxiliary heads (13,194,489 at 19 classes; 12,894,163 built with
``aux_heads=False``), 11,176,512 of them in ResNet-18 without its classifier. MACs (eval, the
auxiliary heads do not run): 103.72 GMACs at 1024x2048 and 58.34 at 768x1536 (the paper's
Cityscapes training crop is 1024x1024), 19 classes.

Deviations: ``align_corners=False`` bilinear upsampling everywhere (the reference uses True);
torchvision's 7x7 ResNet-18 stem (the reference's own ResNet-18 has a deep 3-conv stem).
``pretrained_backbone=True`` loads torchvision's ImageNet ResNet-18 from the local torch hub
cache only (never downloads).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models import ResNet18_Weights, resnet18

from architectures._pretrained import load_local_state_dict
from architectures._registry import ArchInfo, register
from architectures._resnet import init_new_layers_, load_imagenet_trunk, resnet_trunk, stem

_PAPER = "1808.00897"
_REFERENCE = "https://github.com/ycszen/TorchSeg"
CONTEXT_CHANNELS = 128


def conv_bn_relu(
    in_channels: int, out_channels: int, kernel_size: int, stride: int = 1
) -> nn.Sequential:
    """Convolution (no bias, 'same' padding) + batch norm + ReLU."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size, stride, kernel_size // 2, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


def _upsample(x: torch.Tensor, size: torch.Size | tuple[int, int]) -> torch.Tensor:
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


class SpatialPath(nn.Module):
    """Three stride-2 conv-BN-ReLU layers and a 1x1 projection: 1/8 resolution, 128 channels."""

    def __init__(self, out_channels: int = CONTEXT_CHANNELS) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            conv_bn_relu(3, 64, 7, stride=2),
            conv_bn_relu(64, 64, 3, stride=2),
            conv_bn_relu(64, 64, 3, stride=2),
            conv_bn_relu(64, out_channels, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)  # (N, 128, H/8, W/8)


class AttentionRefinement(nn.Module):
    """ARM: 3x3 conv-BN-ReLU, then channel attention (pool, 1x1 conv, BN, sigmoid) as a gate."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = conv_bn_relu(in_channels, out_channels, 3)
        self.attention = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            nn.Conv2d(out_channels, out_channels, 1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)  # (N, C, h, w)
        return x * self.attention(x)  # gate (N, C, 1, 1)


class FeatureFusion(nn.Module):
    """FFM: concat, 1x1 conv-BN-ReLU, SE-style attention applied as ``f + f * a``."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = conv_bn_relu(in_channels, out_channels, 1)
        self.attention = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            nn.Conv2d(out_channels, out_channels, 1, bias=False),
            nn.ReLU(inplace=True),
            nn.Conv2d(out_channels, out_channels, 1, bias=False),
            nn.Sigmoid(),
        )

    def forward(self, spatial: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        f = self.conv(torch.cat([spatial, context], dim=1))  # (N, 256, H/8, W/8)
        return f + f * self.attention(f)


class SegHead(nn.Module):
    """3x3 conv-BN-ReLU and a 1x1 classifier."""

    def __init__(self, in_channels: int, mid_channels: int, num_classes: int) -> None:
        super().__init__()
        self.conv = conv_bn_relu(in_channels, mid_channels, 3)
        self.cls = nn.Conv2d(mid_channels, num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.cls(self.conv(x))


class BiSeNet(nn.Module):
    """BiSeNet v1: spatial path + ResNet-18 context path with ARMs, fused by the FFM."""

    def __init__(self, num_classes: int, aux_heads: bool = True) -> None:
        super().__init__()
        c = CONTEXT_CHANNELS
        self.spatial_path = SpatialPath(c)
        self.backbone = resnet_trunk(resnet18)
        self.global_context = nn.Sequential(nn.AdaptiveAvgPool2d(1), conv_bn_relu(512, c, 1))
        self.arm32 = AttentionRefinement(512, c)
        self.arm16 = AttentionRefinement(256, c)
        self.refine32 = conv_bn_relu(c, c, 3)
        self.refine16 = conv_bn_relu(c, c, 3)
        self.ffm = FeatureFusion(2 * c, 2 * c)
        self.head = SegHead(2 * c, 64, num_classes)
        self.aux_heads = aux_heads
        if aux_heads:
            self.aux32 = SegHead(c, c, num_classes)
            self.aux16 = SegHead(c, c, num_classes)
        init_new_layers_(self, self.backbone, mode="fan_in")

    def forward(self, x: torch.Tensor) -> torch.Tensor | dict[str, torch.Tensor]:
        size = x.shape[-2:]
        spatial = self.spatial_path(x)  # (N, 128, H/8, W/8)
        b = self.backbone
        f8 = b.layer2(b.layer1(stem(b, x)))  # (N, 128, H/8, W/8)
        f16 = b.layer3(f8)  # (N, 256, H/16, W/16)
        f32 = b.layer4(f16)  # (N, 512, H/32, W/32)
        tail = self.global_context(f32)  # (N, 128, 1, 1), broadcast in the sum
        ctx16 = self.refine32(_upsample(self.arm32(f32) + tail, f16.shape[-2:]))  # (N,128,H/16,.)
        ctx8 = self.refine16(_upsample(self.arm16(f16) + ctx16, f8.shape[-2:]))  # (N,128,H/8,.)
        fused = self.ffm(spatial, ctx8)  # (N, 256, H/8, W/8)
        out = _upsample(self.head(fused), size)  # (N, K, H, W)
        if not (self.training and self.aux_heads):
            return out
        return {
            "out": out,
            "aux_32": _upsample(self.aux32(ctx16), size),
            "aux_16": _upsample(self.aux16(ctx8), size),
        }

    def load_resnet18_imagenet(self, state: dict[str, torch.Tensor]) -> None:
        """Copies torchvision ResNet-18 ImageNet weights (all but ``fc``) into the context path."""
        load_imagenet_trunk(self.backbone, state)


@register(
    ArchInfo(
        name="bisenet_r18",
        title="BiSeNet (ResNet-18)",
        paper=_PAPER,
        year=2018,
        family="real-time",
        reference=_REFERENCE,
        input_divisor=32,
        aux_weights=(("aux_32", 1.0), ("aux_16", 1.0)),
        notes=(
            "Channel widths of the spatial path, ARM 3x3 conv and heads from the authors' "
            "TorchSeg; torchvision ResNet-18 (7x7 stem); align_corners=False."
        ),
    )
)
def bisenet_r18(
    *, num_classes: int, pretrained_backbone: bool = False, aux_heads: bool = True
) -> nn.Module:
    """BiSeNet v1 with a ResNet-18 context path (13.19M params at 19 classes, auxiliary heads
    included; 12.89M without). ``aux_heads=False`` builds it without the training-only heads."""
    model = BiSeNet(num_classes, aux_heads=aux_heads)
    if pretrained_backbone:
        model.load_resnet18_imagenet(load_local_state_dict(ResNet18_Weights.IMAGENET1K_V1))
    return model
