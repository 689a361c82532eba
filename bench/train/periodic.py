"""Periodic validation during training (``train.eval_every``): the mIoU curve and the best model.

Every ``eval_every`` steps (and after the last) the loop scores the model on the validation
split through the caller's :class:`Validation` (the training layer does not read data: the
caller owns the split, the labels and the protocol). The scores join the saved training state
(a resumed run keeps the curve it had), go to TensorBoard under ``val/miou``, and the record's
``train`` section gets the curve and the best step; the best model so far is handed to
``save_best`` (rank 0 only).

Validation leaves training exactly as it found it: the model goes back to train mode and every
global random state (a validation DataLoader with workers draws its seed from torch's) is put
back, so a run with ``eval_every`` ends bit-identical to one without.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from bench.train.scalars import VAL_MIOU_TAG, ScalarWriter
from bench.train.state import Progress, restore_rng_states, rng_states


@dataclass(frozen=True)
class Validation:
    """How the loop scores the model on the validation split.

    Attributes:
        score: The model's mIoU (0-1) on the validation split. Under torchrun every rank calls
            it alike (it may all-reduce), with the unwrapped model.
        save_best: Called on rank 0 with ``(model, step, miou)`` each time the mIoU beats every
            earlier one (e.g. writes the best checkpoint); None: nothing is kept.
    """

    score: Callable[[nn.Module], float]
    save_best: Callable[[nn.Module, int, float], None] | None = None


def due(step: int, every: int, last: int) -> bool:
    """Whether validation runs after ``step`` (every ``every`` steps and after step ``last``)."""
    return every > 0 and (step % every == 0 or step == last)


def validate(
    model: nn.Module,
    validation: Validation,
    progress: Progress,
    *,
    scalars: ScalarWriter | None = None,
    main: bool = True,
) -> float:
    """Scores ``model`` after ``progress.step`` steps and updates the curve and the best.

    Args:
        model: The model being trained (unwrapped from DDP).
        validation: The caller's scoring and best-model saving.
        progress: The loop's counters: ``val_curve`` gets ``[step, miou]``; ``best_step`` and
            ``best_miou`` change when the score is the best so far.
        scalars: TensorBoard writer for ``val/miou``, or None.
        main: This process writes (rank 0, or a plain run).

    Returns:
        The mIoU.
    """
    was_training = model.training
    saved = rng_states()
    try:
        miou = float(validation.score(model))
    finally:
        restore_rng_states(saved)
        model.train(was_training)
    step = progress.step
    progress.val_curve.append([step, round(miou, 6)])
    if scalars is not None:
        scalars.add_scalar(VAL_MIOU_TAG, miou, step)
    if progress.best_step is None or miou > progress.best_miou:
        progress.best_step, progress.best_miou = step, miou
        if main and validation.save_best is not None:
            validation.save_best(model, step, miou)
    return miou
