"""The sweep: suite -> (build, count, train, evaluate, time) per architecture -> run records.

Each architecture runs in isolation: any exception (including out-of-memory and NaN losses)
becomes an ``error`` record naming the stage, and the sweep goes on to the next architecture.
"""

from __future__ import annotations

import os
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

import architectures
from bench import complexity as cx
from bench import speed as sp
from bench.checkpoint import save_checkpoint
from bench.data import DatasetInfo, build_dataset
from bench.evaluate import evaluate
from bench.models import build_model
from bench.results import environment, latest_ok, load_records, new_run_id, utc_now, write_record
from bench.suites import SuiteConfig
from bench.train import class_frequencies, enet_class_weights, train

BASELINE_ARCH = "background"
SAMPLES_DIR = "samples"


@dataclass
class SweepSummary:
    written: list[Path] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)  # (arch, one-line message)
    skipped: list[str] = field(default_factory=list)


def resolve_device(device: str) -> str:
    """``auto`` -> ``cuda`` when available, else ``cpu``; ``cuda`` without a GPU raises."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(
            f"--device {device} was requested but torch.cuda.is_available() is False "
            f"(torch {torch.__version__}). Use --device cpu, or install a CUDA build of torch."
        )
    if device not in ("cpu",) and not device.startswith("cuda"):
        raise ValueError(f"--device must be auto, cpu or cuda[:N]; got {device!r}.")
    return device


def _arch_info_dict(info: architectures.ArchInfo) -> dict[str, Any]:
    return {
        "title": info.title, "paper": info.paper, "year": info.year, "family": info.family,
        "reference": info.reference, "input_divisor": info.input_divisor,
        "paper_params": info.paper_params, "paper_params_note": info.paper_params_note,
        "paper_num_classes": info.paper_num_classes, "paper_gflops": info.paper_gflops,
        "paper_resolution": list(info.paper_resolution) if info.paper_resolution else None,
        "paper_flops_convention": info.paper_flops_convention,
        "aux_weights": dict(info.aux_weights), "notes": info.notes,
    }


def _dataset_info_dict(info: DatasetInfo) -> dict[str, Any]:
    return {
        "title": info.title, "num_classes": info.num_classes,
        "class_names": list(info.class_names), "palette": [list(c) for c in info.palette],
        "ignore_index": info.ignore_index,
    }


def _denormalise(images: torch.Tensor, info: DatasetInfo) -> np.ndarray:
    mean = torch.tensor(info.mean).view(1, 3, 1, 1)
    std = torch.tensor(info.std).view(1, 3, 1, 1)
    x = (images.cpu() * std + mean).clamp(0, 1) * 255
    return x.round().to(torch.uint8).permute(0, 2, 3, 1).numpy()  # (S, H, W, 3)


def _save_npz_atomic(path: Path, **arrays: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".npz", dir=path.parent)
    os.close(fd)
    try:
        np.savez_compressed(tmp, **arrays)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class Sweep:
    """Runs one suite over a list of architectures and writes a record for each."""

    def __init__(self, suite: SuiteConfig, *, results_dir: Path, device: str = "auto",
                 command: str = "", progress: bool = True, checkpoint_dir: Path | None = None,
                 log: Callable[[str], None] = print) -> None:
        self.suite = suite
        self.results_dir = Path(results_dir)
        self.device = resolve_device(device)
        self.command = command
        self.progress = progress
        self.log = log
        self.checkpoint_dir = checkpoint_dir
        h, w = suite.resolution
        opts = {**suite.dataset_options, "size": (h, w)}
        self.train_set, self.info = build_dataset(suite.dataset, split="train",
                                                  root=suite.data_root, **opts)
        self.eval_set, _ = build_dataset(suite.dataset, split=suite.eval.split,
                                         root=suite.data_root, **opts)
        self.matmul_gflops: float | None = None
        self.class_weights: torch.Tensor | None = None
        if suite.train.class_weighting == "enet" and suite.train.steps > 0:
            freq = class_frequencies(self.train_set, self.info.num_classes,
                                     self.info.ignore_index, suite.train.class_weight_samples)
            self.class_weights = enet_class_weights(freq)

    # -- records -----------------------------------------------------------------------------
    def _base_record(self, arch: str, kind: str) -> dict[str, Any]:
        s = self.suite
        now = utc_now()
        return {
            "schema_version": 1,
            "run_id": new_run_id(s.name, arch, s.dataset, now),
            "created": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "kind": kind,
            "suite": s.name,
            "setting": s.setting,
            "arch": arch,
            "arch_info": None,
            "dataset": s.dataset,
            "dataset_info": _dataset_info_dict(self.info),
            "protocol": {"split": s.eval.split, "mode": "whole", "scales": [1.0],
                         "flip": False, "resolution": list(s.resolution),
                         "num_images": len(self.eval_set)},
            "status": "ok", "error": None, "metrics": None, "complexity": None,
            "speed": None, "train": None,
            "env": environment(self.device, s.seed, self.matmul_gflops),
            "command": self.command,
            "samples": None,
        }

    def _write_inputs(self) -> str | None:
        """Images and labels of the first eval images, shared by every record's samples."""
        n = min(self.suite.eval.num_samples, len(self.eval_set))
        if n == 0:
            return None
        images, labels = zip(*(self.eval_set[i] for i in range(n)), strict=True)
        rel = f"{SAMPLES_DIR}/{self.suite.name}__{self.suite.dataset}__inputs.npz"
        _save_npz_atomic(self.results_dir / rel,
                         image=_denormalise(torch.stack(images), self.info),
                         label=torch.stack(labels).numpy().astype(np.uint8),
                         indices=np.arange(n))
        return rel

    # -- one architecture ---------------------------------------------------------------------
    def run_arch(self, arch: str, inputs_rel: str | None) -> dict[str, Any]:
        s = self.suite
        record = self._base_record(arch, "model")
        stage = "build"
        try:
            entry = architectures.get_entry(arch)
            record["arch_info"] = _arch_info_dict(entry.info)
            torch.manual_seed(s.seed)
            model = build_model(arch, num_classes=self.info.num_classes,
                                **s.arch_options.get(arch, {}))
            if s.complexity.enabled:
                stage = "complexity"
                report = cx.count_complexity(model, (1, 3, *s.complexity.input_size))
                record["complexity"] = report.to_dict()
            stage = "train"
            if s.train.steps > 0:
                result = train(model, self.train_set, s.train,
                               ignore_index=self.info.ignore_index,
                               aux_weights=dict(entry.info.aux_weights), device=self.device,
                               class_weights=self.class_weights,
                               seed=s.seed, progress=self.progress, desc=f"train {arch}")
                record["train"] = result.to_dict()
                record["train"]["class_weighting"] = s.train.class_weighting
                if self.class_weights is not None:
                    record["train"]["class_weights"] = [round(w, 6) for w in
                                                        self.class_weights.tolist()]
                if self.checkpoint_dir is not None:
                    save_checkpoint(Path(self.checkpoint_dir) / f"{arch}.pt", model.model,
                                    arch=arch, num_classes=self.info.num_classes,
                                    meta={"run_id": record["run_id"], "suite": s.name})
            stage = "evaluate"
            ev = evaluate(model, self.eval_set, num_classes=self.info.num_classes,
                          ignore_index=self.info.ignore_index,
                          class_names=self.info.class_names, device=self.device,
                          batch_size=s.eval.batch_size, num_samples=s.eval.num_samples,
                          progress=self.progress, desc=f"eval {arch}")
            record["metrics"] = ev.metrics.to_dict()
            if ev.sample_preds is not None and inputs_rel:
                rel = f"{SAMPLES_DIR}/{record['run_id']}.npz"
                _save_npz_atomic(self.results_dir / rel, pred=ev.sample_preds,
                                 indices=np.arange(len(ev.sample_preds)))
                record["samples"] = {"file": rel, "inputs_file": inputs_rel}
            if s.speed.enabled:
                stage = "speed"
                h, w = s.resolution
                if record["complexity"] and record["complexity"]["input_shape"][2:] == [h, w]:
                    gmacs = record["complexity"]["gmacs"]
                else:
                    gmacs = cx.count_complexity(model, (1, 3, h, w)).gmacs
                report = sp.measure_speed(
                    model, (3, h, w), gmacs_per_image=gmacs, device=self.device,
                    dtype=s.speed.dtype, channels_last=s.speed.channels_last,
                    warmup=s.speed.warmup, min_iters=s.speed.min_iters,
                    max_iters=s.speed.max_iters, min_time_s=s.speed.min_time_s,
                    max_batch=s.speed.max_batch)
                record["speed"] = report.to_dict()
        except Exception as exc:  # noqa: BLE001 - one architecture's failure must not end the sweep
            record["status"] = "error"
            record["error"] = {"type": type(exc).__name__, "message": str(exc),
                               "traceback": traceback.format_exc(), "stage": stage}
        finally:
            if self.device.startswith("cuda"):
                torch.cuda.empty_cache()
        return record

    def run_baseline(self) -> dict[str, Any]:
        record = self._base_record(BASELINE_ARCH, "baseline")
        record["arch_info"] = {"title": "all background (baseline)", "paper": "", "year": None,
                               "family": "baseline"}
        ev = evaluate(None, self.eval_set, num_classes=self.info.num_classes,
                      ignore_index=self.info.ignore_index, class_names=self.info.class_names,
                      constant_class=0, device="cpu", batch_size=self.suite.eval.batch_size,
                      progress=False)
        record["metrics"] = ev.metrics.to_dict()
        return record

    # -- the sweep ----------------------------------------------------------------------------
    def run(self, archs: list[str], *, resume: bool = False) -> SweepSummary:
        summary = SweepSummary()
        s = self.suite
        threads_before = torch.get_num_threads()
        if s.threads:
            torch.set_num_threads(s.threads)
        try:
            return self._run(archs, resume, summary)
        finally:
            torch.set_num_threads(threads_before)

    def _write(self, record: dict[str, Any]) -> Path:
        """Write a record; a record that cannot be serialised becomes an error record."""
        try:
            return write_record(self.results_dir, record)
        except (ValueError, TypeError) as exc:
            record.update(status="error", metrics=None, speed=None, complexity=None,
                          error={"type": type(exc).__name__, "stage": "record",
                                 "message": f"record could not be written: {exc}",
                                 "traceback": traceback.format_exc()})
            return write_record(self.results_dir, record)

    def _run(self, archs: list[str], resume: bool, summary: SweepSummary) -> SweepSummary:
        s = self.suite
        if s.speed.enabled:
            self.matmul_gflops = sp.matmul_rate(self.device)
        done: set[str] = set()
        if resume and (self.results_dir / "records").is_dir():
            done = {a for (su, a, d, st) in latest_ok(load_records(self.results_dir))
                    if su == s.name and d == s.dataset and st == s.setting}
        inputs_rel = self._write_inputs()
        if BASELINE_ARCH not in done:
            summary.written.append(self._write(self.run_baseline()))
        bar = tqdm(archs, desc=f"suite {s.name}", disable=not self.progress, unit="arch")
        for i, arch in enumerate(bar, 1):
            if arch in done:
                summary.skipped.append(arch)
                continue
            bar.set_description(f"suite {s.name} [{i}/{len(archs)}] {arch}")
            start = time.perf_counter()
            record = self.run_arch(arch, inputs_rel)
            summary.written.append(self._write(record))
            took = time.perf_counter() - start
            if record["status"] == "ok":
                m = record["metrics"]["miou"]
                self.log(f"[{i}/{len(archs)}] {arch}: mIoU {100 * m:.1f}% ({took:.0f} s)")
            else:
                err = record["error"]
                first = (err["message"].strip().splitlines() or [""])[0]
                summary.failed.append((arch, f"{err['stage']}: {err['type']}: {first}"))
                self.log(f"[{i}/{len(archs)}] {arch}: ERROR in {err['stage']}: "
                         f"{err['type']}: {first}")
        return summary
