"""ESPNet and ESPNet-C: efficient spatial pyramids of dilated convolutions.

Paper: S. Mehta, M. Rastegari, A. Caspi, L. Shapiro, H. Hajishirzi, "ESPNet: Efficient Spatial
Pyramid of Dilated Convolutions for Semantic Segmentation", ECCV 2018, arXiv 1803.06815.
Reference implementation consulted (for understanding only): the authors'
https://github.com/sacmehta/ESPNet (``train/Model.py``, ``train/main.py``), and the flattened
restatement in ``irfanICMLL/structure_knowledge_distillation`` (``network/ESPnet.py``), whose
module names the published CamVid checkpoints use. Our own code.

The ESP module (paper Fig. 1b): a convolution *reduces* ``C_in`` channels to ``n = C_out // 5``
(1x1, or 3x3 with stride 2 in the two downsampling modules), five parallel 3x3 convolutions
*transform* that map with dilations 1, 2, 4, 8, 16 (the dilation-1 branch takes the remainder,
``C_out - 4n`` channels, so that any ``C_out`` is reached), and *hierarchical feature fusion*
(HFF) merges them: the dilated branches are summed cumulatively, ``s_2 = d_2``,
``s_4 = s_2 + d_4``, ``s_8 = s_4 + d_8``, ``s_16 = s_8 + d_16``, and ``[d_1, s_2, s_4, s_8,
s_16]`` are concatenated (the sums remove the gridding of large dilations at no cost in
parameters). A same-size module adds its input (the residual, when ``C_in == C_out``), then
batch norm and PReLU; a downsampling module has no residual. No convolution has a bias.

ESPNet-C (paper Fig. 4c, "input reinforcement"), output stride 8:

* level 1: 3x3 stride-2 convolution 3 -> 16, BN, PReLU; concatenated with the image
  average-pooled once (3x3, stride 2, padding 1, padding counted in the mean), BN + PReLU over
  the 19 channels (``b1``).
* level 2: a downsampling ESP module 19 -> 64 (``level2_0``), then ``p`` residual ESP modules
  of 64 (``level2``, the paper's alpha_2); the last one's output, ``level2_0``'s output and the
  image pooled twice are concatenated, 64 + 64 + 3 = 131 channels, BN + PReLU (``b2``).
* level 3: a downsampling ESP module 131 -> 128 (``level3_0``), ``q`` residual ESP modules of 128
  (``level3``, alpha_3); ``level3_0``'s output and the last module's are concatenated (256),
  BN + PReLU (``b3``).
* a 1x1 convolution 256 -> K gives the logits at 1/8 resolution.

ESPNet (paper Fig. 4d) adds a light decoder to ESPNet-C, at each step in K channels:
the 1/8 logits through batch norm (``br``) and a 2x2 stride-2 transposed convolution
(``up_l3``); the 131-channel level-2 map projected to K by a 1x1 convolution (``level3_C``);
both concatenated (2K), BN + PReLU and a non-residual ESP module 2K -> K
(``combine_l2_l3``); a transposed convolution to 1/2 with BN + PReLU (``up_l2``); concatenated
with the 19-channel level-1 map and a 3x3 convolution 19 + K -> K with BN + PReLU (``conv``);
and a last transposed convolution to the input resolution (``classifier``). ESPNet-C's
classifier is kept under the name ``classifier_1``.

Depth (p = alpha_2, q = alpha_3): both builders default to **p = 2, q = 8**, the setting of the
authors' training script (``train/main.py``: ``--p 2 --q 8``, pretrained files
``espnet_p_2_q_8.pth``), of the parameter count the paper reports (0.364M, matched only by
q = 8, below) and of the published CamVid checkpoints. The class constructors of the authors'
``Model.py`` default to other values (p=5, q=3 for the encoder; p=2, q=3 for ESPNet), which no
reported figure uses.

Details the paper leaves open, taken from the reference: batch norm ``eps=1e-3``; PReLU with
one slope per channel; the input-reinforcement pooling is ``avg_pool2d(3, stride=2,
padding=1)`` with the zero padding counted in the mean (PyTorch's default); transposed
convolutions of kernel 2, stride 2, no bias; decoder concatenation orders as listed above.

Parameters (weights, BN scale and shift, PReLU slopes): the ESPNet-C trunk (everything but the
classifier) has 69,513 + 7,872 p + 32,384 q, 344,329 at p=2, q=8; ESPNet-C adds 256 K (the
classifier): 349,449 at K = 20. ESPNet adds to ESPNet-C 319 K + 21 K^2 + E(K), where E(K) =
2K n + 9 n (K - 4n) + 36 n^2 (n = K // 5) is the decoder's ESP module: 365,109 at K = 20
against the paper's "0.364M" (+0.3%; 363,462 at K = 19, -0.1%). The paper does not say the
class count; the authors' Cityscapes training uses 20 outputs (19 classes + the ignored
"unlabelled", ``--classes 20``), so ``paper_num_classes`` is 20. The paper reports no FLOP
count for these networks that we can cite precisely, so none is declared.

Class count: ESPNet's decoder ESP module splits K channels five ways (n = K // 5), so K < 5
leaves its four dilated branches and its 1x1 reduction empty: ``min_num_classes=5``. ESPNet-C
has no such limit.

Output resolution: ESPNet's logits are at the input resolution (H, W multiples of 8:
``input_divisor=8``, the harness pads other sizes). ESPNet-C's are at 1/8; to meet the
harness contract its forward upsamples them to the input size, bilinearly with
``align_corners=True``, as the authors' evaluation of the CamVid checkpoints does (the
upsampling has no parameters; ``input_divisor=8`` keeps the 1/8 grid aligned).

Deviations: the forward pass returns the logits tensor (the reference returns a list whose
first element is the logits). The authors train ESPNet-C first against 1/8-size labels, then
attach the decoder and train ESPNet; the harness trains either network end to end, ESPNet-C
through its upsampled logits against full-size labels. Initialisation: Kaiming-normal (fan-out)
convolutions, BN weight 1 / bias 0, PReLU slopes 0.25 (the reference keeps PyTorch's defaults).

Published weights: the state dicts of the eight CamVid checkpoints of Liu et al. (CVPR 2019,
``../shared/checkpoints/camvid/skd_espnet*.pth``; p=2, q=8, 11 classes) load strictly into
``espnet(num_classes=11)`` and ``espnet_c(num_classes=11)`` once a leading ``module.`` is
stripped (``tests/test_espnet.py``). Evaluated with their protocol (BGR 0-255 minus the
per-channel mean, divided by the std, the whole 360x480 image, logits at 360x480 with bilinear
``align_corners=True``, void ignored, one confusion matrix over the 233 test images) they give
57.83 / 59.84 / 61.38 / 65.13 mIoU (ESPNet base / kd / kd_sd / sd_kd_city; published 57.8,
59.8, 61.4, 65.1) and 56.75 / 58.75 / 60.35 / 62.82 (ESPNet-C base / kd / kd_sd / kd_city;
published 56.7, 58.7, 60.3, 62.8).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from architectures._registry import ArchInfo, register
from architectures._weights import (
    CAMVID_CLASSES,
    Preprocess,
    PublishedMetric,
    WeightsInfo,
    WeightsProtocol,
    WeightsSource,
    register_weights,
    strip_module_prefix,
)

_PAPER = "1803.06815"
_REFERENCE = "https://github.com/sacmehta/ESPNet"
BN_EPS = 1e-3  # the reference's BatchNorm2d(n, eps=1e-03)
DILATIONS = (1, 2, 4, 8, 16)
DEFAULT_P = 2  # alpha_2: residual ESP modules at 1/4 resolution
DEFAULT_Q = 8  # alpha_3: residual ESP modules at 1/8 resolution
LEVEL1, LEVEL2, LEVEL3 = 16, 64, 128  # widths of the three levels' convolutions / ESP modules
IN_CHANNELS = 3
ESPNET_MIN_CLASSES = 5  # the decoder's ESP module needs K // 5 >= 1 channels per branch


def _check_depth(p: object, q: object) -> None:
    for name, value in (("p", p), ("q", q)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(
                f"ESPNet's {name} (ESP modules repeated at level {2 if name == 'p' else 3}) must "
                f"be a positive int; got {value!r}. The paper's setting is p=2, q=8."
            )


class Conv(nn.Module):
    """A bias-free convolution padded to keep ``ceil(size / stride)``, dilation optional."""

    def __init__(
        self, cin: int, cout: int, kernel: int, stride: int = 1, dilation: int = 1
    ) -> None:
        super().__init__()
        pad = (kernel - 1) // 2 * dilation
        self.conv = nn.Conv2d(
            cin, cout, kernel, stride=stride, padding=pad, dilation=dilation, bias=False
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class BNPReLU(nn.Module):
    """Batch norm then PReLU (one slope per channel)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(channels, eps=BN_EPS)
        self.act = nn.PReLU(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(x))


