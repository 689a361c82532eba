"""Scoring predictions made anywhere: a folder of predicted label PNGs against a dataset split.

``python run_bench.py score --dataset camvid --data-root DIR --split test --pred-dir PREDS``

Each sample of the split needs one prediction, ``<pred-dir>/<id>.png`` (the sample id: the
image's file stem, or for Cityscapes ``<city>_<seq>_<frame>``; ``<image stem>.png`` is accepted
too), holding class ids ``0..K-1`` (the dataset's evaluated classes, after its label mapping:
Cityscapes train ids, ADE20K shifted ids, CamVid 0..10) as a single-channel PNG (mode L or P) at
the label's size. Ground truth is read and mapped by the dataset's loader functions and the
metrics come from one dataset-level confusion matrix in :mod:`bench.metrics`: the numbers are
those the harness computes for its own runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from tqdm.auto import tqdm

from bench.data import (
    INDEX_MODES,
    SamplePair,
    dataset_error,
    errors,
    file_dataset_spec,
    label_histogram,
    read_label,
)
from bench.errors import BenchError, MissingFileError
from bench.metrics import ConfusionMatrix, SegMetrics


class PredictionError(BenchError, ValueError):
    """A prediction is missing, unreadable, a colour image, of the wrong size or out of range."""


@dataclass(frozen=True)
class ScoreResult:
    """Metrics of a folder of predictions on one split."""

    dataset: str
    split: str
    pred_dir: str
    num_images: int
    metrics: SegMetrics
    matrix: np.ndarray
    unmatched: list[str] = field(default_factory=list)  # .png files in pred_dir not scored

    def to_dict(self) -> dict[str, Any]:
        """The result as a JSON-ready dict (what ``score --json`` writes)."""
        return {
            "dataset": self.dataset,
            "split": self.split,
            "pred_dir": self.pred_dir,
            "num_images": self.num_images,
            "metrics": self.metrics.to_dict(),
            "confusion_matrix": self.matrix.tolist(),
            "unmatched_files": self.unmatched,
        }


def prediction_candidates(pred_dir: Path, pair: SamplePair) -> list[Path]:
    """Where the prediction of ``pair`` may be, in order of preference.

    Args:
        pred_dir: The folder of predictions.
        pair: The sample.

    Returns:
        ``<pred_dir>/<sample id>.png``, then ``<pred_dir>/<image stem>.png`` when different.
    """
    names = [f"{pair.id}.png", f"{pair.image.stem}.png"]
    return [pred_dir / n for n in dict.fromkeys(names)]


def read_prediction(path: Path, num_classes: int) -> np.ndarray:
    """A predicted label map as a 2-D uint8 array of class ids (checked against the range).

    Args:
        path: The prediction file.
        num_classes: The dataset's class count.

    Returns:
        ``(H, W)`` uint8 class ids.

    Raises:
        PredictionError: unreadable file, a colour image, or values outside
            ``0..num_classes-1``.
    """
    try:
        with Image.open(path) as im:
            if im.mode not in INDEX_MODES:
                raise PredictionError(
                    f"prediction {path} is a colour image (mode {im.mode}); save class ids "
                    f"0..{num_classes - 1} as a single-channel PNG, e.g. "
                    f"PIL.Image.fromarray(pred.astype(numpy.uint8)).save(path)."
                )
            im.load()
            arr = np.array(im)  # a writable copy: torch.from_numpy warns on read-only arrays
    except (OSError, SyntaxError) as exc:
        raise PredictionError(
            f"cannot read prediction {path}: {type(exc).__name__}: {exc}. Write it again as a "
            f"single-channel PNG of class ids."
        ) from None
    if arr.dtype == bool:
        arr = arr.astype(np.uint8)
    if arr.size and (int(arr.max()) >= num_classes or int(arr.min()) < 0):
        bad = np.unique(arr[(arr >= num_classes) | (arr < 0)])
        shown = ", ".join(str(v) for v in bad[:8].tolist())
        raise PredictionError(
            f"prediction {path} has values {shown} outside the class ids 0..{num_classes - 1}. "
            f"Predictions hold the dataset's evaluated class ids (after its label mapping), "
            f"not raw label values or colours."
        )
    return arr.astype(np.uint8, copy=False)


def score_predictions(
    name: str,
    *,
    root: str | Path | None,
    split: str,
    pred_dir: str | Path,
    progress: bool = False,
) -> ScoreResult:
    """Score the predictions in ``pred_dir`` against ``split`` of dataset ``name``.

    Args:
        name: A file-backed dataset.
        root: Its data root.
        split: The split the predictions are for.
        pred_dir: The folder of predictions, one ``<sample id>.png`` per sample.
        progress: Show a progress bar.

    Returns:
        The metrics, the confusion matrix and the ``.png`` files that matched no sample.

    Raises:
        MissingFileError: ``pred_dir`` is not a folder (a MissingDataError, also a
            MissingFileError, for a missing data root or folder).
        ConfigError: an unknown or not file-backed dataset, or an unknown split.
        DatasetError: a broken dataset (unpaired or broken files, invalid label values).
        PredictionError: missing predictions (all counted, the first ones named), or a
            prediction of the wrong size, mode or values (named).
    """
    spec = file_dataset_spec(name)
    pred_dir = Path(pred_dir)
    if not pred_dir.is_dir():
        raise MissingFileError(
            f"--pred-dir {pred_dir} is not a folder. Pass the folder holding one predicted "
            f"label PNG per image of the split, named <sample id>.png."
        )
    data_root = spec.locate(root)
    index = spec.split_index(data_root, split)
    if errors(index.problems):
        raise dataset_error(
            errors(index.problems),
            f"Run `python run_bench.py data check "
            f"--dataset {name} --data-root {root} --split {split}`.",
        )
    found: list[tuple[SamplePair, Path]] = []
    missing: list[str] = []
    for pair in index.pairs:
        path = next((p for p in prediction_candidates(pred_dir, pair) if p.is_file()), None)
        if path is None:
            missing.append(pair.id)
        else:
            found.append((pair, path))
    if missing:
        shown = ", ".join(f"{m}.png" for m in missing[:5])
        raise PredictionError(
            f"{len(missing)} of {len(index.pairs)} images of {name} {split!r} have no prediction "
            f"in {pred_dir} (missing: {shown}{', ...' if len(missing) > 5 else ''}). Name each "
            f"prediction <sample id>.png, e.g. {index.pairs[0].id}.png for {index.pairs[0].image}."
        )
    info = spec.info
    cm = ConfusionMatrix(info.num_classes, ignore_index=info.ignore_index)
    for pair, path in tqdm(
        found, desc=f"score {name} {split}", disable=not progress, leave=False, unit="img"
    ):
        raw = read_label(name, pair.label, spec.codec)
        label_histogram(name, pair.label, raw, spec.codec)
        target = spec.codec.lut[raw]
        pred = read_prediction(path, info.num_classes)
        if pred.shape != target.shape:
            raise PredictionError(
                f"prediction {path} is {pred.shape[1]}x{pred.shape[0]} but the label "
                f"{pair.label} is {target.shape[1]}x{target.shape[0]} (W x H); predictions are "
                f"scored at the label's native size: resize your logits (not the argmax) to it."
            )
        cm.update(torch.from_numpy(pred), torch.from_numpy(target))
    used = {p.resolve() for _, p in found}
    unmatched = sorted(p.name for p in pred_dir.glob("*.png") if p.resolve() not in used)
    return ScoreResult(
        dataset=name,
        split=split,
        pred_dir=str(pred_dir),
        num_images=len(found),
        metrics=cm.compute(info.class_names),
        matrix=cm.matrix.cpu().numpy(),
        unmatched=unmatched,
    )
