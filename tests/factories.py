"""Shared test helpers (not a test module): imported as ``from tests.factories import ...``.

Fixtures live in ``tests/conftest.py``; the plain helpers that they and the tests share live
here, once.

* Paths: :data:`ROOT` (the checkout), :data:`TEST_DATA` and the suite and plugin files in it.
* Run records: :func:`minimal_record` (the header and only the sections a test gives),
  :func:`run_record` (a complete FIXTURE record from a few hand-chosen values, for what reads
  records) and :func:`fixture_sweep`; :func:`schema_1` writes a record as schema version 1
  did; :func:`read_record_files` reads what the harness wrote
  with ``json`` alone, as a user's script would; :func:`stable_leaderboard` is the part of a
  leaderboard that does not depend on when the runs were made.
* Files and entries: :func:`write_suite` (a suite file), :func:`fixture_arch_info` (a valid
  ``ArchInfo`` for a temporary entry).
* The CLI and subprocesses: :func:`run_cli` (``main(argv)`` with stdout and stderr captured),
  :func:`subprocess_env` (the environment of a ``run_bench.py`` child process),
  :func:`device_error` (the one message for a bad device).
* Process state: :func:`torch_threads` and :func:`registry_restored` restore torch's thread count
  and the architecture registry (the fixtures of ``tests/conftest.py`` use them at every scope).
* Models: :func:`meta_build` builds an entry on the meta device (shapes only);
  :func:`fits_a_fixed_batch` trains a model on one batch.
* Timing: :class:`FakeClock` (time moves only when a test says so) and
  :func:`touch_fresh_pages` (a known number of minor page faults).
"""

from __future__ import annotations

import contextlib
import io
import json
import mmap
import os
import re
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import nn

from bench.records import SCHEMA_VERSION, RunRecord, load_records, new_run_id

if TYPE_CHECKING:
    import pandas as pd

    from architectures import ArchInfo

ROOT = Path(__file__).resolve().parents[1]
"""The checkout under test (``tests/conftest.py`` puts it first on ``sys.path``)."""
TEST_DATA = ROOT / "tests" / "data"
TINY_SUITE = TEST_DATA / "tiny_suite.yaml"
"""Two mobile torchvision entries, 3 steps at 32x32 (tests of the sweep, the CLI, checkpoints)."""
FAULT_SUITE = TEST_DATA / "fault_suite.yaml"
"""The architectures of :data:`FAULT_PLUGIN` at 16x16 for 2 steps (faults, shards, merge)."""
FAULT_PLUGIN = TEST_DATA / "fault_plugin.py"
"""Tiny nets, and nets that fail on purpose (NaN, out of memory, hang, crash, sleep)."""
FAULT_SUITE_ARCHS = ("fault_conv_a", "fault_conv_b", "fault_sleepy", "fault_conv_c")

# The built-in datasets in registration order (what `list datasets` shows), written out here,
# not read from the code; all but the synthetic set are file-backed.
BUILT_IN_DATASETS = (
    "synthetic",
    "camvid",
    "voc2012",
    "voc2012_aug",
    "cityscapes",
    "ade20k",
    "nyudv2",
    "sunrgbd",
    "siftflow",
    "isbi2012",
)
FILE_DATASETS = BUILT_IN_DATASETS[1:]
"""The ``archs`` of :data:`FAULT_SUITE`, in its order (the baseline runs before them)."""
REGRESS_SUITE = TEST_DATA / "regress_suite.yaml"
"""The regression gate's end-to-end suite (a broken skip connection is planted through
:data:`FAULT_PLUGIN`)."""

FIXTURE_CLASSES = ("background", "disc", "square")
"""Class names of :func:`run_record`'s dataset."""


# --------------------------------------------------------------------------- run records


def run_metrics(record: dict[str, Any]) -> dict[str, Any]:
    """A record's ``metrics`` less the per-image file's name (it holds the run id): what two runs
    of one setting must agree on (the file's sha256 included: its bytes are deterministic)."""
    return {k: v for k, v in record["metrics"].items() if k != "per_image_file"}


def read_record_files(results_dir: Path) -> list[dict[str, Any]]:
    """Every ``records/*.json`` of ``results_dir`` as parsed JSON, sorted by ``run_id``."""
    files = sorted((Path(results_dir) / "records").glob("*.json"))
    return sorted(
        (json.loads(p.read_text(encoding="utf-8")) for p in files), key=lambda r: r["run_id"]
    )


