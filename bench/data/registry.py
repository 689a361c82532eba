"""The dataset registry: one table from name to factory, description and (for files) spec.

Datasets register by name, like architectures: a generated dataset with
:func:`register_dataset` on its factory, a file-backed one with
:func:`bench.data.file_dataset.register_file_dataset`, which registers a factory and the
:class:`~bench.data.spec.FileDatasetSpec` it builds from in the same entry. Every view of the
registry (:func:`dataset_names`, :func:`dataset_description`, :func:`build_dataset`,
:func:`file_dataset_spec`, :func:`file_dataset_names`) reads that one table, so a name cannot
be a file-backed dataset in one view and something else (or unknown) in another.

A duplicate name raises ``ValueError`` naming the entry already registered; an unknown name
raises :class:`~bench.errors.ConfigError` listing close matches.
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from torch.utils.data import Dataset

from bench.data.info import DatasetInfo
from bench.data.spec import FileDatasetSpec
from bench.errors import ConfigError

# A dataset factory: (*, split, root, **options) -> (Dataset yielding (image, mask), DatasetInfo).
# ``image`` is a float tensor (3, H, W) normalised with info.mean/std; ``mask`` a uint8 (or int64)
# tensor (H, W) of class ids with info.ignore_index for ignored pixels.
DatasetFactory = Callable[..., tuple[Dataset, DatasetInfo]]

# Arguments every factory takes; the others are the dataset's options.
_COMMON_ARGS = ("split", "root")


@dataclass(frozen=True)
class DatasetEntry:
    """One registered dataset.

    Attributes:
        name: Registry key, e.g. ``"camvid"``.
        factory: Builds one split: ``factory(split=..., root=..., **options)``.
        description: One line for ``list datasets``.
        spec: The on-disk description of a file-backed dataset (None for generated ones);
            ``factory`` builds from it.
    """

    name: str
    factory: DatasetFactory
    description: str = ""
    spec: FileDatasetSpec | None = None

    def __post_init__(self) -> None:
        """Check that a file-backed entry is registered under its spec's name.

        Raises:
            ValueError: ``spec.name`` differs from ``name`` (a bug in the registering code).
        """
        if self.spec is not None and self.spec.name != self.name:
            raise ValueError(
                f"Dataset entry {self.name!r} carries the spec of {self.spec.name!r}; register "
                f"a spec under its own info.name."
            )

    @property
    def source(self) -> str:
        """Where the dataset is defined, ``module.qualname`` (for messages).

        The factory of a generated dataset; the index function of a file-backed one (its
        factory is generic and lives in :mod:`bench.data.file_dataset`).
        """
        fn: Any = self.spec.index if self.spec is not None else self.factory
        fn = getattr(fn, "func", fn)  # a functools.partial names its function
        return f"{fn.__module__}.{fn.__qualname__}"

    def options(self) -> list[str] | None:
        """The keyword options of the factory besides ``split`` and ``root``.

        Returns:
            Their names in signature order, or None when the factory takes ``**options``
            (anything goes).
        """
        params = inspect.signature(self.factory).parameters.values()
        if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
            return None
        keyword = (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
        return [p.name for p in params if p.kind in keyword and p.name not in _COMMON_ARGS]


_REGISTRY: dict[str, DatasetEntry] = {}


def add_dataset(entry: DatasetEntry) -> DatasetEntry:
    """Register ``entry`` under ``entry.name``.

    Args:
        entry: The dataset.

    Returns:
        ``entry``.

    Raises:
        ValueError: the name is taken; the message names the entry registered under it.
    """
    existing = _REGISTRY.get(entry.name)
    if existing is not None:
        kind = "file-backed dataset" if existing.spec is not None else "dataset"
        raise ValueError(
            f"Dataset {entry.name!r} is already registered: {kind} built by {existing.source} "
            f"({existing.description or 'no description'}). Register {entry.source} under "
            f"another name."
        )
    _REGISTRY[entry.name] = entry
    return entry


def register_dataset(
    name: str, description: str = "", *, spec: FileDatasetSpec | None = None
) -> Callable[[DatasetFactory], DatasetFactory]:
    """Decorator registering a dataset factory under ``name``.

    Args:
        name: Registry key.
        description: One line for ``list datasets``.
        spec: For a file-backed dataset, the spec the factory builds from (use
            :func:`bench.data.file_dataset.register_file_dataset`, which passes it).

    Returns:
        The decorator; it returns the factory unchanged.

    Raises:
        ValueError: (when applied) the name is already registered.
    """

    def decorator(factory: DatasetFactory) -> DatasetFactory:
        add_dataset(DatasetEntry(name, factory, description, spec))
        return factory

    return decorator


def dataset_entry(name: str) -> DatasetEntry:
    """The registry entry of dataset ``name``.

    Args:
        name: A registered dataset.

    Returns:
        Its entry.

    Raises:
        ConfigError: unknown name; the message lists close matches and every known name.
    """
    try:
        return _REGISTRY[name]
    except KeyError:
        close = difflib.get_close_matches(name, list(_REGISTRY), n=3, cutoff=0.5)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        raise ConfigError(
            f"Unknown dataset {name!r}.{hint} Known datasets: {', '.join(_REGISTRY) or 'none'}."
        ) from None


def dataset_names() -> list[str]:
    """Every registered dataset, in registration order."""
    return list(_REGISTRY)


def dataset_description(name: str) -> str:
    """The one-line description of dataset ``name`` (ConfigError when unknown)."""
    return dataset_entry(name).description


def file_dataset_names() -> list[str]:
    """The registered datasets read from files (those with a spec), in registration order."""
    return [name for name, entry in _REGISTRY.items() if entry.spec is not None]


def file_dataset_spec(name: str) -> FileDatasetSpec:
    """The spec of a registered file-backed dataset.

    Args:
        name: A registered dataset.

    Returns:
        Its spec.

    Raises:
        ConfigError: ``name`` is unknown (close matches listed) or not read from files.
    """
    spec = dataset_entry(name).spec
    if spec is None:
        raise ConfigError(
            f"Dataset {name!r} is not read from files (nothing to check or score); file-backed "
            f"datasets: {', '.join(file_dataset_names())}."
        )
    return spec


def _check_options(entry: DatasetEntry, options: Mapping[str, object]) -> None:
    valid = entry.options()
    if valid is None:
        return
    unknown = [k for k in options if k not in valid]
    if not unknown:
        return
    close = sorted({m for k in unknown for m in difflib.get_close_matches(k, valid, n=1)})
    hint = f" Did you mean: {', '.join(close)}?" if close else ""
    raise ConfigError(
        f"Dataset {entry.name!r} has no option {', '.join(repr(k) for k in unknown)}.{hint} "
        f"Its options are: {', '.join(valid) or 'none'}. Fix the name in the suite's "
        f"dataset_options (or the keyword arguments of build_dataset)."
    )


def build_dataset(
    name: str, *, split: str, root: str | None = None, **options: object
) -> tuple[Dataset, DatasetInfo]:
    """Build one split of a registered dataset.

    Args:
        name: A registered dataset.
        split: One of its splits.
        root: Its data root (file-backed datasets; ignored by generated ones).
        **options: The dataset's options (see its factory), e.g. ``size``.

    Returns:
        ``(dataset, info)``.

    Raises:
        ConfigError: unknown dataset or option (close matches listed), or a bad option value
            or split.
        DatasetError: the data on disk is missing or broken (file-backed datasets).
    """
    entry = dataset_entry(name)
    _check_options(entry, options)
    return entry.factory(split=split, root=root, **options)
