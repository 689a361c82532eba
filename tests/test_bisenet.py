"""Tests for ``architectures.bisenet``: BiSeNet with a ResNet-18 context path (Yu et al., arXiv
1808.00897).

The parameter count is derived by hand from the layer shapes; the spatial path's and the
context path's resolutions, the auxiliary loss weights (the paper's alpha = 1) and the ARM/FFM
gating are checked against direct computation. The shared contract (shapes, gradients,
counters, train-mode outputs, paper figures) is ``tests/test_architecture_contract.py``.
Nothing downloads.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torchvision.models import resnet18

import architectures
from architectures.bisenet import AttentionRefinement, BiSeNet, FeatureFusion, SpatialPath
from bench.complexity import count_params
from tests.factories import meta_build
from tests.hand_counts import RESNET18_TRUNK, conv_bn_params, conv_params

pytestmark = pytest.mark.usefixtures("one_thread_per_module")


def bisenet_params(k: int, aux: bool) -> int:
    def cbr(cin: int, cout: int, kk: int) -> int:
        return conv_bn_params(cin, cout, kk)

    spatial = cbr(3, 64, 7) + 2 * cbr(64, 64, 3) + cbr(64, 128, 1)
    tail = cbr(512, 128, 1)
    arms = sum(cbr(c, 128, 3) + conv_bn_params(128, 128, 1) for c in (512, 256))
    refines = 2 * cbr(128, 128, 3)
    ffm = cbr(256, 256, 1) + 2 * conv_params(256, 256, 1, bias=False)
    head = cbr(256, 64, 3) + conv_params(64, k, 1, bias=True)
    aux_heads = 2 * (cbr(128, 128, 3) + conv_params(128, k, 1, bias=True)) if aux else 0
    return RESNET18_TRUNK + spatial + tail + arms + refines + ffm + head + aux_heads


def test_bisenet_param_count_by_hand() -> None:
    with torch.device("meta"):
        tv = resnet18(weights=None)
    assert count_params(tv)[0] - 512 * 1000 - 1000 == RESNET18_TRUNK
    total = count_params(meta_build("bisenet_r18", 19))[0]
    assert total == bisenet_params(19, aux=True) == 13_194_489
    without_aux = count_params(meta_build("bisenet_r18", 19, aux_heads=False))[0]
    assert without_aux == bisenet_params(19, aux=False)


@pytest.fixture(scope="module")
def bisenet() -> BiSeNet:
    torch.manual_seed(0)
    return BiSeNet(3)


def test_bisenet_paths_resolution(bisenet: BiSeNet) -> None:
    """Spatial path at 1/8 (three stride-2 layers); context path at 1/8, 1/16, 1/32."""
    x = torch.randn(1, 3, 64, 96)
    sp = bisenet.spatial_path
    strides = [m[0].stride[0] for m in sp.layers]
    assert strides == [2, 2, 2, 1]
    b = bisenet.backbone
    with torch.no_grad():
        assert SpatialPath()(x).shape == (1, 128, 8, 12)
        f8 = b.layer2(b.layer1(b.maxpool(b.relu(b.bn1(b.conv1(x))))))
        f16 = b.layer3(f8)
        f32 = b.layer4(f16)
    assert (f8.shape, f16.shape, f32.shape) == (
        (1, 128, 8, 12),
        (1, 256, 4, 6),
        (1, 512, 2, 3),
    )
    assert all(m.dilation == (1, 1) for m in b.modules() if isinstance(m, nn.Conv2d))


def test_bisenet_aux_losses_weigh_alpha_1() -> None:
    """The two auxiliary losses (context path at 1/32 and 1/16) weigh alpha = 1, as in the paper
    (the contract test checks that train mode returns exactly these keys)."""
    info = architectures.get_info("bisenet_r18")
    assert dict(info.aux_weights) == {"aux_32": 1.0, "aux_16": 1.0}


def test_bisenet_arm_and_ffm_gating() -> None:
    torch.manual_seed(1)
    arm = AttentionRefinement(16, 8).eval()
    x = torch.randn(2, 16, 5, 5)
    with torch.no_grad():
        f = arm.conv(x)
        att = arm.attention(f)
        assert att.shape == (2, 8, 1, 1)
        torch.testing.assert_close(arm(x), f * att)
        ffm = FeatureFusion(16, 16).eval()
        a, b = torch.randn(2, 8, 5, 5), torch.randn(2, 8, 5, 5)
        g = ffm.conv(torch.cat([a, b], 1))
        torch.testing.assert_close(ffm(a, b), g * (1 + ffm.attention(g)))


def test_bisenet_loads_resnet18_weights() -> None:
    torch.manual_seed(2)
    state = resnet18(weights=None).state_dict()
    model = BiSeNet(3)
    model.load_resnet18_imagenet(state)
    assert torch.equal(model.backbone.layer4[1].conv2.weight, state["layer4.1.conv2.weight"])
