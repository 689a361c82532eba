"""Tests for ``bench.metrics``: hand-computed confusion matrices and metrics, input validation, and
a property test against an independent NumPy implementation.

Hand-computed values are written as fractions of the counts they come from, so each expected number
can be checked with pencil and paper against the matrix drawn in the test.
"""

from __future__ import annotations

import json
import math
from contextlib import AbstractContextManager
from unittest import mock

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from bench import metrics
from bench.errors import ConfigError
from bench.metrics import ConfusionMatrix, SegMetrics, compute_metrics

NAN = float("nan")
INT_DTYPES = [torch.uint8, torch.int32, torch.int64]
METRIC_FIELDS = ("miou", "pixel_acc", "mean_acc", "fwiou", "mean_dice")


def t(rows: list[list[int]], dtype: torch.dtype = torch.int64) -> torch.Tensor:
    return torch.tensor(rows, dtype=dtype)


def assert_metrics(
    m: SegMetrics, expected: dict[str, float], per_class: dict[str, list[float]]
) -> None:
    """Every scalar and per-class value equals the expectation (NaN only where expected NaN)."""
    for name, value in expected.items():
        got = getattr(m, name)
        if math.isnan(value):
            assert math.isnan(got), f"{name}: expected NaN, got {got}"
        else:
            assert got == pytest.approx(value, rel=0, abs=1e-12), name
    for name, values in per_class.items():
        got = list(getattr(m, name).values())
        np.testing.assert_allclose(got, values, rtol=0, atol=1e-12, err_msg=name)


# ---------------------------------------------------------------------------------------------
# A full hand-computed example: 3 classes, a 4x4 map with 3 ignored pixels.
#
#   target           pred
#   0 0 1 1          0 1 1 1
#   0 0 1 1          0 0 1 2
#   2 2 2 X          2 2 0 0       X = 255 (ignored, whatever is predicted there)
#   2 2 X X          2 1 1 2
#
# Confusion matrix cm[t, p] over the 13 counted pixels:
#   t=0: p=0 at (0,0) (1,0) (1,1), p=1 at (0,1)            -> [3, 1, 0]
#   t=1: p=1 at (0,2) (0,3) (1,2), p=2 at (1,3)            -> [0, 3, 1]
#   t=2: p=2 at (2,0) (2,1) (3,0), p=0 at (2,2), p=1 (3,1) -> [1, 1, 3]
# tp = [3, 3, 3], gt (row sums) = [4, 4, 5], pred (column sums) = [4, 5, 4], total = 13
# union = gt + pred - tp = [5, 6, 6]
# ---------------------------------------------------------------------------------------------
EX_TARGET = [[0, 0, 1, 1], [0, 0, 1, 1], [2, 2, 2, 255], [2, 2, 255, 255]]
EX_PRED = [[0, 1, 1, 1], [0, 0, 1, 2], [2, 2, 0, 0], [2, 1, 1, 2]]
EX_MATRIX = [[3, 1, 0], [0, 3, 1], [1, 1, 3]]
EX_IOU = [3 / 5, 3 / 6, 3 / 6]
EX_ACC = [3 / 4, 3 / 4, 3 / 5]
EX_DICE = [2 * 3 / (4 + 4), 2 * 3 / (4 + 5), 2 * 3 / (5 + 4)]
EX_METRICS = {
    "pixel_acc": 9 / 13,
    "mean_acc": (3 / 4 + 3 / 4 + 3 / 5) / 3,
    "miou": (3 / 5 + 3 / 6 + 3 / 6) / 3,
    "fwiou": (4 * 3 / 5 + 4 * 3 / 6 + 5 * 3 / 6) / 13,
    "mean_dice": (6 / 8 + 6 / 9 + 6 / 9) / 3,
}


def test_hand_computed_3_class_example() -> None:
    cm = ConfusionMatrix(3)
    cm.update(t(EX_PRED, torch.uint8), t(EX_TARGET, torch.uint8))
    assert cm.matrix.dtype == torch.int64
    assert cm.matrix.tolist() == EX_MATRIX
    m = cm.compute(["road", "car", "sky"])
    assert_metrics(
        m,
        EX_METRICS,
        {"per_class_iou": EX_IOU, "per_class_acc": EX_ACC, "per_class_dice": EX_DICE},
    )
    assert list(m.per_class_iou) == ["road", "car", "sky"]
    # The same numbers from the pure function on the matrix alone.
    assert compute_metrics(np.array(EX_MATRIX), ["road", "car", "sky"]) == m
    assert compute_metrics(torch.tensor(EX_MATRIX), ["road", "car", "sky"]) == m


