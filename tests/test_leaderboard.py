"""Tests for bench.leaderboard on hand-written fixture records.

Every number below is a FIXTURE value chosen by hand for the test; none is a measurement.
"""

from __future__ import annotations

import copy
import io
import random
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from bench.leaderboard import (
    FRAME_COLUMNS,
    NA,
    is_heavy_op,
    leaderboard_csv,
    per_class_iou_frame,
    records_to_frame,
    render_markdown,
    select_latest,
    write_leaderboard,
)
from bench.records import baseline_title

CLASSES = ["background", "disc", "square"]


def fixture_record(
    arch: str,
    *,
    created: str = "2026-11-27T06:16:00Z",
    kind: str = "model",
    status: str = "ok",
    miou: float | None = 0.5,
    per_class: list[float | None] | None = None,
    params: int | None = 1_000_000,
    gflops: float | None = 1.0,
    res: tuple[int, int] = (64, 64),
    device: str = "cpu",
    dtype: str | None = "fp32",
    p50: float = 10.0,
    error_message: str = "boom",
    title: str | None = None,
    paper: str | None = "1411.4038",
    paper_params: int | None = None,
    paper_gflops: float | None = None,
    paper_resolution: list[int] | None = None,
    paper_convention: str | None = None,
    unsupported: dict[str, int] | None = None,
    disagreement: bool = False,
) -> dict[str, Any]:
    """A schema-version-1 FIXTURE record; speed is omitted when ``dtype`` is None."""
    stamp = created.replace("-", "").replace(":", "")
    run_id = f"quick__{arch}__synthetic__{stamp}_{device}{dtype or ''}{status}"
    ok = status == "ok"
    metrics = None
    if ok and miou is not None:
        per_class = per_class if per_class is not None else [0.9, miou, None]
        metrics = {
            "miou": miou,
            "pixel_acc": 0.9,
            "mean_acc": 0.8,
            "fwiou": 0.85,
            "mean_dice": 0.7,
            "per_class_iou": dict(zip(CLASSES, per_class, strict=True)),
            "per_class_acc": dict(zip(CLASSES, per_class, strict=True)),
        }
    complexity = None
    if ok and params is not None:
        complexity = {
            "params": params,
            "trainable_params": params,
            "macs": None if gflops is None else int(gflops / 2 * 1e9),
            "gmacs": None if gflops is None else gflops / 2,
            "gflops": gflops,
            "input_shape": [1, 3, *res],
            "counter": "fvcore",
            "counter_version": "0.1.5",
            "unsupported_ops": unsupported if unsupported is not None else {},
            "crosscheck": None,
            "disagreement": disagreement,
            "mode": "eval",
        }
    speed = None
    if ok and dtype is not None:
        speed = {
            "device": device,
            "device_name": "NVIDIA H100" if device == "cuda" else "Fixture CPU",
            "dtype": dtype,
            "channels_last": False,
            "input_shape": [1, 3, *res],
            "batch_size": 1,
            "latency_ms": {
                "p50": p50,
                "p90": p50 * 1.1,
                "p99": p50 * 1.2,
                "mean": p50,
                "std": 0.1,
                "cv": 0.01,
                "n": 50,
            },
            "throughput_ips": 1000.0 / p50 * 4,
            "throughput_batch_size": 8,
            "throughput_sweep": [],
            "max_batch_fitted": 8,
            "peak_mem_mb": 100.0,
            "peak_mem_kind": "cuda_max_allocated" if device == "cuda" else "cpu_rss_delta_sampled",
            "achieved_gflops_per_s": 50.0,
            "efficiency": 0.25,
            "matmul_gflops_per_s": 200.0,
            "threads": 2,
        }
    return {
        "schema_version": 1,
        "run_id": run_id,
        "created": created,
        "kind": kind,
        "suite": "quick",
        "setting": "res64-steps10-b2",
        "arch": arch,
        "arch_info": {
            "title": title or arch.upper(),
            "paper": paper,
            "year": 2015,
            "family": "fcn",
            "paper_params": paper_params,
            "paper_gflops": paper_gflops,
            "paper_resolution": paper_resolution,
            "paper_flops_convention": paper_convention,
        },
        "dataset": "synthetic",
        "dataset_info": {
            "num_classes": 3,
            "class_names": CLASSES,
            "palette": [[0, 0, 0], [255, 0, 0], [0, 255, 0]],
            "ignore_index": 255,
        },
        "protocol": {
            "split": "val",
            "mode": "whole",
            "scales": [1.0],
            "flip": False,
            "resolution": list(res),
            "num_images": 20,
        },
        "status": status,
        "error": None
        if ok
        else {
            "type": "RuntimeError",
            "message": error_message,
            "traceback": "Traceback ...",
            "stage": "train",
        },
        "metrics": metrics,
        "complexity": complexity,
        "speed": speed,
        "train": {
            "steps": 10,
            "seconds": 1.5,
            "final_loss": 0.3,
            "batch_size": 2,
            "optimizer": "adamw",
            "lr": 0.001,
        }
        if ok
        else None,
        "env": {
            "torch": "2.5.1",
            "torchvision": "0.20.1",
            "python": "3.11.7",
            "platform": "x",
            "device": device,
            "device_name": "Fixture CPU",
            "cpu_model": "Fixture CPU",
            "gpu_model": None,
            "threads": 2,
            "git_commit": "abc1234",
            "git_dirty": False,
            "seed": 0,
            "matmul_gflops_per_s": 200.0,
        },
        "command": "python run_bench.py run --suite quick",
        "samples": None,
    }


