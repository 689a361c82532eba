"""Tests for bench.reporting.write_report, the one entry that writes the report's files.

Every number below is a FIXTURE value chosen by hand for the test; none is a measurement.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from matplotlib.figure import Figure

from bench.errors import ConfigError, RecordError
from bench.fileio import write_json_atomic
from bench.records import load_records
from bench.reporting import write_report
from bench.reporting.frame import leaderboard_csv
from bench.reporting.markdown import render_markdown
from tests.factories import run_record

PREFIX = "quick__synthetic__res64-steps10-b2"


def two_records() -> list:
    # Two records keep this fast: the figures themselves are tested in test_reporting_plots.py.
    return [run_record("fcn8s", miou=0.6), run_record("enet", miou=0.5, p50=3.0)]


def test_write_report_writes_markdown_csv_and_plots(tmp_path: Path) -> None:
    records = two_records()
    paths = write_report(tmp_path, records)
    assert paths[:2] == [tmp_path / "LEADERBOARD.md", tmp_path / "leaderboard.csv"]
    md = render_markdown(records, tmp_path)
    assert (tmp_path / "LEADERBOARD.md").read_text(encoding="utf-8") == md
    csv = leaderboard_csv(records, tmp_path)
    assert (tmp_path / "leaderboard.csv").read_text(encoding="utf-8") == csv
    assert [p.relative_to(tmp_path).as_posix() for p in paths[2:]] == [
        f"plots/{PREFIX}__miou_vs_latency_cpu-fp32.png",
        f"plots/{PREFIX}__miou_vs_gflops_64x64.png",
        f"plots/{PREFIX}__per_class_iou.png",
        "site/index.html",
        "site/plotly.min.js",
        "site/site.css",
        "site/site.js",
    ]
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == sorted(
        p.name for p in paths
    )  # and nothing else (no temporary file)


def test_write_report_without_records_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"no run records to render into .*run_bench\.py run"):
        write_report(tmp_path, [])


def test_a_directory_in_the_place_of_a_file_is_named(tmp_path: Path) -> None:
    (tmp_path / "LEADERBOARD.md").mkdir()
    with pytest.raises(ConfigError) as info:
        write_report(tmp_path, two_records())
    message = str(info.value)
    assert message.startswith(f"cannot write the leaderboard ({tmp_path / 'LEADERBOARD.md'}: ")
    assert "Is a directory" in message and "The records are unchanged" in message
    assert sorted(p.name for p in tmp_path.iterdir()) == ["LEADERBOARD.md"]  # nothing half-done

    other = tmp_path / "other"
    figure = other / "plots" / f"{PREFIX}__per_class_iou.png"
    figure.mkdir(parents=True)
    with pytest.raises(ConfigError, match=rf"cannot write the leaderboard \({figure}: "):
        write_report(other, two_records())


def test_a_killed_render_leaves_the_old_figure(tmp_path: Path, monkeypatch) -> None:
    """A render stopped half-way through a PNG (Ctrl-C, a full disk) keeps the previous file."""
    paths = write_report(tmp_path, two_records())
    before = {p: p.read_bytes() for p in paths}

    def half_then_stop(self: Figure, handle, **kwargs: object) -> None:
        handle.write(b"\x89PNG half a figure")
        raise KeyboardInterrupt

    monkeypatch.setattr(Figure, "savefig", half_then_stop)
    with pytest.raises(KeyboardInterrupt):
        write_report(tmp_path, [run_record("fcn8s", miou=0.7), run_record("enet", miou=0.1)])
    png = paths[2]
    assert png.read_bytes() == before[png]
    assert not [p for p in (tmp_path / "plots").iterdir() if p.suffix == ".tmp"]


def test_a_corrupt_record_stops_the_report_naming_the_file(tmp_path: Path) -> None:
    """Records are validated by bench.records (tested in test_records.py); reporting surfaces
    the RecordError of load_records and writes nothing."""
    good = run_record("fcn8s")
    write_json_atomic(tmp_path / "records" / f"{good.run_id}.json", good.to_dict())
    bad = run_record("enet").to_dict()
    bad["metrics"]["miou"] = 61.2  # a percentage where a fraction belongs
    bad_file = tmp_path / "records" / "bad.json"
    write_json_atomic(bad_file, bad)
    with pytest.raises(RecordError, match=rf"{bad_file}.*metrics\.miou.*\[0, 1\]"):
        write_report(tmp_path, load_records(tmp_path))
    assert not (tmp_path / "LEADERBOARD.md").exists()