def test_hand_computed_example_decimal_values() -> None:
    """The same example with the fractions worked out, as a check on the fractions above."""
    m = compute_metrics(np.array(EX_MATRIX))
    assert m.miou == pytest.approx(0.5333333333333333)
    assert m.pixel_acc == pytest.approx(0.6923076923076923)
    assert m.mean_acc == pytest.approx(0.7)
    assert m.fwiou == pytest.approx(0.5307692307692308)
    assert m.mean_dice == pytest.approx(0.6944444444444444)
    assert m.per_class_iou == pytest.approx({"0": 0.6, "1": 0.5, "2": 0.5})


def test_absent_class_is_nan_and_predicted_absent_class_is_zero() -> None:
    # 4 classes. Target has 0 and 1; pred has 0, 1 and 2; class 3 appears nowhere.
    #   target  pred       cm[t, p]: t=0 -> [1, 0, 1, 0]; t=1 -> [0, 2, 0, 0]; rows 2, 3 zero
    #   0 0     0 2        tp = [1, 2, 0, 0], gt = [2, 2, 0, 0], pred = [1, 2, 1, 0], total 4
    #   1 1     1 1        union = [2, 2, 1, 0]
    cm = ConfusionMatrix(4)
    cm.update(t([[0, 2], [1, 1]]), t([[0, 0], [1, 1]]))
    assert cm.matrix.tolist() == [[1, 0, 1, 0], [0, 2, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]]
    m = cm.compute()
    assert_metrics(
        m,
        {
            "miou": (1 / 2 + 1 + 0) / 3,  # class 3 (NaN) excluded; class 2 (IoU 0) included
            "mean_acc": (1 / 2 + 1) / 2,  # class 2 has no GT pixels: accuracy NaN, excluded
            "mean_dice": (2 / 3 + 1 + 0) / 3,
            "pixel_acc": 3 / 4,
            "fwiou": 2 / 4 * 1 / 2 + 2 / 4 * 1,
        },
        {
            "per_class_iou": [1 / 2, 1.0, 0.0, NAN],
            "per_class_acc": [1 / 2, 1.0, NAN, NAN],
            "per_class_dice": [2 / 3, 1.0, 0.0, NAN],
        },
    )
    d = m.to_dict()
    assert d["per_class_iou"] == {"0": 0.5, "1": 1.0, "2": 0.0, "3": None}
    assert d["per_class_acc"]["2"] is None
    json.dumps(d, allow_nan=False)  # JSON-ready: no NaN left


def test_class_in_gt_never_predicted_has_iou_zero() -> None:
    # target [0, 1, 1], pred [0, 0, 0] -> cm = [[1, 0], [2, 0]]; class 1: tp 0, union 2.
    cm = ConfusionMatrix(2)
    cm.update(t([[0, 0, 0]]), t([[0, 1, 1]]))
    m = cm.compute()
    assert m.per_class_iou == {"0": 1 / 3, "1": 0.0}
    assert m.per_class_acc == {"0": 1.0, "1": 0.0}
    assert m.miou == pytest.approx(1 / 6)
    assert m.fwiou == pytest.approx(1 / 3 * 1 / 3)


def test_no_class_column_counts_misses_of_the_true_class() -> None:
    """Two classes and a "no class" prediction (a published model's non-class channel kept in
    the argmax). Class 0: 5 right, 1 taken for class 1, 2 predicted as no class; class 1: 3
    right, 1 no class. IoU_0 = 5 / (8 + 5 - 5) = 5/8 (its misses are in its ground-truth
    total), IoU_1 = 3 / (4 + 4 - 3) = 3/5 (no class is nobody's false positive); pixel accuracy
    8 / 12; mean accuracy (5/8 + 3/4) / 2."""
    cm = np.array([[5, 1, 2], [0, 3, 1], [0, 0, 0]])
    m = compute_metrics(cm, ["a", "b"], no_class=True)
    assert m.per_class_iou == pytest.approx({"a": 5 / 8, "b": 3 / 5})
    assert m.miou == pytest.approx((5 / 8 + 3 / 5) / 2)
    assert m.pixel_acc == pytest.approx(8 / 12)
    assert m.mean_acc == pytest.approx((5 / 8 + 3 / 4) / 2)
    # The same matrix without the column would score the misses as nothing at all.
    assert compute_metrics(cm[:2, :2], ["a", "b"]).pixel_acc == pytest.approx(8 / 9)
    with pytest.raises(ConfigError, match="'no class' row of a 3x3 confusion matrix counts 4"):
        compute_metrics(np.array([[5, 1, 2], [0, 3, 1], [1, 0, 3]]), ["a", "b"], no_class=True)


