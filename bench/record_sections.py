"""The record sections built from measurements, shared by the sweep and the loaded-weights run.

Each function turns what a measurement returned (an ``ArchInfo``, a ``DatasetInfo``, an
evaluation, a speed measurement, an exception) into the typed section of a run record
(:mod:`bench.records`), or the evaluation images into the samples' inputs. They lived in
:mod:`bench.runner`, which still imports the four section builders under the same names.
"""

from __future__ import annotations

import dataclasses
import traceback
from pathlib import Path
from typing import Any

import numpy as np
import torch

import architectures
from bench import bootstrap
from bench import speed as sp
from bench.data import DatasetInfo
from bench.evaluate import EvalResult
from bench.records import ArchSection, DatasetSection, ErrorInfo, Metrics, Speed
from bench.records.store import SAMPLES_DIR

# measure_relative_latency: at least 6 rounds (an even number: each order equally often) and
# 2 s, so a fast model gets many rounds and a slow one (whose calls already average over many
# time slices) costs about 12 of its calls.
NORMALISED_ROUNDS, NORMALISED_MIN_TIME_S = 6, 2.0


def speed_section(
    model: Any,
    shape: tuple[int, int, int],
    config: sp.SpeedConfig,
    *,
    gmacs: float,
    device: str,
    matmul_gflops_per_s: float | None,
) -> Speed:
    """The record's ``speed``: :func:`bench.speed.measure_speed`, plus the normalised latency.

    With ``config.variants``, each variant is timed last (:func:`bench.speed.measure_variants`,
    its throughput at the main sweep's best batch size), so the main figures are measured as
    without them.

    Args:
        model: The model to time.
        shape: ``(C, H, W)`` of one input.
        config: The suite's ``speed`` section.
        gmacs: GMACs per image (for the efficiency figures).
        device: Where it runs.
        matmul_gflops_per_s: The device's dense GEMM rate (fp32 runs), or ``None``.

    Returns:
        The section.
    """
    measured = sp.measure_speed(
        model,
        shape,
        config,
        gmacs_per_image=gmacs,
        device=device,
        matmul_gflops_per_s=matmul_gflops_per_s,
    )
    # Interleaved with a reference network: the figure regression checks compare. Same config
    # (dtype, memory format, warm-up); its own rounds and duration.
    normalised = sp.measure_relative_latency(
        model,
        shape,
        config,
        device=device,
        rounds=NORMALISED_ROUNDS,
        min_time_s=NORMALISED_MIN_TIME_S,
    )
    section = {**measured.to_dict(), "normalised": normalised.to_dict()}
    if config.variants:
        variants = sp.measure_variants(
            model, shape, config, device=device, batch_size=measured.throughput.best_batch_size
        )
        section["variants"] = [v.to_dict() for v in variants]
    return Speed.from_dict(section)


def arch_section(info: architectures.ArchInfo) -> ArchSection:
    """The record's ``arch_info``: every ArchInfo field the section has, JSON-shaped."""
    shared = {f.name for f in dataclasses.fields(ArchSection)} & set(info.__dataclass_fields__)
    values = {name: getattr(info, name) for name in shared}
    values["aux_weights"] = dict(info.aux_weights)
    if info.paper_resolution is not None:
        values["paper_resolution"] = tuple(info.paper_resolution)
    return ArchSection(**values)


def dataset_section(info: DatasetInfo) -> DatasetSection:
    """The record's ``dataset_info``."""
    return DatasetSection(
        title=info.title,
        num_classes=info.num_classes,
        class_names=tuple(info.class_names),
        palette=tuple(tuple(c) for c in info.palette),
        ignore_index=info.ignore_index,
    )


def metrics_section(
    ev: EvalResult,
    results_dir: Path | None = None,
    run_id: str | None = None,
) -> Metrics:
    """The record's ``metrics``, with the confusion matrix they come from.

    With ``results_dir`` and ``run_id`` (and the per-image matrices, which rank 0 of a torchrun
    job holds), the per-image confusion matrices are written to
    ``samples/<run_id>.confusion.npz`` and the 95% bootstrap intervals (seeded, 1,000
    resamples of the evaluation images) are added, with the file's name and sha256.

    Args:
        ev: The evaluation.
        results_dir: The results folder, or None for no intervals (nothing written).
        run_id: The record's run id (names the file).
    """
    section = {**ev.metrics.to_dict(), "confusion_matrix": ev.matrix.tolist()}
    per_image = ev.per_image
    if results_dir is not None and run_id is not None and per_image is not None and len(per_image):
        rel = f"{SAMPLES_DIR}/{run_id}{bootstrap.PER_IMAGE_SUFFIX}"
        sha = bootstrap.save_per_image(Path(results_dir) / rel, per_image)
        seed = 0
        intervals = bootstrap.bootstrap_intervals(per_image, seed=seed, no_class=ev.no_class)
        section.update(
            {
                f"{name}_ci95": list(lo_hi)
                for name, lo_hi in intervals.items()
                if np.isfinite(lo_hi).all()  # NaN: no resample had a scored pixel
            },
            bootstrap_resamples=bootstrap.RESAMPLES,
            bootstrap_seed=seed,
            per_image_file=rel,
            per_image_sha256=sha,
        )
    return Metrics.from_dict(section)


def error_section(exc: BaseException, stage: str) -> ErrorInfo:
    """The record's ``error`` for ``exc``, raised in ``stage`` (call it in the ``except``)."""
    return ErrorInfo(
        type=type(exc).__name__,
        message=str(exc),
        traceback=traceback.format_exc(),
        stage=stage,
    )


def denormalised(images: torch.Tensor, info: DatasetInfo) -> np.ndarray:
    """Normalised ``(S, 3, H, W)`` images back to ``(S, H, W, 3)`` uint8 (the samples' inputs)."""
    mean = torch.tensor(info.mean).view(1, 3, 1, 1)
    std = torch.tensor(info.std).view(1, 3, 1, 1)
    x = (images.cpu() * std + mean).clamp(0, 1) * 255
    return x.round().to(torch.uint8).permute(0, 2, 3, 1).numpy()  # (S, H, W, 3)