def fixture_records() -> list[dict[str, Any]]:
    """A small sweep: dedup, a hidden and a shown failure, a baseline, and a CUDA record."""
    return [
        fixture_record(
            "fcn8s",
            title="FCN-8s",
            miou=0.6123,
            created="2026-11-27T06:16:00Z",
            params=134_270_000,
            gflops=2.5,
            p50=12.3,
        ),
        # Older run of the same combination: must be hidden by the newer one above.
        fixture_record("fcn8s", title="FCN-8s", miou=0.40, created="2026-11-20T00:00:00Z"),
        fixture_record(
            "segnet",
            title="SegNet",
            miou=0.70,
            p50=30.0,
            paper="1511.00561",
            disagreement=True,
            unsupported={"aten::_convolution": 2},
        ),
        # Failed with no ok record: shown at the bottom.
        fixture_record(
            "enet",
            status="error",
            dtype=None,
            error_message="CUDA out of memory\nTried to allocate 2 GiB",
        ),
        # Failed, but a later run succeeded: hidden. (And a failure after the success: hidden.)
        fixture_record(
            "unet",
            status="error",
            dtype=None,
            created="2026-11-25T00:00:00Z",
            error_message="unet first try failed",
        ),
        fixture_record("unet", title="U-Net", miou=0.55, p50=20.0),
        fixture_record(
            "unet",
            status="error",
            dtype=None,
            created="2026-11-28T00:00:00Z",
            error_message="unet flaky later failure",
        ),
        fixture_record(
            "background",
            kind="baseline",
            title="Background (all class 0)",
            miou=0.10,
            per_class=[0.30, 0.0, None],
            params=None,
            dtype=None,
            paper=None,
        ),
        fixture_record("fcn8s", title="FCN-8s", miou=0.60, device="cuda", dtype="fp16", p50=1.5),
    ]


def table_after(markdown: str, heading: str) -> list[dict[str, str]]:
    """Parse the first Markdown table after ``heading`` into row dicts (header -> cell)."""
    lines = markdown.splitlines()
    start = lines.index(heading)
    table = []
    for line in lines[start + 1 :]:
        if line.startswith("|"):
            table.append(line)
        elif table:
            break
    header = [cell.strip() for cell in table[0].strip("|").split("|")]
    return [
        dict(zip(header, (c.strip() for c in line.strip("|").split("|")), strict=True))
        for line in table[2:]
    ]


CPU_HEADING = "### Ranking, speed on cpu/fp32"
CUDA_HEADING = "### Ranking, speed on cuda/fp16"


