"""Regression checks: the latest records of a suite against a committed baseline.

A *baseline* (``results/baselines/<suite>.json``, written by ``python run_bench.py baseline
--suite NAME`` from the records of a complete run) holds, per architecture of the suite, the
figures a later run is compared with: mIoU and pixel accuracy, and the speed section's absolute
latency and throughput next to the *normalised* latency (the model's latency divided by that of
a fixed reference network timed interleaved with it in the same process,
:func:`bench.speed.measure_relative_latency`), with the device, dtype and threads they were
measured under and the commands that produced them.

``check`` compares the newest record of each architecture (same suite, dataset, setting and
device type as the baseline) and gives one row per (architecture, metric):

* **mIoU** (gated): a drop of more than ``tol_miou_pp`` percentage points is a ``REGRESSION``,
  a rise of more than that ``improved``. The CPU suites are deterministic (fixed seeds, fixed
  threads, deterministic algorithms), so on one machine the same code reproduces the baseline's
  mIoU exactly; the tolerance absorbs other CPUs' floating-point rounding.
* **CPU time / ref** and **latency / ref**: the normalised latency, from the process's CPU time
  and from the wall clock. One of them is gated: more than ``tol_speed`` (a fraction) slower is
  a ``REGRESSION``, more than that faster ``improved``; the other is ``info``. Runs on one CPU
  thread gate the CPU-time ratio (it counts the work of the model against the work of the
  reference and nothing else, so time spent waiting for a shared core drops out: in two series
  of 6 processes on a shared 2-core machine it spread by 1.7% and 7.2%, the wall-clock ratio by
  20% and 7.7%, raw milliseconds by 339% and 49%); multi-threaded and CUDA runs gate the
  wall-clock ratio
  (CPU time would miss lost parallelism, and means nothing for a GPU). Speed is only compared
  when the device name, dtype, thread count and reference network match the baseline's
  (``skipped`` otherwise: a ratio measured on another CPU is a different quantity).
* **latency p50 (ms)** (``info``): the absolute figure, shown but never gated: on a shared
  machine it drifts by a factor of two or three between runs of the same code.
* **train loss (final)** (``info``): a deterministic run reproduces it bit for bit, so
  ``info (changed)`` says the computation changed even where mIoU did not move (e.g. a model
  that still predicts background everywhere after a short schedule).

A speed verdict other than ``ok`` from a run with many more minor page faults during timing than
the baseline's gets a note: a process whose allocator hands freed memory back to the OS
page-faults on every call, which the interleaved reference does not cancel.

An architecture of the baseline without a record is ``MISSING``; one whose newest record is an
error is ``ERROR``; both fail the check, as does any ``REGRESSION``. Architectures that are not
in the baseline are listed as ``new`` and do not fail it. Improvements are reported, not failed:
re-record the baseline to bank them.

Reporting reads records and the baseline only; nothing here builds, trains or measures.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from tabulate import tabulate

BASELINE_FORMAT = "semseg-bench-baseline/1"
BASELINES_DIR = Path("results") / "baselines"
DEFAULT_TOL_MIOU_PP = 0.5
DEFAULT_TOL_SPEED = 0.15
FAILING = ("REGRESSION", "MISSING", "ERROR")
PAGE_FAULT_STORM = 1000  # minor faults in the timed rounds that mark a page-faulting process


def default_baseline_path(suite_name: str) -> Path:
    """``results/baselines/<suite>.json`` (relative to the working directory)."""
    return BASELINES_DIR / f"{suite_name}.json"


def parse_tolerance(text: str, option: str = "--tol-speed") -> float:
    """``"15%"`` -> 0.15; a bare number is a fraction (``"0.15"`` -> 0.15).

    Raises:
        ValueError: not a non-negative number, with or without ``%``.
    """
    raw = text.strip()
    scale = 100.0 if raw.endswith("%") else 1.0
    try:
        value = float(raw.rstrip("%")) / scale
    except ValueError:
        value = float("nan")
    if not value >= 0:
        raise ValueError(
            f"{option} expects a non-negative percentage like 15% (or a fraction like 0.15); "
            f"got {text!r}."
        )
    return value


def _device_type(device: str | None) -> str:
    return (device or "").split(":", 1)[0]


def _newest(records: list[dict[str, Any]]) -> dict[str, Any]:
    return max(records, key=lambda r: (r.get("created", ""), r["run_id"]))


def _of_suite(
    records: list[dict[str, Any]], suite: str, dataset: str, setting: str
) -> dict[str, list[dict[str, Any]]]:
    """Records of one (suite, dataset, setting), grouped by architecture."""
    by_arch: dict[str, list[dict[str, Any]]] = {}
    for r in records:
        if (r["suite"], r["dataset"], r.get("setting", "")) == (suite, dataset, setting):
            by_arch.setdefault(r["arch"], []).append(r)
    return by_arch


def _speed_entry(speed: dict[str, Any] | None) -> dict[str, Any] | None:
    if not speed:
        return None
    norm = speed.get("normalised") or {}
    return {
        "device": speed.get("device"),
        "device_name": speed.get("device_name"),
        "dtype": speed.get("dtype"),
        "threads": speed.get("threads"),
        "latency_p50_ms": (speed.get("latency_ms") or {}).get("p50"),
        "throughput_ips": speed.get("throughput_ips"),
        "reference": norm.get("reference"),
        "latency_ratio": norm.get("latency_ratio"),
        "latency_ratio_cv": norm.get("latency_ratio_cv"),
        "cpu_time_ratio": norm.get("cpu_time_ratio"),
        "minor_faults": norm.get("minor_faults", speed.get("minor_faults")),
        "cpu_affinity": norm.get("cpu_affinity"),
    }


def _entry(record: dict[str, Any]) -> dict[str, Any]:
    metrics = record.get("metrics") or {}
    env = record.get("env") or {}
    return {
        "run_id": record["run_id"],
        "created": record.get("created"),
        "kind": record.get("kind"),
        "device": env.get("device"),
        "miou": metrics.get("miou"),
        "pixel_acc": metrics.get("pixel_acc"),
        "final_loss": (record.get("train") or {}).get("final_loss"),
        "speed": _speed_entry(record.get("speed")),
    }


def make_baseline(
    records: list[dict[str, Any]],
    *,
    suite: str,
    dataset: str,
    setting: str,
    archs: list[str],
    command: str,
) -> dict[str, Any]:
    """The baseline of one suite from its newest records.

    Args:
        records: Loaded run records (any suites; the others are ignored).
        suite: Suite name.
        dataset: The suite's dataset.
        setting: The suite's setting key (``SuiteConfig.setting``).
        archs: Architectures the baseline must cover (the ``background`` baseline is added
            when it has a record).
        command: The command that wrote the baseline (stored with it).

    Raises:
        ValueError: an architecture has no record, or its newest record is an error (a
            baseline must be complete and clean).
    """
    by_arch = _of_suite(records, suite, dataset, setting)
    missing = [a for a in archs if a not in by_arch]
    if missing:
        raise ValueError(
            f"cannot write a baseline for suite {suite!r} ({setting}): no records for "
            f"{', '.join(missing)}. Run `python run_bench.py run --suite {suite}` (into the "
            f"same --results-dir) first."
        )
    wanted = [a for a in by_arch if a not in archs and by_arch[a][0].get("kind") == "baseline"]
    entries: dict[str, dict[str, Any]] = {}
    for arch in [*wanted, *archs]:
        newest = _newest(by_arch[arch])
        if newest["status"] != "ok":
            err = newest.get("error") or {}
            first = ((err.get("message") or "").strip().splitlines() or [""])[0]
            raise ValueError(
                f"cannot write a baseline for suite {suite!r}: the newest record of {arch} "
                f"({newest['run_id']}) is an error in stage {err.get('stage')}: {first}. Fix "
                f"it and re-run the suite."
            )
        entries[arch] = _entry(newest)
    chosen = [_newest(by_arch[a]) for a in entries]
    envs = [r.get("env") or {} for r in chosen]
    return {
        "format": BASELINE_FORMAT,
        "suite": suite,
        "dataset": dataset,
        "setting": setting,
        "created": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "command": command,
        "run_commands": sorted({r.get("command") or "" for r in chosen} - {""}),
        "git_commits": sorted({e.get("git_commit") or "" for e in envs} - {""}),
        "torch": sorted({e.get("torch") or "" for e in envs} - {""}),
        "device_names": sorted({e.get("device_name") or "" for e in envs} - {""}),
        "archs": entries,
    }


def load_baseline(path: Path) -> dict[str, Any]:
    """Read a baseline file.

    Raises:
        FileNotFoundError: no such file (the message says how to write one).
        ValueError: not JSON, or not a baseline of this format.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"Baseline {path} does not exist. Write it from a complete run with "
            f"`python run_bench.py baseline --suite NAME [--results-dir DIR]`."
        )
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"Baseline {path} is not valid JSON: {exc}") from None
    if not isinstance(data, dict) or data.get("format") != BASELINE_FORMAT:
        found = data.get("format") if isinstance(data, dict) else type(data).__name__
        raise ValueError(
            f"Baseline {path}: expected format {BASELINE_FORMAT!r}, found {found!r}. Re-write it "
            f"with `python run_bench.py baseline`."
        )
    for key in ("suite", "dataset", "setting", "archs"):
        if key not in data:
            raise ValueError(f"Baseline {path}: missing key {key!r}.")
    return data


