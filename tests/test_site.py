"""The static web leaderboard (bench.reporting.site), read as HTML text: no browser here.

What the page does in a browser (sorting, filtering, figures, console errors) is
tests/test_site_browser.py. Every number below is a FIXTURE value chosen by hand; none is a
measurement.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest

from bench.errors import ConfigError
from bench.records import PublishedFigure, RunRecord, SemiSupInfo, WeightsUsed, write_record
from bench.reporting.frame import leaderboard_csv, leaderboard_frame
from bench.reporting.site import render_site, write_site
from tests.factories import ROOT, fixture_sweep, run_cli, run_record
from tests.site_expect import shown, write_samples

LEAF = re.compile(
    r'<(?:span|code) class="([ntx])" data-col="([^"]*)" data-value="([^"]*)">([^<]*)</(?:span|code)>'
)
RANK_CELL = re.compile(r'data-col="rank" data-value="[^"]*">([^<]*)</span>')


def loaded(arch: str, miou: float, name: str) -> RunRecord:
    weights = WeightsUsed(
        name=name,
        file=f"{name}.pth",
        sha256="0" * 64,
        published=(PublishedFigure(metric="miou", value=57.8, split="test", source="README"),),
    )
    return run_record(arch, miou=miou).replace(kind="loaded", weights=weights)


def semi(seed: int, miou: float) -> RunRecord:
    info = SemiSupInfo(method="advsemi", labelled_fraction=0.125, split_seed=seed)
    return run_record(
        "enet", suite="semisup_synthetic", setting=f"s{seed}", miou=miou, dtype=None
    ).replace(semisup=info)


def fixture_records() -> list[RunRecord]:
    """The reporting sweep (duplicate, failures, baseline, a CUDA row), a tie, published weights
    and two semi-supervised runs; quick rows keep sample files."""
    return [
        *fixture_sweep(),
        run_record("erfnet", title="ERFNet", miou=0.55, p50=5.0, samples=True),  # ties U-Net
        run_record("linknet", title="LinkNet", miou=0.45, p50=4.0, params=11_000_000, samples=True),
        loaded("espnet", 0.5783, "espnet.camvid_skd_base"),
        semi(0, 0.30),
        semi(1, 0.32),
    ]


@pytest.fixture()
def results(tmp_path: Path) -> tuple[Path, list[RunRecord]]:
    """A FIXTURE results folder: the records' files and their sample files."""
    records = fixture_records()
    folder = tmp_path / "results"
    for record in records:
        write_record(folder, record)
    write_samples(folder, records)
    return folder, records


