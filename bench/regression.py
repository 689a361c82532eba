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

* **mIoU** (gated): a drop of more than the tolerance (percentage points) is a ``REGRESSION``,
  a rise of more than that ``improved``. The CPU suites are deterministic (fixed seeds, fixed
  threads, deterministic algorithms), so on the baseline's CPU kernels (the same
  :attr:`bench.devices.CpuInfo.kernel_key`: vendor, family, model, torch's CPU capability, kernel
  pins) and thread count the same code reproduces its mIoU exactly and ``tol_miou_pp`` applies;
  other or unknown kernels round differently and get ``tol_miou_cross_cpu_pp`` (measured in the
  README, "Regression gate"). A run with another thread count is not compared (``skipped``).
* **CPU time / ref** and **latency / ref**: the normalised latency, from the process's CPU time
  and from the wall clock. One of them is gated: more than ``tol_speed`` (a fraction) slower is
  a ``REGRESSION``, more than that faster ``improved``; the other is ``info``. Runs on one CPU
  thread gate the CPU-time ratio (it counts the work of the model against the work of the
  reference and nothing else, so time spent waiting for a shared core drops out: in two series
  of 6 processes on a shared 2-core machine it spread by 1.7% and 7.2%, the wall-clock ratio by
  20% and 7.7%, raw milliseconds by 339% and 49%); multi-threaded and CUDA runs gate the
  wall-clock ratio (CPU time would miss lost parallelism, and means nothing for a GPU). Speed is only compared
  when the device name, CPU kernels, dtype, thread count and reference network match the
  baseline's (``skipped`` otherwise: a ratio measured on another CPU is a different quantity).
* **latency p50 (ms)** (``info``): the absolute figure, shown but never gated: on a shared
  machine it drifts by a factor of two or three between runs of the same code.
* **train loss (final)** (``info``): a deterministic run on the same kernels reproduces it bit
  for bit, so ``info (changed)`` says the computation changed even where mIoU did not move
  (e.g. a model that still predicts background everywhere after a short schedule).

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

from bench.devices import device_type
from bench.errors import ConfigError, MissingFileError, RecordError
from bench.records import RunRecord

BASELINE_FORMAT = "semseg-bench-baseline/1"
BASELINES_DIR = Path("results") / "baselines"
DEFAULT_TOL_MIOU_PP = 0.5
# Across CPU kernels: the smoke models' mIoU spread 0.61 pp over 7 kernel sets (README,
# "Regression gate"); 1.0 pp leaves room and still fails a broken LR-ASPP skip (-1.14 pp).
DEFAULT_TOL_MIOU_CROSS_CPU_PP = 1.0
DEFAULT_TOL_SPEED = 0.15
FAILING = ("REGRESSION", "MISSING", "ERROR")
PAGE_FAULT_STORM = 1000  # minor faults in the timed rounds that mark a page-faulting process


def default_baseline_path(suite_name: str) -> Path:
    """``results/baselines/<suite>.json`` (relative to the working directory)."""
    return BASELINES_DIR / f"{suite_name}.json"


def parse_tolerance(text: str, option: str = "--tol-speed") -> float:
    """Parses a tolerance: ``"15%"`` -> 0.15; a bare number is a fraction (``"0.15"`` -> 0.15).

    Args:
        text: The tolerance as typed.
        option: The option that gave it, named in the message.

    Returns:
        The tolerance as a fraction.

    Raises:
        ConfigError: Not a non-negative number, with or without ``%``.
    """
    raw = text.strip()
    scale = 100.0 if raw.endswith("%") else 1.0
    try:
        value = float(raw.rstrip("%")) / scale
    except ValueError:
        value = float("nan")
    if not value >= 0:
        raise ConfigError(
            f"{option} expects a non-negative percentage like 15% (or a fraction like 0.15); "
            f"got {text!r}."
        )
    return value


def _newest(records: list[RunRecord]) -> RunRecord:
    return max(records, key=lambda r: r.newest_key)


