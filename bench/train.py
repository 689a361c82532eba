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
import typing
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from bench.errors import ConfigError
from bench.validation import require_choice, require_float, require_int

Optimizer = Literal["adamw", "sgd"]
ClassWeighting = Literal["none", "enet"]  # "enet": 1 / ln(1.02 + p_class), Paszke et al.


@dataclass(frozen=True)
class TrainConfig:
    """Training budget and recipe: a fixed number of optimiser steps (0 = the fresh model).

    A suite's ``train:`` section builds it (``bench.suites``); the field names, their order and
    defaults are part of every suite's setting id (a hash of the values), so they do not change.
    Every value is checked on construction (:class:`~bench.errors.ConfigError` naming the field,
    the allowed range, the value found and the fix), so a bad suite fails when it loads.

    ``warmup_steps`` may exceed ``steps``: the rate then ramps linearly for the whole run and
    ends at ``lr * steps / warmup_steps`` (see :func:`poly_lr_factor`). That is well defined, and
    it keeps ``steps: 0`` (evaluate the fresh model) or a shortened copy of a suite that sets a
    warm-up valid.

    Attributes:
        steps: Optimiser steps, >= 0.
        batch_size: Images per step, >= 1.
        optimizer: ``"adamw"`` or ``"sgd"``.
        lr: Base learning rate, finite and > 0.
        weight_decay: Finite, >= 0.
        momentum: SGD momentum in [0, 1) (unused by AdamW).
        poly_power: ``lr = base * (1 - step / steps) ** power`` after warm-up; finite, >= 0.
        warmup_steps: Steps of linear warm-up, >= 0.
        grad_clip: Maximum gradient norm; 0 = off; finite, >= 0.
        class_weighting: ``"none"`` or ``"enet"`` (ENet's ``1 / ln(1.02 + p_class)``).
        class_weight_samples: Training images used to estimate class frequencies, >= 1.
        precise_bn_batches: After training, recompute BatchNorm statistics over N batches.
        num_workers: DataLoader worker processes, >= 0.
    """

    steps: int = 200
    batch_size: int = 8
    optimizer: Optimizer = "adamw"
    lr: float = 1e-3
    weight_decay: float = 1e-4
    momentum: float = 0.9
    poly_power: float = 0.9
    warmup_steps: int = 0
    grad_clip: float = 0.0
    class_weighting: ClassWeighting = "none"
    class_weight_samples: int = 200
    precise_bn_batches: int = 0
    num_workers: int = 0

    def __post_init__(self) -> None:
        """Checks every value (see the class docstring for the ranges).

        Raises:
            ConfigError: A value is out of range or of the wrong type.
        """
        require_int("steps", self.steps, minimum=0, fix="Set the number of optimiser steps.")
        require_int("batch_size", self.batch_size, minimum=1, fix="Set at least 1 image per step.")
        require_choice("optimizer", self.optimizer, typing.get_args(Optimizer))
        require_float(
            "lr", self.lr, minimum=0.0, strict=True, fix="Set a learning rate, e.g. 0.001."
        )
        require_float("weight_decay", self.weight_decay, minimum=0.0, fix="Use 0 for none.")
        require_float("momentum", self.momentum, minimum=0.0, below=1.0, fix="The usual is 0.9.")
        require_float("poly_power", self.poly_power, minimum=0.0, fix="Use 0 for a constant lr.")
        require_int("warmup_steps", self.warmup_steps, minimum=0, fix="Use 0 for no warm-up.")
        require_float("grad_clip", self.grad_clip, minimum=0.0, fix="Use 0 for no clipping.")
        require_choice("class_weighting", self.class_weighting, typing.get_args(ClassWeighting))
        require_int(
            "class_weight_samples",
            self.class_weight_samples,
            minimum=1,
            fix="Set how many training images estimate the class frequencies.",
        )
        require_int("precise_bn_batches", self.precise_bn_batches, minimum=0, fix="0 = off.")
        require_int("num_workers", self.num_workers, minimum=0, fix="0 = load in-process.")


