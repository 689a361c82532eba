"""Tests for bench.records: the typed run record, its one validator, older versions, files."""

from __future__ import annotations

import dataclasses
import json
import re
from datetime import datetime, timedelta, timezone

import pytest

from bench.errors import MissingFileError, RecordError
from bench.records import (
    RECORDS_DIR,
    SCHEMA_VERSION,
    Complexity,
    ErrorInfo,
    Metrics,
    RunRecord,
    baseline_title,
    latest_ok,
    load_records,
    new_run_id,
    read_record,
    write_record,
)
from tests.factories import ROOT, minimal_record, schema_1

COMMITTED = sorted((ROOT / "results" / "records").glob("*.json"))


# -- the schema -------------------------------------------------------------------------------


def test_to_dict_writes_every_field_and_reads_back_equal():
    rec = minimal_record(metrics={"miou": 0.25, "pixel_acc": 0.5})
    data = rec.to_dict()
    # Every field but the omit_none ones that are None (semisup: the semi-supervised track;
    # seed_group: runs pooled over seeds).
    assert set(data) == {f for f in RunRecord.__dataclass_fields__} - {"semisup", "seed_group"}
    assert set(data["metrics"]) == {f.name for f in dataclasses.fields(Metrics)} - {
        "miou_ci95", "pixel_acc_ci95", "mean_acc_ci95", "bootstrap_resamples", "bootstrap_seed",
        "per_image_file", "per_image_sha256",
    }  # fmt: skip
    assert data["metrics"]["miou"] == 0.25 and data["metrics"]["mean_acc"] is None
    assert data["complexity"] is None and data["amendments"] == []
    assert RunRecord.from_dict(data) == rec
    assert RunRecord.from_dict(json.loads(json.dumps(data))) == rec  # through JSON text


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (
            lambda d: d["metrics"].update(miou=61.2),
            r"'metrics\.miou'.*\[0, 1\].*61\.2.*percentages",
        ),
        (lambda d: d.pop("run_id"), r"'run_id' should be a string.*required"),
        (lambda d: d.update(schema_version=4), r"'schema_version' should be at most 3.*newer"),
        (lambda d: d.update(schema_version="1"), r"'schema_version' should be an integer"),
        (lambda d: d.update(status="failed"), r"'status' should be 'ok' or 'error'.*'failed'"),
        (lambda d: d.update(kind="oracle"), r"'kind' should be 'model' or 'baseline'"),
        (lambda d: d.update(metrics=[0.5]), r"'metrics' should be an object or null"),
        (lambda d: d.update(speed={"dtype": "fp32"}), r"'speed\.device'.*speed section is present"),
        (lambda d: d.update(speed={"device": "cpu", "dtype": "fp8"}), r"'speed\.dtype'.*'fp32'"),
        (lambda d: d.update(created="yesterday"), r"'created'.*ISO-8601"),
        (lambda d: d.update(complexity={"unsupported_ops": ["conv"]}), r"unsupported_ops"),
        (lambda d: d.update(complexity={"params": -1}), r"'complexity\.params'.*>= 0"),
        (
            lambda d: d.update(train={"optimizer": "lamb"}),
            r"'train\.optimizer'.*'adam' or 'rmsprop'",
        ),
        (lambda d: d.update(status="error"), r"'error\.message'.*status 'error'"),
        (lambda d: d["metrics"].update(iou=0.1), r"'metrics\.iou'.*does not know the field"),
        (lambda d: d.update(extra=1), r"'extra' should be one of the fields of a run record"),
    ],
)
def test_from_dict_names_record_field_expectation_and_fix(mutate, expected):
    data = minimal_record(metrics={"miou": 0.5}).to_dict()
    mutate(data)
    with pytest.raises(RecordError, match=expected) as info:
        RunRecord.from_dict(data, source="run record #4")
    message = str(info.value)
    assert message.startswith("run record #4")
    assert "Fix:" in message


TRAIN = {"steps": 4, "final_loss": 1.5, "loss_curve": [2.0, 1.5], "optimizer": "adamw"}


