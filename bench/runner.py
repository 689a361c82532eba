"""The sweep: suite -> (build, count, train, evaluate, time) per architecture -> run records.

Each architecture runs in isolation: any exception (including out-of-memory and NaN losses)
becomes an ``error`` record naming the stage, and the sweep goes on to the next architecture.

Faults and scale:

* **Time limit** (``timeout_per_arch``): each architecture then runs in a child process (the
  ``spawn`` start method: a forked child of a process that already ran OpenMP kernels can hang,
  and CUDA cannot be forked). The child reports its stage as it goes and sends its record back;
  the limit counts from the start of the first stage (build), not the child's start-up;
  a child that does not finish in time is killed and the architecture gets an ``error`` record
  (``TimeoutError``, naming the stage it was stuck in); a child that dies (a segfault, the OS
  out-of-memory killer) gets one too. It costs a Python start-up per architecture, so without a
  limit everything runs in-process. Entries must be importable in the child: built-ins, entry
  points and ``--plugin`` files are; entries registered by other means are not.
* **Resume** (``resume=True``): (architecture, dataset, setting) combinations that already have an
  ``ok`` record from the same device type (cpu / cuda) are skipped; the rest run. Records are
  written atomically, so a killed sweep leaves complete records or none.
* **Shards** (``shard=(i, n)``): the suite's combinations (the ``background`` baseline first,
  then the architectures in suite order) are dealt round-robin and shard ``i`` of ``n`` (1-based)
  runs every ``n``-th one, so ``n`` machines or job-array tasks given the same suite, ``--archs``
  and plugins run disjoint slices that together cover the suite.
* **Determinism**: on the CPU the sweep runs with ``torch.use_deterministic_algorithms(True,
  warn_only=True)`` (uninitialised-memory filling off, so timing is unaffected), restored after;
  seeds are fixed per architecture, so a CPU suite with a fixed thread count reproduces its
  metrics exactly run to run on one machine.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
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
from bench.results import (
    baseline_title,
    environment,
    latest_ok,
    load_records,
    new_run_id,
    utc_now,
    write_record,
)
from bench.suites import SuiteConfig
from bench.train import class_frequencies, enet_class_weights, train

BASELINE_ARCH = "background"
SAMPLES_DIR = "samples"
CHILD_SETUP_ALLOWANCE_S = 300.0  # start-up of a --timeout-per-arch child, not counted in the limit
# measure_relative_latency: at least 6 rounds (an even number: each order equally often) and
# 2 s, so a fast model gets many rounds and a slow one (whose calls already average over many
# time slices) costs about 12 of its calls.
NORMALISED_ROUNDS, NORMALISED_MIN_TIME_S = 6, 2.0


@dataclass
class SweepSummary:
    written: list[Path] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)  # (arch, one-line message)
    skipped: list[str] = field(default_factory=list)
    not_in_shard: list[str] = field(default_factory=list)  # combinations of other shards


def parse_shard(text: str) -> tuple[int, int]:
    """``"I/N"`` -> ``(I, N)``: shard I (1-based) of N.

    Raises:
        ValueError: not two integers ``I/N`` with ``1 <= I <= N``.
    """
    parts = text.split("/")
    try:
        index, count = (int(p) for p in parts) if len(parts) == 2 else (0, 0)
    except ValueError:
        index, count = 0, 0
    if count < 1 or not 1 <= index <= count:
        raise ValueError(
            f"--shard expects I/N with 1 <= I <= N (shard I of N, counted from 1, e.g. 2/3); "
            f"got {text!r}. In a Slurm array use --array=1-N and --shard "
            f"$SLURM_ARRAY_TASK_ID/N."
        )
    return index, count


def shard_items(items: list[str], index: int, count: int) -> list[str]:
    """The items of shard ``index`` (1-based) of ``count``: every ``count``-th, round-robin.

    Round-robin rather than contiguous blocks, so slow and fast architectures (suites list
    families together) spread over the shards.
    """
    if count < 1 or not 1 <= index <= count:
        raise ValueError(f"shard must satisfy 1 <= index <= count; got {index}/{count}.")
    return items[index - 1 :: count]


def _device_type(device: str | None) -> str:
    return (device or "").split(":", 1)[0]


def plugin_files() -> list[str]:
    """Files of the ``--plugin`` entries in the registry, in registration order."""
    files: list[str] = []
    for entry in architectures.entries():
        if entry.source.startswith("plugin:"):
            path = entry.source.split(":", 1)[1]
            if path not in files:
                files.append(path)
    return files


@contextlib.contextmanager
def run_flags(device: str, threads: int | None) -> Iterator[None]:
    """Thread count and determinism flags for a sweep (or one isolated architecture), restored.

    On the CPU: ``use_deterministic_algorithms(True, warn_only=True)`` with
    ``fill_uninitialized_memory`` off (filling every new tensor would slow the timing down).
    CUDA runs keep the caller's flags: deterministic cuDNN algorithms would change what the
    speed columns measure.
    """
    import torch.utils.deterministic as det

    threads_before = torch.get_num_threads()
    flags_before = (
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
        det.fill_uninitialized_memory,
    )
    if threads:
        torch.set_num_threads(threads)
    if _device_type(device) == "cpu":
        torch.use_deterministic_algorithms(True, warn_only=True)
        det.fill_uninitialized_memory = False
    try:
        yield
    finally:
        torch.set_num_threads(threads_before)
        torch.use_deterministic_algorithms(flags_before[0], warn_only=flags_before[1])
        det.fill_uninitialized_memory = flags_before[2]


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
        "title": info.title,
        "paper": info.paper,
        "year": info.year,
        "family": info.family,
        "reference": info.reference,
        "input_divisor": info.input_divisor,
        "paper_params": info.paper_params,
        "paper_params_note": info.paper_params_note,
        "paper_num_classes": info.paper_num_classes,
        "paper_gflops": info.paper_gflops,
        "paper_resolution": list(info.paper_resolution) if info.paper_resolution else None,
        "paper_flops_convention": info.paper_flops_convention,
        "aux_weights": dict(info.aux_weights),
        "notes": info.notes,
    }


def _dataset_info_dict(info: DatasetInfo) -> dict[str, Any]:
    return {
        "title": info.title,
        "num_classes": info.num_classes,
        "class_names": list(info.class_names),
        "palette": [list(c) for c in info.palette],
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

    def __init__(
        self,
        suite: SuiteConfig,
        *,
        results_dir: Path,
        device: str = "auto",
        command: str = "",
        progress: bool = True,
        checkpoint_dir: Path | None = None,
        log: Callable[[str], None] = print,
        timeout_per_arch: float | None = None,
        class_weights: torch.Tensor | None = None,
    ) -> None:
        """
        Args:
            timeout_per_arch: Seconds each architecture may take (build to speed); ``None``
                runs everything in-process without a limit (see the module docstring).
            class_weights: Precomputed class weights (the child process of an isolated
                architecture gets the parent's); computed from the training set when ``None``
                and the suite asks for them.
        """
        if timeout_per_arch is not None and not timeout_per_arch > 0:
            raise ValueError(
                f"--timeout-per-arch must be a positive number of seconds; got {timeout_per_arch}."
            )
        self.suite = suite
        self.results_dir = Path(results_dir)
        self.device = resolve_device(device)
        self.command = command
        self.progress = progress
        self.log = log
        self.checkpoint_dir = checkpoint_dir
        self.timeout_per_arch = timeout_per_arch
        self.stage_hook: Callable[[str], None] | None = None  # told each stage as it starts
        h, w = suite.resolution
        opts = {**suite.dataset_options, "size": (h, w)}
        self.train_set, self.info = build_dataset(
            suite.dataset, split="train", root=suite.data_root, **opts
        )
        self.eval_set, _ = build_dataset(
            suite.dataset, split=suite.eval.split, root=suite.data_root, **opts
        )
        self.matmul_gflops: float | None = None
        self.class_weights: torch.Tensor | None = class_weights
        if (
            class_weights is None
            and suite.train.class_weighting == "enet"
            and suite.train.steps > 0
        ):
            freq = class_frequencies(
                self.train_set,
                self.info.num_classes,
                self.info.ignore_index,
                suite.train.class_weight_samples,
            )
            self.class_weights = enet_class_weights(freq)

    # -- records -----------------------------------------------------------------------------
    def _protocol(self) -> dict[str, Any]:
        """The evaluation protocol as run: the eval split's own (file-backed datasets) or
        whole-image inference at the suite's resolution (the synthetic set)."""
        s = self.suite
        protocol = {
            "split": s.eval.split,
            "mode": "whole",
            "scales": [1.0],
            "flip": False,
            "resolution": list(s.resolution),
            "num_images": len(self.eval_set),
        }
        own = getattr(self.eval_set, "protocol", None)
        if own is not None:
            protocol.update(own.to_dict())
            protocol["resolution"] = (
                list(own.size) if own.size is not None else "native (the label's size)"
            )
        augment = getattr(self.train_set, "describe", None)
        if callable(augment):
            protocol["train_augment"] = augment().get("augment")
        return protocol

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
            "protocol": self._protocol(),
            "status": "ok",
            "error": None,
            "metrics": None,
            "complexity": None,
            "speed": None,
            "train": None,
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
        _save_npz_atomic(
            self.results_dir / rel,
            image=_denormalise(torch.stack(images), self.info),
            label=torch.stack(labels).numpy().astype(np.uint8),
            indices=np.arange(n),
        )
        return rel

    # -- one architecture ---------------------------------------------------------------------
    def run_arch(self, arch: str, inputs_rel: str | None) -> dict[str, Any]:
        s = self.suite
        record = self._base_record(arch, "model")
        stage = self._enter("build")
        try:
            entry = architectures.get_entry(arch)
            record["arch_info"] = _arch_info_dict(entry.info)
            torch.manual_seed(s.seed)
            model = build_model(
                arch, num_classes=self.info.num_classes, **s.arch_options.get(arch, {})
            )
            if s.complexity.enabled:
                stage = self._enter("complexity")
                report = cx.count_complexity(model, (1, 3, *s.complexity.input_size))
                record["complexity"] = report.to_dict()
            stage = self._enter("train")
            if s.train.steps > 0:
                result = train(
                    model,
                    self.train_set,
                    s.train,
                    ignore_index=self.info.ignore_index,
                    aux_weights=dict(entry.info.aux_weights),
                    device=self.device,
                    class_weights=self.class_weights,
                    seed=s.seed,
                    progress=self.progress,
                    desc=f"train {arch}",
                )
                record["train"] = result.to_dict()
                record["train"]["class_weighting"] = s.train.class_weighting
                if self.class_weights is not None:
                    record["train"]["class_weights"] = [
                        round(w, 6) for w in self.class_weights.tolist()
                    ]
                if self.checkpoint_dir is not None:
                    save_checkpoint(
                        Path(self.checkpoint_dir) / f"{arch}.pt",
                        model.model,
                        arch=arch,
                        num_classes=self.info.num_classes,
                        meta={"run_id": record["run_id"], "suite": s.name},
                    )
            stage = self._enter("evaluate")
            ev = evaluate(
                model,
                self.eval_set,
                num_classes=self.info.num_classes,
                ignore_index=self.info.ignore_index,
                class_names=self.info.class_names,
                device=self.device,
                batch_size=s.eval.batch_size,
                num_samples=s.eval.num_samples,
                progress=self.progress,
                desc=f"eval {arch}",
            )
            record["metrics"] = ev.metrics.to_dict()
            if ev.sample_preds is not None and inputs_rel:
                rel = f"{SAMPLES_DIR}/{record['run_id']}.npz"
                _save_npz_atomic(
                    self.results_dir / rel,
                    pred=ev.sample_preds,
                    indices=np.arange(len(ev.sample_preds)),
                )
                record["samples"] = {"file": rel, "inputs_file": inputs_rel}
            if s.speed.enabled:
                stage = self._enter("speed")
                h, w = s.resolution
                if record["complexity"] and record["complexity"]["input_shape"][2:] == [h, w]:
                    gmacs = record["complexity"]["gmacs"]
                else:
                    gmacs = cx.count_complexity(model, (1, 3, h, w)).gmacs
                report = sp.measure_speed(
                    model,
                    (3, h, w),
                    s.speed,
                    gmacs_per_image=gmacs,
                    device=self.device,
                    matmul_gflops_per_s=self.matmul_gflops if s.speed.dtype == "fp32" else None,
                )
                record["speed"] = report.to_dict()
                # Interleaved with a reference network: the figure regression checks compare.
                # Same config (dtype, memory format, warm-up); its own rounds and duration.
                record["speed"]["normalised"] = sp.measure_relative_latency(
                    model,
                    (3, h, w),
                    s.speed,
                    device=self.device,
                    rounds=NORMALISED_ROUNDS,
                    min_time_s=NORMALISED_MIN_TIME_S,
                ).to_dict()
        except Exception as exc:  # noqa: BLE001 - one architecture's failure must not end the sweep
            record["status"] = "error"
            record["error"] = {
                "type": type(exc).__name__,
                "message": str(exc),
                "traceback": traceback.format_exc(),
                "stage": stage,
            }
        finally:
            if self.device.startswith("cuda"):
                torch.cuda.empty_cache()
        return record

    def _enter(self, stage: str) -> str:
        if self.stage_hook is not None:
            self.stage_hook(stage)
        return stage

    # -- one architecture in a child process, under a time limit --------------------------------
    def _killed_record(
        self, arch: str, error_type: str, stage: str, message: str
    ) -> dict[str, Any]:
        record = self._base_record(arch, "model")
        with contextlib.suppress(ValueError):
            record["arch_info"] = _arch_info_dict(architectures.get_entry(arch).info)
        record["status"] = "error"
        record["error"] = {
            "type": error_type,
            "message": message,
            "traceback": None,
            "stage": stage,
        }
        return record

    def run_arch_isolated(self, arch: str, inputs_rel: str | None) -> dict[str, Any]:
        """:meth:`run_arch` in a child process that is killed after ``timeout_per_arch`` s."""
        limit = float(self.timeout_per_arch or 0)
        job = _ChildJob(
            suite=self.suite,
            results_dir=str(self.results_dir),
            device=self.device,
            command=self.command,
            progress=self.progress,
            checkpoint_dir=None if self.checkpoint_dir is None else str(self.checkpoint_dir),
            plugins=tuple(plugin_files()),
            arch=arch,
            inputs_rel=inputs_rel,
            matmul_gflops=self.matmul_gflops,
            class_weights=self.class_weights,
        )
        ctx = multiprocessing.get_context("spawn")
        receive, send = ctx.Pipe(duplex=False)
        proc = ctx.Process(target=_child_main, args=(job, send), name=f"semseg-bench:{arch}")
        proc.start()
        send.close()  # the child holds the other end: EOF here when it dies
        # The limit runs from the first stage (build); the child's start-up (Python, imports,
        # datasets) has its own allowance, so a slow start on a busy machine is not the model's.
        deadline = time.monotonic() + max(limit, CHILD_SETUP_ALLOWANCE_S)
        stage, record, setup_error, timed_out = "setup", None, None, False
        try:
            while record is None and setup_error is None:
                left = deadline - time.monotonic()
                if left <= 0 or not receive.poll(left):
                    timed_out = True
                    break
                try:
                    kind, payload = receive.recv()
                except EOFError:
                    break
                if kind == "stage":
                    if stage == "setup":
                        deadline = time.monotonic() + limit
                    stage = payload
                elif kind == "record":
                    record = payload
                else:
                    setup_error = payload
        finally:
            if record is None and proc.is_alive():
                proc.kill()
            proc.join(timeout=60)
            if proc.is_alive():  # finished its record but hangs on exit
                proc.kill()
                proc.join()
            receive.close()
        if record is not None:
            return record
        if setup_error is not None:
            return self._killed_record(arch, "ChildSetupError", "setup", setup_error)
        if timed_out and stage == "setup":
            return self._killed_record(
                arch,
                "TimeoutError",
                stage,
                f"the child process for {arch} did not start within "
                f"{max(limit, CHILD_SETUP_ALLOWANCE_S):g} s (imports and dataset set-up); it "
                f"was killed and the sweep went on.",
            )
        if timed_out:
            return self._killed_record(
                arch,
                "TimeoutError",
                stage,
                f"{arch} did not finish within --timeout-per-arch {limit:g} s (stuck in stage "
                f"{stage!r}); its process was killed and the sweep went on. Raise the limit or "
                f"lower the suite's budget if the run was merely slow.",
            )
        code = proc.exitcode
        how = (
            f"was killed by signal {signal.Signals(-code).name}"
            if code is not None and code < 0
            else f"exited with code {code}"
        )
        return self._killed_record(
            arch,
            "ChildProcessError",
            stage,
            f"the process running {arch} {how} in stage {stage!r} before sending its record "
            f"(a crash in native code, or the OS out-of-memory killer?).",
        )

    def run_baseline(self) -> dict[str, Any]:
        record = self._base_record(BASELINE_ARCH, "baseline")
        record["arch_info"] = {
            "title": baseline_title(self.info.class_names[0]),
            "paper": "",
            "year": None,
            "family": "baseline",
        }
        ev = evaluate(
            None,
            self.eval_set,
            num_classes=self.info.num_classes,
            ignore_index=self.info.ignore_index,
            class_names=self.info.class_names,
            constant_class=0,
            device="cpu",
            batch_size=self.suite.eval.batch_size,
            progress=False,
        )
        record["metrics"] = ev.metrics.to_dict()
        return record

    # -- the sweep ----------------------------------------------------------------------------
    def run(
        self, archs: list[str], *, resume: bool = False, shard: tuple[int, int] | None = None
    ) -> SweepSummary:
        """Run the baseline and ``archs``; with ``shard=(i, n)`` only shard i's combinations."""
        summary = SweepSummary()
        with run_flags(self.device, self.suite.threads):
            return self._run(archs, resume, shard, summary)

    def done_combinations(self) -> set[str]:
        """Architectures (and the baseline) with an ``ok`` record for this suite, dataset,
        setting and device type in the results folder."""
        if not (self.results_dir / "records").is_dir():
            return set()
        s, dev = self.suite, _device_type(self.device)
        return {
            a
            for (su, a, d, st), r in latest_ok(load_records(self.results_dir)).items()
            if (su, d, st) == (s.name, s.dataset, s.setting)
            and _device_type((r.get("env") or {}).get("device")) in (dev, "")
        }

    def _write(self, record: dict[str, Any]) -> Path:
        """Write a record; a record that cannot be serialised becomes an error record."""
        try:
            return write_record(self.results_dir, record)
        except (ValueError, TypeError) as exc:
            record.update(
                status="error",
                metrics=None,
                speed=None,
                complexity=None,
                error={
                    "type": type(exc).__name__,
                    "stage": "record",
                    "message": f"record could not be written: {exc}",
                    "traceback": traceback.format_exc(),
                },
            )
            return write_record(self.results_dir, record)

    def _run(
        self, archs: list[str], resume: bool, shard: tuple[int, int] | None, summary: SweepSummary
    ) -> SweepSummary:
        s = self.suite
        combos = [BASELINE_ARCH, *archs]
        mine = shard_items(combos, *shard) if shard else combos
        summary.not_in_shard = [c for c in combos if c not in mine]
        done = self.done_combinations() if resume else set()
        if BASELINE_ARCH in mine and BASELINE_ARCH not in done:
            summary.written.append(self._write(self.run_baseline()))
        archs = [a for a in archs if a in mine]
        if s.speed.enabled and any(a not in done for a in archs):
            self.matmul_gflops = sp.matmul_rate(self.device)
        inputs_rel = self._write_inputs() if archs else None
        bar = tqdm(archs, desc=f"suite {s.name}", disable=not self.progress, unit="arch")
        for i, arch in enumerate(bar, 1):
            if arch in done:
                summary.skipped.append(arch)
                continue
            bar.set_description(f"suite {s.name} [{i}/{len(archs)}] {arch}")
            start = time.perf_counter()
            if self.timeout_per_arch is None:
                record = self.run_arch(arch, inputs_rel)
            else:
                record = self.run_arch_isolated(arch, inputs_rel)
            summary.written.append(self._write(record))
            took = time.perf_counter() - start
            if record["status"] == "ok":
                m = record["metrics"]["miou"]
                self.log(f"[{i}/{len(archs)}] {arch}: mIoU {100 * m:.1f}% ({took:.0f} s)")
            else:
                err = record["error"]
                first = (err["message"].strip().splitlines() or [""])[0]
                summary.failed.append((arch, f"{err['stage']}: {err['type']}: {first}"))
                self.log(
                    f"[{i}/{len(archs)}] {arch}: ERROR in {err['stage']}: {err['type']}: {first}"
                )
        return summary


# -- the child process of run_arch_isolated -----------------------------------------------------


@dataclass(frozen=True)
class _ChildJob:
    suite: SuiteConfig
    results_dir: str
    device: str
    command: str
    progress: bool
    checkpoint_dir: str | None
    plugins: tuple[str, ...]
    arch: str
    inputs_rel: str | None
    matmul_gflops: float | None
    class_weights: torch.Tensor | None


def _child_main(job: _ChildJob, conn: Any) -> None:
    """Entry point of the spawned child: rebuild the sweep, run one architecture, send it."""
    try:
        from bench.plugins import load_entry_points, load_plugin

        load_entry_points()
        for path in job.plugins:
            load_plugin(path)
        architectures.get_entry(job.arch)
        sweep = Sweep(
            job.suite,
            results_dir=Path(job.results_dir),
            device=job.device,
            command=job.command,
            progress=job.progress,
            checkpoint_dir=None if job.checkpoint_dir is None else Path(job.checkpoint_dir),
            log=lambda message: None,
            class_weights=job.class_weights,
        )
        sweep.matmul_gflops = job.matmul_gflops
    except Exception:  # noqa: BLE001 - reported to the parent, which writes the error record
        conn.send(
            (
                "setup_error",
                f"could not set up the child process for {job.arch} "
                f"(entries must come from built-ins, entry points or "
                f"--plugin files to run under --timeout-per-arch):\n"
                f"{traceback.format_exc()}",
            )
        )
        conn.close()
        return
    sweep.stage_hook = lambda stage: conn.send(("stage", stage))
    with run_flags(job.device, job.suite.threads):
        record = sweep.run_arch(job.arch, job.inputs_rel)
    conn.send(("record", record))
    conn.close()
