"""Atomic file writes: the one place the harness writes results files.

Every writer goes through a temporary file in the destination folder and ``os.replace``, so a
killed process leaves either the old file or the new one, never half a file. The temporary file
is created with mode ``0o666`` and the process umask applied by the kernel (``0644`` under the
usual umask ``022``), as ``open()`` would create it; ``tempfile.mkstemp`` would create it
``0600``, and ``os.replace`` would keep that mode, leaving records unreadable to the other
users of a shared results folder.

This module imports neither torch nor anything else of the harness except :mod:`numpy` (for
``.npz`` files).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import secrets
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

_FILE_MODE = 0o666  # before the umask, like open()


@contextmanager
def _temporary_beside(path: Path) -> Iterator[tuple[IO[bytes], Path]]:
    """Opens a new temporary file next to ``path``; deletes it if the block raises."""
    path.parent.mkdir(parents=True, exist_ok=True)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    for _ in range(100):
        tmp = path.parent / f".{path.name}.{secrets.token_hex(4)}.tmp"
        try:
            fd = os.open(tmp, flags, _FILE_MODE)
        except FileExistsError:
            continue
        break
    else:  # pragma: no cover - 100 collisions of 32 random bits
        raise FileExistsError(f"could not create a temporary file next to {path}")
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle, tmp
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def remove_leftover_temporaries(path: Path | str) -> list[Path]:
    """Deletes the temporary files a killed writer of ``path`` left next to it.

    Only safe while no other process writes ``path`` (the sweep holds the combination's lock).

    Args:
        path: The destination file whose temporaries (``.<name>.<hex>.tmp``) are removed.

    Returns:
        The files removed.
    """
    path = Path(path)
    if not path.parent.is_dir():
        return []
    leftovers = sorted(path.parent.glob(f".{path.name}.*.tmp"))
    for leftover in leftovers:
        leftover.unlink(missing_ok=True)
    return leftovers


def write_atomic(path: Path | str, write: Callable[[IO[bytes]], object]) -> Path:
    """Writes a file atomically: ``write(handle)`` fills a temporary file that replaces ``path``.

    Args:
        path: Destination file; its folder is created when missing.
        write: Called once with a binary file handle open for writing.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.
    """
    path = Path(path)
    with _temporary_beside(path) as (handle, tmp):
        write(handle)
        handle.flush()
        os.fsync(handle.fileno())
    try:
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def json_text(data: Any) -> str:
    """The harness's JSON layout: one-space indent, sorted keys, no NaN, trailing newline."""
    return json.dumps(data, indent=1, sort_keys=True, allow_nan=False) + "\n"


def write_json_atomic(path: Path | str, data: Any) -> Path:
    """Writes ``data`` as JSON (see :func:`json_text`) atomically.

    Raises:
        ValueError: ``data`` holds NaN or infinity (JSON has no spelling for them).
        TypeError: ``data`` holds a value JSON cannot represent.
    """
    text = json_text(data).encode("utf-8")  # serialise first: a bad value writes nothing
    return write_atomic(path, lambda handle: handle.write(text))


def write_text_atomic(path: Path | str, text: str) -> Path:
    r"""Writes UTF-8 text with ``\n`` line endings atomically."""
    data = text.encode("utf-8")
    return write_atomic(path, lambda handle: handle.write(data))


def write_npz_atomic(path: Path | str, **arrays: Any) -> Path:
    """Writes ``numpy.savez_compressed(**arrays)`` atomically (no ``.npz`` suffix is added)."""
    import numpy as np

    return write_atomic(path, lambda handle: np.savez_compressed(handle, **arrays))


def copy_atomic(src: Path | str, dst: Path | str) -> Path:
    """Copies the bytes of ``src`` to ``dst`` atomically (the copy's mode follows the umask)."""

    def copy(handle: IO[bytes]) -> None:
        with open(src, "rb") as source:
            shutil.copyfileobj(source, handle)

    return write_atomic(dst, copy)


def sha256_of(path: Path) -> str:
    """The file's sha256, hex (read in 1 MiB blocks)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def cached_sha256(path: Path) -> str:
    """:func:`sha256_of`, computed once per file version (its size and modification time)."""
    stat = Path(path).stat()
    return _sha256_cached(str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=64)
def _sha256_cached(path: str, _size: int, _mtime_ns: int) -> str:
    return sha256_of(Path(path))
