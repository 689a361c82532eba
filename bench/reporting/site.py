"""The static web leaderboard: ``<results_dir>/site/``, rendered from the run records alone.

Open ``site/index.html`` straight from disk, or serve it (``python -m http.server -d
results/site``): it loads nothing from the network (no CDN, no remote font; the only links
out are the papers' arXiv pages). Files written under ``site/``:

* ``index.html``: per ``(suite, dataset, setting)`` one sortable, filterable ranking table per
  speed device and dtype (:mod:`bench.reporting.site_tables`: the rows and every number of
  ``leaderboard.csv``, with the intervals, ranks, cost columns and the *trained here /
  published weights* column), the interactive trade-off figures (mIoU vs latency, vs GFLOPs,
  with the Pareto front; hovering a point highlights its table row), the per-class IoU heat
  map and the qualitative samples (:mod:`bench.reporting.site_figures`); the semi-supervised
  runs (not ranked); and per record the command, commit, environment, protocol and training
  (:mod:`bench.reporting.site_records`).
* ``site.css``, ``site.js``: the page's style and script (``bench/reporting/site_assets/``).
* ``plotly.min.js``: plotly.js, as bundled with the ``plotly`` package.
* ``samples/<suite>__<dataset>__<setting>/NN.png``: the sample strips (image, ground truth,
  each prediction); stale PNGs under ``samples/`` are removed.

Rendering is deterministic: the same records (and sample files) give byte-identical files; no
render time is written, figure ids derive from the group, JSON keys are sorted.
"""

from __future__ import annotations

import csv
import functools
import io
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from bench.errors import ConfigError
from bench.fileio import write_atomic
from bench.records import RunRecord
from bench.reporting._figure import slug
from bench.reporting._output import writing
from bench.reporting.frame import GROUP, leaderboard_csv, report_frame
from bench.reporting.published import group_title
from bench.reporting.site_figures import heatmap_spec, sample_strips, tradeoff_specs
from bench.reporting.site_records import record_details
from bench.reporting.site_tables import (
    CsvRow,
    esc,
    inline_code,
    ranking_tables,
    semisup_table,
)

__all__ = ["SITE_DIR", "render_site", "write_site"]

SITE_DIR = "site"
"""The site's folder inside a results folder."""
PLOTLY_JS = "plotly.min.js"
_ASSETS = Path(__file__).resolve().parent / "site_assets"
_ASSET_FILES = ("site.css", "site.js")
_MIN_SAMPLE_WIDTH = 128  # pixels a sample is shown at, at least (by whole factors)


def _csv_rows(csv_text: str) -> tuple[list[str], list[CsvRow]]:
    reader = csv.DictReader(io.StringIO(csv_text))
    return list(reader.fieldnames or []), list(reader)


def _spec_html(div_id: str, spec: dict[str, Any], css: str = "plot") -> str:
    """A figure's ``<div>`` and its spec as JSON (``<`` escaped, so no tag can end the script)."""
    text = json.dumps(spec, sort_keys=True, separators=(",", ":"), allow_nan=False)
    text = text.replace("<", "\\u003c")
    height = spec["layout"].get("height")
    style = f' style="height: {int(height)}px"' if height else ""
    return (
        f'<div class="{css}" id="{esc(div_id)}"{style}></div>'
        f'<script type="application/json" class="plot-spec" data-target="{esc(div_id)}">'
        f"{text}</script>"
    )


