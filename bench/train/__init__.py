"""Training: the loop, its settings, losses, mixed precision, saved state and TensorBoard curves.

The package is the training layer of the harness; it imports neither the suites and the sweep
that drive it nor the data loaders (``pyproject.toml``'s import contracts). Its modules:

* :mod:`bench.train.config`: :class:`TrainConfig` (a suite's ``train:`` section, and how each
  field enters the setting id) and :class:`TrainResult` (the record's ``train`` section);
* :mod:`bench.train.losses`: the segmentation loss and class weights;
* :mod:`bench.train.loop`: :func:`train`, the optimiser and schedule, precise BN;
* :mod:`bench.train.precision`: ``train.amp`` (autocast, fp16 loss scaling);
* :mod:`bench.train.state`: the saved training state and exact resume;
* :mod:`bench.train.scalars`: TensorBoard event files (optional dependency);
* :mod:`bench.train.parallel`: data-parallel training under torchrun (the batch split, DDP,
  SyncBN, per-rank seeds).

Every public name is importable from ``bench.train`` itself.
"""

from bench.train.config import Amp, ClassWeighting, Optimizer, Schedule, TrainConfig, TrainResult
from bench.train.loop import (
    check_settings,
    lr_factor,
    lr_multipliers,
    make_optimizer,
    poly_lr_factor,
    recompute_bn_stats,
    require_one_batch,
    train,
)
from bench.train.losses import (
    class_frequencies,
    class_weights_by_setting,
    class_weights_for,
    enet_class_weights,
    label_counts,
    median_frequency_weights,
    merged_aux_weights,
    needs_targets,
    segmentation_loss,
    summed_losses,
    weights_key,
)
from bench.train.parallel import (
    RankBatchSampler,
    average_bn_statistics,
    check_parallel,
    from_sync_bn,
    mean_over_ranks,
    rank_loader,
    rank_seed,
    to_sync_bn,
    wrap_ddp,
)
from bench.train.periodic import Validation, validate
from bench.train.precision import autocast, check_amp, grad_scaler
from bench.train.scalars import (
    MISSING_MESSAGE,
    ScalarWriter,
    tensorboard_available,
    tensorboard_writer,
)
from bench.train.state import BatchStream, Progress, RunIdentity, load_state, save_state

__all__ = [
    "MISSING_MESSAGE",
    "Amp",
    "BatchStream",
    "ClassWeighting",
    "Optimizer",
    "Progress",
    "RankBatchSampler",
    "RunIdentity",
    "Schedule",
    "ScalarWriter",
    "TrainConfig",
    "TrainResult",
    "Validation",
    "autocast",
    "average_bn_statistics",
    "check_amp",
    "check_parallel",
    "check_settings",
    "class_frequencies",
    "label_counts",
    "class_weights_by_setting",
    "class_weights_for",
    "enet_class_weights",
    "from_sync_bn",
    "grad_scaler",
    "load_state",
    "lr_factor",
    "lr_multipliers",
    "make_optimizer",
    "mean_over_ranks",
    "median_frequency_weights",
    "merged_aux_weights",
    "needs_targets",
    "poly_lr_factor",
    "rank_loader",
    "rank_seed",
    "recompute_bn_stats",
    "require_one_batch",
    "save_state",
    "segmentation_loss",
    "summed_losses",
    "tensorboard_available",
    "tensorboard_writer",
    "to_sync_bn",
    "train",
    "validate",
    "weights_key",
    "wrap_ddp",
]