class ConvBNPReLU(nn.Module):
    """Bias-free convolution, batch norm, PReLU."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1) -> None:
        super().__init__()
        self.conv = nn.Conv2d(
            cin, cout, kernel, stride=stride, padding=(kernel - 1) // 2, bias=False
        )
        self.bn = nn.BatchNorm2d(cout, eps=BN_EPS)
        self.act = nn.PReLU(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(self.conv(x)))


def esp_widths(out_channels: int) -> tuple[int, int]:
    """``(n, n1)``: the reduced width (each dilated branch) and the dilation-1 branch's width."""
    n = out_channels // 5
    return n, out_channels - 4 * n


class ESPCore(nn.Module):
    """Reduce, split-transform over dilations 1-16, merge by hierarchical feature fusion.

    The normalisation after the merge differs between the downsampling and the same-size
    modules (see the subclasses); this class holds the convolutions and the fusion.
    """

    def __init__(self, in_channels: int, out_channels: int, *, stride: int) -> None:
        super().__init__()
        n, n1 = esp_widths(out_channels)
        if n < 1:
            raise ValueError(
                f"An ESP module splits its {out_channels} output channels into 5 branches of "
                f"out_channels // 5; it needs out_channels >= 5."
            )
        # A downsampling module reduces with a strided 3x3, a same-size one with a 1x1.
        self.c1 = Conv(in_channels, n, 3 if stride == 2 else 1, stride=stride)
        self.d1 = Conv(n, n1, 3, dilation=1)
        self.d2 = Conv(n, n, 3, dilation=2)
        self.d4 = Conv(n, n, 3, dilation=4)
        self.d8 = Conv(n, n, 3, dilation=8)
        self.d16 = Conv(n, n, 3, dilation=16)

    def fuse(self, x: torch.Tensor) -> torch.Tensor:
        """The merged branches, before normalisation: ``(N, out_channels, H', W')``."""
        r = self.c1(x)  # (N, n, H', W')
        fused = [self.d1(r)]  # (N, n1, H', W')
        total = None
        for branch in (self.d2, self.d4, self.d8, self.d16):
            total = branch(r) if total is None else total + branch(r)  # HFF: running sums
            fused.append(total)
        return torch.cat(fused, dim=1)  # (N, n1 + 4n, H', W')


