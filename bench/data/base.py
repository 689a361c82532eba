"""Dataset metadata and the dataset registry (datasets are registered by name, like architectures)."""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass

from torch.utils.data import Dataset


@dataclass(frozen=True)
class DatasetInfo:
    """What the harness needs to know about a dataset, independent of any split.

    Attributes:
        name: Registry key, e.g. ``"synthetic"`` or ``"camvid"``.
        title: Human-readable name.
        num_classes: Number of evaluated classes (the ignore label is not one of them).
        class_names: One name per class id ``0..num_classes-1``.
        palette: One ``(r, g, b)`` colour per class id, for figures.
        ignore_index: Label value excluded from loss and metrics.
        mean: Per-channel mean used to normalise images (0..1 scale).
        std: Per-channel standard deviation used to normalise images (0..1 scale).
        splits: Names of the splits the dataset provides.
        eval_resolution: ``(H, W)`` of the standard evaluation protocol (None = native size).
        citation: Where the data comes from.
    """

    name: str
    title: str
    num_classes: int
    class_names: tuple[str, ...]
    palette: tuple[tuple[int, int, int], ...]
    ignore_index: int = 255
    mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    std: tuple[float, float, float] = (0.229, 0.224, 0.225)
    splits: tuple[str, ...] = ("train", "val", "test")
    eval_resolution: tuple[int, int] | None = None
    citation: str = ""

    def __post_init__(self) -> None:
        if len(self.class_names) != self.num_classes:
            raise ValueError(
                f"Dataset {self.name!r}: {self.num_classes} classes but "
                f"{len(self.class_names)} class names."
            )
        if len(self.palette) != self.num_classes:
            raise ValueError(
                f"Dataset {self.name!r}: {self.num_classes} classes but "
                f"{len(self.palette)} palette colours."
            )
        if 0 <= self.ignore_index < self.num_classes:
            raise ValueError(
                f"Dataset {self.name!r}: ignore_index {self.ignore_index} collides with a class id "
                f"(0..{self.num_classes - 1})."
            )


# A dataset factory: (*, split, root, **options) -> (Dataset yielding (image, mask), DatasetInfo).
# ``image`` is a float tensor (3, H, W) normalised with info.mean/std; ``mask`` a uint8 (or int64)
# tensor (H, W) of class ids with info.ignore_index for ignored pixels.
DatasetFactory = Callable[..., tuple[Dataset, DatasetInfo]]

_DATASETS: dict[str, tuple[DatasetFactory, str]] = {}


def register_dataset(
    name: str, description: str = ""
) -> Callable[[DatasetFactory], DatasetFactory]:
    """Decorator registering a dataset factory under ``name`` (duplicates raise)."""

    def decorator(factory: DatasetFactory) -> DatasetFactory:
        if name in _DATASETS:
            raise ValueError(f"Dataset {name!r} is already registered.")
        _DATASETS[name] = (factory, description)
        return factory

    return decorator


def dataset_names() -> list[str]:
    return list(_DATASETS)


def dataset_description(name: str) -> str:
    return _get(name)[1]


def _get(name: str) -> tuple[DatasetFactory, str]:
    try:
        return _DATASETS[name]
    except KeyError:
        close = difflib.get_close_matches(name, list(_DATASETS), n=3, cutoff=0.5)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        raise ValueError(
            f"Unknown dataset {name!r}.{hint} Known datasets: {', '.join(_DATASETS) or 'none'}."
        ) from None


def build_dataset(
    name: str, *, split: str, root: str | None = None, **options: object
) -> tuple[Dataset, DatasetInfo]:
    """Build one split of a registered dataset; returns ``(dataset, info)``."""
    factory, _ = _get(name)
    return factory(split=split, root=root, **options)