def test_single_class() -> None:
    cm = ConfusionMatrix(1)
    cm.update(t([[0, 0], [0, 0]], torch.uint8), t([[0, 255], [0, 0]], torch.uint8))
    assert cm.matrix.tolist() == [[3]]
    assert_metrics(
        cm.compute(["all"]),
        {f: 1.0 for f in METRIC_FIELDS},
        {"per_class_iou": [1.0], "per_class_acc": [1.0], "per_class_dice": [1.0]},
    )


@pytest.mark.parametrize("dtype", INT_DTYPES)
def test_all_ignored_batch_leaves_matrix_zero_and_metrics_nan(dtype: torch.dtype) -> None:
    cm = ConfusionMatrix(3)
    cm.update(torch.zeros(2, 5, 7, dtype=dtype), torch.full((2, 5, 7), 255, dtype=dtype))
    assert cm.matrix.tolist() == [[0] * 3] * 3
    m = cm.compute()
    assert_metrics(
        m,
        {f: NAN for f in METRIC_FIELDS},
        {"per_class_iou": [NAN] * 3, "per_class_acc": [NAN] * 3, "per_class_dice": [NAN] * 3},
    )
    d = m.to_dict()
    assert all(d[f] is None for f in METRIC_FIELDS)
    assert list(d["per_class_dice"].values()) == [None] * 3


def test_empty_batch_is_a_no_op() -> None:
    cm = ConfusionMatrix(3)
    cm.update(t(EX_PRED), t(EX_TARGET))
    cm.update(torch.zeros(0, 4, 4, dtype=torch.uint8), torch.zeros(0, 4, 4, dtype=torch.uint8))
    assert cm.matrix.tolist() == EX_MATRIX


def random_batch(
    rng: np.random.Generator, k: int, shape: tuple[int, ...], ignore_frac: float, ignore: int = 255
) -> tuple[np.ndarray, np.ndarray]:
    pred = rng.integers(0, k, shape)
    target = rng.integers(0, k, shape)
    target[rng.random(shape) < ignore_frac] = ignore
    return pred, target


def np_confusion(pred: np.ndarray, target: np.ndarray, k: int, ignore: int) -> np.ndarray:
    """Independent reference: unbuffered scatter-add of (target, pred) pairs (no bincount)."""
    cm = np.zeros((k, k), dtype=np.int64)
    keep = target != ignore
    np.add.at(cm, (target[keep].astype(np.int64), pred[keep].astype(np.int64)), 1)
    return cm


def test_batches_sum_to_one_big_update() -> None:
    rng = np.random.default_rng(0)
    k = 5
    pred, target = random_batch(rng, k, (6, 9, 11), 0.1)
    whole = ConfusionMatrix(k)
    whole.update(torch.from_numpy(pred), torch.from_numpy(target))
    parts = ConfusionMatrix(k)
    for i in range(0, 6, 2):
        parts.update(torch.from_numpy(pred[i : i + 2]), torch.from_numpy(target[i : i + 2]))
    np.testing.assert_array_equal(whole.matrix.numpy(), np_confusion(pred, target, k, 255))
    assert torch.equal(parts.matrix, whole.matrix)
    assert parts.compute() == whole.compute()


