"""Several processes (torchrun): who this process is, its process group, and the collectives.

``torchrun --standalone --nproc-per-node N run_bench.py run ...`` starts N copies of the command
with ``WORLD_SIZE``, ``RANK`` and ``LOCAL_RANK`` in their environment. :func:`ranks_from_env`
reads them; a plain ``python run_bench.py`` has none of them and gets :data:`SINGLE`: one
process, no process group, the harness exactly as it runs without torchrun. :func:`start`
opens the process group of a torchrun job: ``gloo`` on the CPU, ``nccl`` on CUDA with each rank
on ``cuda:LOCAL_RANK``.

Small Python values (rank 0's decisions, each rank's status, kept predictions, random states)
travel through a ``gloo`` group, a second one under NCCL: a rank waiting for rank 0 (which
alone times, counts and writes) then blocks on a socket instead of spinning a GPU kernel, and
the wait may last :data:`PROCESS_GROUP_TIMEOUT`. Tensors (gradients, the loss, the confusion
matrix) use the default group.

Every rank of a job must see the same results folder (``--standalone`` runs on one machine).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist

from bench.errors import ConfigError

ENV_VARS = ("WORLD_SIZE", "RANK", "LOCAL_RANK")
"""What torchrun sets for each process it starts (all three, or none for a plain run)."""

PROCESS_GROUP_TIMEOUT = timedelta(hours=1)
"""How long a rank waits in a collective: the other ranks wait this long for rank 0's
complexity count, speed timing and records of one architecture."""


@dataclass(frozen=True)
class Ranks:
    """This process's place in a torchrun job (or the one process of a plain run).

    Attributes:
        rank: 0-based rank; rank 0 alone measures, writes and logs.
        world_size: Processes in the job.
        local_rank: Rank on this machine (the CUDA device index).
        torchrun: Started by torchrun (then training, evaluation and the sweep take their
            data-parallel paths, also with one process); False: a plain run.
        group: The gloo group of object collectives (set by :func:`start`).
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    torchrun: bool = False
    group: Any = field(default=None, compare=False, repr=False)

    @property
    def is_main(self) -> bool:
        """Whether this is rank 0 (a plain run's one process is)."""
        return self.rank == 0

    @property
    def recorded_world_size(self) -> int | None:
        """The record's ``train.world_size``: the job's size under torchrun, else None."""
        return self.world_size if self.torchrun else None


SINGLE = Ranks()
"""A plain run: one process, no process group."""


def ranks_from_env(environ: Mapping[str, str] | None = None) -> Ranks:
    """This process's :class:`Ranks`, from the variables torchrun sets.

    Args:
        environ: The environment (``os.environ`` when None).

    Returns:
        :data:`SINGLE` when none of :data:`ENV_VARS` is set; else the job's ranks.

    Raises:
        ConfigError: Only some of the variables are set, or one is not a valid number.
    """
    env = os.environ if environ is None else environ
    found = {name: env[name] for name in ENV_VARS if name in env}
    if not found:
        return SINGLE
    fix = (
        "Start several processes with `torchrun --standalone --nproc-per-node N run_bench.py "
        "run ...`, or unset these variables for one process."
    )
    missing = [name for name in ENV_VARS if name not in found]
    if missing:
        raise ConfigError(
            f"The environment sets {', '.join(sorted(found))} but not {', '.join(missing)}: "
            f"expected all of {', '.join(ENV_VARS)} (torchrun sets them) or none. {fix}"
        )
    try:
        world, rank, local = (int(found[name]) for name in ENV_VARS)
    except ValueError:
        raise ConfigError(
            f"Expected integers in {', '.join(ENV_VARS)}; found "
            f"{', '.join(f'{k}={v!r}' for k, v in found.items())}. {fix}"
        ) from None
    if not (world >= 1 and 0 <= rank < world and local >= 0):
        raise ConfigError(
            f"Expected WORLD_SIZE >= 1, 0 <= RANK < WORLD_SIZE and LOCAL_RANK >= 0; found "
            f"WORLD_SIZE={world}, RANK={rank}, LOCAL_RANK={local}. {fix}"
        )
    return Ranks(rank=rank, world_size=world, local_rank=local, torchrun=True)


