"""Tests for bench.reporting.frame on hand-written FIXTURE records (tests/factories.py).

Every number below is a FIXTURE value chosen by hand for the test; none is a measurement.
"""

from __future__ import annotations

import io
import random

import pandas as pd
import pytest

from bench.errors import ConfigError
from bench.reporting.frame import (
    FRAME_COLUMNS,
    device_labels,
    is_heavy_op,
    leaderboard_csv,
    leaderboard_frame,
    per_class_iou_frame,
    records_to_frame,
    select_latest,
)
from tests.factories import FIXTURE_CLASSES, fixture_cpu, fixture_sweep, run_record


def test_dedup_keeps_newest_and_hides_covered_failures() -> None:
    kept = select_latest(fixture_sweep())
    fcn_cpu = [r for r in kept if r.arch == "fcn8s" and r.device == "cpu"]
    assert [r.created for r in fcn_cpu] == ["2026-11-27T06:16:00Z"]
    assert [r.arch for r in kept if r.status == "error"] == ["enet"]
    # fcn8s cpu + cuda, segnet, unet, the baseline and enet's failure; in the documented order:
    # cpu timed rows by mIoU, then the cpu rows without speed (ok before error), then cuda.
    assert [(r.arch, r.device) for r in kept] == [
        ("segnet", "cpu"),
        ("fcn8s", "cpu"),
        ("unet", "cpu"),
        ("background", "cpu"),
        ("enet", "cpu"),
        ("fcn8s", "cuda"),
    ]


def test_dedup_is_order_independent() -> None:
    """Same created timestamp: run_id decides, so the choice never depends on input order."""
    twin_a = run_record("pspnet", miou=0.3, run_id="quick__pspnet__synthetic__a")
    twin_b = run_record("pspnet", miou=0.31, run_id="quick__pspnet__synthetic__b")
    for pair in ([twin_a, twin_b], [twin_b, twin_a]):
        assert [r.run_id for r in select_latest(pair)] == [twin_b.run_id]
    records = fixture_sweep()
    shuffled = records[:]
    random.Random(0).shuffle(shuffled)
    assert [r.run_id for r in select_latest(shuffled)] == [r.run_id for r in select_latest(records)]


def test_failure_on_indexed_device_hidden_by_ok_record() -> None:
    ok = run_record("fcn8s", device="cuda", dtype="fp16")
    failed = run_record(
        "fcn8s",
        status="error",
        dtype=None,
        device="cuda:0",  # env.device names the index the speed device omits
        error_message="cuda:0 failure",
        created="2026-11-28T00:00:00Z",
    )
    assert select_latest([failed, ok]) == [ok]
    cpu_ok = run_record("fcn8s", device="cpu")
    assert select_latest([failed, cpu_ok]) == [cpu_ok, failed]  # other device: still shown


def test_csv_matches_deduplicated_rows_and_is_deterministic() -> None:
    records = fixture_sweep()
    text = leaderboard_csv(records)
    frame = pd.read_csv(io.StringIO(text))
    assert list(frame.columns) == list(FRAME_COLUMNS)
    assert list(frame["run_id"]) == [r.run_id for r in select_latest(records)]
    fcn_cpu = frame[(frame["arch"] == "fcn8s") & (frame["device"] == "cpu")]
    assert fcn_cpu["miou"].tolist() == [0.6123]
    assert fcn_cpu["params_m"].tolist() == [134.27]
    enet = frame[frame["arch"] == "enet"].iloc[0]
    assert enet["status"] == "error" and enet["error_message"].startswith("CUDA out of memory")
    assert pd.isna(enet["latency_p50_ms"])
    # segnet: p50 30 -> p90 33 (hand: 30 * 1.1), throughput 1000 / 30 * 4 = 133.33...
    segnet = text.splitlines()[1].split(",")
    assert segnet[FRAME_COLUMNS.index("latency_p90_ms")] == "33"
    assert segnet[FRAME_COLUMNS.index("throughput_ips")] == "133.3333333"
    shuffled = records[::-1]
    assert leaderboard_csv(shuffled) == text


def test_records_to_frame_keeps_every_record() -> None:
    frame = records_to_frame(fixture_sweep())
    assert len(frame) == len(fixture_sweep())
    assert tuple(frame.columns) == FRAME_COLUMNS
    assert frame.loc[0, "gflops"] == 2.5 and frame.loc[0, "complexity_res"] == "64x64"
    assert frame.loc[0, "gmacs"] == 1.25 and frame.loc[0, "title"] == "FCN-8s"
    assert frame.loc[2, "unsupported_heavy_ops"] == "aten::_convolution"
    assert frame.loc[2, "unsupported_ops"] == 2
    assert bool(frame.loc[2, "disagreement"]) is True
    # A failed run keeps its error; an ok run's error columns stay empty.
    assert frame.loc[3, "error_stage"] == "train" and frame.loc[0, "error_stage"] is None
    # A record without speed takes its device from env; its dtype stays missing.
    assert frame.loc[7, "device"] == "cpu" and frame.loc[7, "dtype"] is None
    # Threads and the matmul reference fall back to env when speed was not measured.
    assert frame.loc[7, "threads"] == 2 and frame.loc[7, "matmul_gflops_per_s"] == 200.0
    assert pd.isna(frame.loc[7, "params_m"]) and pd.isna(frame.loc[7, "latency_p50_ms"])


