"""Tests for the sweep's fault handling (``bench.runner``, ``bench.isolation``, ``bench.locks``).

Faults a sweep survives: SIGKILL then resume, NaN / out-of-memory / stuck / crashing
architectures, and bad input answered with a message.

The architectures come from ``tests/data/fault_plugin.py`` (tiny nets, and nets that fail on
purpose); ``tests/data/fault_suite.yaml`` runs them at 16x16 for 2 steps, so a sweep costs little
more than the Python start-up of its process.
"""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import architectures
from architectures import _registry
from bench.cli import main
from bench.plugins import load_plugin
from bench.runner import BASELINE_ARCH, Sweep
from bench.suites import load_suite
from tests.factories import (
    FAULT_PLUGIN,
    FAULT_SUITE,
    FAULT_SUITE_ARCHS,
    ROOT,
    fault_suite_run,
    fault_sweep_argv,
    read_record_files,
    run_cli,
    run_metrics,
    subprocess_env,
)

# A sweep sets its suite's thread count for the process; entries registered by a test (its
# plugins) are removed after it.
pytestmark = pytest.mark.usefixtures("restore_threads", "restore_registry")

COMBOS = [BASELINE_ARCH, *FAULT_SUITE_ARCHS]


@pytest.fixture
def fault_archs() -> None:
    load_plugin(FAULT_PLUGIN)


def _wait_for_records(folder: Path, archs: set[str], proc: subprocess.Popen, limit_s: float):
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"the sweep ended (code {proc.returncode}) before it could be killed")
        names = {p.name.split("__")[1] for p in folder.glob("*.json")} if folder.is_dir() else set()
        if archs <= names:
            return
        time.sleep(0.2)
    pytest.fail(f"no records for {sorted(archs)} in {folder} after {limit_s} s")


def _assert_every_file_is_a_complete_record(results: Path) -> None:
    for path in (results / "records").iterdir():
        if path.name.startswith("."):  # an atomic write's temporary file, never read
            assert path.suffix == ".tmp", path
            continue
        record = json.loads(path.read_text(encoding="utf-8"))  # raises on partial JSON
        assert record["run_id"] == path.stem


def _default_sigint() -> None:
    # A job started in the background by a non-interactive shell (as CI may run us) inherits
    # SIGINT ignored, and Python then installs no KeyboardInterrupt handler: give the child
    # the default disposition, as a terminal would.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@contextlib.contextmanager
