"""A training split's labels as stored, for statistics of the split itself.

Class weights (``train.class_weighting``) and DecoupledNet's class-balanced labelled subset
(``semisup.labelled_per_class``) describe the training labels, not one random augmentation of
them: read through ``dataset[i]``, a CamVid label is rescaled 0.5-2x and cropped with the global
random state, and the statistic changes with whatever ran before in the process.
:func:`map_labels` reads each label as stored where the dataset can (a ``label(index)`` method
returning the ``(H, W)`` class ids, as :class:`~bench.data.file_dataset.SegmentationFiles` has;
``Subset`` views are followed down to it). Any other dataset is read through ``dataset[i]``
with the global random state forked and seeded with :data:`LABEL_READ_SEED` (a generated
dataset is usually deterministic per index anyway). Either way the result is the same in every
process, and the caller's random state is left as it was: it seeds the model and the data order
next.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TypeVar

import numpy as np
import torch
from torch.utils.data import Dataset, Subset

LABEL_READ_SEED = 0  # the random state a dataset without stored labels is read under

T = TypeVar("T")


def map_labels(
    dataset: Dataset, indices: Iterable[int], fn: Callable[[torch.Tensor], T]
) -> list[T]:
    """``fn`` of the label of each sample in ``indices``, read as the module docstring says.

    Args:
        dataset: Yields ``(image, mask)`` pairs (a ``Subset`` is followed to its dataset).
        indices: Samples of ``dataset`` to read, in this order.
        fn: Called with each ``(H, W)`` integer label (ignored pixels keep the ignore index).

    Returns:
        ``fn``'s results, in the order of ``indices``.
    """
    wanted = [int(i) for i in indices]
    base, where = dataset, list(wanted)
    while isinstance(base, Subset):
        where = [int(base.indices[i]) for i in where]
        base = base.dataset
    stored = getattr(base, "label", None)
    out = []
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(LABEL_READ_SEED)
        for index, inner in zip(wanted, where, strict=True):
            if callable(stored):
                mask = torch.from_numpy(np.asarray(stored(inner)))
            else:
                mask = dataset[index][1]
            out.append(fn(mask))
    return out
