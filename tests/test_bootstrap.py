"""Tests for bench.bootstrap: vectorised percentile bootstrap over per-image confusion matrices,
paired differences and tie ranks (issue 15, item 2)."""

from __future__ import annotations

import numpy as np
import pytest

from bench.bootstrap import (
    batch_metrics,
    bootstrap_intervals,
    differs,
    draw_counts,
    interval,
    load_per_image,
    paired_difference,
    resampled_matrices,
    save_per_image,
    tie_ranks,
)
from bench.errors import ConfigError, RecordError
from bench.metrics import compute_metrics


def test_batch_metrics_match_compute_metrics_class_absences_included():
    rng = np.random.default_rng(0)
    mats = rng.integers(0, 20, size=(6, 4, 4))
    mats[0, 3, :] = 0
    mats[0, :, 3] = 0  # class 3 absent from ground truth and prediction: left out of the means
    mats[1, 2, :] = 0  # class 2 never in the ground truth: its accuracy is undefined
    got = batch_metrics(mats)
    for i, m in enumerate(mats):
        ref = compute_metrics(m)
        assert got["miou"][i] == pytest.approx(ref.miou)
        assert got["pixel_acc"][i] == pytest.approx(ref.pixel_acc)
        assert got["mean_acc"][i] == pytest.approx(ref.mean_acc)


def test_resampled_matrices_are_the_sums_of_the_drawn_images():
    rng = np.random.default_rng(1)
    per_image = rng.integers(0, 9, size=(5, 3, 3))
    counts = draw_counts(5, resamples=7, seed=3)
    assert (counts.sum(axis=1) == 5).all()
    assert (counts == draw_counts(5, resamples=7, seed=3)).all()  # seeded
    loop = np.stack([sum(c * per_image[i] for i, c in enumerate(row)) for row in counts])
    assert (resampled_matrices(per_image, counts) == loop).all()


def test_the_interval_of_a_hand_computed_two_image_set():
    # Image A: 10 pixels of class 0, all right (mIoU 1). Image B: 10 pixels of class 1 predicted
    # 0. Resamples: AA (mIoU 1, p 1/4), AB (class 0 IoU 10/20, class 1 IoU 0: 0.25, p 1/2), BB
    # (0, p 1/4): the 2.5th percentile is BB's 0 and the 97.5th AA's 1.
    a = np.array([[10, 0], [0, 0]])
    b = np.array([[0, 0], [10, 0]])
    got = bootstrap_intervals(np.stack([a, b]), resamples=2000, seed=0)
    assert got["miou"] == (0.0, 1.0)
    assert got["pixel_acc"] == (0.0, 1.0)
    values = batch_metrics(np.stack([a + b]))["miou"]
    assert values[0] == pytest.approx(0.25)


def test_identical_images_give_a_point_interval_and_it_contains_the_estimate():
    per_image = np.stack([np.array([[5, 1], [2, 7]])] * 30)
    lo, hi = bootstrap_intervals(per_image)["miou"]
    point = compute_metrics(per_image.sum(0)).miou
    assert lo == pytest.approx(point) and hi == pytest.approx(point)
    rng = np.random.default_rng(2)
    varied = rng.integers(0, 30, size=(40, 3, 3))
    lo, hi = bootstrap_intervals(varied)["miou"]
    assert lo < compute_metrics(varied.sum(0)).miou < hi


def test_paired_difference_of_one_model_with_itself_and_with_a_worse_one():
    rng = np.random.default_rng(4)
    good = rng.integers(0, 5, size=(50, 3, 3)) + np.eye(3, dtype=int) * 40
    bad = good.copy()
    bad[:, 0, 0] -= 20
    bad[:, 0, 1] += 20  # class 0 pixels of every image moved to class 1
    assert paired_difference(good, good) == (0.0, 0.0)
    lo, hi = paired_difference(good, bad)
    assert 0 < lo <= hi
    with pytest.raises(ConfigError, match="same images"):
        paired_difference(good, good[:10])


def test_tie_ranks_share_a_rank_where_no_difference_is_shown():
    differs = [[False, False, True], [False, False, True], [True, True, False]]
    assert tie_ranks([0.50, 0.49, 0.30], differs) == ["=1", "=1", "3"]
    # A ~ B and B ~ C but A and C told apart: C opens a group of its own at its position.
    chain = [[False, False, True], [False, False, False], [True, False, False]]
    assert tie_ranks([0.50, 0.45, 0.40], chain) == ["=1", "=1", "3"]
    # Two groups: competition ranks 1, 1, 3, 3 (then 5).
    groups = [[a // 2 != b // 2 for b in range(5)] for a in range(5)]
    assert tie_ranks([0.9, 0.8, 0.7, 0.6, 0.5], groups) == ["=1", "=1", "=3", "=3", "5"]
    apart = [[False, True], [True, False]]
    assert tie_ranks([0.4, 0.6], apart) == ["2", "1"]


def test_interval_ignores_undefined_resamples():
    assert interval(np.array([np.nan, 1.0, 1.0])) == (1.0, 1.0)
    assert np.isnan(interval(np.array([np.nan]))[0])


def test_batch_metrics_with_a_no_class_column_match_compute_metrics():
    rng = np.random.default_rng(4)
    mats = rng.integers(0, 20, size=(5, 4, 4))
    mats[:, 3, :] = 0  # no ground-truth pixel is "no class"
    got = batch_metrics(mats, no_class=True)
    for i, m in enumerate(mats):
        ref = compute_metrics(m, no_class=True)
        assert got["miou"][i] == pytest.approx(ref.miou)
        assert got["pixel_acc"][i] == pytest.approx(ref.pixel_acc)
        assert got["mean_acc"][i] == pytest.approx(ref.mean_acc)


def test_per_image_files_round_trip_and_check_their_hash(tmp_path):
    mats = np.arange(2 * 3 * 3).reshape(2, 3, 3)
    sha = save_per_image(tmp_path / "m.confusion.npz", mats)
    assert (load_per_image(tmp_path / "m.confusion.npz", sha) == mats).all()
    with pytest.raises(RecordError, match="expected sha256 0+"):
        load_per_image(tmp_path / "m.confusion.npz", "0" * 64)
    with pytest.raises(RecordError, match="not found"):
        load_per_image(tmp_path / "other.npz")


def test_differs_tells_apart_only_rows_whose_paired_interval_excludes_zero():
    base = np.linspace(0.4, 0.6, 200)
    values = np.stack([base, base + 0.01, base + np.where(np.arange(200) % 2, 0.02, -0.02)])
    apart = differs(values)
    # Row 1 is always 0.01 above row 0: told apart. Row 2 is 0.02 above or below row 0 (half
    # the resamples each): not; and row 1 - row 2 is -0.01 or +0.03: not either.
    assert apart.tolist() == [[False, True, False], [True, False, False], [False, False, False]]
    nan_row = np.vstack([values[:1], np.full((1, 200), np.nan)])
    assert differs(nan_row).tolist() == [[False, True], [True, False]]  # no data: apart
