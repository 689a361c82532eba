"""Tests for ``bench.merge`` and ``run_bench.py merge``: shard folders merged into the unsharded
result, the newest run of a combination kept, disagreeing runs reported, nothing deleted, bad
sources refused.

Merged runs must equal an unsharded one: the same leaderboard (every column that does not depend
on the clock). The sources are the session fixture ``shard_runs`` (``tests/conftest.py``): the
fault suite (``tests/data/fault_suite.yaml``) run unsharded and as three shards.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from bench.merge import merge_results
from tests.factories import read_record_files, run_cli, stable_leaderboard


def test_merging_the_shard_folders_gives_the_unsharded_leaderboard(tmp_path, shard_runs):
    merged = tmp_path / "merged"
    sources = [shard_runs / f"shard{i}" for i in (1, 2, 3)]
    code, out, err = run_cli(["merge", *sources, "--into", merged])
    assert code == 0, err
    assert out.startswith(
        f"merged 3 folder(s) into {merged}: 5 record(s) copied, 0 already "
        f"there, 0 identical duplicate(s) skipped, 0 older run(s) of a "
        f"combination not copied, "
    )
    assert (merged / "LEADERBOARD.md").is_file()
    pd.testing.assert_frame_equal(
        stable_leaderboard(merged), stable_leaderboard(shard_runs / "single")
    )
    for r in read_record_files(merged):  # sample files came along
        if r["samples"]:
            assert (merged / r["samples"]["file"]).is_file()
            assert (merged / r["samples"]["inputs_file"]).is_file()
    # Merging again (or a folder twice) adds nothing.
    report = merge_results([*sources, sources[0]], merged)
    assert report.copied == [] and report.already_there == 5
    assert report.identical == 7 and report.conflicts == []
    assert len(read_record_files(merged)) == 5


def _copy_folder(src: Path, dst: Path) -> list[Path]:
    (dst / "records").mkdir(parents=True)
    paths = []
    for path in (src / "records").glob("*.json"):
        paths.append(dst / "records" / path.name)
        paths[-1].write_bytes(path.read_bytes())
    return paths


def _rewrite(path: Path, **changes) -> dict:
    record = json.loads(path.read_text(encoding="utf-8"))
    for key, value in changes.items():
        if key == "miou":
            record["metrics"]["miou"] = value
        else:
            record[key] = value
    path.unlink()
    new = path.parent / f"{record['run_id']}.json"
    new.write_text(json.dumps(record), encoding="utf-8")
    return record


def test_merge_keeps_the_newest_run_and_reports_disagreeing_runs(tmp_path, shard_runs):
    a, b = tmp_path / "machine_a", tmp_path / "machine_b"
    _copy_folder(shard_runs / "shard2", a)  # fault_conv_a, fault_conv_c
    paths_b = _copy_folder(shard_runs / "shard2", b)
    conv_a = next(p for p in paths_b if "__fault_conv_a__" in p.name)
    old = json.loads(conv_a.read_text(encoding="utf-8"))
    newer = _rewrite(
        conv_a,
        run_id=old["run_id"].replace("fault_conv_a__", "fault_conv_a__x"),
        created="2099-01-01T00:00:00Z",
        miou=old["metrics"]["miou"] + 0.01,
    )
    conv_c = next(p for p in paths_b if "__fault_conv_c__" in p.name)
    same_id = _rewrite(conv_c, miou=0.5)  # same run_id as machine_a's, other content

    into = tmp_path / "merged"
    code, out, err = run_cli(["merge", a, b, "--into", into, "--no-leaderboard"])
    assert code == 1  # conflicts give exit status 1
    assert "2 record(s) copied" in out and "1 older run(s) of a combination not copied" in out
    assert (
        f"CONFLICT: run {same_id['run_id']} differs between "
        f"{a / 'records' / conv_c.name} and {b / 'records' / conv_c.name}; kept the first"
    ) in err
    assert f"CONFLICT: fault_conv_a (fault_suite, {old['setting']}, " in err
    assert f"ok runs disagree on mIoU: {old['run_id']} ({a}): " in err
    assert f"kept the newest, {newer['run_id']}" in err
    kept = {r["arch"]: r for r in read_record_files(into)}
    assert kept["fault_conv_a"]["run_id"] == newer["run_id"]
    assert kept["fault_conv_c"]["metrics"]["miou"] == old_miou(shard_runs, "fault_conv_c")
    assert not (into / "LEADERBOARD.md").exists()


def old_miou(shard_runs: Path, arch: str) -> float:
    return next(r for r in read_record_files(shard_runs / "shard2") if r["arch"] == arch)[
        "metrics"
    ]["miou"]


def test_merge_never_deletes_and_skips_older_incoming_runs(tmp_path, shard_runs):
    into = tmp_path / "into"
    _copy_folder(shard_runs / "shard3", into)  # fault_conv_b
    incoming = tmp_path / "incoming"
    (path,) = _copy_folder(shard_runs / "shard3", incoming)
    record = json.loads(path.read_text(encoding="utf-8"))
    _rewrite(path, run_id=record["run_id"] + "old", created="2000-01-01T00:00:00Z")
    report = merge_results([incoming], into)
    assert report.copied == [] and report.already_there == 1
    assert report.superseded == [record["run_id"] + "old"] and report.conflicts == []
    assert [r["run_id"] for r in read_record_files(into)] == [record["run_id"]]


def test_merge_of_a_corrupt_source_names_the_file_and_writes_nothing(tmp_path, shard_runs):
    good, bad = tmp_path / "good", tmp_path / "bad"
    _copy_folder(shard_runs / "shard3", good)
    paths = _copy_folder(shard_runs / "shard2", bad)
    paths[0].write_text(paths[0].read_text(encoding="utf-8")[:50], encoding="utf-8")
    into = tmp_path / "into"
    code, _, err = run_cli(["merge", good, bad, "--into", into])
    assert code == 2
    assert f"error: Corrupt run record {paths[0]}:" in err
    assert not (into / "records").exists()


def test_merge_refuses_sample_paths_outside_the_folder(tmp_path, shard_runs):
    src = tmp_path / "src"
    (path,) = _copy_folder(shard_runs / "shard3", src)
    record = json.loads(path.read_text(encoding="utf-8"))
    record["samples"] = {"file": "../../evil.npz", "inputs_file": "samples/x.npz"}
    path.write_text(json.dumps(record), encoding="utf-8")
    with pytest.raises(
        ValueError,
        match=r"samples.file '../../evil.npz' is not a relative path "
        r"inside the results folder; refusing to merge it.",
    ):
        merge_results([src], tmp_path / "into")
    assert not (tmp_path / "into" / "records").exists()
