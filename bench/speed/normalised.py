"""Normalised latency: the model's latency relative to a fixed reference network, interleaved.

Why: on a shared or throttled machine the absolute milliseconds of one model drift between
runs (a 3x spread was measured between processes on the 2-core machine this was written on):
other processes take the cores, the clock changes, and a whole process can run slower when
glibc hands freed memory back to the OS so that every call page-faults again. Whatever slows
the model down at a given moment slows down a similar network timed right next to it in the
same process about as much, so the ratio of the two varies much less than either. The
reference is timed alternately with the model in blocks of about equal duration (time slicing
interrupts a long call more often than a short one), and the figure is the median of the
per-round ratios. Ratios from different devices, dtypes or thread counts are not comparable:
compare like with like (bench.regression does).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from bench.complexity import validate_input_shape
from bench.speed.config import SpeedConfig, check_iterations
from bench.speed.statistics import keep_iterating, latency_stats, paired_ratio
from bench.speed.timing import (
    autocast,
    cpu_affinity_list,
    example_input,
    minor_faults,
    model_device,
    now,
    prepared,
    timed_both,
    work_ms,
)

REFERENCE_NAME = "refnet-v1"
"""Identifier of :func:`reference_net`. Changing the network means a new name (and baselines)."""


def reference_net() -> nn.Module:
    """The fixed reference workload of :func:`measure_relative_latency` (``refnet-v1``).

    A small segmentation-shaped network built from the operators most architectures spend their
    time in: strided 3x3 convolutions, batch norm, ReLU, a dilated convolution, a 1x1 classifier
    and bilinear upsampling back to the input size (0.0246 GMACs per 64x64 image; it scales
    with the input area like the models it is compared with). Weights are seeded without
    touching the global RNG.

    Returns:
        The network in eval mode, on the CPU, in float32.
    """

    def block(cin: int, cout: int, stride: int = 1, dilation: int = 1) -> list[nn.Module]:
        return [
            nn.Conv2d(cin, cout, 3, stride, padding=dilation, dilation=dilation, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU(inplace=True),
        ]

    class RefNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.body = nn.Sequential(
                *block(3, 32, stride=2),
                *block(32, 64, stride=2),
                *block(64, 64),
                *block(64, 64, dilation=2),
                nn.Conv2d(64, 8, 1),
            )

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = self.body(x)  # (N, 8, H/4, W/4)
            return nn.functional.interpolate(
                y, size=x.shape[-2:], mode="bilinear", align_corners=False
            )  # (N, 8, H, W)

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        net = RefNet()
    return net.eval()


@dataclass(frozen=True)
class RelativeLatency:
    """The model's batch-1 latency relative to :func:`reference_net`, timed interleaved.

    Attributes:
        reference: ``REFERENCE_NAME`` of the reference network.
        ratio: Median over rounds of ``model ms / reference ms`` per call, wall clock (the
            normalised latency that regression checks compare).
        ratio_cv: Coefficient of variation of the per-round wall-clock ratios.
        cpu_time_ratio: The same ratio from the process's CPU time (CPU runs only, else None):
            it ignores time spent waiting for a core, so it is steadier on a shared machine, but
            it also misses a change that makes the model wait or lose parallelism; recorded for
            diagnosis, not compared.
        model_ms: Median model time per call in this phase (ms).
        reference_ms: Median reference time per call in this phase (ms).
        rounds: Timed rounds (one block of model calls and one of reference calls each).
        model_calls: Model calls per block (see :func:`matched_calls`).
        reference_calls: Reference calls per block.
        minor_faults: Minor page faults of the process during the timed rounds.
        threads: ``torch.get_num_threads()`` during the rounds.
        cpu_affinity: The CPUs the process could run on (None where unknown).
    """

    reference: str
    ratio: float
    ratio_cv: float
    cpu_time_ratio: float | None
    model_ms: float
    reference_ms: float
    rounds: int
    model_calls: int
    reference_calls: int
    minor_faults: int
    threads: int
    cpu_affinity: list[int] | None

    def to_dict(self) -> dict[str, Any]:
        """Returns the run record's ``speed.normalised`` object."""
        return {
            "reference": self.reference,
            "latency_ratio": self.ratio,
            "latency_ratio_cv": self.ratio_cv,
            "cpu_time_ratio": self.cpu_time_ratio,
            "model_ms_p50": self.model_ms,
            "reference_ms_p50": self.reference_ms,
            "rounds": self.rounds,
            "model_calls": self.model_calls,
            "reference_calls": self.reference_calls,
            "minor_faults": self.minor_faults,
            "threads": self.threads,
            "cpu_affinity": self.cpu_affinity,
        }


