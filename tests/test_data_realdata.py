"""The loaders on the real datasets in ../shared/datasets (skipped with a reason when absent).

The expected numbers are those of /work/shared/datasets/README.md: split sizes, per-class label
pixel counts (raw values 0..11, 11 = void), train mean/std, ISBI's 30 pairs.
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from bench.data import build_dataset
from bench.data.check import check_dataset
from tests.factories import ROOT

SHARED = ROOT.parent / "shared" / "datasets"
CAMVID = SHARED / "camvid"
ISBI = SHARED / "isbi2012"

camvid_only = pytest.mark.skipif(not CAMVID.is_dir(), reason=f"{CAMVID} not found")
isbi_only = pytest.mark.skipif(not ISBI.is_dir(), reason=f"{ISBI} not found")
pytestmark = pytest.mark.realdata

# Pixels per raw label value 0..11 (README); 11 = void, which the loader maps to ignore (255).
# fmt: off
CAMVID_HIST = {
    "train": [10682767, 14750079, 623349, 20076880, 2845085, 6166762, 743859, 714595, 3719877,
              405385, 184967, 2503995],
    "val": [1601620, 4531180, 98499, 5053176, 1521751, 2851125, 155724, 537197, 304716, 113531,
            387010, 297271],
    "test": [6870982, 9906732, 473895, 10390661, 3731857, 4530895, 406612, 476807, 1599124,
             255232, 76220, 1543383],
}
# fmt: on


@camvid_only
@pytest.mark.parametrize("split,count", [("train", 367), ("val", 101), ("test", 233)])
def test_camvid_counts_and_label_histograms_are_exact(split, count):
    ds, info = build_dataset("camvid", split=split, root=CAMVID)
    assert len(ds) == count
    hist = np.zeros(256, np.int64)
    for i in range(len(ds)):
        label = ds.label(i)
        assert label.shape == (360, 480)
        hist += np.bincount(label.ravel(), minlength=256)
    assert hist[:11].tolist() == CAMVID_HIST[split][:11]
    assert int(hist[255]) == CAMVID_HIST[split][11]  # void -> ignored
    assert int(hist.sum()) == count * 360 * 480


@camvid_only
def test_camvid_samples_and_list_files():
    ds, info = build_dataset("camvid", split="test", root=CAMVID)
    image, mask = ds[0]
    assert image.shape == (3, 360, 480) and mask.shape == (360, 480)
    assert ds.ids[0] == "0001TP_008550"
    listed = [
        line.split()[0].rsplit("/", 1)[-1][:-4]
        for line in (CAMVID / "test.txt").read_text().splitlines()
    ]
    assert ds.ids == listed
    train, _ = build_dataset("camvid", split="train", root=CAMVID)
    image, mask = train[0]
    assert image.shape == (3, 360, 480) and mask.shape == (360, 480)


@camvid_only
def test_camvid_train_mean_and_std_are_the_declared_ones():
    ds, info = build_dataset("camvid", split="train", root=CAMVID)
    counts = np.zeros((3, 256), np.int64)  # per-channel value histograms: exact integer sums
    for pair in ds.pairs:
        img = np.asarray(Image.open(pair.image).convert("RGB"))
        for c in range(3):
            counts[c] += np.bincount(img[:, :, c].ravel(), minlength=256)
    values = np.arange(256, dtype=np.int64)
    n = counts[0].sum()
    mean = (counts @ values) / (n * 255.0)
    std = np.sqrt((counts @ (values * values)) / (n * 255.0**2) - mean**2)
    assert np.allclose(mean, info.mean, atol=6e-5)
    assert np.allclose(std, info.std, atol=6e-5)


@isbi_only
def test_isbi_loads_30_pairs_with_two_classes():
    all_, info = build_dataset("isbi2012", split="trainval", root=ISBI)
    assert len(all_) == 30 and all_.ids == [str(i) for i in range(30)]
    train, _ = build_dataset("isbi2012", split="train", root=ISBI)
    val, _ = build_dataset("isbi2012", split="val", root=ISBI)
    assert (len(train), len(val)) == (24, 6)
    cell = membrane = 0
    for i in range(30):
        label = all_.label(i)
        assert label.shape == (512, 512)
        counts = np.bincount(label.ravel(), minlength=256)
        assert counts[2:].sum() == 0
        membrane += int(counts[0])
        cell += int(counts[1])
    assert (membrane, cell) == (1727250, 6137070)
    image, mask = val[0]
    assert image.shape == (3, 512, 512) and mask.shape == (512, 512)


@isbi_only
def test_isbi_data_check_is_clean():
    report = check_dataset("isbi2012", ISBI)
    assert report.ok and report.problems == []
    assert {s.split: s.num_samples for s in report.splits} == {
        "train": 24,
        "val": 6,
        "trainval": 30,
    }
    assert report.splits[2].image_sizes == {"512x512": 30}


@camvid_only
def test_camvid_suite_builds_its_splits_as_the_runner_does():
    from bench.suites import load_suite

    suite = load_suite("camvid_full")  # the native-resolution suite (camvid: see below)
    root = ROOT / suite.data_root
    opts = {**suite.dataset_options, "size": tuple(suite.resolution)}
    train, info = build_dataset(suite.dataset, split="train", root=root, **opts)
    test, _ = build_dataset(suite.dataset, split=suite.eval.split, root=root, **opts)
    assert (len(train), len(test)) == (367, 233)
    assert train.augment.crop == (360, 480) and train.augment.scale_range == (0.5, 2.0)
    # The runner records {"mode": "whole", "scales": [1.0], "flip": False, "resolution": [360,
    # 480]}: exactly what the dataset's protocol says for this suite (360x480 is native).
    p = test.protocol
    assert (p.mode, p.scales, p.flip, p.size) == ("whole", (1.0,), False, (360, 480))
    assert info.eval_resolution == tuple(suite.resolution)
    # The CPU-sized `camvid` suite trains on 180x240 crops and runs the model on test images
    # resized to 180x240; the scores are still taken against the 360x480 labels.
    cpu = load_suite("camvid")
    opts = {**cpu.dataset_options, "size": tuple(cpu.resolution)}
    train, _ = build_dataset(cpu.dataset, split="train", root=root, **opts)
    test, _ = build_dataset(cpu.dataset, split=cpu.eval.split, root=root, **opts)
    assert train.augment.crop == (180, 240)
    assert test.protocol.size == (180, 240)
    assert tuple(test[0][1].shape) == (360, 480)
