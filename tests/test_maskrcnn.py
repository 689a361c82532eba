"""Tests for ``architectures.maskrcnn``: Mask R-CNN (He et al., arXiv 1703.06870) wrapped as a
semantic-segmentation entry.

The wrapper derives instances from semantic masks (connected components, checked against a
breadth-first search) and pastes detections back into a class map (checked on hand-made masks
and detections); its build options and parameter count, and one training run through the
harness loop (``ArchInfo.train_needs_targets``). The shared contract is
``tests/test_architecture_contract.py``.
"""

from __future__ import annotations

import math
from collections import deque

import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

import architectures
from architectures.maskrcnn import (
    MaskRCNNSemantic,
    connected_components,
    paste_instances,
    semantic_to_instances,
)
from bench.complexity import count_params
from bench.models import build_model
from bench.train import TrainConfig, needs_targets, train
from tests.factories import meta_build

pytestmark = pytest.mark.usefixtures("one_thread")

# --------------------------------------------------------------------------- Mask R-CNN: targets


def _bfs_components(classes: torch.Tensor, valid: torch.Tensor, conn: int) -> list[set]:
    """Reference labelling by breadth-first search (one image)."""
    h, w = classes.shape
    steps = [(-1, 0), (1, 0), (0, -1), (0, 1)]
    if conn == 8:
        steps += [(-1, -1), (-1, 1), (1, -1), (1, 1)]
    seen, comps = set(), []
    for y in range(h):
        for x in range(w):
            if not valid[y, x] or (y, x) in seen:
                continue
            comp, todo = set(), deque([(y, x)])
            seen.add((y, x))
            while todo:
                cy, cx = todo.popleft()
                comp.add((cy, cx))
                for dy, dx in steps:
                    ny, nx = cy + dy, cx + dx
                    if (
                        0 <= ny < h
                        and 0 <= nx < w
                        and valid[ny, nx]
                        and (ny, nx) not in seen
                        and classes[ny, nx] == classes[cy, cx]
                    ):
                        seen.add((ny, nx))
                        todo.append((ny, nx))
            comps.append(frozenset(comp))
    return comps


@pytest.mark.parametrize("connectivity", [4, 8])
def test_connected_components_match_breadth_first_search(connectivity):
    gen = torch.Generator().manual_seed(0)
    classes = torch.randint(0, 3, (3, 13, 11), generator=gen)
    classes[torch.rand(classes.shape, generator=gen) < 0.1] = 255
    valid = (classes >= 1) & (classes < 3)
    label = connected_components(classes, valid, connectivity)
    for i in range(3):
        ours = {}
        for y, x in zip(*torch.nonzero(valid[i], as_tuple=True), strict=True):
            ours.setdefault(int(label[i, y, x]), set()).add((int(y), int(x)))
        assert {frozenset(c) for c in ours.values()} == set(
            _bfs_components(classes[i], valid[i], connectivity)
        )
        assert (label[i][~valid[i]] == -1).all()
        # The name of a component is the flat index of its first pixel, inside image i.
        assert all(min(y * 11 + x for y, x in c) + i * 13 * 11 == k for k, c in ours.items())


def test_connected_components_of_a_long_serpentine():
    # A one-pixel-wide serpentine of 15 rows joined alternately at the right and left ends: one
    # 4-connected component whose ends are ~170 steps apart (a worst case for plain propagation).
    n = 29
    grid = torch.zeros(n, n, dtype=torch.long)
    grid[::2] = 1
    grid[1::4, -1] = 1
    grid[3::4, 0] = 1
    label = connected_components(grid[None], grid[None] == 1, connectivity=4)
    assert torch.equal(label[grid[None] == 1].unique(), torch.tensor([0]))
    assert len(_bfs_components(grid, grid == 1, 4)) == 1
    # Cut row 14: its left part joins the lower rows (via (15, 0)), named by pixel (14, 0).
    grid[14, 5] = 0
    label = connected_components(grid[None], grid[None] == 1, connectivity=4)
    assert label[grid[None] == 1].unique().tolist() == [0, 14 * n]


