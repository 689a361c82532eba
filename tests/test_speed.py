"""Tests for the ``bench.speed`` package as a whole: its public names and its size.

The measurements are tested per module: ``test_speed_config``, ``test_speed_statistics``,
``test_speed_timing``, ``test_speed_throughput``, ``test_speed_memory``, ``test_speed_roofline``,
``test_speed_normalised`` and ``test_speed_report``; its layer (measurement imports neither
training, data nor the sweep) in ``test_layers``.
"""

from __future__ import annotations

import bench.speed as sp
from bench.speed import config, memory, normalised, report, roofline, throughput, timing
from bench.suites import SpeedConfig as SuiteSpeedConfig
from tests.factories import ROOT

PACKAGE = ROOT / "bench" / "speed"


def test_public_names_come_from_their_modules() -> None:
    assert sp.measure_speed is report.measure_speed
    assert sp.measure_relative_latency is normalised.measure_relative_latency
    assert sp.reference_net is normalised.reference_net and sp.REFERENCE_NAME == "refnet-v1"
    assert sp.matmul_rate is roofline.matmul_rate
    assert sp.PeakMemory is memory.PeakMemory
    assert sp.throughput_sweep is throughput.throughput_sweep
    assert sp.measure_latency is timing.measure_latency
    assert sp.SpeedConfig is config.SpeedConfig
    assert all(hasattr(sp, name) for name in sp.__all__)


def test_suites_use_the_same_speed_config() -> None:
    assert SuiteSpeedConfig is sp.SpeedConfig


def test_modules_are_under_the_size_limit() -> None:
    sizes = {p.name: len(p.read_text().splitlines()) for p in PACKAGE.glob("*.py")}
    assert "report.py" in sizes and max(sizes.values()) < 700, sizes
