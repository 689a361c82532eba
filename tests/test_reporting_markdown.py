"""Tests for bench.reporting.markdown on hand-written FIXTURE records (tests/factories.py).

Every number below is a FIXTURE value chosen by hand for the test; none is a measurement.
"""

from __future__ import annotations

import dataclasses
import random

import pytest

from bench.errors import ConfigError
from bench.records import RunRecord
from bench.reporting.markdown import NA, render_markdown
from tests.factories import fixture_cpu, fixture_sweep, run_record, schema_1

CPU_HEADING = "### Ranking, speed on cpu/fp32"
CUDA_HEADING = "### Ranking, speed on cuda/fp16"


def table_after(markdown: str, heading: str) -> list[dict[str, str]]:
    """Parses the first Markdown table after ``heading`` into row dicts (header -> cell)."""
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


def test_ranking_order_formatting_and_rows() -> None:
    markdown = render_markdown(fixture_sweep())
    rows = table_after(markdown, CPU_HEADING)
    assert [row["architecture"] for row in rows] == [
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
    assert fcn["throughput img/s @ cpu/fp32 (best bs)"] == "325.2 (bs8)"  # 1000 / 12.3 * 4
    assert fcn["efficiency % @ cpu/fp32"] == "25.0"
    assert fcn["paper"] == "[1411.4038](https://arxiv.org/abs/1411.4038)"
    # Disagreement (†) and a skipped convolution (‡) mark the GFLOPs figure, and a note says so.
    assert rows[0]["GFLOPs @ 64x64"] == "1.00†‡"
    assert "skipped compute-heavy operators (`aten::_convolution`)" in markdown
    # Baseline: no complexity or speed recorded.
    assert rows[3]["GFLOPs @ 64x64"] == NA and rows[3]["mIoU %"] == "10.0"


def test_equal_miou_shares_a_rank() -> None:
    records = [run_record("a", miou=0.5), run_record("b", miou=0.5), run_record("c", miou=0.4)]
    rows = table_after(render_markdown(records), CPU_HEADING)
    assert [(r["architecture"], r["rank"]) for r in rows] == [
        ("A (`a`)", "=1"),  # a shared rank is written "=k" (bench.bootstrap.tie_ranks)
        ("B (`b`)", "=1"),
        ("C (`c`)", "3"),
    ]


def test_a_trained_row_within_noise_of_the_baseline_is_not_learned_not_ranked() -> None:
    """Two seed spreads (2 x 2.59 points) above the 20.0 baseline is 25.18: 25.2 is ranked,
    25.1 and 12.0 (below the baseline) are "not learned"; published weights never are."""
    from bench.records import WeightsUsed
    from bench.reporting.tables import SEED_SPREAD

    assert SEED_SPREAD == 0.0259
    base = run_record("background", kind="baseline", miou=0.20, params=None, dtype=None,
                      paper=None)  # fmt: skip
    weights = WeightsUsed(name="c.pub", file="f.pth", sha256="0" * 64)
    records = [
        base,
        run_record("a", miou=0.252),
        run_record("b", miou=0.251),
        run_record("d", miou=0.12),
        run_record("c", miou=0.21).replace(kind="loaded", weights=weights),
    ]
    markdown = render_markdown(records)
    rows = table_after(markdown, CPU_HEADING)
    assert [(r["architecture"].split(" (")[0], r["rank"]) for r in rows] == [
        ("A", "1"),
        ("B", "not learned"),
        ("C", "2"),
        ("BACKGROUND", "baseline"),
        ("D", "not learned"),
    ]
    assert "- **Not learned** (rank `not learned`): a model trained here whose mIoU is less than " \
        "5.2 points above" in markdown  # fmt: skip
    # Without a baseline in the table nothing is marked.
    rows = table_after(render_markdown(records[1:]), CPU_HEADING)
    assert [r["rank"] for r in rows] == ["1", "2", "3", "4"]


def test_published_weights_rank_beside_models_trained_here() -> None:
    from bench.records import PublishedFigure, WeightsUsed

    weights = WeightsUsed(
        name="espnet.camvid_skd_base",
        file="camvid/skd_espnet_base_57.8.pth",
        sha256="7" * 64,
        published=(PublishedFigure(metric="miou", value=57.8, split="test", source="README"),),
    )
    loaded = run_record("espnet", miou=0.5783).replace(kind="loaded", weights=weights)
    records = [loaded, run_record("fcn8s", miou=0.30)]
    rows = table_after(render_markdown(records), CPU_HEADING)
    assert [(r["architecture"], r["rank"], r["mIoU %"]) for r in rows] == [
        ("ESPNET (`espnet.camvid_skd_base`)", "1", "57.8"),
        ("FCN8S (`fcn8s`)", "2", "30.0"),
    ]
    assert [
        (r["weights"], r["published mIoU %"], r["measured - published (points)"]) for r in rows
    ] == [("published", "57.8", "+0.03"), ("trained here", NA, NA)]
    # Two published models of one architecture are two rows.
    other = run_record("espnet", miou=0.60, created="2026-11-28T00:00:00Z").replace(
        kind="loaded", weights=dataclasses.replace(weights, name="espnet.camvid_skd_kd")
    )
    rows = table_after(render_markdown([*records, other]), CPU_HEADING)
    assert [r["architecture"] for r in rows][:2] == [
        "ESPNET (`espnet.camvid_skd_kd`)",
        "ESPNET (`espnet.camvid_skd_base`)",
    ]
    # The per-class figure names each published model too (its rows would be indistinct).
    from bench.reporting.frame import per_class_iou_frame

    assert list(per_class_iou_frame([*records, other]).index)[:2] == [
        "ESPNET (espnet.camvid_skd_kd)",
        "ESPNET (espnet.camvid_skd_base)",
    ]
    # Without a loaded record the table has neither column.
    plain = table_after(render_markdown([run_record("fcn8s")]), CPU_HEADING)
    assert "weights" not in plain[0] and "published mIoU %" not in plain[0]


def test_published_groups_are_titled_and_listed_against_their_figures() -> None:
    """A group of loaded records only is titled by what it holds, an authors'-protocol setting
    says it is not comparable, and "Published figures vs measured" lists each with its figure."""
    from bench.records import PublishedFigure, WeightsUsed

    def loaded(name: str, miou: float, setting: str, figure: float) -> RunRecord:
        weights = WeightsUsed(
            name=name,
            file="f.pth",
            sha256="ab" * 32,
            published=(PublishedFigure("miou", figure, "test", f"README, {name}"),),
        )
        record = run_record(name.split(".")[0], miou=miou, dtype=None)
        return record.replace(kind="loaded", weights=weights, setting=setting, suite="pub")

    records = [
        loaded("espnet.camvid_a", 0.5783, "test-360x480-published", 57.8),
        loaded("enet.camvid_b", 0.1780, "test-360x480-published", 58.6),
        loaded("enet.camvid_b", 0.15776, "test-512x512-authors", 58.6),
    ]
    markdown = render_markdown(records)
    # The fixture's dataset has no title: its name stands in.
    assert records[0].dataset_info.title == "" and records[0].protocol.split == "val"
    title, split = "synthetic", "val"
    assert (
        f"## {title} {split}: published checkpoints (suite `pub`, setting "
        "`test-360x480-published`)" in markdown.splitlines()
    )
    assert (
        f"## {title} {split}: published checkpoints, their authors' own protocol (not "
        "comparable with the standard rows) (suite `pub`, setting `test-512x512-authors`)"
        in markdown.splitlines()
    )
    rows = table_after(markdown, "## Published figures vs measured")
    assert [
        (
            r["weights"],
            r["protocol (setting)"],
            r["published mIoU %"],
            r["measured mIoU %"],
            r["measured - published (points)"],
            r["where the figure is published"],
            r["file sha256"],
        )
        for r in rows
    ] == [
        ("ENET (`enet.camvid_b`)", "standard (`test-360x480-published`)", "58.6", "17.80",
         "-40.80", "test; README, enet.camvid_b", "`abababababab`"),
        ("ENET (`enet.camvid_b`)", "authors' (`test-512x512-authors`)", "58.6", "15.78",
         "-42.82", "test; README, enet.camvid_b", "`abababababab`"),
        ("ESPNET (`espnet.camvid_a`)", "standard (`test-360x480-published`)", "57.8", "57.83",
         "+0.03", "test; README, espnet.camvid_a", "`abababababab`"),
    ]  # fmt: skip
    # Models trained here keep the plain heading and get no such section.
    plain = render_markdown([run_record("fcn8s")])
    assert "## Published figures vs measured" not in plain
    assert any(line.startswith("## ") and "(setting `" in line for line in plain.splitlines())


def test_error_row_only_without_ok_record() -> None:
    markdown = render_markdown(fixture_sweep())
    rows = table_after(markdown, CPU_HEADING)
    assert rows[-1]["status"] == "error: CUDA out of memory (stage: train)"
    assert rows[0]["status"] == "ok"
    assert "unet first try failed" not in markdown
    assert "unet flaky later failure" not in markdown
    # Without any error record the status column disappears.
    ok_only = [r for r in fixture_sweep() if r.ok]
    assert "status" not in table_after(render_markdown(ok_only), CPU_HEADING)[0]


def test_rendering_is_deterministic() -> None:
    records = fixture_sweep()
    first = render_markdown(records)
    assert render_markdown(fixture_sweep()) == first
    shuffled = records[:]
    random.Random(0).shuffle(shuffled)
    assert render_markdown(shuffled) == first


def test_cpu_and_cuda_speed_are_separate_tables() -> None:
    markdown = render_markdown(fixture_sweep())
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
    # The baseline (no speed, env.device cpu) is not listed under cuda.
    assert [row["architecture"] for row in cuda] == ["FCN-8s (`fcn8s`)"]
    assert cuda[0]["latency p50 ms @ cuda/fp16/bs1"] == "1.50"
    assert "Speed: `cuda` (NVIDIA H100), dtype `fp16`, 2 threads; peak memory measured as " in (
        markdown
    )
    assert "`cuda_max_allocated`" in markdown


def test_records_without_speed_get_their_own_table() -> None:
    records = [run_record("fcn8s", dtype=None), run_record("enet", dtype=None, miou=0.4)]
    markdown = render_markdown(records)
    rows = table_after(markdown, "### Ranking, device cpu (speed not measured)")
    assert [r["architecture"] for r in rows] == ["FCN8S (`fcn8s`)", "ENET (`enet`)"]
    assert "latency" not in " ".join(rows[0])
    assert "Speed: not measured for these records." in markdown


def test_per_class_table_shows_dash_for_absent_class() -> None:
    rows = table_after(render_markdown(fixture_sweep()), "### Per-class IoU (%)")
    background = next(r for r in rows if "`background`" in r["architecture"])
    assert (background["background"], background["disc"], background["square"]) == (
        "30.0",
        "0.0",
        NA,
    )
    # Two devices for fcn8s in this group: rows say which record they come from.
    assert "FCN-8s (`fcn8s`) [cuda/fp16]" in [r["architecture"] for r in rows]


def test_paper_vs_measured() -> None:
    records = [
        run_record(
            "fcn8s",
            title="FCN-8s",
            params=134_000_000,
            gflops=2.0,
            paper_params=134_500_000,
            paper_gflops=1.0,
            paper_resolution=[64, 64],
            paper_convention="macs",
        ),
        run_record(
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
    assert fcn["dataset"] == "synthetic (3 classes)"
    assert fcn["paper params (M)"] == "134.50"
    assert fcn["measured params (M)"] == "134.00"
    assert fcn["params diff %"] == "-0.4"  # (134.0 - 134.5) / 134.5 = -0.37 %
    assert fcn["paper compute @ res (convention)"] == "1.00 GMACs @ 64x64"
    assert fcn["measured, same res & convention"] == "1.00 GMACs"
    assert fcn["compute diff %"] == "+0.0"
    segnet = next(r for r in rows if "segnet" in r["architecture"])
    assert segnet["measured, same res & convention"] == (
        "not measured at paper resolution (measured at 64x64)"
    )
    assert segnet["compute diff %"] == NA
    none = render_markdown([run_record("fcn8s")])
    assert "No architecture in these records declares paper params or compute." in none


def test_header_states_conventions_and_environment() -> None:
    markdown = render_markdown(fixture_sweep())
    assert markdown.startswith("# Semantic-segmentation leaderboard\n")
    assert "from 9 run record(s), 6 after de-duplication" in markdown
    assert "GFLOPs** = 2 x GMACs (fvcore counts one multiply-add as one FLOP" in markdown
    assert "mmsegmentation convention" in markdown
    assert "torch 2.5.1; torchvision 0.20.1; Python 3.11.7" in markdown
    assert "- device `cpu`: Fixture CPU; 2 threads; measured dense matmul 200.0 GFLOP/s" in markdown
    assert "git commit(s): `abc1234`" in markdown
    assert (
        "- device `cuda`: NVIDIA H100; 2 threads; measured dense matmul 200.0 GFLOP/s" in markdown
    )
    # Only the shown records count: the hidden 2026-11-20 / 11-25 / 11-28 runs are left out.
    assert "\n- run created 2026-11-27T06:16:00Z\n" in markdown
    assert "Evaluation protocol: split `val`, whole inference, scales [1.0], no flip" in markdown
    assert "Training: 10 steps, batch 2, adamw lr 0.001." in markdown
    # No record names its CPU: no CPU-kernel convention, and device labels stay plain.
    assert "CPU kernels are part of the device" not in markdown


def test_no_records_is_an_error() -> None:
    with pytest.raises(ConfigError, match=r"no run records given.*run_bench\.py run"):
        render_markdown([])


# -- CPU kernels are part of the device -------------------------------------------------------


def test_known_cpus_get_their_own_tables() -> None:
    records = [
        run_record("fcn8s", cpu=fixture_cpu("AVX2"), run_id="fcn8s-avx2", p50=20.0),
        run_record("fcn8s", cpu=fixture_cpu("AVX512", model=17), run_id="fcn8s-avx512", p50=9.0),
        run_record("background", kind="baseline", params=None, dtype=None, miou=0.1),
    ]
    markdown = render_markdown(records)
    avx2 = table_after(markdown, "### Ranking, speed on cpu (AVX2)/fp32")
    avx512 = table_after(markdown, "### Ranking, speed on cpu (AVX512)/fp32")
    assert avx2[0]["latency p50 ms @ cpu (AVX2)/fp32/bs1"] == "20.00"
    assert avx512[0]["latency p50 ms @ cpu (AVX512)/fp32/bs1"] == "9.00"
    # The baseline has no speed: it is shown beside the models of both CPU tables.
    assert [r["rank"] for r in avx2] == [r["rank"] for r in avx512] == ["1", "baseline"]
    assert "CPU kernels are part of the device" in markdown
    assert "- device `cpu (AVX512)`: Fixture CPU; CPU kernels `AuthenticAMD/23/17/AVX512`" in (
        markdown
    )
    assert CPU_HEADING not in markdown


# -- version-1 records, read through the one validator ----------------------------------------


def _v1(record: RunRecord, **arch_info: object) -> RunRecord:
    """``record`` written as schema version 1 (params counted the auxiliary heads)."""
    data = schema_1(record)
    data["arch_info"].update(arch_info)
    return RunRecord.from_dict(data)


def test_v1_params_with_auxiliary_heads_are_unknown() -> None:
    """A version-1 ``params`` counted auxiliary heads, which the evaluated network does not
    run: the leaderboard shows it as unknown instead of comparing it with the paper's count."""
    aux = _v1(
        run_record("pspnet50", params=48_944_712, paper_params=46_700_000),
        aux_weights={"aux": 0.4},
    )
    plain = _v1(run_record("enet", params=360_000, miou=0.4))
    markdown = render_markdown([aux, plain])
    ranking = {r["architecture"]: r for r in table_after(markdown, CPU_HEADING)}
    assert ranking["PSPNET50 (`pspnet50`)"]["params (M)"] == NA
    assert ranking["ENET (`enet`)"]["params (M)"] == "0.36"
    paper = table_after(markdown, "## Paper vs measured")[0]
    assert (paper["paper params (M)"], paper["measured params (M)"]) == ("46.70", NA)
    assert paper["params diff %"] == NA


def test_v1_baseline_row_names_class_zero() -> None:
    """The constant class-0 baseline is "all background" only where class 0 is the background;
    on CamVid (class 0 = sky) a version-1 record's old title is re-titled when it is read."""
    data = run_record("background", kind="baseline", params=None, dtype=None).to_dict()
    data.update(schema_version=1)
    data["arch_info"]["title"] = "all background (baseline)"
    data["dataset_info"]["class_names"] = ["sky", "disc", "square"]
    data["metrics"]["per_class_iou"] = {"sky": 0.9, "disc": 0.5, "square": None}
    data["env"].pop("cpu")
    data.pop("amendments")
    markdown = render_markdown([RunRecord.from_dict(data)])
    assert "all sky (class 0, baseline) (`background`) *baseline*" in markdown
