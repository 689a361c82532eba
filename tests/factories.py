"""Shared test helpers (not a test module): imported as ``tests.factories``.

* :func:`read_record_files` reads a results folder's record files with ``json`` alone, as a
  user's script would: tests of what the harness wrote check the files, not the type that
  wrote them.
* :func:`run_record` builds a FIXTURE :class:`~bench.records.RunRecord` (schema version 2) from
  a few hand-chosen values, for tests of what reads records (reporting).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench.records import RunRecord

FIXTURE_CLASSES = ("background", "disc", "square")
"""Class names of :func:`run_record`'s dataset."""


def read_record_files(results_dir: Path) -> list[dict[str, Any]]:
    """Every ``records/*.json`` of ``results_dir`` as parsed JSON, sorted by ``run_id``."""
    files = sorted((Path(results_dir) / "records").glob("*.json"))
    return sorted(
        (json.loads(p.read_text(encoding="utf-8")) for p in files), key=lambda r: r["run_id"]
    )


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
    data = {
        "schema_version": 2,
        "run_id": run_id,
        "created": created,
        "kind": kind,
        "suite": suite,
        "setting": setting,
        "arch": arch,
        "dataset": dataset,
        "status": status,
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
    return RunRecord.from_dict(data, source=f"fixture {run_id}")


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
