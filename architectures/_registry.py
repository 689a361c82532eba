"""The architecture registry: one append-only table filled at import by ``@register``.

An entry is a keyword-only, typed builder ``(*, num_classes: int, **options) -> nn.Module``
decorated with ``@register(ArchInfo(...))``. The builder never downloads anything.

Model contract (checked for every entry by ``tests/test_architecture_contract.py``):

* In eval mode the model returns logits ``(N, num_classes, H, W)`` at the input resolution, for
  inputs ``(N, ArchInfo.in_channels, H, W)`` whose H and W are multiples of
  ``ArchInfo.input_divisor`` (the harness pads any other size up to a multiple and crops the
  logits back, see ``bench.models.PadCrop``).
* In train mode it returns either the same tensor or a dict with the main logits under ``"out"``
  and auxiliary logits under other keys; ``ArchInfo.aux_weights`` gives each auxiliary loss weight.
  Exception: an entry with ``ArchInfo.train_needs_targets`` is called as
  ``model(images, targets=masks)`` in training and returns a dict of scalar losses.
  Auxiliary branches are never run in eval mode, so complexity and speed (always measured in eval
  mode) do not include them.

``ArchInfo`` validates every field when it is constructed, so an entry with bad metadata (a
built-in one or a plugin's) fails where it is declared, with a message naming the entry, the
field, what was expected, what was found and the fix. Every user-fixable registry error is an
:class:`ArchitectureError` (a ``ValueError``).

This module knows nothing of the harness: no datasets, no I/O, no import of ``bench``.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from torch import nn

Builder = Callable[..., nn.Module]

FLOP_CONVENTIONS = ("macs", "2*macs")
YEAR_RANGE = (1990, 2030)
"""Publication years accepted in ``ArchInfo.year`` (inclusive): catches typos such as 215."""

_NAME_RE = re.compile(r"^[a-z0-9_]+$")
_FAMILY_RE = re.compile(r"^[a-z][a-z0-9-]*$")
_ARXIV_RE = re.compile(r"^\d{4}\.\d{4,5}$")
_DOI_RE = re.compile(r"^10\.\d{4,9}/\S+$")
_URL_RE = re.compile(r"^https?://\S+$")


class ArchitectureError(ValueError):
    """An architecture name, entry or its metadata is invalid (a user can fix it).

    A ``ValueError``, so callers that catch ``ValueError`` keep working. Defined here rather than
    in ``bench.errors`` because ``architectures`` never imports the harness.
    """


def _is_int(value: object) -> bool:
    """True for an ``int`` that is not a ``bool`` (``True`` is an int to Python)."""
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    """True for a finite ``int`` or ``float`` that is not a ``bool``."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