def _samples_html(prefix: str, group: pd.DataFrame, results_dir: Path, files: dict) -> str:
    strips = sample_strips(group, results_dir)
    if strips is None:
        return ""
    heads, cells = [], []
    width = strips.width * max(1, _MIN_SAMPLE_WIDTH // strips.width)  # small images scaled up
    for k, (title, png) in enumerate(zip(strips.titles, strips.pngs, strict=True)):
        name = f"samples/{prefix}/{k:02d}.png"
        files[name] = png
        heads.append(f'<th scope="col">{esc(title)}</th>')
        cells.append(
            f'<td><img src="{esc(name)}" alt="{esc(title)}" style="width: {width}px"></td>'
        )
    legend = "".join(
        f'<span><span class="swatch" style="background: rgb{esc(rgb)}"></span>{esc(name)}</span>'
        for name, rgb in strips.legend
    )
    shown = ", ".join(f"#{i}" for i in strips.indices)
    return (
        f'<h3 id="{esc(prefix)}-samples">Sample predictions</h3>'
        f'<p class="note">Samples {esc(shown)} of the evaluation split, top to bottom; columns '
        "in mIoU order. Grey: the run did not keep that sample.</p>"
        f'<div class="legend">{legend}</div>'
        f'<div class="samples"><table><thead><tr>{"".join(heads)}</tr></thead>'
        f"<tbody><tr>{''.join(cells)}</tr></tbody></table></div>"
    )


def _group_html(
    key: tuple[str, str, str],
    group: pd.DataFrame,
    csv_rows: dict[str, CsvRow],
    header: list[str],
    results_dir: Path,
    files: dict[str, bytes],
) -> tuple[str, str, str]:
    """``(anchor, heading text, section HTML)`` of one ``(suite, dataset, setting)``."""
    suite, dataset, setting = key
    prefix = "__".join(slug(part) for part in key)
    rows = group.to_dict("records")
    heading = inline_code(group_title(suite, dataset, setting, rows).removeprefix("## "))
    where = f"{suite} / {dataset}"
    parts = [f'<h2 id="{esc(prefix)}">{heading}</h2>']
    parts += ranking_tables(rows, csv_rows, header, f"t-{prefix}")
    figures = [
        _spec_html(f"{prefix}-{kind}-{n}", spec)
        for n, (kind, spec) in enumerate(tradeoff_specs(group, csv_rows, where))
    ]
    if figures:
        parts.append(
            '<h3>Accuracy vs cost</h3><p class="note">Marker area ∝ params; the line is the '
            "Pareto front (nothing else is both faster or cheaper and more accurate); dashed: "
            "baselines. Hover a point for its row (highlighted in the table); click it for its "
            "record.</p>"
            f'<div class="plots">{"".join(figures)}</div>'
        )
    heat = heatmap_spec(group, where)
    if heat is not None:
        parts.append(
            '<h3>Per-class IoU (%)</h3><p class="note">Grey, –: the class is absent from both '
            "ground truth and predictions (left out of the mean).</p>"
            + _spec_html(f"{prefix}-heat", heat, "plot heat")
        )
    parts.append(_samples_html(prefix, group, results_dir, files))
    return prefix, heading, "\n".join(part for part in parts if part)


def _semisup_html(frame: pd.DataFrame, csv_rows: dict[str, CsvRow]) -> tuple[str, str] | None:
    if frame.empty:
        return None
    parts = [
        '<h2 id="semisup">Semi-supervised track</h2><p class="note">Not ranked: the settings '
        "differ by method, labelled share and seed (in the setting id). LEADERBOARD.md averages "
        "them over seeds.</p>"
    ]
    for (suite, dataset), group in frame.groupby(["suite", "dataset"], sort=True):
        rows = [csv_rows[r] for r in group["run_id"]]
        parts.append(f"<h3>{esc(suite)} / {esc(dataset)}</h3>")
        parts.append(semisup_table(f"t-semisup-{slug(suite)}__{slug(dataset)}", rows))
    return "semisup", "\n".join(parts)


_CONVENTIONS = (
    "Accuracy in percent (the CSV holds fractions), from one confusion matrix over the whole "
    "evaluation split; params in millions; GFLOPs = 2 x GMACs for one image; latency the "
    "batch-1 p50 in ms; throughput the best images/s over the batch sweep; efficiency the "
    "achieved GFLOP/s over the measured dense-matmul GFLOP/s. One table per device and dtype "
    "(CPU kernels are part of the device). mIoU [lo, hi]: the 95% bootstrap interval over the "
    "test images. Rows that a paired bootstrap on the same images cannot tell apart share a "
    "rank (=2); rows without per-image data have their plain rank. mIoU over seeds: mean ± "
    "std over training seeds (another source of spread than the interval). Baselines and rows "
    "within noise of the baseline (<em>not learned</em>) are not ranked. A missing value is an "
    "en dash. Click a column header to sort; type in a box to filter."
)


def _page(records: Sequence[RunRecord], results_dir: Path, csv_text: str) -> dict[str, bytes]:
    header, rows = _csv_rows(csv_text)
    csv_rows = {r["run_id"]: r for r in rows}
    frame = report_frame(records)
    if list(frame["run_id"]) != [r["run_id"] for r in rows]:
        raise ConfigError(
            "render_site: the CSV text does not hold the rows of these records (expected the "
            f"{len(frame)} rows of leaderboard_csv(records), found {len(rows)} other rows). "
            "Fix: pass csv_text=leaderboard_csv(records), or leave it out."
        )
    files: dict[str, bytes] = {}
    semi = frame["record"].map(lambda r: r.semisup is not None)
    sections: list[tuple[str, str, str]] = []
    for key, group in frame[~semi].groupby(GROUP, sort=True):
        sections.append(_group_html(key, group, csv_rows, header, results_dir, files))
    semisup = _semisup_html(frame[semi], csv_rows)
    toc = [f'<li><a href="#{esc(a)}">{h}</a></li>' for a, h, _ in sections]
    if semisup is not None:
        toc.append('<li><a href="#semisup">Semi-supervised track</a></li>')
    toc.append('<li><a href="#records">Run records</a></li>')
    blocks = [
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        "<title>Semantic-segmentation leaderboard</title>"
        '<link rel="icon" href="data:,"><link rel="stylesheet" href="site.css"></head><body>',
        '<header class="top"><h1>Semantic-segmentation leaderboard</h1>'
        '<input type="search" id="filter-all" placeholder="filter every table" '
        'aria-label="filter every table"></header><main>',
        f'<p class="note">Rendered by <code>bench.reporting</code> from {len(records)} run '
        f"record(s), {len(frame)} after de-duplication; the same rows as "
        "<code>leaderboard.csv</code>. Do not edit: regenerate with <code>python run_bench.py "
        "leaderboard</code>.</p>",
        f'<p class="note">{_CONVENTIONS}</p>',
        '<nav class="toc"><ul>\n' + "\n".join(toc) + "\n</ul></nav>",
        *(html for _, _, html in sections),
        *([semisup[1]] if semisup is not None else []),
        '<h2 id="records">Run records</h2><p class="note">How each row was made: the command, '
        "commit, environment, protocol and training, from its record file.</p>",
        *(record_details(r) for r in frame["record"]),
        f'</main><script src="{PLOTLY_JS}"></script><script src="site.js"></script></body></html>',
    ]
    page = "\n".join(blocks) + "\n"
    files["index.html"] = page.encode("utf-8")
    return files


def render_site(
    results_dir: Path | str, records: Sequence[RunRecord], csv_text: str | None = None
) -> dict[str, bytes]:
    """The site's files, in memory.

    Args:
        results_dir: The folder the records' sample paths are relative to.
        records: Run records (e.g. :func:`bench.records.load_records` of ``results_dir``).
        csv_text: ``leaderboard_csv(records)`` when the caller has it (computed otherwise); the
            tables show its rows and values.

    Returns:
        Path relative to the site folder -> bytes (``index.html``, the assets, the sample PNGs).

    Raises:
        ConfigError: ``records`` is empty, or ``csv_text`` is not the CSV of ``records``.
        TypeError: An element of ``records`` is not a :class:`RunRecord`.
    """
    if not records:
        raise ConfigError(
            "render_site: no run records given; expected at least one. Fix: run `python "
            "run_bench.py run` first, then render the records it wrote."
        )
    text = leaderboard_csv(records) if csv_text is None else csv_text
    files = _page(records, Path(results_dir), text)
    for name in _ASSET_FILES:
        files[name] = (_ASSETS / name).read_bytes()
    files[PLOTLY_JS] = _plotly_js()
    return dict(sorted(files.items()))


@functools.lru_cache(maxsize=1)
def _plotly_js() -> bytes:
    """The plotly.js bundled with the ``plotly`` package (read once per process)."""
    from plotly.offline import get_plotlyjs  # imported when a site is rendered, not before

    return get_plotlyjs().encode("utf-8")


def write_site(
    results_dir: Path | str,
    records: Sequence[RunRecord],
    csv_text: str | None = None,
    site_dir: Path | str | None = None,
) -> list[Path]:
    """Writes the site (see the module docstring) into ``<results_dir>/site/``.

    Every file is written atomically, and only when its bytes change; PNGs under
    ``site/samples/`` that this render did not write are removed.

    Args:
        results_dir: The results folder the records were loaded from.
        records: Its run records.
        csv_text: ``leaderboard_csv(records)`` when the caller has it.
        site_dir: Where to write instead of ``<results_dir>/site``.

    Returns:
        The site's files, ``index.html`` first, then the others sorted.

    Raises:
        ConfigError: No records, or a file cannot be written (the message names it).
        TypeError: An element of ``records`` is not a :class:`RunRecord`.
    """
    results_dir = Path(results_dir)
    root = Path(site_dir) if site_dir is not None else results_dir / SITE_DIR
    files = render_site(results_dir, records, csv_text)
    written: list[Path] = []
    for name, data in files.items():
        path = root / name
        with writing(path):
            if not (path.is_file() and path.read_bytes() == data):
                write_atomic(path, lambda handle, data=data: handle.write(data))
        written.append(path)
    samples = root / "samples"
    for stale in sorted(samples.rglob("*.png")) if samples.is_dir() else []:
        if stale.relative_to(root).as_posix() not in files:
            with writing(stale):
                stale.unlink()
    for folder in sorted(samples.glob("*"), reverse=True) if samples.is_dir() else []:
        if folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()
    index = root / "index.html"
    return [index, *(p for p in written if p != index)]