def minimal_record(
    arch: str = "fcn8s",
    *,
    suite: str = "smoke",
    dataset: str = "synthetic",
    setting: str = "64x64",
    created: str = "2026-11-27T06:16:00Z",
    run_id: str | None = None,
    kind: str = "model",
    status: str = "ok",
    source: str | None = None,
    **sections: Any,
) -> RunRecord:
    """A run record of the current schema with the header and only the ``sections`` given.

    Every section left out is absent (None), as in a record of a run that stopped early; a
    record with ``status="error"`` and no ``error`` section gets ``{"message": "boom", ...}``.

    Args:
        arch: The record's architecture.
        suite: Its suite.
        dataset: Its dataset.
        setting: Its setting id.
        created: Its ISO-8601 creation time.
        run_id: Its id (default: a fresh, unique :func:`bench.records.new_run_id`).
        kind: ``"model"`` or ``"baseline"``.
        status: ``"ok"`` or ``"error"``.
        source: How a validation message names the record (default: the type's own).
        **sections: Sections and other top-level fields (``metrics={"miou": 0.5}``, ...).

    Returns:
        The record, through :meth:`RunRecord.from_dict` (the one validator).
    """
    data: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "run_id": run_id or new_run_id(suite, arch, dataset),
        "created": created,
        "kind": kind,
        "suite": suite,
        "setting": setting,
        "arch": arch,
        "dataset": dataset,
        "status": status,
        **sections,
    }
    if status == "error" and data.get("error") is None:
        data["error"] = {"message": "boom", "type": "RuntimeError", "stage": "train"}
    if source is None:
        return RunRecord.from_dict(data)
    return RunRecord.from_dict(data, source=source)


def schema_1(record: RunRecord) -> dict[str, Any]:
    """``record`` as schema version 1 wrote it: without the fields schema 2 added (``amendments``,
    ``complexity.params_with_aux``, ``env.cpu``), for tests of reading older records."""
    data = record.to_dict()
    data["schema_version"] = 1
    data.pop("amendments")
    if data["complexity"]:
        data["complexity"].pop("params_with_aux")
    if data["env"]:
        data["env"].pop("cpu")
    return data


def fixture_cpu(
    capability: str = "AVX2", *, model: int = 49, pins: dict[str, str] | None = None
) -> dict[str, Any]:
    """A FIXTURE ``env.cpu`` object (an AMD family-23 CPU) for :func:`run_record`'s ``cpu``."""
    return {
        "model_name": "AMD EPYC",
        "vendor": "AuthenticAMD",
        "family": 23,
        "model": model,
        "stepping": 0,
        "flags": ["avx", "avx2", "fma"] + (["avx512f"] if capability == "AVX512" else []),
        "capability": capability,
        "onednn": "3.5.3",
        "mkl": None,
        "kernel_env": dict(pins or {}),
    }