def _of_suite(
    records: list[RunRecord], suite: str, dataset: str, setting: str
) -> dict[str, list[RunRecord]]:
    """Records of one (suite, dataset, setting), grouped by architecture."""
    by_arch: dict[str, list[RunRecord]] = {}
    for r in records:
        if (r.suite, r.dataset, r.setting) == (suite, dataset, setting):
            by_arch.setdefault(r.arch, []).append(r)
    return by_arch


def kernel_key(record: RunRecord) -> str | None:
    """The CPU kernels a CPU record ran with (vendor/family/model/capability/pins), else None.

    Two CPU records with the same key ran the same kernels and round the same way; None means
    unknown (a GPU run, or a record from before schema 2 recorded the CPU).
    """
    if record.device_type != "cpu" or record.env is None or record.env.cpu is None:
        return None
    return record.env.cpu.kernel_key


def _speed_entry(record: RunRecord) -> dict[str, Any] | None:
    speed = record.speed
    if speed is None:
        return None
    norm = speed.normalised
    latency = speed.latency_ms
    return {
        "device": speed.device,
        "device_name": speed.device_name,
        "cpu_kernels": kernel_key(record),
        "dtype": speed.dtype,
        "threads": speed.threads,
        "latency_p50_ms": latency.p50 if latency else None,
        "throughput_ips": speed.throughput_ips,
        "reference": norm.reference if norm else None,
        "latency_ratio": norm.latency_ratio if norm else None,
        "latency_ratio_cv": norm.latency_ratio_cv if norm else None,
        "cpu_time_ratio": norm.cpu_time_ratio if norm else None,
        "minor_faults": norm.minor_faults
        if norm and norm.minor_faults is not None
        else (speed.minor_faults),
        "cpu_affinity": list(norm.cpu_affinity) if norm and norm.cpu_affinity else None,
    }


def _entry(record: RunRecord) -> dict[str, Any]:
    env = record.env
    return {
        "run_id": record.run_id,
        "created": record.created,
        "kind": record.kind,
        "device": env.device if env else None,
        "threads": env.threads if env else None,
        "cpu_kernels": kernel_key(record),
        "miou": record.miou,
        "pixel_acc": record.metrics.pixel_acc if record.metrics else None,
        "final_loss": record.train.final_loss if record.train else None,
        "speed": _speed_entry(record),
    }