class DownsamplingESP(ESPCore):
    """ESP module that halves H and W (strided 3x3 reduction); no residual; BN, PReLU."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(in_channels, out_channels, stride=2)
        self.bn = nn.BatchNorm2d(out_channels, eps=BN_EPS)
        self.act = nn.PReLU(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(self.fuse(x)))  # (N, C_out, H/2, W/2)


class ESPModule(ESPCore):
    """Same-size ESP module (1x1 reduction), residual when ``residual``, then BN + PReLU."""

    def __init__(self, in_channels: int, out_channels: int, *, residual: bool = True) -> None:
        super().__init__(in_channels, out_channels, stride=1)
        if residual and in_channels != out_channels:
            raise ValueError(
                f"A residual ESP module needs in_channels == out_channels; got "
                f"{in_channels} -> {out_channels}."
            )
        self.residual = residual
        self.bn = BNPReLU(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.fuse(x)  # (N, C_out, H, W)
        if self.residual:
            y = y + x
        return self.bn(y)


def _avg_halve(x: torch.Tensor) -> torch.Tensor:
    """Input reinforcement: 3x3 stride-2 average pooling (padding counted), ``ceil(size / 2)``."""
    return F.avg_pool2d(x, 3, stride=2, padding=1)


def _init_weights(model: nn.Module) -> None:
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


class _Encoder(nn.Module):
    """The ESPNet-C trunk (levels 1-3 with input reinforcement), without a classifier.

    Subclasses add their heads after calling ``super().__init__``, so that the state-dict keys
    come in the published checkpoints' order.
    """

    def __init__(self, p: int, q: int) -> None:
        super().__init__()
        _check_depth(p, q)
        c1, c2 = LEVEL1 + IN_CHANNELS, 2 * LEVEL2 + IN_CHANNELS  # 19, 131
        self.level1 = ConvBNPReLU(IN_CHANNELS, LEVEL1, 3, stride=2)
        self.b1 = BNPReLU(c1)
        self.level2_0 = DownsamplingESP(c1, LEVEL2)
        self.level2 = nn.ModuleList(ESPModule(LEVEL2, LEVEL2) for _ in range(p))
        self.b2 = BNPReLU(c2)
        self.level3_0 = DownsamplingESP(c2, LEVEL3)
        self.level3 = nn.ModuleList(ESPModule(LEVEL3, LEVEL3) for _ in range(q))
        self.b3 = BNPReLU(2 * LEVEL3)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The three levels' concatenated maps: 19 ch at 1/2, 131 at 1/4, 256 at 1/8."""
        img2 = _avg_halve(x)  # (N, 3, H/2, W/2)
        img4 = _avg_halve(img2)  # (N, 3, H/4, W/4)
        l1 = self.b1(torch.cat([self.level1(x), img2], dim=1))  # (N, 19, H/2, W/2)
        down2 = self.level2_0(l1)  # (N, 64, H/4, W/4)
        y = down2
        for module in self.level2:
            y = module(y)
        l2 = self.b2(torch.cat([y, down2, img4], dim=1))  # (N, 131, H/4, W/4)
        down3 = self.level3_0(l2)  # (N, 128, H/8, W/8)
        y = down3
        for module in self.level3:
            y = module(y)
        l3 = self.b3(torch.cat([down3, y], dim=1))  # (N, 256, H/8, W/8)
        return l1, l2, l3


