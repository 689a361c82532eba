"""DeepLabV3+ (ResNet-101 and ResNet-50 backbones, output stride 16).

Paper: L.-C. Chen, Y. Zhu, G. Papandreou, F. Schroff, H. Adam, "Encoder-Decoder with Atrous
Separable Convolution for Semantic Image Segmentation", ECCV 2018, arXiv 1802.02611.
Reference implementation consulted (for understanding only): the authors' TensorFlow code,
https://github.com/tensorflow/models/tree/master/research/deeplab (``model.py``:
``_extract_features`` for ASPP, ``refine_by_decoder`` for the decoder). Our own code.

Structure (the paper's ResNet-101 variant, Sec. 3.1-3.2 and Fig. 2):

* Encoder: torchvision ``resnet101`` / ``resnet50`` (``weights=None``) at output stride 16, i.e.
  ``replace_stride_with_dilation=[False, False, True]`` (layer4 dilated by 2, no stride); the
  classifier (avgpool + fc) is dropped.
* ASPP on layer4 (2048 channels, stride 16): a 1x1 convolution, three 3x3 atrous convolutions
  with rates 6, 12 and 18, and image pooling (global average pool, 1x1 convolution, bilinear
  upsampling back), each 256 channels with batch norm and ReLU; the 1280 concatenated channels
  are projected to 256 by a 1x1 convolution (batch norm, ReLU), followed by dropout 0.1 in
  training (the reference's ``keep_prob=0.9``).
* Decoder: the low-level features (layer1 output, 256 channels, stride 4) are reduced to 48
  channels by a 1x1 convolution (batch norm, ReLU) and concatenated with the ASPP output
  upsampled 4x (bilinear); two 3x3 convolutions of 256 channels (batch norm, ReLU) refine the
  304 channels; a 1x1 classifier and a bilinear 4x upsampling give the logits.

Deviations and choices:

* Regular (not depthwise-separable) convolutions in ASPP and decoder: the paper's separable
  variant belongs to the modified Xception backbone; for ResNet-101 the reference uses plain
  ``slim.conv2d`` unless ``aspp_with_separable_conv``/``decoder_use_separable_conv`` are set.
* Bilinear resizing with ``align_corners=False`` (PyTorch's default); the TF reference uses
  ``align_corners=True`` with odd crop sizes (513). With inputs that are multiples of 16 (the
  harness pads to ``input_divisor=16``) every resize is an exact 4x.
* Initialisation: torchvision's ResNet initialisation (Kaiming normal, fan-out; batch norm
  weight 1, bias 0); the head's convolutions Kaiming normal (fan-out, ReLU) as well; the
  classifier weight normal with std 0.01 and bias 0, as the reference's logits layer.
* No auxiliary loss (the paper uses none).

No paper figure is declared (the issue asks for measured values). Measured here (torch 2.14.1,
torchvision 0.29.1) with 21 classes: ``deeplabv3plus_r101`` 59,344,309 parameters,
``deeplabv3plus_r50`` 40,352,181; the 19-class Cityscapes heads have 514 fewer (2 x 257).
Multiply-adds at 513x513 (the paper's VOC crop; the harness pads it to 528x528), 21 classes,
fvcore = FlopCounterMode: R101 94.243 GMACs, R50 73.617 GMACs (convolutions only; batch norm and
resizing are not counted).

``pretrained_backbone=True`` loads torchvision's ImageNet ResNet weights (``IMAGENET1K_V1``) from
the local torch hub cache only (see ``architectures._pretrained``); nothing is downloaded.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models import ResNet50_Weights, ResNet101_Weights, resnet50, resnet101

from architectures._pretrained import load_local_state_dict
from architectures._registry import ArchInfo, register
from architectures._resnet import init_new_layers_, load_imagenet_trunk, resnet_trunk

_PAPER = "1802.02611"
_REFERENCE = "https://github.com/tensorflow/models/tree/master/research/deeplab"
ASPP_RATES = (6, 12, 18)


def _conv_bn_relu(in_ch: int, out_ch: int, kernel: int, dilation: int = 1) -> nn.Sequential:
    pad = dilation * (kernel // 2)
    return nn.Sequential(
        nn.Conv2d(in_ch, out_ch, kernel, padding=pad, dilation=dilation, bias=False),
        nn.BatchNorm2d(out_ch),
        nn.ReLU(inplace=True),
    )


class ASPP(nn.Module):
    """Atrous spatial pyramid pooling: 1x1, three 3x3 atrous branches and image pooling."""

    def __init__(
        self,
        in_ch: int,
        out_ch: int = 256,
        rates: tuple[int, ...] = ASPP_RATES,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        self.branches = nn.ModuleList(
            [_conv_bn_relu(in_ch, out_ch, 1)]
            + [_conv_bn_relu(in_ch, out_ch, 3, dilation=r) for r in rates]
        )
        self.image_pool = _conv_bn_relu(in_ch, out_ch, 1)  # applied to the 1x1 pooled map
        self.project = _conv_bn_relu(out_ch * (len(rates) + 2), out_ch, 1)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[-2:]
        feats = [branch(x) for branch in self.branches]  # 4 x (N, 256, H/16, W/16)
        pooled = self.image_pool(F.adaptive_avg_pool2d(x, 1))  # (N, 256, 1, 1)
        feats.append(F.interpolate(pooled, size=size, mode="bilinear", align_corners=False))
        return self.dropout(self.project(torch.cat(feats, dim=1)))  # (N, 256, H/16, W/16)


class DeepLabV3Plus(nn.Module):
    """DeepLabV3+ with a torchvision ResNet encoder at output stride 16."""

    def __init__(
        self, backbone: nn.Module, num_classes: int, low_ch: int = 256, high_ch: int = 2048
    ) -> None:
        super().__init__()
        self.stem = nn.Sequential(backbone.conv1, backbone.bn1, backbone.relu, backbone.maxpool)
        self.layer1 = backbone.layer1
        self.layer2 = backbone.layer2
        self.layer3 = backbone.layer3
        self.layer4 = backbone.layer4
        self.aspp = ASPP(high_ch)
        self.low_proj = _conv_bn_relu(low_ch, 48, 1)
        self.decoder = nn.Sequential(_conv_bn_relu(256 + 48, 256, 3), _conv_bn_relu(256, 256, 3))
        self.classifier = nn.Conv2d(256, num_classes, 1)
        init_new_layers_(self, backbone, mode="fan_out", skip=(self.classifier,))
        nn.init.normal_(self.classifier.weight, std=0.01)
        nn.init.zeros_(self.classifier.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[-2:]
        low = self.layer1(self.stem(x))  # (N, 256, H/4, W/4)
        high = self.layer4(self.layer3(self.layer2(low)))  # (N, 2048, H/16, W/16)
        high = self.aspp(high)  # (N, 256, H/16, W/16)
        high = F.interpolate(high, size=low.shape[-2:], mode="bilinear", align_corners=False)
        y = torch.cat([high, self.low_proj(low)], dim=1)  # (N, 304, H/4, W/4)
        y = self.classifier(self.decoder(y))  # (N, K, H/4, W/4)
        return F.interpolate(y, size=size, mode="bilinear", align_corners=False)  # (N, K, H, W)


def _build(depth: int, num_classes: int, pretrained_backbone: bool) -> DeepLabV3Plus:
    make, weights = (resnet101, ResNet101_Weights) if depth == 101 else (resnet50, ResNet50_Weights)
    backbone = resnet_trunk(make, dilation=(False, False, True))
    if pretrained_backbone:
        load_imagenet_trunk(backbone, load_local_state_dict(weights.IMAGENET1K_V1))
    return DeepLabV3Plus(backbone, num_classes)


_COMMON = dict(
    paper=_PAPER,
    year=2018,
    family="deeplab",
    reference=_REFERENCE,
    input_divisor=16,
    notes="Output stride 16; regular (not separable) convs in ASPP/decoder, as the reference "
    "does for ResNet; ASPP dropout 0.1 as the reference.",
)


@register(ArchInfo(name="deeplabv3plus_r101", title="DeepLabV3+ (ResNet-101)", **_COMMON))
def deeplabv3plus_r101(*, num_classes: int, pretrained_backbone: bool = False) -> nn.Module:
    """DeepLabV3+ on ResNet-101 at output stride 16 (the paper's ResNet-101 model)."""
    return _build(101, num_classes, pretrained_backbone)


@register(ArchInfo(name="deeplabv3plus_r50", title="DeepLabV3+ (ResNet-50)", **_COMMON))
def deeplabv3plus_r50(*, num_classes: int, pretrained_backbone: bool = False) -> nn.Module:
    """DeepLabV3+ on ResNet-50 at output stride 16 (same head as the ResNet-101 model)."""
    return _build(50, num_classes, pretrained_backbone)
