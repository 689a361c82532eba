"""Saved training state: everything a killed run needs to continue bit for bit.

A state file (``torch.save`` of plain containers and tensors, written atomically: a temporary
file in the same folder, then ``os.replace``) holds, after a completed step:

* the model's ``state_dict``, the optimiser's, the learning-rate scheduler's (its step count)
  and the fp16 gradient scaler's, if any;
* every random state the run draws from: torch's CPU generator, each CUDA device's (when CUDA
  is in use), NumPy's and Python's global generators;
* the data order's position: the epoch, the state of the DataLoader's generator at the start of
  that epoch, and how many batches of the epoch were taken. The DataLoader draws each epoch's
  permutation (and its workers' seeds) from that generator when the epoch starts, so restoring
  the generator and starting the epoch again gives the same batches; the batches already taken
  are loaded again and dropped (data loading only, no model work), which also replays any random
  augmentation a worker process drew for them. Then the global random states are restored, so
  whatever the replay drew from them is undone;
* the loop's own counters (loss curve, running window sum, last loss, seconds so far, and the
  periodic validation's curve and best step).

Under torchrun (:mod:`bench.train.parallel`) rank 0 writes the file and every rank reads it: the
model, optimiser and data position are the same on every rank, and the random states of every
rank are saved (``rank_rng``, in rank order) so that each rank continues its own draws. The
identity then names the number of processes: a state is continued by a job of the same size.

Read back with ``torch.load(..., weights_only=True)`` (nothing in it executes code on load);
the file also names the run it belongs to (an identity string, the hashed training settings and
the seed), and a state of another run is refused rather than silently continued.
"""

from __future__ import annotations

import pickle
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from bench.errors import CheckpointError, MissingFileError
from bench.fileio import write_atomic
from bench.train.config import TrainConfig

STATE_FORMAT = "semseg-bench-train-state/1"


class BatchStream:
    """The loader's batches, epoch after epoch, with the position a saved state records.

    Iterates like cycling over ``loader`` (a new epoch, and a new permutation drawn from
    ``generator``, whenever one ends); :meth:`position` and :meth:`seek` save and restore where
    it is (see the module docstring).

    Args:
        loader: The training DataLoader (``shuffle=True`` with ``generator``).
        generator: The loader's generator.
    """

    def __init__(self, loader: DataLoader, generator: torch.Generator) -> None:
        self.loader = loader
        self.generator = generator
        self.epoch = 0
        self.taken = 0
        self._epoch_state = generator.get_state()
        self._it: Iterator[Any] | None = None

    def _start_epoch(self) -> Iterator[Any]:
        self._epoch_state = self.generator.get_state()
        self.taken = 0
        self._it = iter(self.loader)
        return self._it

    def next(self) -> Any:
        """The next batch, starting a new epoch when the current one is used up."""
        it = self._it if self._it is not None else self._start_epoch()
        try:
            batch = next(it)
        except StopIteration:
            self.epoch += 1
            batch = next(self._start_epoch())
        self.taken += 1
        return batch

    def position(self) -> dict[str, Any]:
        """Where the stream is: ``{"epoch", "generator" (at the epoch's start), "batches"}``."""
        return {"epoch": self.epoch, "generator": self._epoch_state, "batches": self.taken}

    def seek(self, position: dict[str, Any]) -> None:
        """Continues from ``position`` (of :meth:`position`): the batches after it come next.

        The epoch is started again from its generator state and its first ``batches`` batches
        are loaded and dropped (this draws from the global random states: restore those after).
        """
        self.generator.set_state(position["generator"])
        self.epoch = int(position["epoch"])
        it = self._start_epoch()
        for _ in range(int(position["batches"])):
            next(it)
        self.taken = int(position["batches"])


def rng_states() -> dict[str, Any]:
    """Every global random state, as tensors and plain containers (weights-only loadable).

    Returns:
        ``{"torch", "cuda" (a list, empty unless CUDA is in use), "numpy", "python"}``.
    """
    kind, keys, pos, has_gauss, cached = np.random.get_state(legacy=True)
    cuda = (
        torch.cuda.get_rng_state_all()
        if torch.cuda.is_available() and torch.cuda.is_initialized()
        else []
    )
    return {
        "torch": torch.get_rng_state(),
        "cuda": list(cuda),
        "numpy": {
            "kind": kind,
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached),
        },
        "python": random.getstate(),
    }


