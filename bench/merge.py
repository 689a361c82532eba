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

import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.results import RECORDS_DIR, load_records

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
    record: dict[str, Any]
    path: Path
    folder: Path


def _key(record: dict[str, Any]) -> Key:
    env = record.get("env") or {}
    speed = record.get("speed") or {}
    return (
        record["suite"],
        record["dataset"],
        record.get("setting", ""),
        record["arch"],
        str(speed.get("device_name") or env.get("device_name") or ""),
    )


def _order(found: _Found) -> tuple[str, str]:
    return (found.record.get("created", ""), found.record["run_id"])


def _copy_atomic(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dst.name}.", suffix=".tmp", dir=dst.parent)
    os.close(fd)
    try:
        shutil.copyfile(src, tmp)
        os.replace(tmp, dst)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _load(folder: Path) -> list[_Found]:
    records = load_records(folder)  # validates every file, raising with the file's name
    ids = {r["run_id"] for r in records}
    paths: dict[str, Path] = {}
    for path in sorted((folder / RECORDS_DIR).glob("*.json")):
        rid = path.stem
        if rid not in ids:  # a renamed file: read its run_id
            rid = json.loads(path.read_text(encoding="utf-8"))["run_id"]
        paths.setdefault(rid, path)
    return [_Found(record=r, path=paths[r["run_id"]], folder=folder) for r in records]


def merge_results(sources: list[Path], into: Path) -> MergeReport:
    """Merge the records (and their sample files) of ``sources`` into ``into``.

    Raises:
        FileNotFoundError: a source has no ``records/`` folder.
        ValueError: a record file is corrupt or not a record (the message names it); nothing
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
        rid = found.record["run_id"]
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

    in_dest = {f.record["run_id"] for f in existing}
    to_copy: list[_Found] = []
    for key, runs in sorted(groups.items()):
        ok = [f for f in runs if f.record["status"] == "ok"]
        chosen = max(ok or runs, key=_order)
        folders_miou = {
            (f.folder.resolve(), (f.record.get("metrics") or {}).get("miou")) for f in ok
        }
        mious = {m for _, m in folders_miou if m is not None}
        if len({folder for folder, _ in folders_miou}) > 1 and len(mious) > 1:
            suite, _, setting, arch, device = key
            shown = ", ".join(
                f"{f.record['run_id']} ({f.folder}): {100 * f.record['metrics']['miou']:.3f}"
                for f in sorted(ok, key=_order)
            )
            report.conflicts.append(
                f"{arch} ({suite}, {setting}, {device}): ok runs disagree on mIoU: {shown}; "
                f"kept the newest, {chosen.record['run_id']}"
            )
        for found in runs:
            rid = found.record["run_id"]
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
        _copy_atomic(found.path, into / RECORDS_DIR / f"{found.record['run_id']}.json")
        report.copied.append(found.record["run_id"])
        for rel in _sample_paths(found):
            src, dst = found.folder / rel, into / rel
            if src.is_file() and not dst.exists():
                _copy_atomic(src, dst)
                report.samples_copied += 1
    return report


def _sample_paths(found: _Found) -> list[str]:
    """The sample files a record references, checked to stay inside its results folder."""
    samples = found.record.get("samples") or {}
    paths = []
    for key in ("file", "inputs_file"):
        rel = samples.get(key)
        if not isinstance(rel, str) or not rel:
            continue
        if Path(rel).is_absolute() or ".." in Path(rel).parts:  # never write outside `into`
            raise ValueError(
                f"{found.path}: samples.{key} {rel!r} is not a relative path inside the results "
                f"folder; refusing to merge it."
            )
        paths.append(rel)
    return paths