@dataclass(frozen=True)
class TrainResult:
    """What a training run did: the ``train`` section of a run record.

    Attributes:
        steps: Optimiser steps taken.
        seconds: Wall time of the loop (and precise BN), rounded to ms.
        final_loss: Loss of the last step.
        loss_curve: Mean loss over each logged window (``steps // 20`` steps, at least 1).
        batch_size: Images per step.
        optimizer: The optimiser used.
        lr: Base learning rate.
        precise_bn_batches: Batches BatchNorm statistics were recomputed over (0 = not done).
    """

    steps: int
    seconds: float
    final_loss: float
    loss_curve: list[float]
    batch_size: int
    optimizer: Optimizer
    lr: float
    precise_bn_batches: int = 0

    def to_dict(self) -> dict[str, object]:
        """The JSON-ready dict stored in a run record.

        Returns:
            The fields by name.
        """
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
    """The optimiser ``cfg`` names, over the trainable parameters of ``model``.

    Args:
        model: The model to train.
        cfg: ``optimizer``, ``lr``, ``weight_decay`` and (SGD) ``momentum`` are used.

    Returns:
        ``torch.optim.SGD`` or ``torch.optim.AdamW`` (the fused kernel where it applies).
    """
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
    """Multiplier of the base learning rate at ``step`` (0-based) of ``total`` steps.

    Args:
        step: The step, from 0.
        total: Steps in the run.
        power: Exponent of the poly decay.
        warmup: Steps of linear warm-up (``(step + 1) / warmup``) before the decay.

    Returns:
        The factor in [0, 1].
    """
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
    """Cross-entropy on the main logits plus weighted cross-entropy on auxiliary logits.

    Args:
        out: Logits ``(N, K, H, W)``, or a dict with the main logits under ``"out"`` and
            auxiliary logits under other keys.
        target: Labels ``(N, H, W)``.
        ignore_index: Label value that contributes no loss.
        aux_weights: Weight of each auxiliary output's loss.
        class_weights: Per-class weights ``(K,)`` of the cross-entropy, or ``None``.

    Returns:
        The scalar loss.

    Raises:
        ConfigError: The model returned an auxiliary output without a declared weight.
    """
    target = target.long()
    if not isinstance(out, Mapping):
        return F.cross_entropy(out, target, weight=class_weights, ignore_index=ignore_index)
    aux_weights = dict(aux_weights or {})
    unknown = sorted(set(out) - {"out"} - set(aux_weights))
    if unknown:
        raise ConfigError(
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
        ConfigError: ``losses`` is not a non-empty dict of scalar tensors (the model breaks
            the ``train_needs_targets`` contract).
    """
    if not isinstance(losses, Mapping) or not losses:
        raise ConfigError(
            f"A model with ArchInfo.train_needs_targets must return a non-empty dict of scalar "
            f"losses in train mode when given targets; got {type(losses).__name__}."
        )
    bad = sorted(k for k, v in losses.items() if not isinstance(v, torch.Tensor) or v.dim() != 0)
    if bad:
        raise ConfigError(f"Training losses must be scalar tensors; not scalar: {bad}.")
    return torch.stack(list(losses.values())).sum()


def class_frequencies(
    dataset: Dataset, num_classes: int, ignore_index: int, max_samples: int = 200
) -> torch.Tensor:
    """Fraction of (non-ignored) pixels per class over the first ``max_samples`` samples.

    Args:
        dataset: Yields ``(image, mask)`` pairs.
        num_classes: Classes counted (label values ``0 .. num_classes - 1``).
        ignore_index: Label value not counted.
        max_samples: Samples read at most.

    Returns:
        ``(num_classes,)`` float64 fractions summing to 1.

    Raises:
        ConfigError: Every sampled pixel is ignored.
    """
    counts = torch.zeros(num_classes, dtype=torch.float64)
    for i in range(min(max_samples, len(dataset))):
        mask = dataset[i][1].long().flatten()
        mask = mask[mask != ignore_index]
        counts += torch.bincount(mask, minlength=num_classes)[:num_classes].double()
    total = counts.sum()
    if total == 0:
        raise ConfigError(
            "Cannot estimate class frequencies: every sampled pixel is ignored. Check the "
            "training labels, or set train.class_weighting: none."
        )
    return counts / total


def enet_class_weights(freq: torch.Tensor, c: float = 1.02) -> torch.Tensor:
    """ENet's weighting ``w = 1 / ln(c + p_class)`` (Paszke et al., arXiv 1606.02147, Sec. 5.2).

    Bounded to [1, 1/ln(c)] (about 50.5 for c = 1.02), unlike inverse frequency.

    Args:
        freq: Class frequencies (:func:`class_frequencies`).
        c: The constant of the formula.

    Returns:
        float32 weights, one per class.
    """
    return (1.0 / torch.log(c + freq)).float()


def require_one_batch(num_samples: int, cfg: TrainConfig) -> None:
    """Checks that a training set of ``num_samples`` images fills one batch of ``cfg``.

    Training drops the last incomplete batch (every step sees ``batch_size`` images), so a
    smaller set gives no batch at all. :func:`train` checks it; a caller that knows the
    training set before any work (the sweep, once it has built the datasets, when
    ``cfg.steps > 0``) can call it up front.

    Args:
        num_samples: Images in the training set.
        cfg: The training settings (``batch_size`` matters).

    Raises:
        ConfigError: ``num_samples < cfg.batch_size``.
    """
    if num_samples < cfg.batch_size:
        raise ConfigError(
            f"Training set has {num_samples} samples, fewer than one batch of "
            f"{cfg.batch_size}; lower train.batch_size."
        )


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

    Args:
        model: The model (moved to ``device`` and left in train mode).
        dataset: Training pairs ``(image, mask)``.
        cfg: The training settings.
        ignore_index: Label value that contributes no loss.
        aux_weights: Loss weight of each auxiliary output (``ArchInfo.aux_weights``).
        class_weights: Per-class loss weights, or ``None``.
        device: Where to train.
        seed: Seeds the model's RNG use and the data order.
        progress: Whether to show a progress bar.
        desc: The progress bar's label.

    Returns:
        What the run did (:class:`TrainResult`).

    Raises:
        ConfigError: The training set holds fewer images than one batch, or the model's
            output breaks the loss contract (see :func:`segmentation_loss`).
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
    require_one_batch(len(dataset), cfg)
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
    """Replaces BatchNorm running statistics by their true average over training batches.

    "Precise BN" (fvcore's ``update_bn_stats``; Wu & Johnson, "Rethinking 'Batch' in
    BatchNorm", arXiv 2105.07576): the trained weights stay fixed while the statistics are
    averaged. Short schedules need it: a running average with torchvision MobileNetV3's
    momentum of 0.01 still carries most of its initial (0, 1) statistics after a few hundred
    steps, and the model then collapses to one class in eval mode although its training loss
    fell.

    Args:
        model: The trained model; its train/eval mode is restored afterwards.
        loader: Yields ``(images, masks)`` batches (only the images are used).
        batches: How many batches to average over (at most ``len(loader)``).
        device: Where the images are moved (the model's device).

    Returns:
        The number of batches averaged over.
    """
    from fvcore.nn.precise_bn import update_bn_stats

    batches = min(batches, len(loader))
    was_training = model.training
    model.train()
    update_bn_stats(model, (images.to(device) for images, _ in loader), num_iters=batches)
    model.train(was_training)
    return batches
