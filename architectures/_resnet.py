"""The torchvision ResNet trunk shared by BiSeNet, ICNet, LinkNet, PSPNet, RefineNet and DeepLabV3+.

Each of those entries uses the convolutional part of a torchvision ResNet (its own layer names, so
torchvision's ImageNet weights load unchanged), starts from torchvision's initialisation for it,
and initialises its own new layers itself. The pieces every entry repeated live here once:
building the trunk, running its stem, loading ImageNet weights into it, and initialising the
layers outside it.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from typing import Literal, TypeVar

import torch
from torch import nn
from torchvision.models import ResNet, WeightsEnum

from architectures._pretrained import load_local_state_dict

M = TypeVar("M", bound=nn.Module)


def resnet_trunk(builder: Callable[..., ResNet], dilation: Sequence[bool] | None = None) -> ResNet:
    """A torchvision ResNet from ``builder`` (``weights=None``) without ``avgpool`` and ``fc``.

    ``dilation`` is torchvision's ``replace_stride_with_dilation`` for layers 2-4 (e.g.
    ``(False, True, True)`` for output stride 8); None keeps the plain stride-32 network.
    """
    kwargs = {} if dilation is None else {"replace_stride_with_dilation": list(dilation)}
    trunk = builder(weights=None, **kwargs)
    del trunk.avgpool, trunk.fc  # only the convolutional trunk is used
    return trunk


def stem(trunk: ResNet, x: torch.Tensor) -> torch.Tensor:
    """conv1, BN, ReLU and max-pool: ``(N, 3, H, W) -> (N, 64, H/4, W/4)``."""
    return trunk.maxpool(trunk.relu(trunk.bn1(trunk.conv1(x))))


def load_imagenet_trunk(trunk: nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Copy a torchvision ImageNet ResNet state dict into ``trunk``, its classifier (``fc.*``)
    dropped. Strict: any other missing or unexpected key raises, naming it."""
    trunk.load_state_dict({k: v for k, v in state.items() if not k.startswith("fc.")}, strict=True)


def init_new_layers_(
    model: nn.Module,
    trunk: nn.Module,
    mode: Literal["fan_in", "fan_out"],
    skip: Collection[nn.Module] = (),
) -> None:
    """Kaiming-normal (ReLU gain, ``mode``) for every convolution of ``model`` outside ``trunk``
    (zero bias), unit weight and zero bias for its batch norms; ``trunk`` keeps torchvision's
    initialisation and the modules in ``skip`` (e.g. classifiers with their own scheme) are left
    for the caller."""
    keep = set(trunk.modules()) | set(skip)
    for m in model.modules():
        if m in keep:
            continue
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode=mode, nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def build_with_trunk_weights(build: Callable[[], M], weights: WeightsEnum, pretrained: bool) -> M:
    """``build()`` a model whose ResNet trunk is ``model.backbone``; with ``pretrained``, copy
    ``weights`` (torchvision ImageNet, local cache only) into the trunk. The weights are read
    before the model is built, so a missing file fails before a 100M-parameter build."""
    state = load_local_state_dict(weights) if pretrained else None
    model = build()
    if state is not None:
        load_imagenet_trunk(model.backbone, state)
    return model
