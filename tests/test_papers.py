"""``bench.papers``: paper figures against measurements at the paper's class count and resolution.

Expected values are independent of our counter: FCN-8s parameters are the hand-computed sum in
``architectures/fcn.py``'s docstring, LR-ASPP's are torchvision's published weights metadata.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch import nn
from torchvision.models.segmentation import LRASPP_MobileNet_V3_Large_Weights

import architectures
from architectures import ArchInfo
from bench.papers import PAPERS_JSON, measure, render_papers, write_papers
from tests.hand_counts import VGG16_CONV_PARAMS


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
    assert fcn["params"] == _fcn8s_params_21() == 134_376_863
    assert fcn["params_rel_diff"] == pytest.approx((134_376_863 - 134e6) / 134e6)
    assert fcn["complexity"] is None  # the paper states no compute figure
    meta = LRASPP_MobileNet_V3_Large_Weights.COCO_WITH_VOC_LABELS_V1.meta
    assert lraspp["params"] == meta["num_params"]
    assert lraspp["complexity"]["input_shape"] == [1, 3, 520, 520]
    assert lraspp["compute_in_paper_convention"] == pytest.approx(meta["_ops"], rel=0.01)


@pytest.mark.usefixtures("restore_registry")
def test_failing_entry_is_an_error_row_and_the_rest_is_measured(tmp_path: Path) -> None:
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

    rows = measure(["broken_for_papers", "fcn8s"], progress=False)
    assert rows[0]["status"] == "error"
    assert "planted failure" in rows[0]["error"]["message"]
    assert rows[1]["status"] == "ok"
    json_path, md_path = write_papers(tmp_path, rows, argv=["run_bench.py", "papers"])
    text = md_path.read_text()
    assert "error: " in text and "`fcn8s`" in text
    assert "written by `python run_bench.py papers`" in text
    # Re-rendering from the JSON alone gives the same markdown.
    assert render_papers(tmp_path).read_text() == text
    assert json.loads(json_path.read_text())["rows"][1]["params"] == 134_376_863


def test_render_without_json_names_the_fix(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=f"{PAPERS_JSON} is missing.*python run_bench.py papers"):
        render_papers(tmp_path)


def test_cli_papers_and_render_only(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from bench.cli import main

    assert main(["papers", "--archs", "fcn8s", "--results-dir", str(tmp_path), "-q"]) == 0
    first = (tmp_path / "PAPERS.md").read_text()
    assert "| FCN-8s (`fcn8s`)" in first and "134.38" in first
    (tmp_path / "PAPERS.md").unlink()
    assert main(["papers", "--render-only", "--results-dir", str(tmp_path)]) == 0
    assert (tmp_path / "PAPERS.md").read_text() == first
    assert main(["papers", "--archs", "fcn8", "--results-dir", str(tmp_path)]) == 2
    assert "fcn8s" in capsys.readouterr().err  # close match suggested
