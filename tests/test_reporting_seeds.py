"""Tests for pooling runs over seeds in the leaderboard (issue 15, item 3).

The records are FIXTURES: mIoU values chosen by hand, so the mean and standard deviation are
hand-computed.
"""

from __future__ import annotations

import pytest

from bench.reporting.frame import leaderboard_frame
from bench.reporting.markdown import render_markdown
from bench.suites import load_suite
from tests.factories import run_record


def seeded(arch: str, seed: int, miou: float, group: str | None = "a1b2c3"):
    record = run_record(arch, miou=miou, setting=f"res64-steps10-b2-seed{seed}-x{seed}")
    return record.replace(seed_group=group)


def test_runs_that_differ_by_seed_alone_are_pooled_mean_and_sample_std():
    records = [seeded("fcn8s", s, m) for s, m in ((0, 0.50), (1, 0.52), (2, 0.54))]
    records += [seeded("enet", 0, 0.40), seeded("segnet", 1, 0.45, group=None)]
    frame = leaderboard_frame(records).set_index(["arch", "setting"])
    fcn = frame.loc["fcn8s"]
    assert (fcn["n_seeds"] == 3).all()
    assert fcn["miou_seed_mean"].tolist() == pytest.approx([0.52] * 3)
    assert fcn["miou_seed_std"].tolist() == pytest.approx([0.02] * 3)  # sqrt((4+0+4)e-4 / 2)
    for alone in ("enet", "segnet"):  # one seed, or a record from before seed groups
        assert frame.loc[alone]["n_seeds"].isna().all()
    text = render_markdown(records)
    assert "mIoU % over seeds (mean ± std, n)" in text
    assert text.count(" 52.0 ± 2.0 (3) ") == 3  # in each seed's table
    assert "**Seeds**" in text


def test_the_seeds_of_one_suite_share_a_seed_group_and_no_setting():
    suite = load_suite("smoke")
    runs = suite.__class__(**{**suite.__dict__, "seeds": [0, 1, 2]}).variants()
    assert len({r.setting for r in runs}) == 3
    assert len({r.seed_group for r in runs}) == 1
    other = suite.__class__(**{**suite.__dict__, "resolution": [32, 32]})
    assert other.seed_group != suite.seed_group  # any other setting: another group
