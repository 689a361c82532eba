"""Overfitting one fixed batch: the "does this architecture learn at all" check.

A network that cannot drive its training-set mIoU on four images to (nearly) 100% has a defect
(a broken skip connection, a frozen layer, a wrong loss) or an output too coarse to draw the
shapes; a short ``quick`` run cannot tell those apart from "needs more steps". The loop is the
harness's own pieces: ``bench.models.build_model``, ``bench.train.segmentation_loss`` (with the
entry's auxiliary weights) or the entry's own losses (``train_needs_targets``), AdamW at a
constant rate, and the mIoU of one confusion matrix (``bench.metrics``) scored in eval mode
after the batch norm statistics are recomputed on the batch (fvcore's precise BN), checked every
``check_every`` steps; it stops as soon as the target is reached.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

import architectures
from bench.data import build_dataset
from bench.metrics import ConfusionMatrix
from bench.models import build_model, main_logits
from bench.train import needs_targets, segmentation_loss, summed_losses

SIZE = (64, 64)
IMAGES = 4
NUM_CLASSES = 4  # the quick suite's synthetic set: background and three shapes
MAX_STEPS = 150
TARGET = 0.90
CHECK_EVERY = 10
LR = 5e-3  # AdamW, constant: ENet reaches 0.92 at step 130 (0.68 at 2e-3), LinkNet 0.93 at 40

Loss = Callable[[nn.Module, torch.Tensor, torch.Tensor, int], torch.Tensor]


@dataclass(frozen=True)
class Overfit:
    """The outcome: the best eval-mode mIoU seen, the step it was reached and the curve."""

    arch: str
    best_miou: float
    steps: int
    curve: tuple[tuple[int, float], ...]


def fixed_batch(num_classes: int = NUM_CLASSES) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Four synthetic training images at 64x64 (seed 0), their masks and the ignore index."""
    data, info = build_dataset(
        "synthetic", split="train", size=SIZE, num_samples=IMAGES, num_classes=num_classes,
        min_scale=0.3, max_scale=0.6,
    )  # fmt: skip
    images = torch.stack([data[i][0] for i in range(IMAGES)])
    masks = torch.stack([data[i][1] for i in range(IMAGES)]).long()
    return images, masks, info.ignore_index


def harness_loss(
    model: nn.Module, images: torch.Tensor, masks: torch.Tensor, ignore: int
) -> torch.Tensor:
    """The training loss the harness uses for ``model`` (see :func:`bench.train.train`)."""
    if needs_targets(model):
        return summed_losses(model(images, targets=masks, ignore_index=ignore))
    aux = dict(getattr(model, "aux_weights", None) or {})
    return segmentation_loss(model(images), masks, ignore_index=ignore, aux_weights=aux)


@torch.no_grad()
def batch_miou(
    model: nn.Module, images: torch.Tensor, masks: torch.Tensor, k: int, ignore: int
) -> float:
    """Eval-mode mIoU on the batch, after precise BN on it."""
    from fvcore.nn.precise_bn import update_bn_stats

    model.train()
    update_bn_stats(model, iter([images] * 4), num_iters=4)
    model.eval()
    cm = ConfusionMatrix(k, ignore_index=ignore)
    cm.update(main_logits(model(images)).argmax(1).to(torch.uint8), masks)
    return cm.compute().miou


def overfit(
    arch: str,
    *,
    max_steps: int = MAX_STEPS,
    target: float = TARGET,
    loss_fn: Loss = harness_loss,
    prepare: Callable[[nn.Module], None] | None = None,
    seed: int = 0,
    lr: float | None = None,
) -> Overfit:
    """Trains ``arch`` on the fixed batch until its eval-mode mIoU reaches ``target``.

    Args:
        arch: A registered entry.
        max_steps: The most optimiser steps.
        target: Stop once the batch mIoU reaches this.
        loss_fn: The loss (planted defects replace it).
        prepare: Called on the built model before training (planted defects freeze layers or
            break connections here).
        seed: Seeds the initialisation.
        lr: The AdamW rate (default :data:`LR`).

    Returns:
        The outcome.
    """
    info = architectures.get_info(arch)
    k = max(NUM_CLASSES, info.min_num_classes)
    images, masks, ignore = fixed_batch(k)
    torch.manual_seed(seed)
    model = build_model(arch, num_classes=k)
    model.aux_weights = dict(info.aux_weights)  # type: ignore[attr-defined]
    if prepare is not None:
        prepare(model)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=lr or LR, weight_decay=0.0) if params else None
    curve: list[tuple[int, float]] = []
    best, reached = 0.0, max_steps
    for step in range(1, max_steps + 1):
        model.train()
        loss = loss_fn(model, images, masks, ignore)
        if opt is not None:
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        if step % CHECK_EVERY == 0 or step == max_steps:
            miou = batch_miou(model, images, masks, k, ignore)
            curve.append((step, miou))
            best = max(best, miou)
            if miou >= target:
                reached = step
                break
    return Overfit(arch, best, reached, tuple(curve))