def test_semantic_to_instances_on_a_hand_made_mask():
    mask = torch.zeros(1, 8, 8, dtype=torch.uint8)
    mask[0, 1:3, 1:4] = 1  # instance A, class 1: rows 1-2, cols 1-3
    mask[0, 5:7, 5:7] = 1  # instance B, class 1: another component
    mask[0, 3, 4] = 2  # class 2 pixel touching A only at a corner (same class needed anyway)
    mask[0, 4, 5] = 2  # diagonal neighbour of (3, 4): one instance with 8-, two with 4-conn.
    mask[0, 6, 0] = 255  # ignored pixel: no instance
    mask[0, 1, 1] = 255  # ignored pixel inside A: excluded from its mask and box
    eight = semantic_to_instances(mask, num_classes=3, connectivity=8)[0]
    four = semantic_to_instances(mask, num_classes=3, connectivity=4)[0]
    assert eight["labels"].tolist() == [1, 2, 1]  # ordered by first pixel in raster order
    assert eight["boxes"].tolist() == [[1, 1, 4, 3], [4, 3, 6, 5], [5, 5, 7, 7]]
    assert eight["boxes"].dtype == torch.float32 and eight["labels"].dtype == torch.int64
    assert eight["masks"].dtype == torch.uint8 and eight["masks"].shape == (3, 8, 8)
    a = torch.zeros(8, 8, dtype=torch.uint8)
    a[1:3, 1:4] = 1
    a[1, 1] = 0
    assert torch.equal(eight["masks"][0], a)
    assert int(eight["masks"][1].sum()) == 2 and int(eight["masks"][2].sum()) == 4
    assert four["labels"].tolist() == [1, 2, 2, 1]
    assert four["boxes"][1].tolist() == [4, 3, 5, 4]  # a one-pixel instance has a 1x1 box


def test_semantic_to_instances_without_instances():
    mask = torch.zeros(2, 4, 6, dtype=torch.long)
    mask[1] = 255
    for t in semantic_to_instances(mask, num_classes=4):
        assert t["boxes"].shape == (0, 4) and t["labels"].shape == (0,)
        assert t["masks"].shape == (0, 4, 6)


# --------------------------------------------------------------------------- Mask R-CNN: pasting


def test_paste_instances_higher_score_paints_last():
    masks = torch.zeros(3, 4, 5)
    masks[0, :, :3] = 0.9  # class 1, score 0.7
    masks[1, 1:, 2:] = 0.8  # class 2, score 0.9: wins the overlap
    masks[2, 0, :] = 0.4  # class 1, below the mask threshold: painted nowhere
    labels = torch.tensor([1, 2, 1])
    scores = torch.tensor([0.7, 0.9, 0.95])
    expected = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 2, 2, 2], [1, 1, 2, 2, 2], [1, 1, 2, 2, 2]])
    for perm in ([0, 1, 2], [2, 1, 0], [1, 0, 2]):
        out = paste_instances(labels[perm], scores[perm], masks[perm], num_classes=4)
        assert out.shape == (4, 4, 5)
        assert torch.equal(out, nn.functional.one_hot(expected, 4).permute(2, 0, 1).float())
    empty = paste_instances(labels[:0], scores[:0], masks[:0], num_classes=3)
    assert torch.equal(empty.argmax(0), torch.zeros(4, 5, dtype=torch.long))
    assert torch.equal(empty[0], torch.ones(4, 5)) and empty[1:].abs().sum() == 0


class _FakeDetector(nn.Module):
    """Stands in for torchvision's MaskRCNN: fixed detections, records the heads' modes."""

    def __init__(self, detections: list[dict[str, torch.Tensor]]) -> None:
        super().__init__()
        self.detections = detections
        self.backbone = nn.BatchNorm2d(3)
        self.rpn = nn.Identity()
        self.roi_heads = nn.Identity()
        self.rpn.forward = lambda images, features, targets=None: ([], {})
        self.modes: list[bool] = []

        def roi_forward(features, proposals, sizes, targets=None):
            self.modes.append(self.roi_heads.training)
            return self.detections, {}

        self.roi_heads.forward = roi_forward


