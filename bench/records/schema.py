"""The run record, schema version 3: frozen dataclasses, one per section.

One JSON file per (suite, architecture, dataset, setting) run. This module is the schema: every
field, its type and its bounds are declared here once, and :meth:`RunRecord.from_dict` is the one
validator every reader goes through (the runner builds records with it; the leaderboard, plots,
regression checks, merge and the papers table read them with it). Metric fractions are in
[0, 1]; sizes in MiB (2**20 bytes); times in ms or s as named.

==============  ==========================================================================
section         content
==============  ==========================================================================
(top level)     schema_version (3), run_id (``<suite>__<arch>__<dataset>__<UTC time>_<8 hex>``,
                the file stem), created (UTC ISO-8601), kind (model | baseline | loaded:
                published weights evaluated, not trained here), suite,
                setting (the suite's settings key), arch, dataset, status (ok | error),
                command (the command line that produced the record)
arch_info       title, paper, year, family, reference, input_divisor and the paper's figures
dataset_info    title, num_classes, class_names, palette, ignore_index
protocol        the evaluation protocol as run: split, mode (whole | slide), scales, flip,
                resolution, num_images; file-backed datasets add crop, stride, short_side,
                label_resolution and train_augment (the training transforms)
error           null, or type, message, traceback, stage
metrics         miou, pixel_acc, mean_acc, fwiou, mean_dice, per-class IoU/accuracy/Dice, and
                (schema 3, where recorded) the confusion matrix they come from
complexity      params (the network as evaluated and timed), params_with_aux (every
                registered parameter: auxiliary training heads included), trainable_params,
                macs, gmacs, gflops (= 2 x gmacs), input_shape, counter and version, skipped
                operators, the cross-check, mode
speed           device, dtype, latency_ms {p50, ...}, throughput, peak memory, efficiency,
                threads, page faults, and normalised: latency relative to a reference network
                timed interleaved in the same process (what ``check`` compares); variants
                (where the suite lists them; left out otherwise): the same model timed as
                eager, channels_last, compile, fp16 or bf16, each with its status
train           steps, seconds, final_loss, loss_curve, batch_size, optimizer, lr, ...; amp
                (the training mixed precision), resumed_from_step (the saved step a
                killed run continued from), val_steps, val_miou, best_step and best_val_miou
                (periodic validation) where recorded: left out, not null, otherwise
weights         (kind loaded) the published weights: name, the file loaded and its sha256,
                where they came from, the preprocessing, the published figures
env             versions, device, git commit, seed, threads, backend flags, and cpu: the CPU
                precisely (vendor, family, model, stepping, vector extensions, torch's CPU
                capability, oneDNN/MKL versions, kernel pins; see bench.devices.CpuInfo)
samples         null, or file, inputs_file: predictions kept for the qualitative figure
amendments      changes made to the record after its run, each with the command that made
                them (e.g. parameters re-counted when schema 2 split params/params_with_aux)
semisup         (semi-supervised track only; left out otherwise) method, labelled_fraction or
                labelled_per_class, labelled_images, unlabelled_images, split_file and its
                split_sha256, split_seed, image_labels, params
==============  ==========================================================================

A section is null where it does not apply (a failed run, a baseline, a suite without speed).
The schema stands alone: records can be read with ``json`` alone, and this package imports
nothing of the harness but :mod:`bench.errors`, :mod:`bench.fileio` and :mod:`bench.devices`'
``CpuInfo`` type.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, ClassVar, Literal

from bench.devices import CpuInfo, device_type
from bench.records._codec import Context, dump, parse_dataclass
from bench.records.upgrade import SCHEMA_VERSION, upgrade

Kind = Literal["model", "baseline", "loaded"]
Status = Literal["ok", "error"]
DType = Literal["fp32", "fp16", "bf16"]
Optimizer = Literal["adamw", "sgd", "adam", "rmsprop"]
ClassWeighting = Literal["none", "enet", "median_frequency"]
TrainAmp = Literal["off", "bf16", "fp16"]
InferenceMode = Literal["whole", "slide"]
PeakMemKind = Literal["cuda_max_allocated", "cpu_rss_delta_sampled", "cpu_maxrss_delta"]
FlopConvention = Literal["macs", "2*macs"]
DeviceType = Literal["cpu", "cuda", ""]  # "" where the record names no device

_FRACTION = {"lo": 0.0, "hi": 1.0, "hint": "Metrics are fractions in [0, 1], not percentages."}
_COUNT = {"lo": 0}
_POSITIVE = {"lo": 1}
_NONNEG = {"lo": 0.0}
_NAME = {"nonempty": True}


def _meta(**kwargs: Any) -> Any:
    return field(default=None, metadata=kwargs)


class _Section:
    """``from_dict`` / ``to_dict`` for one section of a record (a frozen dataclass)."""

    key: ClassVar[str] = ""

    @classmethod
    def from_dict(cls, data: Any, source: str = "run record") -> Any:
        """Validates a JSON object as this section (see :meth:`RunRecord.from_dict`).

        Raises:
            RecordError: a field of the wrong type or range, unknown or missing.
        """
        return parse_dataclass(cls, data, cls.key, Context(source))

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready section."""
        return dump(self)


