"""ENet: an efficient encoder of residual bottlenecks and a small max-unpooling decoder.

Paper: A. Paszke, A. Chaurasia, S. Kim, E. Culurciello, "ENet: A Deep Neural Network
Architecture for Real-Time Semantic Segmentation", arXiv 1606.02147, 2016.
Reference implementation consulted (for understanding only): the authors' Torch7 code
https://github.com/e-lab/ENet-training, ``train/models/encoder.lua`` and ``decoder.lua``.
Our own code.

Structure (paper Table 1; sizes there are for a 512x512 input):

* Initial block: a 3x3 stride-2 convolution with 13 filters, concatenated with a 2x2 max-pooling
  of the 3 input channels (16 channels at H/2), then batch norm and PReLU.
* Stage 1 (H/4, 64 channels): downsampling bottleneck1.0, then four regular bottlenecks.
* Stage 2 (H/8, 128 channels): downsampling bottleneck2.0, then eight bottlenecks: regular,
  dilated 2, asymmetric 5, dilated 4, regular, dilated 8, asymmetric 5, dilated 16.
* Stage 3: stage 2 again without the downsampling bottleneck.
* Stage 4 (H/4, 64 channels): upsampling bottleneck4.0, two regular bottlenecks.
* Stage 5 (H/2, 16 channels): upsampling bottleneck5.0, one regular bottleneck.
* fullconv: a bare 2x2 stride-2 transposed convolution 16 -> K (no pooling indices: the paper
  notes that the initial block pooled the 3 input channels, not K feature maps).

Bottleneck (paper Fig. 2b): an extension branch of 1x1 projection to ``out / 4`` channels,
the main convolution, a 1x1 expansion, each followed by batch norm (and a non-linearity except
after the expansion), then spatial dropout; it is added to the main branch and passed through a
non-linearity. Downsampling: the projection becomes a 2x2 stride-2 convolution, and the main
branch max-pools (keeping the indices) and zero-pads its channels. Upsampling: the main
convolution is a 3x3 stride-2 transposed convolution, and the main branch is a 1x1 convolution
with batch norm followed by max-unpooling with the indices of the matching downsampling.

Details the paper leaves open, taken from the reference: batch norm eps 1e-3; projections and
expansions (1x1, and the 2x2 stride-2 one) have no bias (the paper says so for projections);
the 3x3 regular and dilated convolutions and the transposed convolutions have a bias; the
asymmetric convolution is 5x1 without bias then 1x5 with bias; PReLU (one slope per channel) in
the initial block and the encoder, ReLU in the decoder (stages 4-5); spatial dropout
(``nn.Dropout2d``: whole channels) with p = 0.01 in stage 1 (bottleneck1.0 to 1.4) and
p = 0.1 in stages 2 and 3, none in the decoder. ``nn.Dropout2d`` is the identity in eval mode,
so eval is deterministic.

Pooling indices (the argmax bookkeeping): bottleneck1.0 and 2.0 max-pool with
``return_indices=True``; each index is the flat position ``h * W + w`` of the window's maximum in
its own ``(n, c)`` plane of the pre-pooling map. bottleneck4.0 unpools the indices of 2.0 (64
channels: its main branch first projects 128 -> 64 channels), bottleneck5.0 those of 1.0 (16
channels, after a 64 -> 16 projection). ``F.max_unpool2d`` writes each value at its index and
zeros elsewhere, with ``output_size`` the pre-pooling size. The indices are integers, not
parameters, and receive no gradient. The initial block's pooling indices are not used.
``F.max_unpool2d`` is used instead of ``nn.MaxUnpool2d`` because fvcore's tracer fails on the
module.

Deviation: the reference trains the encoder first, with a 1x1 128 -> K classifier on 1/8-size
labels, then discards that classifier and trains the decoder. That is a training schedule, not
part of the network: this entry is the full encoder-decoder, trained end to end by the harness,
and the encoder-only classifier is not built.

Input size: three stride-2 stages before stage 2 (initial block, 1.0, 2.0); the initial block
concatenates a convolution (which rounds odd sizes up) with a pooling (which rounds down), so H
and W must be multiples of 8 (``input_divisor=8``); the harness pads other sizes.

Parameters: 364,376 at 20 outputs, against the paper's 0.37M (Table 3; -1.5%). The paper does
not say for which class count; the authors' code trains its Cityscapes model with 20 outputs
(the 19 classes plus "Unlabeled", weighted 0 in the loss), and its CamVid model with 12 (11 plus
"Void"), so ``paper_num_classes`` is 20. The class count changes only fullconv: 65 parameters
per class. Batch norm counts scale and shift; PReLU one slope per channel.

Compute convention ("2*macs"): the paper's Table 3 gives 3.83 GFLOPs for a 3x640x360 input and,
in the same table, 286.03 GFLOPs for SegNet. SegNet's multiply-adds at 360x640 are 142.28 GMACs
(measured, ``architectures/segnet.py``; 2 x 142.28 = 284.6, -0.5%), so the table counts 2 FLOPs
per multiply-add, and ENet's 3.83 GFLOPs are 1.915 GMACs (read as MACs, 3.83 would be 2.2x our
count, which no reading of the architecture explains). We measure 1.727 GMACs at 360x640 with
20 outputs: -9.8%, just inside the contract's 10% tolerance (1.724 with 19 outputs, -10.0%;
1.698 with 12, -11.3%). fullconv costs 3.7M MACs per class there. The paper does not say how it
counted; counting batch norm, PReLU and the additions, or counting each transposed convolution
per output pixel (4x for stride 2), would each add part of the gap. The 640x360 orientation
(W x H or H x W) does not change ENet's count: both sides are multiples of 8.

Initialisation: Kaiming normal (fan-out, ReLU) for every convolution, biases 0, batch norm
weight 1 and bias 0, PReLU slopes 0.25 (PyTorch's and Torch's default).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from architectures._registry import ArchInfo, register

_PAPER = "1606.02147"
_REFERENCE = "https://github.com/e-lab/ENet-training"
BN_EPS = 1e-3  # the reference's SpatialBatchNormalization(n, 1e-3)


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=BN_EPS)


def _act(channels: int, prelu: bool) -> nn.Module:
    return nn.PReLU(channels) if prelu else nn.ReLU(inplace=True)


class InitialBlock(nn.Module):
    """3x3/2 conv (13 filters) || 2x2/2 max-pool of the input, concatenated; BN; PReLU."""

    def __init__(self, in_channels: int = 3, out_channels: int = 16) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels - in_channels, 3, stride=2, padding=1)
        self.bn = _bn(out_channels)
        self.act = nn.PReLU(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.cat([self.conv(x), F.max_pool2d(x, 2, 2)], dim=1)  # (N, 16, H/2, W/2)
        return self.act(self.bn(x))


class Bottleneck(nn.Module):
    """Regular, dilated or asymmetric bottleneck, keeping size and channels (paper Fig. 2b).

    Args:
        channels: Input and output channels; the branch works at ``channels // 4``.
        dilation: Dilation of the 3x3 main convolution (1: regular).
        asymmetric: Kernel size ``k`` of an asymmetric main convolution (``k x 1`` then
            ``1 x k``); 0 for a square 3x3 one.
        dropout: Spatial dropout probability at the end of the branch (0: no dropout layer).
        prelu: PReLU (encoder) or ReLU (decoder).
    """

    def __init__(
        self,
        channels: int,
        *,
        dilation: int = 1,
        asymmetric: int = 0,
        dropout: float = 0.0,
        prelu: bool = True,
    ) -> None:
        super().__init__()
        internal = channels // 4
        if asymmetric:
            pad = (asymmetric - 1) // 2
            main: list[nn.Module] = [
                nn.Conv2d(internal, internal, (asymmetric, 1), padding=(pad, 0), bias=False),
                nn.Conv2d(internal, internal, (1, asymmetric), padding=(0, pad)),
            ]
        else:
            main = [nn.Conv2d(internal, internal, 3, padding=dilation, dilation=dilation)]
        self.branch = nn.Sequential(
            nn.Conv2d(channels, internal, 1, bias=False),
            _bn(internal),
            _act(internal, prelu),
            *main,
            _bn(internal),
            _act(internal, prelu),
            nn.Conv2d(internal, channels, 1, bias=False),
            _bn(channels),
            *([nn.Dropout2d(dropout)] if dropout > 0 else []),  # none in the decoder
        )
        self.act = _act(channels, prelu)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(x + self.branch(x))  # (N, C, H, W)


class DownsamplingBottleneck(nn.Module):
    """Bottleneck x.0 of the encoder: halves H and W; returns the main branch's pool indices."""

    def __init__(self, in_channels: int, out_channels: int, *, dropout: float) -> None:
        super().__init__()
        internal = out_channels // 4
        self.extra_channels = out_channels - in_channels
        self.branch = nn.Sequential(
            nn.Conv2d(in_channels, internal, 2, stride=2, bias=False),  # replaces the 1x1
            _bn(internal),
            nn.PReLU(internal),
            nn.Conv2d(internal, internal, 3, padding=1),
            _bn(internal),
            nn.PReLU(internal),
            nn.Conv2d(internal, out_channels, 1, bias=False),
            _bn(out_channels),
            nn.Dropout2d(dropout),
        )
        self.act = nn.PReLU(out_channels)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        main, indices = F.max_pool2d(x, 2, 2, return_indices=True)  # (N, Cin, H/2, W/2)
        main = F.pad(main, (0, 0, 0, 0, 0, self.extra_channels))  # (N, Cout, H/2, W/2), zeros
        return self.act(main + self.branch(x)), indices


