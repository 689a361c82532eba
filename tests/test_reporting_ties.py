"""Tests for the leaderboard's bootstrap intervals and tie ranks (bench.reporting.ties, issue 15).

The per-image confusion matrices are FIXTURES built by hand; the expected ties follow from them
(see each test), never from a measurement.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bench.bootstrap import bootstrap_intervals, save_per_image
from bench.errors import RecordError
from bench.metrics import compute_metrics
from bench.records import RunRecord
from bench.reporting import write_report
from bench.reporting.frame import leaderboard_frame
from bench.reporting.markdown import render_markdown
from tests.factories import FIXTURE_CLASSES, run_record

PERFECT = np.diag([50, 50, 0])  # classes a and b right, c absent
SLIP = np.array([[45, 5, 0], [5, 45, 0], [0, 0, 0]])  # 10% of the pixels confused
N = 30


def with_matrices(results: Path, arch: str, per_image: np.ndarray) -> RunRecord:
    """A fixture record whose metrics are those of ``per_image``, its file written under results."""
    record = run_record(arch, miou=0.5)
    rel = f"samples/{record.run_id}.confusion.npz"
    sha = save_per_image(results / rel, per_image)
    m = compute_metrics(per_image.sum(axis=0), FIXTURE_CLASSES)
    ci = bootstrap_intervals(per_image)
    metrics = dataclasses.replace(
        record.metrics,
        miou=m.miou,
        per_class_iou={k: (None if np.isnan(v) else v) for k, v in m.per_class_iou.items()},
        miou_ci95=ci["miou"],
        bootstrap_resamples=1000,
        bootstrap_seed=0,
        per_image_file=rel,
        per_image_sha256=sha,
    )
    return record.replace(metrics=metrics)


@pytest.fixture
def three(tmp_path: Path) -> list[RunRecord]:
    """fcn8s: every image perfect. enet: one image of 30 slips (mIoU 0.9934), so the resamples
    without it (e^-1 = 37% of them) differ by exactly 0 and the difference interval contains 0:
    a tie. segnet: every image slips (mIoU 45/55 = 0.818): told apart from both, rank 3."""
    one_slip = np.stack([PERFECT] * (N - 1) + [SLIP])
    return [
        with_matrices(tmp_path, "fcn8s", np.stack([PERFECT] * N)),
        with_matrices(tmp_path, "enet", one_slip),
        with_matrices(tmp_path, "segnet", np.stack([SLIP] * N)),
    ]


def cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def ranks(frame: pd.DataFrame) -> dict[str, str]:
    return dict(zip(frame["arch"], frame["rank"], strict=True))


def test_rows_a_paired_bootstrap_cannot_tell_apart_share_a_rank(tmp_path, three):
    # a (and b): 29 x 50 + 45 right of 1500 pixels, 5 of b's predicted a: IoU 1495 / 1505.
    assert three[1].miou == pytest.approx(1495 / 1505)
    assert ranks(leaderboard_frame(three, tmp_path)) == {"fcn8s": "=1", "enet": "=1", "segnet": "3"}
    # Without the files (no results folder): the plain competition ranks.
    assert ranks(leaderboard_frame(three)) == {"fcn8s": "1", "enet": "2", "segnet": "3"}


def test_the_markdown_shows_intervals_and_tie_ranks(tmp_path, three):
    text = render_markdown(three, tmp_path)
    assert "mIoU % [95% CI]" in text
    lo, hi = (100 * v for v in three[2].metrics.miou_ci95)
    assert lo == hi == pytest.approx(100 * 0.8181818)  # identical images: a point interval
    rows = {c[1].split()[0]: c for c in (cells(line) for line in text.splitlines()) if len(c) > 5}
    assert rows["SEGNET"][0] == "3" and rows["SEGNET"][4] == "81.8 [81.8, 81.8]"
    assert rows["ENET"][0] == "=1" and rows["FCN8S"][0] == "=1"
    lo, hi = three[1].metrics.miou_ci95
    assert lo < three[1].miou <= hi == 1.0  # contains the estimate


def test_write_report_writes_the_tie_ranks_into_the_csv(tmp_path, three):
    write_report(tmp_path, three)
    csv = pd.read_csv(tmp_path / "leaderboard.csv")
    assert dict(zip(csv["arch"], csv["rank"], strict=True)) == {
        "fcn8s": "=1",
        "enet": "=1",
        "segnet": "3",
    }
    row = csv.set_index("arch").loc["enet"]
    assert (row["miou_ci95_lo"], row["miou_ci95_hi"]) == pytest.approx(three[1].metrics.miou_ci95)


def test_a_missing_file_gives_the_plain_rank_and_a_changed_one_is_an_error(tmp_path, three):
    (tmp_path / three[1].metrics.per_image_file).unlink()
    assert ranks(leaderboard_frame(three, tmp_path)) == {"fcn8s": "1", "enet": "2", "segnet": "3"}
    save_per_image(tmp_path / three[1].metrics.per_image_file, np.stack([SLIP] * N))
    with pytest.raises(RecordError, match=r"expected sha256 [0-9a-f]{64} \(the record's\)"):
        leaderboard_frame(three, tmp_path)