@dataclass(frozen=True)
class ArchSection(_Section):
    """``arch_info``: the registry entry's metadata at the time of the run.

    ``paper_params_with_aux`` says whether ``paper_params`` counts the auxiliary training heads
    (then it compares with ``complexity.params_with_aux``, else with ``complexity.params``);
    ``paper_gflops_with_aux`` whether ``paper_gflops`` does (then no MACs of ours match it: the
    evaluated network never runs them).
    """

    key: ClassVar[str] = "arch_info"

    title: str | None = ""
    paper: str | None = ""
    year: int | None = None
    family: str | None = ""
    reference: str | None = ""
    input_divisor: int | None = _meta(**_POSITIVE)
    in_channels: int | None = _meta(**_POSITIVE)
    paper_params: int | None = _meta(**_COUNT)
    paper_params_with_aux: bool | None = None
    paper_params_note: str | None = ""
    paper_num_classes: int | None = _meta(**_POSITIVE)
    paper_gflops: float | None = _meta(**_NONNEG)
    paper_resolution: tuple[int, int] | None = _meta(**_POSITIVE)
    paper_flops_convention: FlopConvention | None = None
    paper_gflops_with_aux: bool | None = None
    aux_weights: dict[str, float] = field(default_factory=dict)
    notes: str | None = ""


@dataclass(frozen=True)
class DatasetSection(_Section):
    """``dataset_info``: what the class ids mean and how to draw them."""

    key: ClassVar[str] = "dataset_info"

    title: str = ""
    num_classes: int | None = _meta(**_POSITIVE)
    class_names: tuple[str, ...] = ()
    palette: tuple[tuple[int, int, int], ...] | None = _meta(lo=0, hi=255)
    ignore_index: int | None = None


@dataclass(frozen=True)
class TrainAugment(_Section):
    """``protocol.train_augment``: the training transforms of a file-backed dataset."""

    key: ClassVar[str] = "protocol.train_augment"

    crop: tuple[int, int] | None = _meta(**_POSITIVE)
    scale_range: tuple[float, float] | None = _meta(**_NONNEG)
    scale_base: tuple[int, int] | None = _meta(**_POSITIVE)
    flip: bool | None = None
    color_jitter: dict[str, float] | None = _meta(**_NONNEG)
    label_pad_value: int | None = None
    label_interpolation: str | None = None


@dataclass(frozen=True)
class Protocol(_Section):
    """``protocol``: the evaluation protocol as run."""

    key: ClassVar[str] = "protocol"

    split: str | None = None
    mode: InferenceMode | None = None
    scales: tuple[float, ...] | None = _meta(lo=0.0)
    flip: bool | None = None
    resolution: tuple[int, int] | str | None = _meta(**_POSITIVE)
    num_images: int | None = _meta(**_COUNT)
    crop: tuple[int, int] | None = _meta(**_POSITIVE)
    stride: tuple[int, int] | None = _meta(**_POSITIVE)
    short_side: int | None = _meta(**_POSITIVE)
    label_resolution: str | None = None
    train_augment: TrainAugment | None = None


