"""Tests for bench.suites: loading, validation and the messages a user sees for a bad file."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import yaml

import architectures
from bench.suites import (
    SUITES_DIR,
    ComplexityConfig,
    EvalConfig,
    SpeedConfig,
    SuiteConfig,
    TrainConfig,
    available_suites,
    load_suite,
)

TINY = Path(__file__).resolve().parent / "data" / "tiny_suite.yaml"


def write(tmp_path: Path, text: str, name: str = "mine.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


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
    s = load_suite(str(TINY))
    assert s.name == "tiny_suite"  # the file stem, since the file sets no name
    assert s.threads == 1
    assert s.train.steps == 3 and s.train.batch_size == 2
    assert s.source == str(TINY)


def test_setting_string_names_what_a_record_depends_on():
    tiny = load_suite(str(TINY))
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
    s = load_suite(str(write(tmp_path, "train: {lr: 1}\nspeed: {min_time_s: 2}\n")))
    assert s.train.lr == 1.0 and isinstance(s.train.lr, float)
    assert s.speed.min_time_s == 2.0 and isinstance(s.speed.min_time_s, float)


def test_empty_file_gives_the_defaults(tmp_path):
    s = load_suite(str(write(tmp_path, "# nothing but a comment\n", "empty.yaml")))
    assert s.name == "empty"
    assert s.train == TrainConfig()
    assert s.eval == EvalConfig()
    assert s.complexity == ComplexityConfig()
    assert s.resolution == [128, 128]


# -- rejected files ------------------------------------------------------------------------------


def test_unknown_top_level_key_lists_the_valid_keys(tmp_path):
    path = write(tmp_path, "datset: synthetic\n")
    with pytest.raises(ValueError) as exc:
        load_suite(str(path))
    msg = str(exc.value)
    assert str(path) in msg
    assert "unknown key 'datset'" in msg
    for key in ("dataset", "dataset_options", "resolution", "archs", "train", "speed"):
        assert key in msg
    assert "source" not in msg  # internal field, not a key a user may set


def test_unknown_key_in_a_section_lists_that_sections_keys(tmp_path):
    path = write(tmp_path, "train: {stepz: 10}\n")
    with pytest.raises(ValueError) as exc:
        load_suite(str(path))
    msg = str(exc.value)
    assert "unknown key 'train.stepz'" in msg
    assert "Valid keys in train: steps, batch_size, optimizer, lr," in msg


def test_wrong_type_names_key_expected_and_found(tmp_path):
    path = write(tmp_path, 'train: {steps: "ten"}\n')
    with pytest.raises(ValueError) as exc:
        load_suite(str(path))
    msg = str(exc.value)
    assert str(path) in msg
    assert "key 'train.steps' expects int; found str 'ten'" in msg


def test_bool_is_not_an_int(tmp_path):
    with pytest.raises(ValueError, match=r"key 'train\.steps' expects int; found bool True"):
        load_suite(str(write(tmp_path, "train: {steps: true}\n")))
    with pytest.raises(ValueError, match=r"key 'seed' expects int; found bool False"):
        load_suite(str(write(tmp_path, "seed: false\n")))


def test_float_is_not_an_int_in_a_list(tmp_path):
    with pytest.raises(ValueError, match=r"key 'resolution' expects list\[int\]; found list"):
        load_suite(str(write(tmp_path, "resolution: [64, 64.5]\n")))


@pytest.mark.parametrize(
    ("text", "key", "found"),
    [
        ("resolution: [64]\n", "resolution", "[64]"),
        ("resolution: [64, 0]\n", "resolution", "[64, 0]"),
        ("complexity: {input_size: [1, 2, 3]}\n", "complexity.input_size", "[1, 2, 3]"),
    ],
)
def test_resolution_must_be_a_positive_pair(tmp_path, text, key, found):
    with pytest.raises(ValueError) as exc:
        load_suite(str(write(tmp_path, text)))
    assert f"{key} must be [H, W] with positive ints; found {found}" in str(exc.value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("train: {optimizer: adam}\n", "train.optimizer must be 'adamw' or 'sgd'; found 'adam'"),
        ("speed: {dtype: fp64}\n", "speed.dtype must be fp32, fp16 or bf16; found 'fp64'"),
        ("archs: fcn8s\n", "archs must be 'all' or a list of names; found 'fcn8s'"),
        ("train: {steps: -1}\n", "train.steps must be >= 0 and train.batch_size >= 1"),
        ("threads: 0\n", "threads must be a positive int or null"),
        ("train: {warmup_steps: -2}\n", "train.warmup_steps must be >= 0; found -2"),
        ("eval: {batch_size: 0}\n", "eval.batch_size must be >= 1"),
    ],
)
def test_out_of_range_values_are_rejected(tmp_path, text, expected):
    with pytest.raises(ValueError) as exc:
        load_suite(str(write(tmp_path, text)))
    assert expected in str(exc.value)


def test_section_must_be_a_mapping(tmp_path):
    with pytest.raises(ValueError, match=r"train must be a mapping; found int 5"):
        load_suite(str(write(tmp_path, "train: 5\n")))


def test_top_level_must_be_a_mapping(tmp_path):
    path = write(tmp_path, "- fcn8s\n- fcn16s\n")
    with pytest.raises(ValueError) as exc:
        load_suite(str(path))
    msg = str(exc.value)
    assert str(path) in msg
    assert "must hold a mapping" in msg and "found list ['fcn8s', 'fcn16s']" in msg


def test_invalid_yaml_names_the_file(tmp_path):
    path = write(tmp_path, "train: {steps: 3\nseed: [\n", "broken.yaml")
    with pytest.raises(ValueError) as exc:
        load_suite(str(path))
    assert f"Suite file {path} is not valid YAML" in str(exc.value)


def test_python_tags_are_not_executed(tmp_path):
    """safe_load refuses python/* tags, so a suite file cannot run code."""
    marker = tmp_path / "pwned"
    path = write(tmp_path, f'x: !!python/object/apply:os.system ["touch {marker}"]\n')
    with pytest.raises(ValueError) as exc:
        load_suite(str(path))
    assert "is not valid YAML" in str(exc.value)
    assert "python/object/apply:os.system" in str(exc.value)
    assert not marker.exists()


def test_unknown_suite_name_suggests_close_matches():
    with pytest.raises(ValueError) as exc:
        load_suite("smok")
    msg = str(exc.value)
    assert "Unknown suite 'smok'. Did you mean: smoke?" in msg
    assert "Built-in suites: camvid, camvid_full, quick, smoke" in msg


def test_missing_suite_file_is_named(tmp_path):
    path = tmp_path / "nosuch.yaml"
    with pytest.raises(FileNotFoundError) as exc:
        load_suite(str(path))
    assert f"Suite file {path} does not exist" in str(exc.value)


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
    with pytest.raises(ValueError, match=r"Unknown architecture 'fcn9s'\. Did you mean: fcn8s"):
        SuiteConfig(name="x", archs=["fcn9s"]).arch_names(architectures.names())
    with pytest.raises(ValueError, match=r"Unknown architecture 'nosuch_net'"):
        SuiteConfig(name="x", exclude=["nosuch_net"]).arch_names(architectures.names())
