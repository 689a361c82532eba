"""Tests for ``architectures.espnet``: ESPNet and ESPNet-C (Mehta et al., arXiv 1803.06815).

The parameter counts are derived by hand from the layer shapes; the ESP module's hierarchical
feature fusion is checked against a direct computation with ``F.conv2d``; ESPNet-C's logits
are checked to be the 1/8 ones upsampled to the input; the published CamVid checkpoints
(``../shared/checkpoints/camvid``, marked ``realdata``) load strictly. The shared contract
(shapes, gradients, counters, paper figures) is ``tests/test_architecture_contract.py``.
Everything runs on CPU at tiny sizes (or on the meta device).
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import architectures
from architectures.espnet import (
    DILATIONS,
    DownsamplingESP,
    ESPModule,
    ESPNet,
    ESPNetC,
    esp_widths,
)
from bench.complexity import count_params
from tests.factories import ROOT, meta_build
from tests.hand_counts import bn_params, conv_params

pytestmark = pytest.mark.usefixtures("one_thread_per_module")

CHECKPOINTS = ROOT.parent / "shared" / "checkpoints" / "camvid"
# The eight CamVid checkpoints of Liu et al. (CVPR 2019): p=2, q=8, 11 classes.
ESPNET_FILES = (
    "skd_espnet_base_57.8.pth",
    "skd_espnet_kd_59.8.pth",
    "skd_espnet_kd_sd_61.4.pth",
    "skd_espnet_sd_kd_city_65.1.pth",
)
ESPNET_C_FILES = (
    "skd_espnetc_base_56.7.pth",
    "skd_espnetc_kd_58.7.pth",
    "skd_espnetc_kd_sd_60.3.pth",
    "skd_espnetc_kd_city_62.8.pth",
)


def br_params(c: int) -> int:
    """Batch norm and PReLU (one slope per channel)."""
    return bn_params(c) + c


def esp_params(cin: int, cout: int, *, reduce_kernel: int) -> int:
    """An ESP module: the reduction, five 3x3 branches (one of ``cout - 4n`` outputs), BN,
    PReLU. All convolutions bias-free."""
    n, n1 = esp_widths(cout)
    branches = conv_params(n, n1, 3, bias=False) + 4 * conv_params(n, n, 3, bias=False)
    return conv_params(cin, n, reduce_kernel, bias=False) + branches + br_params(cout)


def trunk_params(p: int, q: int) -> int:
    level1 = conv_params(3, 16, 3, bias=False) + br_params(16)
    level2 = esp_params(19, 64, reduce_kernel=3) + p * esp_params(64, 64, reduce_kernel=1)
    level3 = esp_params(131, 128, reduce_kernel=3) + q * esp_params(128, 128, reduce_kernel=1)
    return level1 + br_params(19) + level2 + br_params(131) + level3 + br_params(256)


def espnet_c_params(k: int, p: int = 2, q: int = 8) -> int:
    return trunk_params(p, q) + conv_params(256, k, 1, bias=False)


def espnet_params(k: int, p: int = 2, q: int = 8) -> int:
    decoder = (
        conv_params(131, k, 1, bias=False)  # level3_C
        + bn_params(k)  # br
        + conv_params(19 + k, k, 3, bias=False)  # conv
        + br_params(k)
        + conv_params(k, k, 2, bias=False)  # up_l3
        + br_params(2 * k)  # combine_l2_l3
        + esp_params(2 * k, k, reduce_kernel=1)
        + conv_params(k, k, 2, bias=False)  # up_l2
        + br_params(k)
        + conv_params(k, k, 2, bias=False)  # classifier
    )
    return espnet_c_params(k, p, q) + decoder


def test_espnet_trunk_closed_form() -> None:
    """The docstring's 69,513 + 7,872 p + 32,384 q (344,329 at p=2, q=8)."""
    assert trunk_params(2, 8) == 344_329
    for p, q in ((1, 1), (2, 3), (5, 3)):
        assert trunk_params(p, q) == 69_513 + 7_872 * p + 32_384 * q


