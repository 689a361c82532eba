"""ERFNet: Efficient Residual Factorized ConvNet.

Paper: E. Romera, J. M. Alvarez, L. M. Bergasa, R. Arroyo, "ERFNet: Efficient Residual Factorized
ConvNet for Real-time Semantic Segmentation", IEEE Transactions on Intelligent Transportation
Systems 19(1), 2018, DOI 10.1109/TITS.2017.2750080 (no arXiv version).
Reference implementation consulted (for understanding only): https://github.com/Eromera/erfnet_pytorch
(``train/erfnet.py``). Our own code.

Structure (the paper's Table 1, 23 layers):

* Encoder: downsampler (3 -> 16), downsampler (16 -> 64), 5 x non-bottleneck-1D (64),
  downsampler (64 -> 128), 8 x non-bottleneck-1D (128) with dilations 2, 4, 8, 16, 2, 4, 8, 16.
  A downsampler concatenates a 3x3 stride-2 convolution (``out - in`` channels) with a 2x2 max
  pooling of the input (``in`` channels), then batch norm and ReLU (the ENet initial block).
* Non-bottleneck-1D: 3x1 conv, ReLU, 1x3 conv, BN, ReLU, 3x1 conv (dilated), ReLU, 1x3 conv
  (dilated), BN, dropout, then the residual addition and ReLU. All four convolutions have biases.
  Dropout (spatial, ``Dropout2d``) is 0.03 in the 64-channel blocks and 0.3 in the 128-channel
  blocks, as in the reference code; the decoder has none.
* Decoder: 3x3 stride-2 transposed convolution (128 -> 64) + BN + ReLU, 2 x non-bottleneck-1D (64),
  transposed convolution (64 -> 16) + BN + ReLU, 2 x non-bottleneck-1D (16), and a final 2x2
  stride-2 transposed convolution (16 -> K) to full resolution.

Batch norm uses ``eps=1e-3`` as the reference code. Initialisation: Kaiming-normal (fan-out,
ReLU) convolutions and zero biases, BN weight 1 / bias 0 (the reference keeps PyTorch defaults).

Parameter count: 2,062,956 + 65 K (K classes); 2,064,256 at the 20 outputs the reference trains
on Cityscapes (19 classes + void with loss weight 0), against the paper's "2.1M" (-1.7%). The
paper reports no FLOP count, so none is declared; measured (torch 2.14.1, fvcore 0.1.5): 26.61
GMACs at 512x1024 (the resolution of the paper's Cityscapes timings), 20 classes.

Deviations: none in the architecture. The paper's two-stage training (encoder first on 1/8
labels with its own 1x1 classifier, then the whole net) is a training recipe and not part of
this entry: the harness trains the whole network end to end. The authors' ImageNet-pretrained
encoder is not available through torchvision, so there is no ``pretrained_backbone``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from architectures._registry import ArchInfo, register

_PAPER = "10.1109/TITS.2017.2750080"
_REFERENCE = "https://github.com/Eromera/erfnet_pytorch"
BN_EPS = 1e-3
ENCODER_DILATIONS = (2, 4, 8, 16, 2, 4, 8, 16)


class DownsamplerBlock(nn.Module):
    """3x3 stride-2 conv (``out - in`` channels) concatenated with 2x2 max pooling, BN, ReLU."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        if out_channels <= in_channels:
            raise ValueError(
                f"DownsamplerBlock needs out_channels > in_channels (the pooled input is part of "
                f"the output); got {in_channels} -> {out_channels}."
            )
        self.conv = nn.Conv2d(in_channels, out_channels - in_channels, 3, stride=2, padding=1)
        self.pool = nn.MaxPool2d(2, stride=2)
        self.bn = nn.BatchNorm2d(out_channels, eps=BN_EPS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.cat([self.conv(x), self.pool(x)], dim=1)  # (N, out, H/2, W/2)
        return F.relu(self.bn(x))


class NonBottleneck1D(nn.Module):
    """Residual block of two factorised 3x3 convolutions (3x1 then 1x3), the second dilated."""

    def __init__(self, channels: int, dilation: int = 1, dropout: float = 0.0) -> None:
        super().__init__()
        d = dilation
        self.conv3x1_1 = nn.Conv2d(channels, channels, (3, 1), padding=(1, 0))
        self.conv1x3_1 = nn.Conv2d(channels, channels, (1, 3), padding=(0, 1))
        self.bn1 = nn.BatchNorm2d(channels, eps=BN_EPS)
        self.conv3x1_2 = nn.Conv2d(channels, channels, (3, 1), padding=(d, 0), dilation=(d, 1))
        self.conv1x3_2 = nn.Conv2d(channels, channels, (1, 3), padding=(0, d), dilation=(1, d))
        self.bn2 = nn.BatchNorm2d(channels, eps=BN_EPS)
        self.dropout = nn.Dropout2d(dropout) if dropout > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.conv3x1_1(x))
        out = F.relu(self.bn1(self.conv1x3_1(out)))
        out = F.relu(self.conv3x1_2(out))
        out = self.dropout(self.bn2(self.conv1x3_2(out)))
        return F.relu(out + x)  # (N, C, H, W)


