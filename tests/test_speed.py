"""Tests for the ``bench.speed`` package as a whole: its public names, its size and its layer.

The measurements are tested per module: ``test_speed_config``, ``test_speed_statistics``,
``test_speed_timing``, ``test_speed_throughput``, ``test_speed_memory``, ``test_speed_roofline``,
``test_speed_normalised`` and ``test_speed_report``.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import bench.speed as sp
from bench.speed import config, memory, normalised, report, roofline, throughput, timing
from bench.suites import SpeedConfig as SuiteSpeedConfig

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "bench" / "speed"
FORBIDDEN = ("bench.train", "bench.data", "bench.suites", "bench.runner", "bench.cli")
ALLOWED = (
    "bench.complexity",
    "bench.errors",
    "bench.devices",
    "bench.speed",
    "bench.validation",
)


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


def imported_bench_modules(path: Path) -> set[str]:
    """Every ``bench...`` module a file imports, at any level (function bodies included)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("bench"))
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("bench"):
            found.add(node.module or "")
    return found


def test_speed_imports_only_measurement_and_base_modules() -> None:
    for path in PACKAGE.glob("*.py"):
        for module in imported_bench_modules(path):
            assert module.startswith(ALLOWED), f"{path.name} imports {module}"


def test_config_imports_no_torch() -> None:
    # The suite layer builds SpeedConfig; the module itself stays data and checks only.
    tree = ast.parse((PACKAGE / "config.py").read_text())
    names = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    names |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert not {m for m in names if m and m.split(".")[0] in ("torch", "numpy")}


def test_importing_speed_loads_no_higher_layer() -> None:
    code = (
        "import json, sys; import bench.speed; "
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith('bench'))))"
    )
    res = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    loaded = json.loads(res.stdout.strip().splitlines()[-1])
    assert "bench.speed.report" in loaded
    assert not [m for m in loaded if m.startswith(FORBIDDEN)], loaded
