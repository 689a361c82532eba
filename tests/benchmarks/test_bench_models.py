"""Forward passes of every registered architecture, and loader throughput (pytest-benchmark).

Comparing two commits on one machine (the figures only mean something relative to each other,
on the same machine, with the same threads)::

    git checkout main
    python -m pytest tests/benchmarks -m "slow or not slow" --benchmark-enable \\
        --benchmark-autosave
    git checkout my-branch
    python -m pytest tests/benchmarks -m "slow or not slow" --benchmark-enable \\
        --benchmark-compare --benchmark-compare-fail=median:15%

``--benchmark-autosave`` stores the run under ``.benchmarks/``; ``--benchmark-compare`` compares
with the newest stored run and ``--benchmark-compare-fail=median:15%`` fails a test whose median
got more than 15% slower. On a shared machine, give the runs a quiet core (``taskset -c N``)
and one thread (``OMP_NUM_THREADS=1``), or use the suites' normalised latency instead
(``python run_bench.py check``), which is measured against a reference network in the same
process.

The per-architecture forward passes are marked ``slow`` (building all 27 built-in models takes
~25 s of CPU); with the default ``--benchmark-disable`` each benchmark body runs once and only
its output is checked. Everything runs on one intra-op thread.
"""

from __future__ import annotations

import time

import pytest
import torch
from pytest_benchmark.fixture import BenchmarkFixture
from torch.utils.data import DataLoader

import architectures
from bench.data.synthetic import SyntheticShapes
from bench.models import build_model

SIZE = 64
NUM_CLASSES = 8

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.slow
@pytest.mark.parametrize("arch", architectures.names())
def test_bench_forward(benchmark: BenchmarkFixture, arch: str) -> None:
    """Batch-1 eval forward pass at 3x64x64 under ``inference_mode`` (after one warm-up)."""
    torch.manual_seed(0)
    model = build_model(arch, num_classes=NUM_CLASSES).eval()
    x = torch.randn(1, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        model(x)  # warm-up: allocator, kernel selection

        out = benchmark(model, x)
    benchmark.extra_info.update(
        arch=arch, input_shape=[1, 3, SIZE, SIZE], threads=torch.get_num_threads()
    )
    assert out.shape == (1, NUM_CLASSES, SIZE, SIZE)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("num_workers", [0])
def test_bench_loader(benchmark: BenchmarkFixture, num_workers: int) -> None:
    """Batches/s of the training loader (synthetic 64x64, batch 8, shuffled) over 64 images."""
    ds = SyntheticShapes("train", size=SIZE, num_samples=64)
    seconds: list[float] = []

    def one_epoch() -> int:
        loader = DataLoader(
            ds,
            batch_size=8,
            shuffle=True,
            num_workers=num_workers,
            generator=torch.Generator().manual_seed(0),
        )
        start = time.perf_counter()
        n = 0
        for images, masks in loader:
            assert images.shape == (8, 3, SIZE, SIZE) and masks.shape == (8, SIZE, SIZE)
            n += images.shape[0]
        seconds.append(time.perf_counter() - start)
        return n

    assert benchmark(one_epoch) == 64
    seconds.sort()
    benchmark.extra_info.update(
        images_per_s_median=round(64 / seconds[len(seconds) // 2], 1), num_workers=num_workers
    )
