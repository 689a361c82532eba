"""Datasets shipped as image and label folders: NYUDv2 (40 classes), SUN RGB-D (37), SIFT Flow (33).

None of the three has one canonical set of index PNGs (NYUDv2 and SUN RGB-D are distributed as
MATLAB files with depth, SIFT Flow's labels are ``.mat``), so each expects the layout documented
below, which the usual conversion scripts produce; labels are index PNGs (mode L or P) where 0 is
"unlabeled" (ignored) and ``1..K`` are the classes (stored shifted down by one: class ids
``0..K-1``). RGB only: depth is not read.

``nyudv2``: Silberman et al., "Indoor Segmentation and Support Inference from RGBD Images",
ECCV 2012; the 40-class mapping of Gupta et al., CVPR 2013, on the standard 795 train / 654 test
split of the 1,449 labelled frames (640x480)::

    <root>/train/image/*.png   795 RGB images (.png or .jpg)
    <root>/train/label/*.png   same file names; 0 = unlabeled, 1..40 = classes
    <root>/test/image/ <root>/test/label/   654

(e.g. ``nyu_depth_v2_labeled.mat`` -> ``images``/``labels`` mapped with Gupta's
``classMapping40.mat``, split with ``splits.mat``; 13- and 894-class variants exist and are a
different dataset.)

``sunrgbd``: Song et al., "SUN RGB-D: A RGB-D Scene Understanding Benchmark Suite", CVPR 2015;
37 classes (NYUDv2's 40 without the three "other" classes), 5,285 train / 5,050 test, sizes vary
by sensor. Same layout as ``nyudv2``: ``<root>/{train,test}/{image,label}/``, labels 0 =
unlabeled, 1..37 = classes.

``siftflow``: Liu, Yuen and Torralba, "Nonparametric Scene Parsing via Label Transfer", PAMI 2011
(LMSun's ``SiftFlowDataset.zip``): 2,688 images of 256x256, 33 semantic classes (the 3 geometric
classes are not loaded), split 2,488 / 200 as in FCN (Long et al., arXiv 1411.4038)::

    <root>/Images/spatial_envelope_256x256_static_8outdoorcategories/*.jpg
    <root>/SemanticLabels/spatial_envelope_256x256_static_8outdoorcategories/*.png
    <root>/test.txt (or TestSet1.txt)      the 200 test ids
    <root>/trainval.txt (or train.txt)     optional: the training ids (default: all others)

The release's labels are ``.mat`` files (variable ``S``: 0 = unlabeled, 1..33); scipy is not a
dependency, so they are converted once to PNGs (the error message gives the command). Classes
cow, desert and moon never occur in the test split: their IoU is undefined (NaN) and left out of
the mean unless a model predicts them.
"""

from __future__ import annotations

import functools
from pathlib import Path

from bench.data.codecs import LabelCodec
from bench.data.file_dataset import register_file_dataset
from bench.data.info import DatasetInfo
from bench.data.pairing import SplitIndex, first_existing, list_files, pair_folders, read_list
from bench.data.problems import Problem
from bench.data.spec import FileDatasetSpec
from bench.data.transforms import EvalProtocol
from bench.data.voc import voc_colormap

NYU40_CLASSES = (
    "wall",
    "floor",
    "cabinet",
    "bed",
    "chair",
    "sofa",
    "table",
    "door",
    "window",
    "bookshelf",
    "picture",
    "counter",
    "blinds",
    "desk",
    "shelves",
    "curtain",
    "dresser",
    "pillow",
    "mirror",
    "floor_mat",
    "clothes",
    "ceiling",
    "books",
    "refrigerator",
    "television",
    "paper",
    "towel",
    "shower_curtain",
    "box",
    "whiteboard",
    "person",
    "night_stand",
    "toilet",
    "sink",
    "lamp",
    "bathtub",
    "bag",
    "otherstructure",
    "otherfurniture",
    "otherprop",
)
SUNRGBD37_CLASSES = NYU40_CLASSES[:37]
SIFTFLOW_CLASSES = (
    "awning",
    "balcony",
    "bird",
    "boat",
    "bridge",
    "building",
    "bus",
    "car",
    "cow",
    "crosswalk",
    "desert",
    "door",
    "fence",
    "field",
    "grass",
    "moon",
    "mountain",
    "person",
    "plant",
    "pole",
    "river",
    "road",
    "rock",
    "sand",
    "sea",
    "sidewalk",
    "sign",
    "sky",
    "staircase",
    "streetlight",
    "sun",
    "tree",
    "window",
)

