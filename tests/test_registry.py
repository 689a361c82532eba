"""Tests for ``architectures._registry``: registration, look-up errors, ``ArchInfo`` validation.

``ArchInfo`` validates itself when constructed: each bad value below is planted into an
otherwise valid ``ArchInfo`` and must raise (so the tests fail if the validator is removed);
the registry-parametrised check that every registered entry is valid lives in
``tests/test_architecture_contract.py`` (``test_info``).
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator

import pytest
import torch
from torch import nn

import architectures
from architectures import ArchInfo, ArchitectureError, register
from architectures._registry import registering_from, unregister
from tests.factories import fixture_arch_info

TEMP_NAME = "tmp_test_arch"


def _info(name: str = TEMP_NAME, **fields: object) -> ArchInfo:
    return fixture_arch_info(name, **fields)


class _Conv1x1(nn.Module):
    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


@pytest.fixture
def temp_entry(restore_registry: None) -> Iterator[str]:
    """Registers ``tmp_test_arch`` for one test and unregisters it afterwards."""

    @register(_info())
    def tmp_test_arch(*, num_classes: int, width: int = 1) -> nn.Module:
        return _Conv1x1(num_classes)

    try:
        yield TEMP_NAME
    finally:
        unregister(TEMP_NAME)
    assert TEMP_NAME not in architectures.names()


def test_temp_entry_is_registered_and_builds(temp_entry: str) -> None:
    assert architectures.names()[-1] == temp_entry  # registration order is kept
    entry = architectures.get_entry(temp_entry)
    assert entry.source == "builtin"
    assert entry.info.title == "Temp"
    model = architectures.build(temp_entry, num_classes=4)
    assert model.conv.out_channels == 4


def test_builtin_entries_present_in_import_order() -> None:
    names = architectures.names()
    assert names[:3] == ["fcn32s", "fcn16s", "fcn8s"]
    assert {"tv_fcn_resnet50", "tv_lraspp_mobilenet_v3_large"} <= set(names)
    assert all(architectures.get_entry(n).source == "builtin" for n in names[:7])


def test_duplicate_name_raises(temp_entry: str) -> None:
    with pytest.raises(
        ArchitectureError, match=r"'tmp_test_arch' is already registered \(by builtin\)"
    ):

        @register(_info(title="Another"))
        def again(*, num_classes: int) -> nn.Module:
            return _Conv1x1(num_classes)

    assert architectures.get_info(temp_entry).title == "Temp"  # the first entry is kept


def test_duplicate_of_builtin_names_source(restore_registry: None) -> None:
    with (
        pytest.raises(ValueError, match=r"'fcn8s' is already registered \(by builtin\)"),
        registering_from("plugin:/x/y.py"),
    ):

        @register(_info(name="fcn8s"))
        def fcn8s(*, num_classes: int) -> nn.Module:
            return _Conv1x1(num_classes)


def test_register_requires_archinfo() -> None:
    with pytest.raises(TypeError, match="takes an ArchInfo; got dict"):
        register({"name": "x"})  # type: ignore[arg-type]


def test_unknown_name_lists_close_matches() -> None:
    with pytest.raises(
        ArchitectureError, match=r"Unknown architecture 'fcn8'\. Did you mean: fcn8s"
    ):
        architectures.get_entry("fcn8")
    with pytest.raises(ValueError) as info:
        architectures.build("tv_deeplabv3_resnet", num_classes=2)
    assert "tv_deeplabv3_resnet50" in str(info.value)
    assert info.value.__suppress_context__  # raised ``from None``: no KeyError chained
    assert isinstance(info.value, ArchitectureError)
    assert issubclass(ArchitectureError, ValueError)  # callers catching ValueError keep working


def test_unknown_name_without_close_match() -> None:
    with pytest.raises(ValueError) as info:
        architectures.get_info("zzzzzz")
    assert "Did you mean" not in str(info.value)
    assert f"all {len(architectures.names())} entries" in str(info.value)


@pytest.mark.parametrize("k", [0, -1, 2.0, "3"])
def test_build_rejects_bad_num_classes(temp_entry: str, k: object) -> None:
    with pytest.raises(ValueError, match="num_classes for 'tmp_test_arch' must be a positive int"):
        architectures.build(temp_entry, num_classes=k)  # type: ignore[arg-type]


def test_build_refuses_fewer_classes_than_the_declared_minimum(restore_registry: None) -> None:
    @register(_info(min_num_classes=5))
    def tmp_test_arch(*, num_classes: int) -> nn.Module:
        return _Conv1x1(num_classes)

    assert architectures.build(TEMP_NAME, num_classes=5).conv.out_channels == 5
    with pytest.raises(ValueError) as exc:
        architectures.build(TEMP_NAME, num_classes=4)
    assert str(exc.value) == (
        "'tmp_test_arch' needs at least 5 classes (ArchInfo.min_num_classes); got "
        "num_classes=4. Use a dataset with more classes or another architecture."
    )
    assert _info().min_num_classes == 2  # the default


def test_build_passes_options(temp_entry: str) -> None:
    architectures.build(temp_entry, num_classes=2, width=3)
    with pytest.raises(TypeError, match="unexpected keyword argument 'depth'"):
        architectures.build(temp_entry, num_classes=2, depth=3)


def test_registering_from_tags_source_and_restores(restore_registry: None) -> None:
    with registering_from("plugin:/tmp/p.py"):

        @register(_info(name="tmp_tagged"))
        def tmp_tagged(*, num_classes: int) -> nn.Module:
            return _Conv1x1(num_classes)

    @register(_info(name="tmp_after"))
    def tmp_after(*, num_classes: int) -> nn.Module:
        return _Conv1x1(num_classes)

    assert architectures.get_entry("tmp_tagged").source == "plugin:/tmp/p.py"
    assert architectures.get_entry("tmp_after").source == "builtin"


def test_registering_from_is_a_context_manager_function_restoring_on_error(
    restore_registry: None,
) -> None:
    assert inspect.isfunction(registering_from)  # contextlib.contextmanager, not a class
    with pytest.raises(RuntimeError, match="inside"), registering_from("plugin:/tmp/boom.py"):
        raise RuntimeError("inside")

    @register(_info(name="tmp_after_error"))
    def tmp_after_error(*, num_classes: int) -> nn.Module:
        return _Conv1x1(num_classes)

    assert architectures.get_entry("tmp_after_error").source == "builtin"


def test_unregister_unknown_name_is_a_no_op() -> None:
    before = architectures.names()
    unregister("never_registered")
    assert architectures.names() == before


# --------------------------------------------------------------------------- ArchInfo


@pytest.mark.parametrize("name", ["", "FCN8s", "fcn-8s", "fcn 8s", "fcn.8s", 8])
def test_archinfo_rejects_bad_names(name: object) -> None:
    with pytest.raises(ArchitectureError, match="ArchInfo.name must be non-empty"):
        _info(name=name)


PAPER_FIGURES: dict[str, object] = dict(
    paper_params=1_000_000, paper_params_note="the paper's 1.0M", paper_num_classes=21
)
GFLOPS: dict[str, object] = dict(
    paper_gflops=10.0,
    paper_resolution=(512, 512),
    paper_flops_convention="macs",
    paper_num_classes=21,
)

# (field named in the message, bad fields planted into a valid ArchInfo)
BAD_VALUES = [
    ("title", {"title": ""}),
    ("title", {"title": "   "}),
    ("title", {"title": None}),
    ("paper", {"paper": "arXiv:1411.4038"}),
    ("paper", {"paper": "https://arxiv.org/abs/1411.4038"}),
    ("paper", {"paper": "test"}),
    ("year", {"year": 1989}),
    ("year", {"year": 2031}),
    ("year", {"year": 2015.0}),
    ("year", {"year": "2015"}),
    ("family", {"family": ""}),
    ("family", {"family": "Encoder-Decoder"}),
    ("family", {"family": "encoder decoder"}),
    ("reference", {"reference": "github.com/x/y"}),
    ("reference", {"reference": None}),
    ("input_divisor", {"input_divisor": 0}),
    ("input_divisor", {"input_divisor": -8}),
    ("input_divisor", {"input_divisor": 8.0}),
    ("input_divisor", {"input_divisor": 24}),
    ("input_divisor", {"input_divisor": True}),
    ("in_channels", {"in_channels": 0}),
    ("in_channels", {"in_channels": 3.0}),
    ("min_num_classes", {"min_num_classes": 0}),
    ("min_num_classes", {"min_num_classes": 5.0}),
    ("paper_params", {**PAPER_FIGURES, "paper_params": 0}),
    ("paper_params", {**PAPER_FIGURES, "paper_params": 1.5e6}),
    ("paper_params_note", {**PAPER_FIGURES, "paper_params_note": ""}),
    ("paper_params_note", {"paper_params_note": None}),
    ("paper_num_classes", {**PAPER_FIGURES, "paper_num_classes": None}),
    ("paper_num_classes", {**PAPER_FIGURES, "paper_num_classes": 0}),
    ("paper_num_classes", {**GFLOPS, "paper_num_classes": None}),
    ("paper_params_with_aux", {**PAPER_FIGURES, "paper_params_with_aux": True}),  # no aux
    ("paper_params_with_aux", {"paper_params_with_aux": True, "aux_weights": (("aux", 0.4),)}),
    ("paper_params_with_aux", {**PAPER_FIGURES, "paper_params_with_aux": 1}),
    ("paper_gflops_with_aux", {**GFLOPS, "paper_gflops_with_aux": True}),  # no aux heads
    ("paper_gflops_with_aux", {"paper_gflops_with_aux": True, "aux_weights": (("aux", 0.4),)}),
    ("paper_gflops_with_aux", {**GFLOPS, "paper_gflops_with_aux": "yes"}),
    ("paper_gflops", {**GFLOPS, "paper_resolution": None}),
    ("paper_gflops", {**GFLOPS, "paper_flops_convention": None}),
    ("paper_gflops", {**GFLOPS, "paper_flops_convention": "flops"}),
    ("paper_gflops", {**GFLOPS, "paper_resolution": [512, 512]}),
    ("paper_gflops", {**GFLOPS, "paper_resolution": (512, 0)}),
    ("paper_gflops", {**GFLOPS, "paper_gflops": -1.0}),
    ("paper_gflops", {**GFLOPS, "paper_gflops": float("nan")}),
    ("paper_resolution/paper_flops_convention", {"paper_resolution": (512, 512)}),
    ("paper_resolution/paper_flops_convention", {"paper_flops_convention": "macs"}),
    ("aux_weights", {"aux_weights": {"aux": 0.4}}),
    ("aux_weights", {"aux_weights": [("aux", 0.4)]}),
    ("aux_weights", {"aux_weights": (("aux", 0.4, 1),)}),
    ("aux_weights keys", {"aux_weights": (("out", 0.4),)}),
    ("aux_weights keys", {"aux_weights": (("aux", 0.4), ("aux", 0.2))}),
    ("aux_weights keys", {"aux_weights": (("", 0.4),)}),
    ("aux_weights keys", {"aux_weights": ((1, 0.4),)}),
    ("aux_weights weights", {"aux_weights": (("aux", 0),)}),
    ("aux_weights weights", {"aux_weights": (("aux", -0.4),)}),
    ("aux_weights weights", {"aux_weights": (("aux", "0.4"),)}),
    ("aux_weights weights", {"aux_weights": (("aux", True),)}),
    ("train_needs_targets", {"train_needs_targets": "yes"}),
    ("aux_weights", {"train_needs_targets": True, "aux_weights": (("aux", 0.4),)}),
    ("notes", {"notes": None}),
]


@pytest.mark.parametrize(
    ("field", "bad"), BAD_VALUES, ids=[f"{f}:{v!r}"[:60] for f, v in BAD_VALUES]
)
def test_archinfo_rejects_each_bad_value(field: str, bad: dict[str, object]) -> None:
    """The message names the entry, the field, what was expected and what was found."""
    with pytest.raises(ArchitectureError) as info:
        _info(**bad)
    message = str(info.value)
    assert message.startswith(f"ArchInfo {TEMP_NAME!r}: {field} must be "), message
    assert "; got " in message and message.rstrip().endswith(".")


def test_valid_archinfo_with_every_field() -> None:
    """The planted values above are the only thing wrong: the base and the figures are valid."""
    info = _info(
        **{**PAPER_FIGURES, **GFLOPS},
        paper_params_with_aux=True,
        aux_weights=(("aux", 0.4), ("aux_2", 1)),
        reference="https://github.com/x/y",
        in_channels=1,
        input_divisor=1,
    )
    assert info.paper_gmacs == 10.0 and info.in_channels == 1
    assert _info().in_channels == 3  # RGB by default


@pytest.mark.parametrize(("convention", "gmacs"), [("macs", 10.0), ("2*macs", 5.0)])
def test_paper_gmacs_conversion(convention: str, gmacs: float) -> None:
    info = _info(
        paper_gflops=10.0,
        paper_resolution=(512, 1024),
        paper_flops_convention=convention,
        paper_num_classes=19,
    )
    assert info.paper_gmacs == gmacs


def test_paper_gmacs_absent() -> None:
    assert _info().paper_gmacs is None


def test_archinfo_is_frozen() -> None:
    info = _info()
    with pytest.raises(AttributeError):
        info.name = "other"  # type: ignore[misc]
