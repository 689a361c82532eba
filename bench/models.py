"""Building registered architectures for the harness: pad-and-crop, output checks."""

from __future__ import annotations

import inspect
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

import architectures
from bench.errors import ConfigError


class PadCrop(nn.Module):
    """Pads the input's H and W up to a multiple of ``divisor`` and crops the logits back.

    Zero padding (on the normalised image, i.e. the dataset mean) at the bottom and right, so
    every architecture accepts any H x W and returns logits at the input resolution. In train
    mode a dict of outputs is cropped entry by entry. ``self.model`` is the registered
    architecture; its state dict is the checkpoint format (see ``bench.checkpoint``).

    Entries with ``ArchInfo.train_needs_targets`` (``self.train_needs_targets``, set by
    :func:`build_model`) are trained as ``model(x, targets=masks, ignore_index=...)``: the
    ``(N, H, W)`` masks are padded like the images, with ``ignore_index``, passed to the entry as
    ``targets=`` and its dict of scalar losses is returned uncropped.

    Args:
        model: The registered architecture to wrap.
        divisor: H and W are padded up to a multiple of it (``ArchInfo.input_divisor``).
        train_needs_targets: Whether the entry computes its own losses from ``targets``.
    """

    def __init__(self, model: nn.Module, divisor: int, train_needs_targets: bool = False) -> None:
        super().__init__()
        self.model = model
        self.param_root = "model"  # train.lr_mult prefixes name the architecture's parameters
        self.divisor = divisor
        self.train_needs_targets = train_needs_targets

    def forward(
        self, x: torch.Tensor, targets: torch.Tensor | None = None, *, ignore_index: int = 255
    ) -> torch.Tensor | dict[str, torch.Tensor]:
        """Runs the wrapped model on ``x`` padded to the divisor, with outputs cropped back.

        Args:
            x: ``(N, C, H, W)`` normalised images, any H and W.
            targets: ``(N, H, W)`` masks, for entries that compute their own losses (padded
                with ``ignore_index``); ``None`` otherwise.
            ignore_index: The label value the padding of ``targets`` gets.

        Returns:
            ``(N, K, H, W)`` logits, or in train mode a dict of such outputs; with ``targets``
            the entry's dict of scalar losses (not cropped).
        """
        h, w = x.shape[-2:]
        d = self.divisor
        ph, pw = (-h) % d, (-w) % d
        if ph or pw:
            x = F.pad(x, (0, pw, 0, ph))
        if targets is not None:  # the entry computes its own losses: nothing to crop
            if ph or pw:
                targets = F.pad(targets.long(), (0, pw, 0, ph), value=ignore_index)
            return self.model(x, targets=targets)
        out = self.model(x)
        if not (ph or pw):
            return out
        if isinstance(out, dict):
            return {k: v[..., :h, :w] for k, v in out.items()}
        return out[..., :h, :w]


def build_model(
    arch: str, *, num_classes: int, backbone_weights: str | Path | None = None, **options: object
) -> PadCrop:
    """Build a registered architecture wrapped in :class:`PadCrop`.

    Args:
        arch: A registered architecture name.
        num_classes: Output classes.
        backbone_weights: A file of ImageNet weights for the entry's trunk: the builder runs
            with ``pretrained_backbone=True`` inside :func:`architectures.backbone_file`, so
            the trunk starts from that file (checked against torchvision's network).
        **options: Keyword options of the entry's builder.

    Returns:
        The wrapped model.

    Raises:
        ConfigError: ``backbone_weights`` is given for an entry whose builder has no
            ``pretrained_backbone`` option.
    """
    entry = architectures.get_entry(arch)
    if backbone_weights is None:
        net = entry.build(num_classes=num_classes, **options)
    else:
        if "pretrained_backbone" not in inspect.signature(entry.builder).parameters:
            raise ConfigError(
                f"--backbone-weights {backbone_weights}: {arch} has no ImageNet trunk to load "
                f"(its builder takes no pretrained_backbone). Fix: leave {arch} out of "
                f"backbone_weights (or run it without --backbone-weights)."
            )
        with architectures.backbone_file(backbone_weights):
            net = entry.build(num_classes=num_classes, **{**options, "pretrained_backbone": True})
    return PadCrop(
        net,
        entry.info.input_divisor,
        train_needs_targets=entry.info.train_needs_targets,
    )


def main_logits(out: torch.Tensor | dict[str, torch.Tensor]) -> torch.Tensor:
    """The main logits of a model output (a tensor, or a dict with key ``"out"``).

    Args:
        out: What the model returned.

    Returns:
        The main logits.

    Raises:
        ConfigError: ``out`` is a dict without the key ``"out"``.
    """
    if isinstance(out, dict):
        if "out" not in out:
            raise ConfigError(
                f"A model returning a dict must put its main logits under 'out'; got keys "
                f"{sorted(out)}."
            )
        return out["out"]
    return out