class ESPNetC(_Encoder):
    """ESPNet-C (paper Fig. 4c): 1x1 classifier at 1/8, upsampled bilinearly to the input."""

    def __init__(self, num_classes: int, p: int = DEFAULT_P, q: int = DEFAULT_Q) -> None:
        super().__init__(p, q)
        self.classifier = Conv(2 * LEVEL3, num_classes, 1)
        _init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        l3 = self.encode(x)[2]
        logits = self.classifier(l3)  # (N, K, H/8, W/8)
        # align_corners=True: what the authors' evaluation of the CamVid weights uses.
        return F.interpolate(logits, size=x.shape[-2:], mode="bilinear", align_corners=True)


def _up2(channels: int) -> nn.ConvTranspose2d:
    """2x2 stride-2 bias-free transposed convolution: exactly doubles H and W."""
    return nn.ConvTranspose2d(channels, channels, 2, stride=2, bias=False)


class ESPNet(_Encoder):
    """ESPNet (paper Fig. 4d): ESPNet-C plus the light decoder; logits at input resolution."""

    def __init__(self, num_classes: int, p: int = DEFAULT_P, q: int = DEFAULT_Q) -> None:
        super().__init__(p, q)
        k = num_classes
        if k < ESPNET_MIN_CLASSES:
            raise ValueError(
                f"ESPNet's decoder splits num_classes channels into 5 ESP branches of "
                f"num_classes // 5, so it needs num_classes >= {ESPNET_MIN_CLASSES}; got {k}. "
                f"Use espnet_c for fewer classes."
            )
        self.classifier_1 = Conv(2 * LEVEL3, k, 1)  # ESPNet-C's classifier
        self.level3_C = Conv(2 * LEVEL2 + IN_CHANNELS, k, 1)  # the checkpoints' name
        self.br = nn.BatchNorm2d(k, eps=BN_EPS)
        self.conv = ConvBNPReLU(LEVEL1 + IN_CHANNELS + k, k, 3)
        self.up_l3 = nn.Sequential(_up2(k))
        self.combine_l2_l3 = nn.Sequential(BNPReLU(2 * k), ESPModule(2 * k, k, residual=False))
        self.up_l2 = nn.Sequential(_up2(k), BNPReLU(k))
        self.classifier = _up2(k)
        _init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        l1, l2, l3 = self.encode(x)
        deep = self.up_l3(self.br(self.classifier_1(l3)))  # (N, K, H/4, W/4)
        mid = self.level3_C(l2)  # (N, K, H/4, W/4)
        y = self.up_l2(self.combine_l2_l3(torch.cat([mid, deep], dim=1)))  # (N, K, H/2, W/2)
        y = self.conv(torch.cat([y, l1], dim=1))  # (N, K, H/2, W/2)
        return self.classifier(y)  # (N, K, H, W)


