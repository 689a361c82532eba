"""Tests for ``architectures.linknet``: LinkNet (Chaurasia & Culurciello, arXiv 1707.03718).

The parameter count is derived by hand from the layer shapes of the paper's Table 1 and
compared with the paper's "11.5 million"; the additive encoder-decoder links, the full
convolutions' exact upsampling and the decoder's initialisation are checked on values. The shared
contract is ``tests/test_architecture_contract.py``; structure checks run on the meta device and
nothing downloads.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from torch import nn
from torchvision.models import ResNet18_Weights, resnet18

import architectures
from architectures import linknet as linknet_module
from architectures.linknet import DECODER_CHANNELS, DecoderBlock, LinkNet
from bench.complexity import count_params
from tests.factories import meta_build
from tests.hand_counts import RESNET18_TRUNK, conv_bn_params, conv_layers, conv_params


def linknet_decoder_params(m: int, n: int) -> int:
    """Decoder block of Table 1: 1x1 m -> m/4, 3x3 full-conv m/4 -> m/4, 1x1 m/4 -> n."""
    q = m // 4
    return (
        conv_bn_params(m, q, 1, bias=True)
        + conv_bn_params(q, q, 3, bias=True)
        + conv_bn_params(q, n, 1, bias=True)
    )


def linknet_params(k: int) -> int:
    decoders = sum(linknet_decoder_params(m, n) for m, n in DECODER_CHANNELS)
    final = conv_bn_params(64, 32, 3, bias=True) + conv_bn_params(32, 32, 3, bias=True)
    final += conv_params(32, k, 2, bias=True)  # the 2x2 full-conv classifier
    return RESNET18_TRUNK + decoders + final


def test_linknet_decoder_table1_channels_and_params() -> None:
    model = meta_build("linknet", 12)
    blocks = [model.decoder1, model.decoder2, model.decoder3, model.decoder4]
    for block, (m, n), stride in zip(blocks, DECODER_CHANNELS, (1, 2, 2, 2), strict=True):
        convs = conv_layers(block)
        assert [(c.in_channels, c.out_channels) for c in convs] == [
            (m, m // 4),
            (m // 4, m // 4),
            (m // 4, n),
        ]
        assert isinstance(convs[1], nn.ConvTranspose2d) and convs[1].kernel_size == (3, 3)
        assert convs[1].stride == (stride, stride)
        assert count_params(block)[0] == linknet_decoder_params(m, n)
    assert linknet_decoder_params(512, 256) == 247_296  # the largest block, by hand


@pytest.mark.parametrize("k", [12, 21])
def test_linknet_param_count_matches_hand_count_and_paper(k: int) -> None:
    total = count_params(meta_build("linknet", k))[0]
    assert total == linknet_params(k)
    assert linknet_params(12) == 11_535_788
    assert abs(total - 11_500_000) / 11_500_000 < 0.01  # the paper's "11.5 million"


def test_linknet_links_add_encoder_block_inputs_to_decoder_outputs() -> None:
    """Decoder i's output plus encoder i's input feeds the next decoder (a sum, not a concat)."""
    torch.manual_seed(0)
    model = LinkNet(num_classes=3).eval()
    seen: dict[str, torch.Tensor] = {}

    def keep(name: str, inputs: bool = False):
        def hook(module: nn.Module, args: tuple, out: torch.Tensor) -> None:
            seen[name] = (args[0] if inputs else out).detach().clone()

        return hook

    b = model.backbone
    for name, mod in [
        ("x0", b.maxpool),
        ("e1", b.layer1),
        ("e2", b.layer2),
        ("e3", b.layer3),
        ("d4", model.decoder4),
        ("d3", model.decoder3),
        ("d2", model.decoder2),
        ("d1", model.decoder1),
    ]:
        mod.register_forward_hook(keep(name))
    for name, mod in [
        ("in3", model.decoder3),
        ("in2", model.decoder2),
        ("in1", model.decoder1),
        ("in_final", model.final),
    ]:
        mod.register_forward_hook(keep(name, inputs=True))
    with torch.no_grad():
        out = model(torch.randn(1, 3, 64, 64))
    assert out.shape == (1, 3, 64, 64)
    torch.testing.assert_close(seen["in3"], seen["d4"] + seen["e3"])
    torch.testing.assert_close(seen["in2"], seen["d3"] + seen["e2"])
    torch.testing.assert_close(seen["in1"], seen["d2"] + seen["e1"])
    torch.testing.assert_close(seen["in_final"], seen["d1"] + seen["x0"])
    assert seen["in_final"].shape == (1, 64, 16, 16)  # H/4 before the final block


@pytest.mark.parametrize(("kernel", "stride"), [(3, 2), (3, 1), (2, 2)])
def test_linknet_full_conv_scales_size_exactly(kernel: int, stride: int) -> None:
    conv = linknet_module._full_conv(4, 4, kernel, stride)
    assert conv(torch.zeros(1, 4, 5, 7)).shape == (1, 4, 5 * stride, 7 * stride)


def test_linknet_decoder_init_is_kaiming_fan_out() -> None:
    torch.manual_seed(0)
    block = LinkNet(num_classes=3).decoder4
    assert isinstance(block, DecoderBlock)
    for module in (m for m in block.modules() if isinstance(m, nn.Conv2d | nn.ConvTranspose2d)):
        k = module.kernel_size[0] * module.kernel_size[1]
        expected = (2.0 / (k * module.out_channels)) ** 0.5
        assert module.weight.std().item() == pytest.approx(expected, rel=0.05)


def test_arch_info() -> None:
    info = architectures.get_info("linknet")
    assert info.input_divisor == 32 and info.family == "encoder-decoder" and info.year == 2017
    # 21.2 GFLOPs counted as 2 per multiply-add: 10.6 GMACs, 3x640x360 (W x H).
    assert info.paper_gmacs == pytest.approx(10.6)
    assert info.paper_resolution == (360, 640) and info.paper_num_classes == 12


# --------------------------------------------------------------------------- weights


def test_linknet_pretrained_backbone_loads_from_cache(no_download: Path) -> None:
    torch.manual_seed(5)
    state = resnet18(weights=None).state_dict()
    path = no_download / "checkpoints" / os.path.basename(ResNet18_Weights.IMAGENET1K_V1.url)
    path.parent.mkdir(parents=True)
    torch.save(state, path)
    model = architectures.build("linknet", num_classes=3, pretrained_backbone=True)
    loaded = model.backbone.state_dict()
    assert set(loaded) == {k for k in state if not k.startswith("fc.")}
    for key in ("conv1.weight", "layer4.1.bn2.running_var", "layer2.0.downsample.0.weight"):
        torch.testing.assert_close(loaded[key], state[key])