def run_record(
    arch: str = "fcn8s",
    *,
    suite: str = "quick",
    dataset: str = "synthetic",
    setting: str = "res64-steps10-b2",
    created: str = "2026-11-27T06:16:00Z",
    run_id: str | None = None,
    kind: str = "model",
    status: str = "ok",
    title: str | None = None,
    miou: float | None = 0.5,
    per_class: list[float | None] | None = None,
    params: int | None = 1_000_000,
    gflops: float | None = 1.0,
    res: tuple[int, int] = (64, 64),
    device: str = "cpu",
    dtype: str | None = "fp32",
    p50: float = 10.0,
    error_message: str = "boom",
    paper: str | None = "1411.4038",
    paper_params: int | None = None,
    paper_gflops: float | None = None,
    paper_resolution: list[int] | None = None,
    paper_convention: str | None = None,
    unsupported: dict[str, int] | None = None,
    disagreement: bool = False,
    cpu: dict[str, Any] | None = None,
    samples: bool = False,
) -> RunRecord:
    """A FIXTURE run record (every number is chosen by hand; none is a measurement).

    ``status="error"`` gives a failed run (no metrics, complexity, speed or training);
    ``dtype=None`` leaves speed unmeasured (the device is then ``env.device``); ``params=None``
    leaves complexity out; ``cpu`` is ``env.cpu`` (see :func:`fixture_cpu`); ``samples`` points
    at ``samples/<run_id>.npz`` and ``samples/<suite>__<dataset>__inputs.npz``.
    """
    stamp = created.replace("-", "").replace(":", "")
    run_id = run_id or f"{suite}__{arch}__{dataset}__{stamp}_{device}{dtype or ''}{status}"
    ok = status == "ok"
    metrics = None
    if ok and miou is not None:
        values = per_class if per_class is not None else [0.9, miou, None]
        metrics = {
            "miou": miou,
            "pixel_acc": 0.9,
            "mean_acc": 0.8,
            "fwiou": 0.85,
            "mean_dice": 0.7,
            "per_class_iou": dict(zip(FIXTURE_CLASSES, values, strict=True)),
            "per_class_acc": dict(zip(FIXTURE_CLASSES, values, strict=True)),
        }
    complexity = None
    if ok and params is not None:
        complexity = {
            "params": params,
            "params_with_aux": params,
            "trainable_params": params,
            "macs": None if gflops is None else int(gflops / 2 * 1e9),
            "gmacs": None if gflops is None else gflops / 2,
            "gflops": gflops,
            "input_shape": [1, 3, *res],
            "counter": "fvcore",
            "counter_version": "0.1.5",
            "unsupported_ops": unsupported if unsupported is not None else {},
            "disagreement": disagreement,
            "mode": "eval",
        }
    speed = None
    if ok and dtype is not None:
        speed = {
            "device": device,
            "device_name": "NVIDIA H100" if device.startswith("cuda") else "Fixture CPU",
            "dtype": dtype,
            "channels_last": False,
            "input_shape": [1, 3, *res],
            "batch_size": 1,
            "latency_ms": {"p50": p50, "p90": p50 * 1.1, "p99": p50 * 1.2, "cv": 0.01, "n": 50},
            "throughput_ips": 1000.0 / p50 * 4,
            "throughput_batch_size": 8,
            "peak_mem_mb": 100.0,
            "peak_mem_kind": "cuda_max_allocated"
            if device.startswith("cuda")
            else "cpu_rss_delta_sampled",
            "achieved_gflops_per_s": 50.0,
            "efficiency": 0.25,
            "matmul_gflops_per_s": 200.0,
            "threads": 2,
        }
    sections = {
        "arch_info": {
            "title": title or arch.upper(),
            "paper": paper,
            "year": 2015,
            "family": "fcn",
            "paper_params": paper_params,
            "paper_gflops": paper_gflops,
            "paper_resolution": paper_resolution,
            "paper_flops_convention": paper_convention,
        },
        "dataset_info": {
            "num_classes": 3,
            "class_names": list(FIXTURE_CLASSES),
            "palette": [[0, 0, 0], [255, 0, 0], [0, 255, 0]],
            "ignore_index": 255,
        },
        "protocol": {
            "split": "val",
            "mode": "whole",
            "scales": [1.0],
            "flip": False,
            "resolution": list(res),
            "num_images": 20,
        },
        "error": None
        if ok
        else {"type": "RuntimeError", "message": error_message, "stage": "train"},
        "metrics": metrics,
        "complexity": complexity,
        "speed": speed,
        "train": {
            "steps": 10,
            "seconds": 1.5,
            "final_loss": 0.3,
            "batch_size": 2,
            "optimizer": "adamw",
            "lr": 0.001,
        }
        if ok
        else None,
        "env": {
            "torch": "2.5.1",
            "torchvision": "0.20.1",
            "python": "3.11.7",
            "device": device,
            "device_name": "Fixture CPU",
            "threads": 2,
            "git_commit": "abc1234",
            "git_dirty": False,
            "seed": 0,
            "matmul_gflops_per_s": 200.0,
            "cpu": cpu,
        },
        "command": f"python run_bench.py run --suite {suite}",
        "samples": {
            "file": f"samples/{run_id}.npz",
            "inputs_file": f"samples/{suite}__{dataset}__inputs.npz",
        }
        if samples
        else None,
    }
    return minimal_record(
        arch,
        suite=suite,
        dataset=dataset,
        setting=setting,
        created=created,
        run_id=run_id,
        kind=kind,
        status=status,
        source=f"fixture {run_id}",
        **sections,
    )


