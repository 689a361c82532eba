"""``torchrun`` for real: two CPU processes over gloo (``sys.executable -m torch.distributed.run``,
not a ``torchrun`` script on PATH).

* The done-means check: ``torchrun --standalone --nproc-per-node 2 run_bench.py run`` on a tiny
  suite writes exactly one ok record per architecture with ``train.world_size == 2``, and rank
  0 alone prints, measures and writes. About 20 s on a 2-core machine.
* What cannot work (``--timeout-per-arch``) is refused with one message, before any work.
* Two processes against one at the same global batch (``tests/distributed_worker.py``): the
  trained weights and losses agree to float rounding, the summed confusion matrix is the
  1-process one exactly, and a run resumed from a saved state ends bit-identical to the one that
  went straight through. About 12 s.

The tolerance of the 2-against-1 training comparison (see
:func:`test_two_processes_train_what_one_process_trains`): the network has no BatchNorm (each
rank would otherwise normalise its own half batch, a different model, and torch's SyncBatchNorm
runs on GPUs only), the data have no ignored pixels and no class weights (each rank's loss is a
mean over the same number of pixels, so DDP's average of the two means is the 1-process mean),
and the optimiser is SGD, whose update is linear in the gradient: the two runs differ only in
the order of float additions (the 1-process gradient sums 4 x 32 x 32 pixel terms in one pass,
DDP sums two halves and adds them; halving is exact). One fp32 rounding is 2**-24 ~ 6e-8 of a
value; over 6 steps the measured differences are at most 3e-8 absolute (3e-7 relative) in the
weights and 1 ulp in the loss. We allow rtol 1e-5 and atol 1e-6: 30 times what rounding gave,
and still 1000 times smaller than what a wrong split or a wrong average gives (a doubled or
halved gradient moves weights by ~lr x gradient ~ 1e-3 here). AdamW is not compared this way:
its first step moves each weight by about lr x sign(gradient), so a rounding difference in a
near-zero gradient can move a weight by 2 x lr.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import torch

from tests.factories import ROOT, subprocess_env, write_suite

TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node"]
SUITE = """\
description: "torchrun: two processes"
dataset: synthetic
dataset_options: {num_samples: 16}
resolution: [32, 32]
archs: [enet, erfnet]
seed: 0
threads: 1
train: {steps: 4, batch_size: 4, lr: 0.001, precise_bn_batches: 2}
eval: {split: val, batch_size: 5, num_samples: 2}
speed: {enabled: true, warmup: 1, min_iters: 2, max_iters: 2, min_time_s: 0.0, max_batch: 1}
complexity: {input_size: [32, 32]}
"""
ARCHS = ("enet", "erfnet")
LIMIT_S = 300  # a generous bound on a loaded machine


def torchrun(nproc: int, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*TORCHRUN, str(nproc), *args],
        cwd=ROOT,
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=LIMIT_S,
        check=False,
    )


def test_torchrun_with_two_processes_writes_one_ok_record_per_architecture(tmp_path):
    suite = write_suite(tmp_path, SUITE, "ddp2.yaml")
    results = tmp_path / "results"
    run = ["run_bench.py", "run", "--suite", str(suite), "--results-dir", str(results)]
    done = torchrun(2, *run, "--device", "cpu", "-q")
    assert done.returncode == 0, done.stdout + done.stderr
    records = [json.loads(p.read_text()) for p in sorted((results / "records").glob("*.json"))]
    models = [r for r in records if r["kind"] == "model"]
    assert sorted(r["arch"] for r in models) == sorted(ARCHS)  # exactly one each
    assert [r["arch"] for r in records if r["kind"] == "baseline"] == ["background"]
    for r in models:
        assert r["status"] == "ok", r.get("error")
        assert r["train"]["world_size"] == 2 and r["train"]["batch_size"] == 4
        assert r["train"]["steps"] == 4 and len(r["train"]["loss_curve"]) == 4
        assert "sync_bn" not in r["train"]
        assert r["speed"] is not None and r["complexity"] is not None  # rank 0 measured
        assert 0.0 <= r["metrics"]["miou"] <= 1.0
        with np.load(
            results / r["samples"]["file"]
        ) as npz:  # gathered on rank 0 from the first images
            assert npz["pred"].shape == (2, 32, 32)
    # Rank 0 alone printed (one summary line per architecture) and wrote one curve each.
    assert done.stdout.count("suite ddp2: 2 architectures") == 1, done.stdout
    assert done.stdout.count("leaderboard: ") == 1
    for arch in ARCHS:
        assert done.stdout.count(f"] {arch}: mIoU") == 1
        (curves,) = (results / "tensorboard").glob(f"ddp2__{arch}__*")
        assert len(list(curves.iterdir())) == 1  # one event file: rank 0's
    assert (results / "LEADERBOARD.md").is_file()


def test_torchrun_refuses_a_time_limit_before_any_work(tmp_path):
    suite = write_suite(tmp_path, SUITE, "ddp2.yaml")
    results = tmp_path / "results"
    done = torchrun(
        2, "run_bench.py", "run", "--suite", str(suite), "--results-dir", str(results),
        "--timeout-per-arch", "60", "-q",
    )  # fmt: skip
    assert done.returncode != 0
    message = "error: --timeout-per-arch 60 cannot run under torchrun (WORLD_SIZE=2)"
    assert done.stderr.count(message) == 1, done.stderr  # rank 0 says it, once
    assert not results.exists()  # nothing was built, trained or written


def test_two_processes_train_what_one_process_trains(tmp_path):
    """(b) weights and losses to float rounding (tolerance: module docstring); (c) the summed
    confusion matrix equals the 1-process one exactly; and resume under DDP is exact."""
    worker = str(ROOT / "tests" / "distributed_worker.py")
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    one, two = tmp_path / "one" / "out.pt", tmp_path / "two" / "out.pt"
    plain = subprocess.run(
        [sys.executable, worker, str(one)],
        cwd=ROOT,
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=LIMIT_S,
        check=False,
    )
    assert plain.returncode == 0, plain.stderr
    pair = torchrun(2, worker, str(two))
    assert pair.returncode == 0, pair.stderr
    a, b = torch.load(one, weights_only=True), torch.load(two, weights_only=True)
    assert (a["world_size"], b["world_size"]) == (None, 2)
    assert (a["recorded_world_size"], b["recorded_world_size"]) == (None, 2)

    # (b) Training: the same model to float rounding.
    torch.testing.assert_close(b["final_loss"], a["final_loss"], rtol=1e-5, atol=1e-6)
    # The curve is rounded to 6 decimals: a rounding difference may cross one boundary.
    torch.testing.assert_close(b["loss_curve"], a["loss_curve"], rtol=1e-5, atol=2e-6)
    assert (
        a["loss_curve"][-1] < a["loss_curve"][0] - 0.1
    )  # it trained: the comparison means something
    assert a["weights"].keys() == b["weights"].keys()
    for name, weight in a["weights"].items():
        torch.testing.assert_close(b["weights"][name], weight, rtol=1e-5, atol=1e-6, msg=name)

    # (c) Evaluation: the summed matrix is the 1-process matrix, count for count.
    assert torch.equal(a["matrix"], b["matrix"])
    assert int(a["matrix"].sum()) == 11 * 32 * 32 and a["num_images"] == b["num_images"] == 11
    assert int((a["matrix"].sum(0) > 0).sum()) >= 2  # more than one class predicted
    assert a["miou"] == b["miou"]
    assert torch.equal(a["samples"], b["samples"]) and len(b["samples"]) == 5  # across ranks

    # Resume: continued from the state saved after step 3 (rank 0 wrote it, with each rank's
    # random states; the network has dropout), the run ends where the straight one ended.
    for out in (a, b):
        assert out["resumed_from"] == 3
        assert all(torch.equal(out["whole"][k], out["resumed"][k]) for k in out["whole"])
