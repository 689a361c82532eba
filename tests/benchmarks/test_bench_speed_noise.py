"""Run-to-run noise of raw vs normalised latency: why ``check`` gates on the normalised figure.

Each run is a fresh Python process (as two CI runs would be) that builds one model and measures,
in this order: the raw batch-1 latency (``measure_latency``, median ms), the dense-GEMM rate
(``matmul_rate``, once per process; ``p50 x GFLOP/s`` is the "matmul-normalised" figure), and
the latency relative to the reference network timed interleaved with the model
(``measure_relative_latency``). ``SEMSEG_NOISE_RUNS`` (default 6) plain runs give the spread
``max / min - 1`` of each figure.

Then ``SEMSEG_NOISE_FAULT_RUNS`` (default 2) runs start with glibc told to hand freed memory
back to the OS at once (``MALLOC_TRIM_THRESHOLD_=0 MALLOC_MMAP_THRESHOLD_=65536``), so every
forward pass page-faults its buffers in again: the slow-process condition seen on this machine.
The interleaved reference does *not* cancel this one (page-fault cost follows the bytes a
network allocates, not its compute, and the two differ), which is why the records carry
``minor_faults``: those runs stand out by four orders of magnitude there, and ``check`` prints
them next to a failing speed row.

Only with ``--benchmark-enable`` or ``SEMSEG_BENCH_ASSERT_SPEED=1`` does the test assert that the
normalised spread of the plain runs is below the raw one (timing assertions on a shared machine
are otherwise not made); the figures are printed with ``-s``::

    SEMSEG_BENCH_ASSERT_SPEED=1 python -m pytest tests/benchmarks/test_bench_speed_noise.py \\
        -m slow -s

A single run: ``python tests/benchmarks/test_bench_speed_noise.py ARCH SIZE`` prints one JSON
line.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RUNS = int(os.environ.get("SEMSEG_NOISE_RUNS", "6"))
FAULT_RUNS = int(os.environ.get("SEMSEG_NOISE_FAULT_RUNS", "2"))
ARCH = os.environ.get("SEMSEG_NOISE_ARCH", "tv_lraspp_mobilenet_v3_large")
SIZE = int(os.environ.get("SEMSEG_NOISE_SIZE", "64"))
PAGE_FAULTING = {"MALLOC_TRIM_THRESHOLD_": "0", "MALLOC_MMAP_THRESHOLD_": "65536"}


def measure_once(arch: str, size: int) -> dict[str, float | int]:
    """One run's figures (called in a fresh process)."""
    import torch

    from bench import speed as sp
    from bench.models import build_model
    from bench.record_sections import NORMALISED_MIN_TIME_S, NORMALISED_ROUNDS

    torch.manual_seed(0)
    model = build_model(arch, num_classes=8).eval()
    config = sp.SpeedConfig(warmup=2, min_iters=10, max_iters=30, min_time_s=0.3)
    raw = sp.measure_latency(model, (1, 3, size, size), config)
    gemm = sp.matmul_rate("cpu")
    rel = sp.measure_relative_latency(
        model, (3, size, size), config, rounds=NORMALISED_ROUNDS, min_time_s=NORMALISED_MIN_TIME_S
    )  # as in a sweep
    return {
        "raw_p50_ms": raw.p50,
        "matmul_gflops": gemm,
        "p50_x_matmul": raw.p50 * gemm / 1e3,
        "ratio": rel.ratio,
        "ratio_cv": rel.ratio_cv,
        "cpu_time_ratio": rel.cpu_time_ratio,
        "rounds": rel.rounds,
        "model_ms": rel.model_ms,
        "minor_faults": rel.minor_faults,
        "model_calls": rel.model_calls,
        "reference_calls": rel.reference_calls,
        "threads": rel.threads,
    }


def spread(values: list[float]) -> float:
    return max(values) / min(values) - 1


def cv(values: list[float]) -> float:
    return statistics.stdev(values) / statistics.fmean(values)


@pytest.mark.slow
def test_normalised_latency_varies_less_than_raw(request: pytest.FixtureRequest) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    for key in PAGE_FAULTING:
        env.pop(key, None)
    runs = []
    for i in range(RUNS + FAULT_RUNS):
        extra = PAGE_FAULTING if i >= RUNS else {}
        res = subprocess.run(
            [sys.executable, __file__, ARCH, str(SIZE)],
            cwd=ROOT,
            env={**env, **extra},
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert res.returncode == 0, res.stderr
        runs.append(
            {**json.loads(res.stdout.strip().splitlines()[-1]), "page_faulting": bool(extra)}
        )

    print(f"\n{ARCH} at {SIZE}x{SIZE}, batch 1, 1 thread, one process per run:")
    print(
        " run  glibc-trim  raw p50 ms  p50 x GEMM  ratio to ref  ratio CV  CPU-time ratio  rounds"
        "  minor faults"
    )
    for i, r in enumerate(runs):
        print(
            f" {i + 1:3d}  {'yes' if r['page_faulting'] else 'no':>10}  {r['raw_p50_ms']:10.2f}"
            f"  {r['p50_x_matmul']:10.3f}  {r['ratio']:12.3f}  {r['ratio_cv']:8.3f}"
            f"  {r['cpu_time_ratio']:14.3f}  {r['rounds']:6d}  {r['minor_faults']:12d}"
        )
    plain = runs[:RUNS]
    keys = ("raw_p50_ms", "p50_x_matmul", "ratio", "cpu_time_ratio")
    figures = {key: [r[key] for r in plain] for key in keys}
    print(f" over the {RUNS} plain runs:")
    for key, values in figures.items():
        print(
            f" {key:>14}: spread (max/min - 1) {100 * spread(values):6.1f}%, "
            f"CV {100 * cv(values):5.1f}%"
        )
    if FAULT_RUNS:
        faulting = runs[RUNS:]
        print(
            f" page-faulting runs: ratio {min(r['ratio'] for r in faulting):.3f}-"
            f"{max(r['ratio'] for r in faulting):.3f}, CPU-time ratio "
            f"{min(r['cpu_time_ratio'] for r in faulting):.3f}-"
            f"{max(r['cpu_time_ratio'] for r in faulting):.3f}, minor faults "
            f"{min(r['minor_faults'] for r in faulting)}-"
            f"{max(r['minor_faults'] for r in faulting)} (plain runs: "
            f"{max(r['minor_faults'] for r in plain)} at most)"
        )

    assert all(r["threads"] == 1 for r in runs)
    assert all(r["ratio"] > 0 and r["raw_p50_ms"] > 0 for r in runs)
    enabled = not request.config.getoption("benchmark_disable", default=True)
    if enabled or os.environ.get("SEMSEG_BENCH_ASSERT_SPEED") == "1":
        assert spread(figures["ratio"]) < spread(figures["raw_p50_ms"])
        assert spread(figures["cpu_time_ratio"]) < spread(figures["raw_p50_ms"])


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    print(json.dumps(measure_once(sys.argv[1], int(sys.argv[2]))))