def fixture_sweep() -> list[RunRecord]:
    """A small FIXTURE sweep for reporting tests: an older duplicate, a shown and two hidden
    failures, a baseline and a CUDA record (see the comments for what each one exercises)."""
    return [
        run_record(
            "fcn8s",
            title="FCN-8s",
            miou=0.6123,
            created="2026-11-27T06:16:00Z",
            params=134_270_000,
            gflops=2.5,
            p50=12.3,
        ),
        # Older run of the same combination: hidden by the newer one above.
        run_record("fcn8s", title="FCN-8s", miou=0.40, created="2026-11-20T00:00:00Z"),
        run_record(
            "segnet",
            title="SegNet",
            miou=0.70,
            p50=30.0,
            paper="1511.00561",
            disagreement=True,
            unsupported={"aten::_convolution": 2},
        ),
        # Failed with no ok record: shown at the bottom.
        run_record(
            "enet",
            status="error",
            dtype=None,
            error_message="CUDA out of memory\nTried to allocate 2 GiB",
        ),
        # Failed, but a later run succeeded: hidden. (And a failure after the success: hidden.)
        run_record(
            "unet",
            status="error",
            dtype=None,
            created="2026-11-25T00:00:00Z",
            error_message="unet first try failed",
        ),
        run_record("unet", title="U-Net", miou=0.55, p50=20.0),
        run_record(
            "unet",
            status="error",
            dtype=None,
            created="2026-11-28T00:00:00Z",
            error_message="unet flaky later failure",
        ),
        run_record(
            "background",
            kind="baseline",
            title="Background (all class 0)",
            miou=0.10,
            per_class=[0.30, 0.0, None],
            params=None,
            dtype=None,
            paper=None,
        ),
        run_record("fcn8s", title="FCN-8s", miou=0.60, device="cuda", dtype="fp16", p50=1.5),
    ]


STABLE_LEADERBOARD_COLUMNS = (
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
)
"""Leaderboard columns that depend neither on the clock nor on when a run happened."""


def stable_leaderboard(results_dir: Path) -> pd.DataFrame:
    """The leaderboard frame of ``results_dir`` reduced to :data:`STABLE_LEADERBOARD_COLUMNS`:
    equal for two folders that hold the same runs, made at other times or on other shards."""
    from bench.reporting.frame import leaderboard_frame

    return leaderboard_frame(load_records(results_dir))[list(STABLE_LEADERBOARD_COLUMNS)]


# --------------------------------------------------------------------------- files and entries


def write_suite(folder: Path, text: str, name: str = "mine.yaml") -> Path:
    """Writes a suite file (YAML ``text``) as ``folder / name``; the stem is the suite's name.

    Returns:
        The file's path.
    """
    path = Path(folder) / name
    path.write_text(text, encoding="utf-8")
    return path


def fixture_arch_info(name: str, **fields: Any) -> ArchInfo:
    """A valid FIXTURE ``ArchInfo`` for a temporary entry (``title="Temp"``, FCN's paper id,
    2015, family ``"test"``); ``fields`` override or add any field."""
    from architectures import ArchInfo

    values: dict[str, Any] = {
        "name": name,
        "title": "Temp",
        "paper": "1411.4038",
        "year": 2015,
        "family": "test",
    }
    return ArchInfo(**(values | fields))


# --------------------------------------------------------------------------- CLI, subprocesses


def run_cli(argv: Sequence[object]) -> tuple[int, str, str]:
    """``bench.cli.main(argv)`` in this process with stdout and stderr captured.

    Usable where pytest's ``capsys`` is not (module-scoped fixtures). Each item of ``argv`` is
    passed as ``str(item)``, so paths can be given as they are.

    Args:
        argv: The command line after ``run_bench.py``.

    Returns:
        ``(exit status, stdout, stderr)``.
    """
    from bench.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in argv])
    return code, out.getvalue(), err.getvalue()


def tiny_suite_argv(results: object) -> list[object]:
    """``run --suite <tiny suite> --results-dir <results>``: the start of most CLI test runs."""
    return ["run", "--suite", TINY_SUITE, "--results-dir", results]


def fault_suite_run(results: object, *extra: object) -> list[object]:
    """``run --suite <fault suite> --plugin <fault plugin> --results-dir <results> ...``."""
    return [
        "run",
        "--suite",
        FAULT_SUITE,
        "--plugin",
        FAULT_PLUGIN,
        "--results-dir",
        results,
        *extra,
    ]


def fault_sweep_argv(results: Path, *extra: str) -> list[str]:
    """The command of a ``run_bench.py`` child sweeping the fault suite into ``results``.

    Args:
        results: The child's ``--results-dir``.
        *extra: More arguments (``--shard 2/3``, ...), before ``-q``.

    Returns:
        ``[python, run_bench.py, run, --suite, <fault suite>, ...]``, to run with ``cwd=ROOT``.
    """
    return [sys.executable, "run_bench.py", *map(str, fault_suite_run(results, *extra)), "-q"]


