"""LinkNet (ResNet-18 encoder).

Paper: A. Chaurasia, E. Culurciello, "LinkNet: Exploiting Encoder Representations for Efficient
Semantic Segmentation", VCIP 2017, arXiv 1707.03718. Reference implementation consulted (for
understanding only): https://github.com/e-lab/LinkNet (Torch7, ``models/model.lua``). Our own
code.

Structure (paper Fig. 1-3, Table 1):

* Encoder: ResNet-18 (torchvision ``resnet18`` layers, no average pool / fc). Initial block =
  7x7 conv stride 2 + BN + ReLU + 3x3 max-pool stride 2 (64 channels, H/4); encoder blocks 1-4 =
  ``layer1``-``layer4`` (64, 128, 256, 512 channels at H/4, H/8, H/16, H/32).
* Decoder block (m input, n output channels): 1x1 conv m -> m/4, 3x3 full-convolution
  (transposed convolution) m/4 -> m/4 with stride 2, 1x1 conv m/4 -> n, each followed by batch
  norm and ReLU. (m, n) = (64, 64), (128, 64), (256, 128), (512, 256) for blocks 1-4 (Table 1).
* Links: the *input* of each encoder block is added (not concatenated) to the output of the
  corresponding decoder block, i.e. decoder 4 + encoder-3 output, decoder 3 + encoder-2 output,
  decoder 2 + encoder-1 output and decoder 1 + the initial block's output.
* Final block: 3x3 full-conv 64 -> 32 stride 2 (BN, ReLU), 3x3 conv 32 -> 32 (BN, ReLU), 2x2
  full-conv 32 -> classes stride 2 (the classifier, logits at input resolution).

As in the reference code:

* Decoder block 1 uses stride 1: encoder block 1 (ResNet ``layer1``) does not downsample, so the
  four strided decoder blocks of the paper's generic figure would overshoot; the final block's
  two stride-2 full-convolutions bring H/4 back to H.
* Convolutions and full-convolutions have biases; the decoder's batch norms use eps 1e-3 (the
  final block's first one Torch's default 1e-5); new convolutions are initialised
  N(0, 2 / (k * k * out_channels)) (Kaiming, fan-out), batch norm weight 1 / bias 0.
* The reference applies a ReLU after each link addition; both addends are outputs of a ReLU, so
  that ReLU is the identity and is omitted here.

Sizes: every full-convolution upsamples exactly 2x (the reference's fixed ``adj`` values, which
assume sizes that are multiples of 32, as its CamVid 768x576 and Cityscapes 1024x512 training
sizes are); the harness pads other inputs to a multiple of 32 (``input_divisor``) and crops
the logits back. The paper's 640x360 timing input is such a case (360 is padded to 384).

Figures: 11,535,788 parameters at 12 classes (CamVid with "Unlabeled", the reference's class
list): ResNet-18 without fc 11,176,512 + decoder blocks 329,888 + final block 29,388 (of which
1,548 in the 12-class classifier); 11,536,949 at 21 classes. The paper reports 11.5M (+0.3%).

Compute: the paper (abstract) reports 21.2 GFLOPs for a 3x640x360 (W x H) input. fvcore counts 10.14
GMACs at 360x640 (batch norm not counted) on the harness model, which pads 360 to 384 (9.30
GMACs at an unpadded 352x640), i.e. 20.3 GFLOPs at 2 FLOPs per multiply-add. The paper's
figure is therefore in the ``2*macs`` convention (10.6 GMACs, -4.3% from our count; read as
multiply-adds it would be 2.1x what the network computes) and is stored as such, with
resolution (360, 640). The paper does not say what its counter includes; biases, batch norm,
ReLUs and the link additions, which fvcore's MAC count leaves out, would close the gap.
Cross-check of the convention: this project's SegNet entry counts 142.4 GMACs at 360x640,
i.e. 285 GFLOPs at 2 per MAC, close to the ~286 GFLOPs the paper's comparison table lists for
SegNet at the same size (recalled, not re-checked against the PDF).

``pretrained_backbone=True`` loads torchvision's ImageNet ResNet-18 weights (as the paper's
encoder) from the local torch hub cache only; it never downloads.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torchvision.models import ResNet18_Weights, resnet18

from architectures._pretrained import load_local_state_dict
from architectures._registry import ArchInfo, register
from architectures._resnet import load_imagenet_trunk, resnet_trunk, stem

_PAPER = "1707.03718"
_REFERENCE = "https://github.com/e-lab/LinkNet"
DECODER_CHANNELS = ((64, 64), (128, 64), (256, 128), (512, 256))  # Table 1: (m, n), blocks 1-4


def _init_conv_(conv: nn.Conv2d | nn.ConvTranspose2d) -> None:
    """Kaiming normal over ``k * k * out_channels`` (the reference's ``ConvInit``).

    Biases keep PyTorch's default uniform initialisation, which is Torch7's ``reset()`` that the
    reference leaves them with.
    """
    k_h, k_w = conv.kernel_size
    std = math.sqrt(2.0 / (k_h * k_w * conv.out_channels))
    nn.init.normal_(conv.weight, 0.0, std)


def _full_conv(in_ch: int, out_ch: int, kernel: int, stride: int) -> nn.ConvTranspose2d:
    """Torch7 ``SpatialFullConvolution`` that scales the size exactly by ``stride``."""
    # Output size (H - 1) * s - 2p + k + output_padding = s * H: 3x3 stride 2 -> p 1, op 1;
    # 3x3 stride 1 -> p 1, op 0; 2x2 stride 2 -> p 0, op 0 (the reference's pad / adj values).
    padding = (kernel - stride + 1) // 2
    return nn.ConvTranspose2d(
        in_ch,
        out_ch,
        kernel,
        stride=stride,
        padding=padding,
        output_padding=stride - kernel + 2 * padding,
    )


class DecoderBlock(nn.Sequential):
    """1x1 conv m -> m/4, 3x3 full-conv (stride ``stride``), 1x1 conv m/4 -> n; BN + ReLU each."""

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        mid = in_channels // 4
        super().__init__(
            nn.Conv2d(in_channels, mid, 1),
            nn.BatchNorm2d(mid, eps=1e-3),
            nn.ReLU(inplace=True),
            _full_conv(mid, mid, 3, stride),
            nn.BatchNorm2d(mid, eps=1e-3),
            nn.ReLU(inplace=True),
            nn.Conv2d(mid, out_channels, 1),
            nn.BatchNorm2d(out_channels, eps=1e-3),
            nn.ReLU(inplace=True),
        )


class LinkNet(nn.Module):
    """LinkNet: ResNet-18 encoder, additive links to light decoder blocks."""

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.backbone = resnet_trunk(resnet18)
        self.decoder1, self.decoder2, self.decoder3, self.decoder4 = (
            DecoderBlock(m, n, stride=1 if i == 0 else 2)
            for i, (m, n) in enumerate(DECODER_CHANNELS)
        )
        self.final = nn.Sequential(
            _full_conv(64, 32, 3, 2),
            nn.BatchNorm2d(32),
            nn.ReLU(inplace=True),
            nn.Conv2d(32, 32, 3, padding=1),
            nn.BatchNorm2d(32, eps=1e-3),
            nn.ReLU(inplace=True),
            _full_conv(32, num_classes, 2, 2),
        )
        for name, m in self.named_modules():
            if name.startswith("backbone"):
                continue  # torchvision's own initialisation
            if isinstance(m, nn.Conv2d | nn.ConvTranspose2d):
                _init_conv_(m)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b = self.backbone
        x0 = stem(b, x)  # (N, 64, H/4, W/4)
        e1 = b.layer1(x0)  # (N, 64, H/4, W/4)
        e2 = b.layer2(e1)  # (N, 128, H/8, W/8)
        e3 = b.layer3(e2)  # (N, 256, H/16, W/16)
        e4 = b.layer4(e3)  # (N, 512, H/32, W/32)
        d = self.decoder4(e4) + e3  # (N, 256, H/16, W/16)
        d = self.decoder3(d) + e2  # (N, 128, H/8, W/8)
        d = self.decoder2(d) + e1  # (N, 64, H/4, W/4)
        d = self.decoder1(d) + x0  # (N, 64, H/4, W/4)
        return self.final(d)  # (N, K, H, W)

    def load_resnet18_imagenet(self, state: dict[str, torch.Tensor]) -> None:
        """Copy torchvision ResNet-18 ImageNet weights into the encoder (fc dropped)."""
        load_imagenet_trunk(self.backbone, state)


@register(
    ArchInfo(
        name="linknet",
        title="LinkNet (ResNet-18)",
        paper=_PAPER,
        year=2017,
        family="encoder-decoder",
        reference=_REFERENCE,
        input_divisor=32,
        paper_params=11_500_000,
        paper_params_note="the abstract's '11.5 million parameters'; CamVid, 12 classes",
        paper_num_classes=12,
        paper_gflops=21.2,
        paper_resolution=(360, 640),
        paper_flops_convention="2*macs",
        notes="Decoder block 1 has stride 1 (as the reference code); inputs padded to 32.",
    )
)
def linknet(*, num_classes: int, pretrained_backbone: bool = False) -> nn.Module:
    """LinkNet with a ResNet-18 encoder; 11.53M parameters at 12 classes."""
    # Read the weights first: a missing file fails before the model is built.
    state = load_local_state_dict(ResNet18_Weights.IMAGENET1K_V1) if pretrained_backbone else None
    model = LinkNet(num_classes)
    if state is not None:
        model.load_resnet18_imagenet(state)
    return model
