"""PASCAL VOC 2012 segmentation (``voc2012``) and its SBD-augmented training set (``voc2012_aug``).

Everingham et al., "The PASCAL Visual Object Classes Challenge: A Retrospective", IJCV 2015;
augmented labels from SBD (Hariharan et al., "Semantic contours from inverse detectors", ICCV
2011), used by FCN, DeepLab, PSPNet and most later VOC results.

Layout (the official devkit; the root may be the folder holding ``VOCdevkit/``, ``VOCdevkit``
itself or ``VOCdevkit/VOC2012``): ``JPEGImages/*.jpg``, ``SegmentationClass/*.png`` (palette PNGs
whose indices are the class ids: 0 background, 1..20 objects, 255 boundary/"difficult" =
ignored) and ``ImageSets/Segmentation/{train,val,trainval}.txt``. The test labels are not
public: there is no test split.

``voc2012_aug``: the 10,582-image training set is SBD's 11,355 images plus VOC train, minus every
VOC val image (SBD overlaps VOC val; training on those images would inflate val scores, which is
why FCN reported on "seg11valid"). Labels come from ``SegmentationClassAug/<id>.png`` (the SBD
``.mat`` files converted to index PNGs, as in the widely shared ``SegmentationClassAug.zip``), or
``SegmentationClass/<id>.png`` for VOC images missing there. The training ids come from
``ImageSets/Segmentation/train_aug.txt`` (or ``aug.txt``) when present, else from the files; VOC
val ids are removed in both cases (a list that contains them gets a warning). SBD's ``.mat``
files are not read (scipy is not a dependency): the error message gives the one-line conversion.
Its val split is VOC 2012 val.

Protocol: whole image at native size (at most 500x500, sizes vary: evaluate with batch size 1).
"""

from __future__ import annotations

from pathlib import Path

from bench.data.codecs import LabelCodec
from bench.data.file_dataset import register_file_dataset
from bench.data.info import DatasetInfo
from bench.data.pairing import SamplePair, SplitIndex, list_files, pair_folders, read_list
from bench.data.problems import Problem
from bench.data.spec import FileDatasetSpec
from bench.data.transforms import EvalProtocol

CLASS_NAMES = (
    "background",
    "aeroplane",
    "bicycle",
    "bird",
    "boat",
    "bottle",
    "bus",
    "car",
    "cat",
    "chair",
    "cow",
    "diningtable",
    "dog",
    "horse",
    "motorbike",
    "person",
    "pottedplant",
    "sheep",
    "sofa",
    "train",
    "tvmonitor",
)
COUNTS = {"train": 1464, "val": 1449, "trainval": 2913}
AUG_COUNTS = {"train": 10582, "val": 1449}
AUG_LISTS = ("train_aug.txt", "aug.txt")
_SBD_MAT_DIRS = (
    "SegmentationClassAug",
    "benchmark_RELEASE/dataset/cls",
    "SBD/dataset/cls",
    "SBD/cls",
    "dataset/cls",
    "cls",
)

LAYOUT = """\
{root}/                  (or a folder holding VOCdevkit/VOC2012)
  JPEGImages/*.jpg                      images
  SegmentationClass/*.png               2,913 labels: palette PNGs, 0..20 classes, 255 ignored
  ImageSets/Segmentation/train.txt      1,464 ids
  ImageSets/Segmentation/val.txt        1,449 ids
  ImageSets/Segmentation/trainval.txt   2,913 ids"""

AUG_LAYOUT = (
    LAYOUT
    + """
  SegmentationClassAug/*.png            SBD labels as index PNGs (0..20), for the 10,582 train set
  ImageSets/Segmentation/train_aug.txt  optional list of the training ids"""
)


