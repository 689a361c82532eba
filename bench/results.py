"""Run records: one JSON file per (suite, architecture, dataset, setting) run.

The schema stands alone: a user's script can read ``results/records/*.json`` with ``json``
alone. ``schema_version`` 1, top-level keys:

==============  ==========================================================================
key             content
==============  ==========================================================================
schema_version  1
run_id          ``<suite>__<arch>__<dataset>__<UTC time, microseconds>_<8 hex>`` (file stem)
created         UTC ISO-8601 time the record was written
kind            ``"model"`` or ``"baseline"`` (e.g. arch ``background``: class 0 everywhere)
suite, setting  suite name and a short key of the settings the suite fixed (resolution, ...)
arch            registry name; ``arch_info``: title, paper, year, family, paper figures
dataset         dataset name; ``dataset_info``: num_classes, class_names, palette, ignore_index
protocol        evaluation protocol: split, mode (whole|slide), scales, flip, resolution,
                num_images; file-backed datasets add crop/stride/short_side, label_resolution
                and train_augment (the training transforms)
status          ``"ok"`` or ``"error"``
error           null, or {type, message, traceback, stage}
metrics         miou, pixel_acc, mean_acc, fwiou, mean_dice (fractions in [0, 1]),
                per_class_iou / per_class_acc / per_class_dice {class name: value or null}
complexity      params, trainable_params, macs, gmacs, gflops (= 2 x gmacs), input_shape,
                counter, counter_version, unsupported_ops, crosscheck, disagreement, mode
speed           device, device_name, dtype, channels_last, input_shape, batch_size,
                latency_ms {p50, p90, p99, mean, std, cv, n}, throughput_ips, ...,
                peak_mem_mb, achieved_gflops_per_s, efficiency, matmul_gflops_per_s,
                minor_faults, threads, cpu_affinity, normalised {reference, latency_ratio,
                cpu_time_ratio, ...}: latency relative to a reference network timed
                interleaved in the same process (what ``check`` compares; see bench.speed)
train           steps, seconds, final_loss, batch_size, optimizer, lr, loss_curve
env             torch, torchvision, python, platform, device, device_name, cpu_model,
                gpu_model, threads, git_commit, git_dirty, seed, matmul_gflops_per_s, flags
command         the command line that produced the record
samples         null, or {file, inputs_file}: predictions for the qualitative figure
==============  ==========================================================================

Any of metrics/complexity/speed/train may be null (error records; a suite without speed).
Files are written atomically (temporary file in the same folder, then ``os.replace``), so a
killed run never leaves a partial record.
"""

from __future__ import annotations

import functools
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 1
RECORDS_DIR = "records"
REQUIRED_KEYS = ("schema_version", "run_id", "suite", "arch", "dataset", "status")


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def new_run_id(suite: str, arch: str, dataset: str, when: datetime | None = None) -> str:
    """Unique id: names never collide, even for re-runs within the same second.

    The time has microseconds so that ids of the same (suite, arch, dataset) sort in creation
    order: ``latest_ok`` and the leaderboard break ties of the second-resolution ``created``
    by ``run_id``, and a random suffix alone would pick either of two same-second runs.
    """
    when = when or utc_now()
    return f"{suite}__{arch}__{dataset}__{when:%Y%m%dT%H%M%S%fZ}_{uuid.uuid4().hex[:8]}"


