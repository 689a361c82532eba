"""Tests for bench.evaluate on datasets whose masks are written out by hand."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import TensorDataset

from bench.errors import ConfigError
from bench.evaluate import evaluate

NAMES = ("background", "disc", "square")
IGNORE = 255


class Labels(NamedTuple):
    """A label space without a dataset entry (bench.evaluate.LabelSpace)."""

    num_classes: int
    ignore_index: int
    class_names: tuple[str, ...]


LABELS = Labels(3, IGNORE, NAMES)

# Two 2x2 masks: 4 pixels of class 0, 2 of class 1, 1 of class 2 and 1 ignored pixel.
MASKS = torch.tensor(
    [
        [[0, 1], [1, IGNORE]],
        [[2, 0], [0, 0]],
    ],
    dtype=torch.uint8,
)


def label_images(masks: torch.Tensor) -> torch.Tensor:
    """Images whose first channel carries the label, so a model can 'see' the answer."""
    x = masks.float().unsqueeze(1).repeat(1, 3, 1, 1)  # (N, 3, H, W)
    return x


class Oracle(nn.Module):
    """Returns one-hot logits of the label carried in the image (ignored pixels -> class 0)."""

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.num_classes = num_classes

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        labels = x[:, 0].long()  # (N, H, W)
        labels = torch.where(labels == IGNORE, 0, labels)
        return F.one_hot(labels, self.num_classes).permute(0, 3, 1, 2).float()  # (N, K, H, W)


def dataset() -> TensorDataset:
    return TensorDataset(label_images(MASKS), MASKS)


def test_constant_background_baseline_hand_computed_metrics():
    result = evaluate(
        None,
        dataset(),
        LABELS,
        constant_class=0,
        batch_size=1,
        progress=False,
    )
    # Confusion matrix (rows truth, columns prediction): everything lands in column 0.
    assert result.matrix.tolist() == [[4, 0, 0], [2, 0, 0], [1, 0, 0]]
    m = result.metrics
    # IoU_0 = 4 / (4 + 7 - 4) = 4/7; IoU_1 = IoU_2 = 0 (present, never predicted).
    assert m.per_class_iou == pytest.approx({"background": 4 / 7, "disc": 0.0, "square": 0.0})
    assert m.miou == pytest.approx(4 / 21)
    assert m.pixel_acc == pytest.approx(4 / 7)
    assert m.mean_acc == pytest.approx(1 / 3)
    assert m.fwiou == pytest.approx((4 / 7) * (4 / 7))
    # Dice_0 = 2 * 4 / (4 + 7) = 8/11.
    assert m.mean_dice == pytest.approx(8 / 33)
    assert result.num_images == 2
    assert result.sample_preds is None


@pytest.mark.parametrize("batch_size", [1, 2])
def test_per_image_matrices_are_each_images_own_and_sum_to_the_split(batch_size):
    result = evaluate(
        None, dataset(), LABELS, constant_class=0, batch_size=batch_size, progress=False
    )
    # Image 1: truth 0, 1, 1 (and one ignored pixel), all predicted 0. Image 2: truth 2, 0, 0, 0.
    assert result.per_image.tolist() == [
        [[1, 0, 0], [2, 0, 0], [0, 0, 0]],
        [[3, 0, 0], [0, 0, 0], [1, 0, 0]],
    ]
    assert (result.per_image.sum(axis=0) == result.matrix).all()
    assert not result.no_class


def test_a_bad_label_in_a_batch_adds_nothing_to_the_matrix():
    from bench.metrics import ConfusionMatrix

    cm = ConfusionMatrix(3)
    bad = MASKS.clone()
    bad[1, 0, 0] = 7  # the second image holds an invalid label
    with pytest.raises(ConfigError):
        cm.update_per_image(torch.zeros_like(MASKS), bad)
    assert cm.matrix.sum() == 0  # not even the first image's counts


def test_constant_class_two_scores_that_class():
    result = evaluate(
        None,
        dataset(),
        LABELS,
        constant_class=2,
        progress=False,
    )
    # IoU_2 = 1 / (1 + 7 - 1) = 1/7, the others 0; pixel accuracy 1/7.
    assert result.metrics.miou == pytest.approx(1 / 21)
    assert result.metrics.pixel_acc == pytest.approx(1 / 7)


def test_perfect_model_scores_one():
    result = evaluate(
        Oracle(3),
        dataset(),
        LABELS,
        batch_size=2,
        progress=False,
    )
    assert result.matrix.tolist() == [[4, 0, 0], [0, 2, 0], [0, 0, 1]]
    m = result.metrics
    assert (m.miou, m.pixel_acc, m.mean_acc, m.fwiou, m.mean_dice) == (1.0, 1.0, 1.0, 1.0, 1.0)


def test_dict_output_uses_the_out_key():
    class DictOracle(Oracle):
        def forward(self, x):
            return {"out": super().forward(x)}

    result = evaluate(
        DictOracle(3),
        dataset(),
        LABELS,
        progress=False,
    )
    assert result.metrics.miou == 1.0


def test_sample_preds_are_the_first_predictions_across_batches():
    result = evaluate(
        Oracle(3),
        dataset(),
        LABELS,
        batch_size=1,
        num_samples=2,
        progress=False,
    )
    preds = result.sample_preds
    assert preds.dtype == np.uint8 and preds.shape == (2, 2, 2)
    # The oracle predicts the label; the ignored pixel becomes class 0.
    assert preds.tolist() == [[[0, 1], [1, 0]], [[2, 0], [0, 0]]]


def test_sample_preds_stop_at_num_samples():
    result = evaluate(
        Oracle(3),
        dataset(),
        LABELS,
        batch_size=2,
        num_samples=1,
        progress=False,
    )
    assert result.sample_preds.tolist() == [[[0, 1], [1, 0]]]


class Shrinking(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.zeros(x.shape[0], 3, x.shape[2] // 2, x.shape[3] // 2)  # (N, 3, H/2, W/2)


class WrongClasses(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.zeros(x.shape[0], 5, *x.shape[2:])  # (N, 5, H, W)


@pytest.mark.parametrize(
    ("model", "found"), [(Shrinking(), "(2, 3, 1, 1)"), (WrongClasses(), "(2, 5, 2, 2)")]
)
def test_output_of_the_wrong_shape_raises(model, found):
    with pytest.raises(ConfigError) as exc:
        evaluate(
            model,
            dataset(),
            LABELS,
            batch_size=2,
            progress=False,
        )
    assert str(exc.value) == (
        f"Model output {found} does not match labels (2, 2, 2) with 3 classes: expected "
        f"(N, 3, H, W) at the label resolution."
    )


class DictWithoutOut(nn.Module):
    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"logits": torch.zeros(x.shape[0], 3, *x.shape[2:])}  # main logits misnamed


def test_dict_output_without_out_names_its_keys():
    with pytest.raises(ConfigError) as exc:
        evaluate(
            DictWithoutOut(),
            dataset(),
            LABELS,
            progress=False,
        )
    assert str(exc.value) == (
        "A model returning a dict must put its main logits under 'out'; got keys ['logits']."
    )


def test_no_model_and_no_constant_class_raises():
    with pytest.raises(ConfigError, match=r"needs a model or a constant_class"):
        evaluate(None, dataset(), LABELS, progress=False)


def test_evaluation_does_not_update_batchnorm_statistics():
    model = nn.Sequential(nn.Conv2d(3, 3, 1), nn.BatchNorm2d(3)).train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    evaluate(model, dataset(), LABELS, progress=False)
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
