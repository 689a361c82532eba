"""FC-DenseNet56, FC-DenseNet67 and FC-DenseNet103 ("the One Hundred Layers Tiramisu").

Paper: S. Jégou, M. Drozdzal, D. Vazquez, A. Romero, Y. Bengio, "The One Hundred Layers
Tiramisu: Fully Convolutional DenseNets for Semantic Segmentation", CVPR Workshops 2017,
arXiv 1611.09326. Reference implementation consulted (for understanding only; Theano/Lasagne):
https://github.com/SimJeg/FC-DenseNet (``FC-DenseNet.py``, ``layers.py``,
``config/FC-DenseNet103.py``). Our own code.

Structure (paper Table 1 building blocks, Table 2 architecture):

* a first 3x3 convolution with 48 output channels (with bias);
* 5 dense blocks on the way down, each followed by a transition down (TD): batch norm, ReLU,
  1x1 convolution keeping the channel count m, dropout 0.2, 2x2 max pooling;
* a bottleneck dense block;
* 5 transitions up (TU), each a 3x3 transposed convolution with stride 2 applied to *only the
  new feature maps of the previous dense block* (n_layers x growth_rate channels in and out),
  concatenated with the skip connection (the full stack of the same-resolution down block), and
  each followed by a dense block;
* a 1x1 convolution to the classes on the full stack of the last dense block.

A dense-block layer is batch norm, ReLU, 3x3 convolution (growth-rate channels, with bias),
dropout 0.2; its output is concatenated to its input (the "stack"). Configurations:

=============  ======  =========================================  =====  ============
entry          growth  layers per dense block                     paper  ours, 11 cl.
                       (down / bottleneck / up)
=============  ======  =========================================  =====  ============
FC-DenseNet56  12      4 in all 11 blocks                         1.5M   1,376,795
FC-DenseNet67  16      5 in all 11 blocks                         3.5M   3,463,243
FC-DenseNet103 16      4, 5, 7, 10, 12 / 15 / 12, 10, 7, 5, 4     9.4M   9,322,091
=============  ======  =========================================  =====  ============

Depth check (convolutions, transposed ones included; ``tests/test_fcdensenet.py`` counts
them): 56 = 1 + 11 x 4 + 5 TD + 5 TU + 1; 67 = 1 + 11 x 5 + 5 + 5 + 1; 103 = 1 + 91 + 5 + 5 +
1. Stack channels after each dense block of FC-DenseNet103 (the ``m`` of Table 2, with the
reference README's correction of the bottleneck onwards by +16): 112, 192, 304, 464, 656 / 896 /
1088, 816, 576, 384, 256.

Parameter counts (paper Table 3, CamVid, 11 classes) are trainable parameters here (convolution
weights and biases, batch-norm scale and shift), like every other entry. FC-DenseNet67 and 103
are within 1.1% of the paper (3.46M vs 3.5M, 9.32M vs 9.4M). Counting also the two batch-norm
running statistics per channel, as the reference's ``summary()`` does (Lasagne lists them as
non-trainable parameters), gives 1,397,963 / 3,502,923 / 9,425,163: 67 and 103 then round
exactly to the paper's 3.5M and 9.4M. FC-DenseNet56, however, is 1.38M (1.40M with the
statistics) against the paper's 1.5M, -8.2%: the architecture as described (growth 12, 4
layers per block, 48 first filters, 5 poolings; its 56 convolutions confirm the depth) does not
give 1.5M under either convention, and we found nothing in the paper or the reference that
would (the reference ships only the FC-DenseNet103 configuration). ``tests/paper_gaps.py`` pins
the measured count with this reason.

The paper reports no compute figure. Measured multiply-adds (fvcore, 11 classes): 32.76 / 76.78
/ 73.74 GMACs for FC-DenseNet56 / 67 / 103 on a CamVid 360x480 frame (padded to 384x480 by the
harness), 8.92 / 20.90 / 20.07 GMACs on the 224x224 training crops. FC-DenseNet67 costs more
than 103: five layers of growth 16 in the full-resolution blocks against four, and the
full-resolution blocks dominate.

Deviations and choices:

* Transposed convolution alignment: as the reference (``crop='valid'``, then a centre crop to
  the skip's size, which for a one-pixel excess keeps the top-left), the 3x3 stride-2 transposed
  convolution runs without padding (output 2H+1) and is cropped to the skip's ``H x W``.
* Batch norm uses PyTorch's defaults (eps 1e-5, momentum 0.1) instead of Lasagne's eps 1e-4;
  batch statistics in train mode, running statistics in eval mode, as the reference.
* Initialisation as the reference: He-uniform (gain sqrt(2)) for every convolution, transposed
  ones included, i.e. ``kaiming_uniform_(nonlinearity="relu")`` (Lasagne's fan-in of a
  transposed-convolution weight ``(in, out, k, k)`` is ``out * k * k``, as PyTorch's); zero
  biases; batch norm weight 1, bias 0.
* Dropout is element-wise (Lasagne ``DropoutLayer``), rate 0.2, option ``dropout``.
* Input sizes must be multiples of 32 (5 poolings): the harness pads and crops
  (``input_divisor=32``); the reference instead trained on 224x224 crops and tested at 360x480
  with its center-cropping concatenation.

Efficiency on CPU: each dense layer concatenates once (``stack = cat([stack, new])``, the same
volume the reference copies), the final concatenation of a block is skipped when only its new
feature maps are needed (every up-path block but the last), and the new feature maps that feed a
transition up are concatenated once. A preallocated buffer written in place would avoid the
copies but breaks autograd's saved-tensor checks (the batch norms save views of it). Profiled
(FC-DenseNet103, one training step, batch 4 at 64x64, one thread): concatenation 2% of the step
and the gradient additions at the concatenations 3%, against about 65% for the convolutions and
11% for the batch norms.
"""

