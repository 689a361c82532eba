"""Run records on disk: ``<results_dir>/records/<run_id>.json``, one file per run.

Files are written atomically through :mod:`bench.fileio` (a killed run leaves complete records
or none, readable by every user of a shared folder) and read back through
:meth:`RunRecord.from_dict`, the one validator.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timezone
from pathlib import Path

from bench.errors import MissingFileError, RecordError
from bench.fileio import write_json_atomic
from bench.records.schema import RunRecord

RECORDS_DIR = "records"
SAMPLES_DIR = "samples"


def utc_now() -> datetime:
    """The current time in UTC (aware)."""
    return datetime.now(timezone.utc)


def created_stamp(when: datetime) -> str:
    """A record's ``created`` value: UTC to the second, ``2026-11-27T06:16:00Z``."""
    return when.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def new_run_id(suite: str, arch: str, dataset: str, when: datetime | None = None) -> str:
    """A unique run id: ``<suite>__<arch>__<dataset>__<UTC time, microseconds>_<8 hex>``.

    The time has microseconds so that ids of the same (suite, arch, dataset) sort in creation
    order: readers break ties of the second-resolution ``created`` by ``run_id``, and a random
    suffix alone would pick either of two same-second runs.
    """
    when = when or utc_now()
    return f"{suite}__{arch}__{dataset}__{when:%Y%m%dT%H%M%S%fZ}_{uuid.uuid4().hex[:8]}"


def record_path(results_dir: Path | str, run_id: str) -> Path:
    """Where the record ``run_id`` lives in ``results_dir``."""
    return Path(results_dir) / RECORDS_DIR / f"{run_id}.json"


def write_record(results_dir: Path | str, record: RunRecord) -> Path:
    """Writes one record to ``<results_dir>/records/<run_id>.json`` (atomically).

    Raises:
        TypeError: ``record`` is not a :class:`RunRecord`.
        ValueError: a value cannot be written as JSON (NaN or infinity).
    """
    if not isinstance(record, RunRecord):
        raise TypeError(f"write_record takes a RunRecord; got {type(record).__name__}.")
    return write_json_atomic(record_path(results_dir, record.run_id), record.to_dict())


def read_record(path: Path | str) -> RunRecord:
    """Reads and validates one record file.

    Raises:
        RecordError: the file is not valid JSON or not a valid record (the message names it).
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise RecordError(
            f"Corrupt run record {path}: {exc}. Delete or restore this file (records are "
            f"written atomically, so this is damage from outside the harness)."
        ) from None
    return RunRecord.from_dict(data, source=str(path))


def record_files(results_dir: Path | str) -> list[Path]:
    """The record files of a results folder, sorted by name.

    Raises:
        MissingFileError: the folder has no ``records/`` subfolder.
    """
    folder = Path(results_dir) / RECORDS_DIR
    if not folder.is_dir():
        raise MissingFileError(
            f"No records folder at {folder}. Run `python run_bench.py run` to create records, "
            f"or pass --results-dir pointing at a folder that has a records/ subfolder."
        )
    return sorted(folder.glob("*.json"))


def load_records(results_dir: Path | str) -> list[RunRecord]:
    """Every record under ``<results_dir>/records``, validated, sorted by ``run_id``.

    Raises:
        MissingFileError: the folder has no ``records/`` subfolder.
        RecordError: a file is not valid JSON or not a record (the message names the file).
    """
    records = [read_record(path) for path in record_files(results_dir)]
    return sorted(records, key=lambda r: r.run_id)


def latest_ok(records: list[RunRecord]) -> dict[tuple[str, str, str, str], RunRecord]:
    """The newest ``ok`` record per (suite, arch, dataset, setting)."""
    out: dict[tuple[str, str, str, str], RunRecord] = {}
    for record in sorted(records, key=lambda r: r.newest_key):
        if record.ok:
            out[(record.suite, record.arch, record.dataset, record.setting)] = record
    return out