def sleepy_sweep(results: Path) -> Iterator[subprocess.Popen]:
    """A subprocess sweep of the fault suite, yielded once it sits in fault_sleepy (the first
    three combinations written); killed if still alive, and reaped, when the block ends."""
    proc = subprocess.Popen(
        fault_sweep_argv(results),
        cwd=ROOT,
        env=subprocess_env(SEMSEG_TEST_SLEEP_S="600"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_default_sigint,
    )
    try:
        _wait_for_records(results / "records", set(COMBOS[:3]), proc, limit_s=300)
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        proc.stderr.close()


# -- SIGKILL mid-sweep, then resume ---------------------------------------------------------------


def test_sigkill_mid_sweep_then_resume_ends_with_one_ok_record_each(tmp_path, monkeypatch):
    results = tmp_path / "results"
    with sleepy_sweep(results) as proc:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    _assert_every_file_is_a_complete_record(results)
    before = {r["arch"]: r["run_id"] for r in read_record_files(results)}
    assert sorted(before) == sorted(COMBOS[:3])

    monkeypatch.setenv("SEMSEG_TEST_SLEEP_S", "0")
    code, out, err = run_cli(
        [
            *fault_suite_run(results),
            "--resume",
            "-q",
        ]
    )
    assert code == 0, err
    assert "resumed: skipped 2 with ok records: fault_conv_a, fault_conv_b" in out

    _assert_every_file_is_a_complete_record(results)
    records = read_record_files(results)
    assert sorted(r["arch"] for r in records) == sorted(COMBOS)  # exactly one record each
    assert all(r["status"] == "ok" for r in records)
    for r in records:  # the killed run's records were kept, not redone
        if r["arch"] in before:
            assert r["run_id"] == before[r["arch"]]
    assert "fault_conv_c" in (results / "LEADERBOARD.md").read_text(encoding="utf-8")

    # Nothing is left for another resume.
    sweep = Sweep(load_suite(str(FAULT_SUITE)), results_dir=results, device="cpu")
    assert sweep.done_combinations() == set(COMBOS)


def test_resume_ignores_ok_records_of_another_device_type(tmp_path, fault_archs):
    suite = load_suite(str(FAULT_SUITE))
    quiet = {"results_dir": tmp_path, "device": "cpu", "progress": False, "log": lambda m: None}
    Sweep(suite, **quiet).run(["fault_conv_a"])
    (path,) = [p for p in (tmp_path / "records").glob("*fault_conv_a*.json")]
    record = json.loads(path.read_text(encoding="utf-8"))
    record["env"]["device"] = "cuda:0"  # as if the folder came from a GPU machine
    path.write_text(json.dumps(record), encoding="utf-8")
    sweep = Sweep(suite, **quiet)
    assert sweep.done_combinations() == {BASELINE_ARCH}
    again = sweep.run(["fault_conv_a"], resume=True)
    assert again.skipped == []  # the baseline (ok on the cpu) is not re-run, nor listed
    assert [p.name.split("__")[1] for p in again.written] == ["fault_conv_a"]


def test_corrupt_record_stops_resume_and_leaderboard_naming_the_file(tmp_path):
    records = tmp_path / "records"
    records.mkdir()
    bad = records / "fault_suite__fault_conv_a__synthetic__20260101T000000000000Z_0.json"
    bad.write_text('{"schema_version": 1, "run_id": "x", "suite"', encoding="utf-8")  # cut short
    for argv in (
        ["leaderboard", "--results-dir", tmp_path],
        [
            *fault_suite_run(tmp_path),
            "--resume",
            "-q",
        ],
    ):
        code, _, err = run_cli(argv)
        assert code == 2
        assert f"error: Corrupt run record {bad}:" in err
        assert "Delete or restore this file" in err
    assert [p.name for p in records.iterdir()] == [bad.name]  # nothing was run


# -- keep going: NaN, out of memory, stuck and crashing architectures ------------------------------


def test_nan_and_oom_become_error_records_and_the_sweep_goes_on(tmp_path, fault_archs):
    suite = load_suite(str(FAULT_SUITE))
    logs: list[str] = []
    summary = Sweep(suite, results_dir=tmp_path, device="cpu", progress=False, log=logs.append).run(
        ["fault_nan", "fault_oom", "fault_conv_a"]
    )
    by_arch = {r["arch"]: r for r in read_record_files(tmp_path)}
    nan = by_arch["fault_nan"]["error"]
    assert by_arch["fault_nan"]["status"] == "error"
    assert (nan["type"], nan["stage"]) == ("FloatingPointError", "train")
    assert nan["message"].startswith("Training loss became nan at step 1 of 2 (lr ")
    oom = by_arch["fault_oom"]["error"]
    assert (oom["type"], oom["stage"]) == ("RuntimeError", "train")
    assert "can't allocate memory" in oom["message"]
    assert by_arch["fault_conv_a"]["status"] == "ok"
    assert [a for a, _ in summary.failed] == ["fault_nan", "fault_oom"]
    assert logs[0].startswith(
        "[1/3] fault_nan: ERROR in train: FloatingPointError: Training "
        "loss became nan at step 1 of 2"
    )


def test_timeout_per_arch_ends_a_stuck_run_as_an_error(tmp_path, fault_archs):
    """The architecture runs in a spawned child, killed 2 s after it started building."""
    suite = load_suite(str(FAULT_SUITE))
    logs: list[str] = []
    summary = Sweep(
        suite,
        results_dir=tmp_path,
        device="cpu",
        progress=False,
        log=logs.append,
        timeout_per_arch=2.0,
    ).run(["fault_hang"])
    by_arch = {r["arch"]: r for r in read_record_files(tmp_path)}
    hang = by_arch["fault_hang"]
    assert hang["status"] == "error" and by_arch[BASELINE_ARCH]["status"] == "ok"
    assert (hang["error"]["type"], hang["error"]["stage"]) == ("TimeoutError", "train")
    message = (
        "fault_hang did not finish within --timeout-per-arch 2 s (stuck in stage 'train'); its "
        "process was killed and the sweep went on. Raise the limit or lower the suite's budget "
        "if the run was merely slow."
    )
    assert hang["error"]["message"] == message
    assert hang["arch_info"]["title"] == "fault: hang"
    assert summary.failed == [("fault_hang", f"train: TimeoutError: {message}")]
    assert logs == [f"[1/1] fault_hang: ERROR in train: TimeoutError: {message}"]


@pytest.mark.slow
def test_timeout_per_arch_survives_a_crash_and_matches_in_process_numbers(tmp_path, fault_archs):
    """A child killed by a signal is reported; the next architecture runs isolated with the
    same numbers as in-process (about 30 s: one Python start-up per architecture)."""
    suite = load_suite(str(FAULT_SUITE))
    quiet = {"device": "cpu", "progress": False, "log": lambda m: None}
    summary = Sweep(suite, results_dir=tmp_path / "iso", timeout_per_arch=120.0, **quiet).run(
        ["fault_crash", "fault_conv_a"]
    )
    by_arch = {r["arch"]: r for r in read_record_files(tmp_path / "iso")}
    crash = by_arch["fault_crash"]["error"]
    assert (crash["type"], crash["stage"]) == ("ChildProcessError", "train")
    assert crash["message"] == (
        "the process running fault_crash was killed by signal SIGKILL in stage 'train' before "
        "sending its record (a crash in native code, or the OS out-of-memory killer?)."
    )
    assert by_arch["fault_conv_a"]["status"] == "ok"
    assert [a for a, _ in summary.failed] == ["fault_crash"]

    Sweep(suite, results_dir=tmp_path / "inproc", **quiet).run(["fault_conv_a"])
    inproc = next(r for r in read_record_files(tmp_path / "inproc") if r["arch"] == "fault_conv_a")
    assert run_metrics(by_arch["fault_conv_a"]) == run_metrics(inproc)
    assert by_arch["fault_conv_a"]["train"]["loss_curve"] == inproc["train"]["loss_curve"]
    assert by_arch["fault_conv_a"]["complexity"] == inproc["complexity"]


def test_timeout_must_be_positive():
    suite = load_suite(str(FAULT_SUITE))
    with pytest.raises(
        ValueError, match="--timeout-per-arch must be a positive number of seconds; got 0"
    ):
        Sweep(suite, results_dir=Path("unused"), device="cpu", timeout_per_arch=0)


# -- bad input, answered ----------------------------------------------------------------------


def test_archs_naming_nothing_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["run", "--suite", str(FAULT_SUITE), "--archs", " , "])
    assert exc.value.code == 2
    assert (
        "argument --archs: expected a comma-separated list of names; got nothing"
        in capsys.readouterr().err
    )