from __future__ import annotations

import torch
from torch import nn

from architectures._registry import ArchInfo, register

_PAPER = "1611.09326"
_REFERENCE = "https://github.com/SimJeg/FC-DenseNet"
FIRST_CHANNELS = 48
DROPOUT = 0.2

# (growth rate, layers per dense block: 5 down, bottleneck, 5 up), paper Table 2 and Sec. 4.
CONFIGS: dict[str, tuple[int, tuple[int, ...]]] = {
    "fcdensenet56": (12, (4,) * 11),
    "fcdensenet67": (16, (5,) * 11),
    "fcdensenet103": (16, (4, 5, 7, 10, 12, 15, 12, 10, 7, 5, 4)),
}


class DenseLayer(nn.Sequential):
    """BN, ReLU, 3x3 convolution to ``growth_rate`` channels, dropout (paper Table 1, "Layer")."""

    def __init__(self, in_channels: int, growth_rate: int, dropout: float) -> None:
        super().__init__(
            nn.BatchNorm2d(in_channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(in_channels, growth_rate, 3, padding=1),
            nn.Dropout(dropout),
        )


class DenseBlock(nn.Module):
    """``num_layers`` dense layers, each seeing the concatenation of the input and all earlier
    layers' outputs.

    ``forward`` returns ``(stack, new)``: the input concatenated with every new feature map
    (``in_channels + num_layers * growth_rate`` channels; ``None`` when ``keep_stack`` is false)
    and the new feature maps alone (``num_layers * growth_rate`` channels; ``None`` when
    ``keep_new`` is false).
    """

    def __init__(
        self,
        in_channels: int,
        growth_rate: int,
        num_layers: int,
        dropout: float,
        *,
        keep_stack: bool = True,
        keep_new: bool = False,
    ) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            DenseLayer(in_channels + i * growth_rate, growth_rate, dropout)
            for i in range(num_layers)
        )
        self.in_channels = in_channels
        self.out_channels = in_channels + num_layers * growth_rate
        self.new_channels = num_layers * growth_rate
        self.keep_stack = keep_stack
        self.keep_new = keep_new

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        stack = x  # (N, C_in, H, W)
        new: list[torch.Tensor] = []
        last = len(self.layers) - 1
        for i, layer in enumerate(self.layers):
            out = layer(stack)  # (N, k, H, W)
            new.append(out)
            if i < last or self.keep_stack:  # one copy per layer; the last only if needed
                stack = torch.cat([stack, out], 1)  # (N, C_in + (i + 1) k, H, W)
        return (
            stack if self.keep_stack else None,
            torch.cat(new, 1) if self.keep_new else None,  # (N, L k, H, W)
        )


