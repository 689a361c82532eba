"""The architecture registry: one append-only table filled at import by ``@register``.

An entry is a keyword-only, typed builder ``(*, num_classes: int, **options) -> nn.Module``
decorated with ``@register(ArchInfo(...))``. The builder never downloads anything.

Model contract (checked for every entry by ``tests/test_architecture_contract.py``):

* In eval mode the model returns logits ``(N, num_classes, H, W)`` at the input resolution, for
  inputs whose H and W are multiples of ``ArchInfo.input_divisor`` (the harness pads any other
  size up to a multiple and crops the logits back, see ``bench.models.PadCrop``).
* In train mode it returns either the same tensor or a dict with the main logits under ``"out"``
  and auxiliary logits under other keys; ``ArchInfo.aux_weights`` gives each auxiliary loss weight.
  Exception: an entry with ``ArchInfo.train_needs_targets`` is called as
  ``model(images, targets=masks)`` in training and returns a dict of scalar losses.
  Auxiliary branches are never run in eval mode, so complexity and speed (always measured in eval
  mode) do not include them.

This module knows nothing of the harness: no datasets, no I/O.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from torch import nn

Builder = Callable[..., nn.Module]

FLOP_CONVENTIONS = ("macs", "2*macs")


@dataclass(frozen=True)
class ArchInfo:
    """Static description of one architecture entry.

    Attributes:
        name: Registry key (lower-case, ``[a-z0-9_]``); what users and records refer to.
        title: Human-readable name, e.g. ``"FCN-8s"``.
        paper: arXiv id (``"1411.4038"``) or DOI of the paper that introduced it.
        year: Publication year.
        family: Coarse family used for grouping, e.g. ``"fcn"``, ``"encoder-decoder"``.
        reference: URL of the reference implementation consulted (for understanding only).
        input_divisor: Input H and W must be multiples of this; the harness pads and crops.
        paper_params: Parameter count reported by the paper (None if not reported).
        paper_params_note: What the paper's count covers (classes, auxiliary heads, ...).
        paper_num_classes: Number of classes the paper's figures were reported for.
        paper_gflops: Compute reported by the paper, in the paper's own convention.
        paper_resolution: ``(H, W)`` at which ``paper_gflops`` was reported.
        paper_flops_convention: ``"macs"`` (one multiply-add = one FLOP, as fvcore and most
            segmentation papers) or ``"2*macs"``.
        aux_weights: ``((key, weight), ...)`` for auxiliary outputs returned in train mode.
        train_needs_targets: The model computes its own training loss from the targets (e.g. a
            detector wrapped for segmentation): in train mode the harness calls
            ``model(images, targets=masks)`` with the ``(N, H, W)`` semantic masks and minimises
            the sum of the returned dict of scalar losses instead of the cross-entropy. Such a
            model still returns ``(N, K, H, W)`` logits in eval mode (and in train mode when
            called without targets).
        notes: Deviations from the paper, in one or two sentences.
    """

    name: str
    title: str
    paper: str
    year: int
    family: str
    reference: str = ""
    input_divisor: int = 32
    paper_params: int | None = None
    paper_params_note: str = ""
    paper_num_classes: int | None = None
    paper_gflops: float | None = None
    paper_resolution: tuple[int, int] | None = None
    paper_flops_convention: str | None = None
    aux_weights: tuple[tuple[str, float], ...] = field(default_factory=tuple)
    train_needs_targets: bool = False
    notes: str = ""

    def __post_init__(self) -> None:
        if not self.name or not all(c.isalnum() or c == "_" for c in self.name):
            raise ValueError(
                f"ArchInfo.name must be non-empty and use only letters, digits and '_'; "
                f"got {self.name!r}."
            )
        if self.name != self.name.lower():
            raise ValueError(f"ArchInfo.name must be lower-case; got {self.name!r}.")
        if not isinstance(self.input_divisor, int) or self.input_divisor < 1:
            raise ValueError(
                f"ArchInfo.input_divisor of {self.name!r} must be a positive int; "
                f"got {self.input_divisor!r}."
            )
        if self.paper_gflops is not None and (
            self.paper_resolution is None or self.paper_flops_convention not in FLOP_CONVENTIONS
        ):
            raise ValueError(
                f"ArchInfo {self.name!r}: paper_gflops needs paper_resolution=(H, W) and "
                f"paper_flops_convention in {FLOP_CONVENTIONS}; got resolution "
                f"{self.paper_resolution!r}, convention {self.paper_flops_convention!r}."
            )

    @property
    def paper_gmacs(self) -> float | None:
        """The paper's compute figure converted to multiply-adds (None if not reported)."""
        if self.paper_gflops is None:
            return None
        return self.paper_gflops if self.paper_flops_convention == "macs" else self.paper_gflops / 2


@dataclass(frozen=True)
class ArchEntry:
    """A registered architecture: its metadata, its builder and where it came from."""

    info: ArchInfo
    builder: Builder
    source: str  # "builtin", "plugin:<path>" or "entry-point:<name>"

    def build(self, *, num_classes: int, **options: object) -> nn.Module:
        if not isinstance(num_classes, int) or num_classes < 1:
            raise ValueError(
                f"num_classes for {self.info.name!r} must be a positive int; got {num_classes!r}."
            )
        return self.builder(num_classes=num_classes, **options)


_REGISTRY: dict[str, ArchEntry] = {}
_current_source: list[str] = ["builtin"]


def register(info: ArchInfo) -> Callable[[Builder], Builder]:
    """Decorator that adds a builder to the registry under ``info.name``.

    Raises:
        ValueError: if the name is already registered (the registry is append-only).
    """
    if not isinstance(info, ArchInfo):
        raise TypeError(f"register() takes an ArchInfo; got {type(info).__name__}.")

    def decorator(builder: Builder) -> Builder:
        if info.name in _REGISTRY:
            previous = _REGISTRY[info.name].source
            raise ValueError(
                f"Architecture {info.name!r} is already registered (by {previous}). "
                f"Pick another name for the new entry."
            )
        _REGISTRY[info.name] = ArchEntry(info=info, builder=builder, source=_current_source[-1])
        return builder

    return decorator


class registering_from:  # noqa: N801 - used as a context manager, reads as a phrase
    """Context manager that tags entries registered inside it with their source."""

    def __init__(self, source: str) -> None:
        self.source = source

    def __enter__(self) -> None:
        _current_source.append(self.source)

    def __exit__(self, *exc: object) -> None:
        _current_source.pop()


def unregister(name: str) -> None:
    """Remove an entry. Only for tests that register temporary entries."""
    _REGISTRY.pop(name, None)


def get_entry(name: str) -> ArchEntry:
    """Look up a registered architecture.

    Raises:
        ValueError: for an unknown name, listing close matches.
    """
    try:
        return _REGISTRY[name]
    except KeyError:
        close = difflib.get_close_matches(name, list(_REGISTRY), n=3, cutoff=0.5)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        raise ValueError(
            f"Unknown architecture {name!r}.{hint} "
            f"Run `python run_bench.py list archs` to see all {len(_REGISTRY)} entries."
        ) from None


def get_info(name: str) -> ArchInfo:
    return get_entry(name).info


def build(name: str, *, num_classes: int, **options: object) -> nn.Module:
    """Build a registered architecture (un-wrapped; the harness adds pad-and-crop)."""
    return get_entry(name).build(num_classes=num_classes, **options)


def names() -> list[str]:
    """All registered names, in registration order."""
    return list(_REGISTRY)


def entries() -> Iterator[ArchEntry]:
    yield from list(_REGISTRY.values())