@dataclass(frozen=True)
class ErrorInfo(_Section):
    """``error``: why a run failed, and in which stage."""

    key: ClassVar[str] = "error"

    message: str
    type: str = ""
    traceback: str | None = None
    stage: str | None = None


@dataclass(frozen=True)
class Metrics(_Section):
    """``metrics``: accuracy from one confusion matrix over the evaluation split.

    The bootstrap fields (issue 15) came later and are left out of the JSON while None
    (``omit_none``), so older records round-trip unchanged: ``*_ci95`` are 95% percentile
    bootstrap intervals over the evaluation images (``bootstrap_resamples`` resamples, seed
    ``bootstrap_seed``), resampled from the per-image confusion matrices in ``per_image_file``
    (inside the results folder; ``per_image_sha256`` is its hash).
    """

    key: ClassVar[str] = "metrics"

    miou: float | None = _meta(**_FRACTION)
    pixel_acc: float | None = _meta(**_FRACTION)
    mean_acc: float | None = _meta(**_FRACTION)
    fwiou: float | None = _meta(**_FRACTION)
    mean_dice: float | None = _meta(**_FRACTION)
    per_class_iou: dict[str, float | None] | None = _meta(**_FRACTION)
    per_class_acc: dict[str, float | None] | None = _meta(**_FRACTION)
    per_class_dice: dict[str, float | None] | None = _meta(**_FRACTION)
    confusion_matrix: tuple[tuple[int, ...], ...] | None = _meta(**_COUNT)
    miou_ci95: tuple[float, float] | None = _meta(**_FRACTION, omit_none=True)
    pixel_acc_ci95: tuple[float, float] | None = _meta(**_FRACTION, omit_none=True)
    mean_acc_ci95: tuple[float, float] | None = _meta(**_FRACTION, omit_none=True)
    bootstrap_resamples: int | None = _meta(**_POSITIVE, omit_none=True)
    bootstrap_seed: int | None = _meta(**_COUNT, omit_none=True)
    per_image_file: str | None = _meta(nonempty=True, omit_none=True)
    per_image_sha256: str | None = _meta(nonempty=True, omit_none=True)


@dataclass(frozen=True)
class Crosscheck(_Section):
    """``complexity.crosscheck``: the second MAC counter."""

    key: ClassVar[str] = "complexity.crosscheck"

    counter: str | None = None
    flops: int | None = _meta(**_COUNT)
    macs: int | None = _meta(**_COUNT)
    rel_diff: float | None = _meta(**_NONNEG)


@dataclass(frozen=True)
class Complexity(_Section):
    """``complexity``: parameters and multiply-accumulates at one input shape.

    ``params`` counts the network as evaluated and timed (the parameters the eval-mode forward
    pass uses), the same network ``macs`` counts; ``params_with_aux`` counts every registered
    parameter, auxiliary training heads included.
    """

    key: ClassVar[str] = "complexity"

    params: int | None = _meta(**_COUNT)
    params_with_aux: int | None = _meta(**_COUNT)
    trainable_params: int | None = _meta(**_COUNT)
    macs: int | None = _meta(**_COUNT)
    gmacs: float | None = _meta(**_NONNEG)
    gflops: float | None = _meta(**_NONNEG)
    input_shape: tuple[int, ...] | None = _meta(**_POSITIVE)
    counter: str | None = None
    counter_version: str | None = None
    unsupported_ops: dict[str, int] | None = _meta(**_COUNT)
    non_mac_ops: dict[str, int] | None = _meta(**_COUNT)
    crosscheck: Crosscheck | None = None
    disagreement: bool | None = None
    mode: str | None = None


