"""Data-parallel training under torchrun, in this process (``bench.distributed``,
``bench.train.parallel``, ``bench.distributed_sweep``).

The multi-process runs themselves are in ``tests/test_distributed_run.py``. Here: reading
torchrun's variables, what a job refuses before any work, the batch split (the ranks' slices
together are the 1-process batches, epoch after epoch), evaluation's shares, SyncBN's swap and
restore, the saved state's world size, and a one-process gloo group in this process: the
torchrun paths at world size 1 end bit-identical to a plain run.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from bench import distributed
from bench.data import build_dataset
from bench.distributed import SINGLE, Ranks, rank_batches, rank_device, ranks_from_env
from bench.distributed_sweep import DistributedSweep, torchrun_job
from bench.errors import CheckpointError, ConfigError
from bench.evaluate import evaluate
from bench.plugins import load_plugin
from bench.runner import Sweep
from bench.suites import SuiteConfig, load_suite
from bench.train import TrainConfig, TrainResult, train
from bench.train.parallel import from_sync_bn, rank_loader, to_sync_bn
from bench.train.state import BatchStream, Progress, RunIdentity, load_state, save_state
from tests.factories import FAULT_PLUGIN, read_record_files, run_metrics, write_suite

TORCHRUN_2 = {"WORLD_SIZE": "2", "RANK": "0", "LOCAL_RANK": "0"}


# -- torchrun's variables -----------------------------------------------------------------------


def test_no_torchrun_variables_is_a_plain_run():
    ranks = ranks_from_env({"PATH": "/bin"})
    assert ranks is SINGLE
    assert (ranks.rank, ranks.world_size, ranks.torchrun, ranks.recorded_world_size) == (
        0,
        1,
        False,
        None,
    )


def test_torchrun_variables_give_the_ranks():
    ranks = ranks_from_env({"WORLD_SIZE": "4", "RANK": "3", "LOCAL_RANK": "1"})
    assert (ranks.rank, ranks.world_size, ranks.local_rank) == (3, 4, 1)
    assert ranks.torchrun and not ranks.is_main and ranks.recorded_world_size == 4


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"RANK": "0"}, "sets RANK but not WORLD_SIZE, LOCAL_RANK"),
        ({**TORCHRUN_2, "RANK": "one"}, "Expected integers in WORLD_SIZE, RANK, LOCAL_RANK"),
        ({**TORCHRUN_2, "RANK": "2"}, "found WORLD_SIZE=2, RANK=2, LOCAL_RANK=0"),
    ],
)
def test_broken_torchrun_variables_are_refused(env, message):
    with pytest.raises(ConfigError, match=message) as exc:
        ranks_from_env(env)
    assert "torchrun --standalone --nproc-per-node N" in str(exc.value)


def test_each_rank_takes_its_own_device():
    ranks = Ranks(rank=1, world_size=2, local_rank=1, torchrun=True)
    assert rank_device("cpu", ranks) == "cpu"
    with pytest.raises(ConfigError, match=r"must be auto, cpu or cuda; found 'cuda:1'"):
        rank_device("cuda:1", ranks)
    if torch.cuda.device_count() < 2:
        with pytest.raises(ConfigError, match=r"LOCAL_RANK 1 but \d CUDA device\(s\) are visible"):
            rank_device("cuda", ranks)


# -- refused before any work -------------------------------------------------------------------

SUITE = SuiteConfig(name="tiny", train=TrainConfig(steps=2, batch_size=4))


@pytest.mark.parametrize(
    ("suite", "options", "message"),
    [
        (SUITE, {"timeout_per_arch": 900.0}, "--timeout-per-arch 900 cannot run under torchrun"),
        (SUITE, {"shard": (1, 3)}, r"--shard 1/3 cannot run under torchrun \(WORLD_SIZE=2\)"),
        (
            SuiteConfig(name="b6", train=TrainConfig(batch_size=6)),
            {"env": {**TORCHRUN_2, "WORLD_SIZE": "4"}},
            "train.batch_size 6 does not split over the 4 processes",
        ),
        (
            SuiteConfig(name="sbn", train=TrainConfig(batch_size=4, sync_bn=True)),
            {},
            "train.sync_bn: true needs CUDA under torchrun",
        ),
        (SUITE, {"device": "cuda:0"}, "--device under torchrun must be auto, cpu or cuda"),
    ],
    ids=["timeout", "shard", "batch-split", "sync-bn-cpu", "cuda-index"],
)
def test_what_a_torchrun_job_cannot_run_is_refused_before_any_work(suite, options, message):
    env = options.pop("env", TORCHRUN_2)
    device = options.pop("device", "cpu")
    with pytest.raises(ConfigError, match=message) as exc:
        torchrun_job(suite, device=device, environ=env, **options)
    assert "Fix" in str(exc.value) or "CUDA_VISIBLE_DEVICES" in str(exc.value)
    assert not dist.is_initialized()  # refused before the process group


def test_a_weights_suite_is_refused_under_torchrun():
    with pytest.raises(ConfigError, match="scores published weights and trains nothing"):
        torchrun_job(load_suite("camvid_published"), device="cpu", environ=TORCHRUN_2)


def test_a_plain_run_starts_no_job():
    assert torchrun_job(SUITE, device="cpu", timeout_per_arch=5.0, environ={}) is None


# -- the batch split ------------------------------------------------------------------------


@pytest.mark.parametrize(("num", "batch", "world"), [(16, 4, 2), (23, 6, 3), (10, 4, 4)])
def test_the_ranks_slices_are_the_one_process_batches_epoch_after_epoch(num, batch, world):
    """Each rank draws the 1-process data order from the same generator and keeps its slice:
    the slices, in rank order, are the 1-process batch (the global batch is train.batch_size),
    over several epochs, and the generator ends where the 1-process one does."""
    data = TensorDataset(torch.arange(num))
    cfg = TrainConfig(batch_size=batch)
    plain_gen = torch.Generator().manual_seed(7)
    plain = DataLoader(data, batch_size=batch, shuffle=True, drop_last=True, generator=plain_gen)
    ranks = [Ranks(rank=r, world_size=world, torchrun=True) for r in range(world)]
    gens = [torch.Generator().manual_seed(7) for _ in ranks]
    streams = [
        BatchStream(rank_loader(data, cfg, g, rk), g) for g, rk in zip(gens, ranks, strict=True)
    ]
    one = BatchStream(plain, plain_gen)
    steps = 3 * len(plain) + 1  # into a fourth epoch
    for _ in range(steps):
        (whole,) = one.next()
        slices = [s.next()[0] for s in streams]
        assert all(len(s) == batch // world for s in slices)
        assert torch.equal(torch.cat(slices), whole)
    assert all(s.position()["epoch"] == one.position()["epoch"] == 3 for s in streams)
    assert all(torch.equal(g.get_state(), plain_gen.get_state()) for g in gens)


@pytest.mark.parametrize(("num", "batch", "world"), [(11, 3, 2), (10, 4, 3), (3, 8, 2), (0, 2, 2)])
def test_evaluation_shares_are_whole_one_process_batches(num, batch, world):
    plain = [list(range(s, min(s + batch, num))) for s in range(0, num, batch)]
    shares = [rank_batches(num, batch, Ranks(rank=r, world_size=world)) for r in range(world)]
    assert [b for share in shares for b in share] == plain  # every image once, in order
    sizes = [len(share) for share in shares]
    assert max(sizes) - min(sizes) <= 1
    assert rank_batches(num, batch, SINGLE) == plain


# -- SyncBN, the config and the saved state --------------------------------------------------


def test_sync_bn_swaps_every_batch_norm_and_puts_the_trained_values_back():
    model = nn.Sequential(nn.Conv2d(3, 4, 1), nn.BatchNorm2d(4), nn.Sequential(nn.BatchNorm1d(4)))
    originals = [model[1], model[2][0]]
    swaps = to_sync_bn(model)
    assert [type(m) for m in (model[1], model[2][0])] == [nn.SyncBatchNorm] * 2
    assert model[1].weight is originals[0].weight  # the same parameters: the optimiser sees them
    with torch.no_grad():
        model[1].running_mean.fill_(0.25)
        model[2][0].bias.fill_(-1.0)
    from_sync_bn(swaps)
    assert model[1] is originals[0] and model[2][0] is originals[1]
    assert torch.equal(model[1].running_mean, torch.full((4,), 0.25))
    assert torch.equal(model[2][0].bias, torch.full((4,), -1.0))


def test_train_result_leaves_the_world_size_out_of_a_plain_run():
    base = {"steps": 1, "seconds": 0.1, "final_loss": 1.0, "loss_curve": [1.0]}
    base |= {"batch_size": 2, "optimizer": "adamw", "lr": 0.1}
    assert "world_size" not in TrainResult(**base).to_dict()
    assert "sync_bn" not in TrainResult(**base).to_dict()
    out = TrainResult(**base, world_size=2, sync_bn=True).to_dict()
    assert (out["world_size"], out["sync_bn"]) == (2, True)


def _state(tmp_path: Path, world_size: int | None) -> Path:
    model = nn.Linear(2, 2)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    gen = torch.Generator().manual_seed(0)
    stream = BatchStream(DataLoader(TensorDataset(torch.zeros(4, 2)), generator=gen), gen)
    identity = RunIdentity("run", TrainConfig(), 0, "cpu", world_size)
    path = tmp_path / f"state{world_size}.pt"
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0)
    save_state(
        path, identity, Progress(), model=model, optimizer=opt, scheduler=sched, scaler=None,
        stream=stream,
    )  # fmt: skip
    return path


def test_a_state_continues_only_in_a_job_of_the_same_size(tmp_path):
    plain, pair = _state(tmp_path, None), _state(tmp_path, 2)
    assert "world_size" not in torch.load(plain, weights_only=True)["identity"]  # as before
    load_state(plain, RunIdentity("run", TrainConfig(), 0, "cpu"))
    load_state(pair, RunIdentity("run", TrainConfig(), 0, "cpu", 2))
    for path, now in ((pair, None), (plain, 2), (pair, 4)):
        with pytest.raises(CheckpointError, match=r"world_size: saved .*, now ") as exc:
            load_state(path, RunIdentity("run", TrainConfig(), 0, "cpu", now))
        assert "resume with as many processes as saved it" in str(exc.value)


# -- a one-process gloo group in this process: the torchrun paths at world size 1 -------------


@pytest.fixture
def world_of_one(monkeypatch: pytest.MonkeyPatch) -> Iterator[Ranks]:
    """A torchrun job of one process (gloo), opened by ``bench.distributed.start``."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {"WORLD_SIZE": "1", "RANK": "0", "LOCAL_RANK": "0", "MASTER_ADDR": "127.0.0.1"}
    for name, value in {**env, "MASTER_PORT": str(port)}.items():
        monkeypatch.setenv(name, value)
    ranks = distributed.start(ranks_from_env(), "cpu")
    try:
        yield ranks
    finally:
        distributed.stop(ranks)
    assert not dist.is_initialized()


