"""``run`` killed with SIGKILL in the middle of training, then ``run --resume``: the record ends
bit-identical to an uninterrupted run's (CPU, same thread count), and the training state file
is gone once the record is written.

Three ``run_bench.py`` processes: the uninterrupted run and the doomed one start together (one
thread each, so both cores work), the doomed one is killed as soon as its first training state
appears (after step 5 of 30: the 25 steps left take seconds, so the kill lands in training),
then the resume runs. About 30 s on a 2-core machine.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from tests.factories import ROOT, subprocess_env, write_suite

ARCH = "tv_lraspp_mobilenet_v3_large"
STEPS, EVERY = 30, 5
SUITE = f"""\
description: "kill -9 and --resume"
dataset: synthetic
dataset_options: {{num_samples: 16}}
resolution: [32, 32]
archs: [{ARCH}]
seed: 0
threads: 1
train: {{steps: {STEPS}, batch_size: 4, lr: 0.001, checkpoint_every: {EVERY}, precise_bn_batches: 2}}
eval: {{split: val, batch_size: 8, num_samples: 0}}
speed: {{enabled: false}}
complexity: {{enabled: false}}
"""
WAIT_S = 240  # for the first state file; a generous bound on a loaded machine


def run_command(suite: Path, results: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "run_bench.py",
        "run",
        "--suite",
        str(suite),
        "--results-dir",
        str(results),
        "--device",
        "cpu",
        "-q",
        *extra,
    ]


def start(command: list[str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        command,
        cwd=ROOT,
        env=subprocess_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def the_record(results: Path) -> dict:
    (path,) = (results / "records").glob(f"kill_suite__{ARCH}__*.json")
    return json.loads(path.read_text(encoding="utf-8"))


def test_a_run_killed_in_training_resumes_to_the_same_loss_and_miou(tmp_path):
    suite = write_suite(tmp_path, SUITE, "kill_suite.yaml")
    whole_dir, cut_dir = tmp_path / "whole", tmp_path / "cut"
    whole = start(run_command(suite, whole_dir))
    doomed = start(run_command(suite, cut_dir))
    states = cut_dir / "train_state"
    try:
        deadline = time.monotonic() + WAIT_S
        while not list(states.glob("*.pt")):
            if doomed.poll() is not None:
                pytest.fail(f"the run ended before its first training state:\n{doomed.stdout}")
            if time.monotonic() > deadline:
                pytest.fail(f"no training state in {states} after {WAIT_S} s")
            time.sleep(0.01)
        doomed.send_signal(signal.SIGKILL)
        doomed.wait(timeout=60)
        whole_out, _ = whole.communicate(timeout=600)
    finally:
        for process in (whole, doomed):
            if process.poll() is None:
                process.kill()
                process.wait()
    assert doomed.returncode == -signal.SIGKILL
    assert whole.returncode == 0, whole_out
    assert not list((cut_dir / "records").glob(f"*__{ARCH}__*.json"))  # killed before its record
    (state_file,) = states.glob("*.pt")  # the state written atomically: never half a file
    saved = torch.load(state_file, map_location="cpu", weights_only=True)
    saved_step = saved["progress"]["step"]
    assert saved_step in range(EVERY, STEPS, EVERY)  # a state from the middle of training

    resumed = subprocess.run(
        run_command(suite, cut_dir, "--resume"),
        cwd=ROOT,
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert f"{ARCH} continued training from its saved state at step {saved_step}" in (
        resumed.stdout
    )
    a, b = the_record(whole_dir), the_record(cut_dir)
    assert b["train"]["resumed_from_step"] == saved_step
    assert "resumed_from_step" not in a["train"]
    assert b["train"]["final_loss"] == a["train"]["final_loss"]  # exactly equal
    assert b["train"]["loss_curve"] == a["train"]["loss_curve"]
    assert b["metrics"]["miou"] == a["metrics"]["miou"]
    assert b["metrics"]["confusion_matrix"] == a["metrics"]["confusion_matrix"]
    assert b["setting"] == a["setting"]
    assert not state_file.exists()  # removed once the ok record was written
    assert list(states.iterdir()) == []
