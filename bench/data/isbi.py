"""ISBI 2012 EM segmentation challenge, training stack: U-Net's dataset (2 classes).

Arganda-Carreras et al., "Crowdsourcing the creation of image segmentation algorithms for
connectomics", Frontiers in Neuroanatomy 2015 (the ISBI 2012 challenge); used by U-Net
(Ronneberger et al., arXiv 1505.04597). Only the 30 labelled training slices (512x512, one
serial-section TEM stack) are public; here they are in the layout of the zhixuhao/unet
redistribution: ``train/image/{0..29}.png`` (mode L) and ``train/label/{0..29}.png`` (mode L,
0 = membrane, 255 = cell interior).

Classes: 0 = membrane, 1 = cell (label value 255 -> 1). Images are grayscale, repeated to three
channels when read.

Split (fixed, ours: the challenge has no validation set): ``train`` = slices 0..23, ``val`` =
slices 24..29, ``trainval`` = all 30. The val slices are the end of the stack, contiguous, so
they are not interleaved with training slices (neighbouring sections look alike and would leak).
Mean/std are those of the train slices (0..23), measured.

Protocol: whole 512x512 slice. The challenge ranked by warping and Rand errors of membrane maps;
pixel IoU here is a proxy, not the challenge metric.
"""

from __future__ import annotations

from pathlib import Path

from bench.data.codecs import LabelCodec
from bench.data.file_dataset import register_file_dataset
from bench.data.info import DatasetInfo
from bench.data.pairing import SplitIndex, natural_key, pair_folders
from bench.data.spec import FileDatasetSpec
from bench.data.transforms import EvalProtocol

VAL_SLICES = tuple(str(i) for i in range(24, 30))
TRAIN_SLICES = tuple(str(i) for i in range(24))

LAYOUT = """\
{root}/
  train/image/{0..29}.png   30 grayscale 512x512 EM slices
  train/label/{0..29}.png   mode L: 0 = membrane, 255 = cell"""


def _index(root: Path, split: str) -> SplitIndex:
    image_dir, label_dir = root / "train" / "image", root / "train" / "label"
    missing = [d for d in (image_dir, label_dir) if not d.is_dir()]
    if missing:
        return SplitIndex(split, problems=[SPEC.missing_folder(split, d, root) for d in missing])
    index = pair_folders("isbi2012", split, image_dir, label_dir)
    if split != "trainval":
        keep = set(TRAIN_SLICES if split == "train" else VAL_SLICES)
        index.pairs = [p for p in index.pairs if p.id in keep]
    index.pairs.sort(key=lambda p: natural_key(p.id))
    return index


SPEC = register_file_dataset(
    FileDatasetSpec(
        info=DatasetInfo(
            name="isbi2012",
            title="ISBI 2012 EM (training stack)",
            num_classes=2,
            class_names=("membrane", "cell"),
            palette=((0, 0, 0), (255, 255, 255)),
            ignore_index=255,
            mean=(0.4908, 0.4908, 0.4908),
            std=(0.1708, 0.1708, 0.1708),
            splits=("train", "val", "trainval"),
            eval_resolution=(512, 512),
            citation="Arganda-Carreras et al., Front. Neuroanat. 2015 (ISBI 2012 challenge); "
            "training slices as redistributed in zhixuhao/unet (MIT).",
        ),
        description="ISBI 2012 EM stack: membrane vs cell, 30 labelled 512x512 slices "
        "(train 0-23 / val 24-29).",
        layout=LAYOUT,
        codec=LabelCodec.build({0: 0, 255: 1}, description="0 = membrane, 255 = cell"),
        index=_index,
        expected_counts={"train": 24, "val": 6, "trainval": 30},
        train_crop=(512, 512),
        protocol=EvalProtocol(),
        grayscale=True,
        train_splits=("train", "trainval"),
        notes="255 -> 1 (cell), 0 = membrane; whole 512x512 slice; fixed split train 0-23 / val "
        "24-29.",
    )
)
