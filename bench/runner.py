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
* **Locks**: each combination is locked in the results folder while it runs
  (:mod:`bench.locks`): a second sweep into the same folder skips what another live process is
  running instead of repeating it; samples files left by a run killed before it wrote its
  record are removed when the combination runs again.
* **Interrupts**: Ctrl-C ends the sweep with :class:`SweepInterrupted`, which carries what
  finished; the CLI prints it and the ``--resume`` command in one line (exit status 130).
* **Resume** (``resume=True``): (architecture, dataset, setting) combinations that already have an
  ``ok`` record from the same device type (cpu / cuda) are skipped; the rest run. Records are
  written atomically, so a killed sweep leaves complete records or none. A suite with
  ``train.checkpoint_every: N`` saves each architecture's training state every N steps to
  ``<results>/train_state/<suite>__<arch>__<dataset>__<setting>.pt`` (deleted once its ok
  record is written); a resumed sweep continues such an architecture from that state and ends
  bit-identical on the CPU to an uninterrupted run (:mod:`bench.train.state`); without
  ``resume`` the state is discarded and training starts again.
* **TensorBoard** (``tensorboard=True``, the default): each trained architecture's loss,
  learning rate, throughput and final validation mIoU go to event files under
  ``<results>/tensorboard/<suite>__<arch>__<dataset>__<setting>/`` (:mod:`bench.train.scalars`;
  the ``tensorboard`` package is optional: without it the sweep says so once and goes on).
* **Shards** (``shard=(i, n)``): the suite's combinations (the ``background`` baseline first,
  then the architectures in suite order) are dealt round-robin and shard ``i`` of ``n`` (1-based)
  runs every ``n``-th one, so ``n`` machines or job-array tasks given the same suite, ``--archs``
  and plugins run disjoint slices that together cover the suite.