def test_merge_adds_matrices() -> None:
    rng = np.random.default_rng(1)
    k = 4
    (p1, t1), (p2, t2) = random_batch(rng, k, (3, 8, 8), 0.2), random_batch(rng, k, (2, 5), 0.2)
    a, b = ConfusionMatrix(k), ConfusionMatrix(k)
    a.update(torch.from_numpy(p1), torch.from_numpy(t1))
    b.update(torch.from_numpy(p2), torch.from_numpy(t2))
    b_before = b.matrix.clone()
    assert a.merge(b) is a
    expected = np_confusion(p1, t1, k, 255) + np_confusion(p2, t2, k, 255)
    np.testing.assert_array_equal(a.matrix.numpy(), expected)
    assert torch.equal(b.matrix, b_before)  # the other matrix is not modified
    with pytest.raises(ConfigError, match="4 and 5 classes"):
        a.merge(ConfusionMatrix(5))


def test_all_reduce_without_process_group_keeps_matrix() -> None:
    cm = ConfusionMatrix(3)
    cm.update(t(EX_PRED), t(EX_TARGET))
    cm.all_reduce()
    assert cm.matrix.tolist() == EX_MATRIX


def test_reset() -> None:
    cm = ConfusionMatrix(3)
    cm.update(t(EX_PRED), t(EX_TARGET))
    cm.reset()
    assert cm.matrix.tolist() == [[0] * 3] * 3


# --- invalid input ----------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", INT_DTYPES)
def test_target_labels_out_of_range_raise_naming_values(dtype: torch.dtype) -> None:
    cm = ConfusionMatrix(3)
    cm.update(t(EX_PRED), t(EX_TARGET))
    target = t([[0, 3, 255], [7, 1, 3]], dtype)
    with pytest.raises(ConfigError, match=r"found 3, 7\. ") as info:
        cm.update(torch.zeros(2, 3, dtype=dtype), target)
    assert "[0, 2]" in str(info.value) and "ignore index 255" in str(info.value)
    assert cm.matrix.tolist() == EX_MATRIX  # a failed update adds nothing


def test_many_invalid_labels_are_summarised() -> None:
    cm = ConfusionMatrix(2)
    target = torch.arange(2, 30, dtype=torch.int64)
    with pytest.raises(ConfigError, match=r"found 2, 3, 4, 5, 6, 7, 8, 9, 10, 11 \(and 18 more\)"):
        cm.update(torch.zeros_like(target), target)


@pytest.mark.parametrize("dtype", [torch.int8, torch.int16, torch.int32, torch.int64])
def test_negative_target_labels_raise(dtype: torch.dtype) -> None:
    cm = ConfusionMatrix(3)
    with pytest.raises(ConfigError, match=r"found -2, -1\. "):
        cm.update(t([[0, 1, 2, 0]], dtype), t([[0, -1, -2, 1]], dtype))
    assert cm.matrix.sum() == 0


def test_huge_target_label_raises() -> None:
    cm = ConfusionMatrix(3)
    with pytest.raises(ConfigError, match=r"found 1000000000\. "):
        cm.update(t([[0, 1]]), t([[0, 1_000_000_000]]))


def test_negative_ignore_index() -> None:
    cm = ConfusionMatrix(3, ignore_index=-1)
    cm.update(t([[0, 1, 2, 0]]), t([[0, -1, 2, -1]]))
    assert cm.matrix.tolist() == [[1, 0, 0], [0, 0, 0], [0, 0, 1]]
    with pytest.raises(ConfigError, match=r"found -2, 255\. "):
        cm.update(t([[0, 1, 2]]), t([[-2, 255, -1]]))


@pytest.mark.parametrize("dtype", INT_DTYPES)
def test_ignore_index_equal_to_num_classes(dtype: torch.dtype) -> None:
    """CamVid: 11 classes, label 11 is 'void'. 255 is then an invalid label, not ignored."""
    k = 11
    cm = ConfusionMatrix(k, ignore_index=k)
    target = t([[0, 10, 11, 11], [5, 5, 11, 3]], dtype)
    pred = t([[0, 9, 10, 0], [5, 4, 1, 3]], dtype)
    cm.update(pred, target)
    expected = np.zeros((k, k), dtype=np.int64)
    for tt, pp in [(0, 0), (10, 9), (5, 5), (5, 4), (3, 3)]:
        expected[tt, pp] += 1
    np.testing.assert_array_equal(cm.matrix.numpy(), expected)
    with pytest.raises(ConfigError, match=r"ignore index 11; found 255\. "):
        cm.update(pred, t([[0, 255, 11, 11], [5, 5, 11, 3]], dtype))


