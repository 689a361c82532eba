"""Normalised latency (``bench.speed.normalised.measure_relative_latency``): the reference
network is fixed, block sizes are matched, and the ratio is computed as documented.

Timing is driven by a fake clock (time moves only when a network runs), so the assertions are
exact; the noise figures on a real, shared machine are in ``tests/benchmarks``.
"""

from __future__ import annotations

import os

import pytest
import torch
from torch import nn

from bench.complexity import count_complexity
from bench.errors import ConfigError
from bench.speed import (
    REFERENCE_NAME,
    SpeedConfig,
    matched_calls,
    measure_relative_latency,
    reference_net,
)
from tests.factories import FakeClock, device_error, touch_fresh_pages

WARMUP_2 = SpeedConfig(warmup=2)


class Ticking(nn.Module):
    """A 1x1 conv whose every call takes ``ms`` of fake time (times ``slow`` after ``after``
    calls, to imitate a machine that becomes busy) and touches ``pages`` fresh pages."""

    def __init__(
        self, clock: FakeClock, ms: float, slow: float = 1.0, after: int = 10**9, pages: int = 0
    ):
        super().__init__()
        self.conv = nn.Conv2d(3, 2, 1)
        self.clock, self.ms, self.slow, self.after, self.calls = clock, ms, slow, after, 0
        self.pages = pages

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        factor = self.slow if self.calls > self.after else 1.0
        self.clock.now += self.ms * factor / 1e3
        touch_fresh_pages(self.pages)
        return self.conv(x)


def test_reference_net_is_fixed() -> None:
    net = reference_net()
    assert REFERENCE_NAME == "refnet-v1"
    assert not net.training
    # 3*32*9 + 32*64*9 + 2 * 64*64*9 weights, 4 BNs (32 + 3*64 channels, weight and bias), and
    # the 1x1 classifier 64*8 + 8.
    assert sum(p.numel() for p in net.parameters()) == (
        864 + 18432 + 2 * 36864 + 2 * (32 + 3 * 64) + 64 * 8 + 8
    )
    report = count_complexity(net, (1, 3, 64, 64))
    assert report.macs == 32 * 32 * 864 + 16 * 16 * (18432 + 2 * 36864 + 64 * 8)  # 24.6 M
    a, b = reference_net(), reference_net()
    for pa, pb in zip(a.state_dict().values(), b.state_dict().values(), strict=True):
        assert torch.equal(pa, pb)  # seeded: the same weights every time
    state = torch.random.get_rng_state()
    reference_net()
    assert torch.equal(state, torch.random.get_rng_state())  # the global RNG is untouched
    x = torch.randn(2, 3, 37, 50)
    assert net(x).shape == (2, 8, 37, 50)


@pytest.mark.parametrize(
    ("model_ms", "ref_ms", "expected"),
    [
        (15.0, 3.0, (1, 5)),
        (3.0, 15.0, (5, 1)),
        (4.0, 4.0, (1, 1)),
        (4.0, 3.0, (1, 1)),
        (1000.0, 0.01, (1, 1000)),
    ],
)
def test_matched_calls(model_ms: float, ref_ms: float, expected: tuple[int, int]) -> None:
    assert matched_calls(model_ms, ref_ms) == expected


def test_matched_calls_rejects_non_positive_times() -> None:
    with pytest.raises(ValueError, match="reference_ms must be finite and > 0; got 0.0"):
        matched_calls(1.0, 0.0)


def test_ratio_blocks_and_record_fields(fake_clock: FakeClock) -> None:
    model, ref = Ticking(fake_clock, 15.0, pages=128), Ticking(fake_clock, 3.0)
    rel = measure_relative_latency(model, (3, 8, 8), WARMUP_2, rounds=4, reference=ref)
    assert rel.ratio == pytest.approx(5.0) and rel.ratio_cv == pytest.approx(0.0, abs=1e-12)
    assert (rel.model_calls, rel.reference_calls) == (1, 5)
    assert rel.model_ms == pytest.approx(15.0) and rel.reference_ms == pytest.approx(3.0)
    assert rel.reference == "custom:Ticking" and rel.rounds == 4
    # warm-up 2, calibration 3, then 4 rounds of 1 model call and 5 reference calls.
    assert (model.calls, ref.calls) == (2 + 3 + 4, 2 + 3 + 4 * 5)
    d = rel.to_dict()
    assert set(d) == {
        "reference",
        "latency_ratio",
        "latency_ratio_cv",
        "cpu_time_ratio",
        "model_ms_p50",
        "reference_ms_p50",
        "rounds",
        "model_calls",
        "reference_calls",
        "minor_faults",
        "threads",
        "cpu_affinity",
    }
    assert d["threads"] == torch.get_num_threads()
    # The 4 timed model calls touch 128 fresh pages each; warm-up and calibration (5 calls)
    # do not count.
    assert 4 * 128 // 2 <= d["minor_faults"] < 9 * 128
    assert model.training  # flags restored


def test_ratio_ignores_a_slowdown_that_hits_both(fake_clock: FakeClock) -> None:
    # After the calibration both networks become 3x slower (a busy machine): the absolute
    # milliseconds triple, the ratio does not move.
    model = Ticking(fake_clock, 12.0, slow=3.0, after=5)
    ref = Ticking(fake_clock, 4.0, slow=3.0, after=5)
    rel = measure_relative_latency(model, (3, 8, 8), WARMUP_2, rounds=6, reference=ref)
    assert rel.model_ms == pytest.approx(36.0)
    assert rel.ratio == pytest.approx(3.0)


def test_default_reference_runs_on_a_real_model() -> None:
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 2, 1))
    rel = measure_relative_latency(model, (3, 16, 16), SpeedConfig(warmup=1), rounds=3)
    assert rel.reference == REFERENCE_NAME
    assert rel.rounds == 3  # min_time_s 0: exactly the minimum
    assert 1 in (rel.model_calls, rel.reference_calls)
    assert rel.cpu_time_ratio is not None  # recorded on the CPU
    assert rel.threads == torch.get_num_threads()
    assert rel.cpu_affinity == sorted(os.sched_getaffinity(0))


def test_invalid_arguments() -> None:
    model = nn.Conv2d(3, 2, 1)
    with pytest.raises(ConfigError, match="rounds must be an int >= 1; found 0"):
        measure_relative_latency(model, (3, 8, 8), WARMUP_2, rounds=0)
    with pytest.raises(ConfigError, match=r"max_rounds must be an int >= rounds \(15\); found 3"):
        measure_relative_latency(model, (3, 8, 8), WARMUP_2, max_rounds=3)
    with pytest.raises(ConfigError, match="min_time_s must be a finite number of seconds >= 0"):
        measure_relative_latency(model, (3, 8, 8), WARMUP_2, min_time_s=float("nan"))
    with pytest.raises(ConfigError, match="only supported on CUDA"):
        measure_relative_latency(model, (3, 8, 8), SpeedConfig(dtype="fp16"))
    with pytest.raises(ConfigError, match=device_error("meta")):
        measure_relative_latency(model, (3, 8, 8), WARMUP_2, device="meta")
