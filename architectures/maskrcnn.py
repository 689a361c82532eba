"""Mask R-CNN (ResNet-50-FPN), wrapped so that the harness sees semantic segmentation logits.

Paper: K. He, G. Gkioxari, P. Dollar, R. Girshick, "Mask R-CNN", ICCV 2017, arXiv 1703.06870.
Reference implementation: torchvision ``models/detection`` (``maskrcnn_resnet50_fpn``), which the
builder calls with ``weights=None, weights_backbone=None`` (nothing is downloaded; with no
pretrained weights torchvision uses ordinary ``BatchNorm2d`` and leaves all five backbone stages
trainable). The submodules, and so the state-dict keys under ``detector.``, are torchvision's own.

Mask R-CNN is an instance-segmentation model; this entry turns it into a semantic-segmentation
model for the harness. Everything below is the wrapper (:class:`MaskRCNNSemantic`), not the paper.

**Inputs.** The wrapper drives the detector's parts itself (``backbone``, ``rpn``,
``roi_heads``, as ``GeneralizedRCNN.forward`` does) and bypasses ``detector.transform``: the
harness's images are already normalised by the dataset and padded by ``bench.models.PadCrop``
to a multiple of 32 (``input_divisor``), so there is **no resizing** (torchvision would scale the
short side to 800) and **no further mean/std normalisation**. The batch goes to the backbone as
is, every image with its full size.

**Eval (and complexity, speed): pasting detections into a semantic map.** The detector runs with
torchvision's default inference settings except ``box_score_thresh``, which is set to the
wrapper's ``score_threshold`` (default 0.5, builder option): torchvision keeps detections with a
class score strictly above it (at most 100 per image, after per-class NMS at 0.5), so the mask
head only runs on the instances that are pasted. Each instance's 28x28 mask probabilities are
pasted into the image with torchvision's ``paste_masks_in_image`` and binarised at 0.5
(``mask_threshold``). The instances are painted in **ascending score order** onto an all-
background map (class 0), each writing its class id into its binary mask, so a higher-scoring
instance paints last and wins where instances overlap (ties: the later index in torchvision's
output order wins). This is computed without a loop over instances: with instances sorted by
ascending score and ranked 1..M, each pixel takes the highest rank whose mask covers it (0 if
none) and the class id of that rank.

The returned "logits" are the **one-hot encoding of that map**, as float: ``out[n, c, y, x]`` is
exactly 1.0 where the pasted map has class ``c`` and 0.0 elsewhere (shape ``(N, K, H, W)``), so
``argmax`` over classes gives the pasted map (pixels covered by no instance are class 0). The
values carry no confidence; softmax-based consumers see a uniform ``e / (e + K - 1)`` peak.

**Train: instance targets from the semantic mask.** The harness's training loop calls
``model(images, targets=masks)`` for entries with ``ArchInfo.train_needs_targets`` (see
``bench.train``); the wrapper derives instance targets per image with
:func:`semantic_to_instances`: the connected components (**8-connectivity**; builder option
``connectivity=4`` for 4-connectivity) of each class ``1..K-1``; background (0) forms no
instance, and every label outside ``[0, K)`` (the dataset's ignore index, 255, and the padding
``PadCrop`` adds with it) is excluded from every instance. Each component gives one instance:
``labels`` = its class id, ``masks`` = the component (uint8, ``(M, H, W)``), ``boxes`` = its
pixel extent ``[x_min, y_min, x_max + 1, y_max + 1]`` (float, the box covers whole pixels, so a
one-pixel component has a 1x1 box and no box is degenerate). Images without instances get
empty targets (boxes ``(0, 4)``), which torchvision trains on (only background samples). The
components are labelled by vectorised min-label propagation with pointer jumping (pure torch,
no scipy). Train mode with targets returns torchvision's loss dict (``loss_classifier``,
``loss_box_reg``, ``loss_mask``, ``loss_objectness``, ``loss_rpn_box_reg``); the harness
minimises their unweighted sum, as torchvision's reference recipe. The ignored pixels inside an
instance's box count as mask negatives (Mask R-CNN's per-RoI binary mask loss has no ignore).

Train mode **without** targets (e.g. ``bench.train.recompute_bn_stats``, "precise BN") runs the
backbone in train mode, i.e. with batch statistics, updating its running averages, and the RPN and
RoI heads in inference mode, and returns the pasted one-hot map as in eval.

**Complexity and speed** are those of the full detector in eval mode at the input resolution
(``bench.complexity`` counts the wrapper). They depend on the **number of detections** (every
kept instance costs the mask head 0.51 GMACs: four 3x3 256-channel convolutions on 14x14, a 2x
transposed convolution and the 1x1 mask predictor) and of RPN proposals (up to 1,000 per image
at inference, 13.9 MMACs each in the box head), i.e. on the weights and the image; the counts in
a run record hold for that model and input only. On the all-zero input ``bench.complexity``
uses, the untrained detector keeps no detection (only the box head's proposals count). fvcore and
``FlopCounterMode`` count the same convolutions and linear layers and agree exactly (measured at
64x64, 512x512 and 800x800); fvcore lists ``torchvision::roi_align`` as unsupported, and under
tracing NMS and the mask pasting run inside TorchScript functions (``prim::CallFunction``):
none of them is a convolution or matrix product. At 800x800 with 91 classes the count is
134.380 GMACs, exactly torchvision's published ``meta["_ops"]`` (134.38), which is therefore
a no-detection figure too; it is not declared as a paper figure here (the issue names only the
parameter count).

Parameter count: 44,401,393 at 91 classes with torchvision's (frozen-BN) pretrained build, the
figure torchvision publishes (``MaskRCNN_ResNet50_FPN_Weights.COCO_V1.meta["num_params"]``);
this entry's from-scratch build has trainable ``BatchNorm2d`` in the backbone (53,120 batch
norm weights and biases more): 44,454,513 at 91 classes.

``pretrained_backbone=True`` loads torchvision's ImageNet ResNet-50 weights (``IMAGENET1K_V1``)
into ``detector.backbone.body`` from the local torch hub cache only; unlike torchvision's
pretrained build the batch norm layers stay ordinary (not frozen) and all stages stay trainable.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models import ResNet50_Weights
from torchvision.models.detection import (
    MaskRCNN,
    MaskRCNN_ResNet50_FPN_Weights,
    maskrcnn_resnet50_fpn,
)
from torchvision.models.detection.image_list import ImageList
from torchvision.models.detection.roi_heads import paste_masks_in_image

from architectures._pretrained import load_local_state_dict
from architectures._registry import ArchInfo, register

_PAPER = "1703.06870"
_REFERENCE = "https://github.com/pytorch/vision/tree/main/torchvision/models/detection"

_NEIGHBOURS = {
    4: ((-1, 0), (1, 0), (0, -1), (0, 1)),
    8: ((-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1)),
}


def _shift(t: torch.Tensor, dy: int, dx: int, fill: int) -> torch.Tensor:
    """``out[..., y, x] = t[..., y + dy, x + dx]``, ``fill`` outside the image."""
    h, w = t.shape[-2:]
    padded = F.pad(t, (1, 1, 1, 1), value=fill)
    return padded[..., 1 + dy : 1 + dy + h, 1 + dx : 1 + dx + w]


def connected_components(
    classes: torch.Tensor, valid: torch.Tensor, connectivity: int = 8
) -> torch.Tensor:
    """Labels the connected components of equal class among ``valid`` pixels.

    Args:
        classes: ``(N, H, W)`` integer class map.
        valid: ``(N, H, W)`` bool; only these pixels belong to components.
        connectivity: 4 or 8 (pixels touching at a corner are connected with 8).

    Returns:
        ``(N, H, W)`` int64: for a valid pixel, the flat index (into ``N * H * W``) of the
        smallest-index pixel of its component, which names the component; -1 elsewhere.
        Components never cross images.
    """
    if connectivity not in _NEIGHBOURS:
        raise ValueError(f"connectivity must be 4 or 8; got {connectivity!r}.")
    n, h, w = classes.shape
    big = n * h * w  # larger than every index: "no label"
    cls = torch.where(valid, classes.long(), torch.full_like(classes, -1, dtype=torch.long))
    # For every direction: is the neighbour valid and of the same class?
    links = [
        (dy, dx, valid & (_shift(cls, dy, dx, -1) == cls)) for dy, dx in _NEIGHBOURS[connectivity]
    ]
    index = torch.arange(big, device=classes.device).view(n, h, w)
    label = torch.where(valid, index, torch.full_like(index, big))
    while True:
        new = label
        for dy, dx, link in links:  # min over linked neighbours
            new = torch.minimum(new, torch.where(link, _shift(label, dy, dx, big), big))
        # Pointer jumping: a label is the index of a pixel of the same component whose own
        # label is no larger, so following it twice shortens long propagation chains.
        flat = torch.cat([new.flatten(), new.new_full((1,), big)])
        for _ in range(2):
            new = torch.where(valid, flat[new], new)
            flat = torch.cat([new.flatten(), new.new_full((1,), big)])
        if torch.equal(new, label):
            break
        label = new
    return torch.where(valid, label, torch.full_like(label, -1))


def semantic_to_instances(
    mask: torch.Tensor, num_classes: int, connectivity: int = 8
) -> list[dict[str, torch.Tensor]]:
    """Instance targets for torchvision's detectors from semantic masks.

    Each connected component of a class ``1..num_classes-1`` becomes one instance; class 0
    (background) and labels outside ``[0, num_classes)`` (ignored pixels) form none.

    Args:
        mask: ``(N, H, W)`` integer semantic masks.
        num_classes: Number of classes, background (0) included.
        connectivity: 4 or 8.

    Returns:
        Per image a dict with ``boxes`` ``(M, 4)`` float32 ``[x0, y0, x1 + 1, y1 + 1]`` (the
        pixel extent), ``labels`` ``(M,)`` int64 class ids and ``masks`` ``(M, H, W)`` uint8,
        ordered by the component's first pixel in raster order. ``M`` may be 0.
    """
    if mask.dim() != 3:
        raise ValueError(f"semantic masks must be (N, H, W); got shape {tuple(mask.shape)}.")
    n, h, w = mask.shape
    mask = mask.long()
    valid = (mask >= 1) & (mask < num_classes)
    comp = connected_components(mask, valid, connectivity)  # (N, H, W)
    flat_classes = mask.flatten()
    targets = []
    for i in range(n):
        ids = torch.unique(comp[i][valid[i]])  # (M,) representatives, ascending
        masks = comp[i][None] == ids[:, None, None]  # (M, H, W)
        rows, cols = masks.any(dim=2), masks.any(dim=1)  # (M, H), (M, W)
        ar_h = torch.arange(h, device=mask.device)
        ar_w = torch.arange(w, device=mask.device)
        y0 = torch.where(rows, ar_h, h).amin(dim=1) if len(ids) else ids
        y1 = torch.where(rows, ar_h, -1).amax(dim=1) + 1 if len(ids) else ids
        x0 = torch.where(cols, ar_w, w).amin(dim=1) if len(ids) else ids
        x1 = torch.where(cols, ar_w, -1).amax(dim=1) + 1 if len(ids) else ids
        targets.append(
            {
                "boxes": torch.stack([x0, y0, x1, y1], dim=1).float().view(-1, 4),
                "labels": flat_classes[ids],
                "masks": masks.to(torch.uint8),
            }
        )
    return targets


def paste_instances(
    labels: torch.Tensor,
    scores: torch.Tensor,
    masks: torch.Tensor,
    num_classes: int,
    mask_threshold: float = 0.5,
) -> torch.Tensor:
    """One-hot semantic map ``(K, H, W)`` of instances painted in ascending score order.

    Args:
        labels: ``(M,)`` class ids in ``[1, K)``.
        scores: ``(M,)`` detection scores; higher scores paint last (win overlaps).
        masks: ``(M, H, W)`` mask probabilities at image resolution.
        num_classes: ``K``.
        mask_threshold: A pixel belongs to an instance where its probability exceeds this.

    Returns:
        Float ``(K, H, W)``: 1.0 at the painted class of each pixel (0 where nothing is
        painted), 0.0 elsewhere.
    """
    h, w = masks.shape[-2:]
    order = torch.sort(scores, stable=True).indices  # ascending
    binary = masks[order] > mask_threshold  # (M, H, W)
    ranks = torch.arange(1, len(order) + 1, device=masks.device)
    top = (
        (binary * ranks[:, None, None]).amax(dim=0)
        if len(order)
        else torch.zeros(h, w, dtype=torch.long, device=masks.device)
    )  # (H, W): 0 = none
    painted = torch.cat([labels.new_zeros(1), labels[order]])[top]  # (H, W) class ids
    return F.one_hot(painted, num_classes).permute(2, 0, 1).float()


@contextmanager
def _heads_in_inference(detector: MaskRCNN) -> Iterator[None]:
    """Runs the RPN and RoI heads in inference mode; the backbone keeps its own mode."""
    heads = [m for part in (detector.rpn, detector.roi_heads) for m in part.modules()]
    flags = [(m, m.training) for m in heads]
    for m in heads:
        m.training = False
    try:
        yield
    finally:
        for m, flag in flags:
            m.training = flag


class MaskRCNNSemantic(nn.Module):
    """A torchvision Mask R-CNN seen as a semantic-segmentation model (module docstring)."""

    def __init__(
        self,
        detector: MaskRCNN,
        num_classes: int,
        connectivity: int = 8,
        mask_threshold: float = 0.5,
    ) -> None:
        super().__init__()
        if connectivity not in _NEIGHBOURS:
            raise ValueError(f"connectivity must be 4 or 8; got {connectivity!r}.")
        self.detector = detector
        self.num_classes = num_classes
        self.connectivity = connectivity
        self.mask_threshold = mask_threshold

    @property
    def score_threshold(self) -> float:
        return float(self.detector.roi_heads.score_thresh)

    def forward(
        self, x: torch.Tensor, targets: torch.Tensor | None = None
    ) -> torch.Tensor | dict[str, torch.Tensor]:
        n, _, h, w = x.shape
        images = ImageList(x, [(h, w)] * n)
        features = self.detector.backbone(x)  # {"0".."3", "pool"}: (N, 256, H/4 .. H/64)
        if self.training and targets is not None:
            instances = semantic_to_instances(targets, self.num_classes, self.connectivity)
            proposals, rpn_losses = self.detector.rpn(images, features, instances)
            _, roi_losses = self.detector.roi_heads(
                features, proposals, images.image_sizes, instances
            )
            return {**roi_losses, **rpn_losses}
        with _heads_in_inference(self.detector):
            proposals, _ = self.detector.rpn(images, features)
            detections, _ = self.detector.roi_heads(features, proposals, images.image_sizes)
        out = []
        for det in detections:
            masks = paste_masks_in_image(det["masks"], det["boxes"], (h, w))  # (M, 1, H, W)
            out.append(
                paste_instances(
                    det["labels"], det["scores"], masks[:, 0], self.num_classes, self.mask_threshold
                )
            )
        return torch.stack(out)  # (N, K, H, W)


@register(
    ArchInfo(
        name="maskrcnn_r50_fpn",
        title="Mask R-CNN R50-FPN (semantic paste)",
        paper=_PAPER,
        year=2017,
        family="detection",
        reference=_REFERENCE,
        input_divisor=32,
        paper_params=MaskRCNN_ResNet50_FPN_Weights.COCO_V1.meta["num_params"],
        paper_params_note="torchvision weights metadata, 91 COCO classes (frozen batch norm, "
        "so its 53,120 batch norm weights are buffers there and parameters here)",
        paper_num_classes=91,
        train_needs_targets=True,
        notes="torchvision's detector; eval pastes instances (score > 0.5) in ascending score "
        "order as a one-hot map; train derives instances from connected components.",
    )
)
def maskrcnn_r50_fpn(
    *,
    num_classes: int,
    pretrained_backbone: bool = False,
    score_threshold: float = 0.5,
    connectivity: int = 8,
    box_batch_size_per_image: int = 512,
    box_detections_per_img: int = 100,
    rpn_post_nms_top_n_train: int = 2000,
    rpn_post_nms_top_n_test: int = 1000,
) -> nn.Module:
    """torchvision ``maskrcnn_resnet50_fpn`` from scratch, returning pasted one-hot maps.

    Args:
        num_classes: Classes including background (class 0), as torchvision's ``num_classes``.
        pretrained_backbone: Load ImageNet ResNet-50 weights from the local hub cache.
        score_threshold: Instances with a score above it are pasted (torchvision's
            ``box_score_thresh``).
        connectivity: 4 or 8, for the connected components that define training instances.
        box_batch_size_per_image: RoIs sampled per image for the box and mask losses (at most
            25% positive); torchvision's default 512 is sized for 800-pixel COCO images.
        box_detections_per_img: Most instances kept per image at inference.
        rpn_post_nms_top_n_train: Proposals kept per image after NMS in training.
        rpn_post_nms_top_n_test: Proposals kept per image after NMS at inference.
    """
    detector = maskrcnn_resnet50_fpn(
        weights=None,
        weights_backbone=None,
        num_classes=num_classes,
        box_score_thresh=score_threshold,
        box_batch_size_per_image=box_batch_size_per_image,
        box_detections_per_img=box_detections_per_img,
        rpn_post_nms_top_n_train=rpn_post_nms_top_n_train,
        rpn_post_nms_top_n_test=rpn_post_nms_top_n_test,
    )
    if pretrained_backbone:
        state = load_local_state_dict(ResNet50_Weights.IMAGENET1K_V1)
        state = {k: v for k, v in state.items() if not k.startswith("fc.")}
        detector.backbone.body.load_state_dict(state, strict=True)
    return MaskRCNNSemantic(detector, num_classes, connectivity=connectivity)
