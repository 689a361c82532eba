"""Data-parallel training under torchrun: the batch split, DDP, SyncBN and per-rank seeds.

:func:`bench.train.train` takes these paths when it is given the :class:`~bench.distributed.Ranks`
of a torchrun job (a plain run never does):

* **The global batch is ``train.batch_size``.** Every rank draws the 1-process run's data order
  from the same seeded generator (the very sampler a ``DataLoader(shuffle=True,
  drop_last=True)`` builds) and keeps its slice of each batch: rank ``r`` takes images
  ``[r * b, (r + 1) * b)`` with ``b = batch_size / world_size`` (refused when not whole). The
  ranks' batches together are the 1-process batch, and the saved data position (epoch,
  generator, batches taken) means the same on every rank, so ``--resume`` works as before.
* **DDP** (``DistributedDataParallel``) averages the gradients; each rank's loss is the mean over
  its own pixels, so with equal pixel counts (no ignored pixels, no class weights) the averaged
  gradient is the 1-process gradient up to float rounding. The loss the loop reports is the mean
  over the ranks.
* **BatchNorm** normalises with each rank's own ``b`` images unless ``train.sync_bn`` converts it
  to ``SyncBatchNorm`` (statistics over the global batch; CUDA only in torch). After training
  the running statistics are averaged over the ranks, so every rank evaluates the same model;
  SyncBN layers are put back to the model's own BatchNorm classes.
* **Random draws** (dropout, augmentation) use seed ``seed + rank`` in each rank (DataLoader
  workers: ``worker seed + rank * num_workers``), so ranks do not repeat each other's draws;
  rank 0 draws what a 1-process run draws.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import BatchSampler, DataLoader, Dataset, RandomSampler, Sampler

from bench.distributed import Ranks, sum_over_ranks
from bench.errors import ConfigError
from bench.train.config import TrainConfig

_SEEDS = 2**64  # torch.manual_seed takes a uint64


def check_parallel(cfg: TrainConfig, world_size: int, device: str | torch.device) -> None:
    """Checks that ``cfg`` can train data-parallel over ``world_size`` processes on ``device``.

    Args:
        cfg: The training settings (``batch_size`` and ``sync_bn`` matter).
        world_size: Processes of the torchrun job.
        device: Where each rank trains.

    Raises:
        ConfigError: ``batch_size`` is not a multiple of ``world_size``, or ``sync_bn`` off CUDA.
    """
    if cfg.batch_size % world_size:
        raise ConfigError(
            f"train.batch_size {cfg.batch_size} does not split over the {world_size} processes "
            f"of this torchrun job: each process takes batch_size / world_size images of the "
            f"global batch. Fix: set train.batch_size to a multiple of {world_size}, or start "
            f"a number of processes (--nproc-per-node) that divides {cfg.batch_size}."
        )
    kind = torch.device(device).type
    if cfg.sync_bn and kind != "cuda":
        raise ConfigError(
            f"train.sync_bn: true needs CUDA under torchrun (torch's SyncBatchNorm runs on GPUs "
            f"only); this job trains on {kind}. Fix: set train.sync_bn: false (each process "
            f"then normalises its own batch_size / world_size images), or run with --device cuda."
        )


def rank_seed(seed: int, ranks: Ranks) -> int:
    """The seed of this rank's random draws: ``seed + rank`` (mod 2**64)."""
    return (seed + ranks.rank) % _SEEDS


class RankBatchSampler(Sampler[list[int]]):
    """This rank's slice of each batch of the 1-process loader.

    Args:
        num_items: Images in the training set.
        batch_size: The global batch (a multiple of ``ranks.world_size``).
        generator: The loader's generator (the 1-process loader's draws, one for one).
        ranks: This process's ranks.
    """

    def __init__(
        self, num_items: int, batch_size: int, generator: torch.Generator, ranks: Ranks
    ) -> None:
        order = RandomSampler(range(num_items), generator=generator)
        self.batches = BatchSampler(order, batch_size, drop_last=True)
        self.part = batch_size // ranks.world_size
        self.first = ranks.rank * self.part

    def __iter__(self) -> Iterator[list[int]]:
        """This rank's indices of each global batch, in the 1-process order."""
        for batch in self.batches:
            yield batch[self.first : self.first + self.part]

    def __len__(self) -> int:
        """Batches per epoch (global batches, the same on every rank)."""
        return len(self.batches)