def test_records_to_frame_of_no_records_has_the_columns() -> None:
    frame = records_to_frame([])
    assert frame.empty and tuple(frame.columns) == FRAME_COLUMNS


def test_reporting_takes_run_records_not_dicts() -> None:
    record = run_record("fcn8s")
    with pytest.raises(TypeError, match=r"takes a list of RunRecord; found dict.*from_dict"):
        records_to_frame([record, record.to_dict()])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="found RunRecord"):
        select_latest(record)  # type: ignore[arg-type]


def test_per_class_iou_frame() -> None:
    frame = per_class_iou_frame(fixture_sweep())
    assert list(frame.columns) == list(FIXTURE_CLASSES)
    # Two devices for fcn8s in this group: labels say which record a row comes from.
    assert list(frame.index) == [
        "SegNet (segnet) [cpu/fp32]",
        "FCN-8s (fcn8s) [cpu/fp32]",
        "FCN-8s (fcn8s) [cuda/fp16]",
        "U-Net (unet) [cpu/fp32]",
        "Background (all class 0) (background) [cpu]",
    ]
    assert frame.loc["SegNet (segnet) [cpu/fp32]", "disc"] == pytest.approx(0.70)
    assert pd.isna(frame.loc["SegNet (segnet) [cpu/fp32]", "square"])
    other = run_record("enet", setting="other-setting")
    with pytest.raises(ConfigError, match=r"span 2 \(suite, dataset, setting\) groups"):
        per_class_iou_frame([*fixture_sweep(), other])


def test_heavy_op_detection() -> None:
    assert is_heavy_op("aten::_convolution")
    assert is_heavy_op("aten::conv_transpose2d")
    assert is_heavy_op("aten::addmm") and is_heavy_op("aten::matmul")
    assert not is_heavy_op("aten::upsample_bilinear2d")
    assert not is_heavy_op("aten::max_pool2d")


# -- CPU kernels are part of the device -------------------------------------------------------


def test_known_cpus_are_separate_devices() -> None:
    avx2 = run_record("fcn8s", cpu=fixture_cpu("AVX2"), run_id="fcn8s-avx2", p50=20.0)
    avx512 = run_record(
        "fcn8s",
        cpu=fixture_cpu("AVX512", model=17),
        run_id="fcn8s-avx512",
        p50=10.0,
        created="2026-11-28T00:00:00Z",
    )
    unknown = run_record("fcn8s", run_id="fcn8s-unknown")  # schema-1 style: env.cpu absent
    cuda = run_record("fcn8s", device="cuda", dtype="fp16", cpu=fixture_cpu("AVX2"))
    records = [avx2, avx512, unknown, cuda]
    assert device_labels(records) == ["cpu (AVX2)", "cpu (AVX512)", "cpu", "cuda"]
    # The newer AVX512 run does not hide the AVX2 one: different kernels, different device.
    kept = select_latest(records)
    assert sorted(r.run_id for r in kept) == sorted(r.run_id for r in records)
    frame = leaderboard_frame(records)
    assert frame.set_index("run_id").loc["fcn8s-avx512", "device"] == "cpu (AVX512)"
    assert frame.set_index("run_id").loc["fcn8s-avx512", "latency_p50_ms"] == 10.0


def test_cpus_of_one_capability_are_told_apart_by_kernel_key() -> None:
    zen2 = run_record("fcn8s", cpu=fixture_cpu("AVX2", model=49), run_id="a")
    zen1 = run_record("fcn8s", cpu=fixture_cpu("AVX2", model=1), run_id="b")
    pinned = run_record(
        "fcn8s", cpu=fixture_cpu("AVX2", model=49, pins={"ONEDNN_MAX_CPU_ISA": "AVX2"}), run_id="c"
    )
    assert device_labels([zen2, zen1, pinned]) == [
        "cpu (AuthenticAMD/23/49/AVX2)",
        "cpu (AuthenticAMD/23/1/AVX2)",
        "cpu (AuthenticAMD/23/49/AVX2/ONEDNN_MAX_CPU_ISA=AVX2)",
    ]
    assert len(select_latest([zen2, zen1, pinned])) == 3
    # The same kernels on two runs are one device: the newer run is kept.
    again = run_record("fcn8s", cpu=fixture_cpu("AVX2"), run_id="d", created="2026-11-29T00:00:00Z")
    assert device_labels([zen2, again]) == ["cpu (AVX2)", "cpu (AVX2)"]
    assert select_latest([zen2, again]) == [again]
