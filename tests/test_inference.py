"""Tests for bench.inference: whole / sliding-window inference, multi-scale and flip TTA."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from bench.data.transforms import EvalProtocol
from bench.errors import ConfigError
from bench.inference import base_size, predict, slide_logits, window_starts
from bench.models import PadCrop


class Pointwise(nn.Module):
    """A 1x1 conv: translation-equivariant, so windows see exactly what the whole image sees."""

    def __init__(self, k: int = 4) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(3, k, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class ColumnRamp(nn.Module):
    """Logits ``x[:, :2] + column index`` on channel 0: not invariant to a horizontal flip."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ramp = torch.arange(x.shape[-1], dtype=x.dtype).expand(x.shape[-2], -1)
        out = x[:, :2].clone()
        out[:, 0] += ramp
        return out


class CountCalls(nn.Module):
    """Returns ones and records the input sizes it saw."""

    def __init__(self) -> None:
        super().__init__()
        self.sizes: list[tuple[int, int]] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.sizes.append(tuple(x.shape[-2:]))
        return torch.ones(x.shape[0], 2, *x.shape[-2:])


def test_window_starts_cover_the_axis_and_end_at_the_border():
    assert window_starts(10, 4, 3) == [0, 3, 6]
    assert window_starts(10, 4, 4) == [0, 4, 6]
    assert window_starts(3, 4, 2) == [0]
    assert window_starts(8, 4, 4) == [0, 4]
    for length, crop, stride in ((97, 32, 21), (1024, 769, 513), (50, 50, 10)):
        starts = window_starts(length, crop, stride)
        assert starts[0] == 0 and starts[-1] + crop == max(length, crop)
        assert all(b - a <= stride for a, b in zip(starts, starts[1:], strict=False))


def test_whole_mode_returns_the_model_logits():
    model = Pointwise().eval()
    x = torch.randn(2, 3, 9, 13)
    assert torch.allclose(predict(model, x), model(x))


def test_slide_equals_whole_for_a_pointwise_model():
    model = Pointwise().eval()
    x = torch.randn(2, 3, 21, 30)
    slide = predict(model, x, EvalProtocol(mode="slide", crop=(8, 11), stride=(5, 7)))
    assert slide.shape == (2, 4, 21, 30)
    assert torch.allclose(slide, model(x), atol=1e-5)


def test_slide_averages_overlapping_windows():
    class WindowMean(nn.Module):  # every window predicts its own mean input everywhere
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x[:, :1].mean(dim=(2, 3), keepdim=True).expand(-1, -1, *x.shape[-2:])

    x = torch.zeros(1, 3, 1, 6)
    x[..., 0, 5] = 6.0  # windows of width 4, stride 2: starts 0, 2 -> [0..3], [2..5]
    out = slide_logits(WindowMean(), x, (1, 4), (1, 2))[0, 0, 0]
    # Window 1 mean 0, window 2 mean 1.5; columns 2-3 are covered by both: (0 + 1.5) / 2.
    assert out.tolist() == [0.0, 0.0, 0.75, 0.75, 1.5, 1.5]


def test_small_images_run_whole_in_slide_mode():
    model = CountCalls()
    predict(model, torch.zeros(1, 3, 5, 6), EvalProtocol(mode="slide", crop=(8, 8), stride=(4, 4)))
    assert model.sizes == [(5, 6)]


def test_flip_tta_averages_probabilities_of_the_flipped_back_view():
    model = ColumnRamp()
    x = torch.randn(1, 3, 4, 5)
    got = predict(model, x, EvalProtocol(flip=True))
    plain = model(x).softmax(1)
    flipped_back = model(x.flip(-1)).flip(-1).softmax(1)
    assert torch.allclose(got, (plain + flipped_back) / 2, atol=1e-6)
    # For a flip-equivariant model, flip TTA is just the softmax of the single view.
    pw = Pointwise().eval()
    assert torch.allclose(predict(pw, x, EvalProtocol(flip=True)), pw(x).softmax(1), atol=1e-6)


def test_multi_scale_runs_each_scale_and_returns_at_the_label_size():
    model = CountCalls()
    out = predict(
        model, torch.zeros(2, 3, 20, 40), EvalProtocol(scales=(0.5, 1.0, 1.5)), out_size=(10, 20)
    )
    assert model.sizes == [(10, 20), (20, 40), (30, 60)]
    assert out.shape == (2, 2, 10, 20)
    assert torch.allclose(out, torch.full_like(out, 0.5))  # softmax of equal logits


def test_resize_and_short_side_set_the_base_size():
    assert base_size((375, 500), EvalProtocol(short_side=512)) == (512, 683)
    assert base_size((375, 500), EvalProtocol(size=(256, 256))) == (256, 256)
    assert base_size((375, 500), EvalProtocol()) == (375, 500)
    model = CountCalls()
    out = predict(model, torch.zeros(1, 3, 30, 40), EvalProtocol(short_side=15))
    assert model.sizes == [(15, 20)] and out.shape == (1, 2, 30, 40)


def test_logits_are_resized_bilinearly_to_the_label_size():
    model = Pointwise().eval()
    x = torch.ones(1, 3, 8, 8)  # constant image: constant logits at any size
    out = predict(model, x, EvalProtocol(size=(4, 4)), out_size=(8, 8))
    assert torch.allclose(out, model(x), atol=1e-5)


def test_padcrop_models_work_with_any_window():
    model = PadCrop(Pointwise(), divisor=8).eval()
    x = torch.randn(1, 3, 19, 23)
    out = predict(model, x, EvalProtocol(mode="slide", crop=(10, 10), stride=(7, 7)))
    assert torch.allclose(out, model(x), atol=1e-5)


def test_a_model_with_the_wrong_output_size_is_reported():
    class Half(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x[:, :2, ::2, ::2]

    with pytest.raises(ConfigError, match="at the input resolution"):
        predict(Half(), torch.zeros(1, 3, 8, 8))
