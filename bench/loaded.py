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
from bench.errors import ConfigError
from bench.evaluate import EvalResult
from bench.provenance import environment
from bench.records import (
    SCHEMA_VERSION,
    Complexity,
    ErrorInfo,
    Protocol,
    PublishedFigure,
    RunRecord,
    WeightsUsed,
    created_stamp,
    new_run_id,
    utc_now,
)
from bench.runner import arch_section, dataset_section, metrics_section
from bench.suites import SuiteConfig, published_setting
from bench.weights import PublishedModel, load_published


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


def prepare_published(
    info: WeightsInfo,
    data_info: DatasetInfo,
    *,
    checkpoint: str | Path | None = None,
    weights_dir: str | Path | None = None,
    arch_options: dict[str, Any] | None = None,
) -> tuple[PublishedModel, WeightsUsed]:
    """The published model ready for the dataset, and its record section.

    Args:
        info: The declaration.
        data_info: The dataset it is scored on (its classes must be the declaration's).
        checkpoint: A user's file to load instead of the declared one (``--like``).
        weights_dir: A folder searched first for the declared file.
        arch_options: Builder options over the declared ones.

    Returns:
        The wrapped model and the ``weights`` section.

    Raises:
        ConfigError: The dataset's classes are not the weights'.
        MissingFileError, CheckpointError: See :func:`bench.weights.load_published`.
    """
    if tuple(info.class_names) != tuple(data_info.class_names):
        raise ConfigError(
            f"Weights {info.name!r} score classes {list(info.class_names)}; dataset "
            f"{data_info.name!r} has {list(data_info.class_names)}."
        )
    options = dict(arch_options or {})
    loaded = load_published(
        info,
        dataset_mean=data_info.mean,
        dataset_std=data_info.std,
        checkpoint=checkpoint,
        weights_dir=weights_dir,
        builder_options=options,
    )
    used = weights_section(
        info,
        loaded.path,
        loaded.sha256,
        declared=checkpoint is None,
        options={**info.builder_options, **options},
    )
    return loaded.model, used


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
        setting=published_setting(split, resolution),
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


def _failed_record(
    info: WeightsInfo, exc: Exception, *, suite: str, dataset: str, setting: str, command: str
) -> RunRecord:
    """A ``loaded`` record of weights that could not be scored (the sweep goes on)."""
    now = utc_now()
    return RunRecord(
        schema_version=SCHEMA_VERSION,
        run_id=new_run_id(suite, info.arch, dataset, now),
        created=created_stamp(now),
        kind="loaded",
        suite=suite,
        setting=setting,
        arch=info.arch,
        dataset=dataset,
        status="error",
        arch_info=arch_section(architectures.get_info(info.arch)),
        error=ErrorInfo(message=str(exc), type=type(exc).__name__, stage="load"),
        weights=WeightsUsed(name=info.name, file=info.file, sha256=info.sha256),
        command=command,
    )


def run_published(
    suite: SuiteConfig,
    *,
    results_dir: Path,
    device: str,
    command: str,
    weights_dir: str | Path | None = None,
    progress: bool = True,
) -> list[tuple[str, str | None]]:
    """Scores every weights entry of ``suite`` on its eval split; one record each.

    Weights that cannot be scored (file missing, wrong hash, keys that do not fit) get an error
    record and the others still run.

    Args:
        suite: A suite with ``weights``.
        results_dir: Where the records go.
        device: Where the models run.
        command: The command line, for the records.
        weights_dir: A folder searched first for the files.
        progress: Show progress bars.

    Returns:
        ``(weights name, None or the error message)`` in order.
    """
    from architectures import ArchitectureError
    from bench.data import build_dataset
    from bench.errors import BenchError
    from bench.evaluate import evaluate
    from bench.records import write_record

    dataset, data_info = build_dataset(
        suite.dataset,
        split=suite.eval.split,
        root=suite.data_root,
        **{**suite.dataset_options, "size": tuple(suite.resolution)},
    )
    h, w = suite.resolution
    setting = suite.setting
    outcomes: list[tuple[str, str | None]] = []
    for name in suite.weights_names():
        info = architectures.get_weights(name)
        try:
            model, used = prepare_published(
                info,
                data_info,
                weights_dir=weights_dir,
                arch_options=suite.arch_options.get(info.arch),
            )
            result = evaluate(
                model,
                dataset,
                data_info,
                device=device,
                batch_size=suite.eval.batch_size,
                progress=progress,
                desc=f"eval {name}",
            )
            record = loaded_record(
                model=model,
                weights=used,
                dataset=suite.dataset,
                data_info=data_info,
                split=suite.eval.split,
                resolution=(h, w),
                result=result,
                device=device,
                suite=suite.name,
                command=command,
            )
            outcomes.append((name, None))
        except (BenchError, ArchitectureError) as exc:
            record = _failed_record(
                info, exc, suite=suite.name, dataset=suite.dataset, setting=setting, command=command
            )
            outcomes.append((name, str(exc)))
        write_record(results_dir, record)
    return outcomes
