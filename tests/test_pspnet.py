"""Tests for ``architectures.pspnet``: PSPNet (Zhao et al., arXiv 1612.01105).

Parameter counts are derived by hand from the layer shapes (with and without the auxiliary
head); the dilated trunk's output stride 8, the pyramid pooling's levels and concatenation
order, its MACs in both counters, the auxiliary head on layer3 (train mode only, weight 0.4) and
the classifier's small initialisation are checked. The shared contract is
``tests/test_architecture_contract.py``; structure checks run on the meta device and nothing
downloads.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torchvision.models import resnet50

import architectures
from architectures.pspnet import BINS, PSPNet, PyramidPooling
from bench.complexity import count_complexity, count_params
from tests.factories import meta_build
from tests.hand_counts import RESNET50_TRUNK, RESNET101_TRUNK, conv_bn_params, conv_params


def psp_params(trunk: int, k: int, aux: bool) -> int:
    ppm = len(BINS) * (2048 * 512 + 2 * 512)  # 1x1 conv, no bias, + BN, per level
    head = conv_bn_params(4096, 512, 3) + conv_params(512, k, 1, bias=True)
    aux_head = conv_bn_params(1024, 256, 3) + conv_params(256, k, 1, bias=True)
    return trunk + ppm + head + (aux_head if aux else 0)


@pytest.mark.parametrize(
    ("name", "trunk"), [("pspnet50", RESNET50_TRUNK), ("pspnet101", RESNET101_TRUNK)]
)
@pytest.mark.parametrize("aux", [True, False])
def test_pspnet_param_count_matches_hand_count(name: str, trunk: int, aux: bool) -> None:
    model = meta_build(name, 21, aux_loss=aux)
    assert count_params(model)[0] == psp_params(trunk, 21, aux)
    assert psp_params(RESNET50_TRUNK, 21, True) == 48_957_802


def test_pspnet_backbone_is_dilated_to_output_stride_8() -> None:
    model = meta_build("pspnet101", 21).eval()
    b = model.backbone
    for layer, dilation in ((b.layer3, 2), (b.layer4, 4)):
        assert all(blk.conv2.stride == (1, 1) for blk in layer)
        assert layer[0].downsample[0].stride == (1, 1)
        # torchvision keeps the first block of a dilated stage at the previous dilation.
        assert layer[0].conv2.dilation == (dilation // 2,) * 2
        assert all(blk.conv2.dilation == (dilation, dilation) for blk in layer[1:])
    assert len(b.layer3) == 23  # ResNet-101: 3, 4, 23, 3 bottlenecks
    shapes: dict[str, tuple[int, ...]] = {}
    handle = b.layer4.register_forward_hook(
        lambda m, a, o: shapes.__setitem__("c4", tuple(o.shape))
    )
    with torch.no_grad():
        out = model(torch.empty(1, 3, 64, 80, device="meta"))
    handle.remove()
    assert shapes["c4"] == (1, 2048, 8, 10)
    assert tuple(out.shape) == (1, 21, 64, 80)


def test_pyramid_pooling_levels_and_concat_order() -> None:
    torch.manual_seed(0)
    ppm = PyramidPooling(8).eval()
    assert [s[0].output_size for s in ppm.stages] == list(BINS)
    assert all(s[1].out_channels == 2 and s[1].bias is None for s in ppm.stages)
    x = torch.randn(1, 8, 12, 12)
    y = ppm(x)
    assert y.shape == (1, 16, 12, 12)
    torch.testing.assert_close(y[:, :8], x)  # the features come first, unchanged
    # Bin 1 is global average pooling: a constant map after upsampling.
    level1 = y[:, 8:10]
    assert torch.allclose(level1, level1[..., :1, :1].expand_as(level1))
    pooled = F.adaptive_avg_pool2d(x, 6)
    stage6 = ppm.stages[3]
    expected = F.interpolate(
        stage6[1:](pooled), size=(12, 12), mode="bilinear", align_corners=False
    )
    torch.testing.assert_close(y[:, 14:16], expected)


def test_pyramid_pooling_counted_by_both_counters() -> None:
    """Adaptive average pooling is known to fvcore (not 'unsupported'); MACs agree exactly."""
    ppm = PyramidPooling(16)
    report = count_complexity(ppm, (1, 16, 12, 12))
    assert report.macs == sum(16 * 4 * b * b for b in BINS)  # 1x1 convs on b x b maps
    assert report.crosscheck_macs == report.macs
    assert "adaptive_avg_pool2d" in report.non_mac_ops
    assert not any("adaptive" in op for op in report.unsupported_ops)


def test_pspnet_aux_head_only_in_train_mode() -> None:
    model = meta_build("pspnet50", 21)
    calls = []
    handle = model.aux_head.register_forward_hook(lambda m, a, o: calls.append(tuple(o.shape)))
    x = torch.empty(2, 3, 32, 48, device="meta")
    try:
        model.train()
        out = model(x)
        assert set(out) == {"out", "aux"}
        assert tuple(out["aux"].shape) == tuple(out["out"].shape) == (2, 21, 32, 48)
        assert calls == [(2, 21, 4, 6)]  # on layer3, at 1/8
        model.eval()
        with torch.no_grad():
            assert tuple(model(x).shape) == (2, 21, 32, 48)
        assert len(calls) == 1  # not run in eval
    finally:
        handle.remove()
        model.eval()
    assert architectures.get_info("pspnet50").aux_weights == (("aux", 0.4),)
    no_aux = meta_build("pspnet50", 21, aux_loss=False).train()
    assert no_aux.aux_head is None and tuple(no_aux(x).shape) == (2, 21, 32, 48)


def test_pspnet_classifier_init_keeps_initial_logits_small() -> None:
    torch.manual_seed(0)
    model = PSPNet(resnet50, num_classes=4)
    assert model.head[-1].weight.std().item() == pytest.approx(0.01, rel=0.1)
    assert model.head[0].weight.std().item() == pytest.approx((2 / (512 * 9)) ** 0.5, rel=0.02)
    model.train()  # batch statistics: a fresh model's eval-mode running stats are (0, 1)
    with torch.no_grad():
        out = model(torch.randn(2, 3, 32, 32))
    for key in ("out", "aux"):
        assert 0.001 < out[key].std().item() < 0.5


@pytest.mark.parametrize("name", ["pspnet50", "pspnet101"])
def test_arch_info(name: str) -> None:
    info = architectures.get_info(name)
    assert info.input_divisor == 8 and info.family == "pyramid" and info.year == 2017
    assert info.paper_params is None and info.paper_gflops is None


# --------------------------------------------------------------------------- weights
