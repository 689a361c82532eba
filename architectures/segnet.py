"""SegNet: a VGG16-BN encoder and a mirrored decoder that upsamples with max-pooling indices.

Paper: V. Badrinarayanan, A. Kendall, R. Cipolla, "SegNet: A Deep Convolutional Encoder-Decoder
Architecture for Image Segmentation", TPAMI 2017, arXiv 1511.00561.
Reference implementation consulted (for understanding only): the authors' Caffe model
https://github.com/alexgkendall/SegNet-Tutorial, ``Models/segnet_train.prototxt`` (read in a
fork's copy, davidgj94/SegNet-Tutorial). Our own code.

Structure (as in the paper and the reference):

* Encoder: the 13 convolutional layers of VGG16 with batch norm, i.e. torchvision's
  ``vgg16_bn().features`` built by torchvision's own ``make_layers``, with the same module
  indices (so ``encoder.N`` matches ``features.N`` of a torchvision checkpoint). Each of the five
  2x2/2 max-poolings also returns its argmax indices.
* Decoder: one stage per encoder stage, deepest first. Each stage max-unpools its input with the
  indices stored by the corresponding encoder pooling (no learning to upsample; the unpooled map
  is sparse), then densifies it with 3x3 convolution + batch norm + ReLU layers, as many as the
  encoder stage has. Channel layout (from the reference prototxt; the paper only says the
  decoder mirrors the encoder): stage 5: 512, 512, 512; stage 4: 512, 512, 256;
  stage 3: 256, 256, 128; stage 2: 128, 64; stage 1: 64, then the classifier. The last
  convolution of each decoder stage changes the channel count, mirroring the encoder, where
  the first one does.
* Classifier: a 3x3 convolution 64 -> K with bias and no batch norm (``conv1_1_D`` of the
  reference). The paper describes the last decoder output as a "multi-channel feature map" fed
  to a "trainable soft-max classifier"; the reference realises that classifier as this 3x3
  convolution (the mirror of ``conv1_1``), which we follow: 26 convolutions in all, not 27.

Pooling indices (the argmax bookkeeping): ``F.max_pool2d(..., return_indices=True)`` returns for
every pooled value the flat index ``h * W + w`` of its maximum within its own ``(n, c)`` plane of
the pre-pooling map (ties: the first maximum in row-major order, as Caffe's pooling).
``F.max_unpool2d`` writes each value back at that index and zeros elsewhere, with
``output_size`` set to the pre-pooling size. The indices are integers carried through the forward
pass: they are not parameters and receive no gradient; the gradient of the unpooling flows to the
pooled values only, i.e. to the encoder positions that won the max. ``F.max_unpool2d`` is used
instead of ``nn.MaxUnpool2d`` because fvcore's tracer fails on the module.

Input size: the poolings use ``ceil_mode=True`` (Caffe's pooling always rounds up) and the
unpoolings restore the exact pre-pooling size, so any H x W works (``input_divisor=1``): at the
paper's 360x480, 360 -> 180 -> 90 -> 45 -> 23 -> 12 and back (the reference prototxt sets
``upsample_h: 23`` and ``45`` for the same reason). Deviation: torchvision's VGG poolings use
``ceil_mode=False``; this changes no weights.

Parameter count (CamVid, 11 classes): encoder convolutions 14.715M + encoder batch norm 0.008M +
decoder convolutions 14.712M + decoder batch norm 0.007M + classifier 0.006M = 29.449M, against
the paper's 29.5M (-0.2%; the ENet paper, arXiv 1606.02147 Table 3, lists SegNet at 29.46M).
The class count matters little: the classifier has 577 parameters per class (29.455M at 21).
Batch norm counts its scale and shift only (running statistics are buffers).

Compute (fvcore, 1 multiply-add = 1 MAC): 106.71 GMACs at 360x480 with 11 classes; the SegNet
paper reports no FLOPs, so none is declared. At 360x640 we count 142.28 GMACs, and the ENet paper
(arXiv 1606.02147, Table 3) lists SegNet at 286.03 GFLOPs for a 3x640x360 input:
2 x 142.28 = 284.6 (-0.5%), so that table counts 2 FLOPs per multiply-add (which
``architectures/enet.py`` relies on).

Initialisation: Kaiming normal (fan-out, ReLU) for every convolution, as torchvision's VGG (the
reference uses Caffe's ``msra`` filler, the fan-in variant); biases 0; batch norm weight 1, bias
0 (the reference's BN shift filler is 0.001). ``pretrained_backbone=True`` loads torchvision's ImageNet
``VGG16_BN_Weights.IMAGENET1K_V1`` into the encoder (convolutions and batch norm, including its
running statistics) from the local torch hub cache only; the decoder keeps its initialisation.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models import VGG16_BN_Weights
from torchvision.models.vgg import cfgs, make_layers

from architectures._pretrained import load_local_state_dict
from architectures._registry import ArchInfo, register

_PAPER = "1511.00561"
_REFERENCE = "https://github.com/alexgkendall/SegNet-Tutorial"

# Decoder stages, deepest first: output channels of each 3x3 conv + BN + ReLU after unpooling.
# Stage 1 has one such layer; the classifier (64 -> K) replaces the mirror of conv1_1.
DECODER_CFG: tuple[tuple[int, ...], ...] = (
    (512, 512, 512),
    (512, 512, 256),
    (256, 256, 128),
    (128, 64),
    (64,),
)
ENCODER_CHANNELS = (512, 512, 256, 128, 64)  # input channels of each decoder stage


def _conv_bn_relu(in_channels: int, out_channels: int) -> list[nn.Module]:
    return [
        nn.Conv2d(in_channels, out_channels, 3, padding=1),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    ]


class SegNet(nn.Module):
    """SegNet (VGG16-BN encoder, max-unpooling decoder); logits at the input resolution."""

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        features = make_layers(cfgs["D"], batch_norm=True)  # torchvision's vgg16_bn.features
        for i, layer in enumerate(features):
            if isinstance(layer, nn.MaxPool2d):
                features[i] = nn.MaxPool2d(2, 2, ceil_mode=True, return_indices=True)
        self.encoder = features
        stages = []
        for in_channels, widths in zip(ENCODER_CHANNELS, DECODER_CFG, strict=True):
            layers: list[nn.Module] = []
            for width in widths:
                layers += _conv_bn_relu(in_channels, width)
                in_channels = width
            stages.append(nn.Sequential(*layers))
        self.decoder = nn.ModuleList(stages)
        self.classifier = nn.Conv2d(64, num_classes, 3, padding=1)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, list[tuple[torch.Tensor, list[int]]]]:
        """Encoder pass: pool5 features and, per pooling (shallowest first), its argmax
        indices and the pre-pooling spatial size."""
        pools: list[tuple[torch.Tensor, list[int]]] = []
        for layer in self.encoder:
            if isinstance(layer, nn.MaxPool2d):
                size = [int(v) for v in x.shape[-2:]]
                x, indices = layer(x)  # (N, C, ceil(H/2), ceil(W/2)), same-shape int64
                pools.append((indices, size))
            else:
                x = layer(x)
        return x, pools  # x: (N, 512, ~H/32, ~W/32)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, pools = self.encode(x)  # (N, 512, ~H/32, ~W/32)
        for stage, (indices, size) in zip(self.decoder, reversed(pools), strict=True):
            x = F.max_unpool2d(x, indices, 2, stride=2, output_size=size)  # (N, C, 2h, 2w)
            x = stage(x)
        return self.classifier(x)  # (N, K, H, W)

    def load_vgg16_bn_imagenet(self, state: dict[str, torch.Tensor]) -> None:
        """Copy torchvision's VGG16-BN ``features.*`` tensors into the encoder (strict)."""
        features = {k[len("features.") :]: v for k, v in state.items() if k.startswith("features.")}
        self.encoder.load_state_dict(features, strict=True)


@register(
    ArchInfo(
        name="segnet",
        title="SegNet",
        paper=_PAPER,
        year=2017,
        family="encoder-decoder",
        reference=_REFERENCE,
        input_divisor=1,
        paper_params=29_500_000,
        paper_params_note=(
            "the paper's 29.5M (CamVid, 11 classes): VGG16-BN encoder, mirrored decoder, 3x3 "
            "classifier; batch norm scale and shift included"
        ),
        paper_num_classes=11,
        notes=(
            "Ceil-mode pooling and size-exact unpooling (as the Caffe reference), so any input "
            "size works; the classifier is the reference's 3x3 conv1_1_D."
        ),
    )
)
def segnet(*, num_classes: int, pretrained_backbone: bool = False) -> nn.Module:
    """SegNet with a VGG16-BN encoder; 29.45M parameters at 11 classes."""
    model = SegNet(num_classes)
    if pretrained_backbone:
        model.load_vgg16_bn_imagenet(load_local_state_dict(VGG16_BN_Weights.IMAGENET1K_V1))
    return model