@dataclass(frozen=True)
class ArchInfo:
    """Static description of one architecture entry, validated when constructed.

    Attributes:
        name: Registry key (lower-case, ``[a-z0-9_]``); what users and records refer to.
        title: Human-readable name, e.g. ``"FCN-8s"``.
        paper: arXiv id (``"1411.4038"``) or DOI of the paper that introduced it.
        year: Publication year, within :data:`YEAR_RANGE`.
        family: Coarse family used for grouping, e.g. ``"fcn"``, ``"encoder-decoder"``
            (lower-case letters, digits and ``-``).
        reference: URL of the reference implementation consulted (for understanding only), or
            ``""``.
        input_divisor: Input H and W must be multiples of this power of two; the harness pads
            and crops.
        in_channels: Channels of the input image (3 for RGB).
        min_num_classes: The fewest output classes the network can be built with (widths that
            depend on the class count can need more than 2); :meth:`ArchEntry.build` refuses
            fewer, and the contract test builds with at least this many.
        paper_params: Parameter count reported by the paper (None if not reported).
        paper_params_note: What the paper's count covers (classes, auxiliary heads, ...);
            required with ``paper_params``.
        paper_params_with_aux: The paper's count includes the auxiliary heads (``aux_weights``),
            so it is compared with every registered parameter rather than with the parameters
            the eval forward pass uses.
        paper_gflops_with_aux: The paper's compute includes the auxiliary heads (torchvision's
            ``_ops`` runs its aux classifier), which the evaluated network never runs: our MACs
            then measure another network, and the figures are shown side by side but not
            compared.
        paper_num_classes: Number of classes the paper's figures were reported for; required
            with ``paper_params`` or ``paper_gflops``.
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
            called without targets), and has no ``aux_weights``.
        notes: Deviations from the paper, in one or two sentences.

    Raises:
        ArchitectureError: On construction, for any field that is not as described above (the
            message names the entry, the field, the expected and the found value, and the fix).
    """

    name: str
    title: str
    paper: str
    year: int
    family: str
    reference: str = ""
    input_divisor: int = 32
    in_channels: int = 3
    min_num_classes: int = 2
    paper_params: int | None = None
    paper_params_note: str = ""
    paper_params_with_aux: bool = False
    paper_gflops_with_aux: bool = False
    paper_num_classes: int | None = None
    paper_gflops: float | None = None
    paper_resolution: tuple[int, int] | None = None
    paper_flops_convention: str | None = None
    aux_weights: tuple[tuple[str, float], ...] = field(default_factory=tuple)
    train_needs_targets: bool = False
    notes: str = ""

    def _fail(self, name: str, expected: str, found: object, fix: str) -> ArchitectureError:
        """The error for field ``name``: entry, field, expected, found and the fix."""
        return ArchitectureError(
            f"ArchInfo {self.name!r}: {name} must be {expected}; got {found!r}. {fix}"
        )

    def __post_init__(self) -> None:
        """Validates every field (see the class docstring); raises on the first bad one."""
        self._check_identity()
        self._check_shape_fields()
        self._check_paper_figures()
        self._check_training_fields()

    def _check_identity(self) -> None:
        """``name``, ``title``, ``paper``, ``year``, ``family``, ``reference``, ``notes``."""
        if not isinstance(self.name, str) or not _NAME_RE.match(self.name):
            raise ArchitectureError(
                f"ArchInfo.name must be non-empty and use only lower-case letters, digits and "
                f"'_'; got {self.name!r}. Rename the entry, e.g. 'my_unet'."
            )
        if not isinstance(self.title, str) or not self.title.strip():
            raise self._fail("title", "a non-empty str", self.title, 'Pass e.g. title="FCN-8s".')
        if not isinstance(self.paper, str) or not (
            _ARXIV_RE.match(self.paper) or _DOI_RE.match(self.paper)
        ):
            raise self._fail(
                "paper",
                "an arXiv id like '1411.4038' or a DOI like '10.1109/CVPR.2015.7298965'",
                self.paper,
                "Give the id alone, without 'arXiv:' or a URL.",
            )
        low, high = YEAR_RANGE
        if not _is_int(self.year) or not low <= self.year <= high:
            raise self._fail(
                "year", f"an int in [{low}, {high}]", self.year, "Give the publication year."
            )
        if not isinstance(self.family, str) or not _FAMILY_RE.match(self.family):
            raise self._fail(
                "family",
                "a lower-case word of letters, digits and '-'",
                self.family,
                "Use an existing family such as 'encoder-decoder', 'real-time' or 'fcn'.",
            )
        if not isinstance(self.reference, str) or (
            self.reference and not _URL_RE.match(self.reference)
        ):
            raise self._fail(
                "reference",
                "'' or an http(s) URL",
                self.reference,
                "Give the URL of the reference implementation you followed, or leave it out.",
            )
        for name in ("paper_params_note", "notes"):
            value = getattr(self, name)
            if not isinstance(value, str):
                raise self._fail(name, "a str", value, f"Pass {name} as text.")

    def _check_shape_fields(self) -> None:
        """``input_divisor`` (a power of two) and ``in_channels``."""
        d = self.input_divisor
        if not _is_int(d) or d < 1 or d & (d - 1):
            raise self._fail(
                "input_divisor",
                "a positive int that is a power of two (1, 2, 4, 8, ...)",
                d,
                "Give the network's total downsampling factor, e.g. 32 for five poolings.",
            )
        if not _is_int(self.in_channels) or self.in_channels < 1:
            raise self._fail(
                "in_channels",
                "a positive int",
                self.in_channels,
                "Give the input image channels, e.g. 3 for RGB.",
            )
        if not _is_int(self.min_num_classes) or self.min_num_classes < 1:
            raise self._fail(
                "min_num_classes",
                "a positive int",
                self.min_num_classes,
                "Give the fewest classes the network can be built with (default 2).",
            )

    def _check_paper_figures(self) -> None:
        """``paper_*`` fields: types, and which ones need which others."""
        params, gflops, classes = self.paper_params, self.paper_gflops, self.paper_num_classes
        if params is not None and (not _is_int(params) or params < 1):
            raise self._fail(
                "paper_params",
                "None or a positive int",
                params,
                "Give the count, e.g. 134_000_000.",
            )
        if params is not None and not self.paper_params_note.strip():
            raise self._fail(
                "paper_params_note",
                "a non-empty str when paper_params is given",
                self.paper_params_note,
                "Say what the paper's count covers (classes, auxiliary heads, ...).",
            )
        for flag, figure, value in (
            ("paper_params_with_aux", "paper_params", params),
            ("paper_gflops_with_aux", "paper_gflops", gflops),
        ):
            with_aux = getattr(self, flag)
            if not isinstance(with_aux, bool):
                raise self._fail(flag, "a bool", with_aux, "Pass True or False.")
            if with_aux and (value is None or not self.aux_weights):
                raise self._fail(
                    flag,
                    f"False unless {figure} is given and the entry has aux_weights",
                    with_aux,
                    f"Set it only when the paper's {figure} includes the auxiliary heads this "
                    "entry builds.",
                )
        if classes is not None and (not _is_int(classes) or classes < 1):
            raise self._fail(
                "paper_num_classes", "None or a positive int", classes, "Give the class count."
            )
        if (params is not None or gflops is not None) and classes is None:
            raise self._fail(
                "paper_num_classes",
                "an int when paper_params or paper_gflops is given",
                classes,
                "Give the class count the paper's figures were reported for.",
            )
        if gflops is None:
            if self.paper_resolution is not None or self.paper_flops_convention is not None:
                raise self._fail(
                    "paper_resolution/paper_flops_convention",
                    "None without paper_gflops",
                    (self.paper_resolution, self.paper_flops_convention),
                    "Give paper_gflops too, or leave both out.",
                )
            return
        if not _is_number(gflops) or gflops <= 0:
            raise self._fail("paper_gflops", "None or a positive number", gflops, "Give e.g. 3.83.")
        resolution = self.paper_resolution
        if (
            not isinstance(resolution, tuple)
            or len(resolution) != 2
            or not all(_is_int(s) and s > 0 for s in resolution)
            or self.paper_flops_convention not in FLOP_CONVENTIONS
        ):
            raise self._fail(
                "paper_gflops",
                f"given with paper_resolution=(H, W) and paper_flops_convention in "
                f"{FLOP_CONVENTIONS}",
                (resolution, self.paper_flops_convention),
                "Give the resolution the paper counted at, as a tuple of two ints, and its "
                "convention ('macs' when one multiply-add is one FLOP).",
            )

    def _check_training_fields(self) -> None:
        """``aux_weights`` and ``train_needs_targets``."""
        aux = self.aux_weights
        fix = 'Pass a tuple of (key, weight) pairs, e.g. aux_weights=(("aux", 0.4),).'
        if not isinstance(aux, tuple) or not all(
            isinstance(pair, tuple) and len(pair) == 2 for pair in aux
        ):
            raise self._fail("aux_weights", "a tuple of (key, weight) pairs", aux, fix)
        keys = [key for key, _ in aux]
        if not all(isinstance(key, str) and key for key in keys):
            raise self._fail("aux_weights keys", "non-empty str", keys, fix)
        if "out" in keys or len(set(keys)) != len(keys):
            raise self._fail(
                "aux_weights keys",
                "unique and other than 'out' (the main logits)",
                keys,
                "Name each auxiliary output once, as the model's train-mode dict does.",
            )
        weights = [weight for _, weight in aux]
        if not all(_is_number(w) and w > 0 for w in weights):
            raise self._fail("aux_weights weights", "positive finite numbers", weights, fix)
        if not isinstance(self.train_needs_targets, bool):
            raise self._fail(
                "train_needs_targets", "a bool", self.train_needs_targets, "Pass True or False."
            )
        if self.train_needs_targets and aux:
            raise self._fail(
                "aux_weights",
                "empty when train_needs_targets is True (the model returns its own losses)",
                aux,
                "Weigh the auxiliary losses inside the model, or drop train_needs_targets.",
            )

    @property
    def paper_gmacs(self) -> float | None:
        """The paper's compute figure converted to multiply-adds (None if not reported)."""
        if self.paper_gflops is None:
            return None
        return self.paper_gflops if self.paper_flops_convention == "macs" else self.paper_gflops / 2