class UpsamplingBottleneck(nn.Module):
    """Bottleneck x.0 of the decoder: doubles H and W by max-unpooling the stored indices."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        internal = out_channels // 4
        self.main = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, 1, bias=False), _bn(out_channels)
        )
        self.branch = nn.Sequential(
            nn.Conv2d(in_channels, internal, 1, bias=False),
            _bn(internal),
            nn.ReLU(inplace=True),
            nn.ConvTranspose2d(internal, internal, 3, stride=2, padding=1, output_padding=1),
            _bn(internal),
            nn.ReLU(inplace=True),
            nn.Conv2d(internal, out_channels, 1, bias=False),
            _bn(out_channels),
        )
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
        # The pre-pooling size: exactly twice the pooled one, as H and W are multiples of 8.
        size = [2 * int(v) for v in indices.shape[-2:]]
        main = F.max_unpool2d(self.main(x), indices, 2, stride=2, output_size=size)
        return self.act(main + self.branch(x))  # (N, Cout, 2H, 2W)


def _stage23(channels: int, dropout: float) -> nn.Sequential:
    """The eight bottlenecks shared by stages 2 and 3 (2.1-2.8 / 3.1-3.8)."""
    return nn.Sequential(
        Bottleneck(channels, dropout=dropout),
        Bottleneck(channels, dilation=2, dropout=dropout),
        Bottleneck(channels, asymmetric=5, dropout=dropout),
        Bottleneck(channels, dilation=4, dropout=dropout),
        Bottleneck(channels, dropout=dropout),
        Bottleneck(channels, dilation=8, dropout=dropout),
        Bottleneck(channels, asymmetric=5, dropout=dropout),
        Bottleneck(channels, dilation=16, dropout=dropout),
    )


class ENet(nn.Module):
    """ENet (paper Table 1); logits at the input resolution for H, W multiples of 8."""

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.initial = InitialBlock(3, 16)
        self.bottleneck1_0 = DownsamplingBottleneck(16, 64, dropout=0.01)
        self.stage1 = nn.Sequential(*[Bottleneck(64, dropout=0.01) for _ in range(4)])
        self.bottleneck2_0 = DownsamplingBottleneck(64, 128, dropout=0.1)
        self.stage2 = _stage23(128, dropout=0.1)
        self.stage3 = _stage23(128, dropout=0.1)
        self.bottleneck4_0 = UpsamplingBottleneck(128, 64)
        self.stage4 = nn.Sequential(Bottleneck(64, prelu=False), Bottleneck(64, prelu=False))
        self.bottleneck5_0 = UpsamplingBottleneck(64, 16)
        self.stage5 = nn.Sequential(Bottleneck(16, prelu=False))
        self.fullconv = nn.ConvTranspose2d(16, num_classes, 2, stride=2)
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.initial(x)  # (N, 16, H/2, W/2)
        x, indices1 = self.bottleneck1_0(x)  # (N, 64, H/4, W/4); indices over 16 channels
        x = self.stage1(x)
        x, indices2 = self.bottleneck2_0(x)  # (N, 128, H/8, W/8); indices over 64 channels
        x = self.stage3(self.stage2(x))
        x = self.stage4(self.bottleneck4_0(x, indices2))  # (N, 64, H/4, W/4)
        x = self.stage5(self.bottleneck5_0(x, indices1))  # (N, 16, H/2, W/2)
        return self.fullconv(x)  # (N, K, H, W)


@register(
    ArchInfo(
        name="enet",
        title="ENet",
        paper=_PAPER,
        year=2016,
        family="real-time",
        reference=_REFERENCE,
        input_divisor=8,
        paper_params=370_000,
        paper_params_note=(
            "the paper's 0.37M (Table 3); 20 outputs as the authors' Cityscapes model (19 "
            "classes + Unlabeled); 65 parameters per class"
        ),
        paper_num_classes=20,
        paper_gflops=3.83,
        paper_resolution=(360, 640),
        paper_flops_convention="2*macs",
        notes=(
            "Full encoder-decoder trained end to end (the reference pre-trains the encoder "
            "with a 1/8-resolution classifier, not built here); ReLU in the decoder as the reference."
        ),
    )
)
def enet(*, num_classes: int) -> nn.Module:
    """ENet; 364,376 parameters at 20 outputs (the paper's 0.37M)."""
    return ENet(num_classes)