def restore_rng_states(states: dict[str, Any]) -> None:
    """Sets every global random state from :func:`rng_states` output."""
    torch.set_rng_state(states["torch"])
    if states["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])
    n = states["numpy"]
    keys = n["keys"].numpy().astype(np.uint32)
    np.random.set_state((n["kind"], keys, n["pos"], n["has_gauss"], n["cached_gaussian"]))
    version, internal, gauss = states["python"]
    random.setstate((version, tuple(internal), gauss))


@dataclass
class Progress:
    """The training loop's own counters, saved with the state.

    Attributes:
        step: Optimiser steps completed.
        loss_curve: Mean loss of each completed logging window.
        running: Sum of the losses of the current, incomplete window.
        last_loss: Loss of the last completed step (NaN before the first).
        seconds: Wall time of the completed steps (of every process that ran them).
        val_curve: ``[step, miou]`` of each periodic validation (``train.eval_every``).
        best_step: The step of the best validation mIoU so far, None before the first.
        best_miou: That mIoU (0-1).
    """

    step: int = 0
    loss_curve: list[float] = field(default_factory=list)
    running: float = 0.0
    last_loss: float = float("nan")
    seconds: float = 0.0
    val_curve: list[list[float]] = field(default_factory=list)
    best_step: int | None = None
    best_miou: float = 0.0


@dataclass(frozen=True)
class RunIdentity:
    """What a state file must belong to: checked on load, so another run's state is refused.

    Attributes:
        name: The caller's name of the run (the sweep: ``suite__arch__dataset__setting``).
        cfg: The training settings (their hashed values are compared).
        seed: The training seed.
        device: The device type trained on (``cpu``, ``cuda``): a state does not move between
            them (other kernels, other random generators).
        world_size: Processes of the torchrun job that trains it; None for a plain run (and
            left out of the file then, as before torchrun was supported).
    """

    name: str
    cfg: TrainConfig
    seed: int
    device: str = "cpu"
    world_size: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """The identity as stored: name, hashed settings, seed, device type (world size)."""
        out: dict[str, Any] = {
            "name": self.name,
            "config": self.cfg.hashed_values(),
            "seed": self.seed,
            "device": self.device,
        }
        if self.world_size is not None:
            out["world_size"] = self.world_size
        return out


def save_state(
    path: Path,
    identity: RunIdentity,
    progress: Progress,
    *,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    scaler: torch.amp.GradScaler | None,
    stream: BatchStream,
    rank_rng: list[dict[str, Any]] | None = None,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Writes the full training state after ``progress.step`` steps, atomically.

    Args:
        path: The state file; its folder is created when missing.
        identity: The run it belongs to.
        progress: The loop's counters.
        model: The model being trained.
        optimizer: Its optimiser.
        scheduler: The learning-rate scheduler.
        scaler: The fp16 gradient scaler, or None.
        stream: The batches (their position is saved).
        rank_rng: Under torchrun: every rank's :func:`rng_states`, in rank order (rank 0 writes
            the file); None: this process's alone.
        extra: What a semi-supervised method saves besides (its networks and optimisers, the
            unlabelled stream's position), under the key ``"semisup"``; None: nothing.

    Returns:
        ``path``.
    """
    state = {
        "format": STATE_FORMAT,
        "identity": identity.to_dict(),
        "progress": {
            "step": progress.step,
            "loss_curve": list(progress.loss_curve),
            "running": progress.running,
            "last_loss": progress.last_loss,
            "seconds": progress.seconds,
            "val_curve": [list(p) for p in progress.val_curve],
            "best_step": progress.best_step,
            "best_miou": progress.best_miou,
        },
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "scaler": None if scaler is None else scaler.state_dict(),
        "data": stream.position(),
        "rng": rng_states() if rank_rng is None else rank_rng[0],
    }
    if rank_rng is not None:
        state["rank_rng"] = list(rank_rng)
    if extra is not None:
        state["semisup"] = extra
    return write_atomic(Path(path), lambda handle: torch.save(state, handle))


def load_state(path: Path, identity: RunIdentity) -> dict[str, Any]:
    """Reads a state file (``weights_only=True``) and checks that it belongs to ``identity``.

    Args:
        path: The state file.
        identity: The run that wants to continue from it.

    Returns:
        The state, for :func:`restore_state`.

    Raises:
        MissingFileError: No file at ``path``.
        CheckpointError: The file is unreadable, not a training state, or another run's (the
            message names what differs and the fix: delete the file to train from scratch).
    """
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"Training state {path} does not exist.")
    fix = f"Fix: delete {path} to train this run from the start."
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError) as exc:
        first = (str(exc).strip().splitlines() or [""])[0]
        raise CheckpointError(
            f"Training state {path} could not be read (truncated, corrupt, or holding Python "
            f"objects a weights-only load refuses): {first}. {fix}"
        ) from None
    found = state.get("format") if isinstance(state, dict) else type(state).__name__
    if found != STATE_FORMAT:
        raise CheckpointError(
            f"{path} is not a training state of this harness: expected format "
            f"{STATE_FORMAT!r}, found {found!r}. {fix}"
        )
    expected, saved = identity.to_dict(), state["identity"]
    differ = sorted(k for k in expected.keys() | saved.keys() if expected.get(k) != saved.get(k))
    if differ:
        detail = "; ".join(f"{k}: saved {saved.get(k)!r}, now {expected.get(k)!r}" for k in differ)
        if "world_size" in differ:  # None: a plain run
            fix = (
                f"Fix: resume with as many processes as saved it (world_size None: a plain "
                f"run), or delete {path} to train this run from the start."
            )
        raise CheckpointError(f"Training state {path} belongs to another run ({detail}). {fix}")
    return state


def restore_state(
    state: dict[str, Any],
    *,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    scaler: torch.amp.GradScaler | None,
    stream: BatchStream,
    rank: int = 0,
    restore_extra: Callable[[dict[str, Any]], None] | None = None,
) -> Progress:
    """Puts a loaded state back: modules, data position, then the global random states.

    The objects must be built as the saved run built them (same model, settings and device);
    the random states are restored last, after the data replay (see :meth:`BatchStream.seek`).

    Args:
        state: From :func:`load_state`.
        model: The freshly built model, on its training device.
        optimizer: Its fresh optimiser.
        scheduler: The fresh scheduler.
        scaler: The fresh fp16 gradient scaler, or None.
        stream: The fresh batch stream.
        rank: This process's rank: under torchrun it continues its own saved random states.
        restore_extra: Called with the saved ``extra`` (see :func:`save_state`) before the
            random states are restored (it may replay a second data stream); None: none.

    Returns:
        The loop's counters at the saved step.

    Raises:
        CheckpointError: The model's parameters differ from the saved ones (another build).
    """
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as exc:
        raise CheckpointError(
            f"The saved training state does not fit the model: {exc}. Delete the state file "
            f"to train from the start."
        ) from None
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    if scaler is not None and state["scaler"] is not None:
        scaler.load_state_dict(state["scaler"])
    stream.seek(state["data"])
    if restore_extra is not None:
        if "semisup" not in state:
            raise CheckpointError(
                "The saved training state holds no semi-supervised state (it was saved by a "
                "supervised run). Delete the state file to train from the start."
            )
        restore_extra(state["semisup"])
    restore_rng_states(state["rank_rng"][rank] if "rank_rng" in state else state["rng"])
    p = state["progress"]
    return Progress(
        step=int(p["step"]),
        loss_curve=list(p["loss_curve"]),
        running=float(p["running"]),
        last_loss=float(p["last_loss"]),
        seconds=float(p["seconds"]),
        # States saved before periodic validation existed have no curve: an empty one.
        val_curve=[[int(s), float(m)] for s, m in p.get("val_curve", [])],
        best_step=None if p.get("best_step") is None else int(p["best_step"]),
        best_miou=float(p.get("best_miou", 0.0)),
    )
