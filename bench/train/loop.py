"""A plain, deterministic training loop for the built-in suites.

Seeded; AdamW, SGD, Adam or RMSprop, with optional learning-rate multipliers per parameter
prefix (``train.lr_mult``); a poly, step or cosine learning-rate schedule after optional linear
warm-up (:func:`lr_factor`); optional gradient accumulation over ``train.accumulate``
micro-batches; cross-entropy with the dataset's ignore index plus weighted auxiliary losses
(:mod:`bench.train.losses`). A NaN or infinite loss stops training with the step at which it
happened.

At scale (each optional, none changes a default run):

* **Mixed precision** (``train.amp``: bf16 on CPU or CUDA, fp16 with loss scaling on CUDA;
  :mod:`bench.train.precision`).
* **Saved state and exact resume** (``train.checkpoint_every``): every N steps (and after the
  last) the full training state is written atomically to the ``state_file`` the caller names,
  and ``resume=True`` continues from it; on the CPU the continued run ends bit-identical to an
  uninterrupted one (:mod:`bench.train.state`).
* **TensorBoard** scalars (loss, learning rate, throughput) to a writer the caller opens
  (:mod:`bench.train.scalars`).
* **Several processes** (torchrun, ``ranks``): DDP over the process group, each rank taking its
  slice of every global batch of ``train.batch_size``, optional SyncBN; rank 0 alone saves the
  state, and every rank resumes from it (:mod:`bench.train.parallel`).
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Iterable, Mapping
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from bench import distributed
from bench.distributed import Ranks
from bench.errors import ConfigError
from bench.fileio import remove_leftover_temporaries
from bench.train import parallel
from bench.train.config import TrainConfig, TrainResult
from bench.train.losses import needs_targets, segmentation_loss, summed_losses
from bench.train.periodic import Validation, due, validate
from bench.train.precision import autocast, check_amp, grad_scaler
from bench.train.scalars import LOSS_TAG, LR_TAG, THROUGHPUT_TAG, ScalarWriter
from bench.train.semisup.methods import SemiMethod, SemiSupervision
from bench.train.state import (
    BatchStream,
    Progress,
    RunIdentity,
    load_state,
    restore_state,
    rng_states,
    save_state,
)


def make_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    """The optimiser ``cfg`` names, over the trainable parameters of ``model``.

    Parameters matched by ``cfg.lr_mult`` (see :func:`lr_multipliers`) form a parameter group
    of their own per multiplier, with ``lr = cfg.lr * multiplier``; the rest keep ``cfg.lr``
    (the first group). The schedule scales every group alike.

    Args:
        model: The model to train.
        cfg: ``optimizer``, ``lr``, ``lr_mult``, ``weight_decay`` and (SGD, RMSprop)
            ``momentum`` are used.

    Returns:
        ``torch.optim.SGD``, ``AdamW``, ``Adam`` (weight decay as an L2 term in the gradient,
        torch's ``Adam``; the fused kernel where it applies, as for AdamW) or ``RMSprop``
        (torch's defaults otherwise: ``alpha`` 0.99, ``eps`` 1e-8).

    Raises:
        ConfigError: A ``cfg.lr_mult`` prefix names no trainable parameter.
    """
    mults = lr_multipliers(model, cfg.lr_mult)
    by_mult: dict[float, list[nn.Parameter]] = {1.0: []}
    for name, p in model.named_parameters():
        if p.requires_grad:
            by_mult.setdefault(mults.get(name, 1.0), []).append(p)
    groups = [{"params": ps, "lr": cfg.lr * m} for m, ps in by_mult.items() if ps]
    params = [p for ps in by_mult.values() for p in ps]
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(
            groups, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay
        )
    if cfg.optimizer == "rmsprop":
        return torch.optim.RMSprop(
            groups, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay
        )
    # The fused kernel (CPU and CUDA) is the same update in one pass: for FCN's 134M parameters
    # it took 0.28 s per step here against 1.7 s for the default multi-tensor version.
    fused = all(p.device.type in ("cpu", "cuda") and p.is_floating_point() for p in params)
    adam = torch.optim.Adam if cfg.optimizer == "adam" else torch.optim.AdamW
    return adam(groups, lr=cfg.lr, weight_decay=cfg.weight_decay, fused=fused or None)


def lr_multipliers(model: nn.Module, lr_mult: Mapping[str, float]) -> dict[str, float]:
    """The learning-rate multiplier of each parameter of ``model`` that ``lr_mult`` matches.

    A prefix matches a parameter name equal to it or starting with it and a dot (``head``
    matches ``head.0.weight``, not ``header.weight``); the longest matching prefix wins.
    Names are those of ``model.named_parameters()``; a wrapper that holds the architecture in
    a submodule names it in ``param_root`` (``bench.models.PadCrop``: ``"model"``), and the
    names are then taken relative to it, so that ``head`` means the architecture's head.

    Args:
        model: The model to train.
        lr_mult: Multiplier per parameter-name prefix (``TrainConfig.lr_mult``).

    Returns:
        Multiplier by full parameter name (of ``model``), for the matched parameters only.

    Raises:
        ConfigError: A prefix matches no trainable parameter (the message lists the
            architecture's top-level module names).
    """
    if not lr_mult:
        return {}
    root = getattr(model, "param_root", "")
    lead = f"{root}." if root else ""
    out: dict[str, float] = {}
    used: set[str] = set()
    for name, p in model.named_parameters():
        rel = name.removeprefix(lead)
        hits = [k for k in lr_mult if rel == k or rel.startswith(k + ".")]
        if p.requires_grad and hits:
            best = max(hits, key=len)
            out[name] = float(lr_mult[best])
            used.add(best)
    unused = [k for k in lr_mult if k not in used]
    if unused:
        arch = model.get_submodule(root) if root else model
        top = [n for n, _ in arch.named_children()]
        raise ConfigError(
            f"train.lr_mult: prefix {unused[0]!r} matches no trainable parameter of the model. "
            f"Expected a parameter-name prefix such as a top-level module: "
            f"{', '.join(top) or '(none)'}. Fix the prefix, or remove it."
        )
    return out


def lr_factor(step: int, cfg: TrainConfig) -> float:
    """Multiplier of the base learning rate at ``step`` (0-based) under ``cfg``'s schedule.

    Linear warm-up (``(step + 1) / warmup_steps``) comes first; the schedule then runs over
    the ``T = steps - warmup_steps`` steps after it, with ``t = step - warmup_steps``:

    * ``poly``: ``(1 - t / T) ** poly_power`` (:func:`poly_lr_factor`);
    * ``step``: ``gamma ** (t // step_size)``;
    * ``cosine``: ``(1 + cos(pi * t / T)) / 2``, from 1 to 0.

    Args:
        step: The step, from 0.
        cfg: ``steps``, ``warmup_steps``, ``schedule``, ``poly_power``, ``step_size`` and
            ``gamma`` are used.

    Returns:
        The factor in [0, 1].
    """
    total, warmup = cfg.steps, cfg.warmup_steps
    if cfg.schedule == "poly" or (warmup and step < warmup):
        return poly_lr_factor(step, total, cfg.poly_power, warmup)
    t = step - warmup
    if cfg.schedule == "step":
        return cfg.gamma ** (t // cfg.step_size)
    span = max(total - warmup, 1)
    return 0.5 * (1.0 + math.cos(math.pi * min(t, span) / span))


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


def check_settings(
    configs: Iterable[TrainConfig], device: str | torch.device, num_samples: int | None = None
) -> None:
    """Checks, before any work, that each training setting that trains can run here.

    A sweep calls it with its suite's ``train`` and each recipe's settings: once before it
    builds the data (``train.amp`` on ``device``, :func:`~bench.train.check_amp`) and once the
    training set is known (one batch of each, :func:`require_one_batch`).

    Args:
        configs: The training settings; those with ``steps == 0`` are not checked.
        device: Where training runs.
        num_samples: Images in the training set, or None to skip the batch check.

    Raises:
        ConfigError: A setting's ``amp`` cannot run on ``device``, or the training set holds
            fewer images than its batch.
    """
    for cfg in configs:
        if cfg.steps > 0:
            check_amp(cfg.amp, device)
            if num_samples is not None:
                require_one_batch(num_samples, cfg)


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
    state_file: str | Path | None = None,
    resume: bool = False,
    run_name: str = "",
    scalars: ScalarWriter | None = None,
    ranks: Ranks | None = None,
    validation: Validation | None = None,
    semisup: SemiSupervision | None = None,
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
        state_file: Where the training state is saved every ``cfg.checkpoint_every`` steps
            (and after the last step), and read from when ``resume`` is set; None: nowhere.
        resume: Continue from ``state_file`` when it exists (else start from scratch). Without
            it an existing ``state_file`` is deleted first: the run starts from scratch.
        run_name: Names the run in the state file; a state saved under another name, seed or
            training settings is refused (``checkpoint_every`` may differ).
        scalars: Where the loss, learning rate and throughput of each step go (a TensorBoard
            ``SummaryWriter``; see :mod:`bench.train.scalars`), or None.
        ranks: This process's place in a torchrun job (its process group started): every
            rank calls ``train`` alike and trains one DDP model on its slice of each global
            batch (:mod:`bench.train.parallel`); rank 0 alone writes ``state_file``. None (or a
            plain run's ranks): one process, as without torchrun.
        validation: Scores the model on the validation split every ``cfg.eval_every`` steps
            (and after the last) and keeps the best (:mod:`bench.train.periodic`); None, or
            ``eval_every: 0``: no validation.
        semisup: A semi-supervised method and its unlabelled images
            (:mod:`bench.train.semisup`): ``dataset`` is then the labelled subset, each
            micro-batch also draws a batch of unlabelled images (their own seeded order,
            saved with the state), the method's loss replaces the loop's, and its networks
            take their steps after the segmenter's. None: supervised training.

    Returns:
        What the run did (:class:`TrainResult`).

    Raises:
        ConfigError: The training set holds fewer images than one batch, ``cfg.amp`` cannot
            run on ``device``, the model's output breaks the loss contract (see
            :func:`segmentation_loss`), or the job cannot split the batch or run SyncBN (see
            :func:`~bench.train.parallel.check_parallel`).
        CheckpointError: ``state_file`` is unreadable or belongs to another run.
        FloatingPointError: the loss became NaN or infinite (the message names the step).
    """
    cfg = cfg.for_samples(len(dataset))  # train.epochs, resolved to steps
    check_amp(cfg.amp, device)
    ranks = ranks if ranks is not None and ranks.torchrun else None
    if ranks is not None:
        parallel.check_parallel(cfg, ranks.world_size, device)
        if semisup is not None and semisup.method is not None:
            raise ConfigError(
                f"semisup method {semisup.method.name} does not run under torchrun yet (its "
                f"discriminator or generator is not synchronised across processes). Fix: run "
                f"it in one process."
            )
    torch.manual_seed(seed if ranks is None else parallel.rank_seed(seed, ranks))
    generator = torch.Generator().manual_seed(seed)
    if ranks is not None:
        loader = parallel.rank_loader(dataset, cfg, generator, ranks)
    else:
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
    swaps = parallel.to_sync_bn(model) if ranks is not None and cfg.sync_bn else []
    optimizer = make_optimizer(model, cfg)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(s, cfg))
    scaler = grad_scaler(cfg.amp, device)
    if class_weights is not None:
        class_weights = class_weights.to(device)
    stream = BatchStream(loader, generator)
    method = None if semisup is None else semisup.method
    ustream = _unlabelled_stream(semisup, seed, cfg.num_workers)
    if method is not None:
        method.setup(model, device)
    parts = {"model": model, "optimizer": optimizer, "scheduler": scheduler, "scaler": scaler}
    world = None if ranks is None else ranks.world_size
    identity = RunIdentity(run_name, cfg, seed, torch.device(device).type, world)
    prog, resumed_from = Progress(), None
    path = None if state_file is None else Path(state_file)
    main = ranks is None or ranks.is_main  # rank 0 alone writes the state file
    if path is not None and main:
        remove_leftover_temporaries(path)  # of a save cut short by a kill
    found = path is not None and resume and path.is_file()
    if ranks is not None:
        found = distributed.broadcast(ranks, found)  # rank 0 decides; every rank reads it
    if path is not None and found:
        rank = 0 if ranks is None else ranks.rank
        restore_extra = None if semisup is None else _restorer(method, ustream)
        prog = restore_state(
            load_state(path, identity), stream=stream, rank=rank, restore_extra=restore_extra,
            **parts,
        )  # fmt: skip
        resumed_from = prog.step
    elif path is not None and not resume and main:
        path.unlink(missing_ok=True)
    net = model if ranks is None else parallel.wrap_ddp(model, device)
    window = max(1, cfg.steps // 20)
    seconds_before = prog.seconds
    start = window_start = time.perf_counter()
    window_first = prog.step
    own_loss = needs_targets(model)
    bar = tqdm(
        range(prog.step, cfg.steps),
        initial=prog.step,
        total=cfg.steps,
        desc=desc,
        disable=not progress,
        leave=False,
        unit="step",
    )
    for step in bar:
        lr = cfg.lr * lr_factor(step, cfg)  # of the base group (lr_mult scales the others)
        optimizer.zero_grad(set_to_none=True)
        last = 0.0
        for micro in range(cfg.accumulate):
            images, masks = stream.next()
            images, masks = images.to(device), masks.to(device)
            # Under DDP, gradients are all-reduced once, on the last micro-batch's backward.
            sync = ranks is None or micro == cfg.accumulate - 1
            with contextlib.nullcontext() if sync else net.no_sync():
                with autocast(cfg.amp, device):
                    if method is not None:
                        loss = method.loss(
                            net, images, masks, None if ustream is None else ustream.next(),
                            step=step, ignore_index=ignore_index, aux_weights=aux_weights,
                            class_weights=class_weights,
                        )  # fmt: skip
                    elif own_loss:
                        loss = summed_losses(net(images, targets=masks, ignore_index=ignore_index))
                    else:
                        loss = segmentation_loss(
                            net(images),
                            masks,
                            ignore_index=ignore_index,
                            aux_weights=aux_weights,
                            class_weights=class_weights,
                        )
                    if cfg.accumulate > 1:
                        loss = loss / cfg.accumulate  # the step's gradient: the batches' mean
                # Under torchrun: the global batch's loss, and a NaN on one rank stops all.
                value = (loss if ranks is None else parallel.mean_over_ranks(loss, ranks)).item()
                if not math.isfinite(value):
                    raise FloatingPointError(
                        f"Training loss became {value} at step {step + 1} of {cfg.steps} "
                        f"(lr {lr:.3g}). Lower train.lr or enable train.grad_clip."
                    )
                last += value
                _backward(loss, scaler)
        _step(model, optimizer, scaler, cfg.grad_clip)
        if method is not None:
            method.after_step(net, step, lr_factor(step, cfg))
        scheduler.step()
        prog.step, prog.last_loss = step + 1, last
        prog.running += last
        if scalars is not None:
            scalars.add_scalar(LOSS_TAG, last, prog.step)
            scalars.add_scalar(LR_TAG, lr, prog.step)
        if prog.step % window == 0:
            prog.loss_curve.append(round(prog.running / window, 6))
            prog.running = 0.0
            bar.set_postfix(loss=f"{prog.loss_curve[-1]:.3f}")
            now = time.perf_counter()
            if scalars is not None and now > window_start:
                seen = (prog.step - window_first) * cfg.batch_size * cfg.accumulate
                images_per_s = seen / (now - window_start)
                scalars.add_scalar(THROUGHPUT_TAG, images_per_s, prog.step)
            window_start, window_first = now, prog.step
        # Before the save: a state saved at this step already holds its validation.
        if validation is not None and due(prog.step, cfg.eval_every, cfg.steps):
            scoring = time.perf_counter()
            miou = validate(model, validation, prog, scalars=scalars, main=main)
            if progress:
                bar.write(f"{desc}: step {prog.step}/{cfg.steps}, val mIoU {100 * miou:.2f}")
            window_start += time.perf_counter() - scoring  # validation is not throughput
        every = cfg.checkpoint_every
        if path is not None and every and (prog.step % every == 0 or prog.step == cfg.steps):
            saving = time.perf_counter()
            prog.seconds = seconds_before + saving - start
            rank_rng = None if ranks is None else distributed.gather(ranks, rng_states())
            if main:
                extra = _semisup_state(semisup, method, ustream)
                save_state(
                    path, identity, prog, stream=stream, rank_rng=rank_rng, extra=extra, **parts
                )
            window_start += time.perf_counter() - saving  # the save is not training throughput
    bn_batches = 0
    if cfg.precise_bn_batches > 0 and any(
        isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules()
    ):
        bn_batches = recompute_bn_stats(model, loader, cfg.precise_bn_batches, device)
    if ranks is not None:
        parallel.average_bn_statistics(model, ranks)  # every rank then evaluates one model
        parallel.from_sync_bn(swaps)
    seconds = seconds_before + time.perf_counter() - start
    return TrainResult(
        steps=cfg.steps,
        seconds=round(seconds, 3),
        final_loss=prog.last_loss,
        loss_curve=prog.loss_curve,
        batch_size=cfg.batch_size,
        optimizer=cfg.optimizer,
        lr=cfg.lr,
        precise_bn_batches=bn_batches,
        amp=cfg.amp,
        resumed_from_step=resumed_from,
        world_size=world,
        sync_bn=True if swaps else None,
        val_steps=[int(s) for s, _ in prog.val_curve] or None,
        val_miou=[m for _, m in prog.val_curve] or None,
        best_step=prog.best_step,
        best_val_miou=None if prog.best_step is None else round(prog.best_miou, 6),
    )


def _unlabelled_stream(
    semisup: SemiSupervision | None, seed: int, num_workers: int
) -> BatchStream | None:
    """The unlabelled images' batches, in an order of their own (seeded from ``seed``)."""
    if semisup is None or semisup.unlabelled is None or semisup.method is None:
        return None
    if len(semisup.unlabelled) < semisup.batch_size:
        raise ConfigError(
            f"The unlabelled set has {len(semisup.unlabelled)} images, fewer than one batch of "
            f"{semisup.batch_size}. Lower semisup.unlabelled_batch_size or the labelled share."
        )
    generator = torch.Generator().manual_seed(seed + 1)
    loader = DataLoader(
        semisup.unlabelled, batch_size=semisup.batch_size, shuffle=True, drop_last=True,
        generator=generator, num_workers=num_workers,
    )  # fmt: skip
    return BatchStream(loader, generator)


def _semisup_state(
    semisup: SemiSupervision | None, method: SemiMethod | None, ustream: BatchStream | None
) -> dict | None:
    """What a semi-supervised run saves besides the loop's state (see ``save_state``)."""
    if semisup is None:
        return None
    return {
        "method": {} if method is None else method.state_dict(),
        "unlabelled": None if ustream is None else ustream.position(),
    }


def _restorer(method: SemiMethod | None, ustream: BatchStream | None):  # noqa: ANN202
    """Puts back what :func:`_semisup_state` saved."""

    def restore(saved: dict) -> None:
        if method is not None:
            method.load_state_dict(saved["method"])
        if ustream is not None and saved.get("unlabelled") is not None:
            ustream.seek(saved["unlabelled"])

    return restore


def _backward(loss: torch.Tensor, scaler: torch.amp.GradScaler | None) -> None:
    """Accumulates the gradient of ``loss`` (through the fp16 loss scaler when there is one)."""
    if scaler is None:
        loss.backward()
    else:
        scaler.scale(loss).backward()


def _step(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler | None,
    grad_clip: float,
) -> None:
    """One optimiser update from the accumulated gradients (clipped when ``grad_clip > 0``)."""
    if scaler is None:
        if grad_clip > 0:
            nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        optimizer.step()
        return
    if grad_clip > 0:
        scaler.unscale_(optimizer)  # clip the true gradients, not the scaled ones
        nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    scaler.step(optimizer)
    scaler.update()


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
