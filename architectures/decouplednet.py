"""DecoupledNet: a multi-label classifier, bridging layers and a figure/ground deconvolution net.

Paper: S. Hong, H. Noh, B. Han, "Decoupled Deep Neural Network for Semi-supervised Semantic
Segmentation", NIPS 2015, arXiv 1506.04924. Reference consulted (for understanding only):
https://github.com/HyeonwooNoh/DecoupledNet (commit ebd2130): the deploy prototxt of
``model/DecoupledNet_Full_anno``, ``training/002_train_seg_Full_anno`` (prototxt, solver),
``training/001_.../gen_fp_bp_model.py`` and ``inference/DecoupledNet_inference.m``. Our own code;
layer names follow the reference. Sizes below for its 320x320 input and C object classes.

* **Classification network**: VGG16's 13 convolutions and five 2x2 max-poolings (pool5 512 x 10
  x 10; the poolings keep their argmax "switches" for the decoder), fc6 (7x7 conv 512 -> 4096)
  and fc7 (1x1, 4096 -> 4096), each with ReLU, and ``cls-score`` (1x1, 4096 -> C), averaged over
  all positions (the reference's 4x4 average pooling of its 4x4 map) into C logits; sigmoid
  scores, multi-label. Background is not a class of the classifier.
* **Class-specific activation** (the reference's ``*-bp`` layers): the top signal sits at the
  position that wins a max-pooling of each class's score map (``score-pool-mask``) and is
  multiplied by the transposed cls-score weights, the ReLU7 mask, the transposed fc7 weights,
  the ReLU6 mask and the transposed fc6 weights (deconvolutions with copies of those weights,
  bias 0, ``gen_fp_bp_model.py``), giving ``pool5-bp``: the gradient of
  ``sum_c w_c * score_c[argmax_c]`` at pool5. We compute it as that **explicit product of
  transposed weights** (:func:`class_specific_activation`; matrix products, then ``F.fold`` for
  fc6's transpose), not with ``torch.autograd.grad``; the tests compare the two.
* **Bridging layers**: batch norm of pool5 and of the class-specific activation, concatenated
  (1024 channels), ``fc6-seg`` (7x7, 1024 -> 2048) and ``fc7-seg`` (1x1, 2048 -> 2048), each
  with batch norm and ReLU. (The prototxt's "deconvolution" comment starts at fc6-seg; we call
  the layers that combine the two streams the bridge: the grouping changes no computation.)
* **Segmentation network** (DeconvNet): ``fc6-deconv`` (7x7, 2048 -> 512, BN, ReLU), then per
  stage, deepest first, max-unpooling with the matching switches and 3x3 deconvolutions with BN
  and ReLU: 512, 512, 512 | 512, 512, 256 | 256, 256, 128 | 128, 64 | 64, 64; ``seg-score``
  (1x1, 64 -> 2: ground, figure) at the input resolution.

Training: the harness calls ``model(images, targets=masks, ignore_index=k)``
(``train_needs_targets``) and minimises the sum of the returned losses. Labels outside
``[0, K)`` count as ignored whatever ``ignore_index`` says (``bench.models.PadCrop`` pads the
targets but passes no ``ignore_index``). :meth:`DecoupledNet.set_stage` selects:

* ``"classify"`` (the paper's first stage): ``{"loss_cls"}``, BCE with logits against
  :func:`image_labels_from_masks` (a class is present if a non-ignored pixel has it; background
  excluded), or against ``image_labels=`` (``(N, C)`` multi-hot) for images without masks.
* ``"segment"`` (second stage, classifier fixed): ``{"loss_seg"}``. The classifier, trunk
  included, and the class-specific activation run under ``torch.no_grad()``. Each image gives
  one (image, class) pair, a class of its mask drawn with torch's global CPU RNG (the
  reference's ``SELECT_SEG_BINARY`` picks one class per image); images without an object class
  give none. Top signal: sigmoid of the class's max-pooled score (``cls-score-sigmoid`` times
  the one-hot ``cls-label``). Loss: 2-way cross-entropy, figure = that class, ground = every
  other labelled pixel, ignored pixels ignored (``SOFTMAX_LOSS``, ``ignore_label: 255``).
* ``"joint"`` (ours, the default, so that the harness trains the entry as any supervised one):
  both losses in one graph; the segmentation loss also reaches the trunk through pool5 and
  fc6, fc7, cls-score through the activation (the reference's ``*-bp`` copies are frozen).

Inference (eval; in train mode without targets the same with batch statistics), as
``DecoupledNet_inference.m``: (1) class ``c`` is detected where its sigmoid score
``s_c > threshold`` (``run_demo.m``: 0.5, our default); (2) with a background class, a
background pass with top signal ``s_c`` on every detected class at once (``label = cls_score
.* (cls_score > 0.5)``; the reference hard-codes that 0.5, we use ``threshold``): its ground
probability is the background map; (3) one pass per detected class with ``s_c`` on that class
alone: its figure probability is the class's map (:func:`plan_passes`; the passes of a batch run
as one batch of rows, each image with its own detected set); (4) those maps are normalised to
sum to 1 per pixel (where they sum to 0, each first gets 1, as the reference) and
:func:`assemble_scores` returns their ``log``, and :data:`NOT_DETECTED` (-100) for undetected
classes: ``argmax`` is the reference's label map, ``softmax`` its normalised scores.
**No class detected**: the reference has no top-1 fallback (only the background map is non-zero:
all background); ``fallback="reference"`` (default) does the same, ``fallback="top1"`` takes the
top-scoring class. With ``background=None`` (e.g. CamVid: every class is an object class, there
is no background pass) the top-scoring class is always taken then: a pixel needs some class.

Deviations: (a) any H x W that is a multiple of 32 (``input_divisor=32``; the reference pads to
a square and resizes to 320). fc6, fc6-seg and fc6-deconv are "same" layers (padding 3,
fc6-deconv computed as the equivalent convolution) instead of valid ones (10 -> 4 -> 10 at 320),
so that pool5 may be 2x2 (64x64 input); the poolings of the score map are over the whole map,
as the reference's over its 4x4 map. Same parameters; more MACs (below). (b) The decoder's
stride-1 3x3 deconvolutions are ``nn.Conv2d`` (the same function and parameter count). (c) No
dropout after fc6/fc7 (the segmentation prototxts, where the classifier is fixed, have none; its
training prototxt is not published). PyTorch's batch norm (Caffe's shift starts at 0.001). (d)
From scratch by default (the paper: ImageNet VGG16 fine-tuned on VOC image labels);
``pretrained_backbone=True`` loads torchvision's ImageNet VGG16 into the convolutions and,
convolutionalised, fc6 and fc7 (local hub cache only). (e) The official solver (SGD 0.01,
momentum 0.9, weight decay 5e-4, ``iter_size`` 16) is a recipe: the harness's optimiser applies.

Parameters (VGG16 trunk, counted): 307,450,390 at 21 classes and 307,380,741 at 4 classes
(4,097 per object class); VGG16 convolutions 14.71M, fc6 102.76M, fc7 16.78M, bridge 106.97M
(fc6-seg 102.76M, fc7-seg 4.20M, four batch norms), fc6-deconv 51.38M with its batch norm,
decoder stages 14.76M, seg-score 130. The paper and the reference state no count, so no
``paper_params``. Compute (``FlopCounterMode``, 21 classes): the classifier 43.28 GMACs at
320x320 (1.73 at 64x64), each pass 62.73 (2.51): 11.96 for the activation (dense over the map,
as the reference's ``*-bp`` deconvolutions) and 50.76 for bridge and decoder; an image with
``d`` detected classes costs ``43.28 + (d + 1) x 62.73`` GMACs, so a record's complexity and
speed depend on weights and images (as Mask R-CNN's). The "same" fc layers see 10x10 at 320,
the reference's 4x4 (fc6: 10.28 GMACs against 1.64). The paper reports no compute.

``trunk="small"`` (for CPU suites, not the paper's): two 3x3 convolutions per stage of 32 | 64 |
128 | 256 | 256 channels, fc6 3x3 256 -> 512, fc7 512 -> 512, fc6-seg 3x3 512 -> 512, fc7-seg
512 -> 512, fc6-deconv 3x3 512 -> 256, the decoder mirroring the trunk (256, 256 | 256, 128 |
128, 64 | 64, 32 | 32, 32), seg-score 32 -> 2: 9,974,550 parameters at 21 classes, 9,965,829 at
4. A narrower first version (16 | 32 | 64, 64 | 128, 128 | 128, 128, fc 256; 2.5M) stayed at the
all-background 0.186 batch mIoU in the overfit check at AdamW 5e-3, 1e-3, 3e-4 and 1e-4: the 16
channels of its last decoder layer were all zero on object pixels, whose figure probability was
then the seg-score bias alone (0.47). This width reached 0.70 at 1e-4 (0.186 at 1e-3).

Overfit check (``tests/overfit.py``, 150 AdamW steps, 2-core CPU, one thread, ~8 s a step): the
default (VGG16) build stays at the all-background 0.186 at the shared 5e-3 (the loss jumps from
1.4 to 4.5e5 at the second step: no batch norm in the trunk, as FCN's) and reaches 0.859 at
1e-4, still rising (0.44 at step 10, 0.70 at 60, 0.80 at 90). What slows it: one (image, class)
pair per image, and the background pass (several classes on) is evaluated but never trained; in
a run of the first small trunk its ground probability on object pixels was 0.69-0.92.

Initialisation: Kaiming normal (fan-out for trunk and decoder, fan-in for fc6, fc7, fc6-seg,
fc7-seg), biases 0, batch norm 1 and 0; cls-score and seg-score normal with std 0.01 (the
reference's Gaussian filler).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, NamedTuple, get_args

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models import VGG16_Weights

from architectures._pretrained import copy_vgg16_imagenet, load_local_state_dict
from architectures._registry import ArchInfo, register
from architectures.fcn import Im2colConv2d  # fc6 as unfold + matmul (faster on CPU)

_PAPER = "1506.04924"
_REFERENCE = "https://github.com/HyeonwooNoh/DecoupledNet"

Trunk = Literal["vgg16", "small"]
Stage = Literal["classify", "segment", "joint"]
Fallback = Literal["reference", "top1"]

NOT_DETECTED = -100.0
"""Output of the classes that get no map (below ``log`` of any positive float32, -103.3)."""


@dataclass(frozen=True)
class TrunkConfig:
    """Widths of a trunk: ``stages`` (3x3 convolutions per stage, each stage ending with a 2x2
    max-pooling), ``fc_width`` (fc6, fc7), ``fc_kernel`` (fc6, fc6-seg, fc6-deconv; odd, "same"
    padding) and ``seg_width`` (fc6-seg, fc7-seg)."""

    stages: tuple[tuple[int, ...], ...]
    fc_width: int
    fc_kernel: int
    seg_width: int

    def decoder_stages(self) -> tuple[tuple[int, ...], ...]:
        """Deepest first; each mirrors its encoder stage, its last layer giving the width of the
        next shallower stage (the reference: 512, 512, 512 | 512, 512, 256 | ... | 64, 64)."""
        out = []
        for i in range(len(self.stages) - 1, -1, -1):
            widths = list(self.stages[i])
            if i > 0:
                widths[-1] = self.stages[i - 1][-1]
            out.append(tuple(widths))
        return tuple(out)


_VGG16_STAGES = ((64, 64), (128, 128), (256, 256, 256), (512, 512, 512), (512, 512, 512))
_SMALL_STAGES = ((32, 32), (64, 64), (128, 128), (256, 256), (256, 256))
TRUNKS: dict[str, TrunkConfig] = {
    "vgg16": TrunkConfig(_VGG16_STAGES, fc_width=4096, fc_kernel=7, seg_width=2048),
    "small": TrunkConfig(_SMALL_STAGES, fc_width=512, fc_kernel=3, seg_width=512),
}


def class_specific_activation(
    fc6_weight: torch.Tensor,
    fc7_weight: torch.Tensor,
    cls_weight: torch.Tensor,
    relu6_mask: torch.Tensor,
    relu7_mask: torch.Tensor,
    top: torch.Tensor,
) -> torch.Tensor:
    """``W6^T (m6 * (W7^T (m7 * (Wc^T top))))`` at each position: the gradient at pool5 of
    ``sum(top * cls_map)`` (biases do not enter), ``W6^T`` being the transposed "same"
    convolution of fc6.

    Shapes: ``fc6_weight`` ``(F, C5, k, k)``, ``fc7_weight`` ``(F, F, 1, 1)``, ``cls_weight``
    ``(C, F, 1, 1)``; the ReLU masks (where fc6's, fc7's pre-activation is positive) ``(Q, F, h,
    w)``; ``top`` ``(Q, C, h, w)``. Returns ``(Q, C5, h, w)``.
    """
    h, w = int(top.shape[-2]), int(top.shape[-1])  # ints, also under fvcore's jit tracing
    k = int(fc6_weight.shape[-1])
    g7 = cls_weight.flatten(1).t() @ top.flatten(2)  # (Q, F, h*w)
    g7 = g7 * relu7_mask.flatten(2).to(g7.dtype)
    g6 = fc7_weight.flatten(1).t() @ g7  # (Q, F, h*w)
    g6 = g6 * relu6_mask.flatten(2).to(g6.dtype)
    cols = fc6_weight.flatten(1).t() @ g6  # (Q, C5*k*k, h*w)
    return F.fold(cols, (h, w), k, padding=k // 2)  # (Q, C5, h, w): col2im, the transpose


def image_labels_from_masks(
    masks: torch.Tensor, num_classes: int, background: int | None, ignore_index: int = 255
) -> torch.Tensor:
    """``(N, C)`` float multi-hot labels over the object classes (every class but ``background``,
    in order) of ``(N, H, W)`` masks: 1.0 where a pixel of the image has the class. Pixels equal
    to ``ignore_index`` or outside ``[0, K)`` are ignored."""
    n = masks.shape[0]
    m = masks.long().flatten(1)  # (N, H*W)
    valid = (m >= 0) & (m < num_classes) & (m != ignore_index)
    m = torch.where(valid, m, torch.full_like(m, num_classes))  # ignored -> a spare column
    present = torch.zeros(n, num_classes + 1, device=masks.device)
    present.scatter_(1, m, 1.0)
    return present[:, object_classes(num_classes, background)]


def object_classes(num_classes: int, background: int | None) -> list[int]:
    """The class ids of the classifier's outputs, in order: every class but ``background``."""
    return [c for c in range(num_classes) if c != background]


