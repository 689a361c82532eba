"""Published weights: find the declared file, verify it, load it, and evaluate it as its authors did.

A declaration (:class:`architectures.WeightsInfo`) names a file; :func:`find_weights` looks for it
in the folders of :func:`search_path` (never downloading), :func:`verify_sha256` checks its hash,
and :func:`load_published` builds the architecture with the declared options, loads the file
through the declared key conversion (``weights_only=True``, the key check of
:func:`bench.checkpoint.load_into`) and wraps it in :class:`PublishedModel`, which turns the
harness's input into the authors' and their output channels into the dataset's classes.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset

import architectures
from architectures import WeightsInfo, WeightsProtocol
from bench.checkpoint import load_into
from bench.errors import CheckpointError, MissingFileError
from bench.fileio import sha256_of
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
    declared. Out: the network's logits at the input's size (a protocol that scores resized
    labels gets its images at that size from :class:`ScoredLabels`), with the channels in the
    order of
    :func:`scoring_for`: the dataset's classes, then void when the protocol scores it, then one
    "no class" channel (the highest of the other non-class channels) when the declaration
    counts them as misses; non-class channels are otherwise dropped.

    Args:
        model: The network with the weights loaded.
        info: The declaration.
        dataset_mean: The dataset's normalisation mean (0-1 scale, RGB).
        dataset_std: The dataset's normalisation std (0-1 scale, RGB).
        protocol: The protocol to score under (default: the declaration's standard one).
    """

    def __init__(
        self,
        model: nn.Module,
        info: WeightsInfo,
        dataset_mean: Sequence[float],
        dataset_std: Sequence[float],
        protocol: WeightsProtocol | None = None,
    ) -> None:
        super().__init__()
        self.model = model
        self.info = info
        self.protocol = protocol or info.protocol
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
        void = self.protocol.void == "class"
        if void:
            keep.append(info.void_channel)
        others = [
            i
            for i, c in enumerate(info.channels)
            if c is None and not (void and i == info.void_channel)
        ]
        self.register_buffer("keep", torch.tensor(keep), persistent=False)
        misses = others if info.extra_channels == "miss" else []
        self.register_buffer("misses", torch.tensor(misses, dtype=torch.long), persistent=False)

    def _resize(self, x: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
        if tuple(x.shape[-2:]) == tuple(size):
            return x
        proto = self.protocol
        if proto.interpolation == "nearest":
            return F.interpolate(x, size=tuple(size), mode="nearest")
        return F.interpolate(
            x, size=tuple(size), mode="bilinear", align_corners=proto.align_corners
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(N, C, H, W)`` in the scored channels (see the class docstring)."""
        proto = self.protocol
        size = x.shape[-2:]
        x = x.index_select(1, self.order) * self.gain + self.shift
        if proto.resolution is not None and proto.mode == "whole":  # slide: resized before
            x = self._resize(x, proto.resolution)
        out = self.model(x)
        if isinstance(out, dict):
            out = out["out"]
        elif isinstance(out, list | tuple):
            out = out[0]
        out = self._resize(out, size)
        scored = out.index_select(1, self.keep)
        if self.misses.numel() == 0:
            return scored
        no_class = out.index_select(1, self.misses).amax(1, keepdim=True)
        return torch.cat([scored, no_class], 1)


@dataclass(frozen=True)
class Scoring:
    """What the labels are scored against under a weights protocol (an ``evaluate`` label space).

    Attributes:
        num_classes: Classes scored: the dataset's K, plus void when the protocol scores it.
        ignore_index: The label not scored (the dataset's).
        class_names: Their names (``"void"`` last when scored).
        no_class_channel: Whether the model has one more channel, "no class", whose pixels
            count as misses (pass it to :func:`bench.evaluate.evaluate`).
        protocol: The protocol.
    """

    num_classes: int
    ignore_index: int
    class_names: tuple[str, ...]
    no_class_channel: bool
    protocol: WeightsProtocol

    def labels(self, mask: torch.Tensor) -> torch.Tensor:
        """A ``(H, W)`` label map as the protocol scores it.

        Void becomes class K if the protocol scores it; the map is resized to the protocol's
        resolution if the protocol resizes labels.

        Args:
            mask: Class ids ``0..K-1`` and ``ignore_index``, at the loaded size.

        Returns:
            The label map to score (int64).
        """
        proto = self.protocol
        k = len(self.class_names) - (1 if proto.void == "class" else 0)
        mask = mask.long()
        if proto.void == "class":
            mask = torch.where(mask == self.ignore_index, torch.full_like(mask, k), mask)
        if proto.labels != "resized" or tuple(mask.shape[-2:]) == tuple(proto.resolution):
            return mask
        size = tuple(proto.resolution)
        if proto.label_interpolation == "nearest":
            out = F.interpolate(mask[None, None].float(), size=size, mode="nearest")
            return out[0, 0].long()
        # A linear resize of the ids, rounded (OpenCV on a uint8 label image). Void is blended
        # as id K, as it is in the label files; an ignored void stays ignored afterwards.
        ids = torch.where(mask == self.ignore_index, torch.full_like(mask, k), mask)
        out = F.interpolate(
            ids[None, None].float(), size=size, mode="bilinear", align_corners=False
        )
        out = torch.floor(out[0, 0] + 0.5).long()
        if proto.void != "class":
            out = torch.where(out >= k, torch.full_like(out, self.ignore_index), out)
        return out


def scoring_for(info: WeightsInfo, protocol: WeightsProtocol, *, ignore_index: int) -> Scoring:
    """The label space that :class:`PublishedModel` with ``protocol`` is scored in.

    Args:
        info: The declaration.
        protocol: One of its protocols.
        ignore_index: The dataset's ignored label.

    Returns:
        The scoring.
    """
    names = tuple(info.class_names)
    void = protocol.void == "class"
    if void:
        names += ("void",)
    others = sum(c is None for c in info.channels) - (1 if void else 0)
    return Scoring(
        num_classes=len(names),
        ignore_index=ignore_index,
        class_names=names,
        no_class_channel=info.extra_channels == "miss" and others > 0,
        protocol=protocol,
    )


class ScoredLabels(Dataset):
    """A dataset whose labels are turned into a :class:`Scoring`'s.

    A sliding protocol's windows become the dataset's inference protocol. Where the protocol resizes the labels, the image is resized to the same size first (as the
    authors' loader did; the model's own resize is then a no-op), so that logits and labels
    meet at the scored size.

    Args:
        dataset: Yields ``(image, mask)``.
        scoring: The scoring.
    """

    def __init__(self, dataset: Dataset, scoring: Scoring) -> None:
        self.dataset = dataset
        self.scoring = scoring
        # Resized here: the dataset's own inference protocol (which may resize the images to
        # its eval size, e.g. a suite's resolution) must not resize them back.
        proto = scoring.protocol
        resized = proto.labels == "resized"
        self.protocol = None if resized else getattr(dataset, "protocol", None)
        if proto.mode == "slide":  # windows over the image at the protocol's resolution
            from bench.data.transforms import EvalProtocol

            size = None if resized else proto.resolution
            self.protocol = EvalProtocol(
                mode="slide", size=size, crop=proto.crop, stride=proto.stride
            )

    def __len__(self) -> int:
        """The wrapped dataset's length."""
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The image and its scored labels."""
        image, mask = self.dataset[index]
        proto = self.scoring.protocol
        if proto.labels == "resized" and tuple(image.shape[-2:]) != tuple(proto.resolution):
            corners = proto.align_corners if proto.interpolation == "bilinear" else None
            image = F.interpolate(
                image[None],
                size=tuple(proto.resolution),
                mode=proto.interpolation,
                align_corners=corners,
            )[0]
        return image, self.scoring.labels(mask)


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
    protocol: WeightsProtocol | None = None,
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
        protocol: The protocol to score under (default: the declaration's standard one).

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
    wrapped = PublishedModel(padded, info, dataset_mean, dataset_std, protocol).eval()
    return Loaded(model=wrapped, info=info, path=path, sha256=sha256_of(path))
