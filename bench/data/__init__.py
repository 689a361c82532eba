"""Datasets, registered by name. Importing this package registers the built-in ones.

``synthetic`` is generated; the others read the official on-disk layouts: camvid, voc2012,
voc2012_aug, cityscapes, ade20k, nyudv2, sunrgbd, siftflow, isbi2012.

Modules, from the bottom up (each imports only those above it):

- :mod:`~bench.data.problems`: :class:`Problem`, :class:`DatasetError`, :class:`MissingDataError`.
- :mod:`~bench.data.codecs`: :class:`LabelCodec` (raw label values -> class ids).
- :mod:`~bench.data.info`: :class:`DatasetInfo` (classes, palette, normalisation, splits).
- :mod:`~bench.data.transforms`: training augmentation and the evaluation protocol.
- :mod:`~bench.data.decoding`: reading image and label files, the problems a file can have.
- :mod:`~bench.data.pairing`: pairing image and label folders into a :class:`SplitIndex`.
- :mod:`~bench.data.spec`: :class:`FileDatasetSpec`, the description of an on-disk dataset.
- :mod:`~bench.data.verify`: checks of one sample against its spec.
- :mod:`~bench.data.registry`: the one dataset registry (name -> factory, description, spec).
- :mod:`~bench.data.file_dataset`: :class:`SegmentationFiles` and
  :func:`register_file_dataset`.
- one module per dataset family (``synthetic``, ``camvid``, ``voc``, ``cityscapes``,
  ``ade20k``, ``folders``, ``isbi``), :mod:`~bench.data.check` (``data check``) and
  :mod:`~bench.data.fixtures` (miniature layouts).
"""

from bench.data.codecs import LabelCodec
from bench.data.decoding import (
    INDEX_MODES,
    class_histogram,
    label_histogram,
    read_image,
    read_label,
)
from bench.data.file_dataset import SegmentationFiles, register_file_dataset
from bench.data.info import DatasetInfo
from bench.data.pairing import (
    SamplePair,
    SplitIndex,
    first_existing,
    list_files,
    natural_key,
    pair_folders,
    read_list,
)
from bench.data.problems import DatasetError, MissingDataError, Problem, dataset_error, errors
from bench.data.registry import (
    DatasetEntry,
    build_dataset,
    dataset_description,
    dataset_entry,
    dataset_names,
    file_dataset_names,
    file_dataset_spec,
    register_dataset,
)
from bench.data.spec import FileDatasetSpec
from bench.data.verify import PairStats, check_pair, header_problems

# The built-in datasets, registered in this order (the order of `list datasets`).
from bench.data import synthetic  # noqa: E402,F401  isort: skip
from bench.data import camvid  # noqa: E402,F401  isort: skip
from bench.data import voc  # noqa: E402,F401  isort: skip
from bench.data import cityscapes  # noqa: E402,F401  isort: skip
from bench.data import ade20k  # noqa: E402,F401  isort: skip
from bench.data import folders  # noqa: E402,F401  isort: skip
from bench.data import isbi  # noqa: E402,F401  isort: skip
from bench.data.voc import voc_colormap  # noqa: E402  isort: skip

__all__ = [
    "INDEX_MODES",
    "DatasetEntry",
    "DatasetError",
    "DatasetInfo",
    "FileDatasetSpec",
    "LabelCodec",
    "MissingDataError",
    "PairStats",
    "Problem",
    "SamplePair",
    "SegmentationFiles",
    "SplitIndex",
    "build_dataset",
    "check_pair",
    "class_histogram",
    "dataset_description",
    "dataset_entry",
    "dataset_error",
    "dataset_names",
    "errors",
    "file_dataset_names",
    "file_dataset_spec",
    "first_existing",
    "header_problems",
    "label_histogram",
    "list_files",
    "natural_key",
    "pair_folders",
    "read_image",
    "read_label",
    "read_list",
    "register_dataset",
    "register_file_dataset",
    "voc_colormap",
]