def test_ranking_order_formatting_and_rows() -> None:
    rows = table_after(render_markdown(fixture_records()), CPU_HEADING)
    archs = [row["architecture"] for row in rows]
    assert archs == [
        "SegNet (`segnet`)",
        "FCN-8s (`fcn8s`)",
        "U-Net (`unet`)",
        "Background (all class 0) (`background`) *baseline*",
        "ENET (`enet`)",
    ]
    assert [row["rank"] for row in rows] == ["1", "2", "3", "baseline", NA]
    fcn = rows[1]
    assert fcn["mIoU %"] == "61.2"  # 0.6123 -> "61.2", the newest record (not the 0.40 one)
    assert fcn["pixel acc %"] == "90.0"
    assert fcn["params (M)"] == "134.27"
    assert fcn["GFLOPs @ 64x64"] == "2.50"
    assert fcn["latency p50 ms @ cpu/fp32/bs1"] == "12.30"
    assert fcn["efficiency % @ cpu/fp32"] == "25.0"
    assert fcn["paper"] == "[1411.4038](https://arxiv.org/abs/1411.4038)"
    # Disagreement (†) and a skipped convolution (‡) mark the GFLOPs figure.
    assert rows[0]["GFLOPs @ 64x64"] == "1.00†‡"
    assert "`aten::_convolution`" in render_markdown(fixture_records())
    # Baseline: no complexity or speed recorded.
    assert rows[3]["GFLOPs @ 64x64"] == NA and rows[3]["mIoU %"] == "10.0"


def test_error_row_only_without_ok_record() -> None:
    markdown = render_markdown(fixture_records())
    rows = table_after(markdown, CPU_HEADING)
    assert rows[-1]["status"] == "error: CUDA out of memory (stage: train)"
    assert rows[0]["status"] == "ok"
    assert "unet first try failed" not in markdown
    assert "unet flaky later failure" not in markdown
    # Without any error record the status column disappears.
    ok_only = [r for r in fixture_records() if r["status"] == "ok"]
    assert "status" not in table_after(render_markdown(ok_only), CPU_HEADING)[0]


def test_dedup_keeps_newest_and_is_order_independent() -> None:
    records = fixture_records()
    kept = select_latest(records)
    fcn_cpu = [r for r in kept if r["arch"] == "fcn8s" and r["speed"]["device"] == "cpu"]
    assert [r["created"] for r in fcn_cpu] == ["2026-11-27T06:16:00Z"]
    assert [r["arch"] for r in kept if r["status"] == "error"] == ["enet"]
    assert len(kept) == 6
    # Same created timestamp: run_id decides, so the choice never depends on input order.
    twin_a = fixture_record("pspnet", miou=0.3)
    twin_b = copy.deepcopy(twin_a)
    twin_b["run_id"] = twin_a["run_id"] + "z"
    twin_b["metrics"]["miou"] = 0.31
    for pair in ([twin_a, twin_b], [twin_b, twin_a]):
        assert [r["run_id"] for r in select_latest(pair)] == [twin_b["run_id"]]


def test_failure_on_indexed_device_hidden_by_ok_record() -> None:
    ok = fixture_record("fcn8s", device="cuda", dtype="fp16")
    failed = fixture_record(
        "fcn8s",
        status="error",
        dtype=None,
        device="cuda",
        error_message="cuda:0 failure",
        created="2026-11-28T00:00:00Z",
    )
    failed["env"]["device"] = "cuda:0"
    assert select_latest([failed, ok]) == [ok]
    cpu_ok = fixture_record("fcn8s", device="cpu")
    assert select_latest([failed, cpu_ok]) == [cpu_ok, failed]  # other device: still shown


def test_rendering_is_deterministic() -> None:
    records = fixture_records()
    first = render_markdown(records)
    assert render_markdown(copy.deepcopy(records)) == first
    shuffled = records[:]
    random.Random(0).shuffle(shuffled)
    assert render_markdown(shuffled) == first
    assert leaderboard_csv(shuffled) == leaderboard_csv(records)


def test_cpu_and_cuda_speed_are_separate_tables() -> None:
    markdown = render_markdown(fixture_records())
    cpu = table_after(markdown, CPU_HEADING)
    cuda = table_after(markdown, CUDA_HEADING)
    assert "latency p50 ms @ cpu/fp32/bs1" in cpu[0]
    assert "latency p50 ms @ cuda/fp16/bs1" in cuda[0]
    assert not any("cuda" in header for header in cpu[0])
    assert [row["latency p50 ms @ cpu/fp32/bs1"] for row in cpu] == [
        "30.00",
        "12.30",
        "20.00",
        NA,
        NA,
    ]
    assert [row["architecture"] for row in cuda] == ["FCN-8s (`fcn8s`)"]
    assert cuda[0]["latency p50 ms @ cuda/fp16/bs1"] == "1.50"
    assert "NVIDIA H100" in markdown and "`cuda_max_allocated`" in markdown


