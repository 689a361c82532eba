"""Rewrite a results folder's records in the current schema (``upgrade-records``).

Reading never needs this: :meth:`bench.records.RunRecord.from_dict` upgrades older records in
memory. What an in-memory upgrade cannot know is re-measured here, and every rewritten record
says so in its ``amendments`` (the command, the commit, the fields, why).

Schema 2 -> 3 adds fields that older runs did not record (``weights``,
``metrics.confusion_matrix``); they stay null and the amendment says so.

Schema 1 -> 2: version 1 counted ``complexity.params`` over every registered parameter,
auxiliary training heads included, beside MACs of the eval-mode forward pass, which never runs
them. The entry is rebuilt (its registry builder, the record's class count, the suite's
``arch_options`` when the suite is still known) and the parameters that pass reads at the
record's ``complexity.input_shape`` are counted (:func:`bench.complexity.count_used_params`). The
rebuilt network must have exactly the recorded number of registered parameters, else the entry
changed since the run and the record is left alone (re-run it instead).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

import torch

import architectures
from bench.complexity import count_params, count_used_params
from bench.errors import BenchError
from bench.models import build_model
from bench.provenance import git_state
from bench.records import (
    SCHEMA_VERSION,
    Amendment,
    RunRecord,
    created_stamp,
    read_record,
    record_files,
    utc_now,
    write_record,
)
from bench.suites import available_suites, load_suite

NOTE_V1 = (
    "complexity.params_with_aux is schema 1's complexity.params (every "
    "registered parameter, auxiliary heads included); complexity.params and trainable_params "
    "were re-counted on the network as evaluated (the parameters the eval-mode forward pass "
    "reads at complexity.input_shape, the pass complexity.macs counts), without re-running."
)
NOTE_ARCH = (
    "arch_info.in_channels, paper_params_with_aux and paper_gflops_with_aux (whether the "
    "paper's parameter count and compute include the auxiliary heads), new in schema 2, were "
    "taken from the registry entry."
)
NOTE_V2 = (
    "weights (the published weights of a 'loaded' record) and metrics.confusion_matrix, new in "
    "schema 3, are null: this run evaluated no published weights and kept no matrix."
)
_AUX_FLAGS = ("paper_params_with_aux", "paper_gflops_with_aux")


@dataclass
class MigrationReport:
    """What :func:`migrate_results` did."""

    upgraded: list[str] = field(default_factory=list)  # run ids rewritten
    params_changed: list[tuple[str, int, int]] = field(default_factory=list)  # (id, old, new)
    current: int = 0  # records already at the current schema
    refused: list[tuple[str, str]] = field(default_factory=list)  # (run id, why)


def _arch_options(record: RunRecord) -> dict[str, object]:
    if record.suite not in available_suites():
        return {}
    return dict(load_suite(record.suite).arch_options.get(record.arch, {}))


def _recount(record: RunRecord, registered: int | None) -> tuple[int, int]:
    """``(params, trainable_params)`` of the evaluated network the record describes.

    Raises:
        BenchError: the entry is unknown, or its rebuilt network is not the one that ran.
    """
    if record.complexity is None or record.dataset_info is None:
        raise BenchError("the record has no complexity or dataset_info section to re-count.")
    architectures.get_entry(record.arch)  # ArchitectureError (a ValueError) if unknown
    options = _arch_options(record)

    def build() -> torch.nn.Module:
        torch.manual_seed(0)
        return build_model(record.arch, num_classes=record.dataset_info.num_classes, **options)

    with torch.device("meta"):  # shapes only: no memory, no initialisation
        model = build()
    total = count_params(model)[0]
    if registered is not None and total != registered:
        raise BenchError(
            f"the rebuilt {record.arch} has {total:,} parameters, the record {registered:,}: "
            f"the entry changed since the run. Re-run it instead."
        )
    shape = record.complexity.input_shape
    try:
        return count_used_params(model, shape)
    except (NotImplementedError, RuntimeError):  # data-dependent ops (detectors): real tensors
        return count_used_params(build(), shape)


def migrate_record(path: Path, command: str) -> tuple[RunRecord, RunRecord] | None:
    """Upgrades one record file in place; None when it is already at the current schema.

    Returns:
        ``(as read, as written)``.

    Raises:
        BenchError / ValueError: the record cannot be re-counted (nothing is written).
    """
    raw = json.loads(path.read_text(encoding="utf-8"))
    if raw.get("schema_version") == SCHEMA_VERSION:
        return None
    before = read_record(path)
    record, fields, notes = before, ["schema_version"], []
    old_version = raw.get("schema_version")
    if old_version == 1:
        record, fields, notes = _from_v1(record, fields, notes)
    fields += ["weights", "metrics.confusion_matrix"]
    notes.append(NOTE_V2)
    commit, _ = git_state()
    amendment = Amendment(
        created=created_stamp(utc_now()),
        command=command,
        fields=tuple(fields),
        note=" ".join([f"Upgraded from schema {old_version}.", *notes]),
        git_commit=commit,
    )
    record = record.replace(amendments=(*record.amendments, amendment))
    written = write_record(path.parent.parent, record)
    if written != path:  # a renamed file: keep one copy, under its run id
        path.unlink()
    return before, record


def _from_v1(
    record: RunRecord, fields: list[str], notes: list[str]
) -> tuple[RunRecord, list[str], list[str]]:
    """What schema 1 -> 2 re-counts: params on the evaluated network, the arch flags."""
    cx = record.complexity
    if cx is not None:
        fields.append("complexity.params_with_aux")
        params, trainable = _recount(record, cx.params_with_aux)
        if (params, trainable) != (cx.params, cx.trainable_params):
            fields += ["complexity.params", "complexity.trainable_params"]
        record = record.replace(
            complexity=dataclasses.replace(cx, params=params, trainable_params=trainable)
        )
        notes.append(NOTE_V1)
    if record.kind == "model" and record.arch_info is not None:
        info = architectures.get_info(record.arch)
        record = record.replace(
            arch_info=dataclasses.replace(
                record.arch_info,
                in_channels=info.in_channels,
                paper_params_with_aux=info.paper_params_with_aux,
                paper_gflops_with_aux=info.paper_gflops_with_aux,
            )
        )
        fields += [f"arch_info.{k}" for k in ("in_channels", *_AUX_FLAGS)]
        notes.append(NOTE_ARCH)
    return record, fields, notes


def migrate_results(results_dir: Path, command: str) -> MigrationReport:
    """Rewrites every older record of ``results_dir`` in the current schema.

    Raises:
        MissingFileError: no ``records/`` folder.
        RecordError: a record file is unreadable (nothing after it is written).
    """
    report = MigrationReport()
    for path in record_files(results_dir):
        try:
            done = migrate_record(path, command)
        except (BenchError, ValueError) as exc:
            report.refused.append((path.stem, str(exc)))
            continue
        if done is None:
            report.current += 1
            continue
        before, after = done
        report.upgraded.append(after.run_id)
        if before.complexity is not None and after.complexity is not None:
            old, new = before.complexity.params_with_aux, after.complexity.params
            recounted = before.complexity.params != new  # a schema-1 record's, re-counted
            if recounted and old != new and old is not None and new is not None:
                report.params_changed.append((after.run_id, old, new))
    return report