def write_json_atomic(path: Path, data: Any) -> Path:
    """Write JSON to ``path`` via a temporary file and ``os.replace`` (atomic on POSIX)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=1, sort_keys=True, allow_nan=False)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_record(results_dir: Path, record: dict[str, Any]) -> Path:
    """Validate and write one record to ``<results_dir>/records/<run_id>.json``."""
    validate_record(record, source="record to write")
    return write_json_atomic(Path(results_dir) / RECORDS_DIR / f"{record['run_id']}.json", record)


def validate_record(record: Any, source: str) -> None:
    """Raise ``ValueError`` naming ``source`` if ``record`` is not a schema-1 record."""
    if not isinstance(record, dict):
        raise ValueError(f"{source}: expected a JSON object, found {type(record).__name__}.")
    missing = [k for k in REQUIRED_KEYS if k not in record]
    if missing:
        raise ValueError(f"{source}: not a run record, missing keys {missing}.")
    if record["schema_version"] != SCHEMA_VERSION:
        raise ValueError(
            f"{source}: schema_version {record['schema_version']!r}, this harness reads "
            f"{SCHEMA_VERSION}. Upgrade semseg-bench or regenerate the record."
        )
    if record["status"] not in ("ok", "error"):
        raise ValueError(f"{source}: status must be 'ok' or 'error', found {record['status']!r}.")


def load_records(results_dir: Path) -> list[dict[str, Any]]:
    """Load every record under ``<results_dir>/records``, sorted by run_id.

    Raises:
        FileNotFoundError: the folder does not exist.
        ValueError: a file is not valid JSON or not a record (the message names the file).
    """
    folder = Path(results_dir) / RECORDS_DIR
    if not folder.is_dir():
        raise FileNotFoundError(
            f"No records folder at {folder}. Run `python run_bench.py run` to create records, "
            f"or pass --results-dir pointing at a folder that has a records/ subfolder."
        )
    records = []
    for path in sorted(folder.glob("*.json")):
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ValueError(
                f"Corrupt run record {path}: {exc}. Delete or restore this file (records are "
                f"written atomically, so this is damage from outside the harness)."
            ) from None
        validate_record(record, source=str(path))
        records.append(record)
    return sorted(records, key=lambda r: r["run_id"])


def latest_ok(records: list[dict[str, Any]]) -> dict[tuple[str, str, str, str], dict[str, Any]]:
    """The newest ``ok`` record per (suite, arch, dataset, setting)."""
    out: dict[tuple[str, str, str, str], dict[str, Any]] = {}
    for r in sorted(records, key=lambda r: (r.get("created", ""), r["run_id"])):
        if r["status"] == "ok":
            out[(r["suite"], r["arch"], r["dataset"], r.get("setting", ""))] = r
    return out


def _git(*args: str) -> str | None:
    try:
        res = subprocess.run(
            ["git", *args],
            capture_output=True,
            text=True,
            timeout=10,
            cwd=Path(__file__).resolve().parent,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return res.stdout.strip() if res.returncode == 0 else None


@functools.cache
def git_state() -> tuple[str | None, bool | None]:
    """``(commit, dirty)`` of the checkout this process imported its code from, read once: the
    first record of a sweep and its last name the same code even if a commit lands meanwhile.
    Dirty means tracked files other than ``results/`` differ from the commit (a sweep's own
    output, or an edited leaderboard, is not a change to the code that ran)."""
    status = _git(
        "status", "--porcelain", "--untracked-files=no", "--", ":(top)", ":(top,exclude)results"
    )
    return _git("rev-parse", "HEAD"), None if status is None else bool(status)


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def environment(device: str, seed: int, matmul_gflops: float | None) -> dict[str, Any]:
    """Provenance of a run: versions, hardware, git state, seed and backend flags."""
    import torch
    import torchvision

    # The named device ("cuda:1"), not the current one.
    gpu = torch.cuda.get_device_name(torch.device(device)) if device.startswith("cuda") else None
    commit, dirty = git_state()
    return {
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "device": device,
        "device_name": gpu or _cpu_model(),
        "cpu_model": _cpu_model(),
        "gpu_model": gpu,
        "threads": torch.get_num_threads(),
        "git_commit": commit,
        "git_dirty": dirty,
        "seed": seed,
        "matmul_gflops_per_s": matmul_gflops,
        "flags": {
            "deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
            "cudnn_benchmark": torch.backends.cudnn.benchmark,
            "tf32_matmul": torch.backends.cuda.matmul.allow_tf32,
        },
    }


def command_line(argv: list[str] | None = None) -> str:
    """The command that produced a run, as a user would type it."""
    argv = sys.argv if argv is None else argv
    prog = Path(argv[0]).name if argv else "run_bench.py"
    if prog == "run_bench.py":
        prog = "python run_bench.py"
    return " ".join([prog, *(shlex.quote(a) for a in argv[1:])])


def baseline_title(class0: str) -> str:
    """Title of the constant class-0 baseline row: "all background (baseline)" where class 0 is
    the background, else it names the class (CamVid's class 0 is ``sky``)."""
    if class0 == "background":
        return "all background (baseline)"
    return f"all {class0} (class 0, baseline)"