def voc_colormap(n: int) -> tuple[tuple[int, int, int], ...]:
    """The PASCAL VOC colour map: class id ``i`` -> its bits interleaved into (r, g, b).

    Also the palette (for figures) of the datasets without an official one.

    Args:
        n: Number of colours (class ids ``0..n-1``).

    Returns:
        ``n`` colours as ``(r, g, b)`` tuples of 0..255.
    """
    colours = []
    for i in range(n):
        r = g = b = 0
        c = i
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        colours.append((r, g, b))
    return tuple(colours)


def _resolve(root: Path) -> Path:
    for cand in (root, root / "VOCdevkit" / "VOC2012", root / "VOC2012"):
        if (cand / "JPEGImages").is_dir():
            return cand
    return root


def _check_dirs(spec: FileDatasetSpec, root: Path, split: str, dirs: list[Path]) -> list[Problem]:
    return [spec.missing_folder(split, d, root) for d in dirs if not d.is_dir()]


def _voc_index(spec: FileDatasetSpec, root: Path, split: str) -> SplitIndex:
    out = SplitIndex(split)
    images, labels = root / "JPEGImages", root / "SegmentationClass"
    listing = root / "ImageSets" / "Segmentation" / f"{split}.txt"
    out.problems = _check_dirs(spec, root, split, [images, labels])
    if not listing.is_file():
        out.problems.append(
            Problem(
                "missing_list",
                f"{spec.name}: split {split!r}: list file {listing} not found. "
                f"Expected layout:\n{spec.layout_for(root)}",
                str(listing),
                split,
            )
        )
    if out.problems:
        return out
    return pair_folders(
        spec.name,
        split,
        images,
        labels,
        image_suffixes=(".jpg", ".jpeg"),
        only=read_list(listing),
        list_name=str(listing),
    )


def _index(root: Path, split: str) -> SplitIndex:
    return _voc_index(SPEC, root, split)


def _mat_problem(root: Path, mat_dir: Path) -> Problem:
    aug = root / "SegmentationClassAug"
    cmd = (
        'python -c "import pathlib, numpy as np, scipy.io; from PIL import Image; '
        f"src = pathlib.Path('{mat_dir}'); dst = pathlib.Path('{aug}'); "
        "dst.mkdir(exist_ok=True); [Image.fromarray(scipy.io.loadmat(f, squeeze_me=True, "
        "struct_as_record=False)['GTcls'].Segmentation.astype(np.uint8)).save(dst / (f.stem + "
        "'.png')) for f in sorted(src.glob('*.mat'))]\""
    )
    return Problem(
        "mat_labels",
        f"voc2012_aug: found SBD .mat labels in {mat_dir} but no SegmentationClassAug/*.png. "
        f"Reading .mat files needs scipy, which is not a dependency of semseg-bench; convert them "
        f"once to index PNGs (values 0..20) with scipy installed:\n  {cmd}\n"
        f"then run `python run_bench.py data check --dataset voc2012_aug` again.",
        str(mat_dir),
        "train",
    )


def _find_mats(root: Path) -> Path | None:
    for base in (root, root.parent, root.parent.parent):
        for rel in _SBD_MAT_DIRS:
            d = base / rel
            if d.is_dir() and next(d.glob("*.mat"), None) is not None:
                return d
    return None