class Passes(NamedTuple):
    """The passes of an inference batch, one row each: ``image`` ``(Q,)``, ``top`` ``(Q, C)``
    (the top signal per object class) and ``channel`` ``(Q,)``, the output class the pass's map
    goes to (the background class for a background pass: its ground probability; else the
    detected class: its figure probability)."""

    image: torch.Tensor
    top: torch.Tensor
    channel: torch.Tensor


def plan_passes(
    scores: torch.Tensor,
    threshold: float,
    num_classes: int,
    background: int | None,
    fallback: Fallback = "reference",
) -> Passes:
    """The passes of the paper's inference (module docstring, steps 1-3) for ``(N, C)`` sigmoid
    scores: per image, its background pass (with a background class), then one pass per detected
    class in class order."""
    ids = object_classes(num_classes, background)
    detected = scores > threshold  # (N, C)
    if fallback == "top1" or background is None:
        none = ~detected.any(dim=1)
        top1 = F.one_hot(scores.argmax(dim=1), scores.shape[1]).bool()
        detected = detected | (none[:, None] & top1)
    image, top, channel = [], [], []
    eye = torch.eye(scores.shape[1], dtype=scores.dtype, device=scores.device)
    for i in range(scores.shape[0]):
        if background is not None:
            image.append(i)
            top.append(scores[i] * detected[i].to(scores.dtype))
            channel.append(background)
        for c in torch.nonzero(detected[i]).flatten().tolist():
            image.append(i)
            top.append(scores[i, c] * eye[c])
            channel.append(ids[c])
    device = scores.device
    return Passes(
        image=torch.tensor(image, dtype=torch.long, device=device),
        top=torch.stack(top) if top else scores.new_zeros(0, scores.shape[1]),
        channel=torch.tensor(channel, dtype=torch.long, device=device),
    )


