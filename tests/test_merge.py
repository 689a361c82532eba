"""Many machines: ``run --shard I/N`` slices, concurrent shards into one folder, and ``merge``.

Sharded and merged runs must equal an unsharded one: the same leaderboard (every column that
does not depend on the clock). The suite is ``tests/data/fault_suite.yaml`` (tiny plugin
architectures from ``tests/data/fault_plugin.py``, 5 combinations with the baseline).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch

import architectures
from architectures import _registry
from bench.cli import main
from bench.merge import merge_results
from bench.plugins import load_plugin
from bench.records import load_records
from bench.reporting.frame import leaderboard_frame
from bench.runner import BASELINE_ARCH, Sweep
from bench.shards import parse_shard, shard_items
from bench.suites import load_suite
from tests.factories import read_record_files

ROOT = Path(__file__).resolve().parent.parent
FAULT_SUITE = ROOT / "tests" / "data" / "fault_suite.yaml"
PLUGIN = ROOT / "tests" / "data" / "fault_plugin.py"
ARCHS = ["fault_conv_a", "fault_conv_b", "fault_sleepy", "fault_conv_c"]
COMBOS = [BASELINE_ARCH, *ARCHS]
# Leaderboard columns that do not depend on the clock or on when the run happened.
STABLE = [
    "suite",
    "setting",
    "dataset",
    "arch",
    "title",
    "kind",
    "status",
    "miou",
    "pixel_acc",
    "mean_acc",
    "fwiou",
    "mean_dice",
    "params_m",
    "gmacs",
    "gflops",
    "device",
    "dtype",
    "threads",
    "train_steps",
    "train_final_loss",
]


def call(argv: list[object]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in argv])
    return code, out.getvalue(), err.getvalue()


def stable_frame(results: Path) -> pd.DataFrame:
    return leaderboard_frame(load_records(results))[STABLE]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """One unsharded in-process run and the three shards of the same suite, one folder each."""
    threads = torch.get_num_threads()
    before = set(architectures.names())
    load_plugin(PLUGIN)
    base = tmp_path_factory.mktemp("shards")
    suite = load_suite(str(FAULT_SUITE))
    quiet = {"device": "cpu", "progress": False, "log": lambda m: None}
    Sweep(suite, results_dir=base / "single", **quiet).run(ARCHS)
    for i in (1, 2, 3):
        Sweep(suite, results_dir=base / f"shard{i}", **quiet).run(ARCHS, shard=(i, 3))
    yield base
    torch.set_num_threads(threads)
    for name in set(architectures.names()) - before:
        _registry.unregister(name)


# -- slicing ----------------------------------------------------------------------------------


def test_shard_slices_are_round_robin_disjoint_and_complete():
    items = [f"c{i}" for i in range(7)]
    slices = [shard_items(items, i, 3) for i in (1, 2, 3)]
    assert slices == [["c0", "c3", "c6"], ["c1", "c4"], ["c2", "c5"]]
    assert sorted(sum(slices, [])) == items
    assert shard_items(items, 1, 1) == items
    assert shard_items(items[:2], 3, 3) == []  # more shards than combinations: some idle
    assert parse_shard("2/3") == (2, 3) and parse_shard("1/1") == (1, 1)
    with pytest.raises(ValueError, match="counted from 1"):
        parse_shard("0/3")


def test_each_shard_ran_its_slice_only(runs):
    ran = {i: sorted(r["arch"] for r in read_record_files(runs / f"shard{i}")) for i in (1, 2, 3)}
    assert ran == {
        1: sorted([BASELINE_ARCH, "fault_sleepy"]),
        2: ["fault_conv_a", "fault_conv_c"],
        3: ["fault_conv_b"],
    }


# -- concurrent shards into one folder -----------------------------------------------------------


def test_three_concurrent_shards_give_the_unsharded_leaderboard(tmp_path, runs):
    shared = tmp_path / "shared"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("SEMSEG_TEST_SLEEP_S", None)
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "run_bench.py",
                "run",
                "--suite",
                str(FAULT_SUITE),
                "--plugin",
                str(PLUGIN),
                "--results-dir",
                str(shared),
                "--shard",
                f"{i}/3",
                "-q",
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in (1, 2, 3)
    ]
    outputs = []
    try:
        for proc in procs:
            out, err = proc.communicate(timeout=600)
            outputs.append(out)
            assert proc.returncode == 0, err
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert "shard 1/3: ran 2 combination(s); 3 belong to other shards." in outputs[0]
    assert "shard 3/3: ran 1 combination(s); 4 belong to other shards." in outputs[2]
    assert not (shared / "LEADERBOARD.md").exists()  # left to `leaderboard` / `merge`

    records = read_record_files(shared)
    assert sorted(r["arch"] for r in records) == sorted(COMBOS)  # each exactly once
    assert all(r["status"] == "ok" for r in records)
    for r in records:
        assert "--shard" in r["command"]
    code, _, err = call(["leaderboard", "--results-dir", shared])
    assert code == 0, err
    pd.testing.assert_frame_equal(stable_frame(shared), stable_frame(runs / "single"))


# -- merge ----------------------------------------------------------------------------------------


def test_merging_the_shard_folders_gives_the_unsharded_leaderboard(tmp_path, runs):
    merged = tmp_path / "merged"
    sources = [runs / f"shard{i}" for i in (1, 2, 3)]
    code, out, err = call(["merge", *sources, "--into", merged])
    assert code == 0, err
    assert out.startswith(
        f"merged 3 folder(s) into {merged}: 5 record(s) copied, 0 already "
        f"there, 0 identical duplicate(s) skipped, 0 older run(s) of a "
        f"combination not copied, "
    )
    assert (merged / "LEADERBOARD.md").is_file()
    pd.testing.assert_frame_equal(stable_frame(merged), stable_frame(runs / "single"))
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


def test_merge_keeps_the_newest_run_and_reports_disagreeing_runs(tmp_path, runs):
    a, b = tmp_path / "machine_a", tmp_path / "machine_b"
    _copy_folder(runs / "shard2", a)  # fault_conv_a, fault_conv_c
    paths_b = _copy_folder(runs / "shard2", b)
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
    code, out, err = call(["merge", a, b, "--into", into, "--no-leaderboard"])
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
    assert kept["fault_conv_c"]["metrics"]["miou"] == old_miou(runs, "fault_conv_c")
    assert not (into / "LEADERBOARD.md").exists()


def old_miou(runs: Path, arch: str) -> float:
    return next(r for r in read_record_files(runs / "shard2") if r["arch"] == arch)["metrics"][
        "miou"
    ]


def test_merge_never_deletes_and_skips_older_incoming_runs(tmp_path, runs):
    into = tmp_path / "into"
    _copy_folder(runs / "shard3", into)  # fault_conv_b
    incoming = tmp_path / "incoming"
    (path,) = _copy_folder(runs / "shard3", incoming)
    record = json.loads(path.read_text(encoding="utf-8"))
    _rewrite(path, run_id=record["run_id"] + "old", created="2000-01-01T00:00:00Z")
    report = merge_results([incoming], into)
    assert report.copied == [] and report.already_there == 1
    assert report.superseded == [record["run_id"] + "old"] and report.conflicts == []
    assert [r["run_id"] for r in read_record_files(into)] == [record["run_id"]]


def test_merge_of_a_corrupt_source_names_the_file_and_writes_nothing(tmp_path, runs):
    good, bad = tmp_path / "good", tmp_path / "bad"
    _copy_folder(runs / "shard3", good)
    paths = _copy_folder(runs / "shard2", bad)
    paths[0].write_text(paths[0].read_text(encoding="utf-8")[:50], encoding="utf-8")
    into = tmp_path / "into"
    code, _, err = call(["merge", good, bad, "--into", into])
    assert code == 2
    assert f"error: Corrupt run record {paths[0]}:" in err
    assert not (into / "records").exists()


def test_merge_refuses_sample_paths_outside_the_folder(tmp_path, runs):
    src = tmp_path / "src"
    (path,) = _copy_folder(runs / "shard3", src)
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
