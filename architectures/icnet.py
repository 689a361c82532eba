"""ICNet: image cascade network.

Paper: H. Zhao, X. Qi, X. Shen, J. Shi, J. Jia, "ICNet for Real-Time Semantic Segmentation on
High-Resolution Images", ECCV 2018, arXiv 1704.08545.
Reference implementations consulted (for understanding only): the authors' Caffe model,
https://github.com/hszhao/ICNet (its prototxt network definitions), and the training
configuration of https://github.com/hellochick/ICNet-tensorflow. Our own code.

Structure (paper Fig. 2), three branches:

* High resolution (full input): a light CNN of three 3x3 stride-2 conv-BN-ReLU layers
  (3 -> 32 -> 32 -> 64 channels, as the Caffe model), 1/8 resolution.
* Medium resolution (input downsampled 2x, bilinear): the ResNet-50 trunk up to the first block
  of its third stage (``conv3_1``, torchvision ``layer2[0]``), 512 channels at 1/16.
* Low resolution: the ``conv3_1`` features downsampled 2x (1/32), then the rest of the trunk,
  ``layer2[1:]``, ``layer3`` and ``layer4`` dilated by 2 and 4 (output stride 8 relative to
  their input, as PSPNet), and ICNet's pyramid pooling: average pools to 1x1, 2x2, 3x3 and 6x6
  bins, upsampled and *summed* with the features (no per-bin convolutions), then a 1x1
  conv-BN-ReLU to 256 channels. As in the Caffe model, the 1/4-resolution branch therefore shares
  both the weights and the computation of the first layers with the 1/2 branch (it continues
  from ``conv3_1`` instead of running the first layers again on a 1/4-size image).
* Cascade feature fusion (CFF) units: the low-resolution input is upsampled 2x and goes through
  a 3x3 convolution of dilation 2 + BN, the high-resolution input through a 1x1 convolution + BN
  (both 128 channels), summed, ReLU. CFF(1/32, 1/16) and then CFF(1/16, 1/8).
* Output: upsampled 2x to 1/4 resolution, a 1x1 classifier, then bilinear 4x to the input size
  (the paper uses the final 4x upsampling at test time only; here the main loss is on it too).
* Cascade label guidance (train mode only): a 1x1 classifier on the upsampled low-resolution
  input of each CFF, at 1/16 (key ``aux_16``) and 1/8 (key ``aux_8``), with loss weights 0.16
  and 0.4 relative to 1.0 for the main output. These weights are those of the
  ICNet-tensorflow training configuration (``LAMBDA1 * sub4_loss + LAMBDA2 * sub24_loss +
  LAMBDA3 * sub124_loss``, 0.16 / 0.4 / 1.0), also given in REFERENCE.md; the paper's own
  text could not be re-checked offline, and mmsegmentation's ICNet config uses 0.4 for both
  auxiliary heads.

Trunk: torchvision ResNet-50 (``weights=None``, ``replace_stride_with_dilation=[False, True,
True]``). Deviations from the paper's PSPNet50 trunk, both stated here on purpose:

* torchvision's 7x7 stem instead of PSPNet's three 3x3 convolutions (keeps torchvision's
  ImageNet weights usable, ``pretrained_backbone=True``);
* full width: the released ICNet halves every trunk width (the paper's model compression,
  conv5 output 1024 channels); this entry keeps ResNet-50's widths (2048), so it has more
  parameters and MACs than the paper's compressed model;
* the auxiliary logits are upsampled to the input size (harness contract) instead of
  downsampling the labels to 1/16 and 1/8.

Initialisation: torchvision's ResNet-50 initialisation for the trunk; Kaiming-normal (fan-in,
ReLU) for the other convolutions, zero biases, BN weight 1 / bias 0.

Measured (no paper figure is declared; torch 2.14.1, fvcore 0.1.5): 24,578,720 + 515 K
parameters (24,588,505 at 19 classes), of which 23,508,032 in the ResNet-50 trunk and 386 K
in the two guidance classifiers; 70.62 GMACs at 1024x2048, 19 classes, eval mode. The full-width
trunk is most of both figures: the paper's compressed (half-width) model is much lighter.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models import ResNet50_Weights, resnet50

from architectures._pretrained import load_local_state_dict
from architectures._registry import ArchInfo, register
from architectures._resnet import init_new_layers_, load_imagenet_trunk, resnet_trunk, stem

_PAPER = "1704.08545"
_REFERENCE = "https://github.com/hszhao/ICNet"
PYRAMID_BINS = (1, 2, 3, 6)
CFF_CHANNELS = 128


def _resize(x: torch.Tensor, size: torch.Size | tuple[int, int]) -> torch.Tensor:
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


def conv_bn_relu(
    in_channels: int, out_channels: int, kernel_size: int, stride: int = 1
) -> nn.Sequential:
    """Convolution (no bias, 'same' padding) + batch norm + ReLU."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size, stride, kernel_size // 2, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


