"""Datasets, registered by name. Importing this package registers the built-in ones."""

from bench.data.base import (
    DatasetInfo,
    build_dataset,
    dataset_description,
    dataset_names,
    register_dataset,
)

from bench.data import synthetic  # noqa: E402,F401  isort: skip

__all__ = [
    "DatasetInfo",
    "build_dataset",
    "dataset_description",
    "dataset_names",
    "register_dataset",
]
