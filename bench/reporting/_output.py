"""Writing the report's files (private to :mod:`bench.reporting`).

Files are written atomically through :mod:`bench.fileio`; a folder that cannot be written gives
an error a user can act on.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bench.errors import ConfigError


@contextmanager
def writing(path: Path) -> Iterator[None]:
    """Turns an ``OSError`` raised while ``path`` is written into a ConfigError naming it.

    Args:
        path: The report file the block writes.

    Raises:
        ConfigError: The block raised ``OSError`` (read-only folder, a directory in the file's
            place, full disk); the message names ``path`` and the fix.
    """
    try:
        yield
    except OSError as exc:
        raise ConfigError(
            f"cannot write the leaderboard ({path}: {exc.strerror or exc}). The records are "
            "unchanged; make the folder writable, or copy the folder and render the copy "
            "(`python run_bench.py leaderboard --results-dir COPY`)."
        ) from None