@pytest.mark.parametrize("ignore_index", [0, 5, 10])
def test_ignore_index_colliding_with_a_class_raises(ignore_index: int) -> None:
    with pytest.raises(ConfigError, match=f"ignore_index {ignore_index} collides"):
        ConfusionMatrix(11, ignore_index=ignore_index)


@pytest.mark.parametrize("num_classes", [0, -3, 2.0])
def test_bad_num_classes_raises(num_classes: object) -> None:
    with pytest.raises(ConfigError, match="num_classes must be a positive int"):
        ConfusionMatrix(num_classes)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("pred", "dtype", "shown"),
    [
        ([0, 3], torch.int64, "[0, 3]"),
        ([-1, 2], torch.int64, "[-1, 2]"),
        ([0, 255], torch.uint8, "[0, 255]"),
        ([3, 1], torch.uint8, "[1, 3]"),  # == K: would alias class 0 of the next row
        ([7, 1], torch.int32, "[1, 7]"),
        ([3, 3], torch.int16, "[3, 3]"),
    ],
)
def test_predictions_out_of_range_raise(pred: list[int], dtype: torch.dtype, shown: str) -> None:
    cm = ConfusionMatrix(3)
    with pytest.raises(ConfigError, match="Predictions must be class ids in") as info:
        cm.update(torch.tensor([pred], dtype=dtype), torch.tensor([[0, 255]], dtype=dtype))
    assert f"found values in {shown}" in str(info.value)
    assert "num_classes=3" in str(info.value)
    assert cm.matrix.sum() == 0


def test_out_of_range_prediction_on_an_ignored_pixel_still_raises() -> None:
    """A prediction >= K is a model/num_classes bug wherever it occurs."""
    cm = ConfusionMatrix(3)
    with pytest.raises(ConfigError, match="Predictions must be class ids"):
        cm.update(t([[0, 9]], torch.uint8), t([[0, 255]], torch.uint8))


def test_shape_mismatch_raises() -> None:
    cm = ConfusionMatrix(3)
    with pytest.raises(ConfigError, match=r"same shape; got pred \(2, 3, 4, 4\) and target"):
        cm.update(
            torch.zeros(2, 3, 4, 4, dtype=torch.int64), torch.zeros(2, 4, 4, dtype=torch.int64)
        )


@pytest.mark.parametrize("which", ["pred", "target"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.float64, torch.bool])
def test_non_integer_inputs_raise_type_error(which: str, dtype: torch.dtype) -> None:
    ints = torch.zeros(2, 4, dtype=torch.int64)
    other = torch.zeros(2, 4, dtype=dtype)
    cm = ConfusionMatrix(3)
    with pytest.raises(TypeError, match=f"{which} must hold integer class ids; got dtype"):
        if which == "pred":
            cm.update(other, ints)
        else:
            cm.update(ints, other)


@pytest.mark.parametrize("pred_dtype", INT_DTYPES)
@pytest.mark.parametrize("target_dtype", INT_DTYPES)
def test_integer_dtypes_give_identical_matrices(
    pred_dtype: torch.dtype, target_dtype: torch.dtype
) -> None:
    rng = np.random.default_rng(2)
    k = 7
    pred, target = random_batch(rng, k, (3, 13, 17), 0.1)
    cm = ConfusionMatrix(k)
    cm.update(torch.from_numpy(pred).to(pred_dtype), torch.from_numpy(target).to(target_dtype))
    np.testing.assert_array_equal(cm.matrix.numpy(), np_confusion(pred, target, k, 255))


def test_inputs_are_not_modified_and_strided_inputs_work() -> None:
    rng = np.random.default_rng(3)
    k = 6
    pred, target = random_batch(rng, k, (4, 10, 12), 0.1)
    for dtype in (torch.int16, torch.int32, torch.int64):
        p = torch.from_numpy(pred).to(dtype)
        tt = torch.from_numpy(target).to(dtype)
        p0, t0 = p.clone(), tt.clone()
        cm = ConfusionMatrix(k)
        cm.update(p.transpose(1, 2), tt.transpose(1, 2))  # non-contiguous views
        cm.update(p[:, ::2], tt[:, ::2])
        assert torch.equal(p, p0) and torch.equal(tt, t0)
        expected = np_confusion(pred, target, k, 255) + np_confusion(
            pred[:, ::2], target[:, ::2], k, 255
        )
        np.testing.assert_array_equal(cm.matrix.numpy(), expected)


