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

Variants (builder options; the defaults are the network above, so ``enet(num_classes=K)`` is
the paper's): ``NTKHOA95_OPTIONS`` reaches the independent reimplementation
https://github.com/ntkhoa95/ENet_PyTorch (commit 67a87d1, ``models/enet_modules.py`` and
``models/ENet.py``) whose CamVid weights are in ``../shared/checkpoints/camvid``; each option is
one way in which it differs, read from its state dict (shapes, names, shared storage) and, for
what leaves no trace there, from its code:

* ``bn_eps`` (1e-3; theirs 1e-5): PyTorch's default ``nn.BatchNorm2d`` everywhere.
* ``initial_bn`` ("all": batch norm over the 16 concatenated channels; theirs "conv": over the
  13 convolution channels only, before the concatenation; ``initial.norm`` has 13 channels).
* ``prelu`` ("channel": a PReLU with one slope per channel at each of a bottleneck's three
  non-linearities; theirs "shared": one single-slope PReLU per bottleneck, the same module after
  the projection, after the main convolution and after the addition; their four keys
  ``activation``, ``activation1..3`` of a block share one storage). The initial block keeps
  ``PReLU(16)`` either way.
* ``decoder_act`` ("relu"; theirs "prelu": stages 4-5 use the same PReLU as the encoder).
* ``internal_from`` ("out": the branch of bottlenecks 1.0, 2.0, 4.0 and 5.0 works at
  ``out // 4`` channels; theirs "in": ``in // 4``, so 4, 16, 32, 16 instead of 16, 32, 16, 4).
* ``down_projection`` ("2x2": the downsampling projection is a 2x2 stride-2 convolution;
  theirs "1x1": a 1x1 projection, and the 3x3 main convolution takes stride 2).
* ``asymmetric_first`` ("5x1"; theirs "1x5": the asymmetric pair is 1x5 then 5x1).
* ``middle_bias`` ("all": every main convolution ends with a bias, the asymmetric pair on its
  second convolution; theirs "square": only the 3x3 regular, dilated and downsampling ones,
  none on the asymmetric pair nor on the upsampling 3x3 transposed convolution).
* ``upsampling_main`` ("bn": the upsampling main branch is a 1x1 convolution and batch norm;
  theirs "bias": a 1x1 convolution with a bias and no batch norm).
* ``fullconv`` ("2x2": 2x2 stride 2; theirs "3x3": 3x3 stride 2, padding 1, output padding 1)
  and ``fullconv_bias`` (True; theirs False).
* ``decoder_dropout`` (0.0; theirs 0.1: every decoder bottleneck, 4.0 to 5.1, ends with spatial
  dropout 0.1) and ``asymmetric_dropout`` ("after_bn"; theirs "before_bn": in the asymmetric
  bottlenecks dropout comes between the expansion and its batch norm). Both act in training only.

The same in both: the encoder dropout rates (0.01 in stage 1, 0.1 in stages 2-3), the dilations
and the place of the asymmetric blocks, the bias-free 1x1 projections and expansions, the bias
of the initial convolution, max-unpooling with the indices of 1.0 and 2.0, the zero-padded
channels of the downsampling main branch. Their 1x1 projections and expansions of the upsampling
bottlenecks are ``ConvTranspose2d`` layers, which at 1x1 and stride 1 compute what a ``Conv2d``
with the weight's first two dimensions swapped does: :func:`architectures.enet_ntkhoa95.ntkhoa95_state_dict` swaps them (the
only change to a tensor it makes; everything else is renamed). The variant has 353,913
parameters at 12 outputs (their 353,994 counts each shared PReLU slope four times); 144 per
class. Their CamVid checkpoint is an early snapshot: every batch norm's ``num_batches_tracked``
is 72, about two epochs of their 36 batches of 10, not the 100 epochs their README describes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal, get_args

import torch
import torch.nn.functional as F
from torch import nn

from architectures._registry import ArchInfo, register

_PAPER = "1606.02147"
_REFERENCE = "https://github.com/e-lab/ENet-training"
BN_EPS = 1e-3  # the reference's SpatialBatchNormalization(n, 1e-3)

