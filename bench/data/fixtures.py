"""Miniature datasets in the official on-disk layouts, written in a second.

For the tests (every layout, then broken on purpose) and for trying ``data check``, ``score``
or a suite without downloading anything::

    from bench.data.fixtures import write_fixture
    root = write_fixture("camvid", "/tmp/mini_camvid")   # then --data-root /tmp/mini_camvid

Images are random noise (JPEG where the real dataset uses JPEG), labels random valid raw values
of the dataset's encoding (including its ignored values), ``size`` pixels (H, W), a few samples
per split (:data:`FIXTURE_COUNTS`). Deterministic for a given seed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from bench.data.voc import voc_colormap
from bench.errors import ConfigError

# Samples per split of each fixture.
FIXTURE_COUNTS: dict[str, dict[str, int]] = {
    "camvid": {"train": 3, "val": 2, "test": 2, "trainval": 5},
    "voc2012": {"train": 3, "val": 2, "trainval": 5},
    "voc2012_aug": {"train": 6, "val": 2},
    "cityscapes": {"train": 3, "val": 2, "test": 2},
    "ade20k": {"train": 3, "val": 2},
    "nyudv2": {"train": 3, "test": 2},
    "sunrgbd": {"train": 3, "test": 2},
    "siftflow": {"train": 4, "test": 2},
    "isbi2012": {"train": 24, "val": 6, "trainval": 30},
}


def _image(rng: np.random.Generator, size: Sequence[int], path: Path, gray: bool = False) -> None:
    shape = (size[0], size[1]) if gray else (size[0], size[1], 3)
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = rng.integers(0, 256, shape, dtype=np.uint8)
    if path.suffix == ".jpg":
        Image.fromarray(arr).save(path, quality=95)
    else:
        Image.fromarray(arr).save(path)


def _label(
    rng: np.random.Generator,
    size: Sequence[int],
    path: Path,
    values: Sequence[int],
    palette: bool = False,
) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = rng.choice(np.asarray(values, dtype=np.uint8), size=(size[0], size[1]))
    im = Image.fromarray(arr)
    if palette:  # VOC's SegmentationClass PNGs are palette images
        im = im.convert("P")
        flat = [c for rgb in voc_colormap(256) for c in rgb]
        im.putpalette(flat)
    im.save(path)


def _camvid(root: Path, rng: np.random.Generator, size: Sequence[int]) -> None:
    n = 0
    for split in ("train", "val", "test"):
        lines = []
        for _ in range(FIXTURE_COUNTS["camvid"][split]):
            name = f"0001TP_{n:06d}.png"
            n += 1
            _image(rng, size, root / split / name)
            _label(rng, size, root / f"{split}annot" / name, range(12))
            lines.append(f"/SegNet/CamVid/{split}/{name} /SegNet/CamVid/{split}annot/{name}")
        (root / f"{split}.txt").write_text("\n".join(lines) + "\n")


def _voc_base(voc: Path, rng: np.random.Generator, size: Sequence[int]) -> dict[str, list[str]]:
    ids = {
        "train": ["2007_000001", "2007_000002", "2007_000003"],
        "val": ["2007_000010", "2007_000011"],
    }
    ids["trainval"] = ids["train"] + ids["val"]
    sets = voc / "ImageSets" / "Segmentation"
    sets.mkdir(parents=True, exist_ok=True)
    for split, names in ids.items():
        (sets / f"{split}.txt").write_text("\n".join(names) + "\n")
    for sid in ids["trainval"]:
        _image(rng, size, voc / "JPEGImages" / f"{sid}.jpg")
        _label(rng, size, voc / "SegmentationClass" / f"{sid}.png", [*range(21), 255], palette=True)
    _image(rng, size, voc / "JPEGImages" / "2008_000099.jpg")  # detection-only image
    return ids


def _voc(root: Path, rng: np.random.Generator, size: Sequence[int]) -> None:
    _voc_base(root / "VOCdevkit" / "VOC2012", rng, size)


def _voc_aug(root: Path, rng: np.random.Generator, size: Sequence[int]) -> None:
    voc = root / "VOCdevkit" / "VOC2012"
    _voc_base(voc, rng, size)
    # SBD covers some VOC train and val images and adds its own; val ones must be dropped.
    sbd = ["2007_000002", "2007_000010", "2008_000100", "2008_000101", "2008_000102"]
    for sid in sbd:
        if not (voc / "JPEGImages" / f"{sid}.jpg").exists():
            _image(rng, size, voc / "JPEGImages" / f"{sid}.jpg")
        _label(rng, size, voc / "SegmentationClassAug" / f"{sid}.png", range(21))


def _cityscapes(root: Path, rng: np.random.Generator, size: Sequence[int]) -> None:
    values = list(range(34))
    for split, city in (("train", "aachen"), ("val", "frankfurt"), ("test", "berlin")):
        for i in range(FIXTURE_COUNTS["cityscapes"][split]):
            sid = f"{city}_{i:06d}_000019"
            _image(rng, size, root / "leftImg8bit" / split / city / f"{sid}_leftImg8bit.png")
            gt = root / "gtFine" / split / city
            _label(rng, size, gt / f"{sid}_gtFine_labelIds.png", values if split != "test" else [0])
            _image(rng, size, gt / f"{sid}_gtFine_color.png")  # not read


def _ade20k(root: Path, rng: np.random.Generator, size: Sequence[int]) -> None:
    base = root / "ADEChallengeData2016"
    for split, folder, tag in (("train", "training", "train"), ("val", "validation", "val")):
        for i in range(FIXTURE_COUNTS["ade20k"][split]):
            sid = f"ADE_{tag}_{i + 1:08d}"
            _image(rng, size, base / "images" / folder / f"{sid}.jpg")
            _label(rng, size, base / "annotations" / folder / f"{sid}.png", range(151))


def _split_folders(k: int, name: str) -> Callable[[Path, np.random.Generator, Sequence[int]], None]:
    def write(root: Path, rng: np.random.Generator, size: Sequence[int]) -> None:
        n = 0
        for split in ("train", "test"):
            for _ in range(FIXTURE_COUNTS[name][split]):
                n += 1
                _image(rng, size, root / split / "image" / f"{n:06d}.png")
                _label(rng, size, root / split / "label" / f"{n:06d}.png", range(k + 1))

    return write


def _siftflow(root: Path, rng: np.random.Generator, size: Sequence[int]) -> None:
    sub = "spatial_envelope_256x256_static_8outdoorcategories"
    names = [
        "coast_arnat59",
        "forest_nat717",
        "highway_a836030",
        "insidecity_a48009",
        "mountain_n44009",
        "street_urb244",
    ]
    for sid in names:
        _image(rng, size, root / "Images" / sub / f"{sid}.jpg")
        _label(rng, size, root / "SemanticLabels" / sub / f"{sid}.png", range(34))
    # The LMSun list style: Windows paths with the folder and suffix.
    (root / "TestSet1.txt").write_text(
        "".join(f"{sub}\\{sid}.jpg\r\n" for sid in names[-FIXTURE_COUNTS["siftflow"]["test"] :])
    )


def _isbi(root: Path, rng: np.random.Generator, size: Sequence[int]) -> None:
    for i in range(30):
        _image(rng, size, root / "train" / "image" / f"{i}.png", gray=True)
        _label(rng, size, root / "train" / "label" / f"{i}.png", (0, 255))


_WRITERS: dict[str, Callable[[Path, np.random.Generator, Sequence[int]], None]] = {
    "camvid": _camvid,
    "voc2012": _voc,
    "voc2012_aug": _voc_aug,
    "cityscapes": _cityscapes,
    "ade20k": _ade20k,
    "nyudv2": _split_folders(40, "nyudv2"),
    "sunrgbd": _split_folders(37, "sunrgbd"),
    "siftflow": _siftflow,
    "isbi2012": _isbi,
}
assert set(_WRITERS) == set(FIXTURE_COUNTS)


def write_fixture(
    name: str, root: str | Path, *, size: Sequence[int] = (12, 16), seed: int = 0
) -> Path:
    """Write a miniature of dataset ``name`` under ``root`` (created); returns ``root``.

    Args:
        name: A file-backed dataset.
        root: The folder to write into (the ``--data-root`` of the miniature).
        size: ``(H, W)`` of every image and label.
        seed: Seed of the random pixels and labels.

    Returns:
        ``root`` as a Path.

    Raises:
        ConfigError: no fixture for ``name``.
    """
    if name not in _WRITERS:
        raise ConfigError(f"No fixture for dataset {name!r}; fixtures: {', '.join(_WRITERS)}.")
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    _WRITERS[name](root, np.random.default_rng(seed), size)
    return root
