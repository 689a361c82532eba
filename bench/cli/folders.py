"""Results folders for the commands: checked writable before any work, and re-rendered."""

from __future__ import annotations

import tempfile
from pathlib import Path


def check_writable(folder: Path, option: str) -> None:
    """Creates ``folder`` if needed; a ConfigError naming ``option`` if it cannot be written."""
    from bench.errors import ConfigError

    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        raise ConfigError(
            f"{option} {folder} is not a writable folder ({exc.strerror}). Pass "
            f"{option} pointing at a folder you can write to."
        ) from None


def write_leaderboard(results_dir: Path, records: list, option: str = "--results-dir") -> list:
    """Renders the report into ``results_dir`` with :func:`bench.reporting.write_report`.

    Its ConfigError (a file it cannot write, no records) is prefixed with the option that named
    the folder; the records are never touched.
    """
    from bench.errors import ConfigError
    from bench.reporting import write_report

    try:
        return write_report(results_dir, records)
    except ConfigError as exc:
        raise ConfigError(f"{option} {results_dir}: {exc}") from None


def written_summary(written: list[Path]) -> str:
    """``LEADERBOARD.md, leaderboard.csv (+3 plots, site/index.html)``: what was written."""
    site = [p for p in written[2:] if p.parent.name == "site" and p.name == "index.html"]
    plots = [p for p in written[2:] if p.parent.name == "plots"]
    extras = f"+{len(plots)} plots" + (f", {site[0]}" if site else "")
    return f"{', '.join(str(p) for p in written[:2])} ({extras})"
