"""Tests for bench.suites: loading, validation and the messages a user sees for a bad file."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import yaml

import architectures
from bench import cli
from bench.errors import ConfigError, MissingFileError
from bench.suites import (
    SUITES_DIR,
    ComplexityConfig,
    EvalConfig,
    SpeedConfig,
    SuiteConfig,
    available_suites,
    load_suite,
)
from bench.train import TrainConfig
from tests.factories import TINY_SUITE, write_suite

# -- built-in suites and the test suite --------------------------------------------------------


def test_builtin_suites_are_listed():
    assert {"quick", "smoke"} <= set(available_suites())


def test_smoke_suite_loads_with_its_file_values():
    s = load_suite("smoke")
    assert s.name == "smoke"
    assert s.dataset == "synthetic"
    assert s.dataset_options == {"num_samples": 160}
    assert s.resolution == [64, 64]
    assert s.archs == ["tv_lraspp_mobilenet_v3_large", "tv_deeplabv3_mobilenet_v3_large"]
    assert s.train.steps == 40 and s.train.batch_size == 8 and s.train.lr == 0.002
    assert s.speed.max_batch == 8 and s.speed.min_time_s == 0.3
    assert s.complexity.input_size == [64, 64]
    assert s.source.endswith("smoke.yaml")


def test_quick_suite_loads_with_its_file_values():
    s = load_suite("quick")
    raw = yaml.safe_load((SUITES_DIR / "quick.yaml").read_text())
    assert s.archs == "all"
    assert s.dataset_options == raw["dataset_options"]
    assert s.train.steps == raw["train"]["steps"] > 0
    assert s.complexity.input_size == raw["complexity"]["input_size"]
    # Keys the file leaves out keep the dataclass defaults.
    assert s.train.poly_power == 0.9 and s.train.warmup_steps == raw["train"]["warmup_steps"]
    assert s.speed.dtype == "fp32" and s.speed.channels_last is False


def test_tiny_test_suite_loads_by_path():
    s = load_suite(str(TINY_SUITE))
    assert s.name == "tiny_suite"  # the file stem, since the file sets no name
    assert s.threads == 1
    assert s.train.steps == 3 and s.train.batch_size == 2
    assert s.source == str(TINY_SUITE)


def test_setting_string_names_what_a_record_depends_on():
    tiny = load_suite(str(TINY_SUITE))
    assert tiny.setting == f"32x32-steps3-bs2-fp32-seed0-{tiny.fingerprint}"
    s = SuiteConfig(
        name="x",
        resolution=[96, 128],
        seed=7,
        train=TrainConfig(steps=0, batch_size=4),
        speed=SpeedConfig(dtype="bf16"),
    )
    assert s.setting == f"96x128-steps0-bs4-bf16-seed7-{s.fingerprint}"
    # The fingerprint changes with any result-relevant setting, not with the name or arch list.
    assert dataclasses.replace(s, name="y", archs=["fcn8s"]).fingerprint == s.fingerprint
    assert dataclasses.replace(s, dataset_options={"num_classes": 4}).fingerprint != s.fingerprint
    assert (
        dataclasses.replace(s, train=TrainConfig(steps=0, batch_size=4, lr=0.5)).fingerprint
        != s.fingerprint
    )


def test_integer_given_for_a_float_key_becomes_a_float(tmp_path):
    s = load_suite(str(write_suite(tmp_path, "train: {lr: 1}\nspeed: {min_time_s: 2}\n")))
    assert s.train.lr == 1.0 and isinstance(s.train.lr, float)
    assert s.speed.min_time_s == 2.0 and isinstance(s.speed.min_time_s, float)


def test_empty_file_gives_the_defaults(tmp_path):
    s = load_suite(str(write_suite(tmp_path, "# nothing but a comment\n", "empty.yaml")))
    assert s.name == "empty"
    assert s.train == TrainConfig()
    assert s.eval == EvalConfig()
    assert s.complexity == ComplexityConfig()
    assert s.resolution == [128, 128]


# -- rejected files ------------------------------------------------------------------------------


def test_unknown_top_level_key_lists_the_valid_keys(tmp_path):
    path = write_suite(tmp_path, "datset: synthetic\n")
    with pytest.raises(ConfigError) as exc:
        load_suite(str(path))
    msg = str(exc.value)
    assert str(path) in msg
    assert "unknown key 'datset'" in msg
    for key in ("dataset", "dataset_options", "resolution", "archs", "train", "speed"):
        assert key in msg
    assert "source" not in msg  # internal field, not a key a user may set


def test_unknown_key_in_a_section_lists_that_sections_keys(tmp_path):
    path = write_suite(tmp_path, "train: {stepz: 10}\n")
    with pytest.raises(ConfigError) as exc:
        load_suite(str(path))
    msg = str(exc.value)
    assert "unknown key 'train.stepz'" in msg
    assert "Valid keys in train: steps, batch_size, optimizer, lr," in msg


def test_wrong_type_names_key_expected_and_found(tmp_path):
    path = write_suite(tmp_path, 'train: {steps: "ten"}\n')
    with pytest.raises(ConfigError) as exc:
        load_suite(str(path))
    msg = str(exc.value)
    assert str(path) in msg
    assert "key 'train.steps' expects int; found str 'ten'" in msg


def test_bool_is_not_an_int(tmp_path):
    with pytest.raises(ConfigError, match=r"key 'train\.steps' expects int; found bool True"):
        load_suite(str(write_suite(tmp_path, "train: {steps: true}\n")))
    with pytest.raises(ConfigError, match=r"key 'seed' expects int; found bool False"):
        load_suite(str(write_suite(tmp_path, "seed: false\n")))


def test_float_is_not_an_int_in_a_list(tmp_path):
    with pytest.raises(ConfigError, match=r"key 'resolution' expects list\[int\]; found list"):
        load_suite(str(write_suite(tmp_path, "resolution: [64, 64.5]\n")))


# -- out-of-range values: rejected when the suite loads, before any work ------------------------

# A valid, tiny suite: if a value below were accepted, `run` would finish in seconds (and write a
# record, which the CLI test catches) instead of training every registered architecture.
BASE = {
    "dataset": "synthetic",
    "dataset_options": {"num_samples": 4},
    "resolution": [32, 32],
    "archs": ["tv_lraspp_mobilenet_v3_large"],
    "threads": 1,
    "train": {"steps": 1, "batch_size": 2},
    "eval": {"batch_size": 2, "num_samples": 0},
    "speed": {"enabled": False},
    "complexity": {"enabled": False},
}

# (key as written in the file, value, what the message must say about it). Section values are
# reported as "<section>: <field> ..." and top-level ones as "suite: <field> ..."; a value outside
# a Literal's set fails the type check, which names the dotted key.
BAD_VALUES = [
    ("train.lr", -1.0, "train: lr must be a finite number > 0; found -1.0."),
    ("train.lr", 0.0, "train: lr must be a finite number > 0; found 0.0."),
    ("train.lr", float("nan"), "train: lr must be a finite number > 0; found nan."),
    ("train.lr", float("inf"), "train: lr must be a finite number > 0; found inf."),
    ("train.steps", -1, "train: steps must be an int >= 0; found -1."),
    ("train.batch_size", 0, "train: batch_size must be an int >= 1; found 0."),
    (
        "train.optimizer",
        "lamb",
        "key 'train.optimizer' expects one of 'adamw', 'sgd', 'adam', 'rms",
    ),
    ("train.weight_decay", -1e-4, "train: weight_decay must be a finite number >= 0; found"),
    ("train.momentum", 1.5, "train: momentum must be a number in [0, 1); found 1.5."),
    ("train.momentum", 1.0, "train: momentum must be a number in [0, 1); found 1.0."),
    ("train.momentum", -0.1, "train: momentum must be a number in [0, 1); found -0.1."),
    ("train.poly_power", -0.9, "train: poly_power must be a finite number >= 0; found -0.9."),
    ("train.warmup_steps", -2, "train: warmup_steps must be an int >= 0; found -2."),
    ("train.grad_clip", -1.0, "train: grad_clip must be a finite number >= 0; found -1.0."),
    ("train.class_weighting", "inverse", "key 'train.class_weighting' expects one of 'none'"),
    ("train.class_weight_samples", 0, "train: class_weight_samples must be an int >= 1; found 0"),
    ("train.precise_bn_batches", -1, "train: precise_bn_batches must be an int >= 0; found -1."),
    ("train.num_workers", -1, "train: num_workers must be an int >= 0; found -1."),
    ("train.amp", "fp32", "key 'train.amp' expects one of 'off', 'bf16', 'fp16'; found str"),
    # YAML 1.1 reads a bare `on` as true: the message says to quote it.
    ("train.amp", True, "found bool True (YAML reads a bare on/off/yes/no as a bool; quote"),
    ("train.checkpoint_every", -5, "train: checkpoint_every must be an int >= 0; found -5."),
    ("eval.batch_size", 0, "eval: batch_size must be an int >= 1; found 0."),
    ("eval.num_samples", -1, "eval: num_samples must be an int >= 0; found -1."),
    ("eval.split", "", "eval: split must be a non-empty string; found ''."),
    ("complexity.input_size", [0, 64], "complexity: input_size must be [H, W] with two positive"),
    ("complexity.input_size", [64], "complexity: input_size must be [H, W] with two positive"),
    ("complexity.input_size", [1, 2, 3], "complexity: input_size must be [H, W] with two posi"),
    ("resolution", [64, 0], "suite: resolution must be [H, W] with two positive ints; found"),
    ("threads", 0, "suite: threads must be an int >= 1; found 0."),
    ("seed", -1, "suite: seed must be an int in [0, 18446744073709551615]; found -1."),
    ("seed", 2**64, "suite: seed must be an int in [0, 18446744073709551615]; found 1844674"),
    ("archs", "fcn8s", "suite: archs must be 'all' or a non-empty list of names; found 'fcn8s'"),
    ("archs", [], "suite: archs must be 'all' or a non-empty list of names; found []."),
    ("name", "", "suite: name must be a non-empty string; found ''."),
    ("name", "a/b", "suite: name must not contain '/' or '\\'; found 'a/b'."),
    ("dataset", "", "suite: dataset must be a non-empty string; found ''."),
    ("dataset_options", {"size": [8, 8]}, "suite: dataset_options.size is set by the suite's"),
]


def bad_suite(tmp_path: Path, key: str, value: object) -> Path:
    """Writes BASE with ``key`` (dotted for a section) set to ``value``."""
    data = {k: dict(v) if isinstance(v, dict) else v for k, v in BASE.items()}
    section, _, field_name = key.rpartition(".")
    (data[section] if section else data)[field_name] = value
    return write_suite(tmp_path, yaml.safe_dump(data), "bad.yaml")


def test_base_suite_of_the_bad_value_tests_is_valid(tmp_path):
    s = load_suite(str(write_suite(tmp_path, yaml.safe_dump(BASE))))
    assert s.train.steps == 1 and s.archs == ["tv_lraspp_mobilenet_v3_large"]


@pytest.mark.parametrize(("key", "value", "expected"), BAD_VALUES, ids=lambda v: repr(v)[:24])
def test_out_of_range_value_fails_when_the_suite_loads(tmp_path, key, value, expected):
    path = bad_suite(tmp_path, key, value)
    with pytest.raises(ConfigError) as exc:
        load_suite(str(path))
    msg = str(exc.value)
    assert msg.startswith(f"Suite file {path}: ")
    assert expected in msg


@pytest.mark.parametrize(("key", "value", "expected"), BAD_VALUES, ids=lambda v: repr(v)[:24])
def test_run_with_an_out_of_range_value_exits_2_before_any_work(
    tmp_path, capsys, key, value, expected
):
    path = bad_suite(tmp_path, key, value)
    results = tmp_path / "results"
    argv = ["run", "--suite", str(path), "--results-dir", str(results), "-q"]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: Suite file {path}: ") and expected in err
    # No record, no samples, no leaderboard: nothing was built or trained.
    assert not results.exists() or not any(results.rglob("*"))


def test_each_error_names_its_fix(tmp_path):
    path = bad_suite(tmp_path, "threads", 0)
    with pytest.raises(ConfigError, match=r"found 0\. Use null for torch's default\.$"):
        load_suite(str(path))
    path = bad_suite(tmp_path, "train.lr", -1.0)
    with pytest.raises(ConfigError, match=r"found -1\.0\. Set a learning rate, e\.g\. 0\.001\.$"):
        load_suite(str(path))


def test_section_must_be_a_mapping(tmp_path):
    with pytest.raises(ConfigError, match=r"train must be a mapping; found int 5"):
        load_suite(str(write_suite(tmp_path, "train: 5\n")))


def test_top_level_must_be_a_mapping(tmp_path):
    path = write_suite(tmp_path, "- fcn8s\n- fcn16s\n")
    with pytest.raises(ConfigError) as exc:
        load_suite(str(path))
    msg = str(exc.value)
    assert str(path) in msg
    assert "must hold a mapping" in msg and "found list ['fcn8s', 'fcn16s']" in msg


def test_invalid_yaml_names_the_file(tmp_path):
    path = write_suite(tmp_path, "train: {steps: 3\nseed: [\n", "broken.yaml")
    with pytest.raises(ConfigError) as exc:
        load_suite(str(path))
    assert f"Suite file {path} is not valid YAML" in str(exc.value)


def test_python_tags_are_not_executed(tmp_path):
    """safe_load refuses python/* tags, so a suite file cannot run code."""
    marker = tmp_path / "pwned"
    path = write_suite(tmp_path, f'x: !!python/object/apply:os.system ["touch {marker}"]\n')
    with pytest.raises(ConfigError) as exc:
        load_suite(str(path))
    assert "is not valid YAML" in str(exc.value)
    assert "python/object/apply:os.system" in str(exc.value)
    assert not marker.exists()


def test_unknown_suite_name_suggests_close_matches():
    with pytest.raises(ConfigError) as exc:
        load_suite("smok")
    msg = str(exc.value)
    assert "Unknown suite 'smok'. Did you mean: smoke?" in msg
    assert (
        "Built-in suites: camvid, camvid_enet, camvid_full, camvid_published, camvid_recipes, "
        "quick, semisup_camvid, semisup_synthetic, smoke" in msg
    )


def test_missing_suite_file_is_named(tmp_path):
    path = tmp_path / "nosuch.yaml"
    with pytest.raises(MissingFileError) as exc:
        load_suite(str(path))
    assert f"Suite file {path} does not exist" in str(exc.value)


# -- each config validates itself (also when built in Python, not from a file) ------------------


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"split": ""}, "split must be a non-empty string; found ''."),
        ({"split": "  "}, "split must be a non-empty string; found '  '."),
        ({"batch_size": 0}, "batch_size must be an int >= 1; found 0."),
        ({"batch_size": 2.0}, "batch_size must be an int >= 1; found 2.0."),
        ({"num_samples": -1}, "num_samples must be an int >= 0; found -1."),
    ],
)
def test_eval_config_rejects(kwargs, expected):
    with pytest.raises(ConfigError) as exc:
        EvalConfig(**kwargs)
    assert str(exc.value).startswith(expected)


def test_eval_config_accepts_its_bounds():
    cfg = EvalConfig(split="test", batch_size=1, num_samples=0)
    assert (cfg.split, cfg.batch_size, cfg.num_samples) == ("test", 1, 0)


@pytest.mark.parametrize("size", [[0, 64], [64, -1], [64], [64, 64, 3], [64.0, 64], [True, 64]])
def test_complexity_config_rejects_a_size_that_is_not_two_positive_ints(size):
    with pytest.raises(ConfigError, match=r"^input_size must be \[H, W\] with two positive ints"):
        ComplexityConfig(input_size=size)


def test_complexity_config_accepts_the_smallest_size():
    assert ComplexityConfig(input_size=[1, 1]).input_size == [1, 1]


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"name": ""}, "name must be a non-empty string"),
        ({"name": "a\\b"}, "name must not contain '/' or '\\'; found 'a\\\\b'."),
        ({"dataset": ""}, "dataset must be a non-empty string"),
        (
            {"dataset_options": {"size": 64}},
            "dataset_options.size is set by the suite's resolution",
        ),
        ({"resolution": [128]}, "resolution must be [H, W] with two positive ints; found [128]."),
        ({"resolution": [0, 128]}, "resolution must be [H, W] with two positive ints"),
        ({"archs": "every"}, "archs must be 'all' or a non-empty list of names; found 'every'."),
        ({"archs": []}, "archs must be 'all' or a non-empty list of names; found []."),
        ({"seed": -1}, "seed must be an int in [0, 18446744073709551615]; found -1."),
        ({"seed": 2**64}, "seed must be an int in [0, 18446744073709551615]"),
        ({"threads": 0}, "threads must be an int >= 1; found 0. Use null for torch's default."),
        ({"threads": -4}, "threads must be an int >= 1; found -4."),
    ],
)
def test_suite_config_rejects(kwargs, expected):
    with pytest.raises(ConfigError) as exc:
        SuiteConfig(**{"name": "x", **kwargs})
    assert str(exc.value).startswith(expected)


def test_suite_config_accepts_its_bounds():
    s = SuiteConfig(name="x", resolution=[1, 1], seed=2**64 - 1, threads=1, archs=["fcn8s"])
    assert (s.seed, s.threads, s.resolution) == (2**64 - 1, 1, [1, 1])
    assert SuiteConfig(name="x", seed=0, threads=None).threads is None


def test_builtin_suite_setting_ids_are_stable():
    """Committed records, plots and baselines are keyed by these ids (README, LEADERBOARD.md,
    results/baselines/smoke.json): a change to a config's fields or defaults must not move them."""
    assert {name: load_suite(name).setting for name in available_suites()} == {
        "camvid": "180x240-steps120-bs8-fp32-seed0-ff77ee",
        "camvid_enet": "360x480-steps8000-bs10-fp32-seed0-f36bba",  # the committed ENet run's
        "camvid_full": "360x480-steps2000-bs8-fp32-seed0-98c6d5",
        "camvid_published": "test-360x480-published",  # weights: split and size alone
        "camvid_recipes": "180x240-steps120-bs8-fp32-seed0-e8a371",  # its recipes are hashed
        "quick": "64x64-steps60-bs4-fp32-seed0-18fb5f",
        "smoke": "64x64-steps40-bs8-fp32-seed0-a7eb2e",
        # Several methods and shares: each concrete variant has its own id (below).
        "semisup_camvid": "180x240-steps400-bs8-fp32-seed0-3351a9",
        "semisup_synthetic": "64x64-steps300-bs8-fp32-seed0-e1c3d7",
    }
    # The first of the committed semisup_synthetic records' settings.
    first = load_suite("semisup_synthetic").variants()[0].setting
    assert first == "64x64-steps300-bs8-fp32-seed0-supervised-f0.125-baca29"


@pytest.mark.parametrize(
    ("train", "same_id"),
    [
        ("{amp: off}", True),  # YAML's bare `off` (a bool) is the choice 'off', the default
        ("{amp: 'off', checkpoint_every: 0}", True),
        ("{checkpoint_every: 7}", True),  # changes no result: never in the setting id
        ("{eval_every: 5}", True),  # validation puts back every random state it draws from
        ("{amp: bf16}", False),  # changes the results: a setting of its own
        ("{amp: bf16, checkpoint_every: 7}", False),
        ("{sync_bn: false}", True),  # the default: each torchrun process normalises its share
        ("{sync_bn: true}", False),  # BatchNorm over the global batch: a setting of its own
    ],
)
def test_training_keys_added_later_leave_existing_setting_ids_alone(tmp_path, train, same_id):
    """``train.amp`` and ``train.sync_bn`` (at their defaults) and ``train.checkpoint_every`` do
    not move the setting id of a suite, so committed results (e.g. the built-in suites' ids
    above) keep theirs."""
    base = "dataset: synthetic\nresolution: [64, 64]\narchs: [fcn8s]\n"
    plain = load_suite(str(write_suite(tmp_path, base, "plain.yaml")))
    other = load_suite(str(write_suite(tmp_path, f"{base}train: {train}\n", "plain2.yaml")))
    assert other.train.amp in ("off", "bf16")
    assert (other.setting == plain.setting) is same_id
    assert other.setting.startswith("64x64-steps200-bs8-fp32-seed0-")
    # The committed quick suite with these keys added keeps (or changes) its published id.
    quick = load_suite("quick")
    added = {
        "amp": other.train.amp,
        "checkpoint_every": other.train.checkpoint_every,
        "sync_bn": other.train.sync_bn,
    }
    changed = dataclasses.replace(quick, train=dataclasses.replace(quick.train, **added))
    assert (changed.setting == "64x64-steps60-bs4-fp32-seed0-18fb5f") is same_id


def test_training_config_is_importable_from_suites_for_old_callers():
    import bench.suites

    assert bench.suites.TrainConfig is TrainConfig


# -- resolving architectures --------------------------------------------------------------------


def test_arch_names_all_is_every_registered_name_in_order():
    s = SuiteConfig(name="x", archs="all")
    assert s.arch_names(architectures.names()) == architectures.names()
    assert s.arch_names(["fcn8s", "fcn32s"]) == ["fcn8s", "fcn32s"]


def test_arch_names_exclude_removes_names():
    s = SuiteConfig(name="x", archs="all", exclude=["fcn32s", "tv_fcn_resnet50"])
    got = s.arch_names(architectures.names())
    assert "fcn32s" not in got and "tv_fcn_resnet50" not in got
    assert got == [a for a in architectures.names() if a not in ("fcn32s", "tv_fcn_resnet50")]


def test_arch_names_keeps_the_suites_order():
    s = SuiteConfig(name="x", archs=["fcn8s", "fcn32s"], exclude=[])
    assert s.arch_names(architectures.names()) == ["fcn8s", "fcn32s"]


def test_arch_names_unknown_arch_raises_with_close_matches():
    with pytest.raises(ConfigError) as exc:
        SuiteConfig(name="x", archs=["fcn9s"]).arch_names(architectures.names())
    assert str(exc.value).startswith(
        "Suite 'x': archs: Unknown architecture 'fcn9s'. Did you mean: fcn8s"
    )
    with pytest.raises(ConfigError, match=r"^Suite 'x': exclude: Unknown architecture 'nosuch_"):
        SuiteConfig(name="x", exclude=["nosuch_net"]).arch_names(architectures.names())


def test_arch_names_rejects_a_misspelt_arch_options_key(tmp_path):
    path = write_suite(
        tmp_path, "archs: [fcn8s]\narch_options: {fcn8: {pretrained_backbone: false}}\n"
    )
    suite = load_suite(str(path))  # names are checked against the registry, not at load
    with pytest.raises(ConfigError) as exc:
        suite.arch_names(architectures.names())
    assert str(exc.value).startswith(
        f"Suite file {path}: arch_options: Unknown architecture 'fcn8'. Did you mean: fcn8s"
    )