@dataclass(frozen=True)
class LatencyMs(_Section):
    """``speed.latency_ms``: batch-1 latency statistics in milliseconds."""

    key: ClassVar[str] = "speed.latency_ms"

    p50: float | None = _meta(**_NONNEG)
    p90: float | None = _meta(**_NONNEG)
    p99: float | None = _meta(**_NONNEG)
    mean: float | None = _meta(**_NONNEG)
    std: float | None = _meta(**_NONNEG)
    cv: float | None = _meta(**_NONNEG)
    n: int | None = _meta(**_COUNT)


@dataclass(frozen=True)
class ThroughputPoint(_Section):
    """One batch size of ``speed.throughput_sweep``."""

    key: ClassVar[str] = "speed.throughput_sweep[]"

    batch_size: int = field(metadata=_POSITIVE)
    images_per_s: float | None = _meta(**_NONNEG)
    oom: bool = False


@dataclass(frozen=True)
class Normalised(_Section):
    """``speed.normalised``: latency relative to a reference network timed interleaved."""

    key: ClassVar[str] = "speed.normalised"

    reference: str | None = None
    latency_ratio: float | None = _meta(**_NONNEG)
    latency_ratio_cv: float | None = _meta(**_NONNEG)
    cpu_time_ratio: float | None = _meta(**_NONNEG)
    model_ms_p50: float | None = _meta(**_NONNEG)
    reference_ms_p50: float | None = _meta(**_NONNEG)
    rounds: int | None = _meta(**_COUNT)
    model_calls: int | None = _meta(**_COUNT)
    reference_calls: int | None = _meta(**_COUNT)
    minor_faults: int | None = _meta(**_COUNT)
    threads: int | None = _meta(**_POSITIVE)
    cpu_affinity: tuple[int, ...] | None = _meta(**_COUNT)


_WITH_SPEED = "Required whenever the speed section is present."
SpeedVariantName = Literal["eager", "channels_last", "compile", "fp16", "bf16"]


@dataclass(frozen=True)
class SpeedVariant(_Section):
    """``speed.variants[]``: the model timed again under one deployment setting.

    The suite's speed setting with one change (``bench.speed.variants``): ``eager`` (none),
    ``channels_last``, ``compile`` (``torch.compile``) or ``fp16``/``bf16`` autocast. A failed
    variant has status ``error``, the exception's type and first line in ``error`` and no
    figures. ``speedup`` is the ``eager`` variant's p50 over this one's (same process).
    """

    key: ClassVar[str] = "speed.variants[]"

    name: SpeedVariantName = field(metadata={"required_hint": "Every variant is named."})
    status: Status = "ok"
    error: str | None = None
    dtype: DType | None = None
    channels_last: bool | None = None
    compiled: bool | None = None
    latency_ms: LatencyMs | None = None
    throughput_ips: float | None = _meta(**_NONNEG)
    throughput_batch_size: int | None = _meta(**_POSITIVE)
    compile_s: float | None = _meta(**_NONNEG)
    speedup: float | None = _meta(**_NONNEG)


@dataclass(frozen=True)
class Speed(_Section):
    """``speed``: inference speed on one device and dtype.

    ``variants`` (``speed.variants`` of the suite; left out of the JSON when the suite lists
    none, so older records round-trip unchanged) holds the same model timed under other
    deployment settings; the other fields are the main measurement, which regression checks
    compare.
    """

    key: ClassVar[str] = "speed"

    device: str = field(metadata={"nonempty": True, "required_hint": _WITH_SPEED})
    dtype: DType = field(metadata={"required_hint": _WITH_SPEED})
    device_name: str | None = None
    channels_last: bool | None = None
    input_shape: tuple[int, ...] | None = _meta(**_POSITIVE)
    batch_size: int | None = _meta(**_POSITIVE)
    latency_ms: LatencyMs | None = None
    throughput_ips: float | None = _meta(**_NONNEG)
    throughput_batch_size: int | None = _meta(**_POSITIVE)
    throughput_sweep: tuple[ThroughputPoint, ...] | None = None
    max_batch_fitted: int | None = _meta(**_COUNT)
    peak_mem_mb: float | None = None
    peak_mem_kind: PeakMemKind | None = None
    achieved_gflops_per_s: float | None = _meta(**_NONNEG)
    efficiency: float | None = _meta(**_NONNEG)
    matmul_gflops_per_s: float | None = _meta(**_NONNEG)
    threads: int | None = _meta(**_POSITIVE)
    cpu_affinity: int | None = _meta(**_COUNT)
    minor_faults: int | None = _meta(**_COUNT)
    cudnn_benchmark: bool | None = None
    normalised: Normalised | None = None
    variants: tuple[SpeedVariant, ...] | None = _meta(omit_none=True)

    def best_variant(self) -> SpeedVariant | None:
        """The ok variant with the lowest latency p50 (the first of equals); None if none."""
        timed = [
            v
            for v in self.variants or ()
            if v.status == "ok" and v.latency_ms is not None and v.latency_ms.p50 is not None
        ]
        return min(timed, key=lambda v: v.latency_ms.p50, default=None)  # type: ignore[union-attr]


