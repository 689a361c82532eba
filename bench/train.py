"""A plain, deterministic training loop for the built-in suites.

Seeded; AdamW or SGD; poly learning-rate schedule with optional linear warm-up; cross-entropy
with the dataset's ignore index, plus weighted auxiliary losses for architectures that return
``{"out": ..., <aux>: ...}`` in train mode (weights from ``ArchInfo.aux_weights``). A NaN or
infinite loss stops training with the step at which it happened. Full-scale training (AMP, DDP,
checkpoint/resume, the papers' schedules) grows from this loop.

Entries with ``ArchInfo.train_needs_targets`` (a detector wrapped for segmentation computes its
own losses from the masks) are called as ``model(images, targets=masks, ignore_index=...)`` and
the sum of the returned losses is minimised (:func:`summed_losses`); class weights do not apply
to them. ``bench.models.build_model`` marks such models with ``train_needs_targets = True``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from bench.suites import TrainConfig


@dataclass(frozen=True)
class TrainResult:
    steps: int
    seconds: float
    final_loss: float
    loss_curve: list[float]  # mean loss over each logged window
    batch_size: int
    optimizer: str
    lr: float
    precise_bn_batches: int = 0

    def to_dict(self) -> dict[str, object]:
        return {
            "steps": self.steps,
            "seconds": self.seconds,
            "final_loss": self.final_loss,
            "loss_curve": self.loss_curve,
            "batch_size": self.batch_size,
            "optimizer": self.optimizer,
            "lr": self.lr,
            "precise_bn_batches": self.precise_bn_batches,
        }


def make_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(
            params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay
        )
    # The fused kernel (CPU and CUDA) is the same update in one pass: for FCN's 134M parameters
    # it took 0.28 s per step here against 1.7 s for the default multi-tensor version.
    fused = all(p.device.type in ("cpu", "cuda") and p.is_floating_point() for p in params)
    return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay, fused=fused or None)


def poly_lr_factor(step: int, total: int, power: float, warmup: int = 0) -> float:
    """Multiplier of the base learning rate at ``step`` (0-based) of ``total`` steps."""
    if warmup and step < warmup:
        return (step + 1) / warmup
    # The poly decay runs over the steps after warm-up, so the rate is continuous at its end.
    return max(0.0, 1.0 - (step - warmup) / max(total - warmup, 1)) ** power


def segmentation_loss(
    out: torch.Tensor | Mapping[str, torch.Tensor],
    target: torch.Tensor,
    *,
    ignore_index: int,
    aux_weights: Mapping[str, float] | None = None,
    class_weights: torch.Tensor | None = None,
) -> torch.Tensor:
    """Cross-entropy on the main logits plus weighted cross-entropy on auxiliary logits."""
    target = target.long()
    if not isinstance(out, Mapping):
        return F.cross_entropy(out, target, weight=class_weights, ignore_index=ignore_index)
    aux_weights = dict(aux_weights or {})
    unknown = sorted(set(out) - {"out"} - set(aux_weights))
    if unknown:
        raise ValueError(
            f"Model returned auxiliary outputs {unknown} without a loss weight; declare them in "
            f"ArchInfo.aux_weights, e.g. aux_weights=(('{unknown[0]}', 0.4),)."
        )
    loss = F.cross_entropy(out["out"], target, weight=class_weights, ignore_index=ignore_index)
    for key, weight in aux_weights.items():
        if key in out:
            loss = loss + weight * F.cross_entropy(
                out[key], target, weight=class_weights, ignore_index=ignore_index
            )
    return loss


def needs_targets(model: nn.Module) -> bool:
    """Whether ``model`` computes its own training loss from the targets (see module docstring)."""
    return bool(getattr(model, "train_needs_targets", False))


def summed_losses(losses: Mapping[str, torch.Tensor]) -> torch.Tensor:
    """The unweighted sum of a dict of scalar losses (torchvision detectors' training output).

    Raises:
        ValueError: if ``losses`` is not a non-empty dict of scalar tensors.
    """
    if not isinstance(losses, Mapping) or not losses:
        raise ValueError(
            f"A model with ArchInfo.train_needs_targets must return a non-empty dict of scalar "
            f"losses in train mode when given targets; got {type(losses).__name__}."
        )
    bad = sorted(k for k, v in losses.items() if not isinstance(v, torch.Tensor) or v.dim() != 0)
    if bad:
        raise ValueError(f"Training losses must be scalar tensors; not scalar: {bad}.")
    return torch.stack(list(losses.values())).sum()


def class_frequencies(
    dataset: Dataset, num_classes: int, ignore_index: int, max_samples: int = 200
) -> torch.Tensor:
    """Fraction of (non-ignored) pixels per class over the first ``max_samples`` samples."""
    counts = torch.zeros(num_classes, dtype=torch.float64)
    for i in range(min(max_samples, len(dataset))):
        mask = dataset[i][1].long().flatten()
        mask = mask[mask != ignore_index]
        counts += torch.bincount(mask, minlength=num_classes)[:num_classes].double()
    total = counts.sum()
    if total == 0:
        raise ValueError("Cannot estimate class frequencies: every sampled pixel is ignored.")
    return counts / total


def enet_class_weights(freq: torch.Tensor, c: float = 1.02) -> torch.Tensor:
    """ENet's weighting ``w = 1 / ln(c + p_class)`` (Paszke et al., arXiv 1606.02147, Sec. 5.2):
    bounded to [1, 1/ln(c)] (about 50.5 for c = 1.02), unlike inverse frequency."""
    return (1.0 / torch.log(c + freq)).float()


def _cycle(loader: DataLoader) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    while True:
        yield from loader


def train(
    model: nn.Module,
    dataset: Dataset,
    cfg: TrainConfig,
    *,
    ignore_index: int,
    aux_weights: Mapping[str, float] | None = None,
    class_weights: torch.Tensor | None = None,
    device: str | torch.device = "cpu",
    seed: int = 0,
    progress: bool = True,
    desc: str = "train",
) -> TrainResult:
    """Train ``model`` for ``cfg.steps`` optimiser steps; deterministic for a given seed.

    Raises:
        FloatingPointError: the loss became NaN or infinite (the message names the step).
    """
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    loader = DataLoader(
        dataset,
        batch_size=cfg.batch_size,
        shuffle=True,
        drop_last=True,
        generator=generator,
        num_workers=cfg.num_workers,
    )
    if len(loader) == 0:
        raise ValueError(
            f"Training set has {len(dataset)} samples, fewer than one batch of "
            f"{cfg.batch_size}; lower train.batch_size."
        )
    model.to(device).train()
    optimizer = make_optimizer(model, cfg)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: poly_lr_factor(s, cfg.steps, cfg.poly_power, cfg.warmup_steps)
    )
    if class_weights is not None:
        class_weights = class_weights.to(device)
    window = max(1, cfg.steps // 20)
    curve: list[float] = []
    running = 0.0
    last = float("nan")
    start = time.perf_counter()
    batches = _cycle(loader)
    own_loss = needs_targets(model)
    bar = tqdm(range(cfg.steps), desc=desc, disable=not progress, leave=False, unit="step")
    for step in bar:
        images, masks = next(batches)
        images, masks = images.to(device), masks.to(device)
        if own_loss:
            loss = summed_losses(model(images, targets=masks, ignore_index=ignore_index))
        else:
            loss = segmentation_loss(
                model(images),
                masks,
                ignore_index=ignore_index,
                aux_weights=aux_weights,
                class_weights=class_weights,
            )
        last = loss.item()
        if not math.isfinite(last):
            raise FloatingPointError(
                f"Training loss became {last} at step {step + 1} of {cfg.steps} "
                f"(lr {scheduler.get_last_lr()[0]:.3g}). Lower train.lr or enable train.grad_clip."
            )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.grad_clip > 0:
            nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        optimizer.step()
        scheduler.step()
        running += last
        if (step + 1) % window == 0:
            curve.append(round(running / window, 6))
            running = 0.0
            bar.set_postfix(loss=f"{curve[-1]:.3f}")
    bn_batches = 0
    if cfg.precise_bn_batches > 0 and any(
        isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules()
    ):
        bn_batches = recompute_bn_stats(model, loader, cfg.precise_bn_batches, device)
    seconds = time.perf_counter() - start
    return TrainResult(
        steps=cfg.steps,
        seconds=round(seconds, 3),
        final_loss=last,
        loss_curve=curve,
        batch_size=cfg.batch_size,
        optimizer=cfg.optimizer,
        lr=cfg.lr,
        precise_bn_batches=bn_batches,
    )


@torch.no_grad()
def recompute_bn_stats(
    model: nn.Module, loader: DataLoader, batches: int, device: str | torch.device
) -> int:
    """Replace BatchNorm running statistics by their true average over ``batches`` batches
    with the trained weights fixed ("precise BN", fvcore's ``update_bn_stats``; Wu & Johnson,
    "Rethinking 'Batch' in BatchNorm", arXiv 2105.07576).

    Short schedules need it: a running average with torchvision MobileNetV3's momentum of 0.01
    still carries most of its initial (0, 1) statistics after a few hundred steps, and the
    model then collapses to one class in eval mode although its training loss fell.
    """
    from fvcore.nn.precise_bn import update_bn_stats

    batches = min(batches, len(loader))
    was_training = model.training
    model.train()
    update_bn_stats(model, (images.to(device) for images, _ in loader), num_iters=batches)
    model.train(was_training)
    return batches