@pytest.mark.parametrize("chunk", [1, 7, 64])
@pytest.mark.parametrize("dtype", [torch.uint8, torch.int64])
def test_chunked_update_matches_one_pass(
    monkeypatch: pytest.MonkeyPatch, chunk: int, dtype: torch.dtype
) -> None:
    """uint8 CPU updates run in chunks of ``_CPU_CHUNK`` pixels, a ragged last chunk included;
    int64 ones in one fused pass (the chunk size must not matter to them either)."""
    rng = np.random.default_rng(6)
    k = 5
    pred, target = random_batch(rng, k, (3, 11, 13), 0.1)  # 429 pixels: 429 % 64 = 45
    monkeypatch.setattr(metrics, "_CPU_CHUNK", chunk)
    cm = ConfusionMatrix(k)
    cm.update(torch.from_numpy(pred).to(dtype), torch.from_numpy(target).to(dtype))
    np.testing.assert_array_equal(cm.matrix.numpy(), np_confusion(pred, target, k, 255))
    bad = torch.from_numpy(target).to(dtype)
    bad[2, 10, 12] = 9  # the very last pixel, in the last (ragged) chunk
    with pytest.raises(ConfigError, match=r"found 9\. "):
        cm.update(torch.from_numpy(pred).to(dtype), bad)


def test_many_classes_with_uint8_ignore() -> None:
    """150 classes (ADE20K): the flat index no longer fits int16; results must not change."""
    rng = np.random.default_rng(4)
    k = 150
    pred, target = random_batch(rng, k, (2, 40, 40), 0.05)
    cm = ConfusionMatrix(k)
    cm.update(torch.from_numpy(pred).to(torch.uint8), torch.from_numpy(target).to(torch.uint8))
    np.testing.assert_array_equal(cm.matrix.numpy(), np_confusion(pred, target, k, 255))


def test_more_classes_than_uint8_with_int16_ids() -> None:
    rng = np.random.default_rng(5)
    k = 300
    pred, target = random_batch(rng, k, (2, 30, 30), 0.05, ignore=-1)
    cm = ConfusionMatrix(k, ignore_index=-1)
    cm.update(torch.from_numpy(pred).to(torch.int16), torch.from_numpy(target).to(torch.int16))
    np.testing.assert_array_equal(cm.matrix.numpy(), np_confusion(pred, target, k, -1))


# --- wide labels on CPU (int64, as argmax and data loaders give them) -------------------------


def general_path_forbidden() -> AbstractContextManager[object]:
    """Fails the test if the update leaves the wide-label CPU path for the general one."""
    return mock.patch.object(
        ConfusionMatrix, "_histogram", side_effect=AssertionError("took the general path")
    )


@pytest.mark.parametrize("ignore_index", [255, 3, -1, -100])
@pytest.mark.parametrize("dtype", [torch.int16, torch.int32, torch.int64])
def test_wide_labels_hand_computed_example(dtype: torch.dtype, ignore_index: int) -> None:
    """The hand-computed example, its ignored pixels labelled with each kind of ignore index."""
    target = [[ignore_index if v == 255 else v for v in row] for row in EX_TARGET]
    cm = ConfusionMatrix(3, ignore_index=ignore_index)
    with general_path_forbidden():
        cm.update(t(EX_PRED, dtype), t(target, dtype))
    assert cm.matrix.tolist() == EX_MATRIX


@pytest.mark.parametrize("ignore_index", [255, 21, -1])
def test_int64_path_equals_uint8_path(ignore_index: int) -> None:
    rng = np.random.default_rng(7)
    k = 21
    pred, target = random_batch(rng, k, (4, 64, 64), 0.05, ignore=ignore_index)  # int64
    wide = ConfusionMatrix(k, ignore_index=ignore_index)
    with general_path_forbidden():
        wide.update(torch.from_numpy(pred), torch.from_numpy(target))
    # The same labels as uint8, a negative ignore index relabelled 255.
    ignore8 = 255 if ignore_index < 0 else ignore_index
    target8 = np.where(target == ignore_index, ignore8, target)
    narrow = ConfusionMatrix(k, ignore_index=ignore8)
    narrow.update(torch.from_numpy(pred).to(torch.uint8), torch.from_numpy(target8).to(torch.uint8))
    assert torch.equal(wide.matrix, narrow.matrix)
    np.testing.assert_array_equal(wide.matrix.numpy(), np_confusion(pred, target, k, ignore_index))


