"""Datasets, registered by name. Importing this package registers the built-in ones.

``synthetic`` is generated; the others read the official on-disk layouts (``bench.data.files``):
camvid, voc2012, voc2012_aug, cityscapes, ade20k, nyudv2, sunrgbd, siftflow, isbi2012.
"""

from bench.data.base import (
    DatasetInfo,
    build_dataset,
    dataset_description,
    dataset_names,
    register_dataset,
)

from bench.data import synthetic  # noqa: E402,F401  isort: skip
from bench.data import camvid  # noqa: E402,F401  isort: skip
from bench.data import voc  # noqa: E402,F401  isort: skip
from bench.data import cityscapes  # noqa: E402,F401  isort: skip
from bench.data import ade20k  # noqa: E402,F401  isort: skip
from bench.data import folders  # noqa: E402,F401  isort: skip
from bench.data import isbi  # noqa: E402,F401  isort: skip
from bench.data.files import (  # noqa: E402  isort: skip
    DatasetError,
    FileDatasetSpec,
    file_dataset_names,
    file_dataset_spec,
)

__all__ = [
    "DatasetError",
    "DatasetInfo",
    "FileDatasetSpec",
    "build_dataset",
    "dataset_description",
    "dataset_names",
    "file_dataset_names",
    "file_dataset_spec",
    "register_dataset",
]
