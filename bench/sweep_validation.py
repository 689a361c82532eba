"""The sweep's periodic validation (``train.eval_every``): the val split, its scoring, the best model.

The training loop scores the model through a :class:`bench.train.Validation` and knows nothing
of data; this module builds one for a sweep: the dataset's ``val`` split under the suite's
resolution and options, scored by :func:`bench.evaluate.evaluate` as the final evaluation is
(same protocol, same batch size), and the best model so far written with
:func:`bench.checkpoint.save_checkpoint` next to the training state
(``<results>/train_state/<key>.best.pt``, loadable by ``eval --checkpoint``).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from torch import nn
from torch.utils.data import Dataset

from bench.checkpoint import save_checkpoint
from bench.data import build_dataset
from bench.data.info import DatasetInfo
from bench.distributed import Ranks
from bench.errors import ConfigError
from bench.evaluate import evaluate
from bench.train import TrainConfig, Validation

VAL_SPLIT = "val"


def validation_set(
    configs: list[TrainConfig],
    dataset: str,
    info: DatasetInfo,
    root: str | None,
    options: Mapping[str, Any],
) -> Dataset | None:
    """The ``val`` split when a training setting validates periodically, else None.

    Args:
        configs: The suite's training settings (its ``train`` and each recipe's).
        dataset: The dataset's registered name.
        info: Its description (the splits it has).
        root: Its data root.
        options: The suite's dataset options (with ``size``).

    Raises:
        ConfigError: ``eval_every`` is set but the dataset has no ``val`` split.
    """
    if not any(c.eval_every > 0 and c.steps > 0 for c in configs):
        return None
    if VAL_SPLIT not in info.splits:
        raise ConfigError(
            f"train.eval_every validates on the {VAL_SPLIT!r} split, but dataset {dataset!r} "
            f"has only {', '.join(info.splits)}. Set eval_every: 0 (the final evaluation "
            f"still runs)."
        )
    val_set, _ = build_dataset(dataset, split=VAL_SPLIT, root=root, **options)
    return val_set


def sweep_validation(
    val_set: Dataset,
    info: DatasetInfo,
    *,
    net: nn.Module,
    arch: str,
    best_file: Path,
    device: str,
    batch_size: int,
    ranks: Ranks,
    meta: Mapping[str, Any],
) -> Validation:
    """Scores on ``val_set`` and keeps the best model in ``best_file``.

    Args:
        val_set: The validation split (:func:`validation_set`).
        info: The dataset's labels.
        net: The registered network inside the trained model (what the checkpoint holds).
        arch: Its registered name.
        best_file: Where the best model so far is written.
        device: Where evaluation runs.
        batch_size: Images per forward pass (the suite's ``eval.batch_size``).
        ranks: The torchrun job's ranks (evaluation all-reduces over them).
        meta: Written into the checkpoint with the step and the mIoU (e.g. the run id).
    """

    def score(model: nn.Module) -> float:
        result = evaluate(
            model, val_set, info, device=device, batch_size=batch_size, progress=False,
            ranks=ranks,
        )  # fmt: skip
        return result.metrics.miou

    def save_best(_model: nn.Module, step: int, miou: float) -> None:
        details = {**meta, "step": step, "val_miou": round(miou, 6)}
        save_checkpoint(best_file, net, arch=arch, num_classes=info.num_classes, meta=details)

    return Validation(score=score, save_best=save_best)
