"""An example plugin: a small U-Net-style encoder-decoder registered as ``my_tiny_unet``.

Copy this file, rename the entry, replace the model, and run it through the harness::

    python run_bench.py list archs --plugin my_arch_plugin.py      # it is registered
    python run_bench.py profile --plugin my_arch_plugin.py --arch my_tiny_unet \\
        --input-shape 1,3,512,512                                   # params and MACs
    python run_bench.py run --suite quick --plugin my_arch_plugin.py --archs my_tiny_unet
    SEMSEG_BENCH_PLUGINS=my_arch_plugin.py \\
        python -m pytest tests/test_architecture_contract.py       # the contract test

What an entry needs (see ``architectures/_registry.py`` for the full contract):

1. A builder taking keyword-only arguments, ``num_classes`` first, and returning an
   ``nn.Module``. It must not download anything; options get defaults.
2. ``@register(ArchInfo(...))`` on the builder: the registry name (lower-case, ``[a-z0-9_]``),
   a title, the paper (arXiv id or DOI) and year, and ``input_divisor``: inputs whose H and W
   are multiples of it must work (the harness pads other sizes up and crops the logits back).
3. In eval mode ``forward`` returns logits ``(N, num_classes, H, W)`` at the input resolution.
4. In train mode it may also return auxiliary logits: ``{"out": logits, "aux": aux_logits}``.
   Every extra key needs a loss weight in ``ArchInfo.aux_weights``. Auxiliary heads must not run
   in eval mode, so that measured speed and MACs cover only the deployed network.
5. Only set ``paper_params`` / ``paper_gflops`` when the paper reports figures for exactly this
   model (with ``paper_num_classes``, ``paper_resolution`` and ``paper_flops_convention``): the
   contract test checks them against measurement. This scaled-down model reports none.

This file only imports ``torch`` and ``architectures``: entries know nothing of the harness.

Paper: O. Ronneberger, P. Fischer, T. Brox, "U-Net: Convolutional Networks for Biomedical Image
Segmentation", MICCAI 2015, arXiv 1505.04597. Deviations: 3 resolution levels instead of 5,
width 16 instead of 64, "same" padding (no cropping of skip connections), batch norm after each
convolution, bilinear upsampling + 3x3 convolution instead of up-convolutions, and an auxiliary
deep-supervision head on the bottleneck (train mode only), to show the dict output.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from architectures import ArchInfo, register


def _double_conv(in_ch: int, out_ch: int) -> nn.Sequential:
    """Two 3x3 conv -> BN -> ReLU blocks (U-Net's basic unit, with "same" padding)."""
    return nn.Sequential(
        nn.Conv2d(in_ch, out_ch, 3, padding=1, bias=False),
        nn.BatchNorm2d(out_ch),
        nn.ReLU(inplace=True),
        nn.Conv2d(out_ch, out_ch, 3, padding=1, bias=False),
        nn.BatchNorm2d(out_ch),
        nn.ReLU(inplace=True),
    )


class _Up(nn.Module):
    """Upsample 2x, concatenate the encoder skip, fuse with a double conv."""

    def __init__(self, in_ch: int, skip_ch: int, out_ch: int) -> None:
        super().__init__()
        self.fuse = _double_conv(in_ch + skip_ch, out_ch)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
        return self.fuse(torch.cat([x, skip], dim=1))


class TinyUNet(nn.Module):
    """A three-level U-Net; output stride 8, so inputs must be multiples of 8."""

    def __init__(self, num_classes: int, width: int = 16) -> None:
        super().__init__()
        w = width
        self.enc1 = _double_conv(3, w)
        self.enc2 = _double_conv(w, 2 * w)
        self.enc3 = _double_conv(2 * w, 4 * w)
        self.bottleneck = _double_conv(4 * w, 8 * w)
        self.up3 = _Up(8 * w, 4 * w, 4 * w)
        self.up2 = _Up(4 * w, 2 * w, 2 * w)
        self.up1 = _Up(2 * w, w, w)
        self.head = nn.Conv2d(w, num_classes, 1)
        self.aux_head = nn.Conv2d(8 * w, num_classes, 1)  # deep supervision, train mode only

    def forward(self, x: torch.Tensor) -> torch.Tensor | dict[str, torch.Tensor]:
        size = x.shape[-2:]
        e1 = self.enc1(x)  # (N, w, H, W)
        e2 = self.enc2(F.max_pool2d(e1, 2))  # (N, 2w, H/2, W/2)
        e3 = self.enc3(F.max_pool2d(e2, 2))  # (N, 4w, H/4, W/4)
        b = self.bottleneck(F.max_pool2d(e3, 2))  # (N, 8w, H/8, W/8)
        d = self.up3(b, e3)  # (N, 4w, H/4, W/4)
        d = self.up2(d, e2)  # (N, 2w, H/2, W/2)
        d = self.up1(d, e1)  # (N, w, H, W)
        out = self.head(d)  # (N, K, H, W)
        if not self.training:
            return out
        aux = F.interpolate(
            self.aux_head(b), size=size, mode="bilinear", align_corners=False
        )  # (N, K, H, W)
        return {"out": out, "aux": aux}


@register(
    ArchInfo(
        name="my_tiny_unet",
        title="Tiny U-Net (example plugin)",
        paper="1505.04597",
        year=2015,
        family="encoder-decoder",
        reference="https://lmb.informatik.uni-freiburg.de/people/ronneber/u-net/",
        input_divisor=8,  # three 2x poolings
        aux_weights=(("aux", 0.4),),  # loss = CE(out) + 0.4 * CE(aux) in train mode
        notes="Scaled-down U-Net (3 levels, width 16, BN, bilinear upsampling) with a "
        "train-only deep-supervision head; an example, not a paper reproduction.",
    )
)
def my_tiny_unet(*, num_classes: int, width: int = 16) -> nn.Module:
    """Tiny U-Net. ``width`` is the channel count of the first level (doubled per level)."""
    return TinyUNet(num_classes, width=width)