def matched_calls(model_ms: float, reference_ms: float, cap: int = 1000) -> tuple[int, int]:
    """Calls per round ``(model, reference)`` that make both blocks last about as long.

    Under time slicing a long call is interrupted more often than a short one, so a model call
    of 15 ms next to a reference call of 3 ms would not see the same share of interference. The
    shorter network is therefore called ``round(longer / shorter)`` times per round (at most
    ``cap``).

    Args:
        model_ms: A single model call's time (e.g. the fastest of a few).
        reference_ms: A single reference call's time.
        cap: Largest number of calls per block.

    Returns:
        ``(model calls, reference calls)``, one of them 1.

    Raises:
        ValueError: If a time is not finite and positive.
    """
    for name, value in (("model_ms", model_ms), ("reference_ms", reference_ms)):
        if not math.isfinite(value) or value <= 0:
            raise ValueError(f"{name} must be finite and > 0; got {value}.")
    if model_ms >= reference_ms:
        return 1, min(cap, max(1, round(model_ms / reference_ms)))
    return min(cap, max(1, round(reference_ms / model_ms))), 1


def measure_relative_latency(
    model: nn.Module,
    image_shape: tuple[int, int, int],
    config: SpeedConfig,
    *,
    device: str | torch.device = "cpu",
    rounds: int = 15,
    min_time_s: float = 0.0,
    max_rounds: int = 200,
    reference: nn.Module | None = None,
) -> RelativeLatency:
    """Times ``model`` and a reference network alternately; returns the normalised latency.

    After ``config.warmup`` untimed calls of each, the least of three single calls' work (CPU
    time on the CPU, so that waiting for a core does not count) sets the block sizes
    (:func:`matched_calls`). Each round then times one block of each, in alternating order
    (reference first in even rounds, model first in odd ones), under the same
    ``inference_mode``, autocast dtype and memory format, with the same batch-1 input, for at
    least ``rounds`` rounds and ``min_time_s`` seconds (at most ``max_rounds`` rounds). The
    normalised latency is the median over rounds of ``model ms per call / reference ms per
    call``. See this module's docstring for why.

    Args:
        model: The module; its parameters and buffers must already be on ``device``. Its
            training flags (and, with ``channels_last``, its tensors) are restored afterwards.
        image_shape: ``(C, H, W)`` of one image; both networks get the same input.
        config: ``warmup``, ``dtype`` and ``channels_last`` apply to both networks (the
            same object as the absolute measurement's, so the two cannot differ); its
            iteration bounds do not: the rounds are counted by the arguments below.
        device: ``"cpu"`` or ``"cuda[:index]"``.
        rounds: Minimum number of timed rounds.
        min_time_s: Keep timing rounds until this many seconds passed (fast models get more
            rounds, so a steadier median, at little cost).
        max_rounds: Maximum number of timed rounds (wins over ``min_time_s``).
        reference: The reference network (default :func:`reference_net`, named
            ``REFERENCE_NAME``; another module is named ``"custom:<class name>"``).

    Returns:
        A :class:`RelativeLatency`.

    Raises:
        ConfigError: An invalid device, dtype/device combination, or round bounds.
        ValueError: An invalid shape, or the model on another device.
    """
    shape = validate_input_shape(image_shape, rank=3)
    dev = model_device(model, device)
    autocast(dev, config.dtype)
    check_iterations(
        config.warmup,
        rounds,
        max_rounds,
        min_time_s,
        names=("warmup", "rounds", "max_rounds", "min_time_s"),
    )
    name = REFERENCE_NAME if reference is None else f"custom:{type(reference).__name__}"
    ref = (reference_net() if reference is None else reference).to(dev)
    model_t: list[tuple[float, float]] = []
    ref_t: list[tuple[float, float]] = []
    with prepared(model, config.channels_last), prepared(ref, config.channels_last):
        x = example_input((1, *shape), dev, config.channels_last)
        with torch.inference_mode(), autocast(dev, config.dtype):

            def run_model() -> object:
                return model(x)

            def run_ref() -> object:
                return ref(x)

            for _ in range(config.warmup):
                run_ref()
                run_model()
            calls_model, calls_ref = matched_calls(
                min(work_ms(run_model, dev) for _ in range(3)),
                min(work_ms(run_ref, dev) for _ in range(3)),
            )
            faults_before = minor_faults()
            start = now()
            while keep_iterating(
                len(model_t),
                now() - start,
                min_iters=rounds,
                max_iters=max_rounds,
                min_time_s=min_time_s,
            ):
                if len(model_t) % 2 == 0:
                    ref_t.append(timed_both(run_ref, dev, calls_ref))
                    model_t.append(timed_both(run_model, dev, calls_model))
                else:
                    model_t.append(timed_both(run_model, dev, calls_model))
                    ref_t.append(timed_both(run_ref, dev, calls_ref))
            faults = minor_faults() - faults_before
    model_ms, ref_ms = [w for w, _ in model_t], [w for w, _ in ref_t]
    ratio, cv = paired_ratio(model_ms, ref_ms)
    cpu_ratio = None
    if dev.type == "cpu" and all(c > 0 for _, c in ref_t):
        cpu_ratio = paired_ratio([c for _, c in model_t], [c for _, c in ref_t])[0]
    return RelativeLatency(
        reference=name,
        ratio=ratio,
        ratio_cv=cv,
        cpu_time_ratio=cpu_ratio,
        model_ms=latency_stats(model_ms).p50,
        reference_ms=latency_stats(ref_ms).p50,
        rounds=len(model_t),
        model_calls=calls_model,
        reference_calls=calls_ref,
        minor_faults=faults,
        threads=torch.get_num_threads(),
        cpu_affinity=cpu_affinity_list(),
    )