def _bn_dropout_net(num_classes: int) -> nn.Module:
    torch.manual_seed(3)
    return nn.Sequential(
        nn.Conv2d(3, 6, 3, padding=1),
        nn.BatchNorm2d(6),
        nn.ReLU(),
        nn.Dropout2d(0.2),
        nn.Conv2d(6, num_classes, 1),
    )


@pytest.mark.usefixtures("one_thread")
def test_training_and_evaluation_under_torchrun_with_one_process_equal_a_plain_run(world_of_one):
    """DDP, the batch split, the loss all-reduce, the averaged BN statistics and the summed
    confusion matrix are identities at world size 1: a 1-process torchrun job ends bit-identical
    to a plain run (BatchNorm, dropout and precise BN included); only the record says so."""
    train_set, info = build_dataset("synthetic", split="train", size=(16, 16), num_samples=8)
    val_set, _ = build_dataset("synthetic", split="val", size=(16, 16), num_samples=7)
    cfg = TrainConfig(steps=5, batch_size=4, lr=0.01, precise_bn_batches=2)
    out = {}
    for name, ranks in (("plain", None), ("torchrun", world_of_one)):
        model = _bn_dropout_net(info.num_classes)
        result = train(model, train_set, cfg, ignore_index=255, progress=False, ranks=ranks)
        ev = evaluate(
            model, val_set, info, batch_size=3, num_samples=4, progress=False, ranks=ranks
        )
        out[name] = (result, model.state_dict(), ev)
    (r1, w1, e1), (r2, w2, e2) = out["plain"], out["torchrun"]
    assert (r1.world_size, r2.world_size) == (None, 1)
    assert r1.loss_curve == r2.loss_curve and r1.final_loss == r2.final_loss
    assert all(torch.equal(w1[k], w2[k]) for k in w1)
    assert np.array_equal(e1.matrix, e2.matrix) and e1.num_images == e2.num_images == 7
    assert np.array_equal(e1.sample_preds, e2.sample_preds) and len(e2.sample_preds) == 4


