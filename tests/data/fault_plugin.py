"""Architectures for the fault-tolerance and regression-gate tests (a ``--plugin`` file).

* ``fault_conv_a`` / ``_b`` / ``_c``: tiny conv nets that train in milliseconds.
* ``fault_skipnet``: a small encoder-decoder whose full-resolution skip connection carries the
  shape boundaries; ``SEMSEG_TEST_BREAK_SKIP=1`` replaces the skip by zeros (the planted
  regression of ``tests/test_regression.py``).
* ``fault_sleepy``: its builder sleeps ``SEMSEG_TEST_SLEEP_S`` seconds (default 0), so a test
  can kill a sweep while it is busy with it.
* ``fault_hang``: never finishes a training step (for ``--timeout-per-arch``).
* ``fault_crash``: kills its own process in training when it runs in a child process (as under
  ``--timeout-per-arch``); in the main process it raises instead.
* ``fault_nan``: its training loss is NaN from the first step.
* ``fault_oom``: asks the allocator for 1 PiB in training (a real out-of-memory error).
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import time

import torch
import torch.nn.functional as F
from torch import nn

from architectures import ArchInfo, register


def _info(name: str, title: str) -> ArchInfo:
    return ArchInfo(
        name=name, title=title, paper="1411.4038", year=2026, family="test", input_divisor=1
    )


class TinyConv(nn.Module):
    def __init__(self, num_classes: int, width: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(3, width, 3, padding=1),
            nn.BatchNorm2d(width),
            nn.ReLU(),
            nn.Conv2d(width, num_classes, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)  # (N, K, H, W)


for _name, _width in (("fault_conv_a", 4), ("fault_conv_b", 6), ("fault_conv_c", 8)):
    register(_info(_name, f"tiny conv, width {_width}"))(
        lambda *, num_classes, _w=_width: TinyConv(num_classes, _w)
    )


class SkipNet(nn.Module):
    """Stem at full resolution, a 1/4-resolution body, and a skip from the stem to the head."""

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.broken = os.environ.get("SEMSEG_TEST_BREAK_SKIP") == "1"
        self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU())
        self.down = nn.Sequential(
            nn.Conv2d(16, 32, 3, stride=4, padding=1),
            nn.BatchNorm2d(32),
            nn.ReLU(),
            nn.Conv2d(32, 32, 3, padding=1),
            nn.BatchNorm2d(32),
            nn.ReLU(),
        )
        self.head = nn.Conv2d(32 + 16, num_classes, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skip = self.stem(x)  # (N, 16, H, W)
        deep = F.interpolate(
            self.down(skip), size=x.shape[-2:], mode="bilinear", align_corners=False
        )  # (N, 32, H, W)
        if self.broken:
            skip = torch.zeros_like(skip)
        return self.head(torch.cat([deep, skip], 1))  # (N, K, H, W)


@register(_info("fault_skipnet", "skip-connection net"))
def fault_skipnet(*, num_classes: int) -> nn.Module:
    return SkipNet(num_classes)


@register(_info("fault_sleepy", "slow to build"))
def fault_sleepy(*, num_classes: int) -> nn.Module:
    time.sleep(float(os.environ.get("SEMSEG_TEST_SLEEP_S", "0")))
    return TinyConv(num_classes, 4)


class Faulty(TinyConv):
    def __init__(self, num_classes: int, fault: str) -> None:
        super().__init__(num_classes, 4)
        self.fault = fault

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = super().forward(x)
        if not self.training:
            return out
        if self.fault == "hang":
            while True:
                time.sleep(0.05)
        if self.fault == "crash":
            if multiprocessing.parent_process() is None:
                raise RuntimeError("fault_crash only crashes inside a child process")
            os.kill(os.getpid(), signal.SIGKILL)
        if self.fault == "nan":
            return out * float("nan")
        if self.fault == "oom":
            torch.empty(1 << 50, dtype=torch.uint8)  # 1 PiB: the allocator refuses
        return out


for _fault in ("hang", "crash", "nan", "oom"):
    register(_info(f"fault_{_fault}", f"fault: {_fault}"))(
        lambda *, num_classes, _f=_fault: Faulty(num_classes, _f)
    )
