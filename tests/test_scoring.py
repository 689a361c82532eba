"""Tests for bench.scoring and `run_bench.py score`: predictions from anywhere, same metrics."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from bench.data import DatasetError, build_dataset
from bench.data.fixtures import write_fixture
from bench.errors import BenchError, ConfigError, MissingFileError
from bench.metrics import ConfusionMatrix
from bench.scoring import PredictionError, score_predictions
from tests.factories import run_cli


def _write_preds(ds, folder: Path, make, name=lambda pair: pair.id) -> list[np.ndarray]:
    folder.mkdir(parents=True, exist_ok=True)
    preds = []
    for i, pair in enumerate(ds.pairs):
        pred = make(i, ds.label(i)).astype(np.uint8)
        Image.fromarray(pred).save(folder / f"{name(pair)}.png")
        preds.append(pred)
    return preds


def _score_camvid_test(camvid: Path, pred_dir: object) -> list[object]:
    """``score`` of the CamVid fixture's test split from ``pred_dir``."""
    return [
        "score",
        "--dataset",
        "camvid",
        "--data-root",
        camvid,
        "--split",
        "test",
        "--pred-dir",
        pred_dir,
    ]


def test_perfect_predictions_score_one(camvid, tmp_path):
    ds, info = build_dataset("camvid", split="test", root=camvid)
    _write_preds(ds, tmp_path / "p", lambda i, lab: np.where(lab == 255, 0, lab))
    result = score_predictions("camvid", root=camvid, split="test", pred_dir=tmp_path / "p")
    assert result.num_images == 2
    assert result.metrics.pixel_acc == 1.0 and result.metrics.miou == 1.0
    assert result.unmatched == []


def test_scores_equal_the_confusion_matrix_of_bench_metrics(camvid, tmp_path):
    ds, info = build_dataset("camvid", split="trainval", root=camvid, augment=False)
    rng = np.random.default_rng(0)
    preds = _write_preds(ds, tmp_path / "p", lambda i, lab: rng.integers(0, 11, lab.shape))
    cm = ConfusionMatrix(info.num_classes, ignore_index=255)
    for i, pred in enumerate(preds):
        cm.update(torch.from_numpy(pred), torch.from_numpy(ds.label(i)))
    expected = cm.compute(info.class_names)
    result = score_predictions("camvid", root=camvid, split="trainval", pred_dir=tmp_path / "p")
    assert np.array_equal(result.matrix, cm.matrix.numpy())
    assert result.metrics == expected
    assert 0 < result.metrics.miou < 0.5


def test_cityscapes_predictions_are_train_ids_named_by_id_or_image_stem(tmp_path):
    root = write_fixture("cityscapes", tmp_path / "cs")
    ds, _ = build_dataset("cityscapes", split="val", root=root)
    _write_preds(
        ds,
        tmp_path / "p",
        lambda i, lab: np.where(lab == 255, 0, lab),
        name=lambda pair: pair.image.stem,
    )  # <city>_<seq>_<frame>_leftImg8bit.png
    result = score_predictions("cityscapes", root=root, split="val", pred_dir=tmp_path / "p")
    assert result.metrics.pixel_acc == 1.0


def test_missing_predictions_are_listed(camvid, tmp_path):
    ds, _ = build_dataset("camvid", split="test", root=camvid)
    _write_preds(ds, tmp_path / "p", lambda i, lab: np.zeros_like(lab))
    (tmp_path / "p" / f"{ds.ids[1]}.png").unlink()
    with pytest.raises(
        ValueError,
        match=rf"1 of 2 images of camvid 'test' have no prediction in "
        rf"{tmp_path / 'p'} \(missing: {ds.ids[1]}.png\)",
    ):
        score_predictions("camvid", root=camvid, split="test", pred_dir=tmp_path / "p")