def test_per_class_table_shows_dash_for_absent_class() -> None:
    markdown = render_markdown(fixture_records())
    rows = table_after(markdown, "### Per-class IoU (%)")
    background = next(r for r in rows if "`background`" in r["architecture"])
    assert (background["background"], background["disc"], background["square"]) == (
        "30.0",
        "0.0",
        NA,
    )
    # Two devices for fcn8s in this group: rows say which record they come from.
    assert "FCN-8s (`fcn8s`) [cuda/fp16]" in [r["architecture"] for r in rows]
    frame = per_class_iou_frame(fixture_records())
    assert list(frame.columns) == CLASSES
    assert frame.loc["SegNet (segnet) [cpu/fp32]", "disc"] == pytest.approx(0.70)
    assert pd.isna(frame.loc["SegNet (segnet) [cpu/fp32]", "square"])


def test_csv_matches_deduplicated_rows() -> None:
    records = fixture_records()
    frame = pd.read_csv(io.StringIO(leaderboard_csv(records)))
    assert list(frame.columns) == list(FRAME_COLUMNS)
    assert list(frame["run_id"]) == [r["run_id"] for r in select_latest(records)]
    fcn_cpu = frame[(frame["arch"] == "fcn8s") & (frame["device"] == "cpu")]
    assert fcn_cpu["miou"].tolist() == [0.6123]
    assert fcn_cpu["params_m"].tolist() == [134.27]
    enet = frame[frame["arch"] == "enet"].iloc[0]
    assert enet["status"] == "error" and enet["error_message"].startswith("CUDA out of memory")
    assert pd.isna(enet["latency_p50_ms"])


def test_records_to_frame_keeps_every_record() -> None:
    frame = records_to_frame(fixture_records())
    assert len(frame) == len(fixture_records())
    assert tuple(frame.columns) == FRAME_COLUMNS
    assert frame.loc[0, "gflops"] == 2.5 and frame.loc[0, "complexity_res"] == "64x64"
    assert frame.loc[2, "unsupported_heavy_ops"] == "aten::_convolution"
    assert frame.loc[2, "unsupported_ops"] == 2
    # A record without speed takes its device from env; its dtype stays missing.
    assert frame.loc[7, "device"] == "cpu" and pd.isna(frame.loc[7, "dtype"])


def test_paper_vs_measured() -> None:
    records = [
        fixture_record(
            "fcn8s",
            title="FCN-8s",
            params=134_000_000,
            gflops=2.0,
            paper_params=134_500_000,
            paper_gflops=1.0,
            paper_resolution=[64, 64],
            paper_convention="macs",
        ),
        fixture_record(
            "segnet",
            title="SegNet",
            paper_params=29_500_000,
            paper_gflops=286.0,
            paper_resolution=[360, 480],
            paper_convention="macs",
        ),
    ]
    rows = table_after(render_markdown(records), "## Paper vs measured")
    fcn = next(r for r in rows if "fcn8s" in r["architecture"])
    assert fcn["paper params (M)"] == "134.50"
    assert fcn["measured params (M)"] == "134.00"
    assert fcn["params diff %"] == "-0.4"
    assert fcn["paper compute @ res (convention)"] == "1.00 GMACs @ 64x64"
    assert fcn["measured, same res & convention"] == "1.00 GMACs"
    assert fcn["compute diff %"] == "+0.0"
    segnet = next(r for r in rows if "segnet" in r["architecture"])
    assert segnet["measured, same res & convention"] == (
        "not measured at paper resolution (measured at 64x64)"
    )
    assert segnet["compute diff %"] == NA