def assemble_scores(
    seg_logits: torch.Tensor, passes: Passes, batch: int, num_classes: int, background: int | None
) -> torch.Tensor:
    """``(N, K, H, W)`` float32 label scores (module docstring, step 4) from the passes'
    ``(Q, 2, H, W)`` ground/figure logits: ``log`` of the normalised maps, :data:`NOT_DETECTED`
    for the classes without one."""
    h, w = seg_logits.shape[-2:]
    probs = seg_logits.float().softmax(dim=1)  # (Q, 2, H, W)
    is_bg = passes.channel == background if background is not None else None
    maps = torch.zeros(batch, num_classes, h, w, device=seg_logits.device)
    candidate = torch.zeros(batch, num_classes, dtype=torch.bool, device=seg_logits.device)
    for q in range(seg_logits.shape[0]):
        i, c = int(passes.image[q]), int(passes.channel[q])
        maps[i, c] = probs[q, 0] if is_bg is not None and bool(is_bg[q]) else probs[q, 1]
        candidate[i, c] = True
    cand = candidate[:, :, None, None].float()
    maps = maps + (maps.sum(dim=1, keepdim=True) <= 0).float() * cand  # as the reference
    maps = maps / maps.sum(dim=1, keepdim=True).clamp_min(torch.finfo(maps.dtype).tiny)
    logs = maps.clamp_min(torch.finfo(maps.dtype).tiny).log()
    return torch.where(candidate[:, :, None, None], logs, torch.full_like(logs, NOT_DETECTED))


