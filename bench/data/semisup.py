"""The labelled/unlabelled protocol of the semi-supervised track.

A labelled subset of a training split is drawn once per (dataset, share, split seed)
(:func:`draw_labelled`), written to a split file of sample ids (:func:`split_file`, one id per
line; kept under ``results/splits/`` and named by its sha256 in every record) and read back
from that file on later runs, so the subset stays fixed even if the drawing code changes.
Everything else in the split is unlabelled: :class:`UnlabelledImages` yields its images only,
or with image-level class labels (weak supervision, derived from the masks and declared as
such by the record), never a mask.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from bench.errors import ConfigError
from bench.fileio import write_atomic
from bench.stored_labels import map_labels


def sample_ids(dataset: Dataset) -> list[str]:
    """Ids of the samples: a file dataset's own (file stems), else the indices as text."""
    ids = getattr(dataset, "ids", None)
    return list(ids) if ids is not None else [str(i) for i in range(len(dataset))]


def classes_present(mask: torch.Tensor, num_classes: int) -> torch.Tensor:
    """``(K,)`` float multi-hot vector of the classes a mask holds (ignored labels excluded)."""
    counts = torch.bincount(mask.reshape(-1).long().clamp(min=0), minlength=max(num_classes, 256))
    return (counts[:num_classes] > 0).float()


def draw_labelled(
    dataset: Dataset,
    *,
    num_classes: int,
    fraction: float | None = None,
    per_class: int | None = None,
    split_seed: int = 0,
) -> list[int]:
    """The indices of the labelled subset, sorted.

    ``fraction``: ``max(1, round(fraction * N))`` images, the first of a permutation drawn
    from ``numpy.random.default_rng(split_seed)``. ``per_class`` (DecoupledNet's protocol):
    walking the same permutation, an image is taken while one of the classes it holds has
    fewer than ``per_class`` images so far, until every class present in the split has
    ``per_class`` (or all the split has).

    Args:
        dataset: The training split (its labels are read for ``per_class`` only, as stored:
            :func:`bench.stored_labels.map_labels`).
        num_classes: K.
        fraction: The labelled share, in (0, 1].
        per_class: Labelled images per class.
        split_seed: Seeds the permutation.

    Returns:
        Sorted indices into ``dataset``.
    """
    n = len(dataset)
    order = np.random.default_rng(split_seed).permutation(n)
    if fraction is not None:
        return sorted(int(i) for i in order[: max(1, round(fraction * n))])
    assert per_class is not None
    counts = np.zeros(num_classes, dtype=np.int64)
    present = map_labels(dataset, order, lambda m: classes_present(m, num_classes).bool().numpy())
    wanted = np.any(present, axis=0) if present else np.zeros(num_classes, bool)
    taken = []
    for i, has in zip(order, present, strict=True):
        if np.any(has & (counts < per_class)):
            taken.append(int(i))
            counts += has
        if np.all(counts[wanted] >= per_class):
            break
    return sorted(taken)


def split_file(
    folder: Path, name: str, ids: list[str], dataset_ids: list[str]
) -> tuple[Path, list[int], str]:
    """The split file ``<folder>/<name>.txt``: written when missing, else read and checked.

    Args:
        folder: ``results/splits``.
        name: ``<dataset>__<share>__seed<k>`` (the caller's).
        ids: The freshly drawn labelled ids (written when the file is missing).
        dataset_ids: Every id of the split, in sample order.

    Returns:
        ``(path, indices, sha256)``: the file, the labelled indices it names (sorted) and the
        sha256 of its bytes.

    Raises:
        ConfigError: The file names an id the split does not hold (another dataset or
            layout): the message names the file and the fix.
    """
    path = Path(folder) / f"{name}.txt"
    if not path.is_file():
        text = "".join(f"{i}\n" for i in ids)
        write_atomic(path, lambda handle: handle.write(text.encode()))
    data = path.read_bytes()
    where = {sid: k for k, sid in enumerate(dataset_ids)}
    listed = [line for line in data.decode().splitlines() if line.strip()]
    unknown = [sid for sid in listed if sid not in where]
    if unknown:
        raise ConfigError(
            f"Split file {path} names {len(unknown)} sample(s) the training split does not hold "
            f"(first: {unknown[0]!r}); it was drawn for another dataset or layout. Fix: delete "
            f"it to draw the split again (records that used it name its sha256)."
        )
    return path, sorted(where[sid] for sid in listed), hashlib.sha256(data).hexdigest()


class UnlabelledImages(Dataset):
    """The unlabelled part of a training split: images only (or with image-level labels).

    Args:
        dataset: The training split (``(image, mask)`` pairs).
        indices: The unlabelled samples.
        num_classes: K (for the image-level labels).
        image_labels: Whether each item is ``(image, classes_present)`` instead of the image.
    """

    def __init__(
        self, dataset: Dataset, indices: list[int], num_classes: int, image_labels: bool = False
    ) -> None:
        self.dataset, self.indices = dataset, list(indices)
        self.num_classes, self.image_labels = num_classes, image_labels

    def __len__(self) -> int:
        """Number of unlabelled images."""
        return len(self.indices)

    def __getitem__(self, index: int) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """The image (and its ``(K,)`` image-level labels): the mask is dropped here."""
        image, mask = self.dataset[self.indices[index]]
        if not self.image_labels:
            return image
        return image, classes_present(mask, self.num_classes)
