"""The training settings (a suite's ``train:`` section) and what a training run reports.

:class:`TrainConfig` feeds every suite's setting id (``bench.suites.SuiteConfig.fingerprint``
hashes its fields). Fields added after the ids were first published say how they enter the
hash through their metadata, so that the committed results keep their ids:

* ``{"hash": "if_set"}``: hashed only when the value differs from the default (``amp``: a
  suite that leaves it off keeps its id; one that turns it on gets a new id, as it should,
  since its results differ);
* ``{"hash": False}``: never hashed, because the value does not change any result
  (``checkpoint_every``: a resumed run is bit-identical to an uninterrupted one).

``sync_bn`` is hashed like ``amp``: left off, a suite keeps its id. So are the schedule and
recipe fields added with them (``schedule``, ``step_size``, ``gamma``, ``lr_mult``,
``accumulate``): at their defaults a suite keeps its id.

Fields without the key are always hashed.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import MISSING, dataclass, field, fields
from typing import Literal

from bench.errors import ConfigError
from bench.validation import (
    require_bool,
    require_choice,
    require_float,
    require_int,
    require_text,
)

Optimizer = Literal["adamw", "sgd", "adam", "rmsprop"]
# "enet": 1 / ln(1.02 + p_class), Paszke et al.; "median_frequency": Eigen & Fergus.
ClassWeighting = Literal["none", "enet", "median_frequency"]
Schedule = Literal["poly", "step", "cosine"]
Amp = Literal["off", "bf16", "fp16"]

HASH_KEY = "hash"
"""Field-metadata key saying how a field enters the setting id (see the module docstring)."""


@dataclass(frozen=True)
class TrainConfig:
    """Training budget and recipe: a fixed number of optimiser steps (0 = the fresh model).

    A suite's ``train:`` section builds it (``bench.suites``); the field names, their order and
    defaults are part of every suite's setting id (a hash of the values), so they do not change;
    new fields declare how they are hashed (module docstring). Every value is checked on
    construction (:class:`~bench.errors.ConfigError` naming the field, the allowed range, the
    value found and the fix), so a bad suite fails when it loads.

    ``warmup_steps`` may exceed ``steps``: the rate then ramps linearly for the whole run and
    ends at ``lr * steps / warmup_steps`` (see :func:`~bench.train.poly_lr_factor`). That is
    well defined, and it keeps ``steps: 0`` (evaluate the fresh model) or a shortened copy of a
    suite that sets a warm-up valid.

    Attributes:
        steps: Optimiser steps, >= 0.
        batch_size: Images per step, >= 1.
        optimizer: ``"adamw"`` (decoupled weight decay), ``"sgd"``, ``"adam"`` or
            ``"rmsprop"``; Adam and RMSprop apply ``weight_decay`` as an L2 term added to the
            gradient, as ``torch.optim.Adam``/``RMSprop`` do (not decoupled as in AdamW).
        lr: Base learning rate, finite and > 0.
        weight_decay: Finite, >= 0.
        momentum: SGD and RMSprop momentum in [0, 1) (unused by Adam and AdamW).
        poly_power: ``lr = base * (1 - step / steps) ** power`` after warm-up; finite, >= 0.
        warmup_steps: Steps of linear warm-up, >= 0; it precedes every schedule.
        schedule: The decay after warm-up (see :func:`~bench.train.lr_factor`): ``"poly"``
            (``poly_power``), ``"step"`` (times ``gamma`` every ``step_size`` steps) or
            ``"cosine"`` (half a cosine from 1 to 0 over the steps after warm-up).
        step_size: Steps between decays of the ``step`` schedule, >= 1 (required with it;
            0 = unset, the default).
        gamma: Factor of each decay of the ``step`` schedule, in (0, 1].
        lr_mult: Learning-rate multiplier per parameter-name prefix (``{"head": 10.0}``):
            a parameter takes the multiplier of the longest prefix that names it or one of
            its parent modules (``head`` matches ``head.0.weight``, not ``header.weight``);
            the others keep 1. Each multiplier finite and > 0.
        epochs: The budget in passes over the training set instead of steps (0 = use
            ``steps``): see :meth:`for_samples`. The record's ``train.steps`` is the resolved
            count. Hashed only when set (the setting id then says ``epochs<N>``).
        aux_weights: Loss weight per auxiliary output, replacing the architecture's declared
            ``ArchInfo.aux_weights`` for those names (``{aux: 0.4}``; 0 switches one off). A
            name the architecture does not declare is refused when training starts.
        accumulate: Micro-batches of ``batch_size`` images per optimiser step, >= 1; each
            micro-batch's loss is divided by ``accumulate`` (an effective batch of
            ``accumulate * batch_size``).
        grad_clip: Maximum gradient norm; 0 = off; finite, >= 0.
        class_weighting: ``"none"``, ``"enet"`` (ENet's ``1 / ln(1.02 + p_class)``) or
            ``"median_frequency"`` (Eigen & Fergus's ``median(freq) / freq_c``; see
            :func:`~bench.train.median_frequency_weights`).
        class_weight_samples: Training images used to estimate class frequencies, >= 1.
        precise_bn_batches: After training, recompute BatchNorm statistics over N batches.
        num_workers: DataLoader worker processes, >= 0.
        amp: Mixed precision of the training forward pass and loss: ``"off"`` (fp32),
            ``"bf16"`` (CPU or CUDA autocast) or ``"fp16"`` (CUDA autocast with a gradient
            scaler; refused on the CPU, see :func:`~bench.train.check_amp`). Evaluation and
            precise BN stay in fp32. Hashed only when not ``"off"``.
        checkpoint_every: Save the full training state every N steps (and after the last one)
            so that ``run --resume`` continues a killed run exactly; 0 = off. Not hashed: it
            changes no result.
        eval_every: Score the model on the validation split every N steps (and after the last
            one), log the mIoU, and keep the best model; 0 = off. Not hashed: validation puts
            back every random state it draws from, so it changes no result.
        sync_bn: Under torchrun, BatchNorm statistics over the global batch
            (``torch.nn.SyncBatchNorm``, CUDA only) instead of each process's share; a plain
            run has one process and is unaffected. Hashed only when true.
    """

    steps: int = 200
    batch_size: int = 8
    optimizer: Optimizer = "adamw"
    lr: float = 1e-3
    weight_decay: float = 1e-4
    momentum: float = 0.9
    poly_power: float = 0.9
    warmup_steps: int = 0
    grad_clip: float = 0.0
    class_weighting: ClassWeighting = "none"
    class_weight_samples: int = 200
    precise_bn_batches: int = 0
    num_workers: int = 0
    amp: Amp = field(default="off", metadata={HASH_KEY: "if_set"})
    checkpoint_every: int = field(default=0, metadata={HASH_KEY: False})
    eval_every: int = field(default=0, metadata={HASH_KEY: False})
    sync_bn: bool = field(default=False, metadata={HASH_KEY: "if_set"})
    schedule: Schedule = field(default="poly", metadata={HASH_KEY: "if_set"})
    step_size: int = field(default=0, metadata={HASH_KEY: "if_set"})
    gamma: float = field(default=0.1, metadata={HASH_KEY: "if_set"})
    lr_mult: dict[str, float] = field(default_factory=dict, metadata={HASH_KEY: "if_set"})
    accumulate: int = field(default=1, metadata={HASH_KEY: "if_set"})
    epochs: int = field(default=0, metadata={HASH_KEY: "if_set"})
    aux_weights: dict[str, float] = field(default_factory=dict, metadata={HASH_KEY: "if_set"})

    def __post_init__(self) -> None:
        """Checks every value (see the class docstring for the ranges).

        Raises:
            ConfigError: A value is out of range or of the wrong type.
        """
        require_int("steps", self.steps, minimum=0, fix="Set the number of optimiser steps.")
        require_int("batch_size", self.batch_size, minimum=1, fix="Set at least 1 image per step.")
        require_choice("optimizer", self.optimizer, typing.get_args(Optimizer))
        require_float(
            "lr", self.lr, minimum=0.0, strict=True, fix="Set a learning rate, e.g. 0.001."
        )
        require_float("weight_decay", self.weight_decay, minimum=0.0, fix="Use 0 for none.")
        require_float("momentum", self.momentum, minimum=0.0, below=1.0, fix="The usual is 0.9.")
        require_float("poly_power", self.poly_power, minimum=0.0, fix="Use 0 for a constant lr.")
        require_int("warmup_steps", self.warmup_steps, minimum=0, fix="Use 0 for no warm-up.")
        require_float("grad_clip", self.grad_clip, minimum=0.0, fix="Use 0 for no clipping.")
        require_choice("class_weighting", self.class_weighting, typing.get_args(ClassWeighting))
        require_int(
            "class_weight_samples",
            self.class_weight_samples,
            minimum=1,
            fix="Set how many training images estimate the class frequencies.",
        )
        require_int("precise_bn_batches", self.precise_bn_batches, minimum=0, fix="0 = off.")
        require_int("num_workers", self.num_workers, minimum=0, fix="0 = load in-process.")
        require_choice(
            "amp",
            self.amp,
            typing.get_args(Amp),
            fix="Use off (fp32), bf16 (CPU or CUDA) or fp16 (CUDA only).",
        )
        require_int(
            "checkpoint_every",
            self.checkpoint_every,
            minimum=0,
            fix="Set the steps between saved training states, or 0 for none.",
        )
        require_int(
            "eval_every",
            self.eval_every,
            minimum=0,
            fix="Set the steps between validations, or 0 for none.",
        )
        require_bool("sync_bn", self.sync_bn)
        self._check_schedule()
        if not isinstance(self.lr_mult, dict):
            raise ConfigError(
                f"lr_mult must be a mapping of parameter-name prefix to multiplier; found "
                f"{type(self.lr_mult).__name__} {self.lr_mult!r}. Set e.g. lr_mult: {{head: 10}}."
            )
        for prefix, mult in self.lr_mult.items():
            require_text(f"lr_mult key {prefix!r}", prefix, fix="Name a parameter prefix.")
            require_float(
                f"lr_mult.{prefix}", mult, minimum=0.0, strict=True, fix="Use e.g. 10 or 0.1."
            )
        # 10 and 10.0 are one setting: the setting id must not depend on how YAML spells it.
        object.__setattr__(self, "lr_mult", {k: float(v) for k, v in self.lr_mult.items()})
        require_int(
            "epochs",
            self.epochs,
            minimum=0,
            fix="Set passes over the training set (it replaces steps), or 0 to count steps.",
        )
        if not isinstance(self.aux_weights, dict):
            raise ConfigError(
                f"aux_weights must map auxiliary output names to loss weights; found "
                f"{type(self.aux_weights).__name__} {self.aux_weights!r}. Set e.g. "
                f"aux_weights: {{aux: 0.4}}."
            )
        for name, weight in self.aux_weights.items():
            require_text(f"aux_weights key {name!r}", name, fix="Name an auxiliary output.")
            require_float(f"aux_weights.{name}", weight, minimum=0.0, fix="Use e.g. 0.4.")
        object.__setattr__(self, "aux_weights", {k: float(v) for k, v in self.aux_weights.items()})
        if self.epochs and not self.steps:
            raise ConfigError(
                f"epochs: {self.epochs} sets a training budget, but steps: 0 trains nothing. "
                f"Remove steps: 0 (epochs replaces it), or set epochs: 0."
            )
        require_int(
            "accumulate",
            self.accumulate,
            minimum=1,
            fix="Set the micro-batches per optimiser step, or 1 for none.",
        )

    def _check_schedule(self) -> None:
        """Checks ``schedule``, ``step_size`` and ``gamma``.

        Raises:
            ConfigError: A value is out of range, or ``schedule: step`` lacks ``step_size``.
        """
        require_choice("schedule", self.schedule, typing.get_args(Schedule))
        require_int("step_size", self.step_size, minimum=0, fix="Set e.g. step_size: 1000.")
        require_float("gamma", self.gamma, minimum=0.0, strict=True, fix="The usual is 0.1.")
        if self.gamma > 1:
            raise ConfigError(
                f"gamma must be a number in (0, 1] (a decay); found {self.gamma!r}. The usual "
                f"is 0.1."
            )
        if self.schedule == "step" and self.step_size == 0:
            raise ConfigError(
                "schedule: step needs step_size (steps between decays, >= 1); found step_size "
                "0 (unset). Set e.g. step_size: 1000, or choose schedule: poly or cosine."
            )

    def for_samples(self, num_samples: int) -> TrainConfig:
        """These settings with ``steps`` resolved from ``epochs`` for a training set.

        ``epochs: N`` is ``floor(N * (num_samples // batch_size) / accumulate)`` optimiser
        steps (the loader drops the last incomplete batch of each pass); at least 1.
        Without ``epochs`` the settings are returned unchanged.

        Args:
            num_samples: Images in the training set.
        """
        if not self.epochs:
            return self
        batches = self.epochs * (num_samples // self.batch_size)
        return dataclasses.replace(self, steps=max(1, batches // self.accumulate))

    def hashed_values(self) -> dict[str, object]:
        """The values that enter the setting id, by field name (see the module docstring).

        Returns:
            Every field, less ``{"hash": False}`` fields and ``{"hash": "if_set"}`` fields at
            their default, in field order.
        """
        out: dict[str, object] = {}
        for f in fields(self):
            rule = f.metadata.get(HASH_KEY, True)
            value = getattr(self, f.name)
            default = f.default if f.default_factory is MISSING else f.default_factory()
            if rule is False or (rule == "if_set" and value == default):
                continue
            out[f.name] = value
        return out


@dataclass(frozen=True)
class TrainResult:
    """What a training run did: the ``train`` section of a run record.

    Attributes:
        steps: Optimiser steps taken (those of an earlier, interrupted process included).
        seconds: Wall time of the loop (and precise BN), rounded to ms; a resumed run adds the
            time of the steps it kept from the interrupted one.
        final_loss: Loss of the last step.
        loss_curve: Mean loss over each logged window (``steps // 20`` steps, at least 1).
        batch_size: Images per step.
        optimizer: The optimiser used.
        lr: Base learning rate.
        precise_bn_batches: Batches BatchNorm statistics were recomputed over (0 = not done).
        amp: The mixed precision the forward passes ran in (``"off"``: fp32).
        resumed_from_step: The step a saved training state resumed the run from, else None.
        world_size: Processes that trained it together (a torchrun job, even of one process);
            None for a plain one-process run.
        sync_bn: True when BatchNorm statistics were synchronised over the processes
            (``train.sync_bn`` under torchrun), else None.
        val_steps: The steps of the periodic validations (``train.eval_every``), else None.
        val_miou: Their mIoU (0-1), in the same order, else None.
        best_step: The step of the best validation mIoU, else None.
        best_val_miou: That mIoU (0-1), else None.
    """

    steps: int
    seconds: float
    final_loss: float
    loss_curve: list[float]
    batch_size: int
    optimizer: Optimizer
    lr: float
    precise_bn_batches: int = 0
    amp: Amp = "off"
    resumed_from_step: int | None = None
    world_size: int | None = None
    sync_bn: bool | None = None
    val_steps: list[int] | None = None
    val_miou: list[float] | None = None
    best_step: int | None = None
    best_val_miou: float | None = None

    def to_dict(self) -> dict[str, object]:
        """The JSON-ready dict stored in a run record.

        Returns:
            The fields by name; ``resumed_from_step``, ``world_size``, ``sync_bn`` and the
            validation fields only when they are not None.
        """
        out: dict[str, object] = {
            "steps": self.steps,
            "seconds": self.seconds,
            "final_loss": self.final_loss,
            "loss_curve": self.loss_curve,
            "batch_size": self.batch_size,
            "optimizer": self.optimizer,
            "lr": self.lr,
            "precise_bn_batches": self.precise_bn_batches,
            "amp": self.amp,
        }
        for name in (
            "resumed_from_step",
            "world_size",
            "sync_bn",
            "val_steps",
            "val_miou",
            "best_step",
            "best_val_miou",
        ):
            if getattr(self, name) is not None:
                out[name] = getattr(self, name)
        return out