def test_header_states_conventions_and_environment() -> None:
    markdown = render_markdown(fixture_records())
    assert markdown.startswith("# Semantic-segmentation leaderboard\n")
    assert "GFLOPs** = 2 x GMACs (fvcore counts one multiply-add as one FLOP" in markdown
    assert "mmsegmentation convention" in markdown
    assert "torch 2.5.1; torchvision 0.20.1; Python 3.11.7" in markdown
    assert "git commit(s): `abc1234`" in markdown
    assert "Evaluation protocol: split `val`, whole inference, scales [1.0], no flip" in markdown


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda r: r["metrics"].update(miou=61.2), r"metrics\.miou.*\[0, 1\].*61\.2.*percentages"),
        (lambda r: r.pop("run_id"), r"'run_id'.*non-empty string.*required"),
        (lambda r: r.update(schema_version=2), r"schema_version.*1.*found 2"),
        (lambda r: r.update(status="failed"), r"status.*'ok' or 'error'.*'failed'"),
        (lambda r: r.update(metrics=[0.5]), r"'metrics'.*object or null"),
        (lambda r: r["speed"].pop("device"), r"speed\.device.*speed section is present"),
        (lambda r: r["speed"]["latency_ms"].update(p50="fast"), r"latency_ms\.p50.*number"),
        (lambda r: r.update(created="yesterday"), r"created.*ISO-8601"),
        (lambda r: r["complexity"].update(unsupported_ops=["conv"]), r"unsupported_ops"),
    ],
)
def test_corrupt_records_raise_clear_errors(mutate: Any, expected: str) -> None:
    record = fixture_record("fcn8s")
    mutate(record)
    with pytest.raises(ValueError, match=expected) as info:
        render_markdown([record])
    assert "run record #0" in str(info.value) and "Fix:" in str(info.value)


def test_error_record_without_message_and_non_dict_are_rejected() -> None:
    record = fixture_record("enet", status="error", dtype=None)
    record["error"] = None
    with pytest.raises(ValueError, match=r"error\.message.*status 'error'"):
        records_to_frame([record])
    with pytest.raises(ValueError, match="expected a dict.*found str"):
        records_to_frame(["quick__fcn8s.json"])  # type: ignore[list-item]


def test_heavy_op_detection() -> None:
    assert is_heavy_op("aten::_convolution")
    assert is_heavy_op("aten::conv_transpose2d")
    assert is_heavy_op("aten::addmm") and is_heavy_op("aten::matmul")
    assert not is_heavy_op("aten::upsample_bilinear2d")
    assert not is_heavy_op("aten::max_pool2d")


def test_write_leaderboard(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"no run records in .*run_bench\.py run"):
        write_leaderboard(tmp_path, [])
    # Two records keep this fast: the figures themselves are tested in test_plots.py.
    records = [fixture_record("fcn8s", miou=0.6), fixture_record("enet", miou=0.5, p50=3.0)]
    paths = write_leaderboard(tmp_path, records)
    assert paths[:2] == [tmp_path / "LEADERBOARD.md", tmp_path / "leaderboard.csv"]
    assert (tmp_path / "LEADERBOARD.md").read_text(encoding="utf-8") == render_markdown(records)
    assert (tmp_path / "leaderboard.csv").read_text(encoding="utf-8") == leaderboard_csv(records)
    assert [p.relative_to(tmp_path).as_posix() for p in paths[2:]] == [
        "plots/quick__synthetic__res64-steps10-b2__miou_vs_latency_cpu-fp32.png",
        "plots/quick__synthetic__res64-steps10-b2__miou_vs_gflops_64x64.png",
        "plots/quick__synthetic__res64-steps10-b2__per_class_iou.png",
    ]
    assert all(p.stat().st_size > 0 for p in paths)


def test_baseline_row_names_class_zero() -> None:
    """The constant class-0 baseline is "all background" only where class 0 is the background;
    on CamVid (class 0 = sky) the row says so, also for records written with the old title."""
    assert baseline_title("background") == "all background (baseline)"
    assert baseline_title("sky") == "all sky (class 0, baseline)"
    sky = fixture_record("background", kind="baseline", title="all background (baseline)")
    sky["dataset_info"]["class_names"] = ["sky", "disc", "square"]
    sky["metrics"]["per_class_iou"] = dict(
        zip(["sky", "disc", "square"], [0.9, 0.5, None], strict=True)
    )
    plain = fixture_record("background", kind="baseline", title="all background (baseline)")
    titles = records_to_frame([sky, plain])["title"].tolist()
    assert titles == ["all sky (class 0, baseline)", "all background (baseline)"]
