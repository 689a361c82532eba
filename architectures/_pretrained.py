"""ImageNet weights for the builders' trunks: from a file the user names, or the local hub cache.

Builders accept ``pretrained_backbone=True`` to start from ImageNet weights, and call
:func:`load_local_state_dict` with the torchvision weights their trunk expects. Nothing is ever
downloaded:

* inside :func:`backbone_file` (``run --backbone-weights PATH``), the weights come from that
  file, read with ``weights_only=True`` and checked against the expected torchvision network's
  parameter names and shapes (all of them: FCN converts VGG16's classifier into convolutions);
* otherwise only the cache (``torch.hub.get_dir()/checkpoints``) is looked in; if the file is
  not there the error gives the exact path and the command that fetches it on a machine with
  network access.
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path

import torch
import torchvision
from torchvision.models import WeightsEnum

_BACKBONE_FILE: ContextVar[Path | None] = ContextVar("backbone_file", default=None)


@contextmanager
def backbone_file(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Within the block, ``pretrained_backbone=True`` reads the trunk's weights from ``path``.

    Args:
        path: A ``torch.save`` of the trunk's ImageNet ``state_dict`` (torchvision's parameter
            names, e.g. ``resnet50-0676ba61.pth``), or of a dict holding it under
            ``"state_dict"``.

    Yields:
        ``path`` as a :class:`~pathlib.Path`.
    """
    token = _BACKBONE_FILE.set(Path(path))
    try:
        yield Path(path)
    finally:
        _BACKBONE_FILE.reset(token)


def network_name(weights: WeightsEnum) -> str:
    """torchvision's model name of ``weights``: ``ResNet50_Weights.IMAGENET1K_V1`` -> ``resnet50``."""
    return type(weights).__name__.removesuffix("_Weights").lower()


def load_local_state_dict(weights: WeightsEnum) -> dict[str, torch.Tensor]:
    """Return the ImageNet state dict of ``weights``: from :func:`backbone_file`'s file, else the
    local hub cache (``weights_only=True`` both ways).

    Raises:
        FileNotFoundError: the file is missing, naming the path and how to get it.
        ValueError: the named file is unreadable or does not hold ``weights``' network.
    """
    named = _BACKBONE_FILE.get()
    if named is not None:
        return read_backbone_file(named, weights)
    filename = os.path.basename(weights.url)
    path = Path(torch.hub.get_dir()) / "checkpoints" / filename
    if not path.is_file():
        raise FileNotFoundError(
            f"Pretrained weights {weights} are not in the local torch hub cache: expected "
            f"{path}. semseg-bench never downloads during a run. On a machine with network "
            f'access run: python -c "import torchvision; torchvision.models.{weights!s}'
            f'.get_state_dict(progress=True)" and copy the file to that path, or build the '
            f"model with pretrained_backbone=False."
        )
    return torch.load(path, map_location="cpu", weights_only=True)


def read_backbone_file(path: Path, weights: WeightsEnum) -> dict[str, torch.Tensor]:
    """The state dict in ``path``, checked against the network ``weights`` belong to.

    Raises:
        FileNotFoundError: No file at ``path``.
        ValueError: The file is unreadable, holds no state dict, or its names and shapes are
            not those of the network (the message lists the first differences).
    """
    net = network_name(weights)
    expected = f"the ImageNet weights of torchvision's {net} ({weights}, e.g. {os.path.basename(weights.url)})"
    fix = f"Fix: pass {expected}, or leave --backbone-weights out for this architecture."
    if not path.is_file():
        raise FileNotFoundError(f"Backbone weights {path} not found; expected {expected}. {fix}")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError) as exc:
        first = (str(exc).strip().splitlines() or [""])[0]
        raise ValueError(
            f"Backbone weights {path} could not be read with weights_only=True (truncated, "
            f"or holding Python objects): {first}. {fix}"
        ) from None
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not all(torch.is_tensor(v) for v in obj.values()):
        raise ValueError(
            f"Backbone weights {path} hold a {type(obj).__name__}, not a state dict of tensors. "
            f"{fix}"
        )
    with torch.device("meta"):  # names and shapes only: no memory, no initialisation
        reference = torchvision.models.get_model(net, weights=None).state_dict()
    problems = [f"missing {k}" for k in reference if k not in obj]
    problems += [f"unexpected {k}" for k in obj if k not in reference]
    problems += [
        f"{k}: shape {tuple(obj[k].shape)}, expected {tuple(v.shape)}"
        for k, v in reference.items()
        if k in obj and tuple(obj[k].shape) != tuple(v.shape)
    ]
    if problems:
        shown = "; ".join(problems[:5]) + (
            f"; and {len(problems) - 5} more" if len(problems) > 5 else ""
        )
        raise ValueError(f"Backbone weights {path} are not {net}'s: {shown}. {fix}")
    return obj


def copy_vgg16_imagenet(
    state: dict[str, torch.Tensor],
    convs: list[torch.nn.Conv2d],
    fc6: torch.nn.Conv2d,
    fc7: torch.nn.Conv2d,
) -> None:
    """Copies torchvision's VGG16 ImageNet weights into a fully convolutional VGG16.

    Args:
        state: torchvision's ``vgg16`` state dict (``features.N.*``, ``classifier.0/3.*``).
        convs: The 13 convolutions, in order.
        fc6: fc6 as a 7x7 convolution 512 -> 4096 (``classifier.0`` reshaped).
        fc7: fc7 as a 1x1 convolution 4096 -> 4096 (``classifier.3`` reshaped).
    """
    keys = sorted(
        {k.rsplit(".", 1)[0] for k in state if k.startswith("features.")},
        key=lambda k: int(k.split(".")[1]),
    )
    for conv, key in zip(convs, keys, strict=True):
        conv.weight.data.copy_(state[f"{key}.weight"])
        conv.bias.data.copy_(state[f"{key}.bias"])
    fc6.weight.data.copy_(state["classifier.0.weight"].view(4096, 512, 7, 7))
    fc6.bias.data.copy_(state["classifier.0.bias"])
    fc7.weight.data.copy_(state["classifier.3.weight"].view(4096, 4096, 1, 1))
    fc7.bias.data.copy_(state["classifier.3.bias"])