@pytest.mark.parametrize(
    ("ignore_index", "which", "value", "message"),
    [
        (255, "target", 100, r"ignore index 255; found 100\. "),  # its own histogram row
        (255, "target", 300, r"ignore index 255; found 300\. "),  # above the range check
        (255, "target", -5, r"ignore index 255; found -5\. "),
        (255, "target", 2**40 + 1, rf"found {2**40 + 1}\. "),  # low bits: class 1
        (-1, "target", -2, r"ignore index -1; found -2\. "),
        (-1, "target", 255, r"ignore index -1; found 255\. "),
        (255, "pred", 21, r"found values in \[0, 21\]\. Is num_classes=21"),
        (255, "pred", -1, r"found values in \[-1, 20\]\. "),
        (-1, "pred", 2**32, rf"found values in \[0, {2**32}\]\. "),  # low bits: class 0
    ],
)
@pytest.mark.parametrize("where", [5500, 5501, -1])  # either pixel of a pair; the odd last one
def test_invalid_int64_label_raises_and_adds_nothing(
    ignore_index: int, which: str, value: int, message: str, where: int
) -> None:
    rng = np.random.default_rng(8)
    k = 21
    pred, target = random_batch(rng, k, (3, 45, 61), 0.05, ignore=ignore_index)  # odd count
    cm = ConfusionMatrix(k, ignore_index=ignore_index)
    cm.update(torch.from_numpy(pred), torch.from_numpy(target))
    before = cm.matrix.clone()
    bad = {"pred": pred.copy(), "target": target.copy()}
    bad[which].reshape(-1)[where] = value
    with pytest.raises(ConfigError, match=message):
        cm.update(torch.from_numpy(bad["pred"]), torch.from_numpy(bad["target"]))
    assert torch.equal(cm.matrix, before)


