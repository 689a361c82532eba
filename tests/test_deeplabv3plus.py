"""Architecture-specific checks for DeepLabV3+, FRRN A/B and the Mask R-CNN semantic wrapper.

The shared contract (shapes, gradients, counters, paper figures) lives in
``tests/test_architecture_contract.py``; here: hand-computed parameter counts of blocks, the
backbone's output stride and dilation, the FRRN layout of the paper's table and the behaviour of
its residual stream, and the Mask R-CNN wrapper's instance derivation and pasting on hand-made
masks and detections. Everything runs on tiny inputs (or on the meta device).
"""

from __future__ import annotations

import math
from collections import deque

import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

import architectures
from architectures.deeplabv3plus import ASPP, DeepLabV3Plus
from architectures.frrn import FRRN, FRRU, LANES
from architectures.maskrcnn import (
    MaskRCNNSemantic,
    connected_components,
    paste_instances,
    semantic_to_instances,
)
from bench.complexity import count_params
from bench.models import PadCrop, build_model
from bench.train import TrainConfig, needs_targets, train


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _meta_build(name: str, num_classes: int, **options: object) -> nn.Module:
    with torch.device("meta"):
        return architectures.build(name, num_classes=num_classes, **options)


# --------------------------------------------------------------------------- DeepLabV3+


def _conv_bn(in_ch: int, out_ch: int, k: int) -> int:
    return in_ch * out_ch * k * k + 2 * out_ch  # bias-free conv + BN weight and bias


def test_aspp_parameter_count_by_hand():
    aspp = ASPP(2048)
    expected = (
        _conv_bn(2048, 256, 1)  # 1x1 branch
        + 3 * _conv_bn(2048, 256, 3)  # rates 6, 12, 18
        + _conv_bn(2048, 256, 1)  # image pooling
        + _conv_bn(5 * 256, 256, 1)  # projection of the 1280 concatenated channels
    )
    assert count_params(aspp)[0] == expected == 15_535_104
    rates = [b[0].dilation[0] for b in aspp.branches[1:]]
    assert rates == [6, 12, 18]
    assert [b[0].padding[0] for b in aspp.branches[1:]] == rates  # "same" atrous convolutions


@pytest.mark.parametrize(
    ("arch", "params"), [("deeplabv3plus_r101", 59_344_309), ("deeplabv3plus_r50", 40_352_181)]
)
def test_deeplabv3plus_output_stride_16_and_decoder(arch, params):
    model = _meta_build(arch, 21)
    assert isinstance(model, DeepLabV3Plus)
    # Measured (no paper figure): ResNet without fc + ASPP + decoder + 21-class classifier.
    assert count_params(model)[0] == params
    # Output stride 16: layer4 keeps the resolution (stride 1) and dilates its 3x3 convs by 2.
    assert model.layer4[0].conv2.stride == (1, 1) and model.layer4[0].downsample[0].stride == (1, 1)
    assert all(block.conv2.dilation == (2, 2) for block in model.layer4[1:])
    assert model.layer3[0].conv2.stride == (2, 2)
    shapes = {}
    for name in ("layer1", "layer4", "aspp", "low_proj", "decoder"):
        getattr(model, name).register_forward_hook(
            lambda _m, _i, out, name=name: shapes.__setitem__(name, tuple(out.shape))
        )
    out = model.eval()(torch.empty(1, 3, 64, 96, device="meta"))
    assert shapes["layer1"] == (1, 256, 16, 24)  # low-level features, stride 4
    assert shapes["layer4"] == (1, 2048, 4, 6)  # stride 16
    assert shapes["aspp"] == (1, 256, 4, 6)
    assert shapes["low_proj"] == (1, 48, 16, 24)  # reduced to 48 channels
    assert model.decoder[0][0].in_channels == 256 + 48
    assert shapes["decoder"] == (1, 256, 16, 24)
    assert tuple(out.shape) == (1, 21, 64, 96)
    assert architectures.get_info(arch).input_divisor == 16


def test_deeplabv3plus_dropout_only_in_training():
    aspp = ASPP(8, out_ch=4)
    x = torch.randn(2, 8, 5, 5)
    aspp.eval()
    assert torch.equal(aspp(x), aspp(x))
    assert aspp.dropout.p == pytest.approx(0.1)


# --------------------------------------------------------------------------- FRRN