@dataclass(frozen=True)
class CheckRow:
    """One line of the check table."""

    arch: str
    metric: str
    baseline: str
    now: str
    delta: str
    verdict: str


@dataclass
class CheckResult:
    """Rows of a check, notes (why something was not compared) and the overall verdict."""

    suite: str
    setting: str
    rows: list[CheckRow] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        """Whether any row is a regression, a missing architecture or an error."""
        return any(row.verdict in FAILING for row in self.rows)

    def count(self, verdict: str) -> int:
        return sum(row.verdict == verdict for row in self.rows)

    def table(self) -> str:
        """The rows as a GitHub-Markdown table."""
        return tabulate(
            [(r.arch, r.metric, r.baseline, r.now, r.delta, r.verdict) for r in self.rows],
            headers=["arch", "metric", "baseline", "now", "delta", "verdict"],
            tablefmt="github",
            disable_numparse=True,
        )

    def summary(self) -> str:
        counts = ", ".join(
            f"{self.count(v)} {v.lower()}"
            for v in ("REGRESSION", "MISSING", "ERROR", "improved", "new")
        )
        verdict = "FAIL" if self.failed else "PASS"
        return f"check {self.suite} ({self.setting}): {counts} -> {verdict}"


def _verdict(delta: float, tol: float, higher_is_better: bool) -> str:
    worse = -delta if higher_is_better else delta
    if worse > tol:
        return "REGRESSION"
    if worse < -tol:
        return "improved"
    return "ok"