@pytest.mark.parametrize("value", ["0/3", "4/3", "3", "a/b", "1/0"])
def test_bad_shard_is_a_usage_error(capsys, value):
    with pytest.raises(SystemExit) as exc:
        main(["run", "--suite", str(FAULT_SUITE), "--shard", value])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert (
        f"argument --shard: --shard expects I/N with 1 <= I <= N (shard I of N, counted "
        f"from 1, e.g. 2/3); got {value!r}."
    ) in err


def test_unknown_dataset_in_a_suite_suggests_close_matches(tmp_path):
    suite = tmp_path / "typo.yaml"
    suite.write_text(FAULT_SUITE.read_text().replace("dataset: synthetic", "dataset: synthtic"))
    code, _, err = run_cli(
        ["run", "--suite", suite, "--plugin", FAULT_PLUGIN, "--results-dir", tmp_path / "r", "-q"]
    )
    assert code == 2
    assert "error: Unknown dataset 'synthtic'. Did you mean: synthetic?" in err
    assert not (tmp_path / "r" / "records").exists()


def test_missing_dataset_root_shows_the_expected_layout(tmp_path):
    suite = tmp_path / "camvid.yaml"
    missing = tmp_path / "no_camvid_here"
    suite.write_text(f"dataset: camvid\ndata_root: {missing}\narchs: [fcn8s]\n")
    code, _, err = run_cli(["run", "--suite", suite, "--results-dir", tmp_path / "r", "-q"])
    assert code == 2
    assert f"error: camvid: data root {missing} does not exist. Expected layout:" in err