@dataclass(frozen=True)
class ArchEntry:
    """A registered architecture: its metadata, its builder and where it came from.

    Attributes:
        info: The entry's metadata.
        builder: ``(*, num_classes, **options) -> nn.Module``.
        source: ``"builtin"``, ``"plugin:<path>"`` or ``"entry-point:<name>"``.
    """

    info: ArchInfo
    builder: Builder
    source: str

    def build(self, *, num_classes: int, **options: object) -> nn.Module:
        """Builds the model (un-wrapped; the harness adds pad-and-crop).

        Args:
            num_classes: Output classes, a positive int.
            **options: Builder options (e.g. ``aux_loss=False``).

        Returns:
            The freshly built model.

        Raises:
            ArchitectureError: ``num_classes`` is not a positive int, or is below the entry's
                ``min_num_classes``.
        """
        if not _is_int(num_classes) or num_classes < 1:
            raise ArchitectureError(
                f"num_classes for {self.info.name!r} must be a positive int; got {num_classes!r}."
            )
        if num_classes < self.info.min_num_classes:
            raise ArchitectureError(
                f"{self.info.name!r} needs at least {self.info.min_num_classes} classes "
                f"(ArchInfo.min_num_classes); got num_classes={num_classes}. Use a dataset "
                f"with more classes or another architecture."
            )
        return self.builder(num_classes=num_classes, **options)