def subprocess_env(**changes: str | None) -> dict[str, str]:
    """This process's environment for a ``run_bench.py`` child: one OpenMP thread, unbuffered.

    Args:
        **changes: Variables to set; a value of None removes the variable.

    Returns:
        The environment, ``os.environ`` left untouched.
    """
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    for name, value in changes.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


def device_error(device: str, option: str = "device") -> str:
    """The one message (as a ``pytest.raises(match=...)`` regex) that ``bench.devices`` gives
    for a device that is neither ``cpu`` nor ``cuda[:N]``; every measurement shares it."""
    return re.escape(f"{option} must be cpu or cuda[:N]; got {device!r}.")


# --------------------------------------------------------------------------- process state


@contextlib.contextmanager
def torch_threads(threads: int | None = None) -> Iterator[None]:
    """Runs the block with ``threads`` intra-op threads, then restores the count.

    Args:
        threads: The count to set; None keeps the current one (and still restores it, for code
            under test that sets its own, e.g. a sweep whose suite says ``threads: 1``).
    """
    before = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@contextlib.contextmanager
def registry_restored() -> Iterator[None]:
    """Restores the architecture registry and the weights table (entries and their order)
    after the block, removing what the block registered (temporary entries, ``--plugin``
    files)."""
    from architectures import _registry, _weights

    tables = (_registry._REGISTRY, _weights._WEIGHTS)
    snapshots = [dict(t) for t in tables]
    try:
        yield
    finally:
        for table, snapshot in zip(tables, snapshots, strict=True):
            table.clear()
            table.update(snapshot)


# --------------------------------------------------------------------------- models


def meta_build(name: str, num_classes: int, *, harness: bool = False, **options: Any) -> nn.Module:
    """Builds a registered entry on the meta device: shapes only, no memory, no initialisation
    (FCN-8s in 0.06 s instead of seconds).

    Args:
        name: The registry name.
        num_classes: Output classes.
        harness: Build what the harness runs (``bench.models.build_model``: the entry inside
            ``PadCrop``) instead of the bare entry (``architectures.build``).
        **options: The entry's build options.

    Returns:
        The model; its parameters and buffers are meta tensors.
    """
    import architectures
    from bench.models import build_model

    build = build_model if harness else architectures.build
    with torch.device("meta"):
        return build(name, num_classes=num_classes, **options)


def fits_a_fixed_batch(model: nn.Module) -> list[float]:
    """Trains ``model`` for 20 AdamW steps (lr 3e-3) on one batch of 4 random 32x32 images
    (from the global RNG) whose mask is ``x[:, 0] > 0``; nothing in its initialisation or
    normalisation may stall learning.

    Returns:
        The loss of every step.
    """
    model.train()
    x = torch.randn(4, 3, 32, 32)
    target = (x[:, 0] > 0).long()
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(20):
        loss = F.cross_entropy(model(x), target)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


# --------------------------------------------------------------------------- timing


class FakeClock:
    """Stands in for the ``time`` module of the code under test: time moves only when a test
    (or a fake model it runs) advances :attr:`now`; wall and CPU time move together.

    Install it with the ``fake_clock`` fixture (``bench.speed.timing``) or
    ``monkeypatch.setattr(module, "time", clock)``.
    """

    def __init__(self, now: float = 100.0) -> None:
        self.now = now

    def perf_counter(self) -> float:
        """The fake wall clock, in seconds."""
        return self.now

    def process_time(self) -> float:
        """The fake CPU clock, in seconds (equal to the wall clock)."""
        return self.now


def touch_fresh_pages(n_pages: int) -> None:
    """Writes one byte to each of ``n_pages`` new anonymous pages: one minor page fault each,
    since the kernel supplies an anonymous page on first touch (huge pages are refused, as one
    2 MiB huge page would be a single fault).

    Args:
        n_pages: Pages to touch (0 touches none).
    """
    if n_pages == 0:
        return
    page = mmap.PAGESIZE
    block = mmap.mmap(-1, n_pages * page)
    if hasattr(mmap, "MADV_NOHUGEPAGE"):
        block.madvise(mmap.MADV_NOHUGEPAGE)
    for i in range(n_pages):
        block[i * page] = 1
    block.close()
