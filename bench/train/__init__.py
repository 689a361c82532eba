"""Training: the loop, its settings, losses, mixed precision, saved state and TensorBoard curves.

The package is the training layer of the harness; it imports neither the suites and the sweep
that drive it nor the data loaders (``pyproject.toml``'s import contracts). Its modules:

* :mod:`bench.train.config`: :class:`TrainConfig` (a suite's ``train:`` section, and how each
  field enters the setting id) and :class:`TrainResult` (the record's ``train`` section);
* :mod:`bench.train.losses`: the segmentation loss and class weights;
* :mod:`bench.train.loop`: :func:`train`, the optimiser and schedule, precise BN;
* :mod:`bench.train.precision`: ``train.amp`` (autocast, fp16 loss scaling);
* :mod:`bench.train.state`: the saved training state and exact resume;
* :mod:`bench.train.scalars`: TensorBoard event files (optional dependency).

Every public name is importable from ``bench.train`` itself.
"""

from bench.train.config import Amp, ClassWeighting, Optimizer, TrainConfig, TrainResult
from bench.train.loop import (
    make_optimizer,
    poly_lr_factor,
    recompute_bn_stats,
    require_one_batch,
    train,
)
from bench.train.losses import (
    class_frequencies,
    enet_class_weights,
    needs_targets,
    segmentation_loss,
    summed_losses,
)
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
    "RunIdentity",
    "ScalarWriter",
    "TrainConfig",
    "TrainResult",
    "autocast",
    "check_amp",
    "class_frequencies",
    "enet_class_weights",
    "grad_scaler",
    "load_state",
    "make_optimizer",
    "needs_targets",
    "poly_lr_factor",
    "recompute_bn_stats",
    "require_one_batch",
    "save_state",
    "segmentation_loss",
    "summed_losses",
    "tensorboard_available",
    "tensorboard_writer",
    "train",
]
