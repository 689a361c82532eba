"""Tests for bench.cli, called in-process through ``main([...])`` (plus one real subprocess).

One ``run`` of the tiny suite (``tests/data/tiny_suite.yaml``, 2 mobile architectures, 3 steps
at 32x32) is shared by the tests that read its records, leaderboard and checkpoints.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import architectures
from bench import cli
from bench import speed as speed_module
from bench.bootstrap import bootstrap_intervals, load_per_image
from bench.checkpoint import load_into
from bench.cli import main
from bench.complexity import count_complexity
from bench.data import build_dataset
from bench.evaluate import evaluate
from bench.models import build_model
from bench.suites import load_suite
from tests.factories import ROOT, TINY_SUITE, read_record_files, run_cli, tiny_suite_argv

LRASPP = "tv_lraspp_mobilenet_v3_large"
DEEPLAB = "tv_deeplabv3_mobilenet_v3_large"
COMMANDS = (
    "list",
    "run",
    "leaderboard",
    "eval",
    "profile",
    "papers",
    "data",
    "score",
    "baseline",
    "check",
    "merge",
    "upgrade-records",
)

# One intra-op thread for the module (its shared run included); entries that a --plugin of a
# module-scoped run registered are removed when the module ends.
pytestmark = pytest.mark.usefixtures("one_thread_per_module", "restore_registry_per_module")

BROKEN_PLUGIN = """
import torch
from torch import nn

from architectures import ArchInfo, register


class Broken(nn.Module):
    def __init__(self, num_classes):
        super().__init__()
        self.conv = nn.Conv2d(3, num_classes, 1)

    def forward(self, x):
        raise RuntimeError("plugin model exploded")


@register(ArchInfo(name="cli_broken_arch", title="Broken", paper="1411.4038", year=2026,
                   family="test", input_divisor=1))
def broken(*, num_classes):
    return Broken(num_classes)


@register(ArchInfo(name="cli_tiny_arch", title="1x1 conv", paper="1411.4038", year=2026,
                   family="test", input_divisor=1))
def tiny(*, num_classes):
    return nn.Conv2d(3, num_classes, 1)
