"""Locks on (suite, architecture, dataset, setting) combinations of a results folder.

Two runs writing into one results folder (two terminals, or a job array whose shards overlap)
would otherwise repeat each other's work silently. Before it runs a combination, a sweep takes
``<results_dir>/.locks/<suite>__<arch>__<dataset>__<setting>.lock``, a small JSON file naming
the process (pid, host, start time, command); a second sweep that finds the lock held by a live
process skips the combination and says who holds it. Shards of one suite run disjoint
combinations, so they share a folder without waiting on each other; so do runs of one suite's
other settings (seeds, semi-supervised methods and shares), which train other models.

A lock left by a process that died (``kill -9``, a crash) on this host is recognised (its pid is
gone) and taken over. A lock from another host cannot be checked: the message names the file
to delete if that run is known to be dead.

The file is created complete or not at all (written to a temporary name, then hard-linked into
place, which fails if the lock exists).
"""

from __future__ import annotations

import json
import os
import socket
from dataclasses import dataclass
from pathlib import Path

from bench.fileio import write_json_atomic

LOCKS_DIR = ".locks"


@dataclass(frozen=True)
class LockHolder:
    """Who holds a lock: process id, host name, start time (UTC) and command."""

    pid: int
    host: str
    started: str
    command: str

    def describe(self) -> str:
        """``"pid 123 on host h since 2026-12-06T10:00:00Z (python run_bench.py ...)"``."""
        return f"pid {self.pid} on host {self.host} since {self.started} ({self.command})"


def lock_path(results_dir: Path | str, key: str) -> Path:
    """The lock file of one combination.

    ``key`` is :meth:`bench.runner.Sweep.key`, ``<suite>__<arch>__<dataset>__<setting>``,
    already safe as a file name (it also names the combination's training state).
    """
    return Path(results_dir) / LOCKS_DIR / f"{key}.lock"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by another user
        return True
    return True


def _read(path: Path) -> LockHolder | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return LockHolder(
            pid=int(data["pid"]),
            host=str(data["host"]),
            started=str(data["started"]),
            command=str(data["command"]),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def acquire(path: Path, holder: LockHolder) -> LockHolder | None:
    """Takes the lock at ``path`` for ``holder``.

    Returns:
        None when the lock is now ours; otherwise the live holder that has it.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    write_json_atomic(tmp, holder.__dict__)
    try:
        for _ in range(3):
            try:
                os.link(tmp, path)
                return None
            except FileExistsError:
                current = _read(path)
                stale = current is None or (
                    current.host == holder.host
                    and (current.pid == holder.pid or not _alive(current.pid))
                )
                if not stale:
                    return current
                path.unlink(missing_ok=True)  # a dead process's lock: take it over
        return _read(path)
    finally:
        tmp.unlink(missing_ok=True)


def release(path: Path, holder: LockHolder) -> None:
    """Removes the lock at ``path`` if ``holder`` still holds it."""
    current = _read(path)
    if current is not None and (current.pid, current.host) == (holder.pid, holder.host):
        path.unlink(missing_ok=True)


def this_process(command: str, started: str) -> LockHolder:
    """The :class:`LockHolder` describing the current process."""
    return LockHolder(pid=os.getpid(), host=socket.gethostname(), started=started, command=command)
