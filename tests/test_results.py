"""Tests for bench.results: atomic record files, ids, loading, selection and provenance."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone

import pytest

from bench import results
from bench.results import (
    RECORDS_DIR,
    command_line,
    environment,
    latest_ok,
    load_records,
    new_run_id,
    validate_record,
    write_json_atomic,
    write_record,
)


def record(
    arch: str = "fcn8s",
    *,
    status: str = "ok",
    created: str = "2026-11-27T06:16:00Z",
    run_id: str | None = None,
    setting: str = "64x64",
    **extra: object,
) -> dict:
    return {
        "schema_version": 1,
        "run_id": run_id or new_run_id("smoke", arch, "synthetic"),
        "created": created,
        "suite": "smoke",
        "arch": arch,
        "dataset": "synthetic",
        "setting": setting,
        "status": status,
        **extra,
    }


def test_write_record_is_valid_sorted_json_and_leaves_no_temp_files(tmp_path):
    rec = record(metrics={"miou": 0.25, "pixel_acc": 0.5}, zeta=1, alpha=None)
    path = write_record(tmp_path, rec)
    assert path == tmp_path / RECORDS_DIR / f"{rec['run_id']}.json"
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no .tmp left behind
    text = path.read_text(encoding="utf-8")
    assert json.loads(text) == rec
    top_keys = re.findall(r'^ "([a-z_]+)":', text, flags=re.MULTILINE)
    assert top_keys == sorted(rec)
    assert top_keys[0] == "alpha" and top_keys[-1] == "zeta"
    assert text.endswith("}\n")


def test_write_json_atomic_replaces_and_cleans_up_when_serialisation_fails(tmp_path):
    path = tmp_path / "out.json"
    write_json_atomic(path, {"a": 1})
    with pytest.raises(ValueError):  # NaN is not JSON; allow_nan=False refuses it
        write_json_atomic(path, {"a": float("nan")})
    assert json.loads(path.read_text()) == {"a": 1}  # the old content survives intact
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json"]


def test_write_record_validates_before_writing(tmp_path):
    rec = record()
    del rec["dataset"]
    with pytest.raises(
        ValueError,
        match=r"record to write: not a run record, missing keys \['dataset'\]",
    ):
        write_record(tmp_path, rec)
    assert not (tmp_path / RECORDS_DIR).exists()


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
    recs = [record("fcn8s"), record("fcn16s"), record("fcn32s")]
    for r in recs:
        write_record(tmp_path, r)
    loaded = load_records(tmp_path)
    assert [r["arch"] for r in loaded] == ["fcn16s", "fcn32s", "fcn8s"]
    assert loaded == sorted(recs, key=lambda r: r["run_id"])


def test_load_records_missing_folder_says_how_to_create_it(tmp_path):
    with pytest.raises(FileNotFoundError) as exc:
        load_records(tmp_path)
    assert f"No records folder at {tmp_path / RECORDS_DIR}" in str(exc.value)
    assert "python run_bench.py run" in str(exc.value)


def test_load_records_rejects_corrupt_json_naming_the_file(tmp_path):
    write_record(tmp_path, record())
    bad = tmp_path / RECORDS_DIR / "truncated.json"
    bad.write_text('{"schema_version": 1, "run_id": ', encoding="utf-8")
    with pytest.raises(ValueError) as exc:
        load_records(tmp_path)
    assert f"Corrupt run record {bad}" in str(exc.value)
    assert "Delete or restore this file" in str(exc.value)


def test_load_records_rejects_other_schema_versions(tmp_path):
    folder = tmp_path / RECORDS_DIR
    folder.mkdir()
    path = folder / "future.json"
    path.write_text(json.dumps(record() | {"schema_version": 2}), encoding="utf-8")
    with pytest.raises(ValueError) as exc:
        load_records(tmp_path)
    msg = str(exc.value)
    assert str(path) in msg
    assert "schema_version 2, this harness reads 1" in msg


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ([1, 2], "expected a JSON object, found list"),
        (
            {"hello": "world"},
            "not a run record, missing keys ['schema_version', 'run_id', "
            "'suite', 'arch', 'dataset', 'status']",
        ),
        (record(status="done"), "status must be 'ok' or 'error', found 'done'"),
    ],
)
def test_load_records_rejects_non_records_naming_the_file(tmp_path, content, expected):
    folder = tmp_path / RECORDS_DIR
    folder.mkdir()
    path = folder / "odd.json"
    path.write_text(json.dumps(content), encoding="utf-8")
    with pytest.raises(ValueError) as exc:
        load_records(tmp_path)
    assert str(exc.value) == f"{path}: {expected}."


def test_validate_record_accepts_an_error_record(tmp_path):
    rec = record(status="error", error={"message": "boom"})
    validate_record(rec, source="x")  # raises if rejected
    results.write_record(tmp_path, rec)
    (loaded,) = load_records(tmp_path)
    assert loaded["status"] == "error" and loaded["error"] == {"message": "boom"}


def test_latest_ok_picks_the_newest_ok_record_per_key():
    old = record("fcn8s", created="2026-11-27T06:00:00Z")
    new = record("fcn8s", created="2026-11-27T07:00:00Z")
    newer_error = record("fcn8s", status="error", created="2026-11-27T08:00:00Z")
    other_setting = record("fcn8s", created="2026-11-27T05:00:00Z", setting="128x128")
    other_arch = record("fcn16s", created="2026-11-27T05:00:00Z")
    got = latest_ok([new, newer_error, other_arch, old, other_setting])
    assert got == {
        ("smoke", "fcn8s", "synthetic", "64x64"): new,
        ("smoke", "fcn8s", "synthetic", "128x128"): other_setting,
        ("smoke", "fcn16s", "synthetic", "64x64"): other_arch,
    }


def test_latest_ok_breaks_same_second_ties_by_creation_order():
    base = datetime(2026, 11, 27, 6, 16, 0, tzinfo=timezone.utc)
    for k in range(20):
        first = record(
            run_id=new_run_id("smoke", "fcn8s", "synthetic", base + timedelta(microseconds=2 * k))
        )
        second = record(
            run_id=new_run_id(
                "smoke", "fcn8s", "synthetic", base + timedelta(microseconds=2 * k + 1)
            )
        )
        assert latest_ok([second, first])[("smoke", "fcn8s", "synthetic", "64x64")] is second


def test_latest_ok_of_only_errors_is_empty():
    assert latest_ok([record(status="error"), record("fcn16s", status="error")]) == {}


def test_environment_has_the_documented_keys():
    import torch

    env = environment("cpu", seed=3, matmul_gflops=12.5)
    assert set(env) == {
        "torch",
        "torchvision",
        "python",
        "platform",
        "device",
        "device_name",
        "cpu_model",
        "gpu_model",
        "threads",
        "git_commit",
        "git_dirty",
        "seed",
        "matmul_gflops_per_s",
        "flags",
    }
    assert env["torch"] == torch.__version__
    assert env["device"] == "cpu" and env["gpu_model"] is None
    assert env["device_name"] == env["cpu_model"] and env["cpu_model"]
    assert env["seed"] == 3 and env["matmul_gflops_per_s"] == 12.5
    assert env["threads"] == torch.get_num_threads()
    assert set(env["flags"]) == {"deterministic_algorithms", "cudnn_benchmark", "tf32_matmul"}
    commit = env["git_commit"]
    assert commit is None or re.fullmatch(r"[0-9a-f]{40}", commit)
    assert env["git_dirty"] in (None, True, False)
    json.dumps(env, allow_nan=False)  # a record must be able to hold it


def test_environment_without_git_records_none(monkeypatch):
    def no_git(*args, **kwargs):
        raise FileNotFoundError("git")

    monkeypatch.setattr(results.subprocess, "run", no_git)
    results.git_state.cache_clear()
    try:
        env = environment("cpu", seed=0, matmul_gflops=None)
    finally:
        results.git_state.cache_clear()
    assert env["git_commit"] is None and env["git_dirty"] is None


def test_git_state_is_read_once_and_ignores_results(monkeypatch):
    """A sweep's records all name the commit the process started from (a commit landing during a
    long sweep must not relabel its later records), and the sweep's own output under results/
    does not make the code "dirty"."""
    calls: list[list[str]] = []

    class Done:
        returncode = 0
        stdout = ""

    def fake_git(args, **kwargs):
        calls.append(list(args))
        out = Done()
        out.stdout = "a" * 40 if "rev-parse" in args else ""
        return out

    monkeypatch.setattr(results.subprocess, "run", fake_git)
    results.git_state.cache_clear()
    try:
        first = environment("cpu", seed=0, matmul_gflops=None)
        second = environment("cpu", seed=1, matmul_gflops=None)
    finally:
        results.git_state.cache_clear()
    assert first["git_commit"] == second["git_commit"] == "a" * 40
    assert first["git_dirty"] is False
    assert len(calls) == 2  # rev-parse and status, once for the process
    status = next(c for c in calls if "status" in c)
    assert ":(top,exclude)results" in status and ":(top)" in status


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["run_bench.py", "run", "--suite", "smoke"], "python run_bench.py run --suite smoke"),
        (["/opt/x/run_bench.py", "list"], "python run_bench.py list"),
        (
            ["run_bench.py", "run", "--suite", "my suite.yaml"],
            "python run_bench.py run --suite 'my suite.yaml'",
        ),
        (["/usr/bin/semseg-bench", "run", "--archs", "a,b"], "semseg-bench run --archs a,b"),
        ([], "python run_bench.py"),
    ],
)
def test_command_line_is_what_a_user_would_type(argv, expected):
    assert command_line(argv) == expected


def test_command_line_defaults_to_sys_argv(monkeypatch):
    monkeypatch.setattr(results.sys, "argv", ["run_bench.py", "leaderboard"])
    assert command_line() == "python run_bench.py leaderboard"
