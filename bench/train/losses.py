"""The training losses, and the class weights some recipes give them.

Cross-entropy with the dataset's ignore index, plus weighted auxiliary losses for architectures
that return ``{"out": ..., <aux>: ...}`` in train mode (weights from ``ArchInfo.aux_weights``).
Entries with ``ArchInfo.train_needs_targets`` (a detector wrapped for segmentation computes its
own losses from the masks) are called as ``model(images, targets=masks, ignore_index=...)`` and
the sum of the returned losses is minimised (:func:`summed_losses`); class weights do not apply
to them. ``bench.models.build_model`` marks such models with ``train_needs_targets = True``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset

from bench.errors import ConfigError
from bench.stored_labels import map_labels
from bench.train.config import TrainConfig


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


def label_counts(
    dataset: Dataset, num_classes: int, ignore_index: int, max_samples: int = 200
) -> torch.Tensor:
    """Pixels of each class in each of the first ``max_samples`` training labels.

    The labels are read as stored, not through their random augmentation
    (:func:`bench.stored_labels.map_labels`): the counts are the training set's, the same in every
    process whatever ran before, and the caller's random state is left as it was.

    Args:
        dataset: Yields ``(image, mask)`` pairs.
        num_classes: Classes counted (label values ``0 .. num_classes - 1``).
        ignore_index: Label value not counted.
        max_samples: Samples read at most (the first ones).

    Returns:
        ``(n, num_classes)`` float64 pixel counts, one row per sample read.
    """

    def count(mask: torch.Tensor) -> torch.Tensor:
        mask = mask.long().flatten()
        mask = mask[mask != ignore_index]
        return torch.bincount(mask, minlength=num_classes)[:num_classes].double()

    rows = map_labels(dataset, range(min(max_samples, len(dataset))), count)
    return torch.stack(rows) if rows else torch.zeros(0, num_classes, dtype=torch.float64)


def class_frequencies(
    dataset: Dataset, num_classes: int, ignore_index: int, max_samples: int = 200
) -> torch.Tensor:
    """Fraction of (non-ignored) pixels per class over the first ``max_samples`` labels.

    Counted as :func:`label_counts` says: from the labels as stored, so the weights are the
    training set's and the same in every run.

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
    counts = label_counts(dataset, num_classes, ignore_index, max_samples).sum(0)
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


def median_frequency_weights(
    dataset: Dataset, num_classes: int, ignore_index: int, max_samples: int = 200
) -> torch.Tensor:
    """Median frequency balancing (Eigen & Fergus, arXiv 1411.4734, Sec. 4.1; SegNet's CamVid).

    ``w_c = median(freq) / freq_c``, where ``freq_c`` is the number of pixels of class ``c``
    divided by the number of (non-ignored) pixels of the images in which ``c`` is present. The
    median is taken over the classes present in the sampled images; a class absent from all of
    them has no frequency and gets weight 1.

    Args:
        dataset: Yields ``(image, mask)`` pairs.
        num_classes: Classes counted (label values ``0 .. num_classes - 1``).
        ignore_index: Label value not counted.
        max_samples: Samples read at most (the first ones; counted as :func:`label_counts`).

    Returns:
        float32 weights, one per class.

    Raises:
        ConfigError: Every sampled pixel is ignored.
    """
    per_image = label_counts(dataset, num_classes, ignore_index, max_samples)
    counts = per_image.sum(0)
    present_pixels = ((per_image > 0).double() * per_image.sum(1, keepdim=True)).sum(0)
    present = counts > 0
    if not present.any():
        raise ConfigError(
            "Cannot estimate class frequencies: every sampled pixel is ignored. Check the "
            "training labels, or set train.class_weighting: none."
        )
    freq = counts[present] / present_pixels[present]
    weights = torch.ones(num_classes, dtype=torch.float64)
    # torch.median returns the lower of the two middle values; the paper's median is their mean.
    weights[present] = torch.quantile(freq, 0.5) / freq
    return weights.float()


def class_weights_for(
    weighting: str, dataset: Dataset, num_classes: int, ignore_index: int, max_samples: int
) -> torch.Tensor | None:
    """The loss's class weights that ``train.class_weighting`` asks for, from the training set.

    Args:
        weighting: ``"none"``, ``"enet"`` (:func:`enet_class_weights`) or
            ``"median_frequency"`` (:func:`median_frequency_weights`).
        dataset: The training set.
        num_classes: Classes of the dataset.
        ignore_index: Label value not counted.
        max_samples: Training images read at most (``train.class_weight_samples``).

    Returns:
        float32 weights, one per class, or None for ``"none"``.

    Raises:
        ConfigError: Every sampled pixel is ignored.
    """
    if weighting == "enet":
        return enet_class_weights(
            class_frequencies(dataset, num_classes, ignore_index, max_samples)
        )
    if weighting == "median_frequency":
        return median_frequency_weights(dataset, num_classes, ignore_index, max_samples)
    return None


def weights_key(cfg: TrainConfig) -> tuple[str, int]:
    """What a training setting's class weights depend on (besides the training set)."""
    return cfg.class_weighting, cfg.class_weight_samples


def class_weights_by_setting(
    configs: Iterable[TrainConfig], dataset: Dataset, num_classes: int, ignore_index: int
) -> dict[tuple[str, int], torch.Tensor | None]:
    """The class weights of each training setting that trains, by :func:`weights_key`.

    A sweep computes them once, up front, for its suite's ``train`` and each recipe's.

    Args:
        configs: The training settings (those with ``steps == 0`` are skipped).
        dataset: The training set.
        num_classes: Classes of the dataset.
        ignore_index: Label value not counted.

    Returns:
        Weights (or None for ``class_weighting: none``) by :func:`weights_key`.

    Raises:
        ConfigError: Every sampled pixel is ignored.
    """
    out: dict[tuple[str, int], torch.Tensor | None] = {}
    for cfg in configs:
        key = weights_key(cfg)
        if cfg.steps > 0 and key not in out:
            out[key] = class_weights_for(key[0], dataset, num_classes, ignore_index, key[1])
    return out


def merged_aux_weights(
    declared: Mapping[str, float], override: Mapping[str, float], arch: str
) -> dict[str, float]:
    """The architecture's declared auxiliary loss weights with ``train.aux_weights`` applied.

    Args:
        declared: ``ArchInfo.aux_weights``.
        override: ``train.aux_weights``: new weights for some of the declared names.
        arch: The architecture (named in the error).

    Raises:
        ConfigError: ``override`` names an output the architecture does not declare.
    """
    unknown = sorted(set(override) - set(declared))
    if unknown:
        raise ConfigError(
            f"train.aux_weights names {', '.join(unknown)}, but {arch} declares "
            f"{', '.join(sorted(declared)) or 'no auxiliary outputs'}. Fix: use those names, "
            f"or give aux_weights in recipes: for the architectures that have them."
        )
    return {**declared, **override}
