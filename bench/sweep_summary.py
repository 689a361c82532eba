"""What a sweep did (:class:`SweepSummary`) and how Ctrl-C ends one (:class:`SweepInterrupted`).

Both are re-exported by :mod:`bench.runner`, whose sweep fills the summary in as it goes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class SweepSummary:
    """What a sweep did, filled in as it goes (so an interrupted sweep can still say)."""

    written: list[Path] = field(default_factory=list)
    finished: list[str] = field(default_factory=list)  # combinations with a record this sweep
    failed: list[tuple[str, str]] = field(default_factory=list)  # (arch, one-line message)
    skipped: list[str] = field(default_factory=list)  # resumed: ok record already there
    busy: list[tuple[str, str]] = field(default_factory=list)  # (arch, who runs it now)
    not_in_shard: list[str] = field(default_factory=list)  # combinations of other shards
    orphans_removed: list[str] = field(default_factory=list)  # samples of killed runs
    planned: list[str] = field(default_factory=list)  # this sweep's combinations, in order
    resumed: list[tuple[str, int]] = field(default_factory=list)  # (arch, saved step) continued


class SweepInterrupted(KeyboardInterrupt):
    """Ctrl-C during a sweep; ``summary`` says what had finished.

    Args:
        summary: The sweep's summary as it stood when interrupted.
    """

    def __init__(self, summary: SweepSummary) -> None:
        super().__init__("sweep interrupted")
        self.summary = summary
