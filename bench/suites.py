"""Benchmark suites: YAML files that fix every setting, the same for each architecture.

A suite names a dataset (and its options), the architectures (``all`` = every registered
entry, including plugins), the training budget, the evaluation split, the speed settings and
the resolution at which complexity is counted. Files are read with ``yaml.safe_load``; unknown
keys, wrong types and out-of-range values are rejected when the file loads, before any work,
with the file, the key, what was expected, what was found and the fix. Each section's dataclass
checks its own ranges in ``__post_init__`` (the training section, :class:`bench.train.TrainConfig`,
lives with the training loop: training does not import suites). Built-in suites live in
``bench/suites/*.yaml``; ``--suite`` also accepts a path to a file.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from bench.errors import ConfigError, MissingFileError
from bench.fileio import cached_sha256
from bench.speed.config import SpeedConfig
from bench.train import TrainConfig
from bench.train.config import HASH_KEY
from bench.train.semisup import SemiSupConfig
from bench.validation import require_int, require_size, require_text

SUITES_DIR = Path(__file__).resolve().parent / "suites"

# The largest seed torch.manual_seed and torch.Generator.manual_seed accept (a uint64).
_MAX_SEED = 2**64 - 1


def published_setting(split: str, resolution: tuple[int, int], protocol: str = "standard") -> str:
    """The setting id of published weights scored on ``split`` at ``(H, W)``.

    Nothing is trained, so nothing else changes the result (``test-360x480-published``). Weights
    scored under their authors' own protocol, where it differs from the dataset's (another label
    resolution, void counted as a class), are a setting of their own
    (``test-512x512-authors``): their numbers are not comparable with the standard rows.
    """
    tag = "published" if protocol == "standard" else protocol
    return f"{split}-{resolution[0]}x{resolution[1]}-{tag}"


@dataclass(frozen=True)
class EvalConfig:
    """How each trained model is evaluated (a suite's ``eval:`` section).

    Attributes:
        split: The dataset split scored (the dataset checks that it exists when it is built).
        batch_size: Images per forward pass, >= 1.
        num_samples: Predictions of the first N images kept for the qualitative figure, >= 0.
    """

    split: str = "val"
    batch_size: int = 16
    num_samples: int = 4

    def __post_init__(self) -> None:
        """Checks every value.

        Raises:
            ConfigError: A value is out of range or of the wrong type.
        """
        require_text("split", self.split, fix="Name a split of the dataset, e.g. val or test.")
        require_int("batch_size", self.batch_size, minimum=1, fix="Set at least 1 image.")
        require_int("num_samples", self.num_samples, minimum=0, fix="Use 0 to keep none.")


@dataclass(frozen=True)
class ComplexityConfig:
    """Parameter and MAC counting (a suite's ``complexity:`` section).

    Attributes:
        enabled: Whether to count.
        input_size: ``[H, W]`` of the batch-1 input the MACs are counted at; positive ints.
    """

    enabled: bool = True
    input_size: list[int] = field(default_factory=lambda: [512, 512])

    def __post_init__(self) -> None:
        """Checks every value.

        Raises:
            ConfigError: ``input_size`` is not two positive ints.
        """
        require_size("input_size", self.input_size, fix="Set e.g. input_size: [512, 512].")


def _check_backbone_weights(value: object) -> None:
    """``backbone_weights``: a mapping of architecture name to an existing file."""
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) and v for k, v in value.items()
    ):
        raise ConfigError(
            f"backbone_weights must map architecture names to weights files; found {value!r}. "
            f"Set e.g. backbone_weights: {{linknet: weights/resnet18-f37072fd.pth}}."
        )
    for arch, path in value.items():
        if not Path(path).is_file():
            raise ConfigError(
                f"backbone_weights.{arch}: no file {path} (relative paths start from "
                f"{Path.cwd()}). Fix: name the ImageNet weights file of {arch}'s trunk, e.g. "
                f"torchvision's resnet18-f37072fd.pth, copied to this machine (nothing is "
                f"downloaded)."
            )


@dataclass(frozen=True)
class SuiteConfig:
    """One benchmark suite: every setting, the same for each architecture.

    The field names, order and defaults (and those of the sections) feed :attr:`fingerprint`,
    the hash in every record's setting id: changing them changes the id of every suite.

    Attributes:
        name: The suite's name (the file stem unless the file sets one); used in file names.
        description: One line for ``list suites``.
        dataset: A registered dataset name (checked when the dataset is built).
        dataset_options: Keyword options of the dataset builder; ``size`` is the resolution's.
        data_root: Folder of a file-backed dataset, or ``None`` for its default.
        resolution: ``[H, W]`` for training, evaluation and timing; positive ints.
        archs: ``"all"`` (every registered entry, plugins included) or a non-empty list.
        exclude: Names removed from ``archs``.
        arch_options: Builder keyword options per architecture name.
        backbone_weights: ImageNet weights of the trunk per architecture name, a file each
            (``{linknet: weights/resnet18-f37072fd.pth}``, relative to the folder ``run`` is
            started from; ``run --backbone-weights`` sets it): the architecture is built with
            ``pretrained_backbone=True`` from that file (``weights_only=True``, checked against
            torchvision's network) instead of from scratch. Part of :attr:`fingerprint` only
            when non-empty, by each file's sha256 (not its path).
        weights: Published weights to score instead of training (``"all"``: every declared
            entry of the suite's dataset; see ``list weights``). Such a suite trains nothing
            (``train.steps: 0``) and writes records of kind ``loaded``.
        seed: Seed of model initialisation and data order, in [0, 2**64 - 1].
        seeds: Several seeds (``run --seeds 0,1,2`` sets it): the suite runs once per seed
            (:meth:`variants`), each a setting of its own; empty: ``seed`` alone.
        threads: torch CPU threads, >= 1, or ``None`` for torch's default.
        train: The training settings.
        recipes: Overrides of ``train`` per architecture name (``{enet: {optimizer: adam,
            lr: 5.0e-4}}``): the architecture trains with ``train`` updated by its entry
            (:meth:`train_for`); the others with ``train``. Checked when the suite loads
            (train keys, types and ranges; names against ``archs`` when it is a list) and
            against the registry in :meth:`arch_names`. Part of :attr:`fingerprint` only
            when non-empty, so suites without recipes keep their ids.
        speed: The timing settings.
        complexity: The counting settings.
        semisup: The semi-supervised track's settings (:class:`~bench.train.semisup.SemiSupConfig`:
            methods and labelled shares; the suite runs once per combination,
            :meth:`variants`), or None: supervised training on the whole training split.
            Part of :attr:`fingerprint` only when set.
        source: The file the suite was read from (set by :func:`load_suite`).
    """

    name: str
    description: str = ""
    dataset: str = "synthetic"
    dataset_options: dict[str, Any] = field(default_factory=dict)
    data_root: str | None = None
    resolution: list[int] = field(default_factory=lambda: [128, 128])  # [H, W] train/eval/speed
    archs: str | list[str] = "all"
    exclude: list[str] = field(default_factory=list)
    arch_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    backbone_weights: dict[str, str] = field(default_factory=dict)
    weights: str | list[str] = field(default_factory=list)
    seed: int = 0
    threads: int | None = None
    train: TrainConfig = field(default_factory=TrainConfig)
    recipes: dict[str, dict[str, Any]] = field(default_factory=dict)
    eval: EvalConfig = field(default_factory=EvalConfig)
    speed: SpeedConfig = field(default_factory=SpeedConfig)
    complexity: ComplexityConfig = field(default_factory=ComplexityConfig)
    semisup: SemiSupConfig | None = None
    seeds: list[int] = field(default_factory=list)
    source: str = ""

    def __post_init__(self) -> None:
        """Checks the top-level values (each section checks its own).

        Raises:
            ConfigError: A value is out of range or of the wrong type.
        """
        require_text("name", self.name, fix="Set name: to a short identifier.")
        if "/" in self.name or "\\" in self.name:  # the name is part of result file names
            raise ConfigError(
                f"name must not contain '/' or '\\'; found {self.name!r}. Use a plain name, "
                f"e.g. the file's stem."
            )
        require_text("dataset", self.dataset, fix="Name a dataset (see `list datasets`).")
        if "size" in self.dataset_options:
            raise ConfigError(
                "dataset_options.size is set by the suite's resolution; remove "
                "it and set resolution: [H, W] instead."
            )
        require_size("resolution", self.resolution, fix="Set e.g. resolution: [128, 128].")
        if self.archs != "all" and not (isinstance(self.archs, list) and self.archs):
            raise ConfigError(
                f"archs must be 'all' or a non-empty list of names; found {self.archs!r}. "
                f"See `python run_bench.py list archs`."
            )
        if self.weights != "all" and not (
            isinstance(self.weights, list) and all(isinstance(w, str) for w in self.weights)
        ):
            raise ConfigError(
                f"weights must be 'all' or a list of weights names; found {self.weights!r}. "
                f"See `python run_bench.py list weights`."
            )
        if self.weights and self.train.steps > 0:
            raise ConfigError(
                f"A suite with weights scores published models and trains nothing; found "
                f"train.steps: {self.train.steps}. Set train.steps: 0, or remove weights."
            )
        require_int("seed", self.seed, minimum=0, maximum=_MAX_SEED, fix="Set e.g. seed: 0.")
        for seed in self.seeds:
            require_int("seeds[]", seed, minimum=0, maximum=_MAX_SEED, fix="Set e.g. [0, 1, 2].")
        methods = [] if self.semisup is None else self.semisup.method
        if "gan_ss" in (methods if isinstance(methods, list) else [methods]) and any(
            t.eval_every for t in self.train_configs()
        ):
            raise ConfigError(
                "semisup method gan_ss does not support train.eval_every yet (its segmenter has "
                "a K + 1-th 'fake' output that periodic validation does not drop). Set "
                "train.eval_every: 0, or leave gan_ss out."
            )
        if self.semisup is not None and self.weights:
            raise ConfigError(
                "A suite with weights scores published models and trains nothing; semisup "
                "needs training. Remove one of them."
            )
        if self.threads is not None:
            require_int("threads", self.threads, minimum=1, fix="Use null for torch's default.")
        _check_backbone_weights(self.backbone_weights)
        object.__setattr__(self, "recipes", _checked_recipes(self.recipes, self.archs))
        for arch in self.recipes:
            self.train_for(arch)  # TrainConfig checks the merged ranges

    def train_for(self, arch: str) -> TrainConfig:
        """The training settings of ``arch``: ``train`` with its ``recipes`` entry, if any.

        Raises:
            ConfigError: The merged settings are out of range (named as ``recipes.<arch>``).
        """
        override = self.recipes.get(arch)
        if not override:
            return self.train
        try:
            return dataclasses.replace(self.train, **override)
        except ConfigError as exc:
            raise ConfigError(f"recipes.{arch}: {exc}") from None

    def train_configs(self) -> list[TrainConfig]:
        """The suite's ``train`` and then each recipe's merged settings, in file order."""
        return [self.train, *(self.train_for(arch) for arch in self.recipes)]

    @property
    def setting(self) -> str:
        """Short key of what a record depends on besides (suite, arch, dataset).

        A suite of published weights trains nothing: its key is the split and resolution
        (``test-360x480-published``), as for ``eval --weights ... --results-dir``.
        """
        h, w = self.resolution
        if self.weights:
            return published_setting(self.eval.split, (h, w))
        budget = f"epochs{self.train.epochs}" if self.train.epochs else f"steps{self.train.steps}"
        semi = f"-{self.semisup.tag}" if self.semisup is not None and self.semisup.concrete else ""
        return (
            f"{h}x{w}-{budget}-bs{self.train.batch_size}-"
            f"{self.speed.dtype}-seed{self.seed}{semi}-{self.fingerprint}"
        )

    @property
    def seed_group(self) -> str:
        """6 hex digits naming this setting whatever its seed: :attr:`fingerprint` at seed 0.

        Runs of one suite that differ only by ``seed`` (``run --seeds 0,1,2``) share it; the
        leaderboard pools their mIoU over seeds by it.
        """
        return dataclasses.replace(self, seed=0).fingerprint

    def variants(self) -> list[SuiteConfig]:
        """The concrete suites this one runs: one per seed and ``semisup`` combination.

        A suite without ``seeds`` and with at most one method and share is its only variant.
        Methods vary slowest, then shares, then seeds; each variant has its own setting id.
        """
        seeds = self.seeds or [self.seed]
        semis = list(self.semisup.variants()) if self.semisup is not None else [None]
        if len(seeds) == 1 and len(semis) == 1 and semis[0] == self.semisup and not self.seeds:
            return [self]
        return [
            dataclasses.replace(self, semisup=semi, seed=seed, seeds=[])
            for semi in semis
            for seed in seeds
        ]

    def weights_names(self) -> list[str]:
        """The declared weights this suite scores, in declaration order.

        Raises:
            ArchitectureError: A name that is not declared (the message lists the declared).
        """
        import architectures

        if self.weights == "all":
            return [w.name for w in architectures.weights_entries() if w.dataset == self.dataset]
        return [architectures.get_weights(name).name for name in self.weights]

    @property
    def fingerprint(self) -> str:
        """6 hex digits of a hash of every setting that changes results (not the arch list).

        ``recipes`` enters it only when non-empty (each override as written, less
        ``checkpoint_every``), so suites without recipes keep the ids they had before recipes
        existed; a suite with recipes has an id of its own, and changing a recipe changes it.
        The ``bs`` of :attr:`setting` stays the suite's ``train.batch_size`` even where a
        recipe sets another (the record's ``train.batch_size`` says what ran).
        ``speed.variants`` never enters it (timed last, it changes no other figure).
        """
        import hashlib
        import json

        data = dataclasses.asdict(self)
        for key in ("name", "description", "archs", "exclude", "weights", "source"):
            data.pop(key)
        data.pop("seeds")  # each variant hashes its own seed
        # speed.variants adds figures of its own and changes none of the others (it is timed
        # last): never in the id, so a suite that adds variants keeps its results and baseline.
        data["speed"].pop("variants")
        if self.semisup is None:
            data.pop("semisup")  # added later: suites without it keep their ids
        data.pop("backbone_weights")  # added later: by content, and only when set
        if self.backbone_weights:
            data["backbone_weights"] = {
                arch: cached_sha256(Path(path)) for arch, path in self.backbone_weights.items()
            }
        if not self.recipes:
            data.pop("recipes")  # added later: suites without recipes keep their ids
        else:  # each override as written, less those that change no result (checkpoint_every)
            unhashed = {
                f.name
                for f in dataclasses.fields(TrainConfig)
                if f.metadata.get(HASH_KEY, True) is False
            }
            data["recipes"] = {
                arch: {k: v for k, v in over.items() if k not in unhashed}
                for arch, over in self.recipes.items()
            }
        # Training fields added later enter the hash only when set (or never, when they change
        # no result): the committed results keep their ids (bench.train.config).
        data["train"] = self.train.hashed_values()
        blob = json.dumps(data, sort_keys=True, default=str).encode()
        return hashlib.sha256(blob).hexdigest()[:6]

    def arch_names(self, registered: list[str]) -> list[str]:
        """Resolve ``archs``/``exclude`` against the registry.

        Names come from the registry, so they are checked here (after plugins have registered),
        not when the file loads; ``run`` calls this before any work.

        Args:
            registered: The registered names, in registry order (``archs: all`` keeps it).

        Returns:
            The architectures to run, in the suite's order.

        Raises:
            ConfigError: a name in ``archs``, ``exclude``, ``arch_options`` or ``recipes`` is
                not registered
                (naming the suite, the key and close matches); a misspelt ``arch_options`` key
                would otherwise drop its options silently.
        """
        import architectures

        wanted = list(registered) if self.archs == "all" else list(self.archs)
        where = f"Suite file {self.source}" if self.source else f"Suite {self.name!r}"
        for key, names in (
            ("archs", wanted),
            ("exclude", self.exclude),
            ("arch_options", list(self.arch_options)),
            ("backbone_weights", list(self.backbone_weights)),
            ("recipes", list(self.recipes)),
        ):
            for name in names:
                try:
                    architectures.get_entry(name)
                except (
                    ValueError
                ) as exc:  # architectures/ raises plain errors (it imports no bench)
                    raise ConfigError(f"{where}: {key}: {exc}") from None
        return [a for a in wanted if a not in set(self.exclude)]


def _checked_recipes(recipes: Any, archs: str | list[str]) -> dict[str, dict[str, Any]]:
    """``recipes`` checked against ``TrainConfig``'s keys and types, ints of floats made floats.

    Raises:
        ConfigError: Not a mapping of mappings, a name not in ``archs`` (when it is a list), an
            unknown train key or a value of the wrong type.
    """
    if not isinstance(recipes, dict) or not all(isinstance(v, dict) for v in recipes.values()):
        raise ConfigError(
            f"recipes must map architecture names to overrides of train:; found {recipes!r}. "
            f"Set e.g. recipes: {{enet: {{optimizer: adam, lr: 5.0e-4}}}}."
        )
    hints = typing.get_type_hints(TrainConfig)
    out: dict[str, dict[str, Any]] = {}
    for arch, override in recipes.items():
        if isinstance(archs, list) and arch not in archs:
            raise ConfigError(
                f"recipes names {arch!r}, which is not in the suite's archs "
                f"({', '.join(map(str, archs))}). Add it to archs, or remove its recipe."
            )
        out[arch] = {}
        for key, value in override.items():
            if key not in hints:
                raise ConfigError(
                    f"unknown key 'recipes.{arch}.{key}'. Valid keys (those of train:): "
                    f"{', '.join(f.name for f in dataclasses.fields(TrainConfig))}."
                )
            if value is False and _is_choice(hints[key], "off"):
                value = "off"  # YAML 1.1 reads a bare `off` as false
            if not _type_ok(value, hints[key]):
                raise ConfigError(
                    f"key 'recipes.{arch}.{key}' expects {_type_name(hints[key])}; found "
                    f"{type(value).__name__} {value!r}."
                )
            out[arch][key] = float(value) if hints[key] is float else value
    return out


_SECTIONS = {
    "train": TrainConfig,
    "eval": EvalConfig,
    "speed": SpeedConfig,
    "complexity": ComplexityConfig,
    "semisup": SemiSupConfig,
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


def _is_choice(hint: Any, choice: str) -> bool:
    """Whether ``hint`` is a ``Literal`` that allows ``choice``."""
    return typing.get_origin(hint) is typing.Literal and choice in typing.get_args(hint)


def _type_name(hint: Any) -> str:
    if typing.get_origin(hint) is typing.Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(hint))
    return getattr(hint, "__name__", None) if typing.get_origin(hint) is None else str(hint)


def _build(cls: type, data: Any, where: str, source: str) -> Any:
    if not isinstance(data, dict):
        raise ConfigError(
            f"{source}: {where or 'the file'} must be a mapping; found "
            f"{type(data).__name__} {data!r}."
        )
    hints = typing.get_type_hints(cls)
    valid = [f.name for f in dataclasses.fields(cls) if f.name != "source"]
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        path = f"{where}.{key}" if where else key
        if key not in valid:
            raise ConfigError(
                f"{source}: unknown key {path!r}. Valid keys{' in ' + where if where else ''}: "
                f"{', '.join(valid)}."
            )
        if key in _SECTIONS and not where:
            kwargs[key] = _build(_SECTIONS[key], value, key, source)
            continue
        if key == "recipes" and not where:  # SuiteConfig checks it (_checked_recipes)
            kwargs[key] = value
            continue
        hint = hints[key]
        if value is False and _is_choice(hint, "off"):
            value = "off"  # YAML 1.1 reads a bare `off` as false (train.amp: off)
        if not _type_ok(value, hint):
            yaml_bool = (
                " (YAML reads a bare on/off/yes/no as a bool; quote the value)"
                if isinstance(value, bool) and typing.get_origin(hint) is typing.Literal
                else ""
            )
            raise ConfigError(
                f"{source}: key {path!r} expects {_type_name(hint)}; found "
                f"{type(value).__name__} {value!r}{yaml_bool}."
            )
        if hint is float and isinstance(value, int):
            value = float(value)
        kwargs[key] = value
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:  # a section's own validation (__post_init__)
        detail = str(exc).rstrip(".")
        raise ConfigError(f"{source}: {where or 'suite'}: {detail}.") from None


def available_suites() -> list[str]:
    """Names of the built-in suites (``bench/suites/*.yaml``), sorted.

    Returns:
        The file stems.
    """
    return sorted(p.stem for p in SUITES_DIR.glob("*.yaml"))


def load_suite(name_or_path: str) -> SuiteConfig:
    """Load a built-in suite by name or a suite file by path.

    Every value is checked here, before any work: each config's ``__post_init__`` checks its
    ranges, and errors name the suite file and the key.

    Args:
        name_or_path: A built-in suite name or the path of a ``.yaml``/``.yml`` file.

    Returns:
        The suite, with ``source`` set to the file read.

    Raises:
        MissingFileError: ``name_or_path`` ends in ``.yaml``/``.yml`` but no such file exists.
        ConfigError: an unknown suite name (with close matches), invalid YAML, or a setting with
            an unknown key, a wrong type or an out-of-range value (naming the file and key).
    """
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") and not path.is_file():
        raise MissingFileError(
            f"Suite file {path} does not exist. Pass the path of an existing .yaml file, or a "
            f"built-in suite name: {', '.join(available_suites())}."
        )
    if path.suffix not in (".yaml", ".yml"):
        path = SUITES_DIR / f"{name_or_path}.yaml"
        if not path.is_file():
            import difflib

            close = difflib.get_close_matches(name_or_path, available_suites(), n=3)
            hint = f" Did you mean: {', '.join(close)}?" if close else ""
            raise ConfigError(
                f"Unknown suite {name_or_path!r}.{hint} Built-in suites: "
                f"{', '.join(available_suites())}; or pass a path to a .yaml file."
            )
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"Suite file {path} is not valid YAML: {exc}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"Suite file {path} must hold a mapping of settings (key: value lines); found "
            f"{type(data).__name__} {data!r}. See bench/suites/quick.yaml for the format."
        )
    data = dict(data)
    data.setdefault("name", path.stem)
    cfg = _build(SuiteConfig, data, "", f"Suite file {path}")
    cfg = dataclasses.replace(cfg, source=str(path))
    return cfg


def with_backbone_weights(suite: SuiteConfig, specs: list[str], archs: list[str]) -> SuiteConfig:
    """``suite`` with ``run --backbone-weights`` added to its ``backbone_weights``.

    Args:
        suite: The loaded suite.
        specs: Each ``ARCH=FILE`` (that architecture) or ``FILE`` (every one of ``archs``).
        archs: The architectures this run runs.

    Returns:
        A new suite (its setting id then includes each file's sha256).

    Raises:
        ConfigError: ``ARCH`` is not run, or a file does not exist.
    """
    chosen = dict(suite.backbone_weights)
    for spec in specs:
        arch, sep, path = spec.partition("=")
        if sep and "/" not in arch and "\\" not in arch and not Path(spec).is_file():
            if arch not in archs:
                raise ConfigError(
                    f"--backbone-weights {spec}: {arch!r} is not run here (running: "
                    f"{', '.join(archs)}). Fix: name one of those, or choose it with --archs."
                )
            chosen[arch] = path
        else:  # a file for every architecture run
            chosen |= dict.fromkeys(archs, spec)
    try:
        return dataclasses.replace(suite, backbone_weights=chosen)
    except ConfigError as exc:
        raise ConfigError(f"--backbone-weights: {exc}") from None
