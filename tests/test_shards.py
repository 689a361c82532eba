"""Tests for ``bench.shards`` and ``run --shard I/N``: round-robin slices, each shard running
its slice only, and concurrent shards into one folder giving the unsharded leaderboard.

The suite is ``tests/data/fault_suite.yaml`` (tiny plugin architectures from
``tests/data/fault_plugin.py``, 5 combinations with the baseline); the unsharded run and the
three shards are the session fixture ``shard_runs`` (``tests/conftest.py``), shared with
``tests/test_merge.py``.
"""

from __future__ import annotations

import subprocess

import pandas as pd
import pytest

from bench.runner import BASELINE_ARCH
from bench.shards import parse_shard, shard_items
from tests.factories import (
    FAULT_SUITE_ARCHS,
    ROOT,
    fault_sweep_argv,
    read_record_files,
    run_cli,
    stable_leaderboard,
    subprocess_env,
)

COMBOS = [BASELINE_ARCH, *FAULT_SUITE_ARCHS]


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


def test_each_shard_ran_its_slice_only(shard_runs):
    ran = {
        i: sorted(r["arch"] for r in read_record_files(shard_runs / f"shard{i}")) for i in (1, 2, 3)
    }
    assert ran == {
        1: sorted([BASELINE_ARCH, "fault_sleepy"]),
        2: ["fault_conv_a", "fault_conv_c"],
        3: ["fault_conv_b"],
    }


# -- concurrent shards into one folder -----------------------------------------------------------


def test_three_concurrent_shards_give_the_unsharded_leaderboard(tmp_path, shard_runs):
    shared = tmp_path / "shared"
    env = subprocess_env(SEMSEG_TEST_SLEEP_S=None)
    procs = [
        subprocess.Popen(
            fault_sweep_argv(shared, "--shard", f"{i}/3"),
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
    code, _, err = run_cli(["leaderboard", "--results-dir", shared])
    assert code == 0, err
    pd.testing.assert_frame_equal(
        stable_leaderboard(shared), stable_leaderboard(shard_runs / "single")
    )
