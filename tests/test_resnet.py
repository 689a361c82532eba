"""Tests for architectures/_resnet.py: the torchvision ResNet trunk the PSPNet and RefineNet
entries share (built without avgpool/fc, loaded strictly from an ImageNet state dict)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from torch import nn
from torchvision.models import resnet50, resnet101

from tests.factories import meta_build


@pytest.mark.parametrize(
    ("name", "resnet"),
    [
        ("pspnet50", resnet50),
        ("pspnet101", resnet101),
        ("refinenet50", resnet50),
        ("refinenet101", resnet101),
    ],
)
def test_resnet_state_dict_keys_fit_the_trunk(name: str, resnet: Callable[..., nn.Module]) -> None:
    """A torchvision ResNet state dict (fc included) loads strictly into the trunk."""
    with torch.device("meta"):
        state = resnet(weights=None).state_dict()
    model = meta_build(name, 21)
    model.load_resnet_imagenet(state)  # strict: raises on any missing or unexpected key
    assert set(model.backbone.state_dict()) == {k for k in state if not k.startswith("fc.")}