def test_train_fields_added_later_are_left_out_while_null_so_old_records_round_trip():
    """``train.amp``, ``train.resumed_from_step``, ``train.world_size`` and ``train.sync_bn``
    (``omit_none``): a record written before them reads and writes back unchanged; one that has
    them keeps them."""
    old = minimal_record(train=TRAIN).to_dict()
    added = ("amp", "resumed_from_step", "world_size", "sync_bn")
    assert [key for key in added if key in old["train"]] == []
    assert old["train"]["class_weights"] is None  # the older optional fields stay null
    assert RunRecord.from_dict(old).to_dict() == old
    values = {"amp": "bf16", "resumed_from_step": 3, "world_size": 2, "sync_bn": True}
    new = {**old, "train": {**old["train"], **values}}
    rec = RunRecord.from_dict(new)
    assert tuple(getattr(rec.train, key) for key in added) == ("bf16", 3, 2, True)
    assert rec.to_dict() == new


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("amp", "fp32", "field 'train.amp' should be 'off' or 'bf16' or 'fp16'; found 'fp32'"),
        ("resumed_from_step", -1, "field 'train.resumed_from_step' should be an integer >= 0"),
        ("amp", None, None),  # null is accepted (and left out when written)
        ("world_size", 0, "field 'train.world_size' should be an integer >= 1; found 0"),
        ("sync_bn", "yes", "field 'train.sync_bn' should be true or false; found 'yes'"),
        ("world_size", None, None),
    ],
)
def test_train_fields_added_later_are_validated(field, value, expected):
    data = minimal_record(train=TRAIN).to_dict()
    data["train"][field] = value
    if expected is None:
        assert field not in RunRecord.from_dict(data).to_dict()["train"]
        return
    with pytest.raises(RecordError) as exc:
        RunRecord.from_dict(data)
    assert expected in str(exc.value)


def test_from_dict_rejects_a_non_object():
    with pytest.raises(RecordError, match=r"run record: field 'record' should be an object"):
        RunRecord.from_dict(["fcn8s.json"])


def test_sections_validate_on_their_own():
    assert Metrics.from_dict({"miou": 0.5}).miou == 0.5
    with pytest.raises(RecordError, match=r"'complexity\.gflops' should be a finite number >= 0"):
        Complexity.from_dict({"gflops": -1.0})
    assert ErrorInfo(message="x").to_dict() == {
        "message": "x",
        "type": "",
        "traceback": None,
        "stage": None,
    }


def test_derived_values():
    rec = minimal_record(
        metrics={"miou": 0.25},
        env={"device": "cuda:1"},
        speed={"device": "cuda:0", "dtype": "fp16"},
    )
    assert rec.ok and rec.miou == 0.25
    assert rec.device == "cuda:0" and rec.device_type == "cuda" and rec.dtype == "fp16"
    assert rec.replace(speed=None).device == "cuda:1"
    assert rec.created_at == datetime(2026, 11, 27, 6, 16, tzinfo=timezone.utc)


# -- older versions ---------------------------------------------------------------------------


def _v1(**changes: object) -> dict:
    data = schema_1(
        minimal_record(
            complexity={"params": 35_309_128, "trainable_params": 35_309_128, "gmacs": 1.0}
        )
    )
    data.update(changes)
    return data


def test_v1_without_aux_heads_keeps_params_as_both_counts():
    rec = RunRecord.from_dict(_v1(arch_info={"title": "ENet", "aux_weights": {}}))
    assert rec.schema_version == SCHEMA_VERSION
    assert rec.complexity.params == rec.complexity.params_with_aux == 35_309_128
    assert rec.amendments == ()


def test_v1_with_aux_heads_cannot_know_the_evaluated_count():
    """v1 ``params`` counted the auxiliary classifier; the evaluated network is unknown."""
    rec = RunRecord.from_dict(_v1(arch_info={"title": "FCN", "aux_weights": {"aux": 0.5}}))
    assert rec.complexity.params_with_aux == 35_309_128
    assert rec.complexity.params is None and rec.complexity.trainable_params is None


def test_v1_baseline_is_retitled_after_its_class_0():
    data = _v1(
        kind="baseline",
        arch_info={"title": "all background (baseline)", "family": "baseline"},
        dataset_info={"class_names": ["sky", "building"], "num_classes": 2},
        complexity=None,
    )
    assert RunRecord.from_dict(data).arch_info.title == "all sky (class 0, baseline)"
    assert baseline_title("background") == "all background (baseline)"


def test_upgrade_does_not_touch_the_callers_dict():
    data = _v1(arch_info={"title": "FCN", "aux_weights": {"aux": 0.5}})
    before = json.dumps(data, sort_keys=True)
    RunRecord.from_dict(data)
    assert json.dumps(data, sort_keys=True) == before


# -- files ------------------------------------------------------------------------------------


def test_write_record_writes_the_run_id_file_and_nothing_else(tmp_path):
    rec = minimal_record(metrics={"miou": 0.25, "pixel_acc": 0.5})
    path = write_record(tmp_path, rec)
    assert path == tmp_path / RECORDS_DIR / f"{rec.run_id}.json"
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no .tmp left behind
    text = path.read_text(encoding="utf-8")
    assert json.loads(text) == rec.to_dict()
    top_keys = re.findall(r'^ "([a-z_]+)":', text, flags=re.MULTILINE)
    assert top_keys == sorted(top_keys) and top_keys[0] == "amendments"
    assert read_record(path) == rec


