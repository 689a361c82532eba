"""Tests for ``architectures.icnet``: ICNet with a ResNet-50 trunk (Zhao et al., arXiv 1704.08545).

The parameter count is derived by hand from the layer shapes; the branch resolutions and the
trunk's dilations against the paper; the pyramid sum and the cascade feature fusion against
direct computation; the cascade label guidance's weights and its train-only classifiers. The
shared contract is ``tests/test_architecture_contract.py``. Nothing downloads.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models import resnet50

import architectures
from architectures.icnet import CascadeFeatureFusion, ICNet, PyramidPoolingSum
from bench.complexity import count_params
from tests.factories import meta_build
from tests.hand_counts import RESNET50_TRUNK, conv_bn_params, conv_params

pytestmark = pytest.mark.usefixtures("one_thread_per_module")


def icnet_params(k: int) -> int:
    def cbr(cin: int, cout: int, kk: int) -> int:
        return conv_bn_params(cin, cout, kk)

    sub1 = cbr(3, 32, 3) + cbr(32, 32, 3) + cbr(32, 64, 3)
    reduce = cbr(2048, 256, 1)
    cff16 = cbr(256, 128, 3) + cbr(512, 128, 1) + conv_params(256, k, 1, bias=True)
    cff8 = cbr(128, 128, 3) + cbr(64, 128, 1) + conv_params(128, k, 1, bias=True)
    return RESNET50_TRUNK + sub1 + reduce + cff16 + cff8 + conv_params(128, k, 1, bias=True)


def test_icnet_param_count_by_hand() -> None:
    with torch.device("meta"):
        tv = resnet50(weights=None)
    assert count_params(tv)[0] - 2048 * 1000 - 1000 == RESNET50_TRUNK
    assert count_params(meta_build("icnet", 19))[0] == icnet_params(19) == 24_588_505


@pytest.fixture(scope="module")
def icnet() -> ICNet:
    torch.manual_seed(0)
    return ICNet(3).eval()


def test_icnet_branch_resolutions_and_dilation(icnet: ICNet) -> None:
    """1/8 light branch, conv3_1 at 1/16, dilated trunk (2, 4) at 1/32, CFF at 1/16 and 1/8.

    torchvision gives the first block of a dilated stage the previous dilation (as
    mmsegmentation's ``contract_dilation``): layer3 1, 2, 2, ...; layer4 2, 4, 4.
    """
    b = icnet.backbone

    def dilations(layer: nn.Sequential) -> list[int]:
        return [block.conv2.dilation[0] for block in layer]

    assert dilations(b.layer3) == [1, 2, 2, 2, 2, 2]
    assert dilations(b.layer4) == [2, 4, 4]
    assert [block.conv2.stride[0] for block in (*b.layer3, *b.layer4)] == [1] * 9
    shapes: dict[str, tuple[int, ...]] = {}

    def keep(name: str):  # noqa: ANN202
        def hook(module: nn.Module, args: tuple, out: object) -> None:
            shapes[name] = tuple((out[0] if isinstance(out, tuple) else out).shape)

        return hook

    handles = [
        icnet.sub1.register_forward_hook(keep("sub1")),
        b.layer2[0].register_forward_hook(keep("conv3_1")),
        b.layer4.register_forward_hook(keep("conv5")),
        icnet.cff_16.register_forward_hook(keep("cff_16")),
        icnet.cff_8.register_forward_hook(keep("cff_8")),
    ]
    try:
        with torch.no_grad():
            out = icnet(torch.randn(1, 3, 64, 128))
    finally:
        for handle in handles:
            handle.remove()
    assert out.shape == (1, 3, 64, 128)
    assert shapes == {
        "sub1": (1, 64, 8, 16),
        "conv3_1": (1, 512, 4, 8),
        "conv5": (1, 2048, 2, 4),
        "cff_16": (1, 128, 4, 8),
        "cff_8": (1, 128, 8, 16),
    }


def test_icnet_guidance_weights_and_train_only_classifiers(icnet: ICNet) -> None:
    """The cascade label guidance weighs lambda = 0.16 (1/16) and 0.4 (1/8), and its
    classifiers do not run in eval mode (the contract test checks the train-mode keys)."""
    info = architectures.get_info("icnet")
    assert dict(info.aux_weights) == {"aux_16": 0.16, "aux_8": 0.4}
    calls = []
    handle = icnet.cff_16.classifier.register_forward_hook(lambda *a: calls.append(1))
    try:
        icnet.train()
        icnet(torch.randn(2, 3, 64, 64))
        assert calls == [1]  # the hook sees the guidance classifier when it runs
        icnet.eval()
        with torch.no_grad():
            icnet(torch.randn(1, 3, 64, 64))
    finally:
        handle.remove()
        icnet.eval()
    assert calls == [1], "a guidance classifier ran in eval mode"


def test_icnet_pyramid_sum_and_cff() -> None:
    x = torch.full((1, 2, 6, 6), 3.0)
    torch.testing.assert_close(PyramidPoolingSum()(x), 5 * x)  # input + 4 constant pools
    torch.manual_seed(5)
    cff = CascadeFeatureFusion(8, 4, 6, 3).eval()
    low, high = torch.randn(1, 8, 3, 5), torch.randn(1, 4, 6, 10)
    with torch.no_grad():
        fused, up = cff(low, high)
        torch.testing.assert_close(up, F.interpolate(low, size=(6, 10), mode="bilinear"))
        expected = F.relu(cff.bn_low(cff.conv_low(up)) + cff.bn_high(cff.conv_high(high)))
    torch.testing.assert_close(fused, expected)
    assert cff.conv_low.dilation == (2, 2) and cff.conv_high.kernel_size == (1, 1)


def test_icnet_loads_resnet50_weights() -> None:
    with torch.device("meta"):
        state = resnet50(weights=None).state_dict()
        model = ICNet(3)
    model.load_resnet50_imagenet(state)  # strict: every trunk key matches