class Encoded(NamedTuple):
    """The classification network's outputs: ``pool5``, the five poolings' ``switches`` and
    pre-pooling ``sizes`` (shallowest first), fc6 and fc7 before their ReLU (``pre6``, ``pre7``)
    and the class score map ``cls_map`` ``(N, C, H/32, W/32)``."""

    pool5: torch.Tensor
    switches: tuple[torch.Tensor, ...]
    sizes: tuple[tuple[int, int], ...]
    pre6: torch.Tensor
    pre7: torch.Tensor
    cls_map: torch.Tensor


def _conv_relu(cin: int, cout: int) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 3, padding=1), nn.ReLU(inplace=True)]


def _conv_bn_relu(cin: int, cout: int) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]


class DecoupledNet(nn.Module):
    """DecoupledNet (module docstring); the arguments are the builder's (:func:`decouplednet`)."""

    def __init__(
        self,
        num_classes: int,
        trunk: Trunk = "vgg16",
        background: int | None = 0,
        threshold: float = 0.5,
        fallback: Fallback = "reference",
        stage: Stage = "joint",
    ) -> None:
        super().__init__()
        if trunk not in TRUNKS:
            raise ValueError(f"trunk must be one of {sorted(TRUNKS)}; got {trunk!r}.")
        if background is not None and not (
            isinstance(background, int) and 0 <= background < num_classes and num_classes > 1
        ):
            raise ValueError(
                f"background must be None or a class id in [0, {num_classes}) with at least 2 "
                f"classes; got {background!r}. Use background=None for a dataset without one."
            )
        if not 0.0 < float(threshold) < 1.0:
            raise ValueError(f"threshold must be in (0, 1); got {threshold!r}.")
        if fallback not in get_args(Fallback):
            raise ValueError(f"fallback must be one of {get_args(Fallback)}; got {fallback!r}.")
        cfg = TRUNKS[trunk]
        self.num_classes = num_classes
        self.background = background
        self.threshold = float(threshold)
        self.fallback = fallback
        self.trunk = trunk
        self.object_classes = object_classes(num_classes, background)
        c_obj = len(self.object_classes)
        c5 = cfg.stages[-1][-1]

        # Classification network.
        stages, cin = [], 3
        for widths in cfg.stages:
            layers: list[nn.Module] = []
            for width in widths:
                layers += _conv_relu(cin, width)
                cin = width
            stages.append(nn.Sequential(*layers))
        self.features = nn.ModuleList(stages)
        self.fc6 = Im2colConv2d(c5, cfg.fc_width, cfg.fc_kernel)
        self.fc7 = nn.Conv2d(cfg.fc_width, cfg.fc_width, 1)
        self.cls_score = nn.Conv2d(cfg.fc_width, c_obj, 1)

        # Bridging layers.
        self.bn_pool5 = nn.BatchNorm2d(c5)
        self.bn_pool5_bp = nn.BatchNorm2d(c5)
        self.fc6_seg = Im2colConv2d(2 * c5, cfg.seg_width, cfg.fc_kernel)
        self.bn6_seg = nn.BatchNorm2d(cfg.seg_width)
        self.fc7_seg = nn.Conv2d(cfg.seg_width, cfg.seg_width, 1)
        self.bn7_seg = nn.BatchNorm2d(cfg.seg_width)

        # Segmentation network.
        self.fc6_deconv = Im2colConv2d(cfg.seg_width, c5, cfg.fc_kernel)
        self.bn6_deconv = nn.BatchNorm2d(c5)
        decoder, cin = [], c5
        for widths in cfg.decoder_stages():
            layers = []
            for width in widths:
                layers += _conv_bn_relu(cin, width)
                cin = width
            decoder.append(nn.Sequential(*layers))
        self.decoder = nn.ModuleList(decoder)
        self.seg_score = nn.Conv2d(cin, 2, 1)

        self._init_weights()
        self.set_stage(stage)

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        for conv in (self.fc6, self.fc7, self.fc6_seg, self.fc7_seg):
            nn.init.kaiming_normal_(conv.weight, mode="fan_in", nonlinearity="relu")
        for conv in (self.cls_score, self.seg_score):
            nn.init.normal_(conv.weight, std=0.01)  # the reference's Gaussian filler

    # ----------------------------------------------------------------------- stages

    @property
    def stage(self) -> Stage:
        """The training stage: ``"classify"``, ``"segment"`` or ``"joint"``."""
        return self._stage

    def set_stage(self, stage: Stage) -> None:
        """``"classify"``, ``"segment"`` or ``"joint"``: what a training call optimises (module
        docstring); ``ValueError`` for another value."""
        if stage not in get_args(Stage):
            raise ValueError(f"stage must be one of {get_args(Stage)}; got {stage!r}.")
        self._stage: Stage = stage

    # ----------------------------------------------------------------------- parts

    def encode(self, x: torch.Tensor) -> Encoded:
        """The classification network on ``(N, 3, H, W)``, H and W multiples of 32."""
        h, w = x.shape[-2:]
        if h % 32 or w % 32:
            raise ValueError(
                f"DecoupledNet needs H and W divisible by 32 (five 2x2 poolings and unpoolings); "
                f"got {h}x{w}. Pad the input (bench.models.PadCrop does) to "
                f"{-(-h // 32) * 32}x{-(-w // 32) * 32}."
            )
        switches, sizes = [], []
        for stage in self.features:
            x = stage(x)
            sizes.append((int(x.shape[-2]), int(x.shape[-1])))
            x, idx = F.max_pool2d(x, 2, 2, return_indices=True)  # (N, C, h/2, w/2)
            switches.append(idx)
        pre6 = self.fc6(x)  # (N, F, H/32, W/32)
        pre7 = self.fc7(F.relu(pre6))
        cls_map = self.cls_score(F.relu(pre7))  # (N, C, H/32, W/32)
        return Encoded(x, tuple(switches), tuple(sizes), pre6, pre7, cls_map)

    def class_activation(
        self, enc: Encoded, image: torch.Tensor, top: torch.Tensor
    ) -> torch.Tensor:
        """``(Q, C5, H/32, W/32)`` activation of each pass (``image`` ``(Q,)``, ``top`` ``(Q, C)``),
        the signal of class ``c`` at the first maximum of its score map (as Caffe's pooling)."""
        n, c, h, w = enc.cls_map.shape
        where = F.one_hot(enc.cls_map.flatten(2).argmax(dim=2), h * w)  # (N, C, h*w)
        top_map = top[:, :, None] * where[image].to(top.dtype)  # (Q, C, h*w)
        return class_specific_activation(
            self.fc6.weight,
            self.fc7.weight,
            self.cls_score.weight,
            enc.pre6[image] > 0,
            enc.pre7[image] > 0,
            top_map.view(-1, c, h, w),
        )

    def segment(
        self,
        pool5: torch.Tensor,
        activation: torch.Tensor,
        switches: tuple[torch.Tensor, ...],
        sizes: tuple[tuple[int, int], ...],
    ) -> torch.Tensor:
        """Bridge and segmentation network on one row per pass (pool5, activation and switches
        of the pass's image): ``(Q, 2, H, W)`` logits, channel 0 ground, channel 1 figure."""
        x = torch.cat([self.bn_pool5(pool5), self.bn_pool5_bp(activation)], dim=1)
        x = F.relu(self.bn6_seg(self.fc6_seg(x)))  # (Q, S, h, w)
        x = F.relu(self.bn7_seg(self.fc7_seg(x)))
        x = F.relu(self.bn6_deconv(self.fc6_deconv(x)))  # (Q, C5, h, w)
        for stage, idx, size in zip(self.decoder, reversed(switches), reversed(sizes), strict=True):
            x = F.max_unpool2d(x, idx, 2, stride=2, output_size=size)  # (Q, C, 2h, 2w)
            x = stage(x)
        return self.seg_score(x)  # (Q, 2, H, W)

    def class_logits(self, enc: Encoded) -> torch.Tensor:
        """``(N, C)`` image-level logits: the score map averaged over all positions."""
        return enc.cls_map.mean(dim=(2, 3))

    # ----------------------------------------------------------------------- forward

    def forward(
        self,
        x: torch.Tensor,
        targets: torch.Tensor | None = None,
        *,
        ignore_index: int = 255,
        image_labels: torch.Tensor | None = None,
    ) -> torch.Tensor | dict[str, torch.Tensor]:
        """The stage's dict of losses in train mode with ``targets`` (``(N, H, W)`` masks) or
        ``image_labels`` (``(N, C)`` multi-hot, stage ``"classify"``), else ``(N, K, H, W)``
        label scores (:meth:`predict`)."""
        if self.training and (targets is not None or image_labels is not None):
            return self.losses(x, targets, ignore_index=ignore_index, image_labels=image_labels)
        return self.predict(x)

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """The paper's inference (module docstring): ``(N, K, H, W)`` label scores."""
        enc = self.encode(x)
        scores = torch.sigmoid(self.class_logits(enc))  # (N, C)
        passes = plan_passes(
            scores, self.threshold, self.num_classes, self.background, self.fallback
        )
        activation = self.class_activation(enc, passes.image, passes.top)
        seg = self.segment(
            enc.pool5[passes.image],
            activation,
            tuple(s[passes.image] for s in enc.switches),
            enc.sizes,
        )  # (Q, 2, H, W)
        out = assemble_scores(seg, passes, x.shape[0], self.num_classes, self.background)
        return out.to(seg.dtype)

    def losses(
        self,
        x: torch.Tensor,
        targets: torch.Tensor | None,
        *,
        ignore_index: int = 255,
        image_labels: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """The training losses of the current stage; ``ValueError`` for missing or misshapen
        labels."""
        if self._stage != "classify" and targets is None:
            raise ValueError(
                f"stage {self._stage!r} trains the segmentation network and needs pixel "
                f"targets; images with image-level labels only (image_labels=...) train in "
                f"stage 'classify' (model.set_stage('classify'))."
            )
        c_obj = len(self.object_classes)
        if image_labels is not None and tuple(image_labels.shape) != (x.shape[0], c_obj):
            raise ValueError(
                f"image_labels must be (N, C) = {(x.shape[0], c_obj)} multi-hot over the object "
                f"classes {self.object_classes}; got shape {tuple(image_labels.shape)}."
            )
        mask_labels = (
            None
            if targets is None
            else image_labels_from_masks(targets, self.num_classes, self.background, ignore_index)
        )
        labels = image_labels if image_labels is not None else mask_labels
        if self._stage == "classify":
            logits = self.class_logits(self.encode(x))
            return {"loss_cls": F.binary_cross_entropy_with_logits(logits, labels.to(logits))}
        if self._stage == "segment":
            with torch.no_grad():  # the classifier is fixed: nothing of it gets a gradient
                enc = self.encode(x)
                image, top, target = self._pairs(enc, targets, mask_labels, ignore_index)
                activation = self.class_activation(enc, image, top)
            return {"loss_seg": self._seg_loss(enc, image, activation, target)}
        enc = self.encode(x)
        logits = self.class_logits(enc)
        loss_cls = F.binary_cross_entropy_with_logits(logits, labels.to(logits))
        image, top, target = self._pairs(enc, targets, mask_labels, ignore_index)
        activation = self.class_activation(enc, image, top)
        return {"loss_cls": loss_cls, "loss_seg": self._seg_loss(enc, image, activation, target)}

    def _pairs(
        self, enc: Encoded, targets: torch.Tensor, labels: torch.Tensor, ignore_index: int
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One (image, class) pair per image that has an object class, drawn with torch's
        global CPU RNG; the top signal (sigmoid of the class's max-pooled score on that class)
        and the figure/ground target (1 figure, 0 ground, -100 ignored)."""
        image, cls = [], []
        for i in range(labels.shape[0]):
            present = torch.nonzero(labels[i]).flatten().tolist()
            if present:
                image.append(i)
                cls.append(present[int(torch.randint(len(present), (1,)))])
        device = targets.device
        image_t = torch.tensor(image, dtype=torch.long, device=device)
        cls_t = torch.tensor(cls, dtype=torch.long, device=device)
        c_obj = labels.shape[1]
        max_score = torch.sigmoid(enc.cls_map.flatten(2).amax(dim=2))  # (N, C)
        top = max_score[image_t] * F.one_hot(cls_t, c_obj).to(max_score.dtype)  # (P, C)
        masks = targets[image_t].long()  # (P, H, W)
        ids = torch.tensor(self.object_classes, dtype=torch.long, device=device)[cls_t]
        valid = (masks >= 0) & (masks < self.num_classes) & (masks != ignore_index)
        target = torch.where(valid, (masks == ids[:, None, None]).long(), -100)
        return image_t, top, target

    def _seg_loss(
        self, enc: Encoded, image: torch.Tensor, activation: torch.Tensor, target: torch.Tensor
    ) -> torch.Tensor:
        if image.numel() == 0:  # no image of the batch has an object class
            return enc.pool5.new_zeros((), requires_grad=True)
        seg = self.segment(
            enc.pool5[image], activation, tuple(s[image] for s in enc.switches), enc.sizes
        )  # (P, 2, H, W)
        return F.cross_entropy(seg, target, ignore_index=-100)

    # ----------------------------------------------------------------------- weights

    def load_vgg16_imagenet(self, state: dict[str, torch.Tensor]) -> None:
        """Copy torchvision VGG16 ImageNet weights, convolutionalising fc6 and fc7."""
        if self.trunk != "vgg16":
            raise ValueError(
                f"ImageNet weights exist for trunk='vgg16' only; this model has "
                f"trunk={self.trunk!r}. Build it with pretrained_backbone=False."
            )
        convs = [m for stage in self.features for m in stage if isinstance(m, nn.Conv2d)]
        copy_vgg16_imagenet(state, convs, self.fc6, self.fc7)


@register(
    ArchInfo(
        name="decouplednet",
        title="DecoupledNet",
        paper=_PAPER,
        year=2015,
        family="semi-supervised",
        reference=_REFERENCE,
        input_divisor=32,
        min_num_classes=2,
        train_needs_targets=True,
        notes=(
            "'Same' 7x7 fc layers (any multiple of 32, not 320x320); stage 'joint' (default) "
            "trains classifier and segmentation together; inference as the reference's MATLAB "
            "(background pass, one pass per detected class, no top-1 fallback). No paper "
            "parameter count."
        ),
    )
)
def decouplednet(
    *,
    num_classes: int,
    trunk: Trunk = "vgg16",
    background: int | None = 0,
    threshold: float = 0.5,
    fallback: Fallback = "reference",
    stage: Stage = "joint",
    pretrained_backbone: bool = False,
) -> nn.Module:
    """DecoupledNet; 307.45M parameters at 21 classes with the VGG16 trunk.

    Args:
        num_classes: ``K``, background included when ``background`` is not ``None``.
        trunk: ``"vgg16"`` (the paper's) or ``"small"`` (a narrower trunk for CPU suites).
        background: The background class (0: PASCAL VOC, the synthetic set), or ``None`` when
            every class is an object class (CamVid).
        threshold: Class ``c`` is detected where its sigmoid score exceeds it.
        fallback: ``"reference"`` (nothing detected: all background, as the authors' code) or
            ``"top1"`` (the top-scoring class is detected then).
        stage: The training stage, ``"joint"``, ``"classify"`` or ``"segment"``.
        pretrained_backbone: Load torchvision's ImageNet VGG16 (convolutions, fc6, fc7) from the
            local hub cache (``trunk="vgg16"`` only).
    """
    if pretrained_backbone and trunk != "vgg16":
        raise ValueError(
            f"pretrained_backbone=True needs trunk='vgg16' (ImageNet VGG16); got trunk={trunk!r}."
        )
    model = DecoupledNet(
        num_classes,
        trunk=trunk,
        background=background,
        threshold=threshold,
        fallback=fallback,
        stage=stage,
    )
    if pretrained_backbone:
        model.load_vgg16_imagenet(load_local_state_dict(VGG16_Weights.IMAGENET1K_V1))
    return model
