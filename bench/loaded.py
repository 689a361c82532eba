"""Run records of published weights (kind ``loaded``): evaluated here, not trained here.

``eval --weights NAME --results-dir DIR`` (or ``--checkpoint FILE --like NAME``) writes one; the
leaderboard ranks it beside trained models, marked as published weights, with the published
figure beside the measured one.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset

import architectures
from architectures import WeightsInfo
from bench.complexity import ComplexityReport, count_complexity
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
    Speed,
    WeightsUsed,
    created_stamp,
    new_run_id,
    utc_now,
)
from bench.runner import arch_section, dataset_section, metrics_section, speed_section
from bench.speed.config import SpeedConfig
from bench.suites import SuiteConfig, published_setting
from bench.weights import PublishedModel, ScoredLabels, Scoring, load_published, scoring_for


def preprocess_text(info: WeightsInfo, protocol_name: str = "standard") -> str:
    """One line: the authors' input preprocessing and the protocol, as applied."""
    p, proto = info.preprocess, info.protocol_named(protocol_name)
    size = f" at {proto.resolution[0]}x{proto.resolution[1]}" if proto.resolution else ""
    if proto.mode == "slide" and proto.crop and proto.stride:
        size += (
            f", {proto.crop[0]}x{proto.crop[1]} windows every {proto.stride[0]}x{proto.stride[1]}"
        )
    corners = f" align_corners={proto.align_corners}" if proto.interpolation == "bilinear" else ""
    scoring = scoring_for(info, proto, ignore_index=255)
    extra = sum(c is None for c in info.channels) - (1 if proto.void == "class" else 0)
    if extra == 0:
        channels = "every output channel is scored"
    elif scoring.no_class_channel:
        channels = f"{extra} non-class output channel(s) counted as misses"
    else:
        channels = f"{extra} output channel(s) dropped before the argmax"
    if proto.labels == "resized":
        labels = f"labels resized {proto.label_interpolation} to {size.removeprefix(' at ')}"
    else:
        labels = "labels as loaded"
    void = "void scored as a class" if proto.void == "class" else "void ignored"
    return (
        f"{protocol_name} protocol: {p.channel_order}, 0-{p.scale:g} values, mean "
        f"{list(p.mean)}, std {list(p.std)}; {proto.mode} image{size}; logits resized "
        f"{proto.interpolation}{corners}; {channels}; {labels}; {void}"
    )


def weights_section(
    info: WeightsInfo,
    path: Path,
    sha256: str,
    *,
    declared: bool,
    options: dict[str, Any],
    protocol_name: str = "standard",
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
        preprocess=preprocess_text(info, protocol_name),
        published=tuple(
            PublishedFigure(metric=m.metric, value=m.value, split=m.split, source=m.source)
            for m in info.published
        ),
    )


@dataclass(frozen=True)
class Prepared:
    """Published weights ready to score on a dataset.

    Attributes:
        model: The wrapped network.
        weights: Its record section.
        scoring: The label space it is scored in.
        protocol_name: ``"standard"`` or ``"authors"``.
    """

    model: PublishedModel
    weights: WeightsUsed
    scoring: Scoring
    protocol_name: str

    def resolution(self, loaded: tuple[int, int]) -> tuple[int, int]:
        """``(H, W)`` the labels are scored at, for labels loaded at ``loaded``."""
        proto = self.scoring.protocol
        return tuple(proto.resolution) if proto.labels == "resized" else tuple(loaded)

    def evaluate(
        self,
        dataset: Dataset,
        *,
        device: str | torch.device,
        batch_size: int,
        progress: bool,
        desc: str,
    ) -> EvalResult:
        """Scores the model on ``dataset`` under the protocol (labels converted if it says so)."""
        from bench.evaluate import evaluate

        proto = self.scoring.protocol
        plain = proto.is_standard and proto.mode == "whole"
        scored = dataset if plain else ScoredLabels(dataset, self.scoring)
        return evaluate(
            self.model,
            scored,
            self.scoring,
            device=device,
            batch_size=batch_size,
            progress=progress,
            desc=desc,
            no_class_channel=self.scoring.no_class_channel,
        )


