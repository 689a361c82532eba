"""ADE20K as the MIT Scene Parsing benchmark (``ADEChallengeData2016``): 150 classes.

Zhou et al., "Scene Parsing through ADE20K Dataset", CVPR 2017. Class names are the short names
of the release's ``objectInfo150`` (as mmsegmentation lists them).

Layout (``ADEChallengeData2016.zip`` unpacked; the root may be that folder or its parent):
``images/{training,validation}/ADE_*_<n>.jpg`` and ``annotations/{training,validation}/*.png``
(mode L, 0 = "other objects", 1..150 = classes). Splits: ``train`` (training, 20,210) and
``val`` (validation, 2,000); the test images have no public labels.

Protocol: label 0 is ignored and every other label is shifted down by one (mmsegmentation's
``reduce_zero_label``); images vary in size: the standard evaluation resizes the image to a
short side of 512 (aspect ratio kept), runs the whole image and scores at the label's native size
(``protocol={"scales": [0.5, 0.75, 1.0, 1.25, 1.5, 1.75], "flip": True}`` is the usual
multi-scale variant). Training: the image is fitted into a 512x2048 box, rescaled by 0.5-2.0 and
cropped to 512x512. The palette is generated (VOC colour map), for figures only.
"""

from __future__ import annotations

from pathlib import Path

from bench.data.codecs import LabelCodec
from bench.data.file_dataset import register_file_dataset
from bench.data.info import DatasetInfo
from bench.data.pairing import SplitIndex, pair_folders
from bench.data.spec import FileDatasetSpec
from bench.data.transforms import EvalProtocol
from bench.data.voc import voc_colormap

# fmt: off
CLASS_NAMES = (
    "wall", "building", "sky", "floor", "tree", "ceiling", "road", "bed", "windowpane", "grass",
    "cabinet", "sidewalk", "person", "earth", "door", "table", "mountain", "plant", "curtain",
    "chair", "car", "water", "painting", "sofa", "shelf", "house", "sea", "mirror", "rug", "field",
    "armchair", "seat", "fence", "desk", "rock", "wardrobe", "lamp", "bathtub", "railing",
    "cushion", "base", "box", "column", "signboard", "chest of drawers", "counter", "sand", "sink",
    "skyscraper", "fireplace", "refrigerator", "grandstand", "path", "stairs", "runway", "case",
    "pool table", "pillow", "screen door", "stairway", "river", "bridge", "bookcase", "blind",
    "coffee table", "toilet", "flower", "book", "hill", "bench", "countertop", "stove", "palm",
    "kitchen island", "computer", "swivel chair", "boat", "bar", "arcade machine", "hovel", "bus",
    "towel", "light", "truck", "tower", "chandelier", "awning", "streetlight", "booth",
    "television receiver", "airplane", "dirt track", "apparel", "pole", "land", "bannister",
    "escalator", "ottoman", "bottle", "buffet", "poster", "stage", "van", "ship", "fountain",
    "conveyer belt", "canopy", "washer", "plaything", "swimming pool", "stool", "barrel", "basket",
    "waterfall", "tent", "bag", "minibike", "cradle", "oven", "ball", "food", "step", "tank",
    "trade name", "microwave", "pot", "animal", "bicycle", "lake", "dishwasher", "screen",
    "blanket", "sculpture", "hood", "sconce", "vase", "traffic light", "tray", "ashcan", "fan",
    "pier", "crt screen", "plate", "monitor", "bulletin board", "shower", "radiator", "glass",
    "clock", "flag",
)
# fmt: on
FOLDERS = {"train": "training", "val": "validation"}
COUNTS = {"train": 20210, "val": 2000}

LAYOUT = """\
{root}/                  (ADEChallengeData2016, or the folder holding it)
  images/training/*.jpg        20,210 images (sizes vary)
  images/validation/*.jpg      2,000
  annotations/training/*.png   mode L: 0 = other (ignored), 1..150 = classes
  annotations/validation/*.png"""


def _resolve(root: Path) -> Path:
    nested = root / "ADEChallengeData2016"
    return nested if not (root / "images").is_dir() and nested.is_dir() else root


def _index(root: Path, split: str) -> SplitIndex:
    image_dir = root / "images" / FOLDERS[split]
    label_dir = root / "annotations" / FOLDERS[split]
    missing = [d for d in (image_dir, label_dir) if not d.is_dir()]
    if missing:
        return SplitIndex(split, problems=[SPEC.missing_folder(split, d, root) for d in missing])
    return pair_folders("ade20k", split, image_dir, label_dir, image_suffixes=(".jpg", ".jpeg"))


SPEC = register_file_dataset(
    FileDatasetSpec(
        info=DatasetInfo(
            name="ade20k",
            title="ADE20K (SceneParsing 150)",
            num_classes=150,
            class_names=CLASS_NAMES,
            palette=voc_colormap(151)[1:],
            ignore_index=255,
            splits=("train", "val"),
            eval_resolution=None,
            citation="Zhou et al., CVPR 2017 (ADEChallengeData2016, MIT Scene Parsing).",
        ),
        description="ADE20K SceneParsing: 150 classes (0 = other, ignored; labels shifted by one), "
        "20,210 train / 2,000 val.",
        layout=LAYOUT,
        codec=LabelCodec.shifted(150, description="0 = other (ignored), 1..150 = classes 0..149"),
        index=_index,
        expected_counts=COUNTS,
        train_crop=(512, 512),
        scale_base=(512, 2048),
        protocol=EvalProtocol(short_side=512),
        resolve_root=_resolve,
        notes="0 ignored, labels shifted by -1; short side 512, whole image.",
    )
)
