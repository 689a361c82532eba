"""Loading torchvision ImageNet weights from the local torch hub cache, never from the network.

Builders accept ``pretrained_backbone=True`` to start from ImageNet weights. This module only
looks in the cache (``torch.hub.get_dir()/checkpoints``); if the file is not there it raises with
the exact path and the command that fetches it on a machine with network access.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torchvision.models import WeightsEnum


def load_local_state_dict(weights: WeightsEnum) -> dict[str, torch.Tensor]:
    """Return the state dict of ``weights`` from the local hub cache (``weights_only=True``).

    Raises:
        FileNotFoundError: when the file is not cached, naming the path and how to fetch it.
    """
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
