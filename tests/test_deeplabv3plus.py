"""Tests for ``architectures.deeplabv3plus``: DeepLabV3+ (Chen et al., arXiv 1802.02611).

The ASPP's parameter count is derived by hand from the layer shapes; the backbone's output
stride 16 and dilation, the decoder's 48-channel low-level projection and the ASPP rates against
the paper. The shared contract is ``tests/test_architecture_contract.py``; the structure checks
run on the meta device.
"""

from __future__ import annotations

import pytest
import torch

import architectures
from architectures.deeplabv3plus import ASPP, DeepLabV3Plus
from bench.complexity import count_params
from tests.factories import meta_build
from tests.hand_counts import conv_bn_params

pytestmark = pytest.mark.usefixtures("one_thread")


def test_aspp_parameter_count_by_hand():
    aspp = ASPP(2048)
    expected = (
        conv_bn_params(2048, 256, 1)  # 1x1 branch
        + 3 * conv_bn_params(2048, 256, 3)  # rates 6, 12, 18
        + conv_bn_params(2048, 256, 1)  # image pooling
        + conv_bn_params(5 * 256, 256, 1)  # projection of the 1280 concatenated channels
    )
    assert count_params(aspp)[0] == expected == 15_535_104
    rates = [b[0].dilation[0] for b in aspp.branches[1:]]
    assert rates == [6, 12, 18]
    assert [b[0].padding[0] for b in aspp.branches[1:]] == rates  # "same" atrous convolutions


@pytest.mark.parametrize(
    ("arch", "params"), [("deeplabv3plus_r101", 59_344_309), ("deeplabv3plus_r50", 40_352_181)]
)
def test_deeplabv3plus_output_stride_16_and_decoder(arch, params):
    model = meta_build(arch, 21)
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


def test_aspp_dropout_rate() -> None:
    """Dropout 0.1 after the ASPP projection (the reference's rate; the contract test checks
    that eval mode is deterministic)."""
    assert ASPP(8, out_ch=4).dropout.p == pytest.approx(0.1)