_SPLIT_FOLDERS_LAYOUT = """\
{root}/
  train/image/*.png    {n_train} RGB images (.png or .jpg)
  train/label/*.png    same file names, mode L/P: 0 = unlabeled (ignored), 1..{k} = classes
  test/image/  test/label/    {n_test} images / labels"""


def _split_folders_index(root: Path, split: str, *, name: str) -> SplitIndex:
    spec = SPECS[name]
    image_dir, label_dir = root / split / "image", root / split / "label"
    missing = [d for d in (image_dir, label_dir) if not d.is_dir()]
    if missing:
        return SplitIndex(split, problems=[spec.missing_folder(split, d, root) for d in missing])
    return pair_folders(name, split, image_dir, label_dir)


def _folder_spec(
    name: str,
    title: str,
    classes: tuple[str, ...],
    counts: dict[str, int],
    resolution: tuple[int, int] | None,
    citation: str,
    description: str,
) -> FileDatasetSpec:
    k = len(classes)
    return FileDatasetSpec(
        info=DatasetInfo(
            name=name,
            title=title,
            num_classes=k,
            class_names=classes,
            palette=voc_colormap(k + 1)[1:],
            ignore_index=255,
            splits=("train", "test"),
            eval_resolution=resolution,
            citation=citation,
        ),
        description=description,
        layout=_SPLIT_FOLDERS_LAYOUT.replace("{n_train}", f"{counts['train']:,}")
        .replace("{n_test}", f"{counts['test']:,}")
        .replace("{k}", str(k)),
        codec=LabelCodec.shifted(
            k, description=f"0 = unlabeled (ignored), 1..{k} = classes 0..{k - 1}, 255 ignored"
        ),
        index=functools.partial(_split_folders_index, name=name),  # picklable
        expected_counts=counts,
        train_crop=(480, 640),
        protocol=EvalProtocol(),
        notes="0 = unlabeled ignored, labels shifted by -1; whole image at native size.",
    )


SPECS: dict[str, FileDatasetSpec] = {}

SPECS["nyudv2"] = register_file_dataset(
    _folder_spec(
        "nyudv2",
        "NYU Depth v2 (40 classes)",
        NYU40_CLASSES,
        {"train": 795, "test": 654},
        (480, 640),
        "Silberman et al., ECCV 2012; 40-class mapping of Gupta et al., CVPR 2013.",
        "NYUDv2, 40 classes (Gupta et al.), 795 train / 654 test at 640x480; image/label folders.",
    )
)

SPECS["sunrgbd"] = register_file_dataset(
    _folder_spec(
        "sunrgbd",
        "SUN RGB-D (37 classes)",
        SUNRGBD37_CLASSES,
        {"train": 5285, "test": 5050},
        None,
        "Song et al., CVPR 2015.",
        "SUN RGB-D, 37 classes, 5,285 train / 5,050 test, sizes vary; image/label folders.",
    )
)


# -- SIFT Flow ----------------------------------------------------------------------------------

SIFTFLOW_SUBDIR = "spatial_envelope_256x256_static_8outdoorcategories"
SIFTFLOW_TEST_LISTS = ("test.txt", "TestSet1.txt")
SIFTFLOW_TRAIN_LISTS = ("trainval.txt", "train.txt")
SIFTFLOW_LAYOUT = """\
{root}/                  (SiftFlowDataset, LMSun release)
  Images/spatial_envelope_256x256_static_8outdoorcategories/*.jpg          2,688 RGB, 256x256
  SemanticLabels/spatial_envelope_256x256_static_8outdoorcategories/*.png  index PNGs converted
        from the release's .mat (S): 0 = unlabeled (ignored), 1..33 = classes
  test.txt (or TestSet1.txt)        the 200 test ids (FCN's split)
  trainval.txt (or train.txt)       optional: the 2,488 training ids (default: all others)"""


