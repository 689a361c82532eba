"""Full-Resolution Residual Networks: FRRN A and FRRN B.

Paper: T. Pohlen, A. Hermans, M. Mathias, B. Leibe, "Full-Resolution Residual Networks for
Semantic Segmentation in Street Scenes", CVPR 2017, arXiv 1611.08323.
Reference implementation consulted (for understanding only): the authors' Theano/Lasagne code,
https://github.com/TobyPDE/FRRN (``dltools/architectures.py``: ``FRRNABuilder``,
``FRRNBBuilder``, ``add_frru``, ``add_ru``; ``train_frrn_a.py`` sets ``base_channels=48``,
``lanes=32``, ``multiplier=2``). Our own code.

Two streams (paper Sec. 3, Fig. 3):

* the **residual stream** ``z`` stays at full resolution with 32 channels and is only ever
  updated by addition;
* the **pooling stream** ``y`` goes through max-pooling (encoder) and bilinear 2x upsampling
  (decoder, the reference's ``BilinearUpscaleLayer``; the paper's table calls it "unpool").

A full-resolution residual unit (FRRU) with ``C`` channels at scale ``s`` (paper Fig. 3b):
``z`` is max-pooled by ``s`` (``s x s`` window, stride ``s``) and concatenated with ``y``; two
3x3 convolutions (no bias, batch norm, ReLU) give the new ``y`` (``C`` channels); a 1x1
convolution (with bias, no normalisation) maps it to 32 channels, which are upsampled by ``s``
(nearest neighbour, the reference's ``Upscale2DLayer``) and added to ``z``. A residual unit (RU,
Fig. 3a) is 3x3 conv-BN-ReLU, 3x3 conv-BN, plus the identity (a bias-free 1x1 projection where
the channels change), with no ReLU after the sum, as in the reference.

Layout (paper Table 1; FRRN B adds one pooling level):

====================  =====================================  ==================================
stage                 FRRN A                                  FRRN B
====================  =====================================  ==================================
input                 5x5 conv 48, BN, ReLU; 3 x RU 48        same
split                 z = 1x1 conv 32 (BN, no ReLU) of y      same
encoder /2, /4, /8    3 x FRRU 96, 4 x FRRU 192, 2 x FRRU 384 same
encoder /16           2 x FRRU 384                            2 x FRRU 384
encoder /32           -                                       2 x FRRU 384
decoder /16           -                                       2 x FRRU 192
decoder /8, /4, /2    2 x FRRU 192, 2 x FRRU 192, 2 x FRRU 96 same
output                upsample y 2x, concat z (96 + 32), 3 x RU 48 (the first with a 1x1
                      projection 128 -> 48), 1x1 conv -> classes (with bias)
====================  =====================================  ==================================

(The reference's final concatenation is ``[y, z]`` with ``y`` at 96 channels; its first RU is
declared with ``base_channels + lanes`` = 80 input channels, but Lasagne infers the input width
from the layer, so the projection really is 128 -> 48.)

Parameter count at 19 classes (Cityscapes): FRRN A 17,746,803 (paper: 17.7M, +0.3%), FRRN B
24,755,699 (paper: 24.8M, -0.2%). The paper reports no multiply-add count; measured here (fvcore,
convolutions only, 19 classes; FlopCounterMode agrees exactly) at the resolutions the paper
trains them at (Cityscapes subsampled by 4 and by 2): FRRN A at 256x512 123.099 GMACs, FRRN B at
512x1024 496.169 GMACs (at 64x64: 3.84 GMACs for FRRN A, about a third of it in the six
full-resolution residual units).

Deviations: none in structure. The reference uses the bootstrapped cross-entropy (top-K pixels)
as its loss; the harness trains every entry with plain cross-entropy. Initialisation follows the
reference (He uniform: ReLU gain for convolutions followed by ReLU, gain 1 otherwise; biases 0;
batch norm weight 1, bias 0). Inputs must be multiples of 16 (A) or 32 (B); the harness pads.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from architectures._registry import ArchInfo, register

_PAPER = "1611.08323"
_REFERENCE = "https://github.com/TobyPDE/FRRN"
LANES = 32  # channels of the residual stream
BASE = 48  # channels of the input and output residual units

# (number of FRRUs, channels, scale) per stage, as the reference builders.
FRRN_SPECS: dict[str, dict[str, tuple[tuple[int, int, int], ...]]] = {
    "A": {
        "encoder": ((3, 96, 2), (4, 192, 4), (2, 384, 8), (2, 384, 16)),
        "decoder": ((2, 192, 8), (2, 192, 4), (2, 96, 2)),
    },
    "B": {
        "encoder": ((3, 96, 2), (4, 192, 4), (2, 384, 8), (2, 384, 16), (2, 384, 32)),
        "decoder": ((2, 192, 16), (2, 192, 8), (2, 192, 4), (2, 96, 2)),
    },
}


def _conv_bn(in_ch: int, out_ch: int, kernel: int, relu: bool) -> nn.Sequential:
    conv = nn.Conv2d(in_ch, out_ch, kernel, padding=kernel // 2, bias=False)
    nn.init.kaiming_uniform_(conv.weight, nonlinearity="relu" if relu else "linear")
    layers: list[nn.Module] = [conv, nn.BatchNorm2d(out_ch)]
    if relu:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class RU(nn.Module):
    """Residual unit: conv3x3-BN-ReLU, conv3x3-BN, plus the (projected) input."""

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            _conv_bn(in_ch, out_ch, 3, True), _conv_bn(out_ch, out_ch, 3, False)
        )
        self.proj: nn.Module = nn.Identity()
        if in_ch != out_ch:
            self.proj = nn.Conv2d(in_ch, out_ch, 1, bias=False)
            nn.init.kaiming_uniform_(self.proj.weight, nonlinearity="linear")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x) + self.proj(x)


class FRRU(nn.Module):
    """Full-resolution residual unit at ``scale``: updates both streams."""

    def __init__(self, in_ch: int, out_ch: int, scale: int, lanes: int = LANES) -> None:
        super().__init__()
        self.scale = scale
        self.body = nn.Sequential(
            _conv_bn(in_ch + lanes, out_ch, 3, True), _conv_bn(out_ch, out_ch, 3, True)
        )
        self.to_lanes = nn.Conv2d(out_ch, lanes, 1)
        nn.init.kaiming_uniform_(self.to_lanes.weight, nonlinearity="linear")
        nn.init.zeros_(self.to_lanes.bias)

    def forward(self, y: torch.Tensor, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        s = self.scale
        pooled = F.max_pool2d(z, s, s)  # (N, 32, H/s, W/s)
        y = self.body(torch.cat([y, pooled], dim=1))  # (N, C, H/s, W/s)
        update = F.interpolate(self.to_lanes(y), scale_factor=s, mode="nearest")  # (N, 32, H, W)
        return y, z + update


class FRRN(nn.Module):
    """FRRN A or B (``variant``): see the module docstring for the layout."""

    def __init__(self, num_classes: int, variant: str = "A") -> None:
        super().__init__()
        if variant not in FRRN_SPECS:
            raise ValueError(f"FRRN variant must be one of {sorted(FRRN_SPECS)}; got {variant!r}.")
        spec = FRRN_SPECS[variant]
        self.stem = nn.Sequential(
            _conv_bn(3, BASE, 5, True), RU(BASE, BASE), RU(BASE, BASE), RU(BASE, BASE)
        )
        self.split = _conv_bn(BASE, LANES, 1, False)  # the residual stream z
        ch = BASE
        self.encoder = nn.ModuleList()
        for count, out_ch, scale in spec["encoder"]:
            stage = nn.ModuleList()
            for _ in range(count):
                stage.append(FRRU(ch, out_ch, scale))
                ch = out_ch
            self.encoder.append(stage)
        self.decoder = nn.ModuleList()
        for count, out_ch, scale in spec["decoder"]:
            stage = nn.ModuleList()
            for _ in range(count):
                stage.append(FRRU(ch, out_ch, scale))
                ch = out_ch
            self.decoder.append(stage)
        self.head = nn.Sequential(RU(ch + LANES, BASE), RU(BASE, BASE), RU(BASE, BASE))
        self.classifier = nn.Conv2d(BASE, num_classes, 1)
        nn.init.kaiming_uniform_(self.classifier.weight, nonlinearity="linear")
        nn.init.zeros_(self.classifier.bias)
        self.input_divisor = 2 ** len(spec["encoder"])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.stem(x)  # (N, 48, H, W)
        z = self.split(y)  # (N, 32, H, W)
        for stage in self.encoder:
            y = F.max_pool2d(y, 2, 2)  # (N, C, H/s, W/s), s doubles per stage
            for frru in stage:
                y, z = frru(y, z)
        for stage in self.decoder:
            y = F.interpolate(y, scale_factor=2, mode="bilinear", align_corners=False)
            for frru in stage:
                y, z = frru(y, z)
        y = F.interpolate(y, scale_factor=2, mode="bilinear", align_corners=False)  # (N, 96, H, W)
        y = self.head(torch.cat([y, z], dim=1))  # (N, 48, H, W)
        return self.classifier(y)  # (N, K, H, W)


_COMMON = dict(
    paper=_PAPER,
    year=2017,
    family="encoder-decoder",
    reference=_REFERENCE,
    paper_num_classes=19,
    notes="As the authors' code; the harness trains with plain (not bootstrapped) cross-entropy.",
)


@register(
    ArchInfo(
        name="frrn_a",
        title="FRRN A",
        input_divisor=16,
        paper_params=17_700_000,
        paper_params_note="19 classes (Cityscapes); the paper's 17.7M for FRRN A",
        **_COMMON,
    )
)
def frrn_a(*, num_classes: int) -> nn.Module:
    """FRRN A: four pooling levels (down to 1/16). 17.75M params at 19 classes."""
    return FRRN(num_classes, "A")


@register(
    ArchInfo(
        name="frrn_b",
        title="FRRN B",
        input_divisor=32,
        paper_params=24_800_000,
        paper_params_note="19 classes (Cityscapes); the paper's 24.8M for FRRN B",
        **_COMMON,
    )
)
def frrn_b(*, num_classes: int) -> nn.Module:
    """FRRN B: five pooling levels (down to 1/32). 24.76M params at 19 classes."""
    return FRRN(num_classes, "B")