def test_wrong_size_colour_and_out_of_range_predictions(camvid, tmp_path):
    ds, _ = build_dataset("camvid", split="val", root=camvid)
    folder = tmp_path / "p"
    _write_preds(ds, folder, lambda i, lab: np.zeros_like(lab))
    first = folder / f"{ds.ids[0]}.png"
    Image.fromarray(np.zeros((6, 8), np.uint8)).save(first)
    with pytest.raises(
        ValueError,
        match=rf"prediction {first} is 8x6 but the label .* is 16x12 "
        r"\(W x H\); predictions are scored at the label's",
    ):
        score_predictions("camvid", root=camvid, split="val", pred_dir=folder)
    Image.fromarray(np.zeros((12, 16, 3), np.uint8)).save(first)
    with pytest.raises(ValueError, match=r"is a colour image \(mode RGB\); save class ids 0..10"):
        score_predictions("camvid", root=camvid, split="val", pred_dir=folder)
    Image.fromarray(np.full((12, 16), 11, np.uint8)).save(first)
    with pytest.raises(ValueError, match=r"has values 11 outside the class ids 0..10"):
        score_predictions("camvid", root=camvid, split="val", pred_dir=folder)


def test_broken_ground_truth_and_missing_pred_dir(camvid, tmp_path):
    with pytest.raises(FileNotFoundError, match="is not a folder"):
        score_predictions("camvid", root=camvid, split="val", pred_dir=tmp_path / "none")
    (tmp_path / "p").mkdir()
    (camvid / "val" / "0001TP_000003.png").unlink()
    with pytest.raises(DatasetError, match="names '0001TP_000003' but"):
        score_predictions("camvid", root=camvid, split="val", pred_dir=tmp_path / "p")


def test_scoring_errors_are_bench_errors_of_the_right_kind(camvid, tmp_path):
    folder = tmp_path / "p"
    with pytest.raises(MissingFileError) as exc:
        score_predictions("camvid", root=camvid, split="val", pred_dir=folder)
    assert str(exc.value) == (
        f"--pred-dir {folder} is not a folder. Pass the folder holding one predicted label PNG "
        f"per image of the split, named <sample id>.png."
    )
    ds, _ = build_dataset("camvid", split="val", root=camvid)
    _write_preds(ds, folder, lambda i, lab: np.zeros_like(lab))
    (folder / f"{ds.ids[0]}.png").write_bytes(b"not a png")
    with pytest.raises(PredictionError, match=r"cannot read prediction .*Write it again") as exc:
        score_predictions("camvid", root=camvid, split="val", pred_dir=folder)
    assert isinstance(exc.value, BenchError) and isinstance(exc.value, ValueError)
    assert not isinstance(exc.value, DatasetError)  # the dataset is fine; the prediction is not
    (folder / f"{ds.ids[0]}.png").unlink()
    with pytest.raises(PredictionError, match="1 of 2 images of camvid 'val' have no prediction"):
        score_predictions("camvid", root=camvid, split="val", pred_dir=folder)
    with pytest.raises(ConfigError, match="unknown split 'testing'"):
        score_predictions("camvid", root=camvid, split="testing", pred_dir=folder)
    with pytest.raises(ConfigError, match="'synthetic' is not read from files"):
        score_predictions("synthetic", root=camvid, split="val", pred_dir=folder)
    with pytest.raises(MissingFileError, match=f"camvid: data root {tmp_path / 'x'} does not"):
        score_predictions("camvid", root=tmp_path / "x", split="val", pred_dir=folder)


def test_cli_score_prints_metrics_and_writes_json(camvid, tmp_path):
    ds, _ = build_dataset("camvid", split="test", root=camvid)
    _write_preds(ds, tmp_path / "p", lambda i, lab: np.where(lab == 255, 0, lab))
    Image.fromarray(np.zeros((12, 16), np.uint8)).save(tmp_path / "p" / "stray.png")
    out_json = tmp_path / "m.json"
    code, out, err = run_cli(
        [
            *_score_camvid_test(camvid, str(tmp_path / "p")),
            "--json",
            str(out_json),
            "-q",
        ]
    )
    assert code == 0, err
    assert f"camvid test: 2 images scored from {tmp_path / 'p'}" in out
    assert "      miou: 100.00 %" in out and " pixel_acc: 100.00 %" in out
    assert "1 .png file(s)" in err and "stray.png" in err
    data = json.loads(out_json.read_text())
    assert data["num_images"] == 2 and data["metrics"]["miou"] == 1.0
    assert data["unmatched_files"] == ["stray.png"] and len(data["confusion_matrix"]) == 11
    code, _, err = run_cli(
        [
            *_score_camvid_test(camvid, str(tmp_path / "none")),
        ]
    )
    assert code == 2 and "is not a folder" in err