class UpsamplerBlock(nn.Module):
    """3x3 stride-2 transposed convolution (exactly 2x), BN, ReLU."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = nn.ConvTranspose2d(
            in_channels, out_channels, 3, stride=2, padding=1, output_padding=1
        )
        self.bn = nn.BatchNorm2d(out_channels, eps=BN_EPS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)))  # (N, out, 2H, 2W)


class ERFNet(nn.Module):
    """ERFNet (Table 1 of the paper): 16-layer encoder, 7-layer decoder, output stride 8."""

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        encoder: list[nn.Module] = [DownsamplerBlock(3, 16), DownsamplerBlock(16, 64)]
        encoder += [NonBottleneck1D(64, 1, dropout=0.03) for _ in range(5)]
        encoder.append(DownsamplerBlock(64, 128))
        encoder += [NonBottleneck1D(128, d, dropout=0.3) for d in ENCODER_DILATIONS]
        self.encoder = nn.Sequential(*encoder)
        self.decoder = nn.Sequential(
            UpsamplerBlock(128, 64),
            NonBottleneck1D(64),
            NonBottleneck1D(64),
            UpsamplerBlock(64, 16),
            NonBottleneck1D(16),
            NonBottleneck1D(16),
        )
        self.output_conv = nn.ConvTranspose2d(16, num_classes, 2, stride=2)
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.encoder(x)  # (N, 128, H/8, W/8)
        x = self.decoder(x)  # (N, 16, H/2, W/2)
        return self.output_conv(x)  # (N, K, H, W)


@register(
    ArchInfo(
        name="erfnet",
        title="ERFNet",
        paper=_PAPER,
        year=2018,
        family="real-time",
        reference=_REFERENCE,
        input_divisor=8,
        paper_params=2_100_000,
        paper_params_note=(
            "the paper's '2.1M'; 20 outputs as the reference's Cityscapes training (19 classes "
            "+ void); 2,064,256 measured"
        ),
        paper_num_classes=20,
        notes="As the paper; trained end to end (no separate encoder stage, no ImageNet encoder).",
    )
)
def erfnet(*, num_classes: int, pretrained_backbone: bool = False) -> nn.Module:
    """ERFNet: factorised non-bottleneck-1D blocks, dilations 2-16, deconvolution decoder
    (2.06M params at 20 classes).

    ``pretrained_backbone`` is accepted for a uniform interface: the authors' ImageNet-pretrained
    encoder is not a torchvision model, so ``True`` raises ``ValueError``.
    """
    if pretrained_backbone:
        raise ValueError(
            "erfnet has no torchvision pretrained backbone (the authors pretrained the encoder "
            "on ImageNet themselves). Build it with pretrained_backbone=False."
        )
    return ERFNet(num_classes)