@pytest.mark.parametrize(
    ("variant", "encoder", "decoder"),
    [
        (
            "A",
            [(3, 96, 2), (4, 192, 4), (2, 384, 8), (2, 384, 16)],
            [(2, 192, 8), (2, 192, 4), (2, 96, 2)],
        ),
        (
            "B",
            [(3, 96, 2), (4, 192, 4), (2, 384, 8), (2, 384, 16), (2, 384, 32)],
            [(2, 192, 16), (2, 192, 8), (2, 192, 4), (2, 96, 2)],
        ),
    ],
)
def test_frrn_layout_matches_the_table(variant, encoder, decoder):
    with torch.device("meta"):
        model = FRRN(19, variant)

    def layout(stages: nn.ModuleList) -> list[tuple[int, int, int]]:
        return [(len(s), s[0].body[0][0].out_channels, s[0].scale) for s in stages]

    assert layout(model.encoder) == encoder
    assert layout(model.decoder) == decoder
    assert model.input_divisor == (16 if variant == "A" else 32)
    assert architectures.get_info(f"frrn_{variant.lower()}").input_divisor == model.input_divisor
    # Input: 5x5 conv 48 then 3 RUs of 48; output: 3 RUs, the first projecting 96 + 32 -> 48.
    assert model.stem[0][0].kernel_size == (5, 5) and model.stem[0][0].out_channels == 48
    assert model.split[0].out_channels == LANES == 32
    assert model.head[0].proj.in_channels == 96 + 32 and model.head[0].proj.out_channels == 48


def test_frru_parameter_count_by_hand():
    frru = FRRU(48, 96, scale=2)
    expected = (
        _conv_bn(48 + 32, 96, 3)  # concat(pooling stream, pooled residual stream)
        + _conv_bn(96, 96, 3)
        + 96 * 32
        + 32  # 1x1 to the 32 residual lanes, with bias
    )
    assert count_params(frru)[0] == expected == 155_552


@pytest.mark.parametrize(
    ("arch", "measured", "paper"), [("frrn_a", 17_746_803, 17.7e6), ("frrn_b", 24_755_699, 24.8e6)]
)
def test_frrn_parameter_counts(arch, measured, paper):
    total = count_params(_meta_build(arch, 19))[0]
    assert total == measured
    assert abs(total - paper) / paper < 0.005  # the paper's 17.7M / 24.8M, to its precision


def test_frru_updates_the_residual_stream_blockwise_from_pooled_input():
    torch.manual_seed(0)
    frru = FRRU(4, 8, scale=4).eval()
    y = torch.randn(1, 4, 3, 5)
    z = torch.randn(1, 32, 12, 20)
    y2, z2 = frru(y, z)
    assert y2.shape == (1, 8, 3, 5) and z2.shape == z.shape
    update = (z2 - z).view(1, 32, 3, 4, 5, 4)
    # Nearest upsampling by 4: the update is constant over every 4x4 block.
    assert torch.allclose(update, update[:, :, :, :1, :, :1].expand_as(update), atol=1e-6)
    # The unit sees z only through its 4x4 max-pool: changing a non-maximal pixel does nothing.
    z_other = z.clone()
    block = z_other[0, :, :4, :4]
    block[block < block.amax(dim=(1, 2), keepdim=True)] -= 1.0
    assert torch.allclose(frru(y, z_other)[0], y2)


def test_frrn_residual_stream_is_full_resolution():
    with torch.device("meta"):
        model = FRRN(3, "A").eval()
    seen = []
    for stage in (*model.encoder, *model.decoder):
        for frru in stage:
            frru.register_forward_hook(lambda _m, _i, out: seen.append(tuple(out[1].shape)))
    model(torch.empty(1, 3, 32, 48, device="meta"))
    assert len(seen) == 11 + 6 and set(seen) == {(1, 32, 32, 48)}


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
    model = _meta_build("maskrcnn_r50_fpn", 91)
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
    small = _meta_build("maskrcnn_r50_fpn", 4, score_threshold=0.3, connectivity=4, **_SMALL)
    assert small.score_threshold == pytest.approx(0.3) and small.connectivity == 4
    assert small.detector.roi_heads.fg_bg_sampler.batch_size_per_image == 16
    assert small.detector.roi_heads.detections_per_img == 5
    assert small.detector.rpn._post_nms_top_n == {"training": 50, "testing": 50}
    with pytest.raises(ValueError, match="connectivity"):
        _meta_build("maskrcnn_r50_fpn", 4, connectivity=6)


def test_padcrop_pads_targets_with_the_ignore_index():
    seen = {}

    class Recorder(nn.Module):
        def forward(self, x, targets=None):
            seen["x"], seen["targets"] = x.shape, targets
            return {"loss": x.sum() * 0}

    wrapper = PadCrop(Recorder(), 32, train_needs_targets=True)
    targets = torch.ones(1, 40, 33, dtype=torch.uint8)
    out = wrapper(torch.zeros(1, 3, 40, 33), targets=targets, ignore_index=7)
    assert seen["x"] == (1, 3, 64, 64) and set(out) == {"loss"}
    t = seen["targets"]
    assert t.shape == (1, 64, 64) and (t[:, :40, :33] == 1).all()
    assert (t[:, 40:] == 7).all() and (t[:, :, 33:] == 7).all()
    assert needs_targets(wrapper) and not needs_targets(PadCrop(Recorder(), 32))


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
    assert int(bn.num_batches_tracked) >= 1
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
