"""Published weights: find the declared file, verify it, load it, and evaluate it as its authors did.

A declaration (:class:`architectures.WeightsInfo`) names a file; :func:`find_weights` looks for it
in the folders of :func:`search_path` (never downloading), :func:`verify_sha256` checks its hash,
and :func:`load_published` builds the architecture with the declared options, loads the file
through the declared key conversion (``weights_only=True``, the key check of
:func:`bench.checkpoint.load_into`) and wraps it in :class:`PublishedModel`, which turns the
harness's input into the authors' and their output channels into the dataset's classes.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

import architectures
from architectures import WeightsInfo
from bench.checkpoint import load_into
from bench.errors import CheckpointError, MissingFileError
from bench.models import PadCrop

ENV_VAR = "SEMSEG_BENCH_WEIGHTS"
"""An environment variable naming a folder to search for weights files (after --weights-dir)."""

SHARED_CHECKPOINTS = Path(__file__).resolve().parents[1].parent / "shared" / "checkpoints"
"""The project's offline copies (``../shared/checkpoints`` beside the checkout)."""


def search_path(weights_dir: str | Path | None = None) -> list[Path]:
    """The folders searched for a weights file, in order.

    ``weights_dir`` (``--weights-dir``), then ``$SEMSEG_BENCH_WEIGHTS``, then
    ``../shared/checkpoints`` beside the checkout, then torch hub's checkpoint cache
    (``torch.hub.get_dir()/checkpoints``). Folders are listed whether or not they exist.

    Args:
        weights_dir: A folder given on the command line.

    Returns:
        The folders.
    """
    folders = [Path(weights_dir)] if weights_dir else []
    if os.environ.get(ENV_VAR):
        folders.append(Path(os.environ[ENV_VAR]))
    folders.append(SHARED_CHECKPOINTS)
    folders.append(Path(torch.hub.get_dir()) / "checkpoints")
    return folders


def find_weights(info: WeightsInfo, weights_dir: str | Path | None = None) -> Path | None:
    """The first ``<folder>/<info.file>`` (or ``<folder>/<file name>``) that exists, else None."""
    for folder in search_path(weights_dir):
        for candidate in (folder / info.file, folder / Path(info.file).name):
            if candidate.is_file():
                return candidate
    return None


def sha256_of(path: Path) -> str:
    """The file's sha256, hex."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def locate(info: WeightsInfo, weights_dir: str | Path | None = None) -> Path:
    """The verified file of ``info``.

    Args:
        info: The declaration.
        weights_dir: A folder to search first.

    Returns:
        The file's path.

    Raises:
        MissingFileError: Not in any folder of the search path; the message lists them.
        CheckpointError: Found, but its sha256 is not the declared one.
    """
    path = find_weights(info, weights_dir)
    if path is None:
        looked = "\n".join(f"  {folder / info.file}" for folder in search_path(weights_dir))
        raise MissingFileError(
            f"Weights {info.name!r}: file {info.file} (sha256 {info.sha256}) was not found. "
            f"Looked in:\n{looked}\nPut the file (from {info.source.repository} at commit "
            f"{info.source.commit}, path {info.source.path}) in one of these folders, or pass "
            f"--weights-dir DIR / set {ENV_VAR}. Nothing is downloaded."
        )
    verify_sha256(path, info.sha256, what=f"weights {info.name!r}")
    return path


def verify_sha256(path: Path, expected: str, *, what: str) -> None:
    """Raises :class:`CheckpointError` unless ``path``'s sha256 is ``expected``."""
    found = sha256_of(path)
    if found != expected:
        raise CheckpointError(
            f"{what}: {path} has sha256 {found}, expected {expected}. The file is another "
            f"version or was damaged; get the declared file, or evaluate yours with "
            f"--checkpoint FILE --like NAME."
        )