@dataclass(frozen=True)
class TrainInfo(_Section):
    """``train``: what training ran (a fixed number of optimiser steps).

    ``amp`` (``off``: fp32), ``resumed_from_step``, ``world_size`` and ``sync_bn`` came after
    records were first committed and are left out of the JSON while None (``omit_none``): older
    records, which have none of them, round-trip unchanged; ``amp`` is written by every run
    since, ``resumed_from_step`` only by a run that continued from a saved training state,
    ``world_size`` only by a torchrun job (the number of processes that trained together; a
    plain one-process run leaves it out) and ``sync_bn`` only when such a job synchronised its
    BatchNorm statistics (``true``). ``val_steps``, ``val_miou``, ``best_step`` and
    ``best_val_miou`` (periodic validation on the val split, ``train.eval_every``) only when the
    run validated; ``backbone_weights`` and ``backbone_sha256`` (the ImageNet file the trunk
    started from, ``run --backbone-weights``) only when one was given.
    """

    key: ClassVar[str] = "train"

    steps: int | None = _meta(**_COUNT)
    seconds: float | None = _meta(**_NONNEG)
    final_loss: float | None = None
    loss_curve: tuple[float, ...] | None = None
    batch_size: int | None = _meta(**_POSITIVE)
    optimizer: Optimizer | None = None
    lr: float | None = _meta(**_NONNEG)
    precise_bn_batches: int | None = _meta(**_COUNT)
    class_weighting: ClassWeighting | None = None
    class_weights: tuple[float, ...] | None = _meta(**_NONNEG)
    amp: TrainAmp | None = _meta(omit_none=True)
    resumed_from_step: int | None = _meta(**_COUNT, omit_none=True)
    world_size: int | None = _meta(**_POSITIVE, omit_none=True)
    sync_bn: bool | None = _meta(omit_none=True)
    val_steps: tuple[int, ...] | None = _meta(**_COUNT, omit_none=True)
    val_miou: tuple[float, ...] | None = _meta(**_FRACTION, omit_none=True)
    best_step: int | None = _meta(**_COUNT, omit_none=True)
    best_val_miou: float | None = _meta(**_FRACTION, omit_none=True)
    backbone_weights: str | None = _meta(omit_none=True)
    backbone_sha256: str | None = _meta(omit_none=True)


@dataclass(frozen=True)
class SemiSupInfo(_Section):
    """``semisup``: the semi-supervised setting a run trained under (absent otherwise).

    ``method`` is ``supervised`` for the supervised-only baseline at the same labelled share.
    The labelled subset is the split file's (``split_file``, relative to the results folder,
    with its ``split_sha256``); the other ``unlabelled_images`` of the training split gave
    images only, or with image-level class labels derived from their masks when
    ``image_labels`` (weak supervision). ``params`` holds the method's own settings.
    """

    key: ClassVar[str] = "semisup"

    method: str = field(default="", metadata=_NAME)
    labelled_fraction: float | None = _meta(lo=0.0, hi=1.0)
    labelled_per_class: int | None = _meta(**_POSITIVE)
    labelled_images: int | None = _meta(**_COUNT)
    unlabelled_images: int | None = _meta(**_COUNT)
    split_file: str | None = None
    split_sha256: str | None = None
    split_seed: int | None = _meta(**_COUNT)
    image_labels: bool | None = None
    params: dict[str, int | float | bool] = field(default_factory=dict)


