"""FCN-32s, FCN-16s and FCN-8s.

Paper: J. Long, E. Shelhamer, T. Darrell, "Fully Convolutional Networks for Semantic
Segmentation", CVPR 2015, arXiv 1411.4038 (journal version: TPAMI 2017, arXiv 1605.06211).
Reference implementation consulted: https://github.com/shelhamer/fcn.berkeleyvision.org
(``voc-fcn{32,16,8}s/net.py``). Our own code.

Structure (as in the paper): the VGG16 convolutional layers (torchvision's ``vgg16``), then fc6
and fc7 "convolutionalised" (fc6: 7x7 conv, 512 -> 4096; fc7: 1x1 conv, 4096 -> 4096; ReLU and
dropout 0.5 after each), a 1x1 class scorer on fc7 (``score_fr``), and:

* FCN-32s: one fixed 32x bilinear upsampling of the scores.
* FCN-16s: scores upsampled 2x by a learnable transposed convolution initialised to bilinear
  interpolation, added to a 1x1 scorer on pool4 (zero-initialised, as in the paper), then a fixed
  16x bilinear upsampling.
* FCN-8s: as FCN-16s, then another learnable 2x upsampling added to a zero-initialised scorer on
  pool3, then a fixed 8x bilinear upsampling.

The final upsamplings are fixed (the reference nets set their learning rate to 0): here they are
a non-trainable buffer used by ``conv_transpose2d``, so they are not counted as parameters.
The learnable 2x upsamplings (``4x4`` kernels, no bias) are parameters.

Deviation — the 100-pixel input padding: the original nets pad conv1_1 by 100 pixels so that
fc6 (a 7x7 convolution without padding) never sees a map smaller than 7x7, and then crop the
upsampled scores back with per-layer offsets. We instead pad fc6 by 3 ("same" convolution) and
use transposed convolutions whose padding makes every upsampling exactly 2x / 8x / 16x / 32x;
the harness pads inputs to a multiple of 32 (``input_divisor``) and crops the logits back. This
keeps every skip aligned without crop offsets and avoids computing on 100 pixels of padding. The
parameter count is unaffected.

Parameter count (21 classes, FCN-8s): VGG16 convolutions 14.71M + fc6 102.76M + fc7 16.78M +
scorers 0.10M + two learnable 2x upsamplings 0.014M = 134.38M, against the paper's 134M
("FCN-8s ... 134M parameters", Table 1 / Sec. 4). The fixed 8x upsampling (113k weights in the
Caffe net) is a buffer here and not counted.

``pretrained_backbone=True`` loads torchvision's ImageNet VGG16 weights from the local torch hub
cache only (never downloads) and convolutionalises fc6/fc7 from its classifier, as in the paper.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models import VGG16_Weights
from torchvision.models.vgg import cfgs, make_layers

from architectures._pretrained import copy_vgg16_imagenet, load_local_state_dict
from architectures._registry import ArchInfo, register

_PAPER = "1411.4038"
_REFERENCE = "https://github.com/shelhamer/fcn.berkeleyvision.org"


def bilinear_kernel(channels: int, factor: int) -> torch.Tensor:
    """Weights ``(C, C, 2f, 2f)`` of a transposed convolution that upsamples by ``factor``
    with bilinear interpolation, channel-wise (the FCN ``upsample_filt`` initialisation)."""
    size = 2 * factor
    center = factor - 0.5  # kernel of even size 2f: centre between the two middle taps
    og = torch.arange(size, dtype=torch.float64)
    filt1d = 1 - (og - center).abs() / factor
    filt = (filt1d[:, None] * filt1d[None, :]).float()
    weight = torch.zeros(channels, channels, size, size)
    weight[range(channels), range(channels)] = filt
    return weight


class _FixedUpsample(nn.Module):
    """Non-trainable bilinear upsampling by an integer factor (exact size ``factor * input``)."""

    def __init__(self, channels: int, factor: int) -> None:
        super().__init__()
        self.factor = factor
        # Depthwise (groups=C): the same function as Caffe's dense diagonal kernel, C x cheaper.
        kernel = bilinear_kernel(1, factor).expand(channels, 1, 2 * factor, 2 * factor).clone()
        self.register_buffer("weight", kernel, persistent=False)
        self.channels = channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv_transpose2d(
            x, self.weight, stride=self.factor, padding=self.factor // 2, groups=self.channels
        )


class Im2colConv2d(nn.Conv2d):
    """A stride-1, odd-kernel "same" ``Conv2d`` computed as unfold + matmul.

    Same parameters, same function as ``nn.Conv2d``. Used for fc6 only: on CPU, PyTorch's
    backward of a 7x7, 512 -> 4096 convolution on the tiny pool5 maps of small inputs took 25 s
    per batch of 8 at 64x64 here, against 0.8 s for the equivalent unfold + matmul.

    Every tap is computed, also those that only meet zero padding on small maps (on the 2x2
    pool5 map of a 64x64 input only the central 3x3 of the 7x7 taps see data). Slicing those
    taps out was measured slower on CPU, not faster: the slice's backward zero-fills and copies
    a full 411 MB gradient (4.2 s per training step at batch 4 against 1.3 s).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int) -> None:
        if kernel_size % 2 != 1:
            raise ValueError(f"Im2colConv2d needs an odd kernel size; got {kernel_size}.")
        super().__init__(in_channels, out_channels, kernel_size, padding=kernel_size // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, _, h, w = x.shape
        cols = F.unfold(x, self.kernel_size, padding=self.padding)  # (N, C*k*k, H*W)
        out = self.weight.flatten(1) @ cols + self.bias[:, None]  # (N, O, H*W)
        return out.view(n, self.out_channels, h, w)


def _learnable_up2(channels: int) -> nn.ConvTranspose2d:
    up = nn.ConvTranspose2d(channels, channels, 4, stride=2, padding=1, bias=False)
    with torch.no_grad():
        up.weight.copy_(bilinear_kernel(channels, 2))
    return up


class FCN(nn.Module):
    """FCN with VGG16 backbone; ``stride`` 32, 16 or 8 selects FCN-32s/16s/8s."""

    def __init__(self, num_classes: int, stride: int = 8, dropout: float = 0.5) -> None:
        super().__init__()
        if stride not in (32, 16, 8):
            raise ValueError(f"FCN stride must be 32, 16 or 8; got {stride}.")
        self.stride = stride
        # Only VGG16's convolutional part, with torchvision's initialisation (building the
        # whole vgg16() would also create and discard its 123.6M-parameter classifier).
        features = make_layers(cfgs["D"], batch_norm=False)
        for m in features.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(m.bias)
        # torchvision's vgg16.features: pool3 ends at index 16, pool4 at 23, pool5 at 30.
        self.to_pool3 = features[:17]  # (N, 256, H/8, W/8)
        self.to_pool4 = features[17:24]  # (N, 512, H/16, W/16)
        self.to_pool5 = features[24:]  # (N, 512, H/32, W/32)
        self.fc6 = Im2colConv2d(512, 4096, 7)
        self.fc7 = nn.Conv2d(4096, 4096, 1)
        self.drop = nn.Dropout(dropout)  # element-wise, as the reference nets
        self.score_fr = nn.Conv2d(4096, num_classes, 1)
        for conv in (self.fc6, self.fc7):
            nn.init.kaiming_normal_(conv.weight, mode="fan_in", nonlinearity="relu")
            nn.init.zeros_(conv.bias)
        nn.init.zeros_(self.score_fr.weight)  # the paper zero-initialises the class scorer
        nn.init.zeros_(self.score_fr.bias)
        if stride <= 16:
            self.up2_fr = _learnable_up2(num_classes)
            self.score_pool4 = nn.Conv2d(512, num_classes, 1)
            nn.init.zeros_(self.score_pool4.weight)
            nn.init.zeros_(self.score_pool4.bias)
        if stride == 8:
            self.up2_pool4 = _learnable_up2(num_classes)
            self.score_pool3 = nn.Conv2d(256, num_classes, 1)
            nn.init.zeros_(self.score_pool3.weight)
            nn.init.zeros_(self.score_pool3.bias)
        self.upsample = _FixedUpsample(num_classes, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pool3 = self.to_pool3(x)  # (N, 256, H/8, W/8)
        pool4 = self.to_pool4(pool3)  # (N, 512, H/16, W/16)
        pool5 = self.to_pool5(pool4)  # (N, 512, H/32, W/32)
        h = self.drop(F.relu(self.fc6(pool5)))  # (N, 4096, H/32, W/32)
        h = self.drop(F.relu(self.fc7(h)))
        score = self.score_fr(h)  # (N, K, H/32, W/32)
        if self.stride <= 16:
            score = self.up2_fr(score) + self.score_pool4(pool4)  # (N, K, H/16, W/16)
        if self.stride == 8:
            score = self.up2_pool4(score) + self.score_pool3(pool3)  # (N, K, H/8, W/8)
        return self.upsample(score)  # (N, K, H, W)

    def load_vgg16_imagenet(self, state: dict[str, torch.Tensor]) -> None:
        """Copy torchvision VGG16 ImageNet weights, convolutionalising fc6 and fc7."""
        convs = [
            m for m in (*self.to_pool3, *self.to_pool4, *self.to_pool5) if isinstance(m, nn.Conv2d)
        ]
        copy_vgg16_imagenet(state, convs, self.fc6, self.fc7)


def _build(num_classes: int, stride: int, pretrained_backbone: bool) -> FCN:
    model = FCN(num_classes, stride=stride)
    if pretrained_backbone:
        model.load_vgg16_imagenet(load_local_state_dict(VGG16_Weights.IMAGENET1K_V1))
    return model


_COMMON = dict(
    paper=_PAPER,
    year=2015,
    family="fcn",
    reference=_REFERENCE,
    input_divisor=32,
    notes="No 100-pixel input padding: fc6 is a 'same' 7x7 conv and the harness pads to 32.",
)


@register(ArchInfo(name="fcn32s", title="FCN-32s", **_COMMON))
def fcn32s(*, num_classes: int, pretrained_backbone: bool = False) -> nn.Module:
    """FCN-32s (VGG16): scores at stride 32, one fixed bilinear 32x upsampling."""
    return _build(num_classes, 32, pretrained_backbone)


@register(ArchInfo(name="fcn16s", title="FCN-16s", **_COMMON))
def fcn16s(*, num_classes: int, pretrained_backbone: bool = False) -> nn.Module:
    """FCN-16s (VGG16): adds a pool4 skip before a fixed 16x upsampling."""
    return _build(num_classes, 16, pretrained_backbone)


@register(
    ArchInfo(
        name="fcn8s",
        title="FCN-8s",
        paper_params=134_000_000,
        paper_num_classes=21,
        paper_params_note="21 classes (PASCAL VOC); the paper's '134M' for FCN-8s",
        **_COMMON,
    )
)
def fcn8s(*, num_classes: int, pretrained_backbone: bool = False) -> nn.Module:
    """FCN-8s (VGG16): pool4 and pool3 skips, fixed 8x upsampling. 134.38M params at 21 classes
    (fixed bilinear 8x upsampling not counted: it is a buffer)."""
    return _build(num_classes, 8, pretrained_backbone)