@pytest.mark.parametrize("k", [11, 19])
def test_espnet_c_param_count_by_hand(k: int) -> None:
    total = count_params(meta_build("espnet_c", k))[0]
    assert total == espnet_c_params(k) == 344_329 + 256 * k


@pytest.mark.parametrize("k", [11, 19])
def test_espnet_param_count_by_hand(k: int) -> None:
    total = count_params(meta_build("espnet", k))[0]
    assert total == espnet_params(k)
    n = k // 5
    decoder_esp = 2 * k * n + 9 * n * (k - 4 * n) + 36 * n * n
    assert total == espnet_c_params(k) + 319 * k + 21 * k * k + decoder_esp  # the docstring's


def test_espnet_paper_param_count() -> None:
    """0.364M in the paper; 20 outputs as the authors' Cityscapes training."""
    assert espnet_params(20) == 365_109 and espnet_params(19) == 363_462
    assert abs(espnet_params(20) - 364_000) / 364_000 < 0.005
    assert espnet_c_params(20) == 349_449


@pytest.mark.parametrize("p,q", [(5, 3), (1, 2)])
def test_espnet_depth_options(p: int, q: int) -> None:
    with torch.device("meta"):
        assert count_params(ESPNetC(7, p=p, q=q))[0] == espnet_c_params(7, p, q)
        model = ESPNet(7, p=p, q=q)
    assert count_params(model)[0] == espnet_params(7, p, q)
    assert (len(model.level2), len(model.level3)) == (p, q)


@pytest.mark.parametrize("bad", [0, -1, 2.0, True])
def test_espnet_depth_must_be_positive_int(bad: object) -> None:
    with pytest.raises(ValueError, match="positive int"):
        architectures.build("espnet_c", num_classes=3, q=bad)


def test_espnet_builders_default_to_p2_q8() -> None:
    with torch.device("meta"):
        for name in ("espnet", "espnet_c"):
            model = architectures.build(name, num_classes=11)
            assert (len(model.level2), len(model.level3)) == (2, 8), name