def _speed_rows(
    arch: str, base: dict[str, Any], now: dict[str, Any], tol_speed: float, notes: list[str]
) -> list[CheckRow]:
    rows: list[CheckRow] = []
    differs = [
        f"{key} {base.get(key)!r} -> {now.get(key)!r}"
        for key in ("device_name", "dtype", "threads", "reference")
        if base.get(key) != now.get(key)
    ]
    # One thread on the CPU: the CPU-time ratio is the model's work against the reference's,
    # immune to waiting for a core; otherwise (threads, CUDA) the wall-clock ratio is gated.
    single_cpu = all(
        e.get("cpu_time_ratio") is not None
        and e.get("threads") == 1
        and _device_type(e.get("device")) == "cpu"
        for e in (base, now)
    )
    gated = "cpu_time_ratio" if single_cpu else "latency_ratio"
    ratios = [("CPU time / ref", "cpu_time_ratio"), ("latency / ref", "latency_ratio")]
    for metric, key in ratios:
        b_ratio, n_ratio = base.get(key), now.get(key)
        if b_ratio is None or n_ratio is None:
            continue
        rel = n_ratio / b_ratio - 1
        if key != gated:
            verdict = "info"
        elif differs:
            verdict = "skipped"
            notes.append(f"{arch}: speed not compared ({'; '.join(differs)})")
        else:
            verdict = _verdict(rel, tol_speed, higher_is_better=False)
        rows.append(
            CheckRow(
                arch,
                metric,
                f"{b_ratio:.3f}",
                f"{n_ratio:.3f}",
                "" if verdict == "skipped" else f"{100 * rel:+.1f}%",
                verdict,
            )
        )
        b_faults, n_faults = base.get("minor_faults") or 0, now.get("minor_faults") or 0
        if verdict in ("REGRESSION", "improved") and n_faults > max(
            10 * b_faults, PAGE_FAULT_STORM
        ):
            notes.append(
                f"{arch}: {n_faults} minor page faults while timing (baseline {b_faults}): "
                f"this process page-faulted its buffers on every call (e.g. glibc handing "
                f"freed memory back to the OS), which moves the figure by itself; re-run "
                f"before trusting this speed verdict"
            )
    b_ms, n_ms = base.get("latency_p50_ms"), now.get("latency_p50_ms")
    if b_ms is not None and n_ms is not None:
        rows.append(
            CheckRow(
                arch,
                "latency p50 (ms)",
                f"{b_ms:.2f}",
                f"{n_ms:.2f}",
                f"{100 * (n_ms / b_ms - 1):+.1f}%",
                "info",
            )
        )
    return rows


