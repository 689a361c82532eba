"""Tests for bench.data.check and `run_bench.py data check` / `list datasets`."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bench.data import DatasetError, build_dataset
from bench.data.check import check_dataset
from bench.data.fixtures import FIXTURE_COUNTS, write_fixture
from tests.factories import run_cli


def _raw_histogram(folder: Path, pattern: str = "*.png") -> np.ndarray:
    hist = np.zeros(256, np.int64)
    for p in folder.glob(pattern):
        hist += np.bincount(np.asarray(Image.open(p)).ravel(), minlength=256)
    return hist


def test_clean_fixture_counts_sizes_and_histogram(camvid):
    report = check_dataset("camvid", camvid)
    assert report.ok
    assert [s.split for s in report.splits] == ["train", "val", "test", "trainval"]
    assert {s.split: s.num_samples for s in report.splits} == FIXTURE_COUNTS["camvid"]
    train = report.splits[0]
    assert train.expected == 367 and train.image_sizes == {"16x12": 3}
    raw = _raw_histogram(camvid / "trainannot")
    assert train.class_pixels == raw[:11].tolist() and train.ignored_pixels == int(raw[11])
    assert train.raw_values == {v: int(raw[v]) for v in np.flatnonzero(raw)}
    assert sum(train.class_pixels) + train.ignored_pixels == 3 * 12 * 16
    # Only the counts differ from the release: warnings, not errors.
    assert {p.kind for p in report.problems} == {"count"}
    assert all(p.severity == "warning" for p in report.problems)
    json.dumps(report.to_dict())


def test_histogram_follows_the_label_mapping(tmp_path):
    root = write_fixture("cityscapes", tmp_path / "cs")
    report = check_dataset("cityscapes", root, ["val"])
    raw = _raw_histogram(root / "gtFine" / "val" / "frankfurt", "*_labelIds.png")
    (val,) = report.splits
    assert val.class_pixels[0] == raw[7] and val.class_pixels[13] == raw[26]  # road, car
    ignored = [0, 1, 2, 3, 4, 5, 6, 9, 10, 14, 15, 16, 18, 29, 30]
    assert val.ignored_pixels == int(raw[ignored].sum())


def test_broken_dataset_reports_every_problem_with_its_file(camvid):
    for split in ("train", "val", "test"):
        (camvid / f"{split}.txt").unlink()
    (camvid / "trainannot" / "0001TP_000000.png").unlink()  # image without label
    shutil.copy(camvid / "val" / "0001TP_000003.png", camvid / "train" / "orphan.png")
    shutil.copy(camvid / "valannot" / "0001TP_000003.png", camvid / "trainannot" / "lonely.png")
    Image.fromarray(np.zeros((6, 8), np.uint8)).save(camvid / "valannot" / "0001TP_000003.png")
    (camvid / "val" / "0001TP_000004.png").write_bytes(b"garbage")
    Image.fromarray(np.zeros((12, 16, 3), np.uint8)).save(
        camvid / "testannot" / "0001TP_000005.png"
    )
    bad = np.zeros((12, 16), np.uint8)
    bad[0, 0] = 42
    Image.fromarray(bad).save(camvid / "testannot" / "0001TP_000006.png")
    Image.fromarray(np.zeros((12, 16), np.uint8)).save(camvid / "test" / "0001TP_000006.png")

    report = check_dataset("camvid", camvid, ["train", "val", "test"])
    assert not report.ok
    found = {(p.kind, Path(p.path).name, p.split) for p in report.problems if p.kind != "count"}
    assert found == {
        ("missing_label", "0001TP_000000.png", "train"),
        ("missing_label", "orphan.png", "train"),
        ("missing_image", "lonely.png", "train"),
        ("size_mismatch", "0001TP_000003.png", "val"),
        ("unreadable", "0001TP_000004.png", "val"),
        ("colour_label", "0001TP_000005.png", "test"),
        ("invalid_labels", "0001TP_000006.png", "test"),
        ("image_mode", "0001TP_000006.png", "test"),
    }
    text = report.format()
    for p in report.problems:
        assert p.message.splitlines()[0] in text
    assert "problems: 7 error(s)" in text
    # Loading the same split fails with the same message.
    invalid = next(p for p in report.problems if p.kind == "invalid_labels")
    with pytest.raises(DatasetError) as exc:
        build_dataset("camvid", split="test", root=camvid, verify="full")
    assert invalid.message in str(exc.value)
    mismatch = next(p for p in report.problems if p.kind == "size_mismatch")
    with pytest.raises(DatasetError) as exc:
        build_dataset("camvid", split="val", root=camvid)
    assert mismatch.message in str(exc.value)


def test_missing_root_and_missing_split_folder(tmp_path, camvid):
    report = check_dataset("camvid", tmp_path / "nope")
    (problem,) = report.problems
    assert problem.kind == "missing_root" and "Expected layout:" in problem.message
    assert report.splits == [] and not report.ok
    shutil.rmtree(camvid / "test")
    report = check_dataset("camvid", camvid, ["val", "test"])
    assert [s.split for s in report.splits] == ["val"]
    (missing,) = [p for p in report.problems if p.kind == "missing_folder"]
    assert missing.split == "test" and missing.path == str(camvid / "test")


def test_unknown_split_is_an_argument_error(camvid):
    with pytest.raises(ValueError, match="unknown split 'validation'"):
        check_dataset("camvid", camvid, ["validation"])


# -- CLI ----------------------------------------------------------------------------------------


def test_cli_data_check_clean_prints_tables_and_writes_json(camvid, tmp_path):
    out_json = tmp_path / "report.json"
    code, out, _ = run_cli(
        [
            "data",
            "check",
            "--dataset",
            "camvid",
            "--data-root",
            str(camvid),
            "--split",
            "train,val",
            "--json",
            str(out_json),
            "-q",
        ]
    )
    assert code == 0
    assert out.startswith(f"camvid at {camvid}")
    assert "| train   |         3 |        367 | 16x12 (3)" in out
    assert "label histogram (pixels per class after the label mapping):" in out
    assert "| (ignored)" in out and "problems: 0 error(s), 2 warning(s)" in out
    data = json.loads(out_json.read_text())
    assert data["ok"] is True and [s["split"] for s in data["splits"]] == ["train", "val"]
    assert data["class_names"][0] == "sky"


def test_cli_data_check_exit_codes(camvid, tmp_path):
    Image.fromarray(np.zeros((12, 16, 3), np.uint8)).save(camvid / "valannot" / "0001TP_000003.png")
    code, out, _ = run_cli(
        ["data", "check", "--dataset", "camvid", "--data-root", str(camvid), "-q"]
    )
    assert code == 1 and "is a colour image (mode RGB" in out
    code, out, _ = run_cli(
        ["data", "check", "--dataset", "camvid", "--data-root", str(tmp_path / "missing"), "-q"]
    )
    assert code == 1 and "does not exist. Expected layout:" in out
    code, _, err = run_cli(["data", "check", "--dataset", "synthetic", "--data-root", str(camvid)])
    assert code == 2 and "not read from files" in err
    code, _, err = run_cli(["data", "check", "--dataset", "camvd", "--data-root", str(camvid)])
    assert code == 2 and "Did you mean: camvid" in err


def test_cli_loading_a_broken_dataset_fails_fast(camvid):
    shutil.rmtree(camvid / "testannot")
    code, _, err = run_cli(
        [
            "eval",
            "--arch",
            "fcn8s",
            "--dataset",
            "camvid",
            "--data-root",
            str(camvid),
            "--split",
            "test",
            "-q",
        ]
    )
    assert code == 2
    assert f"error: camvid: split 'test': folder {camvid / 'testannot'} not found." in err


def test_cli_list_datasets():
    code, out, _ = run_cli(["list", "datasets"])
    assert code == 0
    rows = {line.split("|")[1].strip(): line for line in out.splitlines()[2:]}
    assert {"synthetic", "camvid", "cityscapes", "isbi2012"} <= set(rows)
    assert "| 11 " in rows["camvid"] and "360x480" in rows["camvid"]
    code, out, _ = run_cli(["list", "datasets", "--format", "json"])
    data = {r["name"]: r for r in json.loads(out)}
    assert data["ade20k"]["classes"] == 150 and data["ade20k"]["protocol"]["short_side"] == 512
    assert data["cityscapes"]["palette"][0] == [128, 64, 128]
    assert data["camvid"]["official_counts"]["train"] == 367
    assert data["synthetic"]["classes"] == ""
