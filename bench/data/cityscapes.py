"""Cityscapes fine annotations (``gtFine``): 19 evaluated classes, the official train ids.

Cordts et al., "The Cityscapes Dataset for Semantic Urban Scene Understanding", CVPR 2016
(arXiv 1604.01685). The label-id -> train-id table is that of the official
``cityscapesscripts/helpers/labels.py``: 34 label ids of which 19 are evaluated; the others
(unlabeled, ego vehicle, rectification border, out of roi, static, dynamic, ground, parking,
rail track, guard rail, bridge, tunnel, polegroup, caravan, trailer) are ignored.

Layout (the official archives ``leftImg8bit_trainvaltest.zip`` and ``gtFine_trainvaltest.zip``
unpacked side by side): ``leftImg8bit/<split>/<city>/<city>_<seq>_<frame>_leftImg8bit.png`` and
``gtFine/<split>/<city>/<city>_<seq>_<frame>_gtFine_labelIds.png``. The sample id is
``<city>_<seq>_<frame>``. The public test labels are placeholders (all "unlabeled"); the test
split loads but has nothing to score.

Protocol: whole 1024x2048 image by default; sliding window (e.g. 769 crop / 513 stride, or
1024 / 768) via ``protocol={"mode": "slide", ...}``; real-time papers infer at 512x1024 and
upsample (``size=(512, 1024)``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from bench.data.codecs import LabelCodec
from bench.data.file_dataset import register_file_dataset
from bench.data.info import DatasetInfo
from bench.data.pairing import SplitIndex, list_files, pair_folders
from bench.data.problems import Problem
from bench.data.spec import FileDatasetSpec
from bench.data.transforms import EvalProtocol

CLASS_NAMES = (
    "road",
    "sidewalk",
    "building",
    "wall",
    "fence",
    "pole",
    "traffic_light",
    "traffic_sign",
    "vegetation",
    "terrain",
    "sky",
    "person",
    "rider",
    "car",
    "truck",
    "bus",
    "train",
    "motorcycle",
    "bicycle",
)
PALETTE = (
    (128, 64, 128),
    (244, 35, 232),
    (70, 70, 70),
    (102, 102, 156),
    (190, 153, 153),
    (153, 153, 153),
    (250, 170, 30),
    (220, 220, 0),
    (107, 142, 35),
    (152, 251, 152),
    (70, 130, 180),
    (220, 20, 60),
    (255, 0, 0),
    (0, 0, 142),
    (0, 0, 70),
    (0, 60, 100),
    (0, 80, 100),
    (0, 0, 230),
    (119, 11, 32),
)
# label id -> train id of the 19 evaluated classes (cityscapesscripts labels.py).
LABEL_TO_TRAIN = {
    7: 0,
    8: 1,
    11: 2,
    12: 3,
    13: 4,
    17: 5,
    19: 6,
    20: 7,
    21: 8,
    22: 9,
    23: 10,
    24: 11,
    25: 12,
    26: 13,
    27: 14,
    28: 15,
    31: 16,
    32: 17,
    33: 18,
}
IGNORED_LABEL_IDS = tuple(i for i in range(34) if i not in LABEL_TO_TRAIN)
COUNTS = {"train": 2975, "val": 500, "test": 1525}
IMAGE_SUFFIX = "_leftImg8bit"
LABEL_SUFFIX = "_gtFine_labelIds"

LAYOUT = """\
{root}/
  leftImg8bit/{train,val,test}/<city>/<city>_<seq>_<frame>_leftImg8bit.png   RGB, 2048x1024
  gtFine/{train,val,test}/<city>/<city>_<seq>_<frame>_gtFine_labelIds.png    mode L, label ids 0..33
  (2,975 train / 500 val / 1,525 test; other gtFine files (_color, _instanceIds) are not read)"""


def _strip(suffix: str) -> Callable[[str], str | None]:
    def stem(s: str) -> str | None:
        return s[: -len(suffix)] if s.endswith(suffix) else None

    return stem


def _index(root: Path, split: str) -> SplitIndex:
    out = SplitIndex(split)
    image_root, label_root = root / "leftImg8bit" / split, root / "gtFine" / split
    missing = [d for d in (image_root, label_root) if not d.is_dir()]
    if missing:
        out.problems = [SPEC.missing_folder(split, d, root) for d in missing]
        return out
    cities = sorted({p.name for r in (image_root, label_root) for p in r.iterdir() if p.is_dir()})
    for city in cities:
        image_dir, label_dir = image_root / city, label_root / city
        if not image_dir.is_dir() or not label_dir.is_dir():
            present, absent = (
                (label_dir, image_dir) if label_dir.is_dir() else (image_dir, label_dir)
            )
            n = len(list_files(present))
            out.problems.append(
                Problem(
                    "missing_folder",
                    f"cityscapes: split {split!r}: {present} ({n} files) has no counterpart "
                    f"{absent}.",
                    str(absent),
                    split,
                )
            )
            continue
        sub = pair_folders(
            "cityscapes",
            split,
            image_dir,
            label_dir,
            image_stem=_strip(IMAGE_SUFFIX),
            label_stem=_strip(LABEL_SUFFIX),
        )
        out.pairs += sub.pairs
        out.problems += sub.problems
    return out


SPEC = register_file_dataset(
    FileDatasetSpec(
        info=DatasetInfo(
            name="cityscapes",
            title="Cityscapes (fine)",
            num_classes=19,
            class_names=CLASS_NAMES,
            palette=PALETTE,
            ignore_index=255,
            splits=("train", "val", "test"),
            eval_resolution=(1024, 2048),
            citation="Cordts et al., CVPR 2016 (arXiv 1604.01685), gtFine annotations.",
        ),
        description="Cityscapes gtFine: 19 train ids from 34 label ids, 255 ignored, "
        "2,975/500/1,525 images at 2048x1024.",
        layout=LAYOUT,
        codec=LabelCodec.build(
            LABEL_TO_TRAIN,
            ignore_raw=IGNORED_LABEL_IDS,
            description="label ids 0..33 (19 of them evaluated, mapped to train "
            "ids 0..18; the others ignored)",
        ),
        index=_index,
        expected_counts=COUNTS,
        train_crop=(512, 1024),
        protocol=EvalProtocol(),
        notes="labelIds -> trainIds (19 classes); whole 1024x2048 image (or slide 769/513).",
    )
)
