"""Tests for bench.train.precision (``train.amp``): bf16 autocast on the CPU, fp16 refused there,
fp16 with loss scaling on CUDA (tests marked ``cuda``), and how the sweep records it."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from torch import nn

from bench.data import build_dataset
from bench.errors import ConfigError
from bench.train import TrainConfig, check_amp, grad_scaler, train
from tests.factories import (
    fixture_arch_info,
    read_record_files,
    registry_restored,
    run_cli,
    write_suite,
)

pytestmark = pytest.mark.usefixtures("one_thread")

CFG = TrainConfig(steps=4, batch_size=2, lr=0.01)
FP16_ON_CPU = (
    "train.amp: fp16 needs a CUDA device; this run trains on cpu. CPU autocast has no loss "
    "scaling here and gains nothing over bf16. Fix: set train.amp: bf16 (or off) for CPU "
    "runs, or run with --device cuda."
)


@pytest.fixture(scope="module")
def synthetic():
    return build_dataset("synthetic", split="train", size=(32, 32), num_samples=8)


def net(num_classes: int) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, num_classes, 1))


def train_recording_dtypes(dataset, info, cfg, device="cpu"):
    """Trains ``net`` and returns the result, the model and the dtypes of the first conv's
    outputs seen during training."""
    model = net(info.num_classes)
    seen: list[torch.dtype] = []
    model[0].register_forward_hook(lambda mod, args, out: seen.append(out.dtype))
    result = train(
        model, dataset, cfg, ignore_index=info.ignore_index, device=device, progress=False
    )
    return result, model, seen


def test_bf16_runs_the_forward_pass_in_bf16_on_the_cpu_and_keeps_fp32_weights(synthetic):
    dataset, info = synthetic
    fp32, _, fp32_dtypes = train_recording_dtypes(dataset, info, CFG)
    bf16, model, bf16_dtypes = train_recording_dtypes(
        dataset, info, dataclasses.replace(CFG, amp="bf16")
    )
    assert fp32_dtypes == [torch.float32] * 4
    assert bf16_dtypes == [torch.bfloat16] * 4  # autocast was on for every training step
    assert {p.dtype for p in model.parameters()} == {torch.float32}  # the optimiser's copy
    assert (fp32.amp, bf16.amp) == ("off", "bf16")
    assert torch.isfinite(torch.tensor(bf16.final_loss))
    # Same data and initialisation; bf16 rounding moves the loss, though not by much here.
    assert bf16.final_loss != fp32.final_loss
    assert bf16.final_loss == pytest.approx(fp32.final_loss, rel=0.05)


def test_fp16_on_the_cpu_is_refused_before_training(synthetic):
    dataset, info = synthetic
    with pytest.raises(ConfigError) as exc:
        train(
            net(info.num_classes),
            dataset,
            dataclasses.replace(CFG, amp="fp16"),
            ignore_index=info.ignore_index,
            progress=False,
        )
    assert str(exc.value) == FP16_ON_CPU


def test_no_gradient_scaler_off_cuda_or_without_fp16():
    assert grad_scaler("off", "cpu") is None
    assert grad_scaler("bf16", "cpu") is None
    check_amp("bf16", "cpu")  # allowed
    check_amp("off", "cpu")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("fp32", "amp must be one of 'off', 'bf16', 'fp16'; found 'fp32'. Use off (fp32)"),
        (False, "amp must be one of 'off', 'bf16', 'fp16'; found bool False."),
    ],
)
def test_train_config_rejects_an_unknown_amp(value, expected):
    with pytest.raises(ConfigError) as exc:
        TrainConfig(amp=value)
    assert str(exc.value).startswith(expected)


@pytest.mark.cuda
@pytest.mark.parametrize("amp", ["fp16", "bf16"])
def test_cuda_autocast_and_fp16_loss_scaling(synthetic, tmp_path, amp):
    """On CUDA: the forward pass runs in the amp dtype; fp16 goes through a GradScaler whose
    state is saved with the training state and restored on resume."""
    dataset, info = synthetic
    cfg = dataclasses.replace(CFG, amp=amp, steps=6, checkpoint_every=2)
    if amp == "bf16" and not torch.cuda.is_bf16_supported():
        pytest.skip("this GPU has no bf16")
    expected_dtype = torch.float16 if amp == "fp16" else torch.bfloat16
    result, model, dtypes = train_recording_dtypes(dataset, info, cfg, device="cuda")
    assert dtypes == [expected_dtype] * 6
    assert {p.dtype for p in model.parameters()} == {torch.float32}
    assert torch.isfinite(torch.tensor(result.final_loss)) and result.amp == amp
    assert (grad_scaler(amp, "cuda") is not None) == (amp == "fp16")
    path = tmp_path / "state.pt"
    saved = train(
        net(info.num_classes),
        dataset,
        cfg,
        ignore_index=info.ignore_index,
        device="cuda",
        progress=False,
        state_file=path,
    )
    state = torch.load(path, weights_only=True)
    assert (state["scaler"] is not None) == (amp == "fp16")
    if amp == "fp16":
        assert state["scaler"]["scale"] > 0
    assert state["rng"]["cuda"]  # the CUDA generator's state is saved when CUDA is in use
    resumed = train(
        net(info.num_classes),
        dataset,
        cfg,
        ignore_index=info.ignore_index,
        device="cuda",
        progress=False,
        state_file=path,
        resume=True,
    )
    assert resumed.resumed_from_step == 6 and resumed.final_loss == saved.final_loss


# -- the suite and the sweep ---------------------------------------------------------------------

SUITE = """\
dataset: synthetic
dataset_options: {{num_samples: 8}}
resolution: [16, 16]
archs: [amp_test_conv]
threads: 1
train: {{steps: 2, batch_size: 2, lr: 0.01{amp}}}
eval: {{split: val, batch_size: 8, num_samples: 0}}
speed: {{enabled: false}}
complexity: {{enabled: false}}
"""


@pytest.fixture
def conv_entry(restore_threads):
    from architectures import _registry

    with registry_restored():
        _registry.register(fixture_arch_info("amp_test_conv", input_divisor=1))(
            lambda *, num_classes: nn.Conv2d(3, num_classes, 1)
        )
        yield


def test_the_record_names_the_training_precision_and_bf16_is_its_own_setting(conv_entry, tmp_path):
    from bench.runner import Sweep
    from bench.suites import load_suite

    quiet = {"device": "cpu", "progress": False, "log": lambda m: None, "tensorboard": False}
    settings = {}
    for amp in ("", ", amp: off", ", amp: bf16"):
        suite = load_suite(str(write_suite(tmp_path, SUITE.format(amp=amp), "amp_suite.yaml")))
        folder = tmp_path / (amp.split(": ")[-1] or "default")
        Sweep(suite, results_dir=folder, **quiet).run(["amp_test_conv"])
        (record,) = [r for r in read_record_files(folder) if r["arch"] == "amp_test_conv"]
        settings[amp] = suite.setting
        assert record["status"] == "ok"
        assert record["train"]["amp"] == suite.train.amp == (amp.split(": ")[-1] or "off")
    assert settings[""] == settings[", amp: off"]  # the default is not hashed: ids unchanged
    assert settings[", amp: bf16"] != settings[""]


def test_run_refuses_fp16_on_the_cpu_with_exit_status_2(conv_entry, tmp_path):
    suite = write_suite(tmp_path, SUITE.format(amp=", amp: fp16"), "fp16_suite.yaml")
    code, out, err = run_cli(
        ["run", "--suite", suite, "--results-dir", tmp_path / "r", "--device", "cpu"]
    )
    assert code == 2
    assert FP16_ON_CPU in err
    assert not (tmp_path / "r" / "records").exists()  # refused before any work