def _no_pretrained(name: str, pretrained_backbone: bool) -> None:
    if pretrained_backbone:
        raise ValueError(
            f"{name} has no torchvision pretrained backbone (ESPNet is trained from scratch; "
            f"load a published state dict explicitly instead). Build it with "
            f"pretrained_backbone=False."
        )


@register(
    ArchInfo(
        name="espnet",
        title="ESPNet",
        paper=_PAPER,
        year=2018,
        family="real-time",
        reference=_REFERENCE,
        input_divisor=8,
        # The decoder's ESP module gives each of its five branches num_classes // 5 channels.
        min_num_classes=ESPNET_MIN_CLASSES,
        paper_params=364_000,
        paper_params_note=(
            "the 0.364M parameters the paper reports for ESPNet (p=2, q=8); 20 outputs as the "
            "authors' Cityscapes training (19 classes + unlabelled); 365,109 measured"
        ),
        paper_num_classes=20,
        notes=(
            "p=2, q=8 (the paper's setting); returns the logits tensor; trained end to end "
            "(the authors train ESPNet-C first)."
        ),
    )
)
def espnet(
    *,
    num_classes: int,
    pretrained_backbone: bool = False,
    p: int = DEFAULT_P,
    q: int = DEFAULT_Q,
) -> nn.Module:
    """ESPNet: ESP-module encoder with input reinforcement and a light decoder to full
    resolution (365,109 params at 20 outputs, p=2, q=8; at least 5 classes).

    ``p`` and ``q`` are the residual ESP modules at 1/4 and 1/8 resolution (the paper's
    alpha_2, alpha_3). ``pretrained_backbone`` is accepted for a uniform interface; ``True``
    raises ``ValueError`` (there is no ImageNet backbone).
    """
    _no_pretrained("espnet", pretrained_backbone)
    return ESPNet(num_classes, p=p, q=q)


@register(
    ArchInfo(
        name="espnet_c",
        title="ESPNet-C",
        paper=_PAPER,
        year=2018,
        family="real-time",
        reference=_REFERENCE,
        input_divisor=8,
        # Only the 1x1 classifier depends on the class count: any count the registry allows.
        min_num_classes=2,
        notes=(
            "p=2, q=8; 1/8-resolution logits upsampled bilinearly (align_corners=True) to the "
            "input inside forward; trained against full-size labels (the authors use 1/8)."
        ),
    )
)
def espnet_c(
    *,
    num_classes: int,
    pretrained_backbone: bool = False,
    p: int = DEFAULT_P,
    q: int = DEFAULT_Q,
) -> nn.Module:
    """ESPNet-C: the ESPNet encoder with a 1x1 classifier at 1/8 resolution, upsampled to the
    input (349,449 params at 20 outputs, p=2, q=8).

    ``p`` and ``q`` as for :func:`espnet`; ``pretrained_backbone=True`` raises ``ValueError``.
    """
    _no_pretrained("espnet_c", pretrained_backbone)
    return ESPNetC(num_classes, p=p, q=q)