@dataclass(frozen=True)
class PublishedFigure(_Section):
    """``weights.published[]``: a figure the authors published for the weights."""

    key: ClassVar[str] = "weights.published[]"

    metric: str = field(metadata=_NAME)
    value: float = field(metadata={})
    split: str = ""
    source: str = ""


@dataclass(frozen=True)
class WeightsUsed(_Section):
    """``weights``: the published weights a ``loaded`` record evaluated.

    ``declared`` is False for a user's own file evaluated with a declaration's metadata
    (``eval --checkpoint FILE --like NAME``); its sha256 is then the file's, not the declared.
    """

    key: ClassVar[str] = "weights"

    name: str = field(metadata=_NAME)
    file: str = field(metadata=_NAME)
    sha256: str = field(metadata=_NAME)
    declared: bool = True
    repository: str = ""
    commit: str = ""
    path: str = ""
    licence: str = ""
    builder_options: dict[str, int | float | str | bool | None] = field(default_factory=dict)
    preprocess: str = ""
    published: tuple[PublishedFigure, ...] = ()


@dataclass(frozen=True)
class RunFlags(_Section):
    """``env.flags``: backend flags in force during the run."""

    key: ClassVar[str] = "env.flags"

    deterministic_algorithms: bool | None = None
    cudnn_benchmark: bool | None = None
    tf32_matmul: bool | None = None


@dataclass(frozen=True)
class Env(_Section):
    """``env``: provenance of the run (see :func:`bench.provenance.environment`)."""

    key: ClassVar[str] = "env"

    torch: str | None = None
    torchvision: str | None = None
    python: str | None = None
    platform: str | None = None
    device: str | None = None
    device_name: str | None = None
    cpu_model: str | None = None
    gpu_model: str | None = None
    threads: int | None = _meta(**_POSITIVE)
    git_commit: str | None = None
    git_dirty: bool | None = None
    seed: int | None = None
    matmul_gflops_per_s: float | None = _meta(**_NONNEG)
    flags: RunFlags | None = None
    cpu: CpuInfo | None = None


@dataclass(frozen=True)
class Samples(_Section):
    """``samples``: predictions kept for the qualitative figure (paths inside the results dir)."""

    key: ClassVar[str] = "samples"

    file: str | None = None
    inputs_file: str | None = None


@dataclass(frozen=True)
class Amendment(_Section):
    """One change made to a stored record after its run, with the command that made it."""

    key: ClassVar[str] = "amendments[]"

    created: str = field(metadata=_NAME)
    command: str = field(metadata=_NAME)
    fields: tuple[str, ...] = ()
    note: str = ""
    git_commit: str | None = None


_REQUIRED = {"nonempty": True}