def rank_device(device: str, ranks: Ranks) -> str:
    """The device of this rank for ``--device``: ``cuda:LOCAL_RANK`` or ``cpu``.

    Args:
        device: ``auto`` (CUDA when available), ``cpu`` or ``cuda``.
        ranks: This process's ranks.

    Returns:
        ``"cpu"`` or ``"cuda:<local_rank>"``.

    Raises:
        ConfigError: ``device`` names a CUDA index (each rank takes its own), another value,
            or CUDA without a device for this local rank.
    """
    if device not in ("auto", "cpu", "cuda"):
        raise ConfigError(
            f"--device under torchrun must be auto, cpu or cuda; found {device!r}. Each process "
            f"uses cuda:LOCAL_RANK (choose the GPUs with CUDA_VISIBLE_DEVICES)."
        )
    if device == "cpu" or (device == "auto" and not torch.cuda.is_available()):
        return "cpu"
    count = torch.cuda.device_count()
    if ranks.local_rank >= count:
        raise ConfigError(
            f"--device {device}: this process has LOCAL_RANK {ranks.local_rank} but "
            f"{count} CUDA device(s) are visible; expected one device per process. Start at "
            f"most {count} process(es) per machine (--nproc-per-node), or use --device cpu."
        )
    return f"cuda:{ranks.local_rank}"


def start(ranks: Ranks, device: str) -> Ranks:
    """Opens the process group of a torchrun job (nothing for a plain run).

    Args:
        ranks: From :func:`ranks_from_env`.
        device: This rank's device (:func:`rank_device`): ``nccl`` on CUDA, ``gloo`` on the CPU.

    Returns:
        ``ranks`` with the gloo group of object collectives.
    """
    if not ranks.torchrun or dist.is_initialized():
        return ranks
    if device.startswith("cuda"):
        torch.cuda.set_device(torch.device(device))
        dist.init_process_group("nccl", timeout=PROCESS_GROUP_TIMEOUT)
        group = dist.new_group(backend="gloo", timeout=PROCESS_GROUP_TIMEOUT)
    else:
        dist.init_process_group("gloo", timeout=PROCESS_GROUP_TIMEOUT)
        group = dist.group.WORLD
    return replace(ranks, group=group)


def stop(ranks: Ranks) -> None:
    """Closes the process group :func:`start` opened (nothing for a plain run)."""
    if ranks.torchrun and dist.is_initialized():
        dist.destroy_process_group()


def broadcast(ranks: Ranks, value: Any) -> Any:
    """Rank 0's ``value`` on every rank (a plain run: ``value``).

    Args:
        ranks: This process's ranks.
        value: A picklable value; only rank 0's is used.

    Returns:
        Rank 0's value.
    """
    if not ranks.torchrun:
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0, group=ranks.group)
    return box[0]


def all_gather(ranks: Ranks, value: Any) -> list[Any]:
    """Every rank's ``value``, in rank order, on every rank (a plain run: ``[value]``)."""
    if not ranks.torchrun:
        return [value]
    out: list[Any] = [None] * ranks.world_size
    dist.all_gather_object(out, value, group=ranks.group)
    return out


def gather(ranks: Ranks, value: Any) -> list[Any] | None:
    """Every rank's ``value``, in rank order, on rank 0; None on the others.

    Args:
        ranks: This process's ranks.
        value: A picklable value.

    Returns:
        The list on rank 0 (a plain run: ``[value]``), None elsewhere.
    """
    if not ranks.torchrun:
        return [value]
    out: list[Any] | None = [None] * ranks.world_size if ranks.is_main else None
    dist.gather_object(value, out, dst=0, group=ranks.group)
    return out


def sum_over_ranks(tensor: torch.Tensor, ranks: Ranks) -> torch.Tensor:
    """Sums ``tensor`` over the ranks in place (default group); a plain run leaves it.

    Args:
        tensor: On this rank's device (CUDA under NCCL).
        ranks: This process's ranks.

    Returns:
        ``tensor``, now the sum.
    """
    if ranks.torchrun:
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def rank_batches(num_items: int, batch_size: int, ranks: Ranks) -> list[list[int]]:
    """This rank's share of the batches a 1-process loop makes of ``num_items`` items in order.

    The batches are those of ``DataLoader(batch_size=batch_size, shuffle=False)``; rank ``r``
    takes the ``r``-th of ``world_size`` contiguous runs of them (their counts differ by at most
    one), so every item is in exactly one rank's share, in the same batch as in one process, and
    rank 0 holds the first items.

    Args:
        num_items: Items in order (``len(dataset)``).
        batch_size: Items per batch, >= 1.
        ranks: This process's ranks.

    Returns:
        The index lists of this rank's batches (possibly none).
    """
    starts = list(range(0, num_items, batch_size))
    per, extra = divmod(len(starts), ranks.world_size)
    first = ranks.rank * per + min(ranks.rank, extra)
    mine = starts[first : first + per + (1 if ranks.rank < extra else 0)]
    return [list(range(s, min(s + batch_size, num_items))) for s in mine]