# -- published weights --------------------------------------------------------------------------
# Eight CamVid models released with Liu et al., "Structured Knowledge Distillation for Semantic
# Segmentation" (CVPR 2019, arXiv 1903.04197): ESPNet / ESPNet-C students, p=2, q=8, trained on
# the SegNet release of CamVid (11 classes, void = 11 ignored). Their evaluation (``eval_esp.py``
# with the ``camvid_light`` dataset): the image read as BGR, 0-255, minus the mean and divided by
# the std per BGR channel; the whole 360x480 image; ESPNet-C's 1/8 logits upsampled bilinearly
# with align_corners=True (inside our forward); void excluded; one confusion matrix over the 233
# test images. Published figures: the repository README's table where it gives one, else the
# figure in the file name (the authors' own label).
_SKD = WeightsSource(
    repository="irfanICMLL/structure_knowledge_distillation",
    commit="f6e6565ddfb910d1aec477b34e58d79e097b339e",
    path="checkpoint/Camvid/",
    licence="MIT (Copyright (c) 2019)",
)
_SKD_PREPROCESS = Preprocess(
    channel_order="BGR",
    scale=255.0,
    mean=(73.18188461, 82.93553322, 72.41519599),
    std=(45.3199, 46.1528, 44.9148),
)
_SKD_PROTOCOL = WeightsProtocol(resolution=(360, 480), interpolation="bilinear", align_corners=True)

for _arch, _tag, _file, _sha, _miou, _where in (
    ("espnet", "base", "skd_espnet_base_57.8.pth",
     "75272b19fd7a73204f0bb5c0adfaafb4914d9b204ab553a6811c43b5b43d8e88", 57.8,
     "README table, 'ESPNet_base'"),
    ("espnet", "kd", "skd_espnet_kd_59.8.pth",
     "af977a36acf8991bd1286b36038dd94c6f31d6cdd413cf6caddf8c83c62a1197", 59.8,
     "file name 'kd_59.8'"),
    ("espnet", "kd_sd", "skd_espnet_kd_sd_61.4.pth",
     "3b7d3d142f973b9b9d739a68ada84d84c8fa1bc7ab4897ecc3006e428e094ea6", 61.4,
     "README table, 'ESPNet_ours'"),
    ("espnet", "sd_kd_city", "skd_espnet_sd_kd_city_65.1.pth",
     "db8a5ef2a820bd117ee24b05b221be14dbc73f5a1bd04b47a4c235280ba71f84", 65.1,
     "README table, 'ours+unlabel data' (with Cityscapes and ~2000 unlabelled CamVid frames)"),
    ("espnet_c", "base", "skd_espnetc_base_56.7.pth",
     "4241f9792aac79e66599ac35b483a71a779766ad7c1d37a504d43443f7ff6b55", 56.7,
     "file name 'BASE56.7'"),
    ("espnet_c", "kd", "skd_espnetc_kd_58.7.pth",
     "f856e8a466cb1c2a1e92f05ee358c9b671a0c2e3367bf2707e62b26a901a88ba", 58.7,
     "file name 'KD58.7'"),
    ("espnet_c", "kd_sd", "skd_espnetc_kd_sd_60.3.pth",
     "96816b2fc96ccc3d4872c76af8a031cb977be658ad616661ab780fd2f62595a5", 60.3,
     "file name 'OURS60.3'"),
    ("espnet_c", "kd_city", "skd_espnetc_kd_city_62.8.pth",
     "87aa2ff4e82ffdab5e3c92cb2f2d0687a919e3cb584c64f7cafb438d9ca3ad24", 62.8,
     "file name 'kd+city_62.8' (with Cityscapes)"),
):  # fmt: skip
    register_weights(
        WeightsInfo(
            name=f"{_arch}.camvid_skd_{_tag}",
            file=f"camvid/{_file}",
            sha256=_sha,
            source=_SKD,
            dataset="camvid",
            class_names=CAMVID_CLASSES,
            channels=tuple(range(11)),
            preprocess=_SKD_PREPROCESS,
            protocol=_SKD_PROTOCOL,
            builder_options={"p": 2, "q": 8},
            convert_keys=strip_module_prefix,  # five of the eight files carry DataParallel's
            published=(PublishedMetric("miou", _miou, "test", _where),),
        )
    )