def make_baseline(
    records: list[RunRecord],
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
        ConfigError: An architecture has no record, or its newest record is an error (a
            baseline must be complete and clean).
    """
    by_arch = _of_suite(records, suite, dataset, setting)
    missing = [a for a in archs if a not in by_arch]
    if missing:
        raise ConfigError(
            f"cannot write a baseline for suite {suite!r} ({setting}): no records for "
            f"{', '.join(missing)}. Run `python run_bench.py run --suite {suite}` (into the "
            f"same --results-dir) first."
        )
    wanted = [a for a in by_arch if a not in archs and by_arch[a][0].kind == "baseline"]
    entries: dict[str, dict[str, Any]] = {}
    for arch in [*wanted, *archs]:
        newest = _newest(by_arch[arch])
        if newest.error is not None or not newest.ok:
            err = newest.error
            first = ((err.message if err else "").strip().splitlines() or [""])[0]
            raise ConfigError(
                f"cannot write a baseline for suite {suite!r}: the newest record of {arch} "
                f"({newest.run_id}) is an error in stage {err.stage if err else None}: {first}. Fix "
                f"it and re-run the suite."
            )
        entries[arch] = _entry(newest)
    chosen = [_newest(by_arch[a]) for a in entries]
    envs = [r.env for r in chosen if r.env is not None]
    return {
        "format": BASELINE_FORMAT,
        "suite": suite,
        "dataset": dataset,
        "setting": setting,
        "created": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "command": command,
        "run_commands": sorted({r.command for r in chosen} - {""}),
        "git_commits": sorted({e.git_commit or "" for e in envs} - {""}),
        "torch": sorted({e.torch or "" for e in envs} - {""}),
        "device_names": sorted({e.device_name or "" for e in envs} - {""}),
        "cpu_kernels": sorted({kernel_key(r) or "" for r in chosen} - {""}),
        "archs": entries,
    }


def load_baseline(path: Path) -> dict[str, Any]:
    """Reads a baseline file written by :func:`make_baseline`.

    Args:
        path: The baseline file.

    Returns:
        The baseline (``format``, ``suite``, ``dataset``, ``setting``, ``archs``, ...).

    Raises:
        MissingFileError: No such file (the message says how to write one).
        RecordError: Not JSON, or not a baseline of this format.
    """
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(
            f"Baseline {path} does not exist. Write it from a complete run with "
            f"`python run_bench.py baseline --suite NAME [--results-dir DIR]`."
        )
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise RecordError(f"Baseline {path} is not valid JSON: {exc}") from None
    if not isinstance(data, dict) or data.get("format") != BASELINE_FORMAT:
        found = data.get("format") if isinstance(data, dict) else type(data).__name__
        raise RecordError(
            f"Baseline {path}: expected format {BASELINE_FORMAT!r}, found {found!r}. Re-write it "
            f"with `python run_bench.py baseline`."
        )
    for key in ("suite", "dataset", "setting", "archs"):
        if key not in data:
            raise RecordError(
                f"Baseline {path}: missing key {key!r}. Re-write it with `python run_bench.py "
                f"baseline`."
            )
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
        """Returns how many rows have ``verdict`` (e.g. ``"REGRESSION"``)."""
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
        """Returns the last line of a check: how many rows of each verdict, then PASS or FAIL."""
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
        for key in ("device_name", "cpu_kernels", "dtype", "threads", "reference")
        if base.get(key) != now.get(key)
    ]
    # One thread on the CPU: the CPU-time ratio is the model's work against the reference's,
    # immune to waiting for a core; otherwise (threads, CUDA) the wall-clock ratio is gated.
    single_cpu = all(
        e.get("cpu_time_ratio") is not None
        and e.get("threads") == 1
        and device_type(e.get("device")) == "cpu"
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


def _accuracy_rows(
    arch: str,
    base: dict[str, Any],
    now: dict[str, Any],
    tol_same: float,
    tol_cross: float,
    notes: list[str],
) -> list[CheckRow]:
    """Returns the mIoU row (gated) and the final training loss row (info) of one architecture."""
    rows: list[CheckRow] = []
    if base.get("threads") is not None and now["threads"] != base.get("threads"):
        notes.append(
            f"{arch}: accuracy not compared: the run used {now['threads']} threads, the "
            f"baseline {base.get('threads')} (reductions split differently, so mIoU moves; "
            f"the suite's `threads` fixes it)"
        )
        return [CheckRow(arch, "mIoU (%)", "", "", "", "skipped")]
    same_kernels = (
        base.get("cpu_kernels") is not None and base.get("cpu_kernels") == now["cpu_kernels"]
    )
    tol = tol_same if same_kernels or device_type(now["device"]) != "cpu" else tol_cross
    if not same_kernels and device_type(now["device"]) == "cpu":
        notes.append(
            f"{arch}: mIoU compared across CPU kernels ({base.get('cpu_kernels') or 'unknown'} "
            f"-> {now['cpu_kernels'] or 'unknown'}), tolerance {tol:g} pp"
        )
    if base.get("miou") is not None and now["miou"] is not None:
        delta_pp = 100 * (now["miou"] - base["miou"])
        rows.append(
            CheckRow(
                arch,
                "mIoU (%)",
                f"{100 * base['miou']:.3f}",
                f"{100 * now['miou']:.3f}",
                f"{delta_pp:+.3f} pp",
                _verdict(delta_pp, tol, higher_is_better=True),
            )
        )
    b_loss, n_loss = base.get("final_loss"), now["final_loss"]
    if b_loss is not None and n_loss is not None:
        rows.append(
            CheckRow(
                arch,
                "train loss (final)",
                f"{b_loss:.6g}",
                f"{n_loss:.6g}",
                f"{n_loss - b_loss:+.3g}",
                "info" if n_loss == b_loss else "info (changed)",
            )
        )
    return rows


def check(
    records: list[RunRecord],
    baseline: dict[str, Any],
    *,
    tol_miou_pp: float = DEFAULT_TOL_MIOU_PP,
    tol_speed: float = DEFAULT_TOL_SPEED,
    tol_miou_cross_cpu_pp: float = DEFAULT_TOL_MIOU_CROSS_CPU_PP,
    setting: str | None = None,
) -> CheckResult:
    """Compare the newest records of the baseline's suite with the baseline.

    Args:
        records: Loaded run records.
        baseline: A baseline from :func:`load_baseline` / :func:`make_baseline`.
        tol_miou_pp: Allowed mIoU change in percentage points between runs on the same CPU
            kernels (same vendor, family, model and torch CPU capability; see
            :attr:`bench.devices.CpuInfo.kernel_key`), where a deterministic run reproduces
            the baseline exactly.
        tol_speed: Allowed change of the normalised latency, as a fraction (0.15 = 15%).
        tol_miou_cross_cpu_pp: Allowed mIoU change when the kernels differ or are unknown
            (other CPUs round differently; README, "Regression gate", gives the measurement).
        setting: The suite's current setting key; when it differs from the baseline's the
            baseline is stale and the check cannot be made.

    Raises:
        ConfigError: a negative tolerance, or ``setting`` differs from the baseline's.
    """
    if min(tol_miou_pp, tol_speed, tol_miou_cross_cpu_pp) < 0:
        raise ConfigError(
            f"tolerances must be >= 0; got {tol_miou_pp} pp, {tol_miou_cross_cpu_pp} pp "
            f"(other CPUs) and {tol_speed}."
        )
    suite, dataset = baseline["suite"], baseline["dataset"]
    if setting is not None and setting != baseline["setting"]:
        raise ConfigError(
            f"suite {suite!r} now has setting {setting}, but the baseline was recorded for "
            f"{baseline['setting']}: the suite file changed. Run the suite and re-record the "
            f"baseline with `python run_bench.py baseline --suite {suite}`."
        )
    result = CheckResult(suite=suite, setting=baseline["setting"])
    by_arch = _of_suite(records, suite, dataset, baseline["setting"])
    if not by_arch:
        others = sorted({r.setting for r in records if r.suite == suite})
        result.notes.append(
            f"no records of suite {suite!r} with setting {baseline['setting']}"
            + (f" (records exist for {', '.join(others)})" if others else "")
        )
    for arch, base in baseline["archs"].items():
        dev = device_type(base.get("device"))
        candidates = [
            r
            for r in by_arch.get(arch, [])
            if not dev or device_type(r.env and r.env.device) == dev
        ]
        if not candidates:
            result.rows.append(CheckRow(arch, "record", "ok", "none", "", "MISSING"))
            continue
        newest = _newest(candidates)
        if newest.error is not None or not newest.ok:
            err = newest.error
            text = f"error in {err.stage}: {err.type}: " if err else "error: "
            first = ((err.message if err else "").strip().splitlines() or [""])[0]
            result.rows.append(CheckRow(arch, "status", "ok", (text + first)[:120], "", "ERROR"))
            continue
        now = _entry(newest)
        result.rows.extend(
            _accuracy_rows(arch, base, now, tol_miou_pp, tol_miou_cross_cpu_pp, result.notes)
        )
        if base.get("speed") and now["speed"]:
            result.rows.extend(
                _speed_rows(arch, base["speed"], now["speed"], tol_speed, result.notes)
            )
    for arch in sorted(set(by_arch) - set(baseline["archs"])):
        status = _newest(by_arch[arch]).status
        result.rows.append(CheckRow(arch, "record", "none", status, "", "new"))
    return result
