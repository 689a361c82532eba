"""Evaluation: run a model over a split and accumulate one dataset-level confusion matrix.

Under torchrun every rank scores its share of the split's batches (the very batches of a
1-process run, :func:`bench.distributed.rank_batches`) and the confusion matrices are summed
over the ranks: integer counts, so the metrics equal a 1-process evaluation's exactly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from bench import distributed
from bench.distributed import Ranks
from bench.errors import ConfigError
from bench.inference import predict
from bench.metrics import ConfusionMatrix, SegMetrics
from bench.models import main_logits


@dataclass(frozen=True)
class EvalResult:
    """The outcome of :func:`evaluate`.

    Attributes:
        metrics: Metrics of the dataset-level confusion matrix.
        matrix: The ``(K, K)`` int64 confusion matrix (rows = ground truth; ``(K + 1, K + 1)``
            with a "no class" channel, its last row empty).
        num_images: Images evaluated.
        sample_preds: ``(S, H, W)`` uint8 predictions of the first S images, or ``None``.
        per_image: ``(N, K, K)`` int64 confusion matrices, one per image in the split's order
            (they sum to ``matrix``): what bootstrap intervals resample. ``None`` on torchrun
            ranks other than 0.
        no_class: The matrices have a last "no class" row and column (``no_class_channel``).
    """

    metrics: SegMetrics
    matrix: np.ndarray
    num_images: int
    sample_preds: np.ndarray | None
    per_image: np.ndarray | None = None
    no_class: bool = False


class LabelSpace(Protocol):
    """What scoring needs to know of a dataset's labels (a ``bench.data.DatasetInfo`` is one).

    Attributes:
        num_classes: Classes scored.
        ignore_index: Label value not scored.
        class_names: One name per class, for the per-class metrics.
    """

    @property
    def num_classes(self) -> int: ...  # noqa: D102

    @property
    def ignore_index(self) -> int: ...  # noqa: D102

    @property
    def class_names(self) -> Sequence[str]: ...  # noqa: D102


def _pred_dtype(num_classes: int) -> torch.dtype:
    # uint8 class ids make the confusion-matrix update fastest (see bench.metrics).
    return torch.uint8 if num_classes <= 256 else torch.int32


@torch.inference_mode()
def evaluate(
    model: nn.Module | None,
    dataset: Dataset,
    labels: LabelSpace,
    *,
    device: str | torch.device = "cpu",
    batch_size: int = 16,
    num_samples: int = 0,
    constant_class: int | None = None,
    progress: bool = True,
    desc: str = "eval",
    no_class_channel: bool = False,
    ranks: Ranks | None = None,
) -> EvalResult:
    """Evaluation over a dataset, scored with one confusion matrix at the labels' resolution.

    The model runs as the dataset's ``protocol`` attribute says (a
    :class:`bench.data.transforms.EvalProtocol`: resize, sliding window, multi-scale and flip;
    file-backed datasets have one), else on the whole image as loaded. Datasets whose images
    differ in size (no ``eval_resolution``) cannot be batched: pass ``batch_size=1``.

    With ``model=None`` and ``constant_class=c`` every pixel is predicted as class ``c`` (the
    "predict background everywhere" baseline row of the leaderboard).

    Args:
        model: The model, or ``None`` with ``constant_class``.
        dataset: Yields ``(image, mask)`` pairs.
        labels: The classes scored, the label not scored and the class names: the dataset's
            ``DatasetInfo``.
        device: Where the model runs and the matrix accumulates.
        batch_size: Images per forward pass.
        num_samples: Predictions of the first N images kept in the result.
        constant_class: The class predicted everywhere when ``model`` is ``None``.
        progress: Whether to show a progress bar.
        desc: The progress bar's label.
        no_class_channel: The model has one more channel than ``labels`` has classes, meaning
            "no class": a pixel predicted there is a miss of its true class. The matrix is then
            ``(K + 1, K + 1)`` and only the K classes are scored (see
            :func:`bench.metrics.compute_metrics`).
        ranks: This process's place in a torchrun job: every rank calls ``evaluate`` alike and
            scores its share of the batches; the matrix (and ``num_images``) is the sum over
            the ranks on every rank, and the kept predictions are gathered on rank 0 (None on
            the others). None (or a plain run's ranks): all batches here.

    Returns:
        The metrics, the confusion matrix and the kept predictions.

    Raises:
        ConfigError: neither a model nor a constant class is given, the model's logits do not
            match the labels, or a label is invalid (see :class:`bench.metrics.ConfusionMatrix`).
    """
    protocol = getattr(dataset, "protocol", None)
    num_classes = labels.num_classes + (1 if no_class_channel else 0)
    if model is None and constant_class is None:
        raise ConfigError("evaluate() needs a model or a constant_class.")
    if model is not None:
        model.to(device).eval()
    cm = ConfusionMatrix(num_classes, ignore_index=labels.ignore_index, device=device)
    ranks = ranks if ranks is not None and ranks.torchrun else None
    if ranks is None:
        loader = DataLoader(dataset, batch_size=batch_size, shuffle=False)
        first = 0
    else:
        share = distributed.rank_batches(len(dataset), batch_size, ranks)
        loader = DataLoader(dataset, batch_sampler=share)
        first = share[0][0] if share else len(dataset)  # index of this rank's first image
    kept: list[np.ndarray] = []
    per_image: list[np.ndarray] = []
    n = 0
    for images, masks in tqdm(loader, desc=desc, disable=not progress, leave=False, unit="batch"):
        masks = masks.to(device)
        if model is None:
            pred = torch.full_like(masks, constant_class, dtype=_pred_dtype(num_classes))
        else:
            images = images.to(device)
            if protocol is None:
                logits = main_logits(model(images))  # (N, K, H, W)
            else:  # resize / sliding window / multi-scale + flip, scored at the label's size
                logits = predict(model, images, protocol, out_size=masks.shape[-2:])
            if logits.shape[-2:] != masks.shape[-2:] or logits.shape[1] != num_classes:
                raise ConfigError(
                    f"Model output {tuple(logits.shape)} does not match labels "
                    f"{tuple(masks.shape)} with {num_classes} classes: expected "
                    f"(N, {num_classes}, H, W) at the label resolution."
                )
            pred = logits.argmax(1).to(_pred_dtype(num_classes))  # (N, H, W)
        per_image.extend(cm.update_per_image(pred, masks).cpu().numpy())
        if first + n < num_samples:  # the first images of the split, wherever they are scored
            kept.extend(pred[: num_samples - first - n].cpu().numpy().astype(np.uint8))
        n += masks.shape[0]
    k = num_classes
    matrices: np.ndarray | None = (
        np.stack(per_image) if per_image else np.zeros((0, k, k), dtype=np.int64)
    )
    if ranks is not None:
        cm.all_reduce()
        n = len(dataset)  # the shares together
        gathered = distributed.gather(ranks, kept)
        kept = [] if gathered is None else [p for part in gathered for p in part]
        parts = distributed.gather(ranks, matrices)  # rank order is the split's order
        matrices = None if parts is None else np.concatenate(parts)
    return EvalResult(
        metrics=cm.compute(labels.class_names, no_class=no_class_channel),
        matrix=cm.matrix.cpu().numpy(),
        num_images=n,
        sample_preds=np.stack(kept) if kept else None,
        per_image=matrices,
        no_class=no_class_channel,
    )
