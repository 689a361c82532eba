"""Inference under an evaluation protocol: whole image or sliding window, multi-scale and flip.

:func:`predict` runs a model on a batch of normalised images (at their native size) the way an
:class:`~bench.data.transforms.EvalProtocol` says and returns class scores at the label's size,
``(N, K, H_label, W_label)``; ``scores.argmax(1)`` is the prediction.

* Base size: the image as is, resized to ``protocol.size``, or to a short side of
  ``protocol.short_side`` keeping the aspect ratio (bilinear, antialiased when shrinking).
* Whole mode: one forward pass per view. Slide mode: windows of ``crop`` every ``stride``
  pixels, the last row and column shifted back to end at the image border (mmsegmentation's
  ``slide_inference``); logits are summed and divided by the number of windows covering each
  pixel. An image smaller than the window is run whole.
* Views: every scale factor of ``protocol.scales`` (times the base size), and each one flipped
  when ``protocol.flip``. Each view's logits are resized (bilinear) to the label's size, flipped
  views flipped back. One view: its logits are returned. Several: the mean of their softmax
  probabilities (mmsegmentation's ``aug_test``), so no view dominates through its logit scale.

Labels are never resized: scoring happens at the label's native resolution.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from bench.data.transforms import EvalProtocol
from bench.errors import ConfigError
from bench.models import main_logits


def base_size(size: Sequence[int], protocol: EvalProtocol) -> tuple[int, int]:
    """``(H, W)`` the model sees at scale 1.0 for an image of ``size`` ``(H, W)``."""
    h, w = int(size[0]), int(size[1])
    if protocol.size is not None:
        return protocol.size
    if protocol.short_side is not None:
        factor = protocol.short_side / min(h, w)
        return max(1, round(h * factor)), max(1, round(w * factor))
    return h, w


def _resize(x: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    size = (int(size[0]), int(size[1]))
    if tuple(x.shape[-2:]) == size:
        return x
    shrink = size[0] < x.shape[-2] or size[1] < x.shape[-1]
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=shrink)


def _forward(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    logits = main_logits(model(x))
    if logits.ndim != 4 or logits.shape[0] != x.shape[0] or logits.shape[-2:] != x.shape[-2:]:
        raise ConfigError(
            f"Model output {tuple(logits.shape)} for input {tuple(x.shape)}: expected logits "
            f"(N, K, H, W) at the input resolution (wrap the model with bench.models.PadCrop)."
        )
    return logits


def window_starts(length: int, crop: int, stride: int) -> list[int]:
    """Start offsets of sliding windows along one axis (the last one ends at the border)."""
    if length <= crop:
        return [0]
    count = (length - crop + stride - 1) // stride + 1
    return [min(i * stride, length - crop) for i in range(count)]


def slide_logits(
    model: nn.Module, x: torch.Tensor, crop: Sequence[int], stride: Sequence[int]
) -> torch.Tensor:
    """Logits ``(N, K, H, W)`` averaged over overlapping ``crop`` windows of ``x``."""
    n, _, h, w = x.shape
    out: torch.Tensor | None = None
    count = x.new_zeros((1, 1, h, w))
    for y in window_starts(h, int(crop[0]), int(stride[0])):
        for x0 in window_starts(w, int(crop[1]), int(stride[1])):
            y1, x1 = min(y + int(crop[0]), h), min(x0 + int(crop[1]), w)
            logits = _forward(model, x[:, :, y:y1, x0:x1])  # (N, K, ch, cw)
            if out is None:
                out = x.new_zeros((n, logits.shape[1], h, w))
            out[:, :, y:y1, x0:x1] += logits
            count[:, :, y:y1, x0:x1] += 1
    assert out is not None
    return out / count


@torch.inference_mode()
def predict(
    model: nn.Module,
    images: torch.Tensor,
    protocol: EvalProtocol | None = None,
    *,
    out_size: Sequence[int] | None = None,
) -> torch.Tensor:
    """Class scores of ``images`` (N, 3, H, W) under ``protocol``, at ``out_size`` (default H, W).

    Args:
        model: In eval mode; returns logits at its input resolution (any size: PadCrop).
        images: Normalised images at their native size, all of one size.
        protocol: The evaluation protocol (default: whole image, native size, single view).
        out_size: ``(H, W)`` of the labels the scores are compared with.

    Returns:
        ``(N, K, *out_size)`` logits (one view) or mean probabilities (several views).

    Raises:
        ConfigError: the model's logits are not ``(N, K, H, W)`` at its input resolution.
    """
    protocol = protocol or EvalProtocol()
    h, w = images.shape[-2:]
    out_size = (int(out_size[0]), int(out_size[1])) if out_size is not None else (h, w)
    bh, bw = base_size((h, w), protocol)
    total: torch.Tensor | None = None
    for scale in protocol.scales:
        x = _resize(images, (max(1, round(bh * scale)), max(1, round(bw * scale))))
        for flipped in (False, True) if protocol.flip else (False,):
            xv = x.flip(-1) if flipped else x
            if protocol.mode == "slide":
                assert protocol.crop is not None and protocol.stride is not None
                logits = slide_logits(model, xv, protocol.crop, protocol.stride)
            else:
                logits = _forward(model, xv)
            if flipped:
                logits = logits.flip(-1)
            logits = _resize(logits, out_size)
            if protocol.views == 1:
                return logits
            probs = logits.softmax(1)
            total = probs if total is None else total + probs
    assert total is not None
    return total / protocol.views