FAULT_SUITE_TEXT = """\
dataset: synthetic
dataset_options: {num_samples: 8}
resolution: [16, 16]
archs: [fault_conv_a, fault_conv_b]
seed: 0
threads: 1
train: {steps: 3, batch_size: 2, lr: 0.001, checkpoint_every: 2}
eval: {split: val, batch_size: 3, num_samples: 2}
speed: {enabled: true, warmup: 1, min_iters: 2, max_iters: 3, min_time_s: 0.0, max_batch: 2}
complexity: {input_size: [16, 16]}
"""


@pytest.mark.usefixtures("restore_threads", "restore_registry")
def test_the_sweep_of_a_one_process_job_writes_what_a_plain_sweep_writes(tmp_path, world_of_one):
    load_plugin(FAULT_PLUGIN)
    suite = load_suite(str(write_suite(tmp_path, FAULT_SUITE_TEXT, "ddp1.yaml")))
    archs = ["fault_conv_a", "fault_conv_b"]
    options = {"device": "cpu", "progress": False, "log": lambda m: None, "tensorboard": False}
    Sweep(suite, results_dir=tmp_path / "plain", **options).run(archs)
    job = DistributedSweep(suite, ranks=world_of_one, results_dir=tmp_path / "ddp", **options)
    summary = job.run(archs)
    assert summary.failed == [] and sorted(summary.finished) == ["background", *archs]
    plain, ddp = read_record_files(tmp_path / "plain"), read_record_files(tmp_path / "ddp")
    assert [r["arch"] for r in ddp] == ["background", *archs]
    for a, b in zip(plain, ddp, strict=True):
        assert run_metrics(a) == run_metrics(b), a["arch"]
        if a["arch"] != "background":
            assert "world_size" not in a["train"] and b["train"]["world_size"] == 1
            assert a["train"]["loss_curve"] == b["train"]["loss_curve"]
            assert b["speed"] is not None and b["complexity"] is not None  # rank 0 measured
    assert list((tmp_path / "ddp" / "train_state").glob("*.pt")) == []  # ok records supersede


