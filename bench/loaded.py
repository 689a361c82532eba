"""Run records of published weights (kind ``loaded``): evaluated here, not trained here.

``eval --weights NAME --results-dir DIR`` (or ``--checkpoint FILE --like NAME``) writes one; the
leaderboard ranks it beside trained models, marked as published weights, with the published
figure beside the measured one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

import architectures
from architectures import WeightsInfo
from bench.complexity import count_complexity
from bench.data import DatasetInfo
from bench.evaluate import EvalResult
from bench.provenance import environment
from bench.records import (
    SCHEMA_VERSION,
    Complexity,
    Protocol,
    PublishedFigure,
    RunRecord,
    WeightsUsed,
    created_stamp,
    new_run_id,
    utc_now,
)
from bench.runner import arch_section, dataset_section, metrics_section


def preprocess_text(info: WeightsInfo) -> str:
    """One line: the authors' input preprocessing and protocol, as applied."""
    p, proto = info.preprocess, info.protocol
    size = f" at {proto.resolution[0]}x{proto.resolution[1]}" if proto.resolution else ""
    corners = f" align_corners={proto.align_corners}" if proto.interpolation == "bilinear" else ""
    dropped = sum(c is None for c in info.channels)
    return (
        f"{p.channel_order}, 0-{p.scale:g} values, mean {list(p.mean)}, std {list(p.std)}; "
        f"{proto.mode} image{size}; logits resized {proto.interpolation}{corners}; "
        f"{dropped} output channel(s) dropped before the argmax"
    )


def weights_section(
    info: WeightsInfo, path: Path, sha256: str, *, declared: bool, options: dict[str, Any]
) -> WeightsUsed:
    """The record's ``weights`` section."""
    return WeightsUsed(
        name=info.name,
        file=str(path),
        sha256=sha256,
        declared=declared,
        repository=info.source.repository,
        commit=info.source.commit,
        path=info.source.path,
        licence=info.source.licence,
        builder_options=dict(options),
        preprocess=preprocess_text(info),
        published=tuple(
            PublishedFigure(metric=m.metric, value=m.value, split=m.split, source=m.source)
            for m in info.published
        ),
    )


def loaded_record(
    *,
    model: torch.nn.Module,
    weights: WeightsUsed,
    dataset: str,
    data_info: DatasetInfo,
    split: str,
    resolution: tuple[int, int],
    result: EvalResult,
    device: str,
    suite: str,
    command: str,
) -> RunRecord:
    """A ``loaded`` run record: metrics, complexity at the evaluated size, provenance.

    Args:
        model: The evaluated model (the published-weights wrapper).
        weights: Its ``weights`` section.
        dataset: The dataset's registry name.
        data_info: Its metadata.
        split: The split scored.
        resolution: ``(H, W)`` of the evaluated images (complexity is counted there).
        result: The evaluation.
        device: Where it ran.
        suite: The record's suite name (the results group it is ranked in).
        command: The command line that made it.

    Returns:
        The record (validated by :meth:`RunRecord.from_dict` when written).
    """
    arch = weights.name.split(".", 1)[0]
    now = utc_now()
    shape = (1, 3, *resolution)
    report = count_complexity(model.cpu(), shape)
    protocol = Protocol(
        split=split,
        mode="whole",
        scales=(1.0,),
        flip=False,
        resolution=tuple(resolution),
        num_images=result.num_images,
    )
    return RunRecord(
        schema_version=SCHEMA_VERSION,
        run_id=new_run_id(suite, arch, dataset, now),
        created=created_stamp(now),
        kind="loaded",
        suite=suite,
        setting=f"{split}-{resolution[0]}x{resolution[1]}-published",
        arch=arch,
        dataset=dataset,
        status="ok",
        arch_info=arch_section(architectures.get_info(arch)),
        dataset_info=dataset_section(data_info),
        protocol=protocol,
        metrics=metrics_section(result),
        complexity=Complexity.from_dict(report.to_dict()),
        weights=weights,
        env=environment(device, 0, None),
        command=command,
    )