class _WorkerSeed:
    """Reseeds a DataLoader worker with ``worker seed + offset`` (picklable, unlike a lambda)."""

    def __init__(self, offset: int) -> None:
        self.offset = offset

    def __call__(self, worker_id: int) -> None:
        torch.manual_seed((torch.initial_seed() + self.offset) % _SEEDS)


def rank_loader(
    dataset: Dataset, cfg: TrainConfig, generator: torch.Generator, ranks: Ranks
) -> DataLoader:
    """The training loader of this rank: :class:`RankBatchSampler` over ``dataset``.

    Args:
        dataset: The training set.
        cfg: ``batch_size`` (global) and ``num_workers``.
        generator: Seeded like the 1-process loader's.
        ranks: This process's ranks.

    Returns:
        A loader of ``batch_size / world_size`` images per batch.
    """
    workers = cfg.num_workers
    return DataLoader(
        dataset,
        batch_sampler=RankBatchSampler(len(dataset), cfg.batch_size, generator, ranks),
        generator=generator,
        num_workers=workers,
        worker_init_fn=_WorkerSeed(ranks.rank * workers) if workers else None,
    )


def wrap_ddp(model: nn.Module, device: str | torch.device) -> DistributedDataParallel:
    """``model`` in ``DistributedDataParallel`` (on ``device``'s GPU under NCCL).

    Every parameter must take part in each step's loss (DDP's default; all built-in entries
    do): a model with unused parameters fails at its second step with DDP's own message.
    """
    dev = torch.device(device)
    if dev.type == "cuda":
        return DistributedDataParallel(model, device_ids=[dev.index], output_device=dev.index)
    return DistributedDataParallel(model)


def mean_over_ranks(loss: torch.Tensor, ranks: Ranks) -> torch.Tensor:
    """The mean of a scalar loss over the ranks (a detached copy; ``loss`` is left alone)."""
    total = sum_over_ranks(loss.detach().clone(), ranks)
    return total / ranks.world_size


def to_sync_bn(model: nn.Module) -> list[tuple[nn.Module, str, _BatchNorm]]:
    """Replaces every BatchNorm below ``model`` by a ``SyncBatchNorm`` sharing its tensors.

    Args:
        model: The model (its root is not a BatchNorm).

    Returns:
        ``(parent, name, original)`` of each replaced layer, for :func:`from_sync_bn`.
    """
    swaps = [
        (parent, name, child)
        for parent in model.modules()
        for name, child in parent.named_children()
        if isinstance(child, _BatchNorm) and not isinstance(child, nn.SyncBatchNorm)
    ]
    for parent, name, child in swaps:
        setattr(parent, name, nn.SyncBatchNorm.convert_sync_batchnorm(child))
    return swaps


@torch.no_grad()
def from_sync_bn(swaps: list[tuple[nn.Module, str, _BatchNorm]]) -> None:
    """Puts the original BatchNorm layers back, with the trained values of their SyncBN copies."""
    for parent, name, original in swaps:
        original.load_state_dict(getattr(parent, name).state_dict())
        setattr(parent, name, original)


@torch.no_grad()
def average_bn_statistics(model: nn.Module, ranks: Ranks) -> None:
    """Averages every BatchNorm's running mean and variance over the ranks.

    Each rank updated them from its own images; afterwards all ranks hold the same model, and
    the statistics estimate those of every rank's images.
    """
    for m in model.modules():
        if isinstance(m, _BatchNorm) and m.running_mean is not None:
            for stat in (m.running_mean, m.running_var):
                sum_over_ranks(stat, ranks).div_(ranks.world_size)
