"""Tests for bench.migrate (`upgrade-records`): older records rewritten, re-counted, amended."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from bench.migrate import migrate_results
from bench.models import build_model
from bench.records import SCHEMA_VERSION, read_record
from tests.factories import ROOT, run_cli

ARCH = "tv_deeplabv3_mobilenet_v3_large"  # torchvision's aux classifier: not run in eval


def _v1_record(folder: Path, arch: str = ARCH, params: int | None = None) -> Path:
    """A schema-1 record as the harness wrote it before schema 2 (complexity of all params)."""
    model = build_model(arch, num_classes=4)
    total = sum(p.numel() for p in model.parameters())
    data = {
        "schema_version": 1,
        "run_id": f"quick__{arch}__synthetic__20261127T123409018803Z_70a251e3",
        "created": "2026-11-27T12:34:09Z",
        "kind": "model",
        "suite": "quick",
        "setting": "64x64-steps60-bs4-fp32-seed0-18fb5f",
        "arch": arch,
        "dataset": "synthetic",
        "status": "ok",
        "arch_info": {"title": arch, "aux_weights": {"aux": 0.5}},
        "dataset_info": {"num_classes": 4, "class_names": ["background", "a", "b", "c"]},
        "complexity": {
            "params": total if params is None else params,
            "trainable_params": total if params is None else params,
            "input_shape": [1, 3, 64, 64],
            "gmacs": 0.1,
        },
        "metrics": {"miou": 0.25},
        "command": "python run_bench.py run --suite quick",
    }
    path = folder / "records" / f"{data['run_id']}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def test_a_v1_record_is_recounted_on_the_evaluated_network_and_amended(tmp_path):
    path = _v1_record(tmp_path)
    model = build_model(ARCH, num_classes=4)
    every = sum(p.numel() for p in model.parameters())
    head = sum(p.numel() for n, p in model.named_parameters() if ".aux_classifier." in n)
    # FCNHead(40, 4): 3x3 conv 40 -> 10 without bias, BN (2 x 10), 1x1 conv 10 -> 4 with bias.
    assert head == 10 * 40 * 9 + 2 * 10 + (4 * 10 + 4)
    old = os.umask(0o022)
    try:
        report = migrate_results(tmp_path, command="python run_bench.py upgrade-records")
    finally:
        os.umask(old)
    assert report.params_changed == [(path.stem, every, every - head)]
    assert report.refused == [] and report.current == 0
    record = read_record(path)
    assert record.schema_version == SCHEMA_VERSION
    assert record.complexity.params_with_aux == every
    assert record.complexity.params == record.complexity.trainable_params == every - head
    (amendment,) = record.amendments
    assert amendment.command == "python run_bench.py upgrade-records"
    assert amendment.fields == (
        "schema_version",
        "complexity.params_with_aux",
        "complexity.params",
        "complexity.trainable_params",
        "arch_info.in_channels",
        "arch_info.paper_params_with_aux",
        "arch_info.paper_gflops_with_aux",
        "weights",
        "metrics.confusion_matrix",
    )
    assert amendment.note.startswith("Upgraded from schema 1. complexity.params_with_aux is")
    assert amendment.note.endswith("this run evaluated no published weights and kept no matrix.")
    assert "re-counted on the network as evaluated" in amendment.note
    assert (record.arch_info.in_channels, record.arch_info.paper_params_with_aux) == (3, True)
    assert record.metrics.miou == 0.25  # nothing measured is touched
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o644
    again = migrate_results(tmp_path, command="x")
    assert (again.current, again.upgraded) == (1, [])  # idempotent


def test_a_v2_record_gains_the_schema_3_fields_as_null_and_nothing_else(tmp_path):
    path = _v1_record(tmp_path)
    migrate_results(tmp_path, command="first")
    v2 = json.loads(path.read_text(encoding="utf-8"))
    v2["schema_version"] = 2
    del v2["weights"], v2["metrics"]["confusion_matrix"]
    path.write_text(json.dumps(v2), encoding="utf-8")
    report = migrate_results(tmp_path, command="python run_bench.py upgrade-records")
    assert report.upgraded == [path.stem] and report.params_changed == []
    v3 = json.loads(path.read_text(encoding="utf-8"))
    assert v3["schema_version"] == 3
    assert v3["weights"] is None and v3["metrics"]["confusion_matrix"] is None
    *_, amendment = v3["amendments"]
    assert amendment["fields"] == ["schema_version", "weights", "metrics.confusion_matrix"]
    assert amendment["note"].startswith("Upgraded from schema 2. weights (the published")
    for key in ("complexity", "arch_info", "metrics"):  # nothing measured is touched
        assert {k: v for k, v in v3[key].items() if k != "confusion_matrix"} == v2[key]


def test_a_record_whose_entry_changed_since_the_run_is_left_alone(tmp_path):
    path = _v1_record(tmp_path, params=1234)
    before = path.read_bytes()
    report = migrate_results(tmp_path, command="x")
    ((run_id, why),) = report.refused
    assert run_id == path.stem
    assert "the record 1,234: the entry changed since the run. Re-run it instead." in why
    assert path.read_bytes() == before


def test_the_cli_reports_each_changed_count_and_refusals(tmp_path):
    _v1_record(tmp_path)
    code, text, _ = run_cli(["upgrade-records", "--results-dir", tmp_path])
    assert code == 0
    assert text.startswith(f"{tmp_path}: 1 record(s) upgraded, 0 already current, 0 left")
    assert f"{ARCH}__synthetic__20261127T123409018803Z_70a251e3: params " in text


@pytest.mark.parametrize(
    "path", sorted((ROOT / "results" / "records").glob("*.json")), ids=lambda p: p.stem
)
def test_every_committed_record_is_current_and_round_trips(path):
    """The committed records are in the current schema and the type reads and writes them
    without loss (``from_dict(d).to_dict() == d``)."""
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data["schema_version"] == SCHEMA_VERSION
    assert read_record(path).to_dict() == data
