"""Generation throughput of the ``synthetic`` dataset (pytest-benchmark).

Run with ``python -m pytest tests/benchmarks/test_bench_synthetic.py --benchmark-enable``; the
images/s figure is in ``extra_info``. No assertion is made on time (shared machines are noisy):
with the default ``--benchmark-disable`` the function runs once and only its output is checked.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch
from pytest_benchmark.fixture import BenchmarkFixture

from bench.data.synthetic import SyntheticShapes

N_IMAGES = 64


@pytest.mark.parametrize("size", [64, 128])
def test_bench_synthetic_getitem(benchmark: BenchmarkFixture, size: int) -> None:
    """Time ``dataset[i]`` (generation + normalisation to a tensor) for 64 images, one core."""
    ds = SyntheticShapes("train", size=size)
    seconds: list[float] = []

    def generate() -> list[tuple[torch.Tensor, torch.Tensor]]:
        start = time.perf_counter()
        out = [ds[i] for i in range(N_IMAGES)]
        seconds.append(time.perf_counter() - start)
        return out

    batch = benchmark(generate)

    seconds.sort()
    benchmark.extra_info.update(
        images=N_IMAGES,
        size=size,
        timed_calls=len(seconds),  # includes pytest-benchmark calibration calls
        images_per_s_best=round(N_IMAGES / seconds[0], 1),
        images_per_s_median=round(N_IMAGES / seconds[len(seconds) // 2], 1),
        torch_threads=torch.get_num_threads(),
    )
    assert len(batch) == N_IMAGES
    for image, mask in batch:
        assert image.shape == (3, size, size) and image.dtype == torch.float32
        assert mask.shape == (size, size) and mask.dtype == torch.uint8
    # Checked in numpy: small torch reductions wake torch's thread pool, which on a busy shared
    # machine can take longer than the generation itself.
    images = np.stack([image.numpy() for image, _ in batch])
    masks = np.stack([mask.numpy() for _, mask in batch])
    assert np.isfinite(images).all()
    assert masks.max() < 8 and (masks > 0).any()