class Tags(HTMLParser):
    """Every start tag of a page as ``(tag, attributes)``."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def start_tags(page: str) -> list[tuple[str, dict[str, str | None]]]:
    parser = Tags()
    parser.feed(page)
    return parser.tags


def remote_loads(page: str) -> list[str]:
    """``src``/``href`` of script, link, img, iframe, source tags that point off the machine."""
    return [
        url
        for tag, attrs in start_tags(page)
        if tag in {"script", "link", "img", "iframe", "source", "video", "audio"}
        for key in ("src", "href")
        if (url := attrs.get(key) or "").lower().startswith(("http://", "https://", "//"))
    ]


def csv_by_run(text: str) -> dict[str, dict[str, str]]:
    return {row["run_id"]: row for row in csv.DictReader(io.StringIO(text))}


def table_rows(page: str) -> list[tuple[str, str]]:
    """``(run id, row HTML)`` of every table row of the page."""
    return re.findall(r'<tr data-run-id="([^"]*)"[^>]*>(.*?)</tr>', page, re.S)


def test_site_files_load_nothing_remote(results) -> None:
    folder, records = results
    files = render_site(folder, records)
    page = files["index.html"].decode("utf-8")
    assert {"index.html", "site.css", "site.js", "plotly.min.js"} <= set(files)
    assert any(name.startswith("samples/") and name.endswith(".png") for name in files)
    assert remote_loads(page) == []
    loads = [
        attrs.get("src") or attrs.get("href")
        for tag, attrs in start_tags(page)
        if tag in {"script", "link", "img"} and (attrs.get("src") or attrs.get("href"))
    ]
    assert set(loads) >= {"site.css", "site.js", "plotly.min.js"}
    for name in loads:  # every local file the page loads is one of the site's files
        assert name.startswith("data:") or name in files, name
    css = files["site.css"].decode("utf-8")
    assert "@import" not in css and "url(" not in css  # no remote font or style either
    assert "http" not in files["site.js"].decode("utf-8")


def test_every_ranked_architecture_is_named_with_its_record(results) -> None:
    folder, records = results
    page = render_site(folder, records)["index.html"].decode("utf-8")
    ranked = leaderboard_frame([r for r in records if r.semisup is None])
    ranked = ranked[(ranked["status"] == "ok") & (ranked["kind"] != "baseline")]
    assert len(ranked) == 7
    for row in ranked.itertuples():
        name = row.weights or row.arch
        assert f'data-value="{name}">{name}</code>' in page
        assert f'<details class="run" id="run-{row.run_id}">' in page
    assert 'data-col="kind" data-value="loaded">published weights</span>' in page
    assert 'data-col="kind" data-value="model">trained here</span>' in page


@pytest.mark.parametrize("new_columns", [False, True], ids=["csv-today", "with-intervals"])
def test_every_number_shown_equals_the_csv(results, new_columns: bool) -> None:
    folder, records = results
    text = with_new_columns(records) if new_columns else leaderboard_csv(records)
    page = render_site(folder, records, text)["index.html"].decode("utf-8")
    by_run = csv_by_run(text)
    rows = table_rows(page)
    assert {run for run, _ in rows} == set(by_run)  # every CSV row has a table row
    checked = 0
    for run_id, row_html in rows:
        for kind, column, value, content in LEAF.findall(row_html):
            assert value == by_run[run_id][column], (run_id, column)
            if kind == "n":
                assert content == shown(column, value), (run_id, column)
            elif kind == "t":
                assert content == value
            else:  # the error message: its first line
                assert value.startswith(content)
            checked += 1
        for cell in re.findall(r"<td[^>]*>(.*?)</td>", row_html, re.S):
            rest = re.sub(r"<[^>]*>", "", LEAF.sub("", cell))
            assert not re.search(r"\d", rest), (run_id, cell)  # no digit outside a CSV value
    assert checked > 100


def test_a_rerender_is_byte_identical_and_from_a_copied_folder_too(results, tmp_path) -> None:
    folder, records = results
    first = render_site(folder, records)
    assert render_site(folder, records) == first
    copy = tmp_path / "copy"
    shutil.copytree(folder, copy)
    assert render_site(copy, list(reversed(records))) == first


def test_leaderboard_command_rebuilds_the_site_from_records_alone(results, tmp_path) -> None:
    folder, _ = results
    code, out, err = run_cli(["leaderboard", "--results-dir", folder])
    assert code == 0, err
    site = folder / "site"
    assert f"{site / 'index.html'}\n" in out
    built = {p.relative_to(site): p.read_bytes() for p in site.rglob("*") if p.is_file()}
    # A copy of the records and samples alone (no site, no CSV) renders the same site.
    copy = tmp_path / "copy"
    shutil.copytree(folder / "records", copy / "records")
    shutil.copytree(folder / "samples", copy / "samples")
    assert run_cli(["leaderboard", "--results-dir", copy])[0] == 0
    rebuilt = {
        p.relative_to(copy / "site"): p.read_bytes()
        for p in (copy / "site").rglob("*")
        if p.is_file()
    }
    assert rebuilt == built
    # Re-rendering leaves no stale sample image behind.
    stale = site / "samples" / "gone__group" / "00.png"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"old")
    write_site(folder, [r for r in fixture_records() if r.semisup is None])
    assert not stale.parent.exists()


def with_new_columns(records: list[RunRecord]) -> str:
    """The CSV of ``records`` with FIXTURE interval, seed, rank and speed-variant columns."""
    frame = leaderboard_frame(records)
    timed = frame["dtype"].notna()
    extra = {
        "miou_ci95_lo": frame["miou"] - 0.02,
        "miou_ci95_hi": frame["miou"] + 0.03,
        "miou_seed_std": pd.Series(0.0125, index=frame.index),
        "n_seeds": pd.Series(3, index=frame.index, dtype="Int64"),
        "rank": pd.Series([f"={i}" for i in range(len(frame))], index=frame.index),
        "speed_variant": pd.Series("channels_last", index=frame.index).where(timed, None),
        "speed_variant_p50_ms": (frame["latency_p50_ms"] * 0.8).where(timed),
        "speed_variant_speedup": pd.Series(1.25, index=frame.index).where(timed),
    }
    for column, values in extra.items():
        frame[column] = values
    return frame.to_csv(index=False, float_format="%.10g", lineterminator="\n")


def test_intervals_seeds_and_csv_ranks_are_shown_when_the_csv_has_them(results) -> None:
    folder, records = results
    text = with_new_columns(records)
    page = render_site(folder, records, text)["index.html"].decode("utf-8")
    by_run = csv_by_run(text)
    fcn = next(r for r in by_run.values() if r["arch"] == "fcn8s" and r["device"] == "cpu")
    lo, hi = fcn["miou_ci95_lo"], fcn["miou_ci95_hi"]
    row_html = dict(table_rows(page))[fcn["run_id"]]
    assert (
        f'<span class="ci">[<span class="n" data-col="miou_ci95_lo" data-value="{lo}">'
        f'{shown("miou_ci95_lo", lo)}</span>, <span class="n" data-col="miou_ci95_hi" '
        f'data-value="{hi}">{shown("miou_ci95_hi", hi)}</span>]</span>'
    ) in row_html
    assert f'data-col="rank" data-value="{fcn["rank"]}">{fcn["rank"]}</span>' in row_html
    assert "mIoU % [95% CI]" in page and "mIoU seed std (points)" in page
    assert "Fastest speed variant" in page
    p50 = fcn["speed_variant_p50_ms"]
    assert (
        f'>channels_last</span> <span class="sub"><span class="n" '
        f'data-col="speed_variant_p50_ms" data-value="{p50}">{shown("speed_variant_p50_ms", p50)}'
        '</span> ms, x<span class="n" data-col="speed_variant_speedup" data-value="1.25">1.25'
        "</span></span>"
    ) in row_html
    assert "not learned" not in re.sub(r"<p.*?</p>", "", page)  # ranks are the CSV's alone


def r_is_cpu(row_html: str) -> bool:
    return 'data-col="latency_p50_ms" data-value="1.5"' not in row_html  # not the CUDA row


def test_ranks_are_the_csvs_and_intervals_only_show_where_records_have_them(results) -> None:
    folder, records = results
    page = render_site(folder, records)["index.html"].decode("utf-8")
    assert "[95% CI]" not in page  # the fixture records have no intervals
    rows = dict(table_rows(page))
    csv = csv_by_run(leaderboard_csv(records, folder))
    ranks = {
        arch: RANK_CELL.findall(rows[run])[0]
        for run, arch in ((r.run_id, r.arch) for r in records if r.semisup is None)
        if run in rows and r_is_cpu(rows[run])
    }
    for run, row_html in rows.items():  # every rank cell shows the CSV's rank
        assert RANK_CELL.findall(row_html) in ([], [csv[run]["rank"]]), run
    assert ranks["segnet"] == "1" and ranks["fcn8s"] == "2"
    assert ranks["erfnet"] == ranks["unet"] == "=4"  # equal mIoU: a shared rank
    assert ranks["background"] == "baseline" and ranks["enet"] == "–"


def test_figures_are_valid_plotly_and_point_at_table_rows(results) -> None:
    go = pytest.importorskip("plotly.graph_objects")
    folder, records = results
    page = render_site(folder, records)["index.html"].decode("utf-8")
    specs = re.findall(
        r'<div class="([^"]*)" id="([^"]*)"[^>]*></div><script type="application/json" '
        r'class="plot-spec" data-target="\2">(.*?)</script>',
        page,
    )
    assert [css for css, _, _ in specs] == ["plot", "plot", "plot heat"]
    assert len({div for _, div, _ in specs}) == len(specs)
    rows = dict(table_rows(page))
    for _, _, text in specs:
        spec = json.loads(text)
        go.Figure(spec)  # plotly validates every attribute name and value
        for trace in spec["data"]:
            for custom in trace.get("customdata", []):
                assert custom[0] in rows and "mIoU" in custom[1]


def test_a_csv_of_other_records_is_an_error(results) -> None:
    folder, records = results
    with pytest.raises(ConfigError, match=r"csv_text=leaderboard_csv\(records\)"):
        render_site(folder, records, leaderboard_csv(records[:3]))
    with pytest.raises(ConfigError, match="no run records"):
        render_site(folder, [])


def test_a_site_that_cannot_be_written_is_named(results) -> None:
    folder, records = results
    (folder / "site").write_text("a file where the site folder belongs")
    with pytest.raises(ConfigError, match=r"cannot write the leaderboard \(.*site/index\.html: "):
        write_site(folder, records)


def test_record_detail_names_command_commit_environment_and_protocol(results) -> None:
    folder, records = results
    page = render_site(folder, records)["index.html"].decode("utf-8")
    record = records[0]
    detail = re.search(rf'<details class="run" id="run-{record.run_id}">.*?</details>', page, re.S)
    assert detail is not None
    text = detail.group(0)
    assert "python run_bench.py run --suite quick" in text and "abc1234" in text
    for heading in ("Environment", "Evaluation protocol", "Training", "Speed"):
        assert f"<h4>{heading}</h4>" in text
    assert "<dt>torch</dt><dd>2.5.1</dd>" in text and "<dt>split</dt><dd>val</dd>" in text
    assert dataclasses.is_dataclass(record.protocol)


COMMITTED = ROOT / "results"


def test_the_committed_site_is_offline_and_names_every_ranked_architecture() -> None:
    index = COMMITTED / "site" / "index.html"
    if not index.is_file():
        pytest.skip(f"{index} is not rendered yet: run `python run_bench.py leaderboard`")
    page = index.read_text(encoding="utf-8")
    assert remote_loads(page) == []
    rows = csv_by_run((COMMITTED / "leaderboard.csv").read_text(encoding="utf-8"))
    for row in rows.values():
        if row["status"] == "ok" and row["kind"] != "baseline":
            assert f'data-value="{row["weights"] or row["arch"]}"' in page, row["run_id"]