* **Determinism**: on the CPU the sweep runs with ``torch.use_deterministic_algorithms(True,
  warn_only=True)`` (uninitialised-memory filling off, so timing is unaffected), restored after;
  seeds are fixed per architecture, so a CPU suite with a fixed thread count reproduces its
  metrics exactly run to run on the same CPU kernels (``env.cpu.kernel_key``: vendor, family,
  model, torch's CPU capability); other kernels round differently.
* **Several processes** (torchrun): every rank runs this sweep in step, rank 0 alone counts,
  times and writes (``ranks``; :mod:`bench.distributed_sweep`).
"""

from __future__ import annotations

import contextlib
import re
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

import architectures
from bench import complexity as cx
from bench import locks
from bench import speed as sp
from bench import sweep_semisup as semisup
from bench.checkpoint import save_checkpoint
from bench.data import build_dataset
from bench.devices import device_type, resolve_device, run_flags
from bench.distributed import SINGLE
from bench.errors import ConfigError
from bench.evaluate import evaluate
from bench.fileio import cached_sha256, write_npz_atomic
from bench.isolation import run_in_child
from bench.models import build_model
from bench.plugins import plugin_files
from bench.provenance import environment
from bench.record_sections import (
    arch_section,
    dataset_section,
    denormalised,
    error_section,
    metrics_section,
    speed_section,
)
from bench.records import (
    RECORDS_DIR,
    SAMPLES_DIR,
    SCHEMA_VERSION,
    ArchSection,
    Complexity,
    ErrorInfo,
    Protocol,
    RunRecord,
    Samples,
    Speed,
    TrainInfo,
    baseline_title,
    created_stamp,
    latest_ok,
    load_records,
    new_run_id,
    utc_now,
    write_record,
)
from bench.shards import shard_items
from bench.suites import SuiteConfig
from bench.sweep_summary import SweepInterrupted, SweepSummary
from bench.sweep_validation import sweep_validation, validation_set
from bench.train import (
    MISSING_MESSAGE,
    ScalarWriter,
    check_settings,
    class_weights_by_setting,
    merged_aux_weights,
    tensorboard_available,
    tensorboard_writer,
    train,
    weights_key,
)
from bench.train.scalars import MIOU_TAG, PIXEL_ACC_TAG

BASELINE_ARCH = "background"
TRAIN_STATE_DIR, TENSORBOARD_DIR = "train_state", "tensorboard"  # inside the results folder
CHILD_SETUP_ALLOWANCE_S = 300.0  # start-up of a --timeout-per-arch child, not counted in the limit


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
        tensorboard: bool = True,
    ) -> None:
        """Builds the suite's datasets (and class weights) once for all architectures.

        Args:
            suite: The suite to run.
            results_dir: Where records, samples and locks go.
            device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.
            command: The command line, stored in every record.
            progress: Show progress bars.
            checkpoint_dir: Also save each trained model as ``<dir>/<arch>.pt``.
            log: Where one-line progress messages go.
            timeout_per_arch: Seconds each architecture may take (build to speed); ``None``
                runs everything in-process without a limit (see the module docstring).
            class_weights: Precomputed class weights (the child process of an isolated
                architecture gets the parent's); computed from the training set when ``None``
                and the suite asks for them.
            tensorboard: Write TensorBoard event files of each training run (see the module);
                without the ``tensorboard`` package this logs one line and is off.

        Raises:
            ConfigError: a bad device or time limit, or a ``train.amp`` the device cannot run.
        """
        if timeout_per_arch is not None and not timeout_per_arch > 0:
            raise ConfigError(
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
        self.resume = False  # set by run(): continue from saved training states
        self.ranks = SINGLE  # a torchrun job's ranks (DistributedSweep): train, evaluate, count
        check_settings(suite.train_configs(), self.device)  # train.amp, before any data
        self.tensorboard = tensorboard and suite.train.steps > 0
        if self.tensorboard and not tensorboard_available():
            log(MISSING_MESSAGE)
            self.tensorboard = False
        h, w = suite.resolution
        opts = {**suite.dataset_options, "size": (h, w)}
        self.train_set, self.info = build_dataset(
            suite.dataset, split="train", root=suite.data_root, **opts
        )
        self.eval_set, _ = build_dataset(
            suite.dataset, split=suite.eval.split, root=suite.data_root, **opts
        )
        self.semi = semisup.prepare(  # the semi-supervised track trains on the labelled subset
            suite.semisup, self.train_set, self.info, suite.dataset, self.results_dir
        )
        self.train_set = self.train_set if self.semi is None else self.semi.labelled
        check_settings(suite.train_configs(), self.device, len(self.train_set))  # before models
        self.val_set = validation_set(  # train.eval_every's split, else None
            suite.train_configs(), suite.dataset, self.info, suite.data_root, opts
        )
        self.matmul_gflops: float | None = None
        self.class_weights: torch.Tensor | None = class_weights  # given: every architecture's
        n, ignore = self.info.num_classes, self.info.ignore_index
        configs = suite.train_configs() if class_weights is None else []  # each recipe's too
        self._weights = class_weights_by_setting(configs, self.train_set, n, ignore)

    def arch_weights(self, arch: str) -> torch.Tensor | None:
        """``arch``'s loss class weights: those given, else its ``train.class_weighting``'s."""
        given, key = self.class_weights, weights_key(self.suite.train_for(arch))
        return given if given is not None else self._weights.get(key)

    # -- records -----------------------------------------------------------------------------
    def _protocol(self) -> Protocol:
        """Returns the eval protocol as run: the split's own, else whole images at suite size."""
        s = self.suite
        protocol: dict[str, Any] = {
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
        return Protocol.from_dict(protocol)

    def _base_record(self, arch: str, kind: str) -> RunRecord:
        """A record of this sweep with identity and provenance, status ok, no results yet."""
        s = self.suite
        now = utc_now()
        return RunRecord(
            schema_version=SCHEMA_VERSION,
            run_id=new_run_id(s.name, arch, s.dataset, now),
            created=created_stamp(now),
            kind=kind,  # type: ignore[arg-type]
            suite=s.name,
            setting=s.setting,
            arch=arch,
            dataset=s.dataset,
            status="ok",
            dataset_info=dataset_section(self.info),
            protocol=self._protocol(),
            env=environment(self.device, s.seed, self.matmul_gflops),
            command=self.command,
            seed_group=s.seed_group,  # the same for every seed of one setting: pooled by reports
        )

    def _write_inputs(self) -> str | None:
        """Images and labels of the first eval images, shared by every record's samples."""
        n = min(self.suite.eval.num_samples, len(self.eval_set))
        if n == 0:
            return None
        images, labels = zip(*(self.eval_set[i] for i in range(n)), strict=True)
        rel = f"{SAMPLES_DIR}/{self.suite.name}__{self.suite.dataset}__inputs.npz"
        write_npz_atomic(
            self.results_dir / rel,
            image=denormalised(torch.stack(images), self.info),
            label=torch.stack(labels).numpy().astype(np.uint8),
            indices=np.arange(n),
        )
        return rel

    # -- one architecture ---------------------------------------------------------------------
    def run_arch(self, arch: str, inputs_rel: str | None) -> RunRecord:
        """Builds, counts, trains, evaluates and times one architecture.

        Any exception becomes an error record naming the stage it happened in.

        Args:
            arch: Registry name.
            inputs_rel: The shared inputs file of the qualitative samples (or None).

        Returns:
            The architecture's record (not yet written).
        """
        s = self.suite
        record = self._base_record(arch, "model")
        stage = self._enter("build")
        scalars = self._scalars(arch)
        try:
            entry = architectures.get_entry(arch)
            record = record.replace(arch_info=arch_section(entry.info))
            torch.manual_seed(s.seed)
            model = build_model(
                arch,
                num_classes=semisup.head_classes(s.semisup, self.info.num_classes),
                backbone_weights=s.backbone_weights.get(arch),  # ImageNet trunk from a file
                **s.arch_options.get(arch, {}),
            )
            model = semisup.wrap(s.semisup, model)  # GAN-SS: K + 1 outputs in training
            record = semisup.with_section(self.semi, record)
            report = None
            if s.complexity.enabled and self.ranks.is_main:
                stage = self._enter("complexity")
                shape = (1, entry.info.in_channels, *s.complexity.input_size)
                report = cx.count_complexity(model, shape)
                record = record.replace(complexity=Complexity.from_dict(report.to_dict()))
            stage = self._enter("train")
            if s.train.steps > 0:
                record = record.replace(
                    train=self._train(arch, model, entry, record.run_id, scalars)
                )
            stage = self._enter("evaluate")
            ev = evaluate(
                model,
                self.eval_set,
                self.info,
                device=self.device,
                batch_size=s.eval.batch_size,
                num_samples=s.eval.num_samples,
                progress=self.progress,
                desc=f"eval {arch}",
                ranks=self.ranks,
            )
            record = record.replace(metrics=metrics_section(ev, self.results_dir, record.run_id))
            if scalars is not None:
                last = record.train.steps if record.train else 0  # a recipe's, epochs' count
                scalars.add_scalar(MIOU_TAG, ev.metrics.miou, last)
                scalars.add_scalar(PIXEL_ACC_TAG, ev.metrics.pixel_acc, last)
            if s.speed.enabled and self.ranks.is_main:
                stage = self._enter("speed")
                record = record.replace(speed=self._speed(model, report, entry.info.in_channels))
            if ev.sample_preds is not None and inputs_rel:
                # Written last, just before the record: a run killed earlier leaves no file.
                rel = f"{SAMPLES_DIR}/{record.run_id}.npz"
                write_npz_atomic(
                    self.results_dir / rel,
                    pred=ev.sample_preds,
                    indices=np.arange(len(ev.sample_preds)),
                )
                record = record.replace(samples=Samples(file=rel, inputs_file=inputs_rel))
        except Exception as exc:  # noqa: BLE001 - one architecture's failure must not end the sweep
            record = record.replace(status="error", error=error_section(exc, stage))
        finally:
            if scalars is not None:
                scalars.close()
            if self.device.startswith("cuda"):
                torch.cuda.empty_cache()
        return record

    def key(self, arch: str) -> str:
        """``<suite>__<arch>__<dataset>__<setting>``: names a combination's state and events."""
        s = self.suite
        return re.sub(r"[^A-Za-z0-9._-]+", "-", f"{s.name}__{arch}__{s.dataset}__{s.setting}")

    def train_state_path(self, arch: str) -> Path:
        """Where ``arch``'s saved training state lives (``train.checkpoint_every``)."""
        return self.results_dir / TRAIN_STATE_DIR / f"{self.key(arch)}.pt"

    def _scalars(self, arch: str) -> ScalarWriter | None:
        """``arch``'s TensorBoard event files (None: off, or nothing is trained)."""
        if not self.tensorboard:  # False as well when the suite trains nothing
            return None
        return tensorboard_writer(self.results_dir / TENSORBOARD_DIR / self.key(arch))

    def _train(
        self, arch: str, model: Any, entry: Any, run_id: str, scalars: ScalarWriter | None
    ) -> TrainInfo:
        """Trains ``model`` as the suite says (saving a checkpoint if asked): the record's train.

        The training state goes to :meth:`train_state_path` every ``checkpoint_every`` steps; a
        resumed sweep continues from it (:func:`bench.train.train`, ``resume``).
        """
        s, t, k = self.suite, self.suite.train_for(arch), self.info.num_classes  # t: arch's recipe
        own = entry.info.train_needs_targets  # computes its own losses: class weights never apply
        weights = None if own else self.arch_weights(arch)
        result = train(
            model,
            self.train_set,
            t,
            ignore_index=self.info.ignore_index,
            aux_weights=merged_aux_weights(dict(entry.info.aux_weights), t.aux_weights, arch),
            device=self.device,
            class_weights=weights,
            seed=s.seed,
            progress=self.progress,
            desc=f"train {arch}",
            state_file=self.train_state_path(arch),
            resume=self.resume,
            run_name=self.key(arch),
            scalars=scalars,
            ranks=self.ranks,
            validation=None if self.val_set is None else self._validation(arch, model, run_id),
            semisup=semisup.supervision(self.semi, k, tuple(s.resolution), t.batch_size, model),
        )
        info = {**result.to_dict(), "class_weighting": "none" if own else t.class_weighting}
        if weights is not None:
            info["class_weights"] = [round(w, 6) for w in weights.tolist()]
        if trunk := s.backbone_weights.get(arch):
            info |= {"backbone_weights": trunk, "backbone_sha256": cached_sha256(Path(trunk))}
        if self.checkpoint_dir is not None:
            save_checkpoint(
                Path(self.checkpoint_dir) / f"{arch}.pt",
                model.model,
                arch=arch,
                num_classes=self.info.num_classes,
                meta={"run_id": run_id, "suite": s.name},
            )
        return TrainInfo.from_dict(info)

    def _validation(self, arch: str, model: Any, run_id: str) -> Any:
        """``train.eval_every``'s scoring on the val split; the best model goes next to the state."""
        best = self.train_state_path(arch).with_suffix(".best.pt")
        return sweep_validation(
            self.val_set, self.info, net=model.model, arch=arch, best_file=best,
            device=self.device, batch_size=self.suite.eval.batch_size, ranks=self.ranks,
            meta={"run_id": run_id, "suite": self.suite.name},
        )  # fmt: skip

    def _speed(self, model: Any, report: Any, channels: int) -> Speed:
        """Times the model at the suite's resolution (and relative to the reference network)."""
        s = self.suite
        h, w = s.resolution
        if report is not None and list(report.input_shape[2:]) == [h, w]:
            gmacs = report.gmacs
        else:
            gmacs = cx.count_complexity(model, (1, channels, h, w)).gmacs
        return speed_section(
            model,
            (channels, h, w),
            s.speed,
            gmacs=gmacs,
            device=self.device,
            matmul_gflops_per_s=self.matmul_gflops if s.speed.dtype == "fp32" else None,
        )

    def _enter(self, stage: str) -> str:
        """Tells ``stage_hook`` (the parent process, if any) that ``stage`` starts; returns it."""
        if self.stage_hook is not None:
            self.stage_hook(stage)
        return stage

    # -- one architecture in a child process, under a time limit --------------------------------
    def _killed_record(self, arch: str, error_type: str, stage: str, message: str) -> RunRecord:
        """The error record of an architecture whose child process sent none (killed, died)."""
        record = self._base_record(arch, "model")
        with contextlib.suppress(ValueError):
            record = record.replace(arch_info=arch_section(architectures.get_entry(arch).info))
        error = ErrorInfo(type=error_type, message=message, traceback=None, stage=stage)
        return record.replace(status="error", error=error)

    def run_arch_isolated(self, arch: str, inputs_rel: str | None) -> RunRecord:
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
            class_weights=self.arch_weights(arch),
            resume=self.resume,
            tensorboard=self.tensorboard,
        )
        out = run_in_child(
            _child_main,
            (job,),
            limit_s=limit,
            setup_allowance_s=CHILD_SETUP_ALLOWANCE_S,
            name=f"semseg-bench:{arch}",
        )
        if out.result is not None:
            return out.result
        return self._killed_record(arch, *out.failure(arch, limit, "--timeout-per-arch"))

    def run_baseline(self) -> RunRecord:
        """The constant class-0 prediction scored like a model (the row every model must beat)."""
        title = baseline_title(self.info.class_names[0])
        record = self._base_record(BASELINE_ARCH, "baseline")
        record = record.replace(arch_info=ArchSection(title=title, family="baseline"))
        record = semisup.with_section(self.semi, record)  # reported with its track
        ev = evaluate(
            None,
            self.eval_set,
            self.info,
            constant_class=0,
            device="cpu",
            batch_size=self.suite.eval.batch_size,
            progress=False,
        )
        return record.replace(metrics=metrics_section(ev, self.results_dir, record.run_id))

    # -- the sweep ----------------------------------------------------------------------------
    def run(
        self, archs: list[str], *, resume: bool = False, shard: tuple[int, int] | None = None
    ) -> SweepSummary:
        """Runs the baseline and ``archs``, writing a record for each.

        Args:
            archs: Registry names, run in this order after the ``background`` baseline.
            resume: Skip the combinations that have an ok record (:meth:`done_combinations`),
                and continue the others' training from their saved state, if any.
            shard: ``(i, n)``: run only the i-th of n round-robin slices (see the module).

        Returns:
            What was written, skipped, busy, failed and left to other shards.

        Raises:
            SweepInterrupted: Ctrl-C; it carries the summary of what finished.
        """
        summary = SweepSummary()
        self.resume = resume
        try:
            with run_flags(self.device, self.suite.threads):
                return self._run(archs, resume, shard, summary)
        except KeyboardInterrupt:
            raise SweepInterrupted(summary) from None

    def done_combinations(self) -> set[str]:
        """Returns the names with an ok record here (same suite, dataset, setting, device type)."""
        if not (self.results_dir / RECORDS_DIR).is_dir():
            return set()
        s, dev = self.suite, device_type(self.device)
        return {
            a
            for (su, a, d, st), r in latest_ok(load_records(self.results_dir)).items()
            if (su, d, st) == (s.name, s.dataset, s.setting)
            and device_type(r.env.device if r.env else None) in (dev, "")
        }

    def _write(self, record: RunRecord) -> Path:
        """Writes a record; one that cannot be written (NaN, a bad value) becomes an error."""
        try:
            RunRecord.from_dict(record.to_dict(), source=f"record of {record.arch}")
            return write_record(self.results_dir, record)
        except (ValueError, TypeError) as exc:
            error = ErrorInfo(
                type=type(exc).__name__,
                message=f"record could not be written: {exc}",
                traceback=traceback.format_exc(),
                stage="record",
            )
            failed = record.replace(
                status="error", metrics=None, speed=None, complexity=None, error=error
            )
            return write_record(self.results_dir, failed)

    def _remove_orphan_samples(self, arch: str) -> list[str]:
        """Samples files of this combination that no record names (a run killed in between).

        Called with the combination's lock held, so no live run is about to write the record.
        """
        s = self.suite
        folder = self.results_dir / SAMPLES_DIR
        removed = []
        for path in sorted(folder.glob(f"{s.name}__{arch}__{s.dataset}__*.npz")):
            if not (self.results_dir / RECORDS_DIR / f"{path.name.split('.')[0]}.json").exists():
                path.unlink(missing_ok=True)
                removed.append(str(path))
        return removed

    def _run_one(
        self, arch: str, inputs_rel: str | None, summary: SweepSummary
    ) -> RunRecord | None:
        """Runs one combination under its lock; None when another live run holds it."""
        holder = locks.this_process(self.command, created_stamp(utc_now()))
        path = locks.lock_path(self.results_dir, self.key(arch))
        other = locks.acquire(path, holder)
        if other is not None:
            summary.busy.append((arch, other.describe()))
            self.log(
                f"{arch}: skipped, being run into this folder by {other.describe()}. If that "
                f"run is dead, delete {path} and re-run with --resume."
            )
            return None
        try:
            for orphan in self._remove_orphan_samples(arch):
                summary.orphans_removed.append(orphan)
                self.log(f"{arch}: removed {orphan} (no record names it)")
            if arch == BASELINE_ARCH:
                record = self.run_baseline()
            elif self.timeout_per_arch is None:
                record = self.run_arch(arch, inputs_rel)
            else:
                record = self.run_arch_isolated(arch, inputs_rel)
            summary.written.append(self._write(record))
            summary.finished.append(arch)
            if record.ok:
                self.train_state_path(arch).unlink(missing_ok=True)  # the record supersedes it
            if record.train is not None and record.train.resumed_from_step is not None:
                summary.resumed.append((arch, record.train.resumed_from_step))
        finally:
            locks.release(path, holder)
        if record.error is not None:
            err = record.error
            first = (err.message.strip().splitlines() or [""])[0]
            summary.failed.append((arch, f"{err.stage}: {err.type}: {first}"))
        return record

    def _run(
        self, archs: list[str], resume: bool, shard: tuple[int, int] | None, summary: SweepSummary
    ) -> SweepSummary:
        """:meth:`run` under the run flags: the baseline, then each architecture not yet done."""
        s = self.suite
        combos = [BASELINE_ARCH, *archs]
        mine = shard_items(combos, *shard) if shard else combos
        summary.planned = list(mine)
        summary.not_in_shard = [c for c in combos if c not in mine]
        done = self.done_combinations() if resume else set()
        if BASELINE_ARCH in mine and BASELINE_ARCH not in done:
            self._run_one(BASELINE_ARCH, None, summary)
        archs = [a for a in archs if a in mine]
        if s.speed.enabled and self.ranks.is_main and any(a not in done for a in archs):
            self.matmul_gflops = sp.matmul_rate(self.device)
        inputs_rel = self._write_inputs() if archs else None
        bar = tqdm(archs, desc=f"suite {s.name}", disable=not self.progress, unit="arch")
        for i, arch in enumerate(bar, 1):
            if arch in done:
                summary.skipped.append(arch)
                continue
            bar.set_description(f"suite {s.name} [{i}/{len(archs)}] {arch}")
            start = time.perf_counter()
            record = self._run_one(arch, inputs_rel, summary)
            took = time.perf_counter() - start
            if record is None:
                continue
            if record.error is not None:
                self.log(f"[{i}/{len(archs)}] {arch}: ERROR in {summary.failed[-1][1]}")
            else:
                miou = "n/a" if record.miou is None else f"{100 * record.miou:.1f}%"
                step = record.train.resumed_from_step if record.train else None
                resumed = "" if step is None else f", training resumed from step {step}"
                self.log(f"[{i}/{len(archs)}] {arch}: mIoU {miou} ({took:.0f} s{resumed})")
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
    resume: bool
    tensorboard: bool


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
            tensorboard=job.tensorboard,
        )
        sweep.matmul_gflops = job.matmul_gflops
        sweep.resume = job.resume
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
    conn.send(("result", record))
    conn.close()