def _siftflow_mat_problem(mat_dir: Path, png_dir: Path, split: str) -> Problem:
    cmd = (
        'python -c "import pathlib, numpy as np, scipy.io; from PIL import Image; '
        f"src = pathlib.Path('{mat_dir}'); dst = pathlib.Path('{png_dir}'); "
        "dst.mkdir(parents=True, exist_ok=True); [Image.fromarray(scipy.io.loadmat(f)['S']"
        ".astype(np.uint8)).save(dst / (f.stem + '.png')) for f in sorted(src.glob('*.mat'))]\""
    )
    return Problem(
        "mat_labels",
        f"siftflow: {mat_dir} holds the release's .mat labels, not PNGs. Reading .mat files "
        f"needs scipy, which is not a dependency of semseg-bench; convert them once to index "
        f"PNGs (0 = unlabeled, 1..33) with scipy installed:\n  {cmd}\n"
        f"then run `python run_bench.py data check --dataset siftflow` again.",
        str(mat_dir),
        split,
    )


def _siftflow_index(root: Path, split: str) -> SplitIndex:
    spec = SPECS["siftflow"]
    out = SplitIndex(split)
    image_dir = first_existing(root, (f"Images/{SIFTFLOW_SUBDIR}", "Images"))
    label_dir = first_existing(root, (f"SemanticLabels/{SIFTFLOW_SUBDIR}", "SemanticLabels"))
    if image_dir is None:
        out.problems.append(spec.missing_folder(split, root / "Images" / SIFTFLOW_SUBDIR, root))
    if label_dir is None:
        out.problems.append(
            spec.missing_folder(split, root / "SemanticLabels" / SIFTFLOW_SUBDIR, root)
        )
    elif not list_files(label_dir, (".png",)) and next(label_dir.glob("*.mat"), None):
        out.problems.append(_siftflow_mat_problem(label_dir, label_dir, split))
    test_list = next((root / n for n in SIFTFLOW_TEST_LISTS if (root / n).is_file()), None)
    if test_list is None:
        out.problems.append(
            Problem(
                "missing_list",
                f"siftflow: no test list ({' or '.join(str(root / n) for n in SIFTFLOW_TEST_LISTS)})"
                f"; it defines the 200-image test split (and so the training split). Expected "
                f"layout:\n{spec.layout_for(root)}",
                str(root / SIFTFLOW_TEST_LISTS[0]),
                split,
            )
        )
    if out.problems:
        return out
    assert image_dir is not None and label_dir is not None and test_list is not None
    test_ids = read_list(test_list)
    if split == "test":
        ids = test_ids
        list_name = str(test_list)
    else:
        train_list = next((root / n for n in SIFTFLOW_TRAIN_LISTS if (root / n).is_file()), None)
        if train_list is not None:
            ids, list_name = read_list(train_list), str(train_list)
        else:
            held_out = set(test_ids)
            ids = [s for s in list_files(image_dir, (".jpg", ".jpeg", ".png")) if s not in held_out]
            list_name = f"the images of {image_dir} not in {test_list}"
    return pair_folders(
        "siftflow",
        split,
        image_dir,
        label_dir,
        image_suffixes=(".jpg", ".jpeg", ".png"),
        only=ids,
        list_name=list_name,
    )


SPECS["siftflow"] = register_file_dataset(
    FileDatasetSpec(
        info=DatasetInfo(
            name="siftflow",
            title="SIFT Flow (33 semantic classes)",
            num_classes=33,
            class_names=SIFTFLOW_CLASSES,
            palette=voc_colormap(34)[1:],
            ignore_index=255,
            splits=("train", "test"),
            eval_resolution=(256, 256),
            citation="Liu, Yuen and Torralba, PAMI 2011 (LMSun SiftFlowDataset); split of FCN.",
        ),
        description="SIFT Flow: 33 semantic classes, 2,488 train / 200 test at 256x256.",
        layout=SIFTFLOW_LAYOUT,
        codec=LabelCodec.shifted(
            33, description="0 = unlabeled (ignored), 1..33 = classes 0..32, 255 ignored"
        ),
        index=_siftflow_index,
        expected_counts={"train": 2488, "test": 200},
        train_crop=(256, 256),
        protocol=EvalProtocol(),
        notes="0 ignored, labels shifted by -1; whole 256x256 image; cow/desert/moon absent from "
        "test.",
    )
)