def check(
    records: list[dict[str, Any]],
    baseline: dict[str, Any],
    *,
    tol_miou_pp: float = DEFAULT_TOL_MIOU_PP,
    tol_speed: float = DEFAULT_TOL_SPEED,
    setting: str | None = None,
) -> CheckResult:
    """Compare the newest records of the baseline's suite with the baseline.

    Args:
        records: Loaded run records.
        baseline: A baseline from :func:`load_baseline` / :func:`make_baseline`.
        tol_miou_pp: Allowed mIoU change in percentage points.
        tol_speed: Allowed change of the normalised latency, as a fraction (0.15 = 15%).
        setting: The suite's current setting key; when it differs from the baseline's the
            baseline is stale and the check cannot be made.

    Raises:
        ValueError: a negative tolerance, or ``setting`` differs from the baseline's.
    """
    if tol_miou_pp < 0 or tol_speed < 0:
        raise ValueError(f"tolerances must be >= 0; got {tol_miou_pp} pp and {tol_speed}.")
    suite, dataset = baseline["suite"], baseline["dataset"]
    if setting is not None and setting != baseline["setting"]:
        raise ValueError(
            f"suite {suite!r} now has setting {setting}, but the baseline was recorded for "
            f"{baseline['setting']}: the suite file changed. Run the suite and re-record the "
            f"baseline with `python run_bench.py baseline --suite {suite}`."
        )
    result = CheckResult(suite=suite, setting=baseline["setting"])
    by_arch = _of_suite(records, suite, dataset, baseline["setting"])
    if not by_arch:
        others = sorted({r.get("setting", "") for r in records if r["suite"] == suite})
        result.notes.append(
            f"no records of suite {suite!r} with setting {baseline['setting']}"
            + (f" (records exist for {', '.join(others)})" if others else "")
        )
    for arch, base in baseline["archs"].items():
        dev = _device_type(base.get("device"))
        candidates = [
            r
            for r in by_arch.get(arch, [])
            if not dev or _device_type((r.get("env") or {}).get("device")) == dev
        ]
        if not candidates:
            result.rows.append(CheckRow(arch, "record", "ok", "none", "", "MISSING"))
            continue
        newest = _newest(candidates)
        if newest["status"] != "ok":
            err = newest.get("error") or {}
            first = ((err.get("message") or "").strip().splitlines() or [""])[0]
            result.rows.append(
                CheckRow(
                    arch,
                    "status",
                    "ok",
                    f"error in {err.get('stage')}: {err.get('type')}: {first}"[:120],
                    "",
                    "ERROR",
                )
            )
            continue
        now = _entry(newest)
        if base.get("miou") is not None and now["miou"] is not None:
            delta_pp = 100 * (now["miou"] - base["miou"])
            result.rows.append(
                CheckRow(
                    arch,
                    "mIoU (%)",
                    f"{100 * base['miou']:.3f}",
                    f"{100 * now['miou']:.3f}",
                    f"{delta_pp:+.3f} pp",
                    _verdict(delta_pp, tol_miou_pp, higher_is_better=True),
                )
            )
        b_loss, n_loss = base.get("final_loss"), now["final_loss"]
        if b_loss is not None and n_loss is not None:
            result.rows.append(
                CheckRow(
                    arch,
                    "train loss (final)",
                    f"{b_loss:.6g}",
                    f"{n_loss:.6g}",
                    f"{n_loss - b_loss:+.3g}",
                    "info" if n_loss == b_loss else "info (changed)",
                )
            )
        if base.get("speed") and now["speed"]:
            result.rows.extend(
                _speed_rows(arch, base["speed"], now["speed"], tol_speed, result.notes)
            )
    for arch in sorted(set(by_arch) - set(baseline["archs"])):
        status = _newest(by_arch[arch])["status"]
        result.rows.append(CheckRow(arch, "record", "none", status, "", "new"))
    return result
