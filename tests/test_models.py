"""Tests for ``bench.models``: what the harness builds around an entry (``PadCrop``).

``PadCrop`` padding and cropping of images is exercised by every entry in
``tests/test_architecture_contract.py`` (the 97x131 input) and by ``tests/test_inference.py``;
here: the targets of an entry that computes its own training loss.
"""

from __future__ import annotations

import torch
from torch import nn

from bench.models import PadCrop
from bench.train import needs_targets


def test_padcrop_pads_targets_with_the_ignore_index():
    seen = {}

    class Recorder(nn.Module):
        def forward(self, x, targets=None):
            seen["x"], seen["targets"] = x.shape, targets
            return {"loss": x.sum() * 0}

    wrapper = PadCrop(Recorder(), 32, train_needs_targets=True)
    targets = torch.ones(1, 40, 33, dtype=torch.uint8)
    out = wrapper(torch.zeros(1, 3, 40, 33), targets=targets, ignore_index=7)
    assert seen["x"] == (1, 3, 64, 64) and set(out) == {"loss"}
    t = seen["targets"]
    assert t.shape == (1, 64, 64) and (t[:, :40, :33] == 1).all()
    assert (t[:, 40:] == 7).all() and (t[:, :, 33:] == 7).all()
    assert needs_targets(wrapper) and not needs_targets(PadCrop(Recorder(), 32))
