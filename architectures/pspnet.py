"""PSPNet-50 and PSPNet-101 (pyramid scene parsing on a dilated ResNet).

Paper: H. Zhao, J. Shi, X. Qi, X. Wang, J. Jia, "Pyramid Scene Parsing Network", CVPR 2017,
arXiv 1612.01105. Reference implementation consulted (for understanding only): the first
author's PyTorch re-implementation https://github.com/hszhao/semseg (``model/pspnet.py``); the
original is Caffe (https://github.com/hszhao/PSPNet). Our own code.

Structure (paper Sec. 3, Fig. 3):

* Dilated ResNet, output stride 8: torchvision ``resnet50`` / ``resnet101`` with
  ``replace_stride_with_dilation=[False, True, True]`` (stages 3 and 4 keep 1/8 resolution and
  use dilation 2 and 4).
* Pyramid pooling module on the 2048-channel 1/8 features: for each bin size 1, 2, 3, 6 an
  adaptive average pooling to ``bin x bin``, a 1x1 convolution 2048 -> 512 (1/N of the
  channels, N = 4 levels), batch norm, ReLU, and bilinear upsampling back to the feature size;
  the four maps are concatenated with the features (4096 channels).
* Head: 3x3 convolution 4096 -> 512, batch norm, ReLU, dropout 0.1, 1x1 classifier, bilinear
  upsampling x8 to the input.
* Deep supervision (Sec. 3.3 / 4): an auxiliary head on ResNet stage 4 (``layer3``, "res4b22"
  in ResNet-101): 3x3 convolution 1024 -> 256, batch norm, ReLU, dropout 0.1, 1x1 classifier,
  upsampled to the input. Its loss weighs 0.4 (``aux_weights``); it runs only in train mode and
  is dropped at evaluation (so measured compute excludes it).

Taken from the reference where the paper is silent: convolutions before batch norm have no bias;
the dropout is channel-wise (``Dropout2d``); the auxiliary head's layout and width (256).
New convolutions are initialised Kaiming-normal (fan-out, as torchvision's ResNet), batch norm
weight 1 / bias 0, except the two 1x1 classifiers: N(0, 0.01) with zero bias (as
mmsegmentation's decode heads; Kaiming fan-out is over only K output channels: at K = 4 a fresh
PSPNet-50 gave logits of std 7.9 and an initial loss of 7.8 at 64x64, against 0.11 and 1.39 =
ln 4 with N(0, 0.01), measured).

Deviations:

* The paper's ResNets use a "deep stem" (three 3x3 convolutions, 64-64-128 channels, in place
  of the 7x7 one) and put the downsampling stride of a bottleneck in its first 1x1 convolution;
  torchvision's ResNet has the standard 7x7 stem and the stride in the 3x3 convolution (v1.5).
  torchvision's dilation also keeps the first block of each dilated stage at the previous
  dilation (1 in stage 3, 2 in stage 4), where the reference dilates all of them.
* The reference works on sizes 8k + 1 (473, 713) with ``align_corners=True``; here inputs are
  padded to a multiple of 8 (``input_divisor``) and upsampling uses ``align_corners=False``.

Figures (measured; the paper reports none): at 21 classes (VOC) PSPNet-50 has 48,957,802
parameters (46,592,597 without the auxiliary head) and PSPNet-101 67,949,930 (65,584,725); at
150 classes (ADE20K) 49,057,132 and 68,049,260. Compute at the paper's 473x473 crop (padded to
480x480), 150 classes, eval mode (no auxiliary head), fvcore: PSPNet-50 155.9 GMACs, PSPNet-101
224.1 GMACs (batch norm, pooling and resampling not counted; the pyramid pooling's adaptive
average pooling is a known, non-MAC operator to both fvcore and FlopCounterMode).

``pretrained_backbone=True`` loads torchvision's ImageNet ResNet weights (stem differs from the
paper's) from the local torch hub cache only; it never downloads.
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
from architectures._resnet import (
    build_with_trunk_weights,
    init_new_layers_,
    load_imagenet_trunk,
    resnet_trunk,
    stem,
)

_PAPER = "1612.01105"
_REFERENCE = "https://github.com/hszhao/semseg"
BINS = (1, 2, 3, 6)
AUX_WEIGHT = 0.4
CLASSIFIER_INIT_STD = 0.01  # the 1x1 classifiers (as mmsegmentation's decode heads)


def _conv_bn_relu(in_channels: int, out_channels: int, kernel: int) -> list[nn.Module]:
    return [
        nn.Conv2d(in_channels, out_channels, kernel, padding=kernel // 2, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    ]


class PyramidPooling(nn.Module):
    """Pools to ``bins``, reduces each level by a 1x1 conv (+BN, ReLU), upsamples, concatenates."""

    def __init__(self, in_channels: int, bins: Sequence[int] = BINS) -> None:
        super().__init__()
        reduced = in_channels // len(bins)
        self.stages = nn.ModuleList(
            nn.Sequential(nn.AdaptiveAvgPool2d(b), *_conv_bn_relu(in_channels, reduced, 1))
            for b in bins
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[-2:]
        levels = [
            F.interpolate(stage(x), size=size, mode="bilinear", align_corners=False)
            for stage in self.stages
        ]  # each (N, C/4, h, w)
        return torch.cat([x, *levels], dim=1)  # (N, 2C, h, w)


def _head(in_channels: int, mid_channels: int, num_classes: int, dropout: float) -> nn.Sequential:
    return nn.Sequential(
        *_conv_bn_relu(in_channels, mid_channels, 3),
        nn.Dropout2d(dropout),
        nn.Conv2d(mid_channels, num_classes, 1),
    )


class PSPNet(nn.Module):
    """PSPNet on a dilated (output stride 8) torchvision ResNet-50/101."""

    def __init__(
        self,
        backbone_fn: Callable[..., ResNet],
        num_classes: int,
        aux_loss: bool = True,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        self.backbone = resnet_trunk(backbone_fn, dilation=(False, True, True))
        self.ppm = PyramidPooling(2048)
        self.head = _head(4096, 512, num_classes, dropout)
        self.aux_head = _head(1024, 256, num_classes, dropout) if aux_loss else None
        # A tuple, not a set: a set of modules iterates in id() order, which differs between
        # processes, and so would the order of the random draws below.
        classifiers = (self.head[-1], *((self.aux_head[-1],) if self.aux_head else ()))
        init_new_layers_(self, self.backbone, mode="fan_out", skip=classifiers)
        for m in classifiers:
            nn.init.normal_(m.weight, 0.0, CLASSIFIER_INIT_STD)
            nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor | dict[str, torch.Tensor]:
        size = x.shape[-2:]
        b = self.backbone
        x = b.layer2(b.layer1(stem(b, x)))  # (N, 512, H/8, W/8)
        c3 = b.layer3(x)  # (N, 1024, H/8, W/8), dilation 2
        c4 = b.layer4(c3)  # (N, 2048, H/8, W/8), dilation 4
        logits = self.head(self.ppm(c4))  # (N, K, H/8, W/8)
        out = F.interpolate(logits, size=size, mode="bilinear", align_corners=False)
        if self.training and self.aux_head is not None:
            aux = F.interpolate(
                self.aux_head(c3), size=size, mode="bilinear", align_corners=False
            )  # (N, K, H, W)
            return {"out": out, "aux": aux}
        return out  # (N, K, H, W)

    def load_resnet_imagenet(self, state: dict[str, torch.Tensor]) -> None:
        """Copy torchvision ResNet ImageNet weights into the trunk (fc dropped)."""
        load_imagenet_trunk(self.backbone, state)


def _build(
    backbone_fn: Callable[..., ResNet],
    weights: WeightsEnum,
    num_classes: int,
    pretrained_backbone: bool,
    aux_loss: bool,
) -> PSPNet:
    return build_with_trunk_weights(
        lambda: PSPNet(backbone_fn, num_classes, aux_loss=aux_loss), weights, pretrained_backbone
    )


_COMMON = dict(
    paper=_PAPER,
    year=2017,
    family="pyramid",
    reference=_REFERENCE,
    input_divisor=8,
    aux_weights=(("aux", AUX_WEIGHT),),
    notes="torchvision ResNet (7x7 stem, not the paper's deep stem); auxiliary head on layer3 "
    "in train mode only.",
)


@register(ArchInfo(name="pspnet50", title="PSPNet-50", **_COMMON))
def pspnet50(
    *, num_classes: int, pretrained_backbone: bool = False, aux_loss: bool = True
) -> nn.Module:
    """PSPNet on dilated ResNet-50; 48.96M parameters at 21 classes with the auxiliary head."""
    return _build(
        resnet50, ResNet50_Weights.IMAGENET1K_V1, num_classes, pretrained_backbone, aux_loss
    )


@register(ArchInfo(name="pspnet101", title="PSPNet-101", **_COMMON))
def pspnet101(
    *, num_classes: int, pretrained_backbone: bool = False, aux_loss: bool = True
) -> nn.Module:
    """PSPNet on dilated ResNet-101; 67.95M parameters at 21 classes with the auxiliary head."""
    return _build(
        resnet101, ResNet101_Weights.IMAGENET1K_V1, num_classes, pretrained_backbone, aux_loss
    )
