"""Folder pairing: which image goes with which label, and what is unpaired.

A loader's ``index(root, split)`` function (see :class:`~bench.data.spec.FileDatasetSpec`) lists
its image and label folders with :func:`list_files`, pairs them by sample id with
:func:`pair_folders` (optionally restricted to the ids of a split list read by
:func:`read_list`) and returns a :class:`SplitIndex`: the pairs, plus a
:class:`~bench.data.problems.Problem` for every image without a label, label without an image,
or listed id without files.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bench.data.problems import Problem

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")


@dataclass(frozen=True)
class SamplePair:
    """One sample: ``id`` is unique in its split; predictions are matched to it by file name."""

    id: str
    image: Path
    label: Path


@dataclass
class SplitIndex:
    """The samples of one split and the structural problems found while pairing files."""

    split: str
    pairs: list[SamplePair] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)


def list_files(folder: Path, suffixes: Sequence[str] = IMAGE_SUFFIXES) -> dict[str, Path]:
    """The files of ``folder`` with one of ``suffixes`` (case-insensitive), by stem.

    Hidden files (``.name``) are skipped; of two files with one stem, the first by name wins.

    Args:
        folder: An existing folder.
        suffixes: Lower-case suffixes with the dot.

    Returns:
        ``{stem: path}``, sorted by file name.
    """
    out: dict[str, Path] = {}
    for p in sorted(folder.iterdir()):
        if p.is_file() and p.suffix.lower() in suffixes and not p.name.startswith("."):
            out.setdefault(p.stem, p)
    return out


def natural_key(text: str) -> list[object]:
    """Sort key ordering ``2 < 10`` (ISBI's ``0.png .. 29.png``).

    Args:
        text: A sample id or file name.

    Returns:
        Its runs of digits as ints, the text between them as strings.
    """
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", text)]


def pair_folders(
    name: str,
    split: str,
    image_dir: Path,
    label_dir: Path,
    *,
    image_suffixes: Sequence[str] = IMAGE_SUFFIXES,
    label_suffixes: Sequence[str] = (".png",),
    image_stem: Callable[[str], str | None] = lambda s: s,
    label_stem: Callable[[str], str | None] = lambda s: s,
    only: Sequence[str] | None = None,
    list_name: str = "",
) -> SplitIndex:
    """Pair the files of two folders by sample id (file stem, optionally transformed).

    ``image_stem``/``label_stem`` turn a file stem into a sample id (``None`` skips the file,
    e.g. Cityscapes' ``*_gtFine_color.png``). ``only`` restricts the split to the listed ids, in
    that order (from a list file called ``list_name``); listed ids without files are problems.

    Args:
        name: The dataset, for messages.
        split: The split, recorded in the index and its problems.
        image_dir: The folder of images (existing).
        label_dir: The folder of labels (existing).
        image_suffixes: Suffixes of image files.
        label_suffixes: Suffixes of label files.
        image_stem: Image file stem -> sample id (``None``: not an image of the dataset).
        label_stem: Label file stem -> sample id (``None``: not a label of the dataset).
        only: The sample ids of the split, in order (``None``: every paired file, in natural
            order).
        list_name: Where ``only`` came from, for messages.

    Returns:
        The pairs and the problems (unpaired files, listed ids without files).
    """
    index = SplitIndex(split)
    images = {
        k: v
        for s, v in list_files(image_dir, image_suffixes).items()
        if (k := image_stem(s)) is not None
    }
    labels = {
        k: v
        for s, v in list_files(label_dir, label_suffixes).items()
        if (k := label_stem(s)) is not None
    }
    if only is not None:
        wanted = list(dict.fromkeys(only))
        for sid in wanted:
            img, lbl = images.get(sid), labels.get(sid)
            if img is None:
                index.problems.append(
                    Problem(
                        "missing_image",
                        f"{name}: {list_name or 'the split list'} names {sid!r} but {image_dir} has "
                        f"no image {sid}{image_suffixes[0]}.",
                        str(image_dir / sid),
                        split,
                    )
                )
            if lbl is None:
                index.problems.append(
                    Problem(
                        "missing_label",
                        f"{name}: {list_name or 'the split list'} names {sid!r} but {label_dir} has "
                        f"no label {sid}{label_suffixes[0]}.",
                        str(label_dir / sid),
                        split,
                    )
                )
            if img is not None and lbl is not None:
                index.pairs.append(SamplePair(sid, img, lbl))
        return index
    for sid in sorted(images.keys() | labels.keys(), key=natural_key):
        img, lbl = images.get(sid), labels.get(sid)
        if img is not None and lbl is not None:
            index.pairs.append(SamplePair(sid, img, lbl))
        elif img is not None:
            index.problems.append(
                Problem(
                    "missing_label",
                    f"{name}: image {img} has no label (looked for {label_dir / sid}"
                    f"{label_suffixes[0]}).",
                    str(img),
                    split,
                )
            )
        else:
            assert lbl is not None
            index.problems.append(
                Problem(
                    "missing_image",
                    f"{name}: label {lbl} has no image (looked for {image_dir / sid}.*).",
                    str(lbl),
                    split,
                )
            )
    return index


def read_list(path: Path) -> list[str]:
    """Sample ids from a list file: one per line; the first token's base name without suffix.

    Handles plain ids (VOC), ``/SegNet/CamVid/train/x.png /SegNet/CamVid/trainannot/x.png``
    (CamVid), ``/JPEGImages/x.jpg /SegmentationClassAug/x.png`` (DeepLab's train_aug.txt) and
    Windows separators.

    Args:
        path: The list file.

    Returns:
        The ids, in file order (blank lines skipped).
    """
    ids = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        token = line.strip().split()[0] if line.strip() else ""
        if token:
            base = token.replace("\\", "/").rsplit("/", 1)[-1]
            stem = base.rsplit(".", 1)[0] if "." in base else base
            ids.append(stem)
    return ids


def first_existing(root: Path, candidates: Sequence[str]) -> Path | None:
    """The first ``root / c`` that is a folder.

    Args:
        root: The folder to look in.
        candidates: Relative folder paths, in order of preference.

    Returns:
        That folder, or None when none of them is one.
    """
    for c in candidates:
        if (root / c).is_dir():
            return root / c
    return None
