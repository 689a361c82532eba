"""Tests for ``architectures._registry``: registration, look-up errors, ``ArchInfo`` validation."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from torch import nn

import architectures
from architectures import ArchInfo, register
from architectures._registry import registering_from, unregister

ROOT = Path(__file__).resolve().parents[1]
TEMP_NAME = "tmp_test_arch"


def _info(name: str = TEMP_NAME, **kwargs: object) -> ArchInfo:
    fields: dict[str, object] = dict(
        name=name, title="Temp", paper="1411.4038", year=2015, family="test"
    )
    fields.update(kwargs)
    return ArchInfo(**fields)


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
    with pytest.raises(ValueError, match=r"'tmp_test_arch' is already registered \(by builtin\)"):

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
    with pytest.raises(ValueError, match=r"Unknown architecture 'fcn8'\. Did you mean: fcn8s"):
        architectures.get_entry("fcn8")
    with pytest.raises(ValueError) as info:
        architectures.build("tv_deeplabv3_resnet", num_classes=2)
    assert "tv_deeplabv3_resnet50" in str(info.value)
    assert info.value.__suppress_context__  # raised ``from None``: no KeyError chained


def test_unknown_name_without_close_match() -> None:
    with pytest.raises(ValueError) as info:
        architectures.get_info("zzzzzz")
    assert "Did you mean" not in str(info.value)
    assert f"all {len(architectures.names())} entries" in str(info.value)


@pytest.mark.parametrize("k", [0, -1, 2.0, "3"])
def test_build_rejects_bad_num_classes(temp_entry: str, k: object) -> None:
    with pytest.raises(ValueError, match="num_classes for 'tmp_test_arch' must be a positive int"):
        architectures.build(temp_entry, num_classes=k)  # type: ignore[arg-type]


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


def test_unregister_unknown_name_is_a_no_op() -> None:
    before = architectures.names()
    unregister("never_registered")
    assert architectures.names() == before


# --------------------------------------------------------------------------- ArchInfo


@pytest.mark.parametrize("name", ["", "FCN8s", "fcn-8s", "fcn 8s", "fcn.8s"])
def test_archinfo_rejects_bad_names(name: str) -> None:
    with pytest.raises(ValueError, match="ArchInfo.name"):
        _info(name=name)


@pytest.mark.parametrize("divisor", [0, -8, 8.0])
def test_archinfo_rejects_bad_divisor(divisor: object) -> None:
    with pytest.raises(ValueError, match="input_divisor of 'tmp_test_arch' must be a positive"):
        _info(input_divisor=divisor)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"paper_gflops": 10.0},
        {"paper_gflops": 10.0, "paper_resolution": (512, 512)},
        {"paper_gflops": 10.0, "paper_flops_convention": "macs"},
        {"paper_gflops": 10.0, "paper_resolution": (512, 512), "paper_flops_convention": "flops"},
    ],
)
def test_archinfo_gflops_needs_resolution_and_convention(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="paper_gflops needs paper_resolution"):
        _info(**kwargs)


@pytest.mark.parametrize(("convention", "gmacs"), [("macs", 10.0), ("2*macs", 5.0)])
def test_paper_gmacs_conversion(convention: str, gmacs: float) -> None:
    info = _info(paper_gflops=10.0, paper_resolution=(512, 1024), paper_flops_convention=convention)
    assert info.paper_gmacs == gmacs


def test_paper_gmacs_absent() -> None:
    assert _info().paper_gmacs is None


def test_archinfo_is_frozen() -> None:
    info = _info()
    with pytest.raises(AttributeError):
        info.name = "other"  # type: ignore[misc]


# --------------------------------------------------------------------------- layering


def test_architectures_does_not_import_bench() -> None:
    code = (
        "import architectures, sys; "
        "print(any(m == 'bench' or m.startswith('bench.') for m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert result.stdout.strip() == "False"