InitialBN = Literal["all", "conv"]
PReLUKind = Literal["channel", "shared"]
DecoderAct = Literal["relu", "prelu"]
InternalFrom = Literal["out", "in"]
DownProjection = Literal["2x2", "1x1"]
AsymmetricFirst = Literal["5x1", "1x5"]
MiddleBias = Literal["all", "square"]
UpsamplingMain = Literal["bn", "bias"]
FullConv = Literal["2x2", "3x3"]
AsymmetricDropout = Literal["after_bn", "before_bn"]


@dataclass(frozen=True)
class ENetOptions:
    """The builder options of :func:`enet` (see the module docstring, "Variants").

    The defaults are the paper's network; :data:`NTKHOA95_OPTIONS` holds the values of the
    ntkhoa95/ENet_PyTorch reimplementation.

    Raises:
        ValueError: an option is not one of its allowed values (the message names it).
    """

    bn_eps: float = BN_EPS
    initial_bn: InitialBN = "all"
    prelu: PReLUKind = "channel"
    decoder_act: DecoderAct = "relu"
    internal_from: InternalFrom = "out"
    down_projection: DownProjection = "2x2"
    asymmetric_first: AsymmetricFirst = "5x1"
    middle_bias: MiddleBias = "all"
    upsampling_main: UpsamplingMain = "bn"
    fullconv: FullConv = "2x2"
    fullconv_bias: bool = True
    decoder_dropout: float = 0.0
    asymmetric_dropout: AsymmetricDropout = "after_bn"

    def __post_init__(self) -> None:
        choices = {
            "initial_bn": InitialBN,
            "prelu": PReLUKind,
            "decoder_act": DecoderAct,
            "internal_from": InternalFrom,
            "down_projection": DownProjection,
            "asymmetric_first": AsymmetricFirst,
            "middle_bias": MiddleBias,
            "upsampling_main": UpsamplingMain,
            "fullconv": FullConv,
            "asymmetric_dropout": AsymmetricDropout,
        }
        for name, kind in choices.items():
            value = getattr(self, name)
            if value not in get_args(kind):
                allowed = ", ".join(repr(v) for v in get_args(kind))
                raise ValueError(f"enet option {name} must be one of {allowed}; got {value!r}.")
        if not isinstance(self.fullconv_bias, bool):
            raise ValueError(
                f"enet option fullconv_bias must be a bool; got {self.fullconv_bias!r}."
            )
        eps = self.bn_eps
        if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not eps > 0:
            raise ValueError(f"enet option bn_eps must be a positive float; got {eps!r}.")
        p = self.decoder_dropout
        if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0 <= p < 1:
            raise ValueError(
                f"enet option decoder_dropout must be a probability in [0, 1); got {p!r}."
            )


PAPER_OPTIONS = ENetOptions()

NTKHOA95_OPTIONS: Mapping[str, object] = MappingProxyType(
    {
        "bn_eps": 1e-5,
        "initial_bn": "conv",
        "prelu": "shared",
        "decoder_act": "prelu",
        "internal_from": "in",
        "down_projection": "1x1",
        "asymmetric_first": "1x5",
        "middle_bias": "square",
        "upsampling_main": "bias",
        "fullconv": "3x3",
        "fullconv_bias": False,
        "decoder_dropout": 0.1,
        "asymmetric_dropout": "before_bn",
    }
)
"""Builder options of the ntkhoa95/ENet_PyTorch variant: ``enet(num_classes=12,
**NTKHOA95_OPTIONS)`` loads :func:`architectures.enet_ntkhoa95.ntkhoa95_state_dict` of their CamVid checkpoint strictly."""


def _bn(channels: int, eps: float = BN_EPS) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=eps)


def _activations(prelu: bool, kind: PReLUKind) -> Callable[[int], nn.Module]:
    """The maker of one block's non-linearities: ReLU; a new PReLU per call with one slope per
    channel; or (``kind="shared"``) one single-slope PReLU that every call returns."""
    if not prelu:
        return lambda channels: nn.ReLU(inplace=True)
    if kind == "channel":
        return nn.PReLU
    shared = nn.PReLU(1)
    return lambda channels: shared


def _internal(in_channels: int, out_channels: int, options: ENetOptions) -> int:
    """Branch width of a resampling bottleneck (ratio 4, of the output or of the input)."""
    return (out_channels if options.internal_from == "out" else in_channels) // 4