def prepare_published(
    info: WeightsInfo,
    data_info: DatasetInfo,
    *,
    checkpoint: str | Path | None = None,
    weights_dir: str | Path | None = None,
    arch_options: dict[str, Any] | None = None,
    protocol_name: str = "standard",
) -> Prepared:
    """The published model ready for the dataset, its record section and its label space.

    Args:
        info: The declaration.
        data_info: The dataset it is scored on (its classes must be the declaration's).
        checkpoint: A user's file to load instead of the declared one (``--like``).
        weights_dir: A folder searched first for the declared file.
        arch_options: Builder options over the declared ones.
        protocol_name: ``"standard"`` (the rankings' scoring) or ``"authors"`` (theirs, where
            the declaration has one).

    Returns:
        The model, the ``weights`` section and the scoring.

    Raises:
        ConfigError: The dataset's classes are not the weights'.
        ArchitectureError: No such protocol is declared.
        MissingFileError, CheckpointError: See :func:`bench.weights.load_published`.
    """
    if tuple(info.class_names) != tuple(data_info.class_names):
        raise ConfigError(
            f"Weights {info.name!r} score classes {list(info.class_names)}; dataset "
            f"{data_info.name!r} has {list(data_info.class_names)}."
        )
    protocol = info.protocol_named(protocol_name)
    options = dict(arch_options or {})
    loaded = load_published(
        info,
        dataset_mean=data_info.mean,
        dataset_std=data_info.std,
        checkpoint=checkpoint,
        weights_dir=weights_dir,
        builder_options=options,
        protocol=protocol,
    )
    used = weights_section(
        info,
        loaded.path,
        loaded.sha256,
        declared=checkpoint is None,
        options={**info.builder_options, **options},
        protocol_name=protocol_name,
    )
    scoring = scoring_for(info, protocol, ignore_index=data_info.ignore_index)
    return Prepared(loaded.model, used, scoring, protocol_name)


def loaded_record(
    *,
    prepared: Prepared,
    dataset: str,
    data_info: DatasetInfo,
    split: str,
    loaded_size: tuple[int, int],
    result: EvalResult,
    device: str,
    suite: str,
    command: str,
    speed: Speed | None = None,
    complexity: ComplexityReport | None = None,
    results_dir: Path | None = None,
) -> RunRecord:
    """A ``loaded`` run record: metrics, complexity at the evaluated size, provenance.

    Args:
        prepared: The scored weights (model, ``weights`` section, scoring).
        dataset: The dataset's registry name.
        data_info: Its metadata.
        split: The split scored.
        loaded_size: ``(H, W)`` of the images as loaded (the model's input; complexity is
            counted there).
        result: The evaluation.
        device: Where it ran.
        suite: The record's suite name (the results group it is ranked in).
        command: The command line that made it.
        speed: The speed section, if it was timed.
        complexity: The count at ``loaded_size``, if already made (else counted here).
        results_dir: Where the record goes: its per-image confusion matrices are written there
            and its bootstrap intervals added (:func:`bench.record_sections.metrics_section`).

    Returns:
        The record (validated by :meth:`RunRecord.from_dict` when written).
    """
    arch = prepared.weights.name.split(".", 1)[0]
    now = utc_now()
    run_id = new_run_id(suite, arch, dataset, now)
    report = complexity or count_complexity(prepared.model.cpu(), (1, 3, *loaded_size))
    scored = prepared.resolution(loaded_size)
    proto = prepared.scoring.protocol
    label_size = (
        f"resized {scored[0]}x{scored[1]} ({proto.label_interpolation})"
        if proto.labels == "resized"
        else "native"
    )
    protocol = Protocol(
        split=split,
        mode=proto.mode,
        crop=proto.crop,
        stride=proto.stride,
        scales=(1.0,),
        flip=False,
        resolution=scored,
        num_images=result.num_images,
        label_resolution=label_size,
    )
    return RunRecord(
        schema_version=SCHEMA_VERSION,
        run_id=run_id,
        created=created_stamp(now),
        kind="loaded",
        suite=suite,
        setting=published_setting(split, scored, prepared.protocol_name),
        arch=arch,
        dataset=dataset,
        status="ok",
        arch_info=arch_section(architectures.get_info(arch)),
        dataset_info=dataset_section(data_info),
        protocol=protocol,
        metrics=metrics_section(result, results_dir, run_id),
        complexity=Complexity.from_dict(report.to_dict()),
        speed=speed,
        weights=prepared.weights,
        env=environment(device, 0, None),
        command=command,
    )


