"""Tests for bench.provenance: the env section and the command line of a record."""

from __future__ import annotations

import json
import subprocess

import pytest
import torch

from bench import provenance
from bench.devices import cpu_info, run_flags
from bench.provenance import command_line, environment
from bench.records import Env
from tests.factories import ROOT


def _head_commit() -> str | None:
    """This checkout's commit, read by git directly (None outside a git checkout)."""
    res = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    return res.stdout.strip() if res.returncode == 0 else None


def test_environment_describes_this_process():
    provenance.git_state.cache_clear()  # read the commit now, not when an earlier test did
    try:
        env = environment("cpu", seed=3, matmul_gflops=12.5)
    finally:
        provenance.git_state.cache_clear()
    assert env.torch == torch.__version__
    assert env.device == "cpu" and env.gpu_model is None
    assert env.device_name == env.cpu_model == cpu_info().model_name
    assert env.seed == 3 and env.matmul_gflops_per_s == 12.5
    assert env.threads == torch.get_num_threads()
    assert env.flags.deterministic_algorithms == torch.are_deterministic_algorithms_enabled()
    with run_flags("cpu", None):  # a sweep's flags: deterministic algorithms on the CPU
        assert environment("cpu", seed=3, matmul_gflops=None).flags.deterministic_algorithms
    assert env.cpu == cpu_info()
    assert env.cpu.capability == torch.backends.cpu.get_cpu_capability()
    assert env.git_commit == _head_commit()
    json.dumps(env.to_dict(), allow_nan=False)  # a record must be able to hold it
    assert Env.from_dict(env.to_dict()) == env


def test_environment_without_git_records_none(monkeypatch):
    def no_git(*args, **kwargs):
        raise FileNotFoundError("git")

    monkeypatch.setattr(provenance.subprocess, "run", no_git)
    provenance.git_state.cache_clear()
    try:
        env = environment("cpu", seed=0, matmul_gflops=None)
    finally:
        provenance.git_state.cache_clear()
    assert env.git_commit is None and env.git_dirty is None


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

    monkeypatch.setattr(provenance.subprocess, "run", fake_git)
    provenance.git_state.cache_clear()
    try:
        first = environment("cpu", seed=0, matmul_gflops=None)
        second = environment("cpu", seed=1, matmul_gflops=None)
    finally:
        provenance.git_state.cache_clear()
    assert first.git_commit == second.git_commit == "a" * 40
    assert first.git_dirty is False
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
    monkeypatch.setattr(provenance.sys, "argv", ["run_bench.py", "leaderboard"])
    assert command_line() == "python run_bench.py leaderboard"