class InitialBlock(nn.Module):
    """3x3/2 conv (13 filters) || 2x2/2 max-pool of the input, concatenated; BN; PReLU.

    With ``options.initial_bn == "conv"`` the batch norm covers the convolution's channels only,
    before the concatenation.
    """

    def __init__(
        self, in_channels: int = 3, out_channels: int = 16, *, options: ENetOptions = PAPER_OPTIONS
    ) -> None:
        super().__init__()
        self.bn_all = options.initial_bn == "all"
        self.conv = nn.Conv2d(in_channels, out_channels - in_channels, 3, stride=2, padding=1)
        self.bn = _bn(out_channels if self.bn_all else out_channels - in_channels, options.bn_eps)
        self.act = nn.PReLU(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        conv = self.conv(x)  # (N, 13, H/2, W/2)
        if self.bn_all:
            x = self.bn(torch.cat([conv, F.max_pool2d(x, 2, 2)], dim=1))  # (N, 16, H/2, W/2)
        else:
            x = torch.cat([self.bn(conv), F.max_pool2d(x, 2, 2)], dim=1)  # (N, 16, H/2, W/2)
        return self.act(x)


class Bottleneck(nn.Module):
    """Regular, dilated or asymmetric bottleneck, keeping size and channels (paper Fig. 2b).

    Args:
        channels: Input and output channels; the branch works at ``channels // 4``.
        dilation: Dilation of the 3x3 main convolution (1: regular).
        asymmetric: Kernel size ``k`` of an asymmetric main convolution (``k x 1`` then
            ``1 x k``, or the other way round with ``options.asymmetric_first == "1x5"``); 0 for a
            square 3x3 one.
        dropout: Spatial dropout probability at the end of the branch (0: no dropout layer).
        prelu: PReLU (encoder) or ReLU (decoder).
        options: The variant (see the module docstring).
    """

    def __init__(
        self,
        channels: int,
        *,
        dilation: int = 1,
        asymmetric: int = 0,
        dropout: float = 0.0,
        prelu: bool = True,
        options: ENetOptions = PAPER_OPTIONS,
    ) -> None:
        super().__init__()
        internal = channels // 4
        act = _activations(prelu, options.prelu)
        eps = options.bn_eps
        if asymmetric:
            pad = (asymmetric - 1) // 2
            bias = options.middle_bias == "all"
            vertical = dict(kernel_size=(asymmetric, 1), padding=(pad, 0))
            horizontal = dict(kernel_size=(1, asymmetric), padding=(0, pad))
            first, second = (
                (vertical, horizontal)
                if options.asymmetric_first == "5x1"
                else (horizontal, vertical)
            )
            main: list[nn.Module] = [
                nn.Conv2d(internal, internal, **first, bias=False),
                nn.Conv2d(internal, internal, **second, bias=bias),
            ]
        else:
            main = [nn.Conv2d(internal, internal, 3, padding=dilation, dilation=dilation)]
        drop = [nn.Dropout2d(dropout)] if dropout > 0 else []  # none in the paper's decoder
        expand: list[nn.Module] = [nn.Conv2d(internal, channels, 1, bias=False), _bn(channels, eps)]
        if asymmetric and options.asymmetric_dropout == "before_bn":
            expand = expand[:1] + drop + expand[1:]  # branch.7 conv, .8 dropout, .9 BN
        else:
            expand += drop
        self.branch = nn.Sequential(
            nn.Conv2d(channels, internal, 1, bias=False),
            _bn(internal, eps),
            act(internal),
            *main,
            _bn(internal, eps),
            act(internal),
            *expand,
        )
        self.act = act(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(x + self.branch(x))  # (N, C, H, W)


class DownsamplingBottleneck(nn.Module):
    """Bottleneck x.0 of the encoder: halves H and W; returns the main branch's pool indices."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        dropout: float,
        options: ENetOptions = PAPER_OPTIONS,
    ) -> None:
        super().__init__()
        internal = _internal(in_channels, out_channels, options)
        act = _activations(True, options.prelu)
        eps = options.bn_eps
        self.extra_channels = out_channels - in_channels
        if options.down_projection == "2x2":  # the paper: the projection strides
            project = nn.Conv2d(in_channels, internal, 2, stride=2, bias=False)
            main = nn.Conv2d(internal, internal, 3, padding=1)
        else:  # a 1x1 projection; the main convolution strides
            project = nn.Conv2d(in_channels, internal, 1, bias=False)
            main = nn.Conv2d(internal, internal, 3, stride=2, padding=1)
        self.branch = nn.Sequential(
            project,
            _bn(internal, eps),
            act(internal),
            main,
            _bn(internal, eps),
            act(internal),
            nn.Conv2d(internal, out_channels, 1, bias=False),
            _bn(out_channels, eps),
            nn.Dropout2d(dropout),
        )
        self.act = act(out_channels)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        main, indices = F.max_pool2d(x, 2, 2, return_indices=True)  # (N, Cin, H/2, W/2)
        main = F.pad(main, (0, 0, 0, 0, 0, self.extra_channels))  # (N, Cout, H/2, W/2), zeros
        return self.act(main + self.branch(x)), indices


class UpsamplingBottleneck(nn.Module):
    """Bottleneck x.0 of the decoder: doubles H and W by max-unpooling the stored indices.

    Args:
        in_channels: Input channels.
        out_channels: Output channels.
        prelu: PReLU instead of the paper's ReLU.
        dropout: Spatial dropout probability at the end of the branch (0: no dropout layer).
        options: The variant (see the module docstring).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        prelu: bool = False,
        dropout: float = 0.0,
        options: ENetOptions = PAPER_OPTIONS,
    ) -> None:
        super().__init__()
        internal = _internal(in_channels, out_channels, options)
        act = _activations(prelu, options.prelu)
        eps = options.bn_eps
        if options.upsampling_main == "bn":
            main: list[nn.Module] = [
                nn.Conv2d(in_channels, out_channels, 1, bias=False),
                _bn(out_channels, eps),
            ]
        else:
            main = [nn.Conv2d(in_channels, out_channels, 1)]
        self.main = nn.Sequential(*main)
        self.branch = nn.Sequential(
            nn.Conv2d(in_channels, internal, 1, bias=False),
            _bn(internal, eps),
            act(internal),
            nn.ConvTranspose2d(
                internal,
                internal,
                3,
                stride=2,
                padding=1,
                output_padding=1,
                bias=options.middle_bias == "all",
            ),
            _bn(internal, eps),
            act(internal),
            nn.Conv2d(internal, out_channels, 1, bias=False),
            _bn(out_channels, eps),
            *([nn.Dropout2d(dropout)] if dropout > 0 else []),
        )
        self.act = act(out_channels)

    def forward(self, x: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
        # The pre-pooling size: exactly twice the pooled one, as H and W are multiples of 8.
        size = [2 * int(v) for v in indices.shape[-2:]]
        main = F.max_unpool2d(self.main(x), indices, 2, stride=2, output_size=size)
        return self.act(main + self.branch(x))  # (N, Cout, 2H, 2W)


def _stage23(channels: int, dropout: float, options: ENetOptions) -> nn.Sequential:
    """The eight bottlenecks shared by stages 2 and 3 (2.1-2.8 / 3.1-3.8)."""
    kw = dict(dropout=dropout, options=options)
    return nn.Sequential(
        Bottleneck(channels, **kw),
        Bottleneck(channels, dilation=2, **kw),
        Bottleneck(channels, asymmetric=5, **kw),
        Bottleneck(channels, dilation=4, **kw),
        Bottleneck(channels, **kw),
        Bottleneck(channels, dilation=8, **kw),
        Bottleneck(channels, asymmetric=5, **kw),
        Bottleneck(channels, dilation=16, **kw),
    )


class ENet(nn.Module):
    """ENet (paper Table 1); logits at the input resolution for H, W multiples of 8.

    Args:
        num_classes: Output channels of fullconv.
        options: The variant (default: the paper's network; see the module docstring).
    """

    def __init__(self, num_classes: int, options: ENetOptions = PAPER_OPTIONS) -> None:
        super().__init__()
        o = options
        dec = dict(prelu=o.decoder_act == "prelu", dropout=o.decoder_dropout, options=o)
        self.initial = InitialBlock(3, 16, options=o)
        self.bottleneck1_0 = DownsamplingBottleneck(16, 64, dropout=0.01, options=o)
        self.stage1 = nn.Sequential(*[Bottleneck(64, dropout=0.01, options=o) for _ in range(4)])
        self.bottleneck2_0 = DownsamplingBottleneck(64, 128, dropout=0.1, options=o)
        self.stage2 = _stage23(128, dropout=0.1, options=o)
        self.stage3 = _stage23(128, dropout=0.1, options=o)
        self.bottleneck4_0 = UpsamplingBottleneck(128, 64, **dec)
        self.stage4 = nn.Sequential(Bottleneck(64, **dec), Bottleneck(64, **dec))
        self.bottleneck5_0 = UpsamplingBottleneck(64, 16, **dec)
        self.stage5 = nn.Sequential(Bottleneck(16, **dec))
        if o.fullconv == "2x2":
            self.fullconv = nn.ConvTranspose2d(16, num_classes, 2, stride=2, bias=o.fullconv_bias)
        else:
            self.fullconv = nn.ConvTranspose2d(
                16, num_classes, 3, stride=2, padding=1, output_padding=1, bias=o.fullconv_bias
            )
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
def enet(
    *,
    num_classes: int,
    bn_eps: float = BN_EPS,
    initial_bn: InitialBN = "all",
    prelu: PReLUKind = "channel",
    decoder_act: DecoderAct = "relu",
    internal_from: InternalFrom = "out",
    down_projection: DownProjection = "2x2",
    asymmetric_first: AsymmetricFirst = "5x1",
    middle_bias: MiddleBias = "all",
    upsampling_main: UpsamplingMain = "bn",
    fullconv: FullConv = "2x2",
    fullconv_bias: bool = True,
    decoder_dropout: float = 0.0,
    asymmetric_dropout: AsymmetricDropout = "after_bn",
) -> nn.Module:
    """ENet; 364,376 parameters at 20 outputs (the paper's 0.37M).

    The options default to the paper's network; ``**NTKHOA95_OPTIONS`` gives the variant of
    ntkhoa95/ENet_PyTorch (353,913 parameters at 12 outputs), whose checkpoint loads after
    :func:`architectures.enet_ntkhoa95.ntkhoa95_state_dict`. The module docstring ("Variants") gives the evidence for each.

    Args:
        num_classes: Output channels.
        bn_eps: Batch norm epsilon of every layer (1e-3, the reference's; theirs 1e-5).
        initial_bn: ``"all"``: batch norm over the 16 concatenated channels of the initial
            block; ``"conv"``: over its 13 convolution channels, before the concatenation.
        prelu: ``"channel"``: each PReLU has one slope per channel; ``"shared"``: each
            bottleneck has one single-slope PReLU, used after its projection, its main
            convolution and the addition. The initial block's PReLU(16) is the same in both.
        decoder_act: ``"relu"`` in the decoder (stages 4-5) or ``"prelu"`` as in the encoder.
        internal_from: Branch width of bottlenecks 1.0, 2.0, 4.0, 5.0: ``"out"`` // 4 or
            ``"in"`` // 4 channels.
        down_projection: ``"2x2"`` stride-2 projection in the downsampling bottlenecks, or
            ``"1x1"`` projection with a stride-2 3x3 main convolution.
        asymmetric_first: Which convolution of the asymmetric pair comes first: ``"5x1"`` or
            ``"1x5"``.
        middle_bias: ``"all"``: every main convolution ends with a bias; ``"square"``: only
            the 3x3 regular, dilated and downsampling ones (not the asymmetric pair, not the
            upsampling transposed convolution).
        upsampling_main: Main branch of the upsampling bottlenecks: 1x1 convolution and batch
            norm (``"bn"``) or 1x1 convolution with a bias (``"bias"``), then max-unpooling.
        fullconv: ``"2x2"`` stride-2 final transposed convolution, or ``"3x3"`` (stride 2,
            padding 1, output padding 1).
        fullconv_bias: Whether fullconv has a bias.
        decoder_dropout: Spatial dropout at the end of every decoder bottleneck (0: none).
        asymmetric_dropout: In the asymmetric bottlenecks, spatial dropout ``"after_bn"`` (after
            the expansion's batch norm, as everywhere) or ``"before_bn"`` (between the
            expansion and its batch norm).

    Returns:
        The model.

    Raises:
        ValueError: an option outside its allowed values.
    """
    options = ENetOptions(
        bn_eps=bn_eps,
        initial_bn=initial_bn,
        prelu=prelu,
        decoder_act=decoder_act,
        internal_from=internal_from,
        down_projection=down_projection,
        asymmetric_first=asymmetric_first,
        middle_bias=middle_bias,
        upsampling_main=upsampling_main,
        fullconv=fullconv,
        fullconv_bias=fullconv_bias,
        decoder_dropout=decoder_dropout,
        asymmetric_dropout=asymmetric_dropout,
    )
    return ENet(num_classes, options)
