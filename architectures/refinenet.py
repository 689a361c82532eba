"""RefineNet-101 and RefineNet-50 (4-cascaded RefineNet on a ResNet).

Paper: G. Lin, A. Milan, C. Shen, I. Reid, "RefineNet: Multi-Path Refinement Networks for
High-Resolution Semantic Segmentation", CVPR 2017, arXiv 1611.06612. Reference implementation
consulted (for understanding only): https://github.com/guosheng/refinenet (MatConvNet;
``main/gen_network_refine_group.m``, ``gen_network_pool_block.m``, ``My_net_util.m``,
``gen_net_opts_model_type1.m``). Our own code.

Structure (paper Sec. 3, Fig. 2 and 3(c), "4-cascaded" RefineNet):

* Encoder: torchvision ``resnet101`` / ``resnet50`` (no average pool / fc); its four stages give
  features at 1/4, 1/8, 1/16 and 1/32 of the input (256, 512, 1024, 2048 channels).
* RefineNet-m (m = 4, 3, 2, 1) takes ResNet stage m and, except RefineNet-4, the output of
  RefineNet-(m+1):

  - adaptive convolution: the ResNet feature is brought to the block's width by a 3x3
    convolution (no bias) and every input path then goes through two residual convolution
    units (RCU: ReLU, 3x3 conv, ReLU, 3x3 conv, + identity; no batch norm);
  - multi-resolution fusion (only with two inputs; RefineNet-4 passes its single path
    unchanged): a 3x3 convolution (no bias) per path to the smaller width of the two, bilinear
    upsampling of the coarser path to the finer resolution, summation;
  - chained residual pooling: ReLU, then a chain of two pooling blocks, each a 5x5 max-pool
    with stride 1 followed by a 3x3 convolution (no bias); the ReLU output and every block's
    output are summed (Fig. 2(d));
  - output convolutions: one RCU.

* Widths: 512 for RefineNet-4, 256 for the others ("the filter number for each input path is set
  to 512 for RefineNet-4 and 256 for the remaining ones"). The 512-wide RefineNet-4 output hence
  passes through its two input RCUs at 512 in RefineNet-3 before the fusion conv reduces it.
* After RefineNet-1, two more RCUs, then the classifier (3x3 convolution with bias) at 1/4
  resolution, upsampled bilinearly to the input size.

Taken from the reference code where the paper is silent: the 3x3 kernel of the adaptation and
fusion convolutions; which convolutions have biases (only the first of each RCU, and the
classifier); two pooling blocks per chain (its default: ``chained_pool_num = 2``, pool then
conv as in the paper -- its "improved" variant convolves before pooling); dropout 0.5 on the
1024- and 2048-channel ResNet outputs and before the classifier; new convolutions initialised
N(0, 0.01) with zero biases. Kaiming's N(0, 2 / fan) roughly doubles the variance at every RCU
of this batch-norm-free refinement path (20 RCUs and 4 chained poolings in RefineNet-101): a
fresh RefineNet-101 in train mode gave logits of std 1.8e4 at 64x64 with Kaiming (fan-in)
against 0.3 with N(0, 0.01) (measured), so the reference's initialisation is kept.

Deviations:

* torchvision's ResNets put the stride of a bottleneck in its 3x3 convolution (ResNet v1.5);
  the paper's MatConvNet ResNets, converted from Caffe, put it in the first 1x1 convolution.
  Parameters are identical; MACs differ slightly.
* The reference fixes the ResNet's batch-norm statistics (it fine-tunes from ImageNet with
  batch size 1); here batch norm trains normally, so the harness can train from scratch.
* The classifier predicts at 1/4 resolution (as in the paper); the logits are upsampled
  bilinearly to the input, the harness contract. ``input_divisor`` 32 makes every fusion an
  exact 2x upsampling.

Figures (measured; the paper reports neither parameters nor compute): at 21 classes (VOC)
RefineNet-101 has 109,794,901 parameters (ResNet-101 trunk 42,500,160 + refinement 67,246,336
+ classifier 48,405) and RefineNet-50 90,802,773. Compute at 21 classes and 512x512 (a
VOC-size image, padded to a multiple of 32): RefineNet-101 236.3 GMACs, RefineNet-50 216.9
GMACs (fvcore; batch norm, pooling and resampling not counted). The refinement path
dominates: of RefineNet-50's 216.9 GMACs the ResNet-50 trunk is 21.4 and the fourteen 256-wide
3x3 convolutions at 1/4 resolution (stage-1 reduction, two RCUs, fusion, two pooling convs,
output RCU, two final RCUs) 135.3.

``pretrained_backbone=True`` loads torchvision's ImageNet ResNet weights (the paper starts from
ImageNet ResNets) from the local torch hub cache only; it never downloads.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models import (
    ResNet,
    ResNet50_Weights,
    ResNet101_Weights,
    WeightsEnum,
    resnet50,
    resnet101,
)

from architectures._registry import ArchInfo, register
from architectures._resnet import build_with_trunk_weights, load_imagenet_trunk, resnet_trunk, stem

_PAPER = "1611.06612"
_REFERENCE = "https://github.com/guosheng/refinenet"
RESNET_CHANNELS = (256, 512, 1024, 2048)  # ResNet stages 1-4 (1/4 ... 1/32)
REFINE_WIDTHS = (256, 256, 256, 512)  # RefineNet-1 ... RefineNet-4
CRP_BLOCKS = 2  # pooling blocks per chained residual pooling (paper Fig. 2(d), reference)
INIT_STD = 0.01  # the reference's initialisation of every new convolution


def conv3x3(in_channels: int, out_channels: int, bias: bool = False) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=bias)


class ResidualConvUnit(nn.Module):
    """RCU: ``x + conv(relu(conv(relu(x))))``, 3x3 convolutions, no batch norm."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = conv3x3(channels, channels, bias=True)
        self.conv2 = conv3x3(channels, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(F.relu(self.conv1(F.relu(x))))


class ChainedResidualPooling(nn.Module):
    """ReLU, then ``blocks`` chained (5x5 max-pool stride 1, 3x3 conv); all outputs summed."""

    def __init__(self, channels: int, blocks: int = CRP_BLOCKS) -> None:
        super().__init__()
        self.convs = nn.ModuleList(conv3x3(channels, channels) for _ in range(blocks))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(x)
        out, path = x, x
        for conv in self.convs:
            path = conv(F.max_pool2d(path, 5, stride=1, padding=2))
            out = out + path
        return out


class RefineNetBlock(nn.Module):
    """One RefineNet: per-path RCUs, multi-resolution fusion, chained pooling, output RCU.

    Inputs are ordered coarse to fine; the output has the finest input's resolution and
    ``min(in_channels)`` channels.
    """

    def __init__(self, in_channels: Sequence[int]) -> None:
        super().__init__()
        width = min(in_channels)
        self.adapt = nn.ModuleList(
            nn.Sequential(ResidualConvUnit(c), ResidualConvUnit(c)) for c in in_channels
        )
        # A single path goes through the fusion block unchanged (paper Sec. 3.2).
        self.fuse = (
            nn.ModuleList(conv3x3(c, width) for c in in_channels) if len(in_channels) > 1 else None
        )
        self.pool = ChainedResidualPooling(width)
        self.out_conv = ResidualConvUnit(width)

    def forward(self, *paths: torch.Tensor) -> torch.Tensor:
        paths = tuple(adapt(p) for adapt, p in zip(self.adapt, paths, strict=True))
        if self.fuse is None:
            x = paths[0]
        else:
            size = paths[-1].shape[-2:]
            x = self.fuse[-1](paths[-1])  # (N, C, h, w): the finest path
            for conv, p in zip(self.fuse[:-1], paths[:-1], strict=True):
                x = x + F.interpolate(conv(p), size=size, mode="bilinear", align_corners=False)
        return self.out_conv(self.pool(x))


class RefineNet(nn.Module):
    """4-cascaded RefineNet on a torchvision ResNet-50/101 trunk."""

    def __init__(self, backbone: nn.Module, num_classes: int, dropout: float = 0.5) -> None:
        super().__init__()
        self.backbone = backbone
        self.drop = nn.Dropout(dropout)  # element-wise, as MatConvNet's dropout layer
        # Adaptive-conv dimension reduction of ResNet stages 1-4 to the RefineNet widths.
        self.reduce = nn.ModuleList(
            conv3x3(c, w) for c, w in zip(RESNET_CHANNELS, REFINE_WIDTHS, strict=True)
        )
        self.refine4 = RefineNetBlock([REFINE_WIDTHS[3]])
        self.refine3 = RefineNetBlock([REFINE_WIDTHS[3], REFINE_WIDTHS[2]])
        self.refine2 = RefineNetBlock([REFINE_WIDTHS[2], REFINE_WIDTHS[1]])
        self.refine1 = RefineNetBlock([REFINE_WIDTHS[1], REFINE_WIDTHS[0]])
        self.final_rcus = nn.Sequential(
            ResidualConvUnit(REFINE_WIDTHS[0]), ResidualConvUnit(REFINE_WIDTHS[0])
        )
        self.classifier = conv3x3(REFINE_WIDTHS[0], num_classes, bias=True)
        for name, m in self.named_modules():
            if isinstance(m, nn.Conv2d) and not name.startswith("backbone"):
                nn.init.normal_(m.weight, 0.0, INIT_STD)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[-2:]
        b = self.backbone
        c1 = b.layer1(stem(b, x))  # (N, 256, H/4, W/4)
        c2 = b.layer2(c1)  # (N, 512, H/8, W/8)
        c3 = b.layer3(c2)  # (N, 1024, H/16, W/16)
        c4 = b.layer4(c3)  # (N, 2048, H/32, W/32)
        p1, p2 = self.reduce[0](c1), self.reduce[1](c2)  # (N, 256, H/4 | H/8, ...)
        p3 = self.reduce[2](self.drop(c3))  # (N, 256, H/16, W/16)
        p4 = self.reduce[3](self.drop(c4))  # (N, 512, H/32, W/32)
        r = self.refine4(p4)  # (N, 512, H/32, W/32)
        r = self.refine3(r, p3)  # (N, 256, H/16, W/16)
        r = self.refine2(r, p2)  # (N, 256, H/8, W/8)
        r = self.refine1(r, p1)  # (N, 256, H/4, W/4)
        logits = self.classifier(self.drop(self.final_rcus(r)))  # (N, K, H/4, W/4)
        return F.interpolate(logits, size=size, mode="bilinear", align_corners=False)

    def load_resnet_imagenet(self, state: dict[str, torch.Tensor]) -> None:
        """Copy torchvision ResNet ImageNet weights into the trunk (fc dropped)."""
        load_imagenet_trunk(self.backbone, state)


def _build(
    backbone_fn: Callable[..., ResNet],
    weights: WeightsEnum,
    num_classes: int,
    pretrained_backbone: bool,
) -> RefineNet:
    return build_with_trunk_weights(
        lambda: RefineNet(resnet_trunk(backbone_fn), num_classes), weights, pretrained_backbone
    )


_COMMON = dict(
    paper=_PAPER,
    year=2017,
    family="encoder-decoder",
    reference=_REFERENCE,
    input_divisor=32,
    notes="torchvision ResNet (stride in the 3x3 conv), trainable batch norm; logits upsampled "
    "from 1/4 to the input.",
)


@register(ArchInfo(name="refinenet101", title="RefineNet-101 (4-cascaded)", **_COMMON))
def refinenet101(*, num_classes: int, pretrained_backbone: bool = False) -> nn.Module:
    """4-cascaded RefineNet on ResNet-101; 109.79M parameters at 21 classes (measured)."""
    return _build(resnet101, ResNet101_Weights.IMAGENET1K_V1, num_classes, pretrained_backbone)


@register(ArchInfo(name="refinenet50", title="RefineNet-50 (4-cascaded)", **_COMMON))
def refinenet50(*, num_classes: int, pretrained_backbone: bool = False) -> nn.Module:
    """4-cascaded RefineNet on ResNet-50; 90.80M parameters at 21 classes (measured)."""
    return _build(resnet50, ResNet50_Weights.IMAGENET1K_V1, num_classes, pretrained_backbone)
