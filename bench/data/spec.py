"""The description of a file-backed dataset: :class:`FileDatasetSpec`.

A loader module (``camvid.py``, ``voc.py``, ...) describes its dataset with one spec: the
:class:`~bench.data.info.DatasetInfo`, the expected folder tree (shown in every "not found"
message), a :class:`~bench.data.codecs.LabelCodec` (raw label values -> class ids), the official
sample counts, the training crop and evaluation protocol, and an ``index(root, split)`` function
that pairs image and label files (:mod:`bench.data.pairing`) and reports structural problems.
:func:`bench.data.file_dataset.register_file_dataset` registers it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from bench.data.codecs import LabelCodec
from bench.data.info import DatasetInfo
from bench.data.pairing import SplitIndex
from bench.data.problems import Problem, dataset_error, errors
from bench.data.transforms import EvalProtocol
from bench.errors import ConfigError


@dataclass(frozen=True, eq=False)
class FileDatasetSpec:
    """Everything the harness knows about one on-disk dataset.

    Attributes:
        info: Class names, palette, ignore index, mean/std, splits, evaluation resolution.
        description: One line for ``list datasets``.
        layout: The expected tree, ``{root}`` standing for the data root; shown in every
            "not found" message.
        codec: Raw label values -> class ids.
        index: ``(root, split) -> SplitIndex``; ``root`` is an existing folder.
        expected_counts: Official samples per split (a different count is a warning).
        train_crop: Default training crop ``(H, W)``.
        scale_base: Default :attr:`TrainAugment.scale_base`.
        protocol: The standard evaluation protocol.
        grayscale: Images are single-channel (repeated to 3 channels when read).
        train_splits: Splits augmented by default.
        resolve_root: Optional: find the dataset folder under a user-given root (e.g.
            ``VOCdevkit/VOC2012`` under a folder holding ``VOCdevkit``).
        notes: Protocol details for the docs (printed by ``data check``).
    """

    info: DatasetInfo
    description: str
    layout: str
    codec: LabelCodec
    index: Callable[[Path, str], SplitIndex]
    expected_counts: Mapping[str, int]
    train_crop: tuple[int, int]
    scale_base: tuple[int, int] | None = None
    protocol: EvalProtocol = field(default_factory=EvalProtocol)
    grayscale: bool = False
    train_splits: tuple[str, ...] = ("train",)
    resolve_root: Callable[[Path], Path] | None = None
    notes: str = ""

    @property
    def name(self) -> str:
        """The registry name (``info.name``)."""
        return self.info.name

    def layout_for(self, root: Path | str) -> str:
        """The expected tree with ``{root}`` replaced by ``root``.

        Args:
            root: The data root as the user gave it (or a placeholder such as ``DIR``).

        Returns:
            The layout text, several lines.
        """
        return self.layout.replace("{root}", str(root).rstrip("/") or "/")

    def missing_folder(self, split: str, folder: Path, root: Path) -> Problem:
        """The problem of a folder of the layout that does not exist.

        Args:
            split: The split that needs it.
            folder: The missing folder.
            root: The data root (for the expected layout in the message).

        Returns:
            A ``missing_folder`` problem showing the expected layout.
        """
        return Problem(
            "missing_folder",
            f"{self.name}: split {split!r}: folder {folder} not found. Expected layout:\n"
            f"{self.layout_for(root)}",
            str(folder),
            split,
        )

    def root_problem(self, root: Path | str | None) -> Problem | None:
        """What is wrong with a user-given data root, if anything.

        Args:
            root: The ``--data-root`` (or suite ``data_root``); None when none was given.

        Returns:
            A ``missing_root`` problem (no root given, not a folder, does not exist) showing
            the expected layout, or None when ``root`` is an existing folder.
        """
        if root is None:
            return Problem(
                "missing_root",
                f"{self.name}: no data root given. Pass --data-root DIR (or data_root: in a "
                f"suite file) pointing at the dataset. Expected layout:\n"
                f"{self.layout_for('DIR')}",
            )
        path = Path(root)
        if not path.is_dir():
            what = "is not a folder" if path.exists() else "does not exist"
            return Problem(
                "missing_root",
                f"{self.name}: data root {path} {what}. Expected layout:\n{self.layout_for(path)}",
                str(path),
            )
        return None

    def locate(self, root: Path | str | None) -> Path:
        """The dataset folder for a user-given root.

        Args:
            root: The ``--data-root`` (or suite ``data_root``).

        Returns:
            The folder that holds the dataset (``resolve_root`` applied, e.g. ``VOC2012``
            under a folder holding ``VOCdevkit``).

        Raises:
            MissingDataError: (a DatasetError and MissingFileError) ``root`` is None or not an
                existing folder; the message shows the expected layout.
        """
        problem = self.root_problem(root)
        if problem is not None:
            raise dataset_error([problem])
        path = Path(root)  # type: ignore[arg-type]
        return self.resolve_root(path) if self.resolve_root else path

    def split_index(self, root: Path, split: str) -> SplitIndex:
        """Index one split of an existing root and check its sample count.

        Args:
            root: The dataset folder, as returned by :meth:`locate`.
            split: One of ``info.splits``.

        Returns:
            The pairs and the problems found: the index function's, plus ``empty_split`` (an
            error) when nothing was found without another error, and ``count`` (a warning) when
            the count differs from the official one.

        Raises:
            ConfigError: ``split`` is not a split of this dataset.
        """
        if split not in self.info.splits:
            raise ConfigError(
                f"{self.name}: unknown split {split!r}; valid splits are "
                f"{', '.join(self.info.splits)}."
            )
        index = self.index(root, split)
        if not index.pairs and not errors(index.problems):
            index.problems.append(
                Problem(
                    "empty_split",
                    f"{self.name}: split {split!r} has no samples under {root}. "
                    f"Expected layout:\n{self.layout_for(root)}",
                    str(root),
                    split,
                )
            )
        expected = self.expected_counts.get(split)
        if expected is not None and index.pairs and len(index.pairs) != expected:
            index.problems.append(
                Problem(
                    "count",
                    f"{self.name}: split {split!r} has {len(index.pairs)} samples; the official "
                    f"release has {expected} (incomplete download or extraction, or a custom "
                    f"subset?).",
                    str(root),
                    split,
                    severity="warning",
                )
            )
        return index