def _aug_index(root: Path, split: str) -> SplitIndex:
    if split != "train":
        return _voc_index(AUG_SPEC, root, split)
    out = SplitIndex(split)
    images, voc_labels = root / "JPEGImages", root / "SegmentationClass"
    aug = root / "SegmentationClassAug"
    seg_sets = root / "ImageSets" / "Segmentation"
    out.problems = _check_dirs(AUG_SPEC, root, split, [images, voc_labels])
    aug_pngs = list_files(aug, (".png",)) if aug.is_dir() else {}
    if not aug_pngs:
        mats = _find_mats(root)
        out.problems.append(
            _mat_problem(root, mats) if mats else AUG_SPEC.missing_folder(split, aug, root)
        )
    for name in ("train.txt", "val.txt"):
        if not (seg_sets / name).is_file():
            out.problems.append(
                Problem(
                    "missing_list",
                    f"voc2012_aug: list file {seg_sets / name} not found (needed to "
                    f"build the training set without VOC val). Expected layout:\n"
                    f"{AUG_SPEC.layout_for(root)}",
                    str(seg_sets / name),
                    split,
                )
            )
    if out.problems:
        return out
    val = set(read_list(seg_sets / "val.txt"))
    listing = next((seg_sets / n for n in AUG_LISTS if (seg_sets / n).is_file()), None)
    if listing is not None:
        ids = list(dict.fromkeys(read_list(listing)))
        dropped = [i for i in ids if i in val]
        if dropped:
            out.problems.append(
                Problem(
                    "excluded",
                    f"voc2012_aug: {listing} lists {len(dropped)} VOC 2012 val images (e.g. "
                    f"{', '.join(dropped[:3])}); they are excluded from training so val stays "
                    f"unseen.",
                    str(listing),
                    split,
                    severity="warning",
                )
            )
    else:
        ids = sorted(set(aug_pngs) | set(read_list(seg_sets / "train.txt")))
    voc_pngs = list_files(voc_labels, (".png",))
    jpgs = list_files(images, (".jpg", ".jpeg"))
    for sid in ids:
        if sid in val:
            continue
        img = jpgs.get(sid)
        lbl = aug_pngs.get(sid) or voc_pngs.get(sid)
        if img is None:
            out.problems.append(
                Problem(
                    "missing_image",
                    f"voc2012_aug: training id {sid!r} has no image {images / sid}.jpg.",
                    str(images / f"{sid}.jpg"),
                    split,
                )
            )
        if lbl is None:
            out.problems.append(
                Problem(
                    "missing_label",
                    f"voc2012_aug: training id {sid!r} has no label (looked for "
                    f"{aug / sid}.png and {voc_labels / sid}.png).",
                    str(aug / f"{sid}.png"),
                    split,
                )
            )
        if img is not None and lbl is not None:
            out.pairs.append(SamplePair(sid, img, lbl))
    return out


_INFO = dict(
    num_classes=21,
    class_names=CLASS_NAMES,
    palette=voc_colormap(21),
    ignore_index=255,
    eval_resolution=None,
)
_CODEC = LabelCodec.identity(21, description="0 = background, 1..20 = classes, 255 = ignored")

SPEC = register_file_dataset(
    FileDatasetSpec(
        info=DatasetInfo(
            name="voc2012",
            title="PASCAL VOC 2012",
            splits=("train", "val", "trainval"),
            citation="Everingham et al., IJCV 2015 (PASCAL VOC 2012 segmentation).",
            **_INFO,
        ),
        description="PASCAL VOC 2012 segmentation: 20 classes + background, 255 ignored, "
        "1,464 train / 1,449 val.",
        layout=LAYOUT,
        codec=_CODEC,
        index=_index,
        expected_counts=COUNTS,
        train_crop=(512, 512),
        protocol=EvalProtocol(),
        train_splits=("train", "trainval"),
        resolve_root=_resolve,
        notes="255 (object boundaries, difficult) ignored; whole image at native size.",
    )
)

AUG_SPEC = register_file_dataset(
    FileDatasetSpec(
        info=DatasetInfo(
            name="voc2012_aug",
            title="PASCAL VOC 2012 + SBD (train_aug)",
            splits=("train", "val"),
            citation="Everingham et al., IJCV 2015; SBD: Hariharan et al., ICCV 2011.",
            **_INFO,
        ),
        description="VOC 2012 with SBD labels: 10,582 train (VOC val removed) / 1,449 val.",
        layout=AUG_LAYOUT,
        codec=_CODEC,
        index=_aug_index,
        expected_counts=AUG_COUNTS,
        train_crop=(512, 512),
        protocol=EvalProtocol(),
        resolve_root=_resolve,
        notes="Training never includes a VOC val image; whole image at native size.",
    )
)
