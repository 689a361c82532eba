"""Tests for bench.reporting.semisup: the semi-supervised section and figure, from records."""

from __future__ import annotations

import dataclasses

import pytest

from bench.reporting import write_report
from bench.reporting.markdown import render_markdown
from bench.reporting.semisup import share_label, summary
from tests.factories import minimal_record


def semi(arch: str, method: str, seed: int, miou: float, fraction: float = 0.125, **extra):
    return minimal_record(
        arch,
        suite="semisup_synthetic",
        setting=f"64x64-seed{seed}-{method}-f{fraction:g}",
        metrics={"miou": miou, "pixel_acc": 0.9},
        env={"seed": seed},
        train={"steps": 300, "seconds": 10.0 * (seed + 1)},
        semisup={"method": method, "labelled_fraction": fraction, "labelled_images": 50},
        **extra,
    )


RECORDS = [
    semi("enet", "supervised", 0, 0.40),
    semi("enet", "supervised", 1, 0.44),
    semi("enet", "advsemi", 0, 0.43),
    semi("enet", "advsemi", 1, 0.44),
    semi("enet", "supervised", 0, 0.50, fraction=0.25),
    semi("enet", "advsemi", 0, 0.47, fraction=0.25),
]


def test_seeds_are_pooled_and_gains_are_paired_by_seed():
    rows = {(r["method"], r["share"]): r for r in summary(RECORDS)}
    sup = rows[("supervised", "1/8")]
    assert sup["seeds"] == [0, 1] and sup["gain"] is None
    assert sup["miou"][0] == pytest.approx(42.0)
    assert sup["miou"][1] == pytest.approx(2.8284271)  # stdev of 40 and 44
    adv = rows[("advsemi", "1/8")]
    # Per-seed differences: +3 (seed 0), 0 (seed 1): mean 1.5, stdev 2.1213.
    assert adv["gain"][0] == pytest.approx(1.5) and adv["gain"][1] == pytest.approx(2.1213203)
    assert adv["train_s"] == pytest.approx(15.0)
    assert rows[("supervised", "1/4")]["miou"] == (pytest.approx(50.0), None)  # one seed: no std
    assert rows[("advsemi", "1/4")]["gain"] == (pytest.approx(-3.0), None)


def test_share_labels():
    assert share_label(semi("enet", "advsemi", 0, 0.1, fraction=0.125)) == "1/8"
    assert share_label(semi("enet", "advsemi", 0, 0.1, fraction=0.3)) == "0.3"


def test_semi_supervised_records_get_their_own_section_not_ranking_tables(tmp_path):
    text = render_markdown(RECORDS + [minimal_record("enet", metrics={"miou": 0.3})])
    assert "## Semi-supervised track" in text
    assert "| 1/8 | enet | advsemi | 2 | 43.5 ± 0.7 | +1.5 ± 2.1 | 15 |" in text
    assert "seed0-advsemi" not in text  # no ranking table per semi-supervised setting
    # One seed: the value alone (no "± 0.0" that would claim a measured spread).
    assert "| 1/4 | enet | supervised | 1 | 50.0 | - | 10 |" in text
    assert "| 1/4 | enet | advsemi | 1 | 47.0 | -3.0 | 10 |" in text
    written = write_report(tmp_path, RECORDS)
    assert tmp_path / "plots" / "semisup_synthetic__synthetic__semisup.png" in written


def test_one_seed_shows_its_bootstrap_interval():
    one = semi("enet", "supervised", 0, 0.50, fraction=0.25)
    one = one.replace(metrics=dataclasses.replace(one.metrics, miou_ci95=(0.481, 0.523)))
    text = render_markdown([one])
    assert "| 1/4 | enet | supervised | 1 | 50.0 [48.1, 52.3] | - |" in text