def test_write_record_takes_only_the_type(tmp_path):
    with pytest.raises(TypeError, match="write_record takes a RunRecord; got dict"):
        write_record(tmp_path, minimal_record().to_dict())  # type: ignore[arg-type]


def test_run_ids_are_unique_for_rapid_calls():
    when = datetime(2026, 11, 27, 6, 16, 0, tzinfo=timezone.utc)
    ids = [new_run_id("smoke", "fcn8s", "synthetic", when) for _ in range(1000)]
    assert len(set(ids)) == 1000
    assert all(i.startswith("smoke__fcn8s__synthetic__20261127T061600000000Z_") for i in ids)
    assert all(re.fullmatch(r".*_[0-9a-f]{8}", i) for i in ids)


def test_run_ids_sort_in_creation_order_within_one_second():
    base = datetime(2026, 11, 27, 6, 16, 0, tzinfo=timezone.utc)
    for k in range(20):  # a random suffix alone would order each pair by chance
        earlier = new_run_id("s", "a", "d", base + timedelta(microseconds=2 * k))
        later = new_run_id("s", "a", "d", base + timedelta(microseconds=2 * k + 1))
        assert earlier < later


def test_load_records_sorted_by_run_id(tmp_path):
    recs = [minimal_record("fcn8s"), minimal_record("fcn16s"), minimal_record("fcn32s")]
    for r in recs:
        write_record(tmp_path, r)
    loaded = load_records(tmp_path)
    assert [r.arch for r in loaded] == ["fcn16s", "fcn32s", "fcn8s"]
    assert loaded == sorted(recs, key=lambda r: r.run_id)


def test_load_records_missing_folder_says_how_to_create_it(tmp_path):
    with pytest.raises(MissingFileError) as exc:
        load_records(tmp_path)
    assert f"No records folder at {tmp_path / RECORDS_DIR}" in str(exc.value)
    assert "python run_bench.py run" in str(exc.value)


def test_load_records_rejects_corrupt_json_naming_the_file(tmp_path):
    write_record(tmp_path, minimal_record())
    bad = tmp_path / RECORDS_DIR / "truncated.json"
    bad.write_text('{"schema_version": 1, "run_id": ', encoding="utf-8")
    with pytest.raises(RecordError) as exc:
        load_records(tmp_path)
    assert f"Corrupt run record {bad}" in str(exc.value)
    assert "Delete or restore this file" in str(exc.value)


def test_load_records_names_the_file_of_an_invalid_record(tmp_path):
    folder = tmp_path / RECORDS_DIR
    folder.mkdir()
    path = folder / "odd.json"
    path.write_text(json.dumps({"hello": "world"}), encoding="utf-8")
    with pytest.raises(RecordError) as exc:
        load_records(tmp_path)
    assert str(exc.value).startswith(f"{path}: field 'schema_version' should be an integer")


def test_an_error_record_round_trips(tmp_path):
    rec = minimal_record(status="error")
    write_record(tmp_path, rec)
    (loaded,) = load_records(tmp_path)
    assert loaded.status == "error" and loaded.error.message == "boom"


# -- selection --------------------------------------------------------------------------------


def test_latest_ok_picks_the_newest_ok_record_per_key():
    old = minimal_record("fcn8s", created="2026-11-27T06:00:00Z")
    new = minimal_record("fcn8s", created="2026-11-27T07:00:00Z")
    newer_error = minimal_record("fcn8s", status="error", created="2026-11-27T08:00:00Z")
    other_setting = minimal_record("fcn8s", created="2026-11-27T05:00:00Z", setting="128x128")
    other_arch = minimal_record("fcn16s", created="2026-11-27T05:00:00Z")
    got = latest_ok([new, newer_error, other_arch, old, other_setting])
    assert got == {
        ("smoke", "fcn8s", "synthetic", "64x64"): new,
        ("smoke", "fcn8s", "synthetic", "128x128"): other_setting,
        ("smoke", "fcn16s", "synthetic", "64x64"): other_arch,
    }


def test_latest_ok_breaks_same_second_ties_by_creation_order():
    base = datetime(2026, 11, 27, 6, 16, 0, tzinfo=timezone.utc)
    for k in range(20):
        first = minimal_record(
            run_id=new_run_id("smoke", "fcn8s", "synthetic", base + timedelta(microseconds=2 * k))
        )
        second = minimal_record(
            run_id=new_run_id(
                "smoke", "fcn8s", "synthetic", base + timedelta(microseconds=2 * k + 1)
            )
        )
        assert latest_ok([second, first])[("smoke", "fcn8s", "synthetic", "64x64")] is second


def test_latest_ok_of_only_errors_is_empty():
    assert (
        latest_ok([minimal_record(status="error"), minimal_record("fcn16s", status="error")]) == {}
    )