def test_without_numba_the_general_path_counts_wide_labels(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """numba missing: the same matrix (and the same error) from the torch path."""
    monkeypatch.setattr(metrics, "_fused_kernel", lambda: None)
    rng = np.random.default_rng(10)
    k = 21
    pred, target = random_batch(rng, k, (2, 33, 17), 0.05)
    cm = ConfusionMatrix(k)
    cm.update(torch.from_numpy(pred), torch.from_numpy(target))
    np.testing.assert_array_equal(cm.matrix.numpy(), np_confusion(pred, target, k, 255))
    target.reshape(-1)[7] = 2**40 + 1
    with pytest.raises(ConfigError, match=rf"found {2**40 + 1}\. "):
        cm.update(torch.from_numpy(pred), torch.from_numpy(target))


def test_invalid_prediction_is_reported_before_an_earlier_invalid_target() -> None:
    """As on the general path: predictions are checked first, wherever the bad labels are."""
    cm = ConfusionMatrix(3)
    with pytest.raises(ConfigError, match=r"Predictions must be class ids in \[0, 2\]"):
        cm.update(t([[0, 1, 2, 5]]), t([[7, 1, 2, 0]]))
    assert cm.matrix.sum() == 0


def test_one_dimensional_strided_int64_inputs() -> None:
    rng = np.random.default_rng(9)
    pred, target = random_batch(rng, 5, (3000,), 0.1)
    cm = ConfusionMatrix(5)
    cm.update(torch.from_numpy(pred)[::3], torch.from_numpy(target)[1::3])
    np.testing.assert_array_equal(cm.matrix.numpy(), np_confusion(pred[::3], target[1::3], 5, 255))


# --- compute_metrics and SegMetrics -----------------------------------------------------------


def test_compute_metrics_validates_input() -> None:
    with pytest.raises(ConfigError, match=r"square \(K, K\); got shape \(2, 3\)"):
        compute_metrics(np.zeros((2, 3)))
    with pytest.raises(ConfigError, match="Got 2 class names for a 3-class"):
        compute_metrics(np.zeros((3, 3)), ["a", "b"])


def test_to_dict_is_json_ready() -> None:
    m = compute_metrics(np.array(EX_MATRIX), ["road", "car", "sky"])
    d = json.loads(json.dumps(m.to_dict(), allow_nan=False))
    assert d["miou"] == pytest.approx(EX_METRICS["miou"], abs=1e-15)
    assert d["per_class_iou"] == pytest.approx({"road": 0.6, "car": 0.5, "sky": 0.5})
    assert set(d) == {*METRIC_FIELDS, "per_class_iou", "per_class_acc", "per_class_dice"}


# --- property test against an independent NumPy implementation --------------------------------


def np_metrics(cm: np.ndarray) -> dict[str, object]:
    """Reference metrics written from tp/fp/fn per class (a different route from the module's)."""
    k = cm.shape[0]
    total = int(cm.sum())
    iou, acc, dice = [], [], []
    for c in range(k):
        tp = int(cm[c, c])
        fn = int(cm[c, :].sum()) - tp
        fp = int(cm[:, c].sum()) - tp
        iou.append(tp / (tp + fp + fn) if tp + fp + fn else NAN)
        acc.append(tp / (tp + fn) if tp + fn else NAN)
        dice.append(2 * tp / (2 * tp + fp + fn) if tp + fp + fn else NAN)

    def mean(xs: list[float]) -> float:
        kept = [x for x in xs if not math.isnan(x)]
        return sum(kept) / len(kept) if kept else NAN

    fwiou = NAN
    if total:
        fwiou = sum(int(cm[c].sum()) / total * iou[c] for c in range(k) if cm[c].sum() > 0)
    return {
        "miou": mean(iou),
        "pixel_acc": int(np.trace(cm)) / total if total else NAN,
        "mean_acc": mean(acc),
        "fwiou": fwiou,
        "mean_dice": mean(dice),
        "per_class_iou": iou,
        "per_class_acc": acc,
        "per_class_dice": dice,
    }


@settings(max_examples=60, deadline=None)
@given(
    k=st.integers(1, 30),
    shape=st.lists(st.integers(1, 24), min_size=1, max_size=3).map(tuple),
    ignore_frac=st.floats(0.0, 1.0),
    n_batches=st.integers(1, 3),
    ignore_kind=st.sampled_from(["255", "k", "negative"]),
    pred_dtype=st.sampled_from(INT_DTYPES),
    target_dtype=st.sampled_from(INT_DTYPES),
    chunk=st.sampled_from([1 << 19, 1, 3, 100]),
    seed=st.integers(0, 2**32 - 1),
)
def test_matches_independent_numpy_implementation(
    k: int,
    shape: tuple[int, ...],
    ignore_frac: float,
    n_batches: int,
    ignore_kind: str,
    pred_dtype: torch.dtype,
    target_dtype: torch.dtype,
    chunk: int,
    seed: int,
) -> None:
    ignore = {"255": 255, "k": k, "negative": -1}[ignore_kind]
    if target_dtype == torch.uint8 and ignore < 0:
        ignore = 255
    rng = np.random.default_rng(seed)
    cm = ConfusionMatrix(k, ignore_index=ignore)
    expected = np.zeros((k, k), dtype=np.int64)
    for _ in range(n_batches):
        # Classes drawn from random subsets, so some are absent from GT, prediction or both.
        gt_classes = rng.choice(k, size=rng.integers(1, k + 1), replace=False)
        pred_classes = rng.choice(k, size=rng.integers(1, k + 1), replace=False)
        pred = rng.choice(pred_classes, size=shape)
        target = rng.choice(gt_classes, size=shape)
        target[rng.random(shape) < ignore_frac] = ignore
        with mock.patch.object(metrics, "_CPU_CHUNK", chunk):
            cm.update(
                torch.from_numpy(pred).to(pred_dtype), torch.from_numpy(target).to(target_dtype)
            )
        expected += np_confusion(pred, target, k, ignore)
    np.testing.assert_array_equal(cm.matrix.numpy(), expected)

    got = cm.compute()
    ref = np_metrics(expected)
    for name in METRIC_FIELDS:
        np.testing.assert_allclose(getattr(got, name), ref[name], rtol=0, atol=1e-9, err_msg=name)
    for name in ("per_class_iou", "per_class_acc", "per_class_dice"):
        values = list(getattr(got, name).values())
        np.testing.assert_allclose(values, ref[name], rtol=0, atol=1e-9, err_msg=name)
