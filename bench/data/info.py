"""Dataset metadata: :class:`DatasetInfo`, what the harness knows about a dataset besides its files.

The registry (:mod:`bench.data.registry`) returns it with every built split; runs record it and
evaluation reads the class names, ignore index and normalisation from it.
"""

from __future__ import annotations

from dataclasses import dataclass


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
        """Check that names, palette and ignore index fit the class count.

        A plain ValueError: the info is written in code (a loader module or a plugin), not
        given by a user of the CLI.

        Raises:
            ValueError: a count mismatch, or ``ignore_index`` equal to a class id.
        """
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
