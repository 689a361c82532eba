"""Checkpoints: saving a trained model and loading one safely (``weights_only=True`` always).

The harness format is a dict ``{"format": "semseg-bench/1", "arch", "num_classes",
"state_dict", "meta"}``; a plain ``state_dict`` (e.g. from torchvision or a user's own training)
loads too. A checkpoint for another architecture or class count is refused with a report of
missing, unexpected and shape-mismatched keys.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable, Mapping
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
        path: A harness checkpoint, a plain ``state_dict`` of tensors, or a dict holding one
            under ``"state_dict"`` or ``"model"`` (its other entries are not used).

    Returns:
        ``{"format", "arch", "num_classes", "state_dict", "meta"}`` (``arch`` and
        ``num_classes`` are ``None`` unless it is a harness checkpoint).

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
    if _is_state_dict(obj):
        return {
            "format": "state_dict",
            "arch": None,
            "num_classes": None,
            "state_dict": obj,
            "meta": {},
        }
    for key in _CONTAINER_KEYS:  # a training script's dict with the weights under one key
        if isinstance(obj, dict) and _is_state_dict(obj.get(key)):
            return {
                "format": f"dict[{key!r}]",
                "arch": None,
                "num_classes": None,
                "state_dict": obj[key],
                "meta": {"other_keys": sorted(str(k) for k in obj if k != key)},
            }
    found = (
        f"a dict with keys {sorted(map(str, obj))[:8]}"
        if isinstance(obj, dict)
        else type(obj).__name__
    )
    raise CheckpointError(
        f"Checkpoint {path} is neither a semseg-bench checkpoint, a state_dict of tensors, nor "
        f"a dict holding one under {' or '.join(map(repr, _CONTAINER_KEYS))} (found {found}). "
        f"Re-save the model's state_dict alone."
    )


# Where training scripts commonly keep the weights (torchvision's references: "model";
# mmengine and many others: "state_dict").
_CONTAINER_KEYS = ("state_dict", "model")


def _is_state_dict(obj: object) -> bool:
    return (
        isinstance(obj, dict)
        and bool(obj)
        and all(isinstance(v, torch.Tensor) for v in obj.values())
    )


KeyConversion = Callable[[Mapping[str, torch.Tensor]], Mapping[str, torch.Tensor]]


def _tolerated_missing(model: nn.Module, state: Mapping[str, torch.Tensor], key: str) -> bool:
    """Whether ``torch``'s own strict load accepts ``key`` missing from ``state``.

    Batch norm fills ``num_batches_tracked`` in when a state dict written before that buffer
    existed lacks it (no ``_metadata`` version, or version < 2); nothing else is forgiven.
    """
    prefix, _, leaf = key.rpartition(".")
    if leaf != "num_batches_tracked":
        return False
    try:
        module = model.get_submodule(prefix)
    except AttributeError:
        return False
    if not isinstance(module, nn.modules.batchnorm._BatchNorm):
        return False
    metadata = getattr(state, "_metadata", None) or {}
    version = metadata.get(prefix, {}).get("version")
    return version is None or version < 2


def _show(keys: list[str]) -> str:
    return ", ".join(keys[:8]) + (f" (+{len(keys) - 8} more)" if len(keys) > 8 else "")


def _hint(own: Mapping[str, Any], unexpected: list[str], missing: list[str]) -> str:
    """The likely fix for a key mismatch."""
    prefix = unexpected[0].split(".", 1)[0] + "." if unexpected else ""
    if (
        prefix
        and all(k.startswith(prefix) for k in unexpected)
        and {k[len(prefix) :] for k in unexpected} <= set(own)
    ):
        wrapper = (
            " (the file was saved from a DataParallel/DistributedDataParallel wrapper)"
            if prefix == "module."
            else ""
        )
        return (
            f"Every unexpected key is one of the model's under the prefix {prefix!r}{wrapper}: "
            f"strip it (a weights entry declares that as its key conversion; --like NAME "
            f"borrows one)."
        )
    if missing and unexpected:
        return (
            "If the file is this architecture under other module names, declare a key "
            "conversion for it (WeightsInfo.convert_keys) or evaluate it with --like NAME of a "
            "weights entry that has one; otherwise it is for another architecture or class count."
        )
    return "Is it for another architecture or class count?"


def load_into(
    model: nn.Module,
    path: Path,
    *,
    arch: str,
    num_classes: int,
    convert: KeyConversion | None = None,
) -> dict[str, Any]:
    """Load a checkpoint into ``model`` (the registered architecture, not the PadCrop wrapper).

    The key check is exactly as permissive as ``torch``'s ``load_state_dict(strict=True)``: a
    batch-norm ``num_batches_tracked`` buffer may be missing from an old file, nothing else.

    Args:
        model: The registered architecture (``PadCrop.model``).
        path: The checkpoint file.
        arch: The architecture ``model`` is.
        num_classes: The class count ``model`` was built for.
        convert: Renames the file's keys to ``model``'s (e.g. strips ``module.``), applied to
            the state dict before the check.

    Returns:
        The checkpoint as :func:`read_checkpoint` returns it (``state_dict`` as converted).

    Raises:
        MissingFileError: ``path`` does not exist.
        CheckpointError: the file cannot be read (see :func:`read_checkpoint`), is for another
            architecture / class count, or its keys or shapes do not match, with a report of
            the keys that differ and the likely fix. ``model`` is left as it was.
    """
    ckpt = read_checkpoint(path)
    state = ckpt["state_dict"]
    if convert is not None:  # torch and the check below both see the converted keys
        state = convert(state)
        ckpt = {**ckpt, "state_dict": state}
    own = model.state_dict()
    missing = sorted(k for k in set(own) - set(state) if not _tolerated_missing(model, state, k))
    unexpected = sorted(set(state) - set(own))
    mismatched = sorted(k for k in set(own) & set(state) if own[k].shape != state[k].shape)
    other_arch = ckpt["arch"] not in (None, arch) or ckpt["num_classes"] not in (None, num_classes)
    if other_arch or missing or unexpected or mismatched:
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
            lines.append(f"  missing keys ({len(missing)}): {_show(missing)}")
        if unexpected:
            lines.append(f"  unexpected keys ({len(unexpected)}): {_show(unexpected)}")
        if mismatched:
            lines.append(
                "  shape mismatches: "
                + ", ".join(
                    f"{k} {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
                    for k in mismatched[:8]
                )
            )
        if not other_arch:
            lines.append(_hint(own, unexpected, missing))
        raise CheckpointError("\n".join(lines))
    model.load_state_dict(state, strict=True)
    return ckpt
