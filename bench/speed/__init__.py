"""Inference speed of a model: latency, throughput sweep, peak memory and compute efficiency.

Every measurement takes the model, the input shape and a :class:`SpeedConfig` (a suite's
``speed:`` section). What is measured, and how:

* **Latency** (batch 1, :mod:`~bench.speed.timing`): per-iteration wall time of ``model(x)`` in
  eval mode under ``torch.inference_mode()``. CPU iterations are timed with
  ``time.perf_counter``; CUDA iterations with a pair of ``torch.cuda.Event(enable_timing=True)``
  and a synchronisation after each iteration. After ``warmup`` untimed iterations, timing
  continues until both ``min_iters`` and ``min_time_s`` are reached, or ``max_iters`` iterations
  were timed. Percentiles are ``np.percentile(method="linear")`` (:mod:`~bench.speed.statistics`).
* **Reduced precision**: ``"fp16"``/``"bf16"`` run under ``torch.autocast`` (CUDA: both; CPU:
  ``bf16`` only, ``fp16`` raises ``ConfigError``). The autocast context spans all iterations of
  one measurement, so autocast's weight-cast cache is reused between iterations, approximating a
  model converted once.
* **Throughput** (:mod:`~bench.speed.throughput`): images/s at batch sizes 1, 2, 4, ... up to
  ``max_batch``. An out-of-memory error stops the doubling; the largest batch that fitted is
  reported.
* **Peak memory** (:class:`PeakMemory`, :mod:`~bench.speed.memory`): CUDA
  ``max_memory_allocated`` (absolute, weights included); on the CPU the growth of the resident
  set size over the value on entry, sampled by a background thread from ``/proc/self/statm``
  after returning the C heap's free pages to the OS (glibc ``malloc_trim``); a lower bound.
* **Efficiency** (:mod:`~bench.speed.roofline`): achieved GFLOP/s (``2 x GMACs x images/s``)
  divided by the GFLOP/s of a dense GEMM measured on the same device and dtype
  (:func:`matmul_rate`).
* **Normalised latency** (:func:`measure_relative_latency`, :mod:`~bench.speed.normalised`):
  the model's batch-1 latency divided by that of a fixed reference network
  (:func:`reference_net`, ``refnet-v1``) timed alternately with it in the same process.
  Absolute milliseconds drift between runs on a shared machine (contention, clock changes,
  page-fault storms); the ratio drifts much less, so regression checks compare it. Minor page
  faults, threads and CPU affinity are recorded with it.

:func:`measure_speed` (:mod:`~bench.speed.report`) runs peak memory, latency, throughput and
efficiency and returns the run record's ``speed`` object (:class:`SpeedReport`).

* **Variants** (:func:`measure_variants`, :mod:`~bench.speed.variants`): the batch-1 latency and
  the throughput at one batch size again, under each deployment setting of ``speed.variants``
  (``eager``, ``channels_last``, ``compile``, ``fp16``, ``bf16``), with the speed-up over
  ``eager``; a variant that fails is recorded as failed and the others go on.

Sizes in MB are MiB (2**20 bytes). Backend flags (``cudnn.benchmark``) are not touched at import;
:func:`measure_speed` sets ``cudnn.benchmark`` for its own duration on CUDA only, restores it, and
reports the value used. ``torch.utils.benchmark.Timer`` is not used (see
:mod:`~bench.speed.timing` for why).

This package is pure measurement: modules in, numbers out. It imports neither datasets,
training, suites nor the runner. Its modules, bottom up: ``config`` (no torch), ``statistics``,
``timing``, ``throughput``, ``memory``, ``roofline``, ``normalised``, ``report``, ``variants``.
"""

from __future__ import annotations

from bench.speed.config import DTYPE_NAMES, VARIANT_NAMES, Dtype, SpeedConfig, Variant
from bench.speed.memory import PEAK_MEM_KINDS, PeakMemory, release_free_heap
from bench.speed.normalised import (
    REFERENCE_NAME,
    RelativeLatency,
    matched_calls,
    measure_relative_latency,
    reference_net,
)
from bench.speed.report import MEMORY_ITERS, SpeedReport, measure_speed
from bench.speed.roofline import efficiency, matmul_rate
from bench.speed.statistics import LatencyStats, keep_iterating, latency_stats, paired_ratio
from bench.speed.throughput import (
    THROUGHPUT_MIN_ITERS,
    ThroughputPoint,
    ThroughputResult,
    doubling_batch_sizes,
    is_oom_error,
    throughput_sweep,
)
from bench.speed.timing import DTYPES, cpu_affinity, cpu_affinity_list, measure_latency
from bench.speed.variants import VariantResult, measure_variants

__all__ = [
    "DTYPES",
    "DTYPE_NAMES",
    "MEMORY_ITERS",
    "PEAK_MEM_KINDS",
    "REFERENCE_NAME",
    "THROUGHPUT_MIN_ITERS",
    "VARIANT_NAMES",
    "Dtype",
    "LatencyStats",
    "PeakMemory",
    "RelativeLatency",
    "SpeedConfig",
    "SpeedReport",
    "ThroughputPoint",
    "ThroughputResult",
    "Variant",
    "VariantResult",
    "cpu_affinity",
    "cpu_affinity_list",
    "doubling_batch_sizes",
    "efficiency",
    "is_oom_error",
    "keep_iterating",
    "latency_stats",
    "matched_calls",
    "matmul_rate",
    "measure_latency",
    "measure_relative_latency",
    "measure_speed",
    "measure_variants",
    "paired_ratio",
    "reference_net",
    "release_free_heap",
    "throughput_sweep",
]