"""

RAISING_PLUGIN = """
SETTING = 1 / 0  # a plugin with a bug at import time
"""


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    base = tmp_path_factory.mktemp("cli_run")
    results, ckpts = base / "results", base / "ckpt"
    argv = [
        *tiny_suite_argv(results),
        "-q",
        "--save-checkpoints",
        ckpts,
    ]
    code, out, err = run_cli(argv)
    return {
        "code": code,
        "out": out,
        "err": err,
        "results": results,
        "ckpts": ckpts,
        "argv": [str(a) for a in argv],
    }


# -- help and list ------------------------------------------------------------------------------


def test_help_in_a_subprocess_names_every_command():
    res = subprocess.run(
        [sys.executable, "run_bench.py", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith("usage: run_bench.py")
    listed = [
        line.split()[0]
        for line in res.stdout.splitlines()
        if line.startswith("    ") and not line.startswith("     ")
    ]
    assert sorted(listed) == sorted(COMMANDS)
    assert set(COMMANDS) == set(cli.COMMANDS)  # every command is documented in --help


def test_list_archs_json_has_every_registered_arch():
    code, out, _ = run_cli(["list", "archs", "--format", "json"])
    assert code == 0
    rows = json.loads(out)
    names = [r["name"] for r in rows]
    assert names == architectures.names()
    for name in (
        "fcn8s",
        "fcn16s",
        "fcn32s",
        "tv_fcn_resnet50",
        "tv_deeplabv3_resnet50",
        DEEPLAB,
        LRASPP,
    ):
        assert name in names
    fcn8s = rows[names.index("fcn8s")]
    info = architectures.get_info("fcn8s")
    assert (fcn8s["title"], fcn8s["paper"], fcn8s["year"]) == (info.title, info.paper, info.year)
    assert fcn8s["source"] == "builtin"


def test_list_datasets_table():
    code, out, _ = run_cli(["list", "datasets"])
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split("|")[1].strip() == "name"
    assert any(line.split("|")[1].strip() == "synthetic" for line in lines[2:])


def test_list_suites_json():
    code, out, _ = run_cli(["list", "suites", "--format", "json"])
    assert code == 0
    rows = {r["name"]: r for r in json.loads(out)}
    assert set(rows) >= {"quick", "smoke"}
    assert rows["smoke"]["archs"] == [LRASPP, DEEPLAB]
    assert rows["quick"]["archs"] == "all"
    assert rows["smoke"]["setting"] == load_suite("smoke").setting
    assert rows["smoke"]["setting"].startswith("64x64-steps40-bs8-fp32-seed0-")


# -- run and leaderboard ----------------------------------------------------------------------


def test_run_writes_records_leaderboard_and_plots(tiny_run):
    assert tiny_run["code"] == 0, tiny_run["err"]
    results = tiny_run["results"]
    assert tiny_run["out"].startswith(
        f"suite tiny_suite: 2 architectures on synthetic ({load_suite(str(TINY_SUITE)).setting}) on cpu; "
        f"records -> {results / 'records'}"
    )
    records = read_record_files(results)
    assert sorted(r["arch"] for r in records) == sorted(["background", LRASPP, DEEPLAB])
    assert all(r["status"] == "ok" for r in records)
    # The record holds the command as typed, not the test runner's own argv.
    assert records[0]["command"] == "python run_bench.py " + " ".join(tiny_run["argv"])
    assert (results / "LEADERBOARD.md").read_text().strip()
    assert (results / "leaderboard.csv").read_text().count("\n") >= 3  # header + 2 archs
    pngs = sorted((results / "plots").glob("*.png"))
    assert pngs and all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in pngs)
    for arch in (LRASPP, DEEPLAB):
        assert (tiny_run["ckpts"] / f"{arch}.pt").is_file()


def test_leaderboard_rerender_is_byte_identical(tiny_run):
    """`run` rendered once; `leaderboard` renders again from the stored records alone."""
    results = tiny_run["results"]
    names = ("LEADERBOARD.md", "leaderboard.csv")
    from_run = [(results / n).read_bytes() for n in names]
    plots_before = sorted(p.name for p in (results / "plots").iterdir())
    site_before = {p: p.read_bytes() for p in (results / "site").rglob("*") if p.is_file()}
    code, out, _ = run_cli(["leaderboard", "--results-dir", results])
    assert code == 0
    printed = out.splitlines()
    assert printed[:2] == [str(results / n) for n in names]
    figures = [str(results / "plots" / p) for p in plots_before]
    assert sorted(p for p in printed[2:] if "/site/" not in p) == figures
    assert {p: p.read_bytes() for p in (results / "site").rglob("*") if p.is_file()} == site_before
    assert [(results / n).read_bytes() for n in names] == from_run
    assert sorted(p.name for p in (results / "plots").iterdir()) == plots_before


def test_leaderboard_without_records_exits_2(tmp_path):
    code, _, err = run_cli(["leaderboard", "--results-dir", tmp_path])
    assert code == 2
    assert f"error: No records folder at {tmp_path / 'records'}" in err


def test_run_with_a_failing_plugin_arch_exits_1_and_keeps_the_others(tmp_path, restore_registry):
    plugin = tmp_path / "my_archs.py"
    plugin.write_text(BROKEN_PLUGIN, encoding="utf-8")
    suite = tmp_path / "mixed.yaml"
    suite.write_text(
        TINY_SUITE.read_text().replace(
            f"archs: [{LRASPP}, {DEEPLAB}]", "archs: [cli_tiny_arch, cli_broken_arch]"
        )
    )
    results = tmp_path / "results"
    code, _, err = run_cli(
        ["run", "--suite", suite, "--results-dir", results, "-q", "--plugin", plugin]
    )
    assert code == 1
    assert "1 of 2 architectures FAILED:" in err
    assert (
        "  cli_broken_arch: complexity: RuntimeError: fvcore could not count PadCrop at "
        "input shape (1, 3, 64, 64): RuntimeError: plugin model exploded"
    ) in err
    status = {r["arch"]: r["status"] for r in read_record_files(results)}
    assert status == {"background": "ok", "cli_tiny_arch": "ok", "cli_broken_arch": "error"}
    assert (results / "LEADERBOARD.md").is_file()  # the leaderboard still shows the others


def test_run_unknown_arch_exits_2_with_close_matches(tmp_path):
    results = tmp_path / "results"
    code, _, err = run_cli(
        [
            *tiny_suite_argv(results),
            "--archs",
            "tv_lraspp_mobilenetv3_large",
        ]
    )
    assert code == 2
    assert (
        "error: Unknown architecture 'tv_lraspp_mobilenetv3_large'. Did you mean: "
        "tv_lraspp_mobilenet_v3_large"
    ) in err
    assert not results.exists()


def test_run_arch_not_in_suite_exits_2(tmp_path):
    code, _, err = run_cli(
        [
            *tiny_suite_argv(tmp_path / "r"),
            "--archs",
            f"{LRASPP},fcn8s",
        ]
    )
    assert code == 2
    assert (
        f"error: --archs fcn8s not in suite 'tiny_suite' (its architectures: {LRASPP}, {DEEPLAB})."
    ) in err


def test_run_unwritable_results_dir_exits_2(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    code, _, err = run_cli(["run", "--suite", TINY_SUITE, "--results-dir", blocker / "results"])
    assert code == 2
    assert (
        f"error: --results-dir {blocker / 'results'} is not a writable folder (Not a "
        f"directory). Pass --results-dir pointing at a folder you can write to."
    ) in err


def test_run_unwritable_checkpoint_dir_exits_2_before_running(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    results = tmp_path / "results"
    code, _, err = run_cli(
        [
            *tiny_suite_argv(results),
            "--save-checkpoints",
            blocker / "ckpt",
        ]
    )
    assert code == 2
    assert f"error: --save-checkpoints {blocker / 'ckpt'} is not a writable folder" in err
    assert not (results / "records").exists()


def test_run_unknown_suite_exits_2():
    code, _, err = run_cli(["run", "--suite", "smok"])
    assert code == 2
    assert "error: Unknown suite 'smok'. Did you mean: smoke?" in err


def test_a_torchrun_rank_other_than_0_waits_before_it_reports_an_error(monkeypatch, capsys):
    """Rank 0 prints a refusal that every rank meets; the others wait first, so torchrun (which
    stops the job when one worker fails) cannot stop rank 0 before it has printed."""
    waits: list[float] = []
    monkeypatch.setattr(cli.time, "sleep", waits.append)
    monkeypatch.setenv("RANK", "1")
    assert main(["run", "--suite", "smok"]) == 2
    assert waits == [cli.TORCHRUN_ERROR_WAIT_S]
    assert "error (rank 1): Unknown suite 'smok'" in capsys.readouterr().err
    monkeypatch.setenv("RANK", "0")
    assert main(["run", "--suite", "smok"]) == 2
    assert waits == [cli.TORCHRUN_ERROR_WAIT_S]  # rank 0 does not wait
    assert capsys.readouterr().err.startswith("error: Unknown suite 'smok'")


def test_plugin_that_raises_exits_2_with_its_traceback(tmp_path, restore_registry):
    plugin = tmp_path / "bad_plugin.py"
    plugin.write_text(RAISING_PLUGIN, encoding="utf-8")
    results = tmp_path / "results"
    code, _, err = run_cli(
        ["run", "--suite", TINY_SUITE, "--results-dir", results, "--plugin", plugin]
    )
    assert code == 2
    assert f"error: Plugin {plugin} raised while being imported" in err
    assert "Traceback (most recent call last)" in err
    assert "SETTING = 1 / 0" in err and "ZeroDivisionError: division by zero" in err
    assert not results.exists()


def test_plugin_file_missing_exits_2(tmp_path):
    code, _, err = run_cli(["list", "--plugin", tmp_path / "nope.py"])
    assert code == 2
    assert f"error: Plugin {tmp_path / 'nope.py'} not found or not a .py file." in err


# -- profile ----------------------------------------------------------------------------------


def test_profile_json_complexity():
    code, out, _ = run_cli(
        ["profile", "--arch", LRASPP, "--input-shape", "1,3,64,64", "--format", "json"]
    )
    assert code == 0
    report = json.loads(out)
    assert report["arch"] == LRASPP and "speed" not in report
    cx = report["complexity"]
    model = build_model(LRASPP, num_classes=21)  # --num-classes defaults to 21
    assert cx["params"] == sum(p.numel() for p in model.parameters())
    assert cx["input_shape"] == [1, 3, 64, 64]
    assert cx["macs"] == count_complexity(model, (1, 3, 64, 64)).macs  # the library's count
    assert cx["gflops"] == pytest.approx(2 * cx["macs"] / 1e9)
    assert cx["gmacs"] == pytest.approx(cx["macs"] / 1e9)


def test_profile_with_speed(monkeypatch):
    # `profile` has no knobs for the timing budget; shrink the SpeedConfig it builds so the test
    # stays fast (the CLI's device, dtype and GMACs still reach the real function).
    real, seen = speed_module.measure_speed, []

    def fast(model, image_shape, config, **kwargs):
        seen.append(config)
        small = dataclasses.replace(
            config, warmup=1, min_iters=2, max_iters=3, min_time_s=0.01, max_batch=2
        )
        return real(model, image_shape, small, **kwargs)

    monkeypatch.setattr(speed_module, "measure_speed", fast)
    code, out, _ = run_cli(
        [
            "profile",
            "--arch",
            LRASPP,
            "--input-shape",
            "1,3,32,32",
            "--format",
            "json",
            "--speed",
            "--device",
            "cpu",
        ]
    )
    assert code == 0
    report = json.loads(out)
    sp = report["speed"]
    assert sp["device"] == "cpu" and sp["dtype"] == "fp32"
    assert sp["input_shape"] == [1, 3, 32, 32]
    # The shrunken config reached the measurement: 2 to 3 timed calls, batches up to 2.
    assert 2 <= sp["latency_ms"]["n"] <= 3 and sp["throughput_batch_size"] in (1, 2)
    # profile's own budget, unchanged from measure_speed's keyword defaults before SpeedConfig.
    assert seen == [
        speed_module.SpeedConfig(
            warmup=5, min_iters=10, max_iters=200, min_time_s=1.0, max_batch=64, dtype="fp32"
        )
    ]
    assert report["complexity"]["input_shape"] == [1, 3, 32, 32]


def test_profile_table_names_the_units():
    code, out, _ = run_cli(["profile", "--arch", LRASPP, "--input-shape", "1,3,32,32"])
    assert code == 0
    assert "GFLOPs (2 x GMACs)" in out and "| input shape" in out and "1x3x32x32" in out


@pytest.mark.parametrize("shape", ["1,3,64", "1,3,64,0", "a,b,c,d"])
def test_profile_bad_input_shape_is_an_argparse_error(capsys, shape):
    with pytest.raises(SystemExit) as exc:
        main(["profile", "--arch", LRASPP, "--input-shape", shape])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert f"expected N,C,H,W as four positive integers (e.g. 1,3,512,512); got {shape!r}" in err


def test_profile_unknown_arch_exits_2():
    code, _, err = run_cli(["profile", "--arch", "fcn9s", "--input-shape", "1,3,32,32"])
    assert code == 2
    assert "error: Unknown architecture 'fcn9s'. Did you mean: fcn8s" in err


# -- eval -------------------------------------------------------------------------------------


def eval_json(tmp_path: Path, name: str, *extra: object, arch: str = LRASPP) -> dict:
    out = tmp_path / f"{name}.json"
    code, stdout, err = run_cli(
        [
            "eval",
            "--arch",
            arch,
            "--dataset",
            "synthetic",
            "--resolution",
            "32",
            "32",
            "--batch-size",
            "50",
            "-q",
            "--json",
            out,
            *extra,
        ]
    )
    assert code == 0, err
    lines = stdout.splitlines()
    result = json.loads(out.read_text())
    # First what was evaluated and how, then the metrics.
    assert lines[0] == (
        f"synthetic val: {result['num_images']} images at 32x32; "
        f"{result['protocol']['note']}; device cpu"
    )
    assert lines[1].split(":")[0].strip() == "miou"
    assert lines[-1] == f"wrote {out}"
    return result


def test_eval_fresh_model_writes_metrics_and_is_seeded(tmp_path):
    first = eval_json(tmp_path, "a")
    assert (first["arch"], first["dataset"], first["split"]) == (LRASPP, "synthetic", "val")
    assert first["checkpoint"] is None and first["seed"] == 0
    assert first["num_images"] == 200  # the synthetic val split's default size
    for key in ("miou", "pixel_acc", "mean_acc", "fwiou", "mean_dice"):
        assert 0.0 <= first["metrics"][key] <= 1.0
    assert first["protocol"] == {
        "name": "standard",
        "resolution": [32, 32],
        "loaded_resolution": [32, 32],
        "note": "harness normalisation (dataset mean/std)",
    }
    assert first["device"] == "cpu" and first["checkpoint_sha256"] is None
    # Per-class results in the dataset's class order, and the matrix they come from.
    info = build_dataset("synthetic", split="val", size=32, num_samples=1)[1]
    assert [c["class"] for c in first["per_class"]] == list(info.class_names)
    matrix = np.array(first["confusion_matrix"])
    assert matrix.shape == (info.num_classes, info.num_classes)
    assert matrix.sum() == 200 * 32 * 32  # the synthetic set has no ignored pixels
    iou = np.diag(matrix) / (matrix.sum(0) + matrix.sum(1) - np.diag(matrix))
    got = [c["iou"] for c in first["per_class"]]
    assert got == pytest.approx([None if np.isnan(v) else v for v in iou])
    torch.manual_seed(12345)  # another global RNG state must not change a fresh model
    assert eval_json(tmp_path, "b")["metrics"] == first["metrics"]


@pytest.mark.parametrize("arch", [LRASPP, DEEPLAB])
def test_checkpoint_reproduces_the_records_metrics(tiny_run, arch):
    """The saved weights give back the record's metrics on the suite's own eval split.

    The CLI cannot express the suite's dataset option ``num_samples: 16`` (``eval`` always
    uses the split's default size), so this check loads the checkpoint in-process.
    """
    record = next(r for r in read_record_files(tiny_run["results"]) if r["arch"] == arch)
    suite = load_suite(str(TINY_SUITE))
    eval_set, info = build_dataset("synthetic", split="val", size=(32, 32), num_samples=16)
    model = build_model(arch, num_classes=info.num_classes)
    load_into(
        model.model, tiny_run["ckpts"] / f"{arch}.pt", arch=arch, num_classes=info.num_classes
    )
    result = evaluate(
        model,
        eval_set,
        info,
        batch_size=suite.eval.batch_size,
        progress=False,
    )
    metrics = dict(record["metrics"])
    saved = load_per_image(
        tiny_run["results"] / metrics.pop("per_image_file"), metrics.pop("per_image_sha256")
    )
    assert (saved == result.per_image).all()  # the per-image matrices too
    assert (result.per_image.sum(axis=0) == result.matrix).all()
    intervals = bootstrap_intervals(result.per_image, metrics.pop("bootstrap_resamples"))
    for name, (lo, hi) in intervals.items():
        assert metrics.pop(f"{name}_ci95") == [lo, hi]
    assert metrics.pop("bootstrap_seed") == 0
    assert {**result.metrics.to_dict(), "confusion_matrix": result.matrix.tolist()} == metrics


def test_eval_checkpoint_is_repeatable_and_differs_from_a_fresh_model(tiny_run, tmp_path):
    # DeepLabV3: after 3 steps its predictions have moved (LR-ASPP's argmax has not yet).
    ckpt = tiny_run["ckpts"] / f"{DEEPLAB}.pt"
    first = eval_json(tmp_path, "c1", "--checkpoint", ckpt, arch=DEEPLAB)
    second = eval_json(tmp_path, "c2", "--checkpoint", ckpt, arch=DEEPLAB)
    assert first["checkpoint"] == str(ckpt) and first["seed"] is None
    assert first["num_images"] == 200
    assert first["metrics"] == second["metrics"]
    fresh = eval_json(tmp_path, "fresh", arch=DEEPLAB)
    assert fresh["metrics"]["miou"] != first["metrics"]["miou"]


def test_eval_checkpoint_of_another_arch_exits_2(tiny_run):
    ckpt = tiny_run["ckpts"] / f"{LRASPP}.pt"
    code, _, err = run_cli(
        [
            "eval",
            "--arch",
            DEEPLAB,
            "--dataset",
            "synthetic",
            "--resolution",
            "32",
            "32",
            "--checkpoint",
            ckpt,
        ]
    )
    assert code == 2
    assert (
        f"error: Checkpoint {ckpt} is for arch '{LRASPP}' with 8 classes; asked for "
        f"'{DEEPLAB}' with 8. Evaluate it as --arch {LRASPP} on a dataset with 8 "
        f"classes, or pass the checkpoint of '{DEEPLAB}'."
    ) in err


def test_eval_plain_state_dict_of_another_arch_names_the_keys(tiny_run, tmp_path):
    state = torch.load(tiny_run["ckpts"] / f"{LRASPP}.pt", weights_only=True)["state_dict"]
    plain = tmp_path / "plain.pt"
    torch.save(state, plain)
    code, _, err = run_cli(
        [
            "eval",
            "--arch",
            DEEPLAB,
            "--dataset",
            "synthetic",
            "--resolution",
            "32",
            "32",
            "--checkpoint",
            plain,
        ]
    )
    assert code == 2
    lines = err.splitlines()
    assert lines[0] == f"error: Checkpoint {plain} does not fit '{DEEPLAB}' with 8 classes:"
    # DeepLabV3 has an ASPP head and an auxiliary FCN head (52 tensors, 8 of them batch-norm
    # num_batches_tracked, which torch's strict load forgives); LR-ASPP has neither.
    assert lines[1].startswith("  missing keys (44): aux_classifier.0.weight, ")
    assert lines[1].endswith(" (+36 more)")
    assert lines[2].startswith("  unexpected keys (11): classifier.cbr.0.weight, ")
    assert lines[-1].endswith("otherwise it is for another architecture or class count.")


def test_eval_missing_checkpoint_exits_2(tmp_path):
    code, _, err = run_cli(
        ["eval", "--arch", LRASPP, "--dataset", "synthetic", "--checkpoint", tmp_path / "none.pt"]
    )
    assert code == 2
    assert f"error: Checkpoint {tmp_path / 'none.pt'} does not exist." in err


def test_eval_with_suite_reproduces_the_run_record_of_a_checkpoint(tiny_run, tmp_path):
    # `eval --suite` takes the suite's dataset options, resolution and eval split, so scoring a
    # checkpoint saved by `run` gives exactly the metrics in that run's record.
    ckpt = tiny_run["ckpts"] / f"{DEEPLAB}.pt"
    out = tmp_path / "suite_eval.json"
    code, _, err = run_cli(
        [
            "eval",
            "--arch",
            DEEPLAB,
            "--suite",
            TINY_SUITE,
            "--checkpoint",
            ckpt,
            "--json",
            out,
            "-q",
        ]
    )
    assert code == 0, err
    record = next(r for r in read_record_files(tiny_run["results"]) if r["arch"] == DEEPLAB)
    scored = json.loads(out.read_text())
    assert scored["num_images"] == record["protocol"]["num_images"]
    kept = {k: v for k, v in record["metrics"].items() if not k.startswith(("per_image", "boot"))}
    assert {**scored["metrics"], "confusion_matrix": scored["confusion_matrix"]} == kept


def test_eval_without_dataset_or_suite_exits_2():
    code, _, err = run_cli(["eval", "--arch", LRASPP])
    assert code == 2
    assert "eval needs --dataset NAME or --suite NAME" in err


def test_leaderboard_into_a_folder_it_cannot_write_exits_2_and_keeps_the_records(tmp_path):
    """Like `run`, `leaderboard` answers an unwritable folder with a message, not a traceback
    (a directory where LEADERBOARD.md should go fails even for root, unlike chmod)."""
    import shutil

    results = tmp_path / "results"
    shutil.copytree(ROOT / "results" / "records", results / "records")
    (results / "LEADERBOARD.md").mkdir()
    before = sorted(p.name for p in (results / "records").iterdir())
    code, _, err = run_cli(["leaderboard", "--results-dir", results])
    assert code == 2
    assert err.startswith(f"error: --results-dir {results}: cannot write the leaderboard (")
    assert "LEADERBOARD.md" in err and "Traceback" not in err
    assert sorted(p.name for p in (results / "records").iterdir()) == before


@pytest.mark.parametrize("bug", [TypeError("unsupported operand"), ValueError("from torch")])
def test_a_harness_bug_keeps_its_traceback(monkeypatch, bug):
    """Only errors a user can fix (BenchError, ArchitectureError) become 'error: ...' and exit
    2; a TypeError or a bare ValueError from deep inside is a bug and must not be hidden."""

    def broken(args):
        raise bug

    monkeypatch.setitem(cli.COMMANDS, "list", broken)
    with pytest.raises(type(bug), match=str(bug)):
        main(["list"])


def test_user_errors_are_one_line_and_exit_2():
    code, out, err = run_cli(["profile", "--arch", "fnc8s", "--input-shape", "1,3,64,64"])
    assert code == 2 and out == ""
    assert err == (
        "error: Unknown architecture 'fnc8s'. Did you mean: fcn8s, fcn32s, fcn16s? Run "
        "`python run_bench.py "
        f"list archs` to see all {len(architectures.names())} entries. An entry defined in a "
        "plugin needs --plugin FILE.py, or its package installed (entry point group "
        "'semseg_bench.architectures').\n"
    )


def test_eval_unknown_arch_fails_before_the_dataset_is_indexed(tmp_path) -> None:
    # The data root does not exist: had the dataset been indexed first, that would be the error.
    code, out, err = run_cli(
        ["eval", "--arch", "my_net", "--dataset", "camvid", "--data-root", tmp_path / "none"]
    )
    assert code == 2 and out == ""
    assert err.startswith("error: Unknown architecture 'my_net'.")
    assert "needs --plugin FILE.py" in err


def test_archs_all_leaves_out_entries_that_need_more_classes(restore_registry, capsys) -> None:
    from torch import nn

    from architectures import ArchInfo, register
    from bench.cli.commands import _buildable

    @register(
        ArchInfo(
            name="tmp_five", title="T", paper="1505.04597", year=2015, family="t", min_num_classes=5
        )
    )
    def tmp_five(*, num_classes: int) -> nn.Module:
        return nn.Conv2d(3, num_classes, 1)

    assert _buildable(["fcn8s", "tmp_five"], 4, "synthetic") == ["fcn8s"]
    assert capsys.readouterr().out == (
        "not run: tmp_five needs at least 5 classes (ArchInfo.min_num_classes); synthetic has "
        "4 here\n"
    )
    assert _buildable(["fcn8s", "tmp_five"], 5, "synthetic") == ["fcn8s", "tmp_five"]