class PublishedModel(nn.Module):
    """A network with published weights, fed and read the way its authors did.

    In: images as the harness's dataset gives them (RGB, 0-1, normalised with the dataset's
    ``mean``/``std``). They are un-normalised, put in the declared channel order and scale and
    normalised with the weights' mean/std; resized to the protocol's resolution if one is
    declared. Out: the network's logits, resized back to the input's size as the protocol says,
    with the channels that are not a class dropped and the rest in the dataset's class order.

    Args:
        model: The network with the weights loaded.
        info: The declaration.
        dataset_mean: The dataset's normalisation mean (0-1 scale, RGB).
        dataset_std: The dataset's normalisation std (0-1 scale, RGB).
    """

    def __init__(
        self,
        model: nn.Module,
        info: WeightsInfo,
        dataset_mean: Sequence[float],
        dataset_std: Sequence[float],
    ) -> None:
        super().__init__()
        self.model = model
        self.info = info
        p = info.preprocess
        order = [2, 1, 0] if p.channel_order == "BGR" else [0, 1, 2]
        mean_rgb = torch.tensor(dataset_mean, dtype=torch.float32)[order]
        std_rgb = torch.tensor(dataset_std, dtype=torch.float32)[order]
        # x_authors = (x_raw * scale - mean) / std with x_raw = x * std_rgb + mean_rgb: one
        # affine map per channel, applied after the channel reorder.
        gain = std_rgb * p.scale / torch.tensor(p.std, dtype=torch.float32)
        shift = (mean_rgb * p.scale - torch.tensor(p.mean, dtype=torch.float32)) / torch.tensor(
            p.std, dtype=torch.float32
        )
        self.register_buffer("order", torch.tensor(order), persistent=False)
        self.register_buffer("gain", gain.view(1, 3, 1, 1), persistent=False)
        self.register_buffer("shift", shift.view(1, 3, 1, 1), persistent=False)
        keep = [i for i, c in enumerate(info.channels) if c is not None]
        keep.sort(key=lambda i: info.channels[i])  # dataset class order
        self.register_buffer("keep", torch.tensor(keep), persistent=False)

    def _resize(self, x: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
        if tuple(x.shape[-2:]) == tuple(size):
            return x
        proto = self.info.protocol
        if proto.interpolation == "nearest":
            return F.interpolate(x, size=tuple(size), mode="nearest")
        return F.interpolate(
            x, size=tuple(size), mode="bilinear", align_corners=proto.align_corners
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(N, K, H, W)`` in the dataset's classes, at the input's size."""
        size = x.shape[-2:]
        x = x.index_select(1, self.order) * self.gain + self.shift
        if self.info.protocol.resolution is not None:
            x = self._resize(x, self.info.protocol.resolution)
        out = self.model(x)
        if isinstance(out, dict):
            out = out["out"]
        elif isinstance(out, list | tuple):
            out = out[0]
        return self._resize(out, size).index_select(1, self.keep)


@dataclass(frozen=True)
class Loaded:
    """A loaded published model.

    Attributes:
        model: The wrapped network, ready for :func:`bench.evaluate.evaluate`.
        info: The declaration it was loaded by.
        path: The file loaded.
        sha256: Its sha256.
    """

    model: PublishedModel
    info: WeightsInfo
    path: Path
    sha256: str


def load_published(
    info: WeightsInfo,
    *,
    dataset_mean: Sequence[float],
    dataset_std: Sequence[float],
    checkpoint: str | Path | None = None,
    weights_dir: str | Path | None = None,
    builder_options: dict[str, object] | None = None,
) -> Loaded:
    """Builds ``info.arch``, loads the weights and wraps them for the harness's inputs.

    Args:
        info: The declaration (its preprocessing, channels, protocol, options and key
            conversion are used).
        dataset_mean: The dataset's normalisation mean (what the harness feeds).
        dataset_std: The dataset's normalisation std.
        checkpoint: A file to load instead of the declared one (``--checkpoint FILE --like
            NAME``: a user's own file of the same family; its hash is not checked).
        weights_dir: A folder to search first for the declared file.
        builder_options: Options that override the declared ones.

    Returns:
        The model, the declaration, the file and its sha256.

    Raises:
        MissingFileError: The declared file is nowhere on the search path, or ``checkpoint``
            does not exist.
        CheckpointError: Wrong hash, or the file does not fit (see
            :func:`bench.checkpoint.load_into`).
    """
    if checkpoint is None:
        path = locate(info, weights_dir)
    else:
        path = Path(checkpoint)
        if not path.is_file():
            raise MissingFileError(f"Checkpoint {path} does not exist.")
    options = {**info.builder_options, **(builder_options or {})}
    net = architectures.build(info.arch, num_classes=info.num_outputs, **options)
    load_into(net, path, arch=info.arch, num_classes=info.num_outputs, convert=info.convert_keys)
    padded = PadCrop(net, architectures.get_info(info.arch).input_divisor)
    wrapped = PublishedModel(padded, info, dataset_mean, dataset_std).eval()
    return Loaded(model=wrapped, info=info, path=path, sha256=sha256_of(path))
