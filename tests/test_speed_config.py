"""Tests for ``bench.speed.config``: every SpeedConfig field is checked when the object is built,
and a suite file with an out-of-range speed value fails when it loads (exit 2, nothing written).
"""

from __future__ import annotations

import ast
import dataclasses
import typing
from pathlib import Path

import pytest
import torch

from bench.cli import main
from bench.errors import ConfigError
from bench.speed import DTYPES
from bench.speed.config import DTYPE_NAMES, SpeedConfig
from bench.suites import load_suite
from tests.factories import ROOT, write_suite


def test_defaults_and_field_order_are_the_suite_format() -> None:
    # The suite's setting id hashes these fields: names, order and defaults are frozen.
    assert [(f.name, f.default) for f in dataclasses.fields(SpeedConfig)] == [
        ("enabled", True),
        ("warmup", 3),
        ("min_iters", 10),
        ("max_iters", 100),
        ("min_time_s", 1.0),
        ("max_batch", 16),
        ("dtype", "fp32"),
        ("channels_last", False),
        ("variants", dataclasses.MISSING),  # default_factory=list; never in the setting id
    ]
    assert SpeedConfig().variants == []
    hints = typing.get_type_hints(SpeedConfig)
    assert typing.get_args(hints["dtype"]) == ("fp32", "fp16", "bf16") == DTYPE_NAMES


def test_config_module_imports_no_torch() -> None:
    """The suite layer builds SpeedConfig; the module itself stays data and checks only (no torch
    or NumPy import in ``bench/speed/config.py``, function bodies included)."""
    tree = ast.parse((ROOT / "bench" / "speed" / "config.py").read_text(encoding="utf-8"))
    names = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    names |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    assert "bench.validation" in names  # the scan sees the module's imports
    assert not {m for m in names if m.split(".")[0] in ("torch", "numpy")}


def test_dtype_names_match_the_torch_dtypes() -> None:
    assert tuple(DTYPES) == DTYPE_NAMES
    assert {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16} == DTYPES


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"warmup": -1}, "warmup must be an int >= 0; found -1. Fix: set warmup"),
        ({"min_iters": -3}, "min_iters must be an int >= 1; found -3. Fix: set min_iters"),
        ({"min_iters": 0}, "min_iters must be an int >= 1; found 0."),
        (
            {"min_iters": 10, "max_iters": 5},
            "max_iters must be an int >= min_iters (10); found 5. Fix: set max_iters to a whole "
            "number of at least 10.",
        ),
        ({"min_time_s": -0.5}, "min_time_s must be a finite number of seconds >= 0; found -0.5."),
        ({"min_time_s": float("inf")}, "min_time_s must be a finite number of seconds >= 0"),
        ({"min_time_s": True}, "min_time_s must be a finite number of seconds >= 0; found bool"),
        ({"max_batch": 0}, "max_batch must be an int >= 1; found 0. Fix: set max_batch"),
        ({"warmup": 2.5}, "warmup must be an int >= 0; found 2.5."),
        ({"min_iters": True}, "min_iters must be an int >= 1; found bool True."),
        ({"dtype": "fp64"}, "dtype must be one of 'fp32', 'fp16', 'bf16'; found 'fp64'. Fix:"),
        ({"enabled": 1}, "enabled must be a bool; found 1. Fix: set enabled to true or false."),
        ({"channels_last": "yes"}, "channels_last must be a bool; found 'yes'."),
    ],
)
def test_every_field_is_checked(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as exc:
        SpeedConfig(**kwargs)  # type: ignore[arg-type]
    assert message in str(exc.value)
    assert isinstance(exc.value, ValueError)  # `except ValueError` callers keep working


def test_boundary_values_are_accepted() -> None:
    config = SpeedConfig(
        warmup=0, min_iters=1, max_iters=1, min_time_s=0, max_batch=1, dtype="bf16"
    )
    assert (config.min_iters, config.max_iters, config.max_batch) == (1, 1, 1)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("speed: {min_iters: -3}\n", "speed: min_iters must be an int >= 1; found -3"),
        ("speed: {max_batch: 0}\n", "speed: max_batch must be an int >= 1; found 0"),
    ],
)
def test_bad_speed_value_stops_run_before_any_work(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, expected: str
) -> None:
    # Before SpeedConfig checked itself, max_batch 0 was never caught and min_iters -3 only
    # after training and evaluation.
    suite = write_suite(tmp_path, text, "bad_speed.yaml")
    results = tmp_path / "results"
    assert main(["run", "--suite", str(suite), "--results-dir", str(results), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert f"Suite file {suite}" in err and expected in err, err
    records = results / "records"
    assert not records.exists() or not any(records.iterdir())
    with pytest.raises(ConfigError, match="Fix: set"):
        load_suite(str(suite))


def test_literal_dtype_is_checked_by_the_suite_loader(tmp_path: Path) -> None:
    with pytest.raises(ValueError) as exc:
        load_suite(str(write_suite(tmp_path, "speed: {dtype: fp64}\n", "bad_speed.yaml")))
    assert "key 'speed.dtype' expects one of 'fp32', 'fp16', 'bf16'; found str 'fp64'" in str(
        exc.value
    )
