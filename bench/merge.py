"""Merge result folders from several machines (or shards) into one.

``python run_bench.py merge DIR... --into DIR`` reads the records of every source folder (each
validated; a corrupt file stops the merge before anything is written, naming the file) and of the
destination, then:

* **identical runs** (the same ``run_id`` with the same content, e.g. a folder merged twice or a
  shared folder listed as a source) count once;
* the same ``run_id`` with **different content** is a conflict: the copy already in the
  destination (or the first source's) is kept;
* per **combination** (suite, dataset, setting, architecture, device name) the newest ``ok``
  record is kept (by ``created``, then ``run_id``), or the newest error when no run succeeded;
  older records of the combination are not copied. Two ``ok`` records of one combination from
  different folders whose mIoU differs are reported as a conflict (the suites are deterministic,
  so different code, settings or hardware produced them), and the newest is kept;
* nothing in the destination is deleted or overwritten; copied records keep their bytes, and
  the sample files they reference are copied with them.

Every file is written through a temporary file and ``os.replace``, like the records themselves.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from bench.errors import RecordError
from bench.fileio import copy_atomic
from bench.records import RECORDS_DIR, RunRecord, read_record, record_files

Key = tuple[str, str, str, str, str]


@dataclass
class MergeReport:
    """What a merge did."""

    into: Path
    sources: list[Path]
    copied: list[str] = field(default_factory=list)  # run ids written to the destination
    already_there: int = 0  # chosen records the destination already had
    identical: int = 0  # extra copies of the same run (same run_id and content)
    superseded: list[str] = field(default_factory=list)  # older runs of a combination
    conflicts: list[str] = field(default_factory=list)
    samples_copied: int = 0

    def lines(self) -> list[str]:
        """Returns the report as printed: one summary line, then one ``CONFLICT:`` line each."""
        out = [
            f"merged {len(self.sources)} folder(s) into {self.into}: {len(self.copied)} record(s) "
            f"copied, {self.already_there} already there, {self.identical} identical duplicate(s) "
            f"skipped, {len(self.superseded)} older run(s) of a combination not copied, "
            f"{self.samples_copied} sample file(s) copied"
        ]
        out += [f"CONFLICT: {c}" for c in self.conflicts]
        return out


@dataclass(frozen=True)
class _Found:
    record: RunRecord
    path: Path
    folder: Path


def _key(record: RunRecord) -> Key:
    name = record.speed.device_name if record.speed else None
    if not name and record.env is not None:
        name = record.env.device_name
    return (record.suite, record.dataset, record.setting, record.arch, str(name or ""))


def _order(found: _Found) -> tuple[object, str]:
    return found.record.newest_key


def _load(folder: Path) -> list[_Found]:
    """Every record of ``folder`` with its file (validated; a renamed file keeps its run id)."""
    found: dict[str, _Found] = {}
    for path in record_files(folder):
        record = read_record(path)  # raises naming the file
        found.setdefault(record.run_id, _Found(record=record, path=path, folder=folder))
    return sorted(found.values(), key=lambda f: f.record.run_id)


def merge_results(sources: list[Path], into: Path) -> MergeReport:
    """Merge the records (and their sample files) of ``sources`` into ``into``.

    Raises:
        MissingFileError: a source has no ``records/`` folder.
        RecordError: a record file is corrupt or not a record (the message names it); nothing
            has been written then.
    """
    into = Path(into)
    sources = [Path(s) for s in sources]
    report = MergeReport(into=into, sources=sources)
    existing = _load(into) if (into / RECORDS_DIR).is_dir() else []
    resolved_into = into.resolve()
    incoming = [f for s in sources if s.resolve() != resolved_into for f in _load(s)]

    by_id: dict[str, _Found] = {}
    for found in [*existing, *incoming]:
        rid = found.record.run_id
        if rid not in by_id:
            by_id[rid] = found
        elif by_id[rid].record == found.record:
            report.identical += 1
        else:
            report.conflicts.append(
                f"run {rid} differs between {by_id[rid].path} and {found.path}; kept the first"
            )

    groups: dict[Key, list[_Found]] = {}
    for found in by_id.values():
        groups.setdefault(_key(found.record), []).append(found)

    in_dest = {f.record.run_id for f in existing}
    to_copy: list[_Found] = []
    for key, runs in sorted(groups.items()):
        ok = [f for f in runs if f.record.ok]
        chosen = max(ok or runs, key=_order)
        folders_miou = {(f.folder.resolve(), f.record.miou) for f in ok}
        mious = {m for _, m in folders_miou if m is not None}
        if len({folder for folder, _ in folders_miou}) > 1 and len(mious) > 1:
            suite, _, setting, arch, device = key
            shown = ", ".join(
                f"{f.record.run_id} ({f.folder}): {100 * (f.record.miou or 0.0):.3f}"
                for f in sorted(ok, key=_order)
            )
            report.conflicts.append(
                f"{arch} ({suite}, {setting}, {device}): ok runs disagree on mIoU: {shown}; "
                f"kept the newest, {chosen.record.run_id}"
            )
        for found in runs:
            rid = found.record.run_id
            if found is not chosen:
                if rid not in in_dest:
                    report.superseded.append(rid)
                continue
            if rid in in_dest:
                report.already_there += 1
                continue
            to_copy.append(found)
    for found in to_copy:  # validate everything before writing anything
        _sample_paths(found)
    for found in to_copy:
        copy_atomic(found.path, into / RECORDS_DIR / f"{found.record.run_id}.json")
        report.copied.append(found.record.run_id)
        for rel in _sample_paths(found):
            src, dst = found.folder / rel, into / rel
            if src.is_file() and not dst.exists():
                copy_atomic(src, dst)
                report.samples_copied += 1
    return report


def _sample_paths(found: _Found) -> list[str]:
    """The files a record references (samples, per-image matrices), inside its results folder."""
    samples, metrics = found.record.samples, found.record.metrics
    named = [(f"samples.{key}", getattr(samples, key, None)) for key in ("file", "inputs_file")]
    named.append(("metrics.per_image_file", getattr(metrics, "per_image_file", None)))
    paths = []
    for name, rel in named:
        if not rel:
            continue
        if Path(rel).is_absolute() or ".." in Path(rel).parts:  # never write outside `into`
            raise RecordError(
                f"{found.path}: {name} {rel!r} is not a relative path inside the results "
                f"folder; refusing to merge it."
            )
        paths.append(rel)
    return paths
