"""Shards: deal a suite's combinations round-robin over N machines or job-array tasks."""

from __future__ import annotations

from bench.errors import ConfigError


def parse_shard(text: str) -> tuple[int, int]:
    """``"I/N"`` -> ``(I, N)``: shard I (1-based) of N.

    Raises:
        ConfigError: not two integers ``I/N`` with ``1 <= I <= N``.
    """
    parts = text.split("/")
    try:
        index, count = (int(p) for p in parts) if len(parts) == 2 else (0, 0)
    except ValueError:
        index, count = 0, 0
    if count < 1 or not 1 <= index <= count:
        raise ConfigError(
            f"--shard expects I/N with 1 <= I <= N (shard I of N, counted from 1, e.g. 2/3); "
            f"got {text!r}. In a Slurm array use --array=1-N and --shard "
            f"$SLURM_ARRAY_TASK_ID/N."
        )
    return index, count


def shard_items(items: list[str], index: int, count: int) -> list[str]:
    """The items of shard ``index`` (1-based) of ``count``: every ``count``-th, round-robin.

    Round-robin rather than contiguous blocks, so slow and fast architectures (suites list
    families together) spread over the shards.

    Raises:
        ValueError: ``index`` / ``count`` out of range (a caller's bug: parse_shard checks
            user input).
    """
    if count < 1 or not 1 <= index <= count:
        raise ValueError(f"shard must satisfy 1 <= index <= count; got {index}/{count}.")
    return items[index - 1 :: count]
