"""Checkpoints: saving a trained model and loading one safely (``weights_only=True`` always).

The harness format is a dict ``{"format": "semseg-bench/1", "arch", "num_classes",
"state_dict", "meta"}``; a plain ``state_dict`` (e.g. from torchvision or a user's own training)
loads too. A checkpoint for another architecture or class count is refused with a report of
missing, unexpected and shape-mismatched keys.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import torch
from torch import nn

from bench.errors import CheckpointError, MissingFileError
from bench.fileio import write_atomic

FORMAT = "semseg-bench/1"


def save_checkpoint(
    path: Path, model: nn.Module, *, arch: str, num_classes: int, meta: dict[str, Any] | None = None
) -> Path:
    """Saves ``model``'s state dict in the harness format, atomically.

    Args:
        path: Destination file; its folder is created when missing.
        model: The registered architecture (not the ``PadCrop`` wrapper).
        arch: Its registered name.
        num_classes: The class count it was built for.
        meta: Free-form JSON-like details (e.g. the run id).

    Returns:
        ``path``.
    """
    obj = {
        "format": FORMAT,
        "arch": arch,
        "num_classes": num_classes,
        "state_dict": model.state_dict(),
        "meta": meta or {},
    }
    return write_atomic(path, lambda handle: torch.save(obj, handle))


def _unpickling_detail(message: str) -> str:
    """The informative part of torch's weights-only error (it wraps it in generic advice)."""
    boilerplate = ("Weights only load failed", "Please file an issue", "Check the documentation")
    lines = [
        line.strip()
        for line in message.splitlines()
        if line.strip() and not line.strip().startswith(boilerplate)
    ]
    return " ".join(lines) or message.strip()


def read_checkpoint(path: Path) -> dict[str, Any]:
    """Read a checkpoint file with ``weights_only=True``; returns the harness dict form.

    Args:
        path: A harness checkpoint or a plain ``state_dict`` of tensors.

    Returns:
        ``{"format", "arch", "num_classes", "state_dict", "meta"}`` (``arch`` and
        ``num_classes`` are ``None`` for a plain state dict).

    Raises:
        MissingFileError: ``path`` does not exist.
        CheckpointError: the file is corrupt, holds Python objects a weights-only load refuses,
            or is neither format.
    """
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"Checkpoint {path} does not exist.")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        detail = _unpickling_detail(str(exc))
        if "global" not in detail.lower():  # not an object reference: the bytes are garbage
            raise CheckpointError(
                f"Checkpoint {path} is not a readable torch file (corrupt or truncated?): {detail}"
            ) from None
        raise CheckpointError(
            f"Checkpoint {path} was refused: it holds Python objects that a weights-only load "
            f"does not execute (a checkpoint that runs code on load is not accepted). "
            f"Re-save it as a plain state_dict of tensors. Detail: {detail}"
        ) from None
    except (RuntimeError, EOFError, OSError) as exc:
        raise CheckpointError(
            f"Checkpoint {path} is not a readable torch file (corrupt or truncated?): {exc}"
        ) from None
    if isinstance(obj, dict) and obj.get("format") == FORMAT:
        return obj
    if isinstance(obj, dict) and all(isinstance(v, torch.Tensor) for v in obj.values()):
        return {
            "format": "state_dict",
            "arch": None,
            "num_classes": None,
            "state_dict": obj,
            "meta": {},
        }
    raise CheckpointError(
        f"Checkpoint {path} is neither a semseg-bench checkpoint nor a state_dict of tensors "
        f"(found {type(obj).__name__})."
    )


def load_into(model: nn.Module, path: Path, *, arch: str, num_classes: int) -> dict[str, Any]:
    """Load a checkpoint into ``model`` (the registered architecture, not the PadCrop wrapper).

    Args:
        model: The registered architecture (``PadCrop.model``).
        path: The checkpoint file.
        arch: The architecture ``model`` is.
        num_classes: The class count ``model`` was built for.

    Returns:
        The checkpoint as :func:`read_checkpoint` returns it.

    Raises:
        MissingFileError: ``path`` does not exist.
        CheckpointError: the file cannot be read (see :func:`read_checkpoint`), is for another
            architecture / class count, or its keys or shapes do not match, with a report of
            the keys that differ.
    """
    ckpt = read_checkpoint(path)
    state = ckpt["state_dict"]
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    mismatched = sorted(k for k in set(own) & set(state) if own[k].shape != state[k].shape)
    other_arch = ckpt["arch"] not in (None, arch) or ckpt["num_classes"] not in (None, num_classes)
    if other_arch or missing or unexpected or mismatched:

        def show(keys: list[str]) -> str:
            return ", ".join(keys[:8]) + (f" (+{len(keys) - 8} more)" if len(keys) > 8 else "")

        if other_arch:
            lines = [
                f"Checkpoint {path} is for arch {ckpt['arch']!r} with {ckpt['num_classes']} "
                f"classes; asked for {arch!r} with {num_classes}. Evaluate it as --arch "
                f"{ckpt['arch']} on a dataset with {ckpt['num_classes']} classes, or pass the "
                f"checkpoint of {arch!r}."
            ]
        else:
            lines = [f"Checkpoint {path} does not fit {arch!r} with {num_classes} classes:"]
        if missing:
            lines.append(f"  missing keys ({len(missing)}): {show(missing)}")
        if unexpected:
            lines.append(f"  unexpected keys ({len(unexpected)}): {show(unexpected)}")
        if mismatched:
            lines.append(
                "  shape mismatches: "
                + ", ".join(
                    f"{k} {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
                    for k in mismatched[:8]
                )
            )
        if not other_arch:
            lines.append("Is it for another architecture or class count?")
        raise CheckpointError("\n".join(lines))
    model.load_state_dict(state)
    return ckpt