class PyramidPoolingSum(nn.Module):
    """ICNet's pyramid pooling: average pools over ``bins`` upsampled and added to the input."""

    def __init__(self, bins: tuple[int, ...] = PYRAMID_BINS) -> None:
        super().__init__()
        self.bins = bins

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[-2:]
        out = x
        for b in self.bins:
            out = out + _resize(F.adaptive_avg_pool2d(x, b), size)
        return out  # (N, C, h, w)


class CascadeFeatureFusion(nn.Module):
    """CFF unit: upsample ``low`` 2x, dilated 3x3 conv + BN; ``high`` 1x1 conv + BN; sum, ReLU.

    ``classifier`` (cascade label guidance) scores the upsampled ``low`` features; it is
    called by :class:`ICNet` in train mode only.
    """

    def __init__(
        self, low_channels: int, high_channels: int, out_channels: int, num_classes: int
    ) -> None:
        super().__init__()
        self.conv_low = nn.Conv2d(low_channels, out_channels, 3, padding=2, dilation=2, bias=False)
        self.bn_low = nn.BatchNorm2d(out_channels)
        self.conv_high = nn.Conv2d(high_channels, out_channels, 1, bias=False)
        self.bn_high = nn.BatchNorm2d(out_channels)
        self.classifier = nn.Conv2d(low_channels, num_classes, 1)

    def forward(self, low: torch.Tensor, high: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        low = _resize(low, high.shape[-2:])  # (N, C_low, h, w)
        fused = F.relu(self.bn_low(self.conv_low(low)) + self.bn_high(self.conv_high(high)))
        return fused, low  # (N, 128, h, w), the upsampled input for the guidance classifier


class ICNet(nn.Module):
    """ICNet with a dilated ResNet-50 trunk shared by the 1/2 and 1/4 branches."""

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.sub1 = nn.Sequential(
            conv_bn_relu(3, 32, 3, stride=2),
            conv_bn_relu(32, 32, 3, stride=2),
            conv_bn_relu(32, 64, 3, stride=2),
        )
        self.backbone = resnet_trunk(resnet50, dilation=(False, True, True))
        self.ppm = PyramidPoolingSum()
        self.reduce = conv_bn_relu(2048, 256, 1)
        self.cff_16 = CascadeFeatureFusion(256, 512, CFF_CHANNELS, num_classes)
        self.cff_8 = CascadeFeatureFusion(CFF_CHANNELS, 64, CFF_CHANNELS, num_classes)
        self.classifier = nn.Conv2d(CFF_CHANNELS, num_classes, 1)
        init_new_layers_(self, self.backbone, mode="fan_in")

    def forward(self, x: torch.Tensor) -> torch.Tensor | dict[str, torch.Tensor]:
        size = x.shape[-2:]
        b = self.backbone
        f_sub1 = self.sub1(x)  # (N, 64, H/8, W/8)

        half = _resize(x, (size[0] // 2, size[1] // 2))  # (N, 3, H/2, W/2)
        f = stem(b, half)  # (N, 64, H/8, W/8)
        f_sub2 = b.layer2[0](b.layer1(f))  # conv3_1: (N, 512, H/16, W/16)

        f = _resize(f_sub2, (f_sub2.shape[-2] // 2, f_sub2.shape[-1] // 2))  # (N, 512, H/32, .)
        f = b.layer4(b.layer3(b.layer2[1:](f)))  # (N, 2048, H/32, W/32), dilated 2 and 4
        f_sub4 = self.reduce(self.ppm(f))  # (N, 256, H/32, W/32)

        f16, low16 = self.cff_16(f_sub4, f_sub2)  # (N, 128, H/16, W/16)
        f8, low8 = self.cff_8(f16, f_sub1)  # (N, 128, H/8, W/8)
        f4 = _resize(f8, (f8.shape[-2] * 2, f8.shape[-1] * 2))  # (N, 128, H/4, W/4)
        out = _resize(self.classifier(f4), size)  # (N, K, H, W)
        if not self.training:
            return out
        return {
            "out": out,
            "aux_16": _resize(self.cff_16.classifier(low16), size),
            "aux_8": _resize(self.cff_8.classifier(low8), size),
        }

    def load_resnet50_imagenet(self, state: dict[str, torch.Tensor]) -> None:
        """Copies torchvision ResNet-50 ImageNet weights (all but ``fc``) into the trunk."""
        load_imagenet_trunk(self.backbone, state)


@register(
    ArchInfo(
        name="icnet",
        title="ICNet (ResNet-50)",
        paper=_PAPER,
        year=2018,
        family="real-time",
        reference=_REFERENCE,
        input_divisor=32,
        aux_weights=(("aux_16", 0.16), ("aux_8", 0.4)),
        notes=(
            "Full-width torchvision ResNet-50 trunk (7x7 stem) instead of the paper's "
            "half-width PSPNet50; guidance logits upsampled instead of downsampled labels."
        ),
    )
)
def icnet(*, num_classes: int, pretrained_backbone: bool = False) -> nn.Module:
    """ICNet: three-resolution cascade on a dilated ResNet-50 (24.59M params at 19 classes,
    guidance classifiers included)."""
    model = ICNet(num_classes)
    if pretrained_backbone:
        model.load_resnet50_imagenet(load_local_state_dict(ResNet50_Weights.IMAGENET1K_V1))
    return model
