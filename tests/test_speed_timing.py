"""Tests for ``bench.speed.timing``: loop control with a fake clock, autocast rules, devices,
model state, and the page-fault counter.

No test asserts on an absolute duration: loops are driven by a fake clock or by iteration counts.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from bench.errors import ConfigError
from bench.speed import timing
from bench.speed.config import SpeedConfig
from bench.speed.timing import measure_latency, minor_faults, time_iterations
from tests.factories import FakeClock, device_error, touch_fresh_pages

FAST_KW = {"warmup": 0, "min_iters": 2, "min_time_s": 0.0}
FAST = SpeedConfig(**FAST_KW)
CPU = torch.device("cpu")


def tiny_net() -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU())


class CountingNet(nn.Module):
    """Counts forward calls; optionally advances a fake clock by ``step_s`` per call."""

    def __init__(self, clock: FakeClock | None = None, step_s: float = 0.0) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 2, 1)
        self.calls = 0
        self.clock = clock
        self.step_s = step_s

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        if self.clock is not None:
            self.clock.now += self.step_s
        return self.conv(x)


def test_min_iters_and_warmup_respected() -> None:
    model = CountingNet()
    config = SpeedConfig(warmup=2, min_iters=7, max_iters=100, min_time_s=0.0)
    stats = measure_latency(model, (1, 3, 8, 8), config)
    assert stats.n == 7
    assert model.calls == 2 + 7


def test_max_iters_caps_min_time() -> None:
    config = SpeedConfig(warmup=0, min_iters=2, max_iters=3, min_time_s=1e6)
    assert measure_latency(CountingNet(), (1, 3, 8, 8), config).n == 3


def test_min_time_drives_iterations(fake_clock: FakeClock) -> None:
    model = CountingNet(fake_clock, step_s=0.010)
    config = SpeedConfig(warmup=1, min_iters=1, max_iters=100, min_time_s=0.035)
    stats = measure_latency(model, (1, 3, 8, 8), config)
    # Each forward takes 10 ms of fake time; 4 iterations are the first to reach 35 ms.
    assert stats.n == 4
    assert stats.p50 == pytest.approx(10.0)
    assert stats.std == pytest.approx(0.0, abs=1e-9)
    assert model.calls == 1 + 4


def test_timed_both_reports_wall_and_cpu_ms_per_call(fake_clock: FakeClock) -> None:
    model = CountingNet(fake_clock, step_s=0.004)
    x = torch.zeros(1, 3, 4, 4)
    assert timing.timed_both(lambda: model(x), CPU, 5) == pytest.approx((4.0, 4.0))
    assert model.calls == 5


def test_fp16_on_cpu_and_unknown_dtype_raise_config_errors() -> None:
    with pytest.raises(ConfigError, match="'fp16' is only supported on CUDA"):
        measure_latency(tiny_net(), (1, 3, 8, 8), SpeedConfig(dtype="fp16"))
    with pytest.raises(ConfigError, match="dtype must be one of fp32, fp16, bf16; found 'float16'"):
        timing.autocast(CPU, "float16")


@pytest.mark.parametrize("device", ["meta", "tpu", "cuda:x"])
def test_unknown_device_gets_the_one_device_message(device: str) -> None:
    with pytest.raises(ConfigError, match=device_error(device)):
        measure_latency(tiny_net(), (1, 3, 8, 8), FAST, device=device)


def test_model_on_another_device_is_named() -> None:
    model = tiny_net().to("meta")
    with pytest.raises(ValueError, match=r"tensor '0.weight' is on meta.*model.to\('cpu'\)"):
        measure_latency(model, (1, 3, 8, 8), FAST)


def test_bf16_on_cpu_runs_under_autocast() -> None:
    seen: list[torch.dtype] = []
    model = tiny_net()
    model[0].register_forward_hook(lambda _m, _i, out: seen.append(out.dtype))
    stats = measure_latency(model, (1, 3, 8, 8), SpeedConfig(dtype="bf16", **FAST_KW))
    assert stats.n == 2
    assert set(seen) == {torch.bfloat16}  # the convolution ran in bf16


def test_model_state_restored_after_channels_last() -> None:
    model = tiny_net().train()
    weight = model[0].weight
    before = weight.detach().clone()
    measure_latency(model, (1, 3, 8, 8), SpeedConfig(channels_last=True, **FAST_KW))
    assert model.training is True
    assert model[0].weight is weight
    assert weight.is_contiguous()
    assert torch.equal(weight, before)
    assert model[1].num_batches_tracked.item() == 0  # eval mode: BN stats untouched


def test_minor_faults_counts_touched_pages() -> None:
    before = minor_faults()
    touch_fresh_pages(512)
    assert minor_faults() - before >= 256


def test_time_iterations_counts_faults_of_timed_calls_only() -> None:
    pages, warmup, iters = 256, 3, 4

    def step() -> None:
        touch_fresh_pages(pages)

    times, faults = time_iterations(
        step, CPU, warmup=warmup, min_iters=iters, max_iters=iters, min_time_s=0.0
    )
    assert len(times) == iters
    # Every timed call faults its pages in; the warm-up calls must not count.
    assert iters * pages // 2 <= faults < (iters + warmup) * pages