def direct_fusion(module: DownsamplingESP | ESPModule, x: torch.Tensor) -> torch.Tensor:
    """The ESP merge written out: reduce, five dilated 3x3 convolutions, running sums of the
    dilated ones, concatenated after the dilation-1 branch."""
    stride = module.c1.conv.stride[0]
    reduced = F.conv2d(x, module.c1.conv.weight, stride=stride, padding=stride // 2)
    branches = [
        F.conv2d(reduced, getattr(module, f"d{d}").conv.weight, padding=d, dilation=d)
        for d in DILATIONS
    ]
    d1, d2, d4, d8, d16 = branches
    return torch.cat([d1, d2, d2 + d4, d2 + d4 + d8, d2 + d4 + d8 + d16], dim=1)


def test_espnet_hierarchical_feature_fusion_residual() -> None:
    torch.manual_seed(0)
    block = ESPModule(22, 22).eval()
    with torch.no_grad():
        x = torch.randn(2, 22, 24, 20)
        expected = direct_fusion(block, x)
        assert expected.shape == (2, 22, 24, 20)  # n = 4 per dilated branch, 6 for dilation 1
        torch.testing.assert_close(block.fuse(x), expected)
        torch.testing.assert_close(block(x), block.bn(expected + x))


def test_espnet_hierarchical_feature_fusion_downsampling() -> None:
    torch.manual_seed(0)
    block = DownsamplingESP(19, 64).eval()
    with torch.no_grad():
        x = torch.randn(1, 19, 32, 40)
        expected = direct_fusion(block, x)
        assert expected.shape == (1, 64, 16, 20)
        torch.testing.assert_close(block(x), block.act(block.bn(expected)))


def test_espnet_decoder_esp_has_no_residual() -> None:
    torch.manual_seed(0)
    block = ESPModule(22, 11, residual=False).eval()
    with torch.no_grad():
        x = torch.randn(1, 22, 16, 16)
        torch.testing.assert_close(block(x), block.bn(direct_fusion(block, x)))
    with pytest.raises(ValueError, match="in_channels == out_channels"):
        ESPModule(22, 11)


def test_espnet_level_shapes() -> None:
    model = ESPNetC(5).eval()
    with torch.no_grad():
        l1, l2, l3 = model.encode(torch.randn(1, 3, 48, 64))
    assert l1.shape == (1, 19, 24, 32)
    assert l2.shape == (1, 131, 12, 16)
    assert l3.shape == (1, 256, 6, 8)


def test_espnet_c_output_at_input_resolution() -> None:
    """The 1/8 logits, upsampled bilinearly with ``align_corners=True`` to the input size."""
    torch.manual_seed(0)
    model = ESPNetC(4).eval()
    x = torch.randn(2, 3, 40, 56)
    with torch.no_grad():
        out = model(x)
        low = model.classifier(model.encode(x)[2])
    assert low.shape == (2, 4, 5, 7)
    assert out.shape == (2, 4, 40, 56)
    expected = F.interpolate(low, size=(40, 56), mode="bilinear", align_corners=True)
    torch.testing.assert_close(out, expected)
    torch.testing.assert_close(out[..., 0, 0], low[..., 0, 0])  # corners coincide
    torch.testing.assert_close(out[..., -1, -1], low[..., -1, -1])


def test_espnet_output_at_input_resolution() -> None:
    model = ESPNet(6).eval()
    with torch.no_grad():
        assert model(torch.randn(1, 3, 40, 56)).shape == (1, 6, 40, 56)


def test_espnet_min_num_classes() -> None:
    """The decoder's ESP module needs ``num_classes // 5 >= 1``; ESPNet-C has no such limit."""
    assert architectures.get_info("espnet").min_num_classes == 5
    assert architectures.get_info("espnet_c").min_num_classes == 2
    with pytest.raises(ValueError, match="num_classes >= 5"):
        ESPNet(4)
    with pytest.raises(ValueError, match="at least 5 classes"):
        architectures.build("espnet", num_classes=4)
    with torch.device("meta"):
        assert count_params(ESPNet(5))[0] == espnet_params(5)
        assert count_params(architectures.build("espnet_c", num_classes=2))[0] == (
            espnet_c_params(2)
        )


def test_espnet_state_dict_layout() -> None:
    """The key layout of the published checkpoints (210 and 170 keys at p=2, q=8)."""
    with torch.device("meta"):
        full, enc = ESPNet(11), ESPNetC(11)
    full_keys, enc_keys = list(full.state_dict()), list(enc.state_dict())
    assert len(full_keys) == 210 and len(enc_keys) == 170
    assert full_keys[0] == enc_keys[0] == "level1.conv.weight"
    assert full_keys[-1] == "classifier.weight" and enc_keys[-1] == "classifier.conv.weight"
    assert full.state_dict()["classifier.weight"].shape == (11, 11, 2, 2)
    assert full_keys[: len(enc_keys) - 1] == enc_keys[:-1]  # the same trunk, in the same order


@pytest.mark.parametrize("name", ["espnet", "espnet_c"])
def test_espnet_has_no_pretrained_backbone(name: str) -> None:
    with pytest.raises(ValueError, match="pretrained_backbone=False"):
        architectures.build(name, num_classes=11, pretrained_backbone=True)


@pytest.mark.realdata
@pytest.mark.skipif(not CHECKPOINTS.is_dir(), reason=f"{CHECKPOINTS} not found")
@pytest.mark.parametrize(
    "arch,file",
    [("espnet", f) for f in ESPNET_FILES] + [("espnet_c", f) for f in ESPNET_C_FILES],
)
def test_espnet_published_camvid_checkpoints_load_strictly(arch: str, file: str) -> None:
    """Liu et al.'s CamVid students (p=2, q=8, 11 classes) load with ``strict=True`` once the
    DataParallel ``module.`` prefix (five of the eight files) is stripped."""
    state = torch.load(CHECKPOINTS / file, map_location="cpu", weights_only=True)
    state = {key.removeprefix("module."): value for key, value in state.items()}
    model = architectures.build(arch, num_classes=11)
    model.load_state_dict(state, strict=True)
    model.eval()
    with torch.no_grad():
        out = model(torch.zeros(1, 3, 32, 32))
    assert out.shape == (1, 11, 32, 32) and torch.isfinite(out).all()