_REGISTRY: dict[str, ArchEntry] = {}
_current_source: list[str] = ["builtin"]


def register(info: ArchInfo) -> Callable[[Builder], Builder]:
    """Decorator that adds a builder to the registry under ``info.name``.

    Args:
        info: The entry's metadata (validated when it was constructed).

    Returns:
        The decorator; it returns the builder unchanged.

    Raises:
        TypeError: ``info`` is not an :class:`ArchInfo` (a programming error).
        ArchitectureError: The name is already registered (the registry is append-only).
    """
    if not isinstance(info, ArchInfo):
        raise TypeError(f"register() takes an ArchInfo; got {type(info).__name__}.")

    def decorator(builder: Builder) -> Builder:
        if info.name in _REGISTRY:
            previous = _REGISTRY[info.name].source
            raise ArchitectureError(
                f"Architecture {info.name!r} is already registered (by {previous}). "
                f"Pick another name for the new entry."
            )
        _REGISTRY[info.name] = ArchEntry(info=info, builder=builder, source=_current_source[-1])
        return builder

    return decorator


@contextmanager
def registering_from(source: str) -> Iterator[None]:
    """Tags the entries registered inside the ``with`` block with ``source``.

    Args:
        source: ``"plugin:<path>"`` or ``"entry-point:<name>"``.

    Yields:
        Nothing; the previous source is restored on exit, also when the block raises.
    """
    _current_source.append(source)
    try:
        yield
    finally:
        _current_source.pop()


def unregister(name: str) -> None:
    """Removes an entry (no-op for an unknown name): for tests and failed plugin loads.

    Args:
        name: The registry key.
    """
    _REGISTRY.pop(name, None)


def get_entry(name: str) -> ArchEntry:
    """Looks up a registered architecture.

    Args:
        name: The registry key.

    Returns:
        The entry.

    Raises:
        ArchitectureError: For an unknown name, listing close matches.
    """
    try:
        return _REGISTRY[name]
    except KeyError:
        close = difflib.get_close_matches(name, list(_REGISTRY), n=3, cutoff=0.5)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        raise ArchitectureError(
            f"Unknown architecture {name!r}.{hint} "
            f"Run `python run_bench.py list archs` to see all {len(_REGISTRY)} entries. An "
            f"entry defined in a plugin needs --plugin FILE.py, or its package installed (entry "
            f"point group 'semseg_bench.architectures')."
        ) from None


def get_info(name: str) -> ArchInfo:
    """The metadata of a registered architecture.

    Args:
        name: The registry key.

    Returns:
        Its :class:`ArchInfo`.

    Raises:
        ArchitectureError: For an unknown name, listing close matches.
    """
    return get_entry(name).info


def build(name: str, *, num_classes: int, **options: object) -> nn.Module:
    """Builds a registered architecture (un-wrapped; the harness adds pad-and-crop).

    Args:
        name: The registry key.
        num_classes: Output classes.
        **options: Builder options.

    Returns:
        The freshly built model.

    Raises:
        ArchitectureError: Unknown name or bad ``num_classes``.
    """
    return get_entry(name).build(num_classes=num_classes, **options)


def names() -> list[str]:
    """All registered names, in registration order."""
    return list(_REGISTRY)


def entries() -> Iterator[ArchEntry]:
    """Yields every registered entry, in registration order (a snapshot of the registry)."""
    yield from list(_REGISTRY.values())
