"""``bench.papers`` (measuring) and ``bench.reporting.papers`` (rendering PAPERS.md from JSON).

Expected values are independent of our counter: FCN-8s parameters are the hand-computed sum in
``architectures/fcn.py``'s docstring, the torchvision entries' are torchvision's published
weights metadata, and the auxiliary heads' are hand-counted from their layers.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn
from torchvision.models.segmentation import (
    DeepLabV3_MobileNet_V3_Large_Weights,
    LRASPP_MobileNet_V3_Large_Weights,
)

import architectures
from architectures import ArchInfo
from bench.errors import MissingFileError, RecordError
from bench.papers import measure, write_papers
from bench.reporting.papers import PAPERS_JSON, PAPERS_MD, PAPERS_SCHEMA_VERSION, render_papers
from tests.factories import ROOT
from tests.hand_counts import VGG16_CONV_PARAMS

# FCNHead(1024, 21) (PSPNet's auxiliary head, as torchvision's): 3x3 conv 1024 -> 256 without
# bias, batch norm (2 x 256), 1x1 conv 256 -> 21 with bias.
RESNET_AUX_PARAMS = 256 * 1024 * 9 + 2 * 256 + (21 * 256 + 21)
# FCNHead(40, 21) of the MobileNetV3 DeepLabV3 (10 hidden channels).
MOBILE_AUX_PARAMS = 10 * 40 * 9 + 2 * 10 + (21 * 10 + 21)


def _fcn8s_params_21() -> int:
    """VGG16 convolutions + fc6 + fc7 + three scorers + two 4x4 transposed convolutions."""
    convs = VGG16_CONV_PARAMS
    fc6 = 49 * 512 * 4096 + 4096
    fc7 = 4096 * 4096 + 4096
    scorers = (4096 * 21 + 21) + (512 * 21 + 21) + (256 * 21 + 21)
    ups = 2 * (21 * 21 * 16)
    return convs + fc6 + fc7 + scorers + ups


def test_rows_match_independent_figures() -> None:
    fcn, lraspp = measure(["fcn8s", "tv_lraspp_mobilenet_v3_large"], progress=False)
    assert fcn["status"] == "ok"
    assert fcn["params"] == fcn["params_with_aux"] == _fcn8s_params_21() == 134_376_863
    assert fcn["params_compared"] == "params"
    assert fcn["params_rel_diff"] == pytest.approx((134_376_863 - 134e6) / 134e6)
    assert fcn["params_input_shape"] == [1, 3, 64, 64]
    assert fcn["complexity"] is None  # the paper states no compute figure
    meta = LRASPP_MobileNet_V3_Large_Weights.COCO_WITH_VOC_LABELS_V1.meta
    assert lraspp["params"] == lraspp["params_with_aux"] == meta["num_params"]
    assert lraspp["complexity"]["input_shape"] == [1, 3, 520, 520]
    assert lraspp["compute_in_paper_convention"] == pytest.approx(meta["_ops"], rel=0.01)


def test_paper_counting_aux_heads_is_compared_with_aux() -> None:
    """torchvision's ``num_params`` includes the aux classifier (``paper_params_with_aux``):
    compared with every parameter; the eval network (``params``) leaves the head out. PSPNet
    declares no paper figure: its eval count leaves its aux head out, measured on meta."""
    deeplab, psp = measure(["tv_deeplabv3_mobilenet_v3_large", "pspnet50"], progress=False)
    num_params = DeepLabV3_MobileNet_V3_Large_Weights.DEFAULT.meta["num_params"]
    assert deeplab["paper_params_with_aux"] is True
    assert deeplab["params_compared"] == "params_with_aux"
    assert deeplab["params_with_aux"] == num_params
    assert deeplab["params"] == deeplab["complexity"]["params"] == num_params - MOBILE_AUX_PARAMS
    assert deeplab["params_rel_diff"] == 0.0
    assert psp["params_compared"] == "params" and psp["params_rel_diff"] is None
    assert psp["params_with_aux"] - psp["params"] == RESNET_AUX_PARAMS


def _broken_entry() -> None:
    class Broken(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            raise RuntimeError("planted failure")

    @architectures.register(
        ArchInfo(
            name="broken_for_papers",
            title="Broken",
            paper="1411.4038",
            year=2015,
            family="test",
            paper_gflops=1.0,
            paper_resolution=(32, 32),
            paper_flops_convention="macs",
            paper_num_classes=3,
        )
    )
    def broken(*, num_classes: int) -> nn.Module:
        return Broken()


@pytest.mark.usefixtures("restore_registry")
def test_failing_entry_is_an_error_row_and_the_rest_is_measured(tmp_path: Path) -> None:
    _broken_entry()
    rows = measure(["broken_for_papers", "fcn8s"], progress=False)
    assert rows[0]["status"] == "error"
    assert "planted failure" in rows[0]["error"]["message"]
    assert rows[1]["status"] == "ok"
    json_path = write_papers(tmp_path, rows, argv=["run_bench.py", "papers"])
    assert json_path == tmp_path / PAPERS_JSON
    assert not (tmp_path / PAPERS_MD).exists()  # measuring writes the JSON only
    text = render_papers(tmp_path).read_text()
    assert "error: " in text and "`fcn8s`" in text
    assert "written by `python run_bench.py papers`" in text
    # Re-rendering from the JSON alone gives the same bytes.
    assert render_papers(tmp_path).read_text() == text
    data = json.loads(json_path.read_text())
    assert data["schema_version"] == PAPERS_SCHEMA_VERSION
    assert data["rows"][1]["params"] == 134_376_863


# --------------------------------------------------------------------------- rendering


def _row(**overrides: Any) -> dict[str, Any]:
    """A valid ok row, as ``bench.papers`` writes it."""
    row: dict[str, Any] = {
        "arch": "tv_x",
        "title": "X",
        "paper": "1706.05587",
        "year": 2017,
        "status": "ok",
        "paper_num_classes": 21,
        "paper_params": 11_029_328,
        "paper_params_note": "torchvision weights metadata, auxiliary classifier included",
        "paper_params_with_aux": True,
        "paper_gflops": 10.452,
        "paper_flops_convention": "macs",
        "paper_resolution": [520, 520],
        "params_num_classes": 21,
        "params": 11_025_477,
        "params_with_aux": 11_029_328,
        "params_input_shape": [1, 3, 520, 520],
        "params_compared": "params_with_aux",
        "params_rel_diff": 0.0,
        "complexity": None,
        "compute_in_paper_convention": 10.4504,
        "compute_rel_diff": -0.0002,
    }
    row.update(overrides)
    return row


def _write(folder: Path, rows: list[dict[str, Any]], **top: Any) -> Path:
    data = {
        "schema_version": PAPERS_SCHEMA_VERSION,
        "created": "2026-01-01T00:00:00Z",
        "command": "python run_bench.py papers",
        "env": {"torch": "2.14.1"},
        "rows": rows,
        **top,
    }
    path = folder / PAPERS_JSON
    path.write_text(json.dumps(data))
    return path


def test_rendered_params_column_says_which_count_is_compared(tmp_path: Path) -> None:
    """With aux first and the eval count beside; else the eval count and the aux figure."""
    rows = [
        _row(),
        _row(arch="psp", paper_params=None, params_compared="params", params_rel_diff=None),
        _row(arch="same", params=5_000_000, params_with_aux=5_000_000, params_compared="params"),
    ]
    _write(tmp_path, rows)
    lines = render_papers(tmp_path).read_text().splitlines()
    cells = {line.split("|")[1].strip(): line.split("|")[5].strip() for line in lines[10:]}
    assert cells == {
        "X (`tv_x`)": "11.03 incl. aux (eval 11.03)",
        "X (`psp`)": "11.03 (incl. aux 11.03)",
        "X (`same`)": "5.00",
    }


@pytest.mark.parametrize(
    ("break_it", "field", "expected"),
    [
        (lambda d: d.update(schema_version=1), "schema_version", "must be 2"),
        (lambda d: d.pop("rows"), "rows", "must be a list of rows"),
        (lambda d: d["env"].pop("torch"), "env.torch", "must be a str"),
        (lambda d: d["rows"][0].pop("params"), "rows[0].params", "non-negative int"),
        (lambda d: d["rows"][0].update(params="11M"), "rows[0].params", "non-negative int"),
        (lambda d: d["rows"][0].update(params_compared="all"), "rows[0].params_compared", "one of"),
        (lambda d: d["rows"][0].update(status="skipped"), "rows[0].status", "'ok' or 'error'"),
        (
            lambda d: d["rows"][0].update(paper_resolution=[520]),
            "rows[0].paper_resolution",
            "[H, W]",
        ),
        (lambda d: d["rows"][0].update(status="error"), "rows[0].error", "must be an object"),
        (lambda d: d["rows"].append(3), "rows[1]", "must be an object"),
    ],
)
def test_malformed_papers_json_names_file_field_expected_found_and_fix(
    tmp_path: Path, break_it: Any, field: str, expected: str
) -> None:
    path = _write(tmp_path, [_row()])
    data = json.loads(path.read_text())
    break_it(data)
    path.write_text(json.dumps(data))
    with pytest.raises(RecordError) as info:
        render_papers(tmp_path)
    message = str(info.value)
    assert message.startswith(f"{path}: field {field} must be ")
    assert expected in message and "; found " in message
    assert message.endswith(
        "Re-run `python run_bench.py papers` to rewrite it (the harness writes it; never by hand)."
    )
    assert not (tmp_path / PAPERS_MD).exists()


def test_papers_json_that_is_not_json(tmp_path: Path) -> None:
    (tmp_path / PAPERS_JSON).write_text("{not json")
    with pytest.raises(RecordError, match=r"papers.json: not readable as JSON.*Re-run"):
        render_papers(tmp_path)


def test_render_without_json_names_the_fix(tmp_path: Path) -> None:
    with pytest.raises(MissingFileError, match=f"{PAPERS_JSON} is missing.*run_bench.py papers"):
        render_papers(tmp_path)


# --------------------------------------------------------------------------- command line


def test_cli_papers_and_render_only(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from bench.cli import main

    argv = ["papers", "--archs", "fcn8s", "--results-dir", str(tmp_path), "-q"]
    assert main(argv) == 0
    assert capsys.readouterr().out.splitlines() == [
        str(tmp_path / PAPERS_JSON),
        str(tmp_path / PAPERS_MD),
    ]
    first = (tmp_path / "PAPERS.md").read_text()
    assert "| FCN-8s (`fcn8s`)" in first and "134.38" in first
    command = json.loads((tmp_path / PAPERS_JSON).read_text())["command"]
    assert command == f"python run_bench.py papers --archs fcn8s --results-dir {tmp_path} -q"
    (tmp_path / "PAPERS.md").unlink()
    assert main(["papers", "--render-only", "--results-dir", str(tmp_path)]) == 0
    assert (tmp_path / "PAPERS.md").read_text() == first
    assert main(["papers", "--archs", "fcn8", "--results-dir", str(tmp_path)]) == 2
    assert "fcn8s" in capsys.readouterr().err  # close match suggested


def test_cli_render_only_malformed_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from bench.cli import main

    _write(tmp_path, [_row(params=None)])
    assert main(["papers", "--render-only", "--results-dir", str(tmp_path)]) == 2
    assert "field rows[0].params must be a non-negative int; found None" in capsys.readouterr().err


def test_committed_papers_md_renders_from_committed_json(tmp_path: Path) -> None:
    """``results/PAPERS.md`` is exactly what ``papers --render-only`` makes of papers.json."""
    (tmp_path / PAPERS_JSON).write_bytes((ROOT / "results" / PAPERS_JSON).read_bytes())
    rendered = render_papers(tmp_path).read_bytes()
    assert rendered == (ROOT / "results" / PAPERS_MD).read_bytes()