class TransitionDown(nn.Sequential):
    """BN, ReLU, 1x1 convolution (``channels`` -> ``channels``), dropout, 2x2 max pooling."""

    def __init__(self, channels: int, dropout: float) -> None:
        super().__init__(
            nn.BatchNorm2d(channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(channels, channels, 1),
            nn.Dropout(dropout),
            nn.MaxPool2d(2),
        )


class TransitionUp(nn.Module):
    """3x3 transposed convolution, stride 2, on the new feature maps of the previous block;
    cropped to the skip connection's size and concatenated with it (upsampled maps first)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.up = nn.ConvTranspose2d(channels, channels, 3, stride=2)

    def forward(self, new: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        h, w = skip.shape[-2:]
        up = self.up(new)[..., :h, :w]  # (N, C, 2h + 1, 2w + 1) -> (N, C, H, W)
        return torch.cat([up, skip], 1)  # (N, C + C_skip, H, W)


class FCDenseNet(nn.Module):
    """Fully convolutional DenseNet.

    Args:
        num_classes: Output channels of the final 1x1 convolution.
        growth_rate: New feature maps per dense layer (``k``).
        layers_per_block: ``2 * num_pools + 1`` entries: the down blocks, the bottleneck and the
            up blocks.
        first_channels: Output channels of the first 3x3 convolution.
        dropout: Dropout rate after every dense-layer and transition-down convolution.
        in_channels: Input image channels.
    """

    def __init__(
        self,
        num_classes: int,
        growth_rate: int,
        layers_per_block: tuple[int, ...],
        first_channels: int = FIRST_CHANNELS,
        dropout: float = DROPOUT,
        in_channels: int = 3,
    ) -> None:
        super().__init__()
        if len(layers_per_block) % 2 != 1 or len(layers_per_block) < 3:
            raise ValueError(
                f"layers_per_block needs 2 * num_pools + 1 entries (down blocks, bottleneck, up "
                f"blocks); got {len(layers_per_block)}: {layers_per_block}."
            )
        num_pools = len(layers_per_block) // 2
        down_layers = layers_per_block[:num_pools]
        bottleneck_layers = layers_per_block[num_pools]
        up_layers = layers_per_block[num_pools + 1 :]
        self.num_pools = num_pools

        self.first_conv = nn.Conv2d(in_channels, first_channels, 3, padding=1)
        channels = first_channels
        self.down_blocks = nn.ModuleList()
        self.transitions_down = nn.ModuleList()
        skip_channels = []
        for n in down_layers:
            block = DenseBlock(channels, growth_rate, n, dropout)
            channels = block.out_channels
            skip_channels.append(channels)
            self.down_blocks.append(block)
            self.transitions_down.append(TransitionDown(channels, dropout))

        # Only the bottleneck's new feature maps are upsampled, never its input.
        self.bottleneck = DenseBlock(
            channels, growth_rate, bottleneck_layers, dropout, keep_stack=False, keep_new=True
        )
        new_channels = self.bottleneck.new_channels
        self.transitions_up = nn.ModuleList()
        self.up_blocks = nn.ModuleList()
        for i, (n, skip) in enumerate(zip(up_layers, reversed(skip_channels), strict=True)):
            self.transitions_up.append(TransitionUp(new_channels))
            last = i == num_pools - 1
            block = DenseBlock(
                new_channels + skip, growth_rate, n, dropout, keep_stack=last, keep_new=not last
            )
            self.up_blocks.append(block)
            new_channels = block.new_channels
        self.classifier = nn.Conv2d(self.up_blocks[-1].out_channels, num_classes, 1)
        self._init_weights()

    def _init_weights(self) -> None:
        # Lasagne HeUniform(gain="relu") on every convolution, transposed or not; zero biases.
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
                nn.init.kaiming_uniform_(m.weight, mode="fan_in", nonlinearity="relu")
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        stack = self.first_conv(x)  # (N, 48, H, W)
        skips = []
        for block, down in zip(self.down_blocks, self.transitions_down, strict=True):
            stack, _ = block(stack)  # (N, m_i, H / 2^i, W / 2^i)
            skips.append(stack)
            stack = down(stack)  # (N, m_i, H / 2^(i+1), W / 2^(i+1))
        _, new = self.bottleneck(stack)  # (N, L_b k, H / 32, W / 32)
        for up, block, skip in zip(
            self.transitions_up, self.up_blocks, reversed(skips), strict=True
        ):
            stack = up(new, skip)  # (N, L k + m_skip, 2h, 2w)
            stack, new = block(stack)  # last block: stack (N, m, H, W); others: new only
        return self.classifier(stack)  # (N, K, H, W)


def _build(name: str, num_classes: int, dropout: float) -> FCDenseNet:
    growth_rate, layers = CONFIGS[name]
    return FCDenseNet(num_classes, growth_rate, layers, dropout=dropout)


_PARAMS_NOTE = (
    "11 classes (CamVid), paper Table 3; trainable parameters (the reference code's count also "
    "includes the batch-norm running statistics)"
)
_COMMON = dict(
    paper=_PAPER,
    year=2017,
    family="encoder-decoder",
    reference=_REFERENCE,
    input_divisor=32,
    paper_params_note=_PARAMS_NOTE,
    paper_num_classes=11,
    notes="Inputs padded to a multiple of 32 by the harness (the reference center-crops at the skips); PyTorch batch-norm eps 1e-5.",
)


@register(ArchInfo(name="fcdensenet56", title="FC-DenseNet56", paper_params=1_500_000, **_COMMON))
def fcdensenet56(
    *, num_classes: int, pretrained_backbone: bool = False, dropout: float = DROPOUT
) -> nn.Module:
    """FC-DenseNet56: growth rate 12, 4 layers per dense block (1.37M params at 11 classes).

    ``pretrained_backbone`` is accepted for a uniform interface; FC-DenseNets are trained from
    scratch (there is no ImageNet backbone), so ``True`` raises ``ValueError``.
    """
    _no_backbone(pretrained_backbone, "fcdensenet56")
    return _build("fcdensenet56", num_classes, dropout)


@register(ArchInfo(name="fcdensenet67", title="FC-DenseNet67", paper_params=3_500_000, **_COMMON))
def fcdensenet67(
    *, num_classes: int, pretrained_backbone: bool = False, dropout: float = DROPOUT
) -> nn.Module:
    """FC-DenseNet67: growth rate 16, 5 layers per dense block (3.45M params at 11 classes)."""
    _no_backbone(pretrained_backbone, "fcdensenet67")
    return _build("fcdensenet67", num_classes, dropout)


@register(ArchInfo(name="fcdensenet103", title="FC-DenseNet103", paper_params=9_400_000, **_COMMON))
def fcdensenet103(
    *, num_classes: int, pretrained_backbone: bool = False, dropout: float = DROPOUT
) -> nn.Module:
    """FC-DenseNet103: growth rate 16, blocks of 4, 5, 7, 10, 12 / 15 / 12, 10, 7, 5, 4 layers
    (9.26M params at 11 classes)."""
    _no_backbone(pretrained_backbone, "fcdensenet103")
    return _build("fcdensenet103", num_classes, dropout)


def _no_backbone(pretrained_backbone: bool, name: str) -> None:
    if pretrained_backbone:
        raise ValueError(
            f"{name} has no pretrained backbone: the paper trains FC-DenseNets from scratch. "
            f"Build it with pretrained_backbone=False."
        )