@dataclass(frozen=True)
class RunRecord:
    """One run: identity, the sections above, provenance. Read with :meth:`from_dict`."""

    schema_version: int
    run_id: str = field(metadata=_REQUIRED)
    created: str = field(metadata=_REQUIRED)
    kind: Kind = field(metadata={})
    suite: str = field(metadata=_REQUIRED)
    setting: str = field(metadata=_REQUIRED)
    arch: str = field(metadata=_REQUIRED)
    dataset: str = field(metadata=_REQUIRED)
    status: Status = field(metadata={})
    arch_info: ArchSection | None = None
    dataset_info: DatasetSection | None = None
    protocol: Protocol | None = None
    error: ErrorInfo | None = None
    metrics: Metrics | None = None
    complexity: Complexity | None = None
    speed: Speed | None = None
    train: TrainInfo | None = None
    weights: WeightsUsed | None = None
    env: Env | None = None
    command: str = ""
    samples: Samples | None = None
    amendments: tuple[Amendment, ...] = ()
    semisup: SemiSupInfo | None = field(default=None, metadata={"omit_none": True})
    # Added later (left out while None, so older records round-trip): the setting's hash with
    # the seed left out (SuiteConfig.seed_group). Records of one suite, dataset and seed_group
    # differ only by their seed: the leaderboard pools them (mean and std over seeds).
    seed_group: str | None = field(default=None, metadata={"omit_none": True, "nonempty": True})

    # -- reading and writing ------------------------------------------------------------------
    @classmethod
    def from_dict(cls, data: Any, source: str = "run record") -> RunRecord:
        """Validates a parsed JSON record (upgrading older schema versions) and types it.

        Args:
            data: The parsed JSON object.
            source: Where it came from, for messages (a file path, ``"run record #3"``).

        Returns:
            The typed record, at :data:`SCHEMA_VERSION`.

        Raises:
            RecordError: Not an object, an unknown schema version, a missing required field,
                an unknown field, or a value of the wrong type or range. The message names
                ``source`` (and the run id), the field, what was expected, what was found and
                the fix.
        """
        run_id = data.get("run_id") if isinstance(data, dict) else None
        where = f"{source} (run_id {run_id!r})" if isinstance(run_id, str) and run_id else source
        ctx = Context(where)
        if not isinstance(data, dict):
            raise ctx.error("record", "an object (one parsed JSON run record)", type(data).__name__)
        record = parse_dataclass(cls, upgrade(data, ctx), "", ctx)
        record._check(ctx)
        return record

    def _check(self, ctx: Context) -> None:
        """Rules across fields that types alone cannot state."""
        if self.schema_version != SCHEMA_VERSION:  # upgrade() left it: a schema bug
            raise ctx.error("schema_version", str(SCHEMA_VERSION), self.schema_version)
        try:
            _parse_created(self.created)
        except ValueError:
            raise ctx.error(
                "created", "an ISO-8601 timestamp such as '2026-11-27T06:16:00Z'", self.created
            ) from None
        if self.status == "error" and self.error is None:
            raise ctx.error("error.message", "a string (the record has status 'error')", None)

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready record.

        Every field is present, null where it does not apply, except the few ``omit_none``
        fields (``train.amp``, ``train.resumed_from_step``), which are left out while None.
        """
        return dump(self)

    def replace(self, **changes: Any) -> RunRecord:
        """A copy with ``changes`` applied (``dataclasses.replace``)."""
        return dataclasses.replace(self, **changes)

    # -- derived values -----------------------------------------------------------------------
    @property
    def ok(self) -> bool:
        """Whether the run succeeded."""
        return self.status == "ok"

    @property
    def created_at(self) -> datetime:
        """``created`` as an aware UTC datetime."""
        return _parse_created(self.created)

    @property
    def newest_key(self) -> tuple[datetime, str]:
        """Sort key of "newer": creation time, then run id (ids sort in creation order)."""
        return (self.created_at, self.run_id)

    @property
    def device(self) -> str | None:
        """The speed device, else the device the run used (``env.device``)."""
        if self.speed is not None:
            return self.speed.device
        return self.env.device if self.env is not None else None

    @property
    def device_type(self) -> DeviceType:
        """``"cpu"`` or ``"cuda"`` (``""`` when unknown)."""
        kind = device_type(self.device)
        return kind if kind in ("cpu", "cuda") else ""  # type: ignore[return-value]

    @property
    def dtype(self) -> str | None:
        """The speed dtype (None when speed was not measured)."""
        return self.speed.dtype if self.speed is not None else None

    @property
    def miou(self) -> float | None:
        """``metrics.miou`` or None."""
        return self.metrics.miou if self.metrics is not None else None


def _parse_created(text: str) -> datetime:
    value = text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text
    moment = datetime.fromisoformat(value)
    # Naive timestamps are read as UTC, the zone the harness writes.
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
