"""The sweep of a torchrun job: the processes train and evaluate each architecture together.

``torchrun --standalone --nproc-per-node N run_bench.py run --suite S`` starts N processes; each
builds the suite's datasets and runs :class:`DistributedSweep`, in step with the others:

* every architecture is built on every rank (same seed; DDP starts from rank 0's weights),
  trained data-parallel with the global batch ``train.batch_size`` (:mod:`bench.train.parallel`)
  and evaluated with its confusion matrix summed over the ranks (:func:`bench.evaluate.evaluate`);
* rank 0 alone runs the ``background`` baseline, counts complexity, times the speed (the others
  wait for it in the next collective, idle), takes the combination's lock, writes the samples,
  the record, the training state, the TensorBoard files, ``--save-checkpoints`` files and the
  leaderboard, and prints; the others show no progress bars and print nothing;
* rank 0 decides what runs (``--resume``'s finished combinations, a lock another sweep holds)
  and tells the others;
* after each architecture the ranks compare how it ended: a rank's error becomes the record's
  error (a failure of one rank alone, such as out of memory on one GPU, is named with its
  rank), so a record never says ok when a rank failed. Such a failure usually leaves the other
  ranks waiting in a collective until :data:`~bench.distributed.PROCESS_GROUP_TIMEOUT`.

Refused under torchrun before any work (:func:`torchrun_job`): ``--timeout-per-arch`` (each
architecture would run in a child process outside the process group), ``--shard`` (one job runs
every combination across its processes), a suite of published ``weights`` (nothing to train),
a ``--device`` with a CUDA index (each rank uses ``cuda:LOCAL_RANK``), a ``train.batch_size``
that does not split over the processes, and ``train.sync_bn`` off CUDA.

``checkpoint_every`` and ``--resume`` work: rank 0 saves the state (with every rank's random
states) and every rank continues from it; a state is continued by a job of the same size.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from typing import Any

from bench import distributed
from bench.distributed import Ranks, rank_device, ranks_from_env
from bench.errors import ConfigError
from bench.records import ErrorInfo, RunRecord
from bench.runner import BASELINE_ARCH, Sweep, SweepSummary
from bench.suites import SuiteConfig
from bench.train.parallel import check_parallel


def _quiet(message: str) -> None:
    """The log of ranks other than 0: nothing."""


def check_torchrun(
    suite: SuiteConfig,
    ranks: Ranks,
    device: str,
    *,
    timeout_per_arch: float | None = None,
    shard: tuple[int, int] | None = None,
) -> None:
    """Refuses what a torchrun job cannot run (see the module docstring), before any work.

    Args:
        suite: The suite.
        ranks: The job's ranks.
        device: This rank's device (:func:`~bench.distributed.rank_device`).
        timeout_per_arch: ``--timeout-per-arch``.
        shard: ``--shard``.

    Raises:
        ConfigError: Naming the option, why it cannot work here and the fix.
    """
    where = f"under torchrun (WORLD_SIZE={ranks.world_size})"
    if timeout_per_arch is not None:
        raise ConfigError(
            f"--timeout-per-arch {timeout_per_arch:g} cannot run {where}: it runs each "
            f"architecture in a child process, outside the job's process group. Fix: drop "
            f"--timeout-per-arch, or run it without torchrun."
        )
    if shard is not None:
        raise ConfigError(
            f"--shard {shard[0]}/{shard[1]} cannot run {where}: a torchrun job runs every "
            f"combination of the suite across its processes. Fix: drop --shard, or run the "
            f"shards as one-process runs without torchrun."
        )
    if suite.weights:
        raise ConfigError(
            f"Suite {suite.name!r} scores published weights and trains nothing; it does not run "
            f"{where}. Fix: run it without torchrun (python run_bench.py run --suite ...)."
        )
    for cfg in suite.train_configs():  # the suite's train and each recipe's
        if cfg.steps > 0:
            check_parallel(cfg, ranks.world_size, device)


@dataclass
class TorchrunJob:
    """A started torchrun job: its ranks and this rank's device.

    As a context manager it silences this process's standard output unless it is rank 0, and
    closes the process group on exit.

    Attributes:
        ranks: This process's ranks (with the object-collective group).
        device: This rank's device: ``cpu`` or ``cuda:LOCAL_RANK``.
    """

    ranks: Ranks
    device: str
    _stack: contextlib.ExitStack = field(default_factory=contextlib.ExitStack, repr=False)

    def __enter__(self) -> TorchrunJob:
        """Silences standard output on ranks other than 0."""
        self._stack.callback(distributed.stop, self.ranks)
        if not self.ranks.is_main:
            sink = self._stack.enter_context(open(os.devnull, "w", encoding="utf-8"))  # noqa: SIM115
            self._stack.enter_context(contextlib.redirect_stdout(sink))
        return self

    def __exit__(self, *exc: object) -> None:
        """Restores standard output and closes the process group."""
        self._stack.close()


def torchrun_job(
    suite: SuiteConfig,
    *,
    device: str,
    timeout_per_arch: float | None = None,
    shard: tuple[int, int] | None = None,
    environ: dict[str, str] | None = None,
) -> TorchrunJob | None:
    """Starts the torchrun job this process belongs to, after refusing what cannot run.

    Args:
        suite: The suite to run.
        device: ``--device`` (``auto``, ``cpu`` or ``cuda``).
        timeout_per_arch: ``--timeout-per-arch``.
        shard: ``--shard``.
        environ: The environment (``os.environ`` when None).

    Returns:
        None for a plain run (no torchrun variables); else the job, its process group open.

    Raises:
        ConfigError: See :func:`check_torchrun`, :func:`~bench.distributed.ranks_from_env`
            and :func:`~bench.distributed.rank_device`.
    """
    ranks = ranks_from_env(environ)
    if not ranks.torchrun:
        return None
    rank_dev = rank_device(device, ranks)
    check_torchrun(suite, ranks, rank_dev, timeout_per_arch=timeout_per_arch, shard=shard)
    return TorchrunJob(ranks=distributed.start(ranks, rank_dev), device=rank_dev)


class DistributedSweep(Sweep):
    """:class:`~bench.runner.Sweep` run by every process of a torchrun job, in step.

    Args:
        suite: The suite to run.
        ranks: This process's ranks, the process group started (:func:`torchrun_job`).
        **options: :class:`~bench.runner.Sweep`'s options; on ranks other than 0 the progress
            bars, log, TensorBoard files and checkpoints are turned off.

    Raises:
        ConfigError: ``timeout_per_arch`` is set, or see :func:`check_torchrun`.
    """

    def __init__(self, suite: SuiteConfig, *, ranks: Ranks, **options: Any) -> None:
        device = options.get("device", "auto")
        if device in ("auto", "cuda"):
            options["device"] = device = rank_device(device, ranks)
        check_torchrun(suite, ranks, device, timeout_per_arch=options.get("timeout_per_arch"))
        if not ranks.is_main:
            options.update(progress=False, log=_quiet, tensorboard=False, checkpoint_dir=None)
        super().__init__(suite, **options)
        self.ranks = ranks
        self._told = False  # rank 0: whether the others were told to run this combination

    def run(
        self, archs: list[str], *, resume: bool = False, shard: tuple[int, int] | None = None
    ) -> SweepSummary:
        """:meth:`Sweep.run` on every rank (rank 0's summary is the job's; the others' is empty).

        Raises:
            ConfigError: ``shard`` is set.
        """
        if shard is not None:
            check_torchrun(self.suite, self.ranks, self.device, shard=shard)
        return super().run(archs, resume=resume)

    def done_combinations(self) -> set[str]:
        """Rank 0's finished combinations (:meth:`Sweep.done_combinations`), on every rank."""
        mine = super().done_combinations() if self.ranks.is_main else set()
        return distributed.broadcast(self.ranks, mine)

    def _write_inputs(self) -> str | None:
        """Rank 0 writes the shared inputs of the samples; the others write nothing."""
        return super()._write_inputs() if self.ranks.is_main else None

    def _run_one(
        self, arch: str, inputs_rel: str | None, summary: SweepSummary
    ) -> RunRecord | None:
        """Rank 0 runs the combination as a sweep does (lock, record); the others follow it.

        Returns:
            Rank 0: the record, or None when another sweep holds the lock. The others: None
            (they write nothing; the job's summary is rank 0's).
        """
        if arch == BASELINE_ARCH:  # rank 0 alone: no model, nothing to share
            return super()._run_one(arch, inputs_rel, summary) if self.ranks.is_main else None
        if self.ranks.is_main:
            self._told = False
            record = super()._run_one(arch, inputs_rel, summary)  # run_arch tells the others
            if not self._told:  # another sweep holds the lock: the others skip it as well
                distributed.broadcast(self.ranks, False)
            return record
        if distributed.broadcast(self.ranks, None):
            self.run_arch(arch, inputs_rel)
        return None

    def run_arch(self, arch: str, inputs_rel: str | None) -> RunRecord:
        """:meth:`Sweep.run_arch` on every rank; an error on any rank is the record's error.

        Returns:
            The record (rank 0 writes it): ok only when every rank finished without error.
        """
        if self.ranks.is_main:
            self._told = True
            distributed.broadcast(self.ranks, True)
        record = super().run_arch(arch, inputs_rel)
        err = record.error
        ends = distributed.all_gather(
            self.ranks, None if err is None else (err.stage, err.type, err.message)
        )
        failed = [(rank, end) for rank, end in enumerate(ends) if end is not None]
        if err is not None or not failed:
            return record
        rank, (stage, kind, message) = failed[0]
        written = [record.samples.file if record.samples else None]
        written.append(record.metrics.per_image_file if record.metrics else None)
        for rel in filter(None, written):  # files of the record dropped below
            (self.results_dir / rel).unlink(missing_ok=True)
        error = ErrorInfo(
            type=kind,
            message=f"rank {rank} of {self.ranks.world_size} failed: {message}",
            traceback=None,
            stage=stage,
        )
        return record.replace(
            status="error", error=error, metrics=None, speed=None, complexity=None, samples=None
        )
