"""Benchmark suites: YAML files that fix every setting, the same for each architecture.

A suite names a dataset (and its options), the architectures (``all`` = every registered
entry, including plugins), the training budget, the evaluation split, the speed settings and
the resolution at which complexity is counted. Files are read with ``yaml.safe_load``; unknown
keys and wrong types are rejected with the file, the key, what was expected and what was found.
Built-in suites live in ``bench/suites/*.yaml``; ``--suite`` also accepts a path to a file.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from bench.errors import ConfigError
from bench.speed.config import SpeedConfig

SUITES_DIR = Path(__file__).resolve().parent / "suites"


@dataclass(frozen=True)
class TrainConfig:
    """Training budget: a fixed number of optimiser steps (0 = evaluate the fresh model)."""

    steps: int = 200
    batch_size: int = 8
    optimizer: str = "adamw"  # "adamw" or "sgd"
    lr: float = 1e-3
    weight_decay: float = 1e-4
    momentum: float = 0.9  # SGD only
    poly_power: float = 0.9  # lr = base * (1 - step / steps) ** power
    warmup_steps: int = 0
    grad_clip: float = 0.0  # max grad norm; 0 = off
    class_weighting: str = "none"  # "none" | "enet" (1 / ln(1.02 + p_class), Paszke et al.)
    class_weight_samples: int = 200  # training images used to estimate class frequencies
    precise_bn_batches: int = 0  # after training, recompute BatchNorm statistics over N batches
    num_workers: int = 0


@dataclass(frozen=True)
class EvalConfig:
    split: str = "val"
    batch_size: int = 16
    num_samples: int = 4  # images kept for the qualitative figure


@dataclass(frozen=True)
class ComplexityConfig:
    enabled: bool = True
    input_size: list[int] = field(default_factory=lambda: [512, 512])  # [H, W], batch 1


@dataclass(frozen=True)
class SuiteConfig:
    name: str
    description: str = ""
    dataset: str = "synthetic"
    dataset_options: dict[str, Any] = field(default_factory=dict)
    data_root: str | None = None
    resolution: list[int] = field(default_factory=lambda: [128, 128])  # [H, W] train/eval/speed
    archs: str | list[str] = "all"
    exclude: list[str] = field(default_factory=list)
    arch_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    seed: int = 0
    threads: int | None = None
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    speed: SpeedConfig = field(default_factory=SpeedConfig)
    complexity: ComplexityConfig = field(default_factory=ComplexityConfig)
    source: str = ""

    @property
    def setting(self) -> str:
        """Short key of what a record depends on besides (suite, arch, dataset)."""
        h, w = self.resolution
        return (
            f"{h}x{w}-steps{self.train.steps}-bs{self.train.batch_size}-"
            f"{self.speed.dtype}-seed{self.seed}-{self.fingerprint}"
        )

    @property
    def fingerprint(self) -> str:
        """6 hex digits of a hash of every setting that changes results (not the arch list)."""
        import hashlib
        import json

        data = dataclasses.asdict(self)
        for key in ("name", "description", "archs", "exclude", "source"):
            data.pop(key)
        blob = json.dumps(data, sort_keys=True, default=str).encode()
        return hashlib.sha256(blob).hexdigest()[:6]

    def arch_names(self, registered: list[str]) -> list[str]:
        """Resolve ``archs``/``exclude`` against the registry (unknown names raise)."""
        import architectures

        wanted = list(registered) if self.archs == "all" else list(self.archs)
        for name in [*wanted, *self.exclude]:
            architectures.get_entry(name)  # raises with close matches
        return [a for a in wanted if a not in set(self.exclude)]


_SECTIONS = {
    "train": TrainConfig,
    "eval": EvalConfig,
    "speed": SpeedConfig,
    "complexity": ComplexityConfig,
}


def _type_ok(value: Any, hint: Any) -> bool:
    origin = typing.get_origin(hint)
    if hint is Any:
        return True
    if origin is typing.Literal:
        return value in typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_type_ok(value, h) for h in typing.get_args(hint))
    if hint is type(None):
        return value is None
    if origin is list:
        (item,) = typing.get_args(hint)
        return isinstance(value, list) and all(_type_ok(v, item) for v in value)
    if origin is dict:
        key, val = typing.get_args(hint)
        return isinstance(value, dict) and all(
            _type_ok(k, key) and _type_ok(v, val) for k, v in value.items()
        )
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, hint)


def _type_name(hint: Any) -> str:
    if typing.get_origin(hint) is typing.Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(hint))
    return getattr(hint, "__name__", None) if typing.get_origin(hint) is None else str(hint)


def _build(cls: type, data: Any, where: str, source: str) -> Any:
    if not isinstance(data, dict):
        raise ValueError(
            f"{source}: {where or 'the file'} must be a mapping; found "
            f"{type(data).__name__} {data!r}."
        )
    hints = typing.get_type_hints(cls)
    valid = [f.name for f in dataclasses.fields(cls) if f.name != "source"]
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        path = f"{where}.{key}" if where else key
        if key not in valid:
            raise ValueError(
                f"{source}: unknown key {path!r}. Valid keys{' in ' + where if where else ''}: "
                f"{', '.join(valid)}."
            )
        if key in _SECTIONS and not where:
            kwargs[key] = _build(_SECTIONS[key], value, key, source)
            continue
        hint = hints[key]
        if not _type_ok(value, hint):
            raise ValueError(
                f"{source}: key {path!r} expects {_type_name(hint)}; found "
                f"{type(value).__name__} {value!r}."
            )
        if hint is float and isinstance(value, int):
            value = float(value)
        kwargs[key] = value
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:  # a section's own validation (__post_init__)
        detail = str(exc).rstrip(".")
        raise ConfigError(f"{source}: {where or 'suite'}: {detail}.") from None


def _check(cfg: SuiteConfig) -> None:
    src = cfg.source
    for key, pair in (
        ("resolution", cfg.resolution),
        ("complexity.input_size", cfg.complexity.input_size),
    ):
        if len(pair) != 2 or min(pair) < 1:
            raise ValueError(f"{src}: {key} must be [H, W] with positive ints; found {pair}.")
    if cfg.train.steps < 0 or cfg.train.batch_size < 1:
        raise ValueError(
            f"{src}: train.steps must be >= 0 and train.batch_size >= 1; found "
            f"{cfg.train.steps} and {cfg.train.batch_size}."
        )
    if cfg.train.optimizer not in ("adamw", "sgd"):
        raise ValueError(
            f"{src}: train.optimizer must be 'adamw' or 'sgd'; found {cfg.train.optimizer!r}."
        )
    if "size" in cfg.dataset_options:
        raise ValueError(
            f"{src}: dataset_options.size is set by the suite's resolution; remove "
            f"it and set resolution: [H, W] instead."
        )
    if cfg.train.class_weighting not in ("none", "enet"):
        raise ValueError(
            f"{src}: train.class_weighting must be 'none' or 'enet'; found "
            f"{cfg.train.class_weighting!r}."
        )
    if isinstance(cfg.archs, str) and cfg.archs != "all":
        raise ValueError(f"{src}: archs must be 'all' or a list of names; found {cfg.archs!r}.")
    if cfg.threads is not None and cfg.threads < 1:
        raise ValueError(
            f"{src}: threads must be a positive int or null (torch's default); found {cfg.threads}."
        )
    if cfg.train.warmup_steps < 0:
        raise ValueError(f"{src}: train.warmup_steps must be >= 0; found {cfg.train.warmup_steps}.")
    if cfg.eval.batch_size < 1 or cfg.eval.num_samples < 0:
        raise ValueError(
            f"{src}: eval.batch_size must be >= 1 and eval.num_samples >= 0; found "
            f"{cfg.eval.batch_size} and {cfg.eval.num_samples}."
        )


def available_suites() -> list[str]:
    return sorted(p.stem for p in SUITES_DIR.glob("*.yaml"))


def load_suite(name_or_path: str) -> SuiteConfig:
    """Load a built-in suite by name or a suite file by path.

    Raises:
        FileNotFoundError: ``name_or_path`` ends in ``.yaml``/``.yml`` but no such file exists.
        ValueError: an unknown suite name (with close matches), invalid YAML, or a setting with
            an unknown key, a wrong type or an out-of-range value (naming the file and key).
    """
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") and not path.is_file():
        raise FileNotFoundError(
            f"Suite file {path} does not exist. Pass the path of an existing .yaml file, or a "
            f"built-in suite name: {', '.join(available_suites())}."
        )
    if path.suffix not in (".yaml", ".yml"):
        path = SUITES_DIR / f"{name_or_path}.yaml"
        if not path.is_file():
            import difflib

            close = difflib.get_close_matches(name_or_path, available_suites(), n=3)
            hint = f" Did you mean: {', '.join(close)}?" if close else ""
            raise ValueError(
                f"Unknown suite {name_or_path!r}.{hint} Built-in suites: "
                f"{', '.join(available_suites())}; or pass a path to a .yaml file."
            )
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ValueError(f"Suite file {path} is not valid YAML: {exc}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ValueError(
            f"Suite file {path} must hold a mapping of settings (key: value lines); found "
            f"{type(data).__name__} {data!r}. See bench/suites/quick.yaml for the format."
        )
    data = dict(data)
    data.setdefault("name", path.stem)
    cfg = _build(SuiteConfig, data, "", f"Suite file {path}")
    cfg = dataclasses.replace(cfg, source=str(path))
    _check(cfg)
    return cfg