# -- Ctrl-C, a second sweep into the same folder, files left by a killed run ----------------------


def test_ctrl_c_prints_one_line_with_the_resume_command_and_exits_130(tmp_path):
    results = tmp_path / "results"
    with sleepy_sweep(results) as proc:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("interrupted: 3 of 5 combination(s) finished (")
    assert lines[0].endswith(f"--results-dir {results} -q --resume")
    assert not list((results / ".locks").glob("fault_suite__fault_sleepy__synthetic__*.lock"))


def test_a_second_sweep_skips_what_a_live_one_is_running_then_takes_over_its_lock(
    tmp_path, monkeypatch
):
    results = tmp_path / "results"
    with sleepy_sweep(results) as proc:
        (lock,) = (results / ".locks").glob("fault_suite__fault_sleepy__synthetic__*.lock")
        assert json.loads(lock.read_text())["pid"] == proc.pid
        monkeypatch.setenv("SEMSEG_TEST_SLEEP_S", "0")
        argv = fault_suite_run(results)
        code, _, err = run_cli([*argv, "--archs", "fault_sleepy", "-q"])
        assert code == 0, err
        assert f"not run: fault_sleepy is being run into this folder by pid {proc.pid}" in err
        assert "fault_sleepy" not in {r["arch"] for r in read_record_files(results)}
        proc.send_signal(signal.SIGKILL)  # dies holding the lock
        proc.wait(timeout=60)
    assert lock.exists()
    for name in [n for n in architectures.names() if n.startswith("fault_")]:
        _registry.unregister(name)  # the next call loads the plugin again
    code, _, err = run_cli([*argv, "--archs", "fault_sleepy", "-q"])
    assert code == 0, err  # the dead process's lock was taken over
    assert "not run" not in err
    assert [r["status"] for r in read_record_files(results) if r["arch"] == "fault_sleepy"] == [
        "ok"
    ]
    assert not lock.exists()


def test_samples_left_by_a_run_killed_before_its_record_are_removed(tmp_path, fault_archs):
    results = tmp_path / "results"
    orphan = (
        results
        / "samples"
        / "fault_suite__fault_conv_a__synthetic__20261201T000000000000Z_dead.npz"
    )
    orphan.parent.mkdir(parents=True)
    orphan.write_bytes(b"half a file")
    other = (
        results
        / "samples"
        / "fault_suite__fault_conv_b__synthetic__20261201T000000000000Z_dead.npz"
    )
    other.write_bytes(b"not this sweep's combination")
    logs: list[str] = []
    sweep = Sweep(
        load_suite(str(FAULT_SUITE)),
        results_dir=results,
        device="cpu",
        progress=False,
        log=logs.append,
    )
    summary = sweep.run(["fault_conv_a"])
    assert summary.orphans_removed == [str(orphan)]
    assert not orphan.exists() and other.exists()
    assert f"fault_conv_a: removed {orphan} (no record names it)" in logs
    (written,) = [r for r in read_record_files(results) if r["arch"] == "fault_conv_a"]
    assert (results / written["samples"]["file"]).is_file()


def test_locks_are_per_setting_so_other_seeds_and_methods_run_beside(tmp_path):
    """Two settings of one (suite, arch, dataset) (e.g. seeds, semi-supervised methods) train
    other models: each has its own lock; the same setting is refused while held."""
    from bench import locks

    me = locks.this_process("python run_bench.py run --suite s", "2026-12-07T00:00:00Z")
    # Another live process on this host (pid 1 is always alive) holds seed 0's lock.
    other = locks.LockHolder(pid=1, host=me.host, started="earlier", command="first")
    seed0 = locks.lock_path(tmp_path, "s__enet__synthetic__64x64-seed0-advsemi-f0.125")
    seed1 = locks.lock_path(tmp_path, "s__enet__synthetic__64x64-seed1-advsemi-f0.125")
    assert seed0 != seed1
    assert locks.acquire(seed0, other) is None
    assert locks.acquire(seed1, me) is None  # not blocked by seed 0's lock
    assert locks.acquire(seed0, me) == other  # the same combination: held, and by whom
    locks.release(seed1, me)
    locks.release(seed0, other)
    assert not seed0.exists() and not seed1.exists()
