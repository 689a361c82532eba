"""Segmentation metrics from one dataset-level confusion matrix.

The matrix ``cm[t, p]`` counts pixels of ground-truth class ``t`` predicted as ``p``. It is
accumulated on the device where the predictions live, summed over batches (and, by adding the
matrices, over processes), and only then turned into numbers: mIoU is computed from the total
matrix, never as a mean of per-image IoUs.

Conventions (those of mmsegmentation):

* Pixels whose label equals ``ignore_index`` are not counted.
* A class absent from both the ground truth and the predictions has an undefined (NaN) IoU,
  accuracy and Dice; NaN classes are excluded from every mean. A class present in the ground
  truth but never predicted has IoU 0; a class predicted but absent from the ground truth also
  has IoU 0 (its accuracy is NaN: it has no ground-truth pixels).
* Labels outside ``[0, num_classes)`` that are not ``ignore_index`` are an error, reported with
  the offending values: a silent clip would hide a broken dataset.

Speed: the update builds one flat index ``num_classes * target + pred`` without compacting the
valid pixels with a boolean mask (the slow part of the classic NumPy recipe). Ignored and invalid
labels simply land in their own rows of a slightly larger histogram; those rows are dropped
(ignored) or reported (invalid). uint8 inputs (what the harness passes) need no scan of the
labels (256 rows hold every value) and the index is int16, so each pass moves 2 bytes per
pixel. On one CPU thread an update costs about 1.1-1.5x a bare
``torch.bincount`` of the same number of indices (``tests/benchmarks/test_bench_metrics.py``).
Wider labels (int64 is what ``argmax`` and most data loaders give) are read, checked and counted
in one fused pass on CPU (:mod:`bench.confusion_kernel`, compiled by numba): 1.1-1.3x a bare
int32 bincount on one thread (1.4-1.7x when other work has evicted the labels from cache, as
reading 16 bytes of labels per pixel instead of 4 shows), where passes of NumPy or torch
operations cost 2.2-2.6x.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from bench.errors import ConfigError

_INT_DTYPES = (torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64)
# Largest histogram update() builds (32 MiB of int64 counts); labels further apart are compacted.
_MAX_HIST_BINS = 1 << 22
# Pixels per chunk of a CPU update: its int16 buffers (2 x 1 MiB) stay in cache between passes.
_CPU_CHUNK = 1 << 19


class ConfusionMatrix:
    """Accumulates a ``(num_classes, num_classes)`` int64 confusion matrix on a device.

    Args:
        num_classes: Number of evaluated classes.
        ignore_index: Label value to skip (255 by default; a dataset may declare its own).
        device: Where the matrix lives; put it where the predictions are.

    Raises:
        ConfigError: ``num_classes`` is not a positive int, or ``ignore_index`` is a class id.
    """

    def __init__(
        self, num_classes: int, ignore_index: int = 255, device: torch.device | str = "cpu"
    ) -> None:
        if not isinstance(num_classes, int) or num_classes < 1:
            raise ConfigError(f"num_classes must be a positive int; got {num_classes!r}.")
        if 0 <= ignore_index < num_classes:
            raise ConfigError(
                f"ignore_index {ignore_index} collides with class ids 0..{num_classes - 1}; "
                f"choose a value outside that range (255 is the usual one)."
            )
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.matrix = torch.zeros(num_classes, num_classes, dtype=torch.int64, device=device)

    def reset(self) -> None:
        """Sets every count back to zero."""
        self.matrix.zero_()

    @torch.no_grad()
    def update(self, pred: torch.Tensor, target: torch.Tensor) -> None:
        """Add a batch of predicted and ground-truth label maps (same shape, integer dtype).

        Raises:
            ConfigError: shapes differ, a prediction is outside ``[0, num_classes)``, or a target
                label is outside it and is not ``ignore_index`` (the message lists the values).
                A failed update leaves the matrix unchanged.
            TypeError: an input is not an integer tensor (e.g. logits or a float mask).
        """
        if pred.shape != target.shape:
            raise ConfigError(
                f"pred and target must have the same shape; got pred {tuple(pred.shape)} and "
                f"target {tuple(target.shape)}. Pass class ids (e.g. logits.argmax(1)), not logits."
            )
        for name, t in (("pred", pred), ("target", target)):
            if t.dtype not in _INT_DTYPES:
                raise TypeError(
                    f"{name} must hold integer class ids; got dtype {t.dtype}. "
                    f"Use logits.argmax(1) for predictions and integer masks for targets."
                )
        if target.numel() == 0:
            return
        k = self.num_classes
        device = self.matrix.device
        if pred.device != device or target.device != device:
            pred, target = pred.to(device), target.to(device)
        if (
            device.type == "cpu"
            and (pred.dtype, target.dtype) != (torch.uint8, torch.uint8)
            and self._update_wide_cpu(pred.reshape(-1), target.reshape(-1))
        ):
            return
        self._check_pred(pred)

        # Histogram rows cover the label values lo..hi: the classes, plus whatever else occurs
        # (the ignore index, invalid labels). A uint8 target needs no scan: 256 rows hold them all.
        if target.dtype == torch.uint8:
            lo, hi = 0, max(255, k - 1)
        else:
            tmin, tmax = (int(v) for v in torch.aminmax(target))
            lo, hi = min(tmin, 0), max(tmax, k - 1)
        rows = hi - lo + 1
        if rows * k > _MAX_HIST_BINS:  # far-off labels (e.g. 10**9): compact them first
            self._update_masked(pred, target)
            return

        self._commit(self._histogram(pred.reshape(-1), target.reshape(-1), lo, rows), lo)

    @torch.no_grad()
    def update_per_image(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """:meth:`update` with a batch, returning each image's own ``(N, K, K)`` matrix.

        The batch's images go through :meth:`update` one at a time (the same checks and
        counts), so the returned matrices sum to what the batch added.

        Raises:
            ConfigError: See :meth:`update`; nothing is added then (not even the images before
                the bad one).
            TypeError: See :meth:`update`.
        """
        if pred.shape != target.shape or pred.dim() < 1:
            self.update(pred, target)  # raises the shape error
        start = self.matrix.clone()
        per_image = []
        try:
            for p, t in zip(pred, target, strict=True):
                before = self.matrix.clone()
                self.update(p, t)
                per_image.append(self.matrix - before)
        except BaseException:
            self.matrix.copy_(start)
            raise
        k = self.num_classes
        if not per_image:
            return torch.zeros(0, k, k, dtype=torch.int64, device=self.matrix.device)
        return torch.stack(per_image)

    def _commit(self, hist: torch.Tensor, lo: int) -> None:
        """Adds the class rows of a ``(rows, k)`` histogram of the label values ``lo..``.

        Raises ConfigError, adding nothing, when a row of an invalid label value is not empty.
        """
        k = self.num_classes
        counted = slice(-lo, -lo + k)  # rows of the labels 0..k-1
        # Pixels per label value, checked in NumPy: a few hundred numbers, where each further
        # torch op would cost more in dispatch than in work.
        extra = hist.sum(dim=1).cpu().numpy()
        extra[counted] = 0
        if 0 <= self.ignore_index - lo < len(extra):
            extra[self.ignore_index - lo] = 0
        if extra.any():
            self._raise_invalid((np.flatnonzero(extra) + lo).tolist())
        self.matrix += hist[counted]

    def _histogram(
        self, pred: torch.Tensor, target: torch.Tensor, lo: int, rows: int
    ) -> torch.Tensor:
        """``(rows, k)`` counts of (target - lo, pred) pairs over flat, range-checked inputs.

        The flat index ``k * (target - lo) + pred`` is built in the narrowest integer type that
        holds it (int16 for uint8 labels and up to 128 classes), so each pass moves 2 bytes per
        pixel. Both inputs are converted explicitly into two buffers allocated once per update (a
        mixed-dtype add would allocate a converted copy of one input for every chunk). On CPU the
        pixels go through in chunks, so the buffers stay in cache from the conversion through the
        add to the bincount.
        """
        k = self.num_classes
        n = target.numel()
        dtype = torch.int16 if rows * k <= 2**15 else torch.int32
        step = min(n, _CPU_CHUNK) if target.device.type == "cpu" else n
        idx = torch.empty(step, dtype=dtype, device=target.device)
        pbuf = None if pred.dtype == dtype else torch.empty_like(idx)
        hist = torch.zeros(rows * k, dtype=torch.int64, device=target.device)
        for start in range(0, n, step):
            stop = min(start + step, n)
            i = idx[: stop - start]
            i.copy_(target[start:stop])
            if lo:
                i.sub_(lo)
            p = pred[start:stop] if pbuf is None else pbuf[: stop - start].copy_(pred[start:stop])
            torch.add(p, i, alpha=k, out=i)  # i = k * (target - lo) + pred
            hist += torch.bincount(i, minlength=rows * k)
        return hist.view(rows, k)

    def _update_wide_cpu(self, pred: torch.Tensor, target: torch.Tensor) -> bool:
        """Updates from flat CPU labels wider than uint8 (int64 from argmax or a data loader).

        One fused pass of :func:`bench.confusion_kernel.count_pairs` reads, checks and counts
        each pixel (see that module for why). Returns False, having added nothing, to leave the
        update to the general path: a label is out of range (that path raises, naming the
        values), the histogram would be too large, or numba is not installed. Target labels in
        range that are neither classes nor the ignore index get histogram rows of their own,
        reported by :meth:`_commit`.
        """
        kernel = _fused_kernel()
        if kernel is None:
            return False
        k, ignore = self.num_classes, self.ignore_index
        lo, hi = (0, max(k - 1, ignore)) if ignore >= 0 else (ignore, k - 1)
        rows = hi - lo + 1
        if rows * k > _MAX_HIST_BINS:
            return False
        hist, hist2 = np.zeros(rows * k, dtype=np.int64), np.zeros(rows * k, dtype=np.int64)
        if not kernel(target.numpy(), pred.numpy(), lo, rows, k, hist, hist2):
            return False
        hist += hist2
        self._commit(torch.from_numpy(hist).view(rows, k), lo)
        return True

    def _check_pred(self, pred: torch.Tensor) -> None:
        k = self.num_classes
        if pred.dtype == torch.uint8:  # unsigned: only the maximum can be out of range
            if int(pred.max()) < k:
                return
        else:
            pmin, pmax = torch.aminmax(pred)
            if int(pmin) >= 0 and int(pmax) < k:
                return
        pmin, pmax = (int(v) for v in torch.aminmax(pred))
        raise ConfigError(
            f"Predictions must be class ids in [0, {k - 1}]; found values in "
            f"[{pmin}, {pmax}]. Is num_classes={k} right for this model?"
        )

    def _update_masked(self, pred: torch.Tensor, target: torch.Tensor) -> None:
        k = self.num_classes
        target = target.long()
        keep = target != self.ignore_index
        invalid = keep & ((target < 0) | (target >= k))
        if bool(invalid.any()):
            self._raise_invalid(torch.unique(target[invalid]).tolist())
        idx = k * target[keep] + pred.long()[keep]
        self.matrix += torch.bincount(idx, minlength=k * k).reshape(k, k)

    def _raise_invalid(self, values: Sequence[int]) -> None:
        shown = ", ".join(str(v) for v in list(values)[:10])
        more = f" (and {len(values) - 10} more)" if len(values) > 10 else ""
        raise ConfigError(
            f"Target labels must be in [0, {self.num_classes - 1}] or the ignore index "
            f"{self.ignore_index}; found {shown}{more}. Check the dataset's label encoding "
            f"(e.g. colour-coded labels, or labelIds that need mapping to trainIds) or its "
            f"num_classes/ignore_index."
        )

    def merge(self, other: ConfusionMatrix) -> ConfusionMatrix:
        """Add another matrix (e.g. from another process or shard) in place.

        Args:
            other: A matrix of the same class count.

        Returns:
            ``self``.

        Raises:
            ConfigError: the class counts differ.
        """
        if other.num_classes != self.num_classes:
            raise ConfigError(
                f"Cannot merge confusion matrices of {self.num_classes} and "
                f"{other.num_classes} classes."
            )
        self.matrix += other.matrix.to(self.matrix.device)
        return self

    def all_reduce(self) -> None:
        """Sum the matrix over all processes of an initialised torch.distributed group."""
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.all_reduce(self.matrix)

    def compute(
        self, class_names: Sequence[str] | None = None, *, no_class: bool = False
    ) -> SegMetrics:
        """The metrics of the matrix so far (see :func:`compute_metrics`).

        Args:
            class_names: K names for the per-class dicts (default ``"0".."K-1"``).
            no_class: Whether the last class is "no class" (misses; see
                :func:`compute_metrics`).

        Returns:
            The metrics.
        """
        return compute_metrics(self.matrix.cpu().numpy(), class_names, no_class=no_class)


@dataclass(frozen=True)
class SegMetrics:
    """Metrics from one confusion matrix; all fractions in [0, 1], NaN = undefined."""

    miou: float
    pixel_acc: float
    mean_acc: float
    fwiou: float
    mean_dice: float
    per_class_iou: dict[str, float]
    per_class_acc: dict[str, float]
    per_class_dice: dict[str, float]

    def to_dict(self) -> dict[str, object]:
        """JSON-ready dict; NaN becomes None (JSON has no NaN)."""

        def clean(v: float) -> float | None:
            return None if math.isnan(v) else float(v)

        return {
            "miou": clean(self.miou),
            "pixel_acc": clean(self.pixel_acc),
            "mean_acc": clean(self.mean_acc),
            "fwiou": clean(self.fwiou),
            "mean_dice": clean(self.mean_dice),
            "per_class_iou": {k: clean(v) for k, v in self.per_class_iou.items()},
            "per_class_acc": {k: clean(v) for k, v in self.per_class_acc.items()},
            "per_class_dice": {k: clean(v) for k, v in self.per_class_dice.items()},
        }


@functools.cache
def _fused_kernel() -> Callable[..., bool] | None:
    """The fused count :func:`bench.confusion_kernel.count_pairs`, or None without numba.

    Without it the general path counts wide labels: the same numbers, about twice as slowly.
    """
    try:
        from bench.confusion_kernel import count_pairs
    except ImportError:
        return None
    return count_pairs


def _nanmean(x: np.ndarray) -> float:
    finite = x[~np.isnan(x)]
    return float(finite.mean()) if finite.size else float("nan")


def compute_metrics(
    matrix: np.ndarray | torch.Tensor,
    class_names: Sequence[str] | None = None,
    *,
    no_class: bool = False,
) -> SegMetrics:
    """Turn a confusion matrix (rows = ground truth, columns = prediction) into metrics.

    With ``no_class`` the matrix is ``(K + 1, K + 1)`` and its last column counts pixels
    predicted as no class at all (a published model's non-class channel scored as a miss): they
    are misses of their true class (in its ground-truth total, never its true positives) and
    false positives of none. The last row (ground truth "no class") must be empty; only the K
    classes are scored.

    Args:
        matrix: ``(K, K)`` non-negative counts (``(K + 1, K + 1)`` with ``no_class``).
        class_names: K names for the per-class dicts (default ``"0".."K-1"``).
        no_class: Whether the last row and column are "no class".

    Returns:
        The metrics; undefined values are NaN.

    Raises:
        ConfigError: the matrix is not square, or the number of names is not K.
    """
    cm = matrix.cpu().numpy() if isinstance(matrix, torch.Tensor) else np.asarray(matrix)
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1]:
        raise ConfigError(f"Confusion matrix must be square (K, K); got shape {cm.shape}.")
    k = cm.shape[0] - (1 if no_class else 0)
    names = [str(i) for i in range(k)] if class_names is None else list(class_names)
    if len(names) != k:
        raise ConfigError(f"Got {len(names)} class names for a {k}-class confusion matrix.")
    if no_class and cm[k].sum() > 0:
        raise ConfigError(
            f"The 'no class' row of a {k + 1}x{k + 1} confusion matrix counts "
            f"{int(cm[k].sum())} pixels; no ground-truth pixel can be 'no class'."
        )
    cm = cm.astype(np.float64)[:k]  # rows: the K classes (with no_class, K + 1 columns)
    tp = np.diag(cm[:, :k])
    gt = cm.sum(axis=1)  # pixels per ground-truth class (misses included)
    pr = cm[:, :k].sum(axis=0)  # pixels per predicted class
    total = cm.sum()
    union = gt + pr - tp
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = np.where(union > 0, tp / union, np.nan)
        acc = np.where(gt > 0, tp / gt, np.nan)
        dice = np.where(gt + pr > 0, 2 * tp / (gt + pr), np.nan)
    if total > 0:
        pixel_acc = float(tp.sum() / total)
        freq = gt / total
        valid = ~np.isnan(iou)
        fwiou = float((freq[valid] * iou[valid]).sum())
    else:  # everything ignored: nothing to score
        pixel_acc = fwiou = float("nan")
    return SegMetrics(
        miou=_nanmean(iou),
        pixel_acc=pixel_acc,
        mean_acc=_nanmean(acc),
        fwiou=fwiou,
        mean_dice=_nanmean(dice),
        per_class_iou=dict(zip(names, iou.tolist(), strict=True)),
        per_class_acc=dict(zip(names, acc.tolist(), strict=True)),
        per_class_dice=dict(zip(names, dice.tolist(), strict=True)),
    )