@pytest.mark.usefixtures("restore_threads", "restore_registry")
def test_an_error_of_another_rank_becomes_the_record_error(tmp_path, world_of_one, monkeypatch):
    """A failure of one rank alone (here rank 1's out-of-memory, as the status exchange after
    the architecture reports it) turns rank 0's otherwise ok record into an error record."""
    load_plugin(FAULT_PLUGIN)
    suite = load_suite(str(write_suite(tmp_path, FAULT_SUITE_TEXT, "ddp1.yaml")))
    real = distributed.all_gather
    oom = ("train", "OutOfMemoryError", "CUDA out of memory. Tried to allocate 2.00 GiB")
    monkeypatch.setattr(distributed, "all_gather", lambda ranks, v: [*real(ranks, v), oom])
    sweep = DistributedSweep(
        suite, ranks=world_of_one, results_dir=tmp_path / "r", device="cpu", progress=False,
        log=lambda m: None, tensorboard=False,
    )  # fmt: skip
    summary = sweep.run(["fault_conv_a"])
    (record,) = [r for r in read_record_files(tmp_path / "r") if r["arch"] == "fault_conv_a"]
    assert record["status"] == "error" and record["metrics"] is None
    assert record["error"]["stage"] == "train" and record["error"]["type"] == "OutOfMemoryError"
    assert record["error"]["message"].startswith("rank 1 of 1 failed: CUDA out of memory")
    assert summary.failed == [
        ("fault_conv_a", f"train: OutOfMemoryError: rank 1 of 1 failed: {oom[2]}")
    ]
    assert not list((tmp_path / "r" / "samples").glob("ddp1__fault_conv_a__*.npz"))