def test_wrapper_pastes_hand_made_detections():
    full = torch.ones(1, 28, 28)  # mask probabilities 1 over the whole box
    dets = [
        {
            "boxes": torch.tensor([[8.0, 8.0, 40.0, 40.0], [24.0, 24.0, 56.0, 56.0]]),
            "labels": torch.tensor([1, 2]),
            "scores": torch.tensor([0.6, 0.8]),
            "masks": torch.stack([full, full]),
        },
        {
            "boxes": torch.zeros(0, 4),
            "labels": torch.zeros(0, dtype=torch.long),
            "scores": torch.zeros(0),
            "masks": torch.zeros(0, 1, 28, 28),
        },
    ]
    model = MaskRCNNSemantic(_FakeDetector(dets), num_classes=3).eval()
    out = model(torch.zeros(2, 3, 64, 64))
    assert out.shape == (2, 3, 64, 64)
    assert set(out.unique().tolist()) == {0.0, 1.0} and torch.equal(
        out.sum(1), torch.ones(2, 64, 64)
    )
    pred = out.argmax(1)
    assert (pred[0, 10:22, 10:22] == 1).all()  # only the first box
    assert (pred[0, 26:38, 26:38] == 2).all()  # overlap: the higher score (class 2) wins
    assert (pred[0, 42:54, 42:54] == 2).all()
    assert (pred[0, :6] == 0).all() and (pred[0, :, 58:] == 0).all()
    assert (pred[1] == 0).all()  # no detections: all background
    # Train mode without targets (precise BN): heads in inference mode, same map.
    model.train()
    assert torch.equal(model(torch.zeros(2, 3, 64, 64)), out)
    assert model.detector.modes == [False, False]
    assert model.detector.roi_heads.training  # restored afterwards


# --------------------------------------------------------------------------- Mask R-CNN: harness

_SMALL = dict(
    box_batch_size_per_image=16,
    rpn_post_nms_top_n_train=50,
    rpn_post_nms_top_n_test=50,
    box_detections_per_img=5,
)


def test_maskrcnn_build_options_and_params():
    info = architectures.get_info("maskrcnn_r50_fpn")
    assert info.train_needs_targets and info.paper_params == 44_401_393
    model = meta_build("maskrcnn_r50_fpn", 91)
    bn = sum(
        p.numel()
        for m in model.detector.backbone.body.modules()
        if isinstance(m, nn.BatchNorm2d)
        for p in m.parameters()
    )
    # torchvision's published count has frozen (buffer) batch norm; ours trains it.
    assert bn == 53_120 and count_params(model)[0] == 44_401_393 + bn
    assert model.score_threshold == 0.5 and model.connectivity == 8
    assert model.detector.roi_heads.box_predictor.cls_score.out_features == 91
    small = meta_build("maskrcnn_r50_fpn", 4, score_threshold=0.3, connectivity=4, **_SMALL)
    assert small.score_threshold == pytest.approx(0.3) and small.connectivity == 4
    assert small.detector.roi_heads.fg_bg_sampler.batch_size_per_image == 16
    assert small.detector.roi_heads.detections_per_img == 5
    assert small.detector.rpn._post_nms_top_n == {"training": 50, "testing": 50}
    with pytest.raises(ValueError, match="connectivity"):
        meta_build("maskrcnn_r50_fpn", 4, connectivity=6)


def test_maskrcnn_trains_through_the_harness_loop():
    torch.manual_seed(0)
    model = build_model("maskrcnn_r50_fpn", num_classes=3, **_SMALL)
    assert needs_targets(model)
    gen = torch.Generator().manual_seed(0)
    images = torch.randn(4, 3, 32, 32, generator=gen)
    masks = torch.zeros(4, 32, 32, dtype=torch.uint8)
    masks[0, 4:14, 6:20] = 1
    masks[1, 10:30, 2:12] = 2
    masks[1, 0:3, 0:3] = 255
    masks[2, 20:28, 20:28] = 1  # image 3 has no instance at all
    before = model.model.detector.roi_heads.mask_predictor.mask_fcn_logits.weight.clone()
    bn = model.model.detector.backbone.body.bn1
    cfg = TrainConfig(steps=2, batch_size=2, optimizer="adamw", lr=1e-3, precise_bn_batches=1)
    result = train(model, TensorDataset(images, masks), cfg, ignore_index=255, progress=False)
    assert result.steps == 2 and math.isfinite(result.final_loss)
    assert result.precise_bn_batches == 1  # train mode without targets ran (heads in inference)
    after = model.model.detector.roi_heads.mask_predictor.mask_fcn_logits.weight
    assert not torch.equal(before, after)  # the mask head received gradients
    # One backbone pass per training step (2) and per precise-BN batch (1), in train mode.
    assert int(bn.num_batches_tracked) == 3
    with torch.no_grad():
        out = model.eval()(images[:1])
    assert out.shape == (1, 3, 32, 32)
    losses = model.train()(images[:2], targets=masks[:2])
    assert set(losses) == {
        "loss_classifier",
        "loss_box_reg",
        "loss_mask",
        "loss_objectness",
        "loss_rpn_box_reg",
    }
