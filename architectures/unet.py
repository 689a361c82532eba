"""U-Net.

Paper: O. Ronneberger, P. Fischer, T. Brox, "U-Net: Convolutional Networks for Biomedical Image
Segmentation", MICCAI 2015, arXiv 1505.04597. Reference implementations consulted (for
understanding only): the paper's Fig. 1 and Sec. 2-3, and the Keras re-implementation
https://github.com/zhixuhao/unet (``model.py``) for the placement of the dropout layers. Our own
code.

Structure (paper Fig. 1): a contracting path of 4 levels, each two 3x3 convolutions with ReLU
followed by 2x2 max pooling, with 64, 128, 256, 512 channels; a bottom level of two 3x3
convolutions with 1024 channels; an expanding path of 4 levels, each a 2x2 "up-convolution"
(transposed convolution, stride 2) that halves the channels, a concatenation with the
contracting path's feature map of the same level (skip first, as in Fig. 1), and two 3x3
convolutions with ReLU; a final 1x1 convolution to the classes. 23 convolutions in all, as in
the paper. Drop-out "at the end of the contracting path" (Sec. 3.1): rate 0.5 on the output of
the 512-channel level (which feeds both its skip and the pooling) and of the 1024-channel
bottom, as in the Keras re-implementation (the paper states neither the rate nor the place).

Deviations:

* "Same" convolutions (padding 1) instead of the paper's valid (unpadded) ones, so the output
  has the input's size and the skips need no cropping; the paper instead predicts a 388x388
  centre from a 572x572 tile and segments large images with its overlap-tile strategy (mirror
  padding). Any input whose sides are multiples of 16 works here; the harness pads other sizes
  and crops the logits back (``input_divisor=16``).
* Batch normalisation (``batch_norm=True``, the default) after every 3x3 convolution, before its
  ReLU, with the convolution's bias removed. The original has none (2015); it makes training
  from scratch in the harness's ~150-step ``quick`` suite far easier. ``batch_norm=False``
  builds the paper-faithful network (convolutions with biases, no normalisation). The
  up-convolutions and the final 1x1 convolution keep their biases and get no batch norm in
  either variant.
* No ReLU after the up-convolution (Fig. 1 draws it as its own operation, "up-conv 2x2").

Initialisation (Sec. 3): weights drawn from a Gaussian with standard deviation sqrt(2 / N), N
the number of incoming nodes of one neuron: ``kaiming_normal_(mode="fan_in")`` for the
convolutions; for the 2x2 stride-2 up-convolutions each output pixel receives one tap per input
channel, so N = C_in (PyTorch's fan-in of a transposed-convolution weight would be
C_out x 2 x 2 = 2 C_in). Biases 0; batch norm weight 1, bias 0.

Parameters: the paper reports none. Measured: 31,031,810 for 2 classes without batch norm
(``batch_norm=False``; the often quoted "31M"), 31,037,698 with batch norm (the default: each of
the 18 3x3 convolutions trades its C_out biases for 2 C_out batch-norm parameters, +5,888).
21 classes: 31,033,045 (without), 31,038,933 (with). Compute, which the paper does not report
either (fvcore multiply-adds, 2 classes, batch norm not counted, so both variants): 192.69 GMACs
at 512x512 (an ISBI 2012 slice), 243.87 GMACs for the paper's 572x572 input tile (padded to
576x576 by the harness; "same" convolutions keep every layer at full size, where the paper's
valid ones shrink them to a 388x388 output).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from architectures._registry import ArchInfo, register

_PAPER = "1505.04597"
_REFERENCE = "https://github.com/zhixuhao/unet"
WIDTHS = (64, 128, 256, 512, 1024)
DROPOUT = 0.5


class DoubleConv(nn.Sequential):
    """Two 3x3 "same" convolutions, each followed by (batch norm and) ReLU."""

    def __init__(self, in_channels: int, out_channels: int, batch_norm: bool) -> None:
        layers: list[nn.Module] = []
        for cin in (in_channels, out_channels):
            layers.append(nn.Conv2d(cin, out_channels, 3, padding=1, bias=not batch_norm))
            if batch_norm:
                layers.append(nn.BatchNorm2d(out_channels))
            layers.append(nn.ReLU(inplace=True))
        super().__init__(*layers)


class UNet(nn.Module):
    """U-Net with "same" convolutions.

    Args:
        num_classes: Output channels of the final 1x1 convolution.
        batch_norm: Batch norm after every 3x3 convolution (a deviation from the paper).
        dropout: Dropout rate at the end of the contracting path (0 disables it).
        in_channels: Input image channels.
        widths: Channels per level, top to bottom (the paper: 64, 128, 256, 512, 1024).
    """

    def __init__(
        self,
        num_classes: int,
        batch_norm: bool = True,
        dropout: float = DROPOUT,
        in_channels: int = 3,
        widths: tuple[int, ...] = WIDTHS,
    ) -> None:
        super().__init__()
        self.down = nn.ModuleList()
        cin = in_channels
        for width in widths[:-1]:
            self.down.append(DoubleConv(cin, width, batch_norm))
            cin = width
        self.bottom = DoubleConv(cin, widths[-1], batch_norm)
        self.drop = nn.Dropout(dropout)
        self.up = nn.ModuleList()
        self.decode = nn.ModuleList()
        for width in reversed(widths[:-1]):
            self.up.append(nn.ConvTranspose2d(2 * width, width, 2, stride=2))  # halves C
            self.decode.append(DoubleConv(2 * width, width, batch_norm))  # skip + upsampled
        self.classifier = nn.Conv2d(widths[0], num_classes, 1)
        self._init_weights()

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
            elif isinstance(m, nn.ConvTranspose2d):
                # Stride = kernel: one tap per input channel reaches each output pixel.
                nn.init.normal_(m.weight, std=math.sqrt(2.0 / m.in_channels))
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
            if getattr(m, "bias", None) is not None:
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        last = len(self.down) - 1
        for i, block in enumerate(self.down):
            x = block(x)  # (N, 64 * 2^i, H / 2^i, W / 2^i)
            if i == last:
                x = self.drop(x)  # end of the contracting path: also the skip is dropped
            skips.append(x)
            x = F.max_pool2d(x, 2)
        x = self.drop(self.bottom(x))  # (N, 1024, H / 16, W / 16)
        for up, decode, skip in zip(self.up, self.decode, reversed(skips), strict=True):
            x = up(x)  # (N, C, 2h, 2w), C = half the input channels
            x = decode(torch.cat([skip, x], 1))  # (N, 2C, 2h, 2w) -> (N, C, 2h, 2w)
        return self.classifier(x)  # (N, K, H, W)


@register(
    ArchInfo(
        name="unet",
        title="U-Net",
        paper=_PAPER,
        year=2015,
        family="encoder-decoder",
        reference=_REFERENCE,
        input_divisor=16,
        notes="'Same' convs (no valid convs / overlap-tile); batch norm added by default "
        "(batch_norm=False is the paper's network).",
    )
)
def unet(
    *,
    num_classes: int,
    pretrained_backbone: bool = False,
    batch_norm: bool = True,
    dropout: float = DROPOUT,
) -> nn.Module:
    """U-Net (64..1024 channels, 4 poolings), "same" convolutions.

    Args:
        num_classes: Number of output classes.
        pretrained_backbone: Not supported: U-Net is trained from scratch (``True`` raises).
        batch_norm: Batch norm after every 3x3 convolution (default; a deviation from the
            paper). ``False`` builds the paper's network.
        dropout: Dropout rate at the end of the contracting path.

    Raises:
        ValueError: if ``pretrained_backbone`` is true.
    """
    if pretrained_backbone:
        raise ValueError(
            "unet has no pretrained backbone: the paper trains U-Net from scratch. Build it "
            "with pretrained_backbone=False."
        )
    return UNet(num_classes, batch_norm=batch_norm, dropout=dropout)