def published_speed(
    model: torch.nn.Module,
    size: tuple[int, int],
    config: SpeedConfig,
    *,
    gmacs: float,
    device: str,
    matmul_gflops_per_s: float | None,
) -> Speed:
    """Times published weights like a trained model (latency, throughput, memory, normalised).

    The model is the published-weights wrapper, so the time includes the authors' input
    conversion and resizes, as a user of the weights would run it. ``gmacs`` is the record's
    own count at ``size`` (for the efficiency figures).
    """
    return speed_section(
        model,
        (3, *size),
        config,
        gmacs=gmacs,
        device=device,
        matmul_gflops_per_s=matmul_gflops_per_s,
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
    """Scores every weights entry of ``suite`` on its eval split; one record per protocol.

    Each entry is scored under its standard protocol and, where its authors scored otherwise,
    under theirs too (a setting of its own). Weights that cannot be scored (file missing, wrong
    hash, keys that do not fit) get an error record and the others still run. With the suite's
    ``speed`` enabled each model is also timed at the suite's resolution.

    Args:
        suite: A suite with ``weights``.
        results_dir: Where the records go.
        device: Where the models run.
        command: The command line, for the records.
        weights_dir: A folder searched first for the files.
        progress: Show progress bars.

    Returns:
        ``(weights name and protocol, None or the error message)`` in order.
    """
    from architectures import ArchitectureError
    from bench import speed as sp
    from bench.data import build_dataset
    from bench.errors import BenchError
    from bench.records import write_record

    dataset, data_info = build_dataset(
        suite.dataset,
        split=suite.eval.split,
        root=suite.data_root,
        **{**suite.dataset_options, "size": tuple(suite.resolution)},
    )
    size = tuple(suite.resolution)
    matmul = None
    if suite.speed.enabled and suite.speed.dtype == "fp32":
        matmul = sp.matmul_rate(device)
    outcomes: list[tuple[str, str | None]] = []
    for name in suite.weights_names():
        info = architectures.get_weights(name)
        for protocol_name, proto in info.protocols().items():
            label = name if protocol_name == "standard" else f"{name} ({protocol_name} protocol)"
            scored = tuple(proto.resolution) if proto.labels == "resized" else size
            try:
                prepared = prepare_published(
                    info,
                    data_info,
                    weights_dir=weights_dir,
                    arch_options=suite.arch_options.get(info.arch),
                    protocol_name=protocol_name,
                )
                result = prepared.evaluate(
                    dataset,
                    device=device,
                    batch_size=suite.eval.batch_size,
                    progress=progress,
                    desc=f"eval {label}",
                )
                timed = None
                report = count_complexity(prepared.model.cpu(), (1, 3, *size))
                if suite.speed.enabled and protocol_name == "standard":
                    timed = published_speed(
                        prepared.model,
                        size,
                        suite.speed,
                        gmacs=report.gmacs,
                        device=device,
                        matmul_gflops_per_s=matmul,
                    )
                record = loaded_record(
                    prepared=prepared,
                    dataset=suite.dataset,
                    data_info=data_info,
                    split=suite.eval.split,
                    loaded_size=size,
                    result=result,
                    device=device,
                    suite=suite.name,
                    command=command,
                    speed=timed,
                    complexity=report,
                    results_dir=results_dir,
                )
                outcomes.append((label, None))
            except (BenchError, ArchitectureError) as exc:
                setting = published_setting(suite.eval.split, scored, protocol_name)
                record = _failed_record(
                    info,
                    exc,
                    suite=suite.name,
                    dataset=suite.dataset,
                    setting=setting,
                    command=command,
                )
                outcomes.append((label, str(exc)))
            write_record(results_dir, record)
    return outcomes
