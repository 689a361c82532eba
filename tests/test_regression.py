"""The regression gate: ``baseline`` and ``check`` (bench.regression and the CLI).

Unit tests build small records by hand; one end-to-end test plants a regression (a broken skip
connection, through the plugin ``tests/data/fault_plugin.py``) and checks that ``check`` exits 1
with the right row. Another pins the committed smoke baseline to the smoke suite, so CI's gate
cannot silently compare against a stale file.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.devices import CpuInfo
from bench.records import RunRecord
from bench.regression import (
    BASELINE_FORMAT,
    check,
    default_baseline_path,
    load_baseline,
    make_baseline,
    parse_tolerance,
)
from bench.speed import REFERENCE_NAME
from bench.suites import load_suite
from tests.factories import (
    FAULT_PLUGIN,
    REGRESS_SUITE,
    ROOT,
    minimal_record,
    read_record_files,
    run_cli,
    run_metrics,
)

SETTING = "32x32-steps30-fake"
CPU = "AMD EPYC 7B13"


def gate_record(
    arch: str,
    *,
    miou: float = 0.5,
    created: str = "2026-01-01T00:00:00Z",
    status: str = "ok",
    ratio: float | None = 4.0,
    ms: float = 10.0,
    device_name: str = CPU,
    threads: int = 1,
    setting: str = SETTING,
    faults: int = 0,
    cpu_ratio: float | None = None,
    loss: float = 0.75,
    capability: str | None = "AVX2",
) -> RunRecord:
    """A record of suite ``s`` with the fields the gate reads (``ratio`` None: no speed;
    ``capability`` None: CPU not recorded)."""
    speed = None
    if ratio is not None:
        speed = {
            "device": "cpu",
            "device_name": device_name,
            "dtype": "fp32",
            "threads": threads,
            "latency_ms": {"p50": ms},
            "throughput_ips": 1000 / ms,
            "normalised": {
                "reference": REFERENCE_NAME,
                "latency_ratio": ratio,
                "latency_ratio_cv": 0.1,
                "minor_faults": faults,
                "cpu_time_ratio": cpu_ratio,
                "cpu_affinity": [1],
            },
        }
    cpu = None
    if capability is not None:
        cpu = CpuInfo(CPU, "AuthenticAMD", 25, 1, 1, ("avx2",), capability, "3.12.0", "2024.2", {})
    ok = status == "ok"
    return minimal_record(
        arch,
        suite="s",
        setting=setting,
        created=created,
        run_id=f"s__{arch}__synthetic__{created}",
        kind="baseline" if arch == "background" else "model",
        status=status,
        error=None
        if ok
        else {
            "type": "FloatingPointError",
            "stage": "train",
            "traceback": "",
            "message": "Training loss became nan at step 3 of 30 (lr 0.01). Lower train.lr.",
        },
        metrics={"miou": miou, "pixel_acc": 0.9} if ok else None,
        train={"final_loss": loss} if ok and arch != "background" else None,
        speed=speed if ok else None,
        env={
            "device": "cpu",
            "device_name": device_name,
            "torch": "2.x",
            "git_commit": "abc",
            "threads": threads,
            "cpu": None if cpu is None else cpu.to_dict(),
        },
        command="python run_bench.py run --suite s",
    )


def baseline_of(records: list[RunRecord], archs: list[str]) -> dict:
    return make_baseline(
        records,
        suite="s",
        dataset="synthetic",
        setting=SETTING,
        archs=archs,
        command="python run_bench.py baseline --suite s",
    )


BASE_RECORDS = [
    gate_record("background", miou=0.1, ratio=None),
    gate_record("a", miou=0.50),
    gate_record("b", miou=0.40, ratio=2.0),
    gate_record("c", miou=0.30, ratio=8.0),
]


def rows_of(result) -> dict[tuple[str, str], tuple[str, str, str, str]]:
    return {(r.arch, r.metric): (r.baseline, r.now, r.delta, r.verdict) for r in result.rows}


def later(arch: str, **kw) -> RunRecord:
    return gate_record(arch, created="2026-02-01T00:00:00Z", **kw)


# -- tolerances -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value"), [("15%", 0.15), ("0.15", 0.15), ("0", 0.0), (" 40% ", 0.4), ("2.5%", 0.025)]
)
def test_parse_tolerance(text: str, value: float) -> None:
    assert parse_tolerance(text) == pytest.approx(value)


@pytest.mark.parametrize("text", ["-5%", "abc", "", "nan"])
def test_parse_tolerance_rejects(text: str) -> None:
    with pytest.raises(
        ValueError,
        match="--tol-speed expects a non-negative percentage like "
        "15% \\(or a fraction like 0.15\\)",
    ):
        parse_tolerance(text)


# -- baseline ---------------------------------------------------------------------------------


def test_baseline_holds_the_newest_figures_and_the_commands() -> None:
    older = gate_record("a", miou=0.45, created="2025-01-01T00:00:00Z")
    base = baseline_of([older, *BASE_RECORDS], ["a", "b", "c"])
    assert base["format"] == BASELINE_FORMAT
    assert (base["suite"], base["dataset"], base["setting"]) == ("s", "synthetic", SETTING)
    assert base["command"] == "python run_bench.py baseline --suite s"
    assert base["run_commands"] == ["python run_bench.py run --suite s"]
    assert sorted(base["archs"]) == ["a", "b", "background", "c"]
    a = base["archs"]["a"]
    assert a["miou"] == 0.50 and a["run_id"] == BASE_RECORDS[1].run_id
    assert a["speed"]["latency_ratio"] == 4.0 and a["speed"]["latency_p50_ms"] == 10.0
    assert a["speed"]["reference"] == REFERENCE_NAME and a["speed"]["threads"] == 1
    assert base["archs"]["background"]["speed"] is None
    assert json.loads(json.dumps(base)) == base


def test_baseline_refuses_missing_or_failed_architectures() -> None:
    with pytest.raises(
        ValueError,
        match=r"cannot write a baseline for suite 's' "
        r"\(32x32-steps30-fake\): no records for d, e\. Run "
        r"`python run_bench.py run --suite s`",
    ):
        baseline_of(BASE_RECORDS, ["a", "d", "e"])
    failed = [*BASE_RECORDS, later("b", status="error")]
    with pytest.raises(
        ValueError,
        match=r"the newest record of b \(.*\) is an error in stage "
        r"train: Training loss became nan at step 3 of 30",
    ):
        baseline_of(failed, ["a", "b"])


def test_load_baseline_errors(tmp_path: Path) -> None:
    missing = tmp_path / "nope.json"
    with pytest.raises(
        FileNotFoundError,
        match=r"Baseline .*nope.json does not exist\. Write it "
        r"from a complete run with `python run_bench.py "
        r"baseline --suite NAME",
    ):
        load_baseline(missing)
    bad = tmp_path / "bad.json"
    bad.write_text('{"format": "other"}')
    with pytest.raises(
        ValueError, match="expected format 'semseg-bench-baseline/1', found 'other'"
    ):
        load_baseline(bad)
    bad.write_text("{")
    with pytest.raises(ValueError, match="is not valid JSON"):
        load_baseline(bad)
    assert default_baseline_path("smoke") == Path("results/baselines/smoke.json")


# -- check ------------------------------------------------------------------------------------


def test_same_records_pass() -> None:
    base = baseline_of(BASE_RECORDS, ["a", "b", "c"])
    result = check(BASE_RECORDS, base)
    assert not result.failed
    assert {r.verdict for r in result.rows} == {"ok", "info"}
    rows = rows_of(result)
    assert rows[("a", "mIoU (%)")] == ("50.000", "50.000", "+0.000 pp", "ok")
    assert rows[("a", "latency / ref")] == ("4.000", "4.000", "+0.0%", "ok")
    assert rows[("a", "latency p50 (ms)")] == ("10.00", "10.00", "+0.0%", "info")
    assert ("background", "latency / ref") not in rows
    assert rows[("a", "train loss (final)")] == ("0.75", "0.75", "+0", "info")
    assert ("background", "train loss (final)") not in rows
    header = result.table().splitlines()[0]
    assert [c.strip() for c in header.split("|")[1:-1]] == [
        "arch",
        "metric",
        "baseline",
        "now",
        "delta",
        "verdict",
    ]
    assert result.summary() == (
        f"check s ({SETTING}): 0 regression, 0 missing, 0 error, 0 improved, 0 new -> PASS"
    )


def test_miou_beyond_the_tolerance_fails_and_improvements_are_reported() -> None:
    base = baseline_of(BASE_RECORDS, ["a", "b", "c"])
    now = [
        *BASE_RECORDS,
        later("a", miou=0.494),
        later("b", miou=0.406, ratio=2.0),
        later("c", miou=0.2960, ratio=8.0),
    ]
    result = check(now, base, tol_miou_pp=0.5)
    rows = rows_of(result)
    assert rows[("a", "mIoU (%)")] == ("50.000", "49.400", "-0.600 pp", "REGRESSION")
    assert rows[("b", "mIoU (%)")] == ("40.000", "40.600", "+0.600 pp", "improved")
    assert rows[("c", "mIoU (%)")] == ("30.000", "29.600", "-0.400 pp", "ok")
    assert result.failed and result.count("REGRESSION") == 1 and result.count("improved") == 1
    assert result.summary().endswith("1 regression, 0 missing, 0 error, 1 improved, 0 new -> FAIL")
    assert not check(now, base, tol_miou_pp=0.7).failed


def test_speed_is_gated_on_the_normalised_ratio_not_on_milliseconds() -> None:
    base = baseline_of(BASE_RECORDS, ["a", "b", "c"])
    now = [
        *BASE_RECORDS,
        later("a", ms=30.0, ratio=4.2),  # a 3x slower machine: ratio +5%
        later("b", miou=0.40, ms=10.0, ratio=2.4),  # same ms, 20% slower than the reference
        later("c", miou=0.30, ms=10.0, ratio=6.0),
    ]  # 25% faster
    rows = rows_of(check(now, base, tol_speed=0.15))
    assert rows[("a", "latency / ref")] == ("4.000", "4.200", "+5.0%", "ok")
    assert rows[("a", "latency p50 (ms)")] == ("10.00", "30.00", "+200.0%", "info")
    assert rows[("b", "latency / ref")] == ("2.000", "2.400", "+20.0%", "REGRESSION")
    assert rows[("c", "latency / ref")] == ("8.000", "6.000", "-25.0%", "improved")
    assert not check(now, base, tol_speed=0.25).failed


def test_a_changed_training_loss_is_shown_but_not_gated() -> None:
    base = baseline_of(BASE_RECORDS, ["a", "b", "c"])
    now = [*BASE_RECORDS, later("a", loss=0.7512)]
    result = check(now, base)
    assert rows_of(result)[("a", "train loss (final)")] == (
        "0.75",
        "0.7512",
        "+0.0012",
        "info (changed)",
    )
    assert not result.failed


def test_one_thread_cpu_runs_gate_on_the_cpu_time_ratio() -> None:
    base_records = [
        gate_record("a", cpu_ratio=5.0),
        gate_record("b", miou=0.4, cpu_ratio=5.0),
        gate_record("c", miou=0.3, cpu_ratio=5.0, threads=2),
    ]
    base = baseline_of(base_records, ["a", "b", "c"])
    assert base["archs"]["a"]["speed"]["cpu_time_ratio"] == 5.0
    now = [
        *base_records,
        later("a", ratio=5.6, cpu_ratio=5.1),  # waited for a core: wall +40%, work +2%
        later("b", miou=0.4, ratio=4.2, cpu_ratio=6.0),  # 20% more work
        later("c", miou=0.3, ratio=5.6, cpu_ratio=5.0, threads=2),
    ]  # 2 threads: wall gated
    rows = rows_of(check(now, base, tol_speed=0.15))
    assert rows[("a", "CPU time / ref")] == ("5.000", "5.100", "+2.0%", "ok")
    assert rows[("a", "latency / ref")] == ("4.000", "5.600", "+40.0%", "info")
    assert rows[("b", "CPU time / ref")] == ("5.000", "6.000", "+20.0%", "REGRESSION")
    assert rows[("b", "latency / ref")][3] == "info"
    assert rows[("c", "CPU time / ref")][3] == "info"
    assert rows[("c", "latency / ref")] == ("4.000", "5.600", "+40.0%", "REGRESSION")


def test_a_page_faulting_run_is_named_next_to_its_speed_verdict() -> None:
    base = baseline_of(BASE_RECORDS, ["a", "b", "c"])
    now = [
        *BASE_RECORDS,
        later("b", miou=0.40, ratio=3.0, faults=56458),
        later("c", miou=0.30, ratio=9.6, faults=200),
    ]
    result = check(now, base)
    assert rows_of(result)[("b", "latency / ref")][3] == "REGRESSION"
    assert result.notes == [
        "b: 56458 minor page faults while timing (baseline 0): this process page-faulted its "
        "buffers on every call (e.g. glibc handing freed memory back to the OS), which moves "
        "the figure by itself; re-run before trusting this speed verdict"
    ]


def test_speed_from_another_cpu_or_thread_count_is_not_compared() -> None:
    base = baseline_of(BASE_RECORDS, ["a", "b", "c"])
    now = [
        *BASE_RECORDS,
        later("a", ratio=9.0, device_name="Intel Xeon"),
        later("b", miou=0.40, ratio=9.0, threads=4),
    ]
    result = check(now, base)
    rows = rows_of(result)
    assert rows[("a", "latency / ref")] == ("4.000", "9.000", "", "skipped")
    assert rows[("b", "latency / ref")][3] == "skipped"
    assert not result.failed
    assert "a: speed not compared (device_name 'AMD EPYC 7B13' -> 'Intel Xeon')" in result.notes
    assert "b: speed not compared (threads 1 -> 4)" in result.notes


def test_missing_and_failed_architectures_fail_and_new_ones_are_listed() -> None:
    base = baseline_of(BASE_RECORDS, ["a", "b", "c"])
    now = [r for r in BASE_RECORDS if r.arch != "c"] + [
        later("b", status="error"),
        gate_record("d"),
    ]
    result = check(now, base)
    rows = rows_of(result)
    assert rows[("c", "record")] == ("ok", "none", "", "MISSING")
    assert rows[("b", "status")] == (
        "ok",
        "error in train: FloatingPointError: Training loss became nan at step 3 of 30 "
        "(lr 0.01). Lower train.lr.",
        "",
        "ERROR",
    )
    assert rows[("d", "record")] == ("none", "ok", "", "new")
    assert result.failed
    assert (result.count("MISSING"), result.count("ERROR"), result.count("new")) == (1, 1, 1)


def test_other_settings_are_not_compared_and_a_stale_baseline_is_refused() -> None:
    base = baseline_of(BASE_RECORDS, ["a", "b", "c"])
    others = [r.replace(setting="64x64-other") for r in BASE_RECORDS]
    result = check(others, base)
    assert result.count("MISSING") == 4
    assert result.notes == [
        f"no records of suite 's' with setting {SETTING} (records exist for 64x64-other)"
    ]
    with pytest.raises(
        ValueError,
        match="suite 's' now has setting 64x64-other, but the "
        "baseline was recorded for 32x32-steps30-fake: the "
        "suite file changed",
    ):
        check(BASE_RECORDS, base, setting="64x64-other")


# -- the gate catches a planted regression --------------------------------------------------------


def test_check_catches_a_broken_skip_connection(
    tmp_path, monkeypatch, restore_registry, restore_threads
):
    good, broken = tmp_path / "good", tmp_path / "broken"
    baseline = tmp_path / "regress.json"
    monkeypatch.delenv("SEMSEG_TEST_BREAK_SKIP", raising=False)
    code, _, err = run_cli(
        ["run", "--suite", REGRESS_SUITE, "--plugin", FAULT_PLUGIN, "--results-dir", good, "-q"]
    )
    assert code == 0, err
    code, out, err = run_cli(
        ["baseline", "--suite", REGRESS_SUITE, "--results-dir", good, "--out", baseline]
    )
    assert code == 0, err
    assert out.startswith(f"wrote {baseline}: 3 entries of suite regress_suite")
    code, out, err = run_cli(
        [
            "check",
            "--suite",
            REGRESS_SUITE,
            "--baseline",
            baseline,
            "--results-dir",
            good,
            "--tol-miou",
            "0.5",
            "--tol-speed",
            "1000%",  # speed is not what this test plants (see the unit tests above)
        ]
    )
    assert code == 0, out + err

    # The same code again, with the skip connection broken (the plugin reads the variable when
    # it builds the model): the run is deterministic, so fault_conv_a reproduces exactly and
    # fault_skipnet loses accuracy.
    monkeypatch.setenv("SEMSEG_TEST_BREAK_SKIP", "1")
    code, _, err = run_cli(["run", "--suite", REGRESS_SUITE, "--results-dir", broken, "-q"])
    assert code == 0, err
    code, out, err = run_cli(
        [
            "check",
            "--suite",
            REGRESS_SUITE,
            "--baseline",
            baseline,
            "--results-dir",
            broken,
            "--tol-miou",
            "0.5",
            "--tol-speed",
            "1000%",
        ]
    )
    assert code == 1
    rows = {
        tuple(c.strip() for c in line.split("|")[1:-1])
        for line in out.splitlines()
        if line.startswith("| fault_") or line.startswith("| background")
    }
    by_key = {(r[0], r[1]): r for r in rows}
    skip = by_key[("fault_skipnet", "mIoU (%)")]
    assert skip[5] == "REGRESSION"
    assert float(skip[4].split()[0]) < -2.0  # several points of mIoU lost
    assert by_key[("fault_conv_a", "mIoU (%)")][4:] == ("+0.000 pp", "ok")
    assert by_key[("background", "mIoU (%)")][4:] == ("+0.000 pp", "ok")
    assert "check regress_suite" in err and "1 regression" in err and "-> FAIL" in err, out
    first = {r["arch"]: run_metrics(r) for r in read_record_files(good)}
    second = {r["arch"]: run_metrics(r) for r in read_record_files(broken)}
    assert first["fault_conv_a"] == second["fault_conv_a"]  # bit-identical, run to run


def test_check_of_another_suites_baseline_is_refused(tmp_path):
    path = tmp_path / "b.json"
    path.write_text(json.dumps(baseline_of(BASE_RECORDS, ["a"])))
    (tmp_path / "records").mkdir()
    code, _, err = run_cli(
        ["check", "--suite", "smoke", "--baseline", path, "--results-dir", tmp_path]
    )
    assert code == 2
    assert f"error: --baseline {path} is for suite 's', not 'smoke'." in err


# -- the committed baseline of CI's gate ---------------------------------------------------------


def test_committed_smoke_baseline_matches_the_smoke_suite():
    base = load_baseline(ROOT / "results" / "baselines" / "smoke.json")
    suite = load_suite("smoke")
    assert (base["suite"], base["dataset"], base["setting"]) == (
        "smoke",
        suite.dataset,
        suite.setting,
    )
    assert sorted(base["archs"]) == sorted(["background", *suite.archs])
    assert "run_bench.py baseline --suite smoke" in base["command"]
    assert any("run_bench.py run --suite smoke" in c for c in base["run_commands"])
    for arch in suite.archs:
        entry = base["archs"][arch]
        assert 0 < entry["miou"] <= 1
        assert entry["final_loss"] > 0
        assert entry["speed"]["reference"] == REFERENCE_NAME
        assert entry["speed"]["latency_ratio"] > 0 and entry["speed"]["threads"] == 1


# -- CPU kernels and threads ------------------------------------------------------------------


def test_on_the_baselines_cpu_kernels_the_strict_tolerance_applies() -> None:
    base = baseline_of(BASE_RECORDS, ["a", "b", "c"])
    result = check([*BASE_RECORDS, later("a", miou=0.492)], base, tol_miou_pp=0.5)
    assert rows_of(result)[("a", "mIoU (%)")] == ("50.000", "49.200", "-0.800 pp", "REGRESSION")
    assert not any("across CPU kernels" in n for n in result.notes)


@pytest.mark.parametrize(
    ("capability", "shown"), [("AVX512", "AuthenticAMD/25/1/AVX512"), (None, "unknown")]
)
def test_other_or_unknown_cpu_kernels_use_the_measured_cross_cpu_tolerance(capability, shown):
    """Other kernels round differently (the smoke models moved by up to 0.61 pp across 7 kernel
    sets), so 0.8 pp is within the cross-CPU tolerance, 1.2 pp is not; speed is not compared."""
    base = baseline_of(BASE_RECORDS, ["a", "b", "c"])
    drift = later("a", miou=0.492, capability=capability, ratio=9.0)
    broken = later("b", miou=0.388, capability=capability)
    result = check([*BASE_RECORDS, drift, broken], base, tol_miou_pp=0.1)
    rows = rows_of(result)
    assert rows[("a", "mIoU (%)")][3] == "ok"
    assert rows[("b", "mIoU (%)")] == ("40.000", "38.800", "-1.200 pp", "REGRESSION")
    assert rows[("a", "latency / ref")][3] == "skipped"  # 9.0 vs 4.0 would be a regression
    assert (
        f"a: mIoU compared across CPU kernels (AuthenticAMD/25/1/AVX2 -> {shown}), "
        "tolerance 1 pp" in result.notes
    )
    assert any(n.startswith("a: speed not compared (cpu_kernels ") for n in result.notes)


def test_accuracy_from_another_thread_count_is_not_compared() -> None:
    base = baseline_of(BASE_RECORDS, ["a", "b", "c"])
    result = check([*BASE_RECORDS, later("a", miou=0.30, threads=2)], base)
    assert rows_of(result)[("a", "mIoU (%)")][3] == "skipped"
    assert not result.failed
    assert result.notes[0].startswith("a: accuracy not compared: the run used 2 threads")
