"""The tables of the static site (:mod:`bench.reporting.site`): rankings, semi-supervised runs.

Every value a table shows comes from one row of ``leaderboard.csv`` (the text of the CSV,
parsed with :mod:`csv`), so what the page shows equals the CSV by construction:

* a number is a leaf ``<span class="n" data-col="COLUMN" data-value="CSV TEXT">`` whose text
  is the CSV value formatted by :data:`NUMBER_FORMATS` (fractions as percentages), and a text
  value a ``<span class="t" ...>`` whose text is the CSV value itself; ``data-value`` is the
  CSV field byte for byte (empty for a missing value, shown as an en dash);
* each row is ``<tr data-run-id="...">``, so a value can be traced to its CSV row;
* each cell carries ``data-sort`` (the key the page's script sorts by; missing values sort
  last in either direction).

Rows are grouped into tables as the Markdown leaderboard groups them
(:func:`bench.reporting.tables.device_tables`: one table per suite, dataset, setting, speed
device and dtype) and ordered by :func:`~bench.reporting.tables.rank_order`. The rank is the
CSV's ``rank`` column (:func:`bench.reporting.tables.table_ranks`, as in the Markdown). Columns the
frame may or may not have (``miou_ci95_lo``/``_hi``, ``miou_seed_std``, ``n_seeds``, ``rank``,
``speed_variant``) are shown when present.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from bench.reporting._format import (
    _ARXIV_NEW,
    _ARXIV_OLD,
    NA,
    Row,
    first_line,
    uniform,
)
from bench.reporting.ranking import DISAGREE_MARK, UNSUPPORTED_MARK, _table_context
from bench.reporting.tables import device_tables, rank_order

CsvRow = dict[str, str]
"""One row of ``leaderboard.csv`` as :class:`csv.DictReader` reads it (column -> CSV text)."""

NUMBER_FORMATS: dict[str, tuple[float, int]] = {
    "miou": (100.0, 1),
    "miou_ci95_lo": (100.0, 1),
    "miou_ci95_hi": (100.0, 1),
    "miou_seed_std": (100.0, 2),
    "pixel_acc": (100.0, 1),
    "mean_acc": (100.0, 1),
    "published_miou": (100.0, 1),
    "efficiency": (100.0, 1),
    "params_m": (1.0, 2),
    "gflops": (1.0, 2),
    "latency_p50_ms": (1.0, 2),
    "throughput_ips": (1.0, 1),
    "peak_mem_mb": (1.0, 1),
    "speed_variant_p50_ms": (1.0, 2),
    "speed_variant_speedup": (1.0, 2),
}
"""How a number is shown: ``(scale, decimals)``; a CSV column not listed (counts, the year) is
shown as written in the CSV."""

KIND_LABELS = {"model": "trained here", "loaded": "published weights", "baseline": "baseline"}
"""The *trained here / published weights* column: what the CSV's ``kind`` is shown as."""

_INLINE_CODE = re.compile(r"`([^`]*)`")


def esc(text: Any) -> str:
    """``text`` escaped for HTML text and double-quoted attribute values."""
    return html.escape(str(text), quote=True)


def inline_code(text: str) -> str:
    """Markdown-ish text (from the Markdown renderer's helpers) as HTML: backticks to ``code``."""
    return _INLINE_CODE.sub(lambda m: f"<code>{m.group(1)}</code>", esc(text.replace("\\|", "|")))


def number_text(column: str, value: str) -> str:
    """A CSV number as shown: scaled and rounded per :data:`NUMBER_FORMATS`; NA when empty."""
    if value == "":
        return NA
    scale, digits = NUMBER_FORMATS.get(column, (1.0, -1))
    return value if digits < 0 else f"{float(value) * scale:.{digits}f}"


def num(row: CsvRow, column: str) -> str:
    """The leaf span of one CSV number (or an en dash when the CSV field is empty)."""
    value = row.get(column, "")
    return (
        f'<span class="n" data-col="{esc(column)}" data-value="{esc(value)}">'
        f"{esc(number_text(column, value))}</span>"
    )


def txt(row: CsvRow, column: str, tag: str = "span") -> str:
    """The leaf element of one CSV text value, shown as written in the CSV."""
    value = row.get(column, "")
    return (
        f'<{tag} class="t" data-col="{esc(column)}" data-value="{esc(value)}">{esc(value)}</{tag}>'
    )


def _td(content: str, sort: str, *, numeric: bool = False, css: str = "") -> str:
    classes = " ".join(c for c in ("num" if numeric else "", css) if c)
    cls = f' class="{classes}"' if classes else ""
    return f'<td{cls} data-sort="{esc(sort)}">{content}</td>'


@dataclass(frozen=True)
class _Column:
    header: str
    numeric: bool
    cell: Callable[[CsvRow, str], str]  # (CSV row, its place in the table) -> the td


def _arch_cell(row: CsvRow, _position: str) -> str:
    name = txt(row, "weights", "code") if row["weights"] else txt(row, "arch", "code")
    title = txt(row, "title") if row["title"] != (row["weights"] or row["arch"]) else ""
    link = f'<a href="#run-{esc(row["run_id"])}" title="run record">{title or name}</a>'
    content = f"{link} {name}" if title else link
    return _td(content, row["title"] or row["arch"], css="arch")


def _kind_cell(row: CsvRow, _position: str) -> str:
    label = KIND_LABELS.get(row["kind"], row["kind"])
    return _td(f'<span data-col="kind" data-value="{esc(row["kind"])}">{esc(label)}</span>', label)


def _paper_cell(row: CsvRow, _position: str) -> str:
    paper = row["paper"]
    if not paper:
        return _td(NA, "")
    if _ARXIV_NEW.match(paper) or _ARXIV_OLD.match(paper):  # as the Markdown links them
        link = (
            f'<a href="https://arxiv.org/abs/{esc(paper)}" rel="noopener">{txt(row, "paper")}</a>'
        )
        return _td(link, paper)
    return _td(txt(row, "paper"), paper)


def _num_cell(column: str) -> Callable[[CsvRow, str], str]:
    return lambda row, _rank: _td(num(row, column), row.get(column, ""), numeric=True)


def _miou_cell(row: CsvRow, _position: str) -> str:
    content = num(row, "miou")
    if "miou_ci95_lo" in row and (row["miou_ci95_lo"] or row["miou_ci95_hi"]):
        content += (
            f' <span class="ci">[{num(row, "miou_ci95_lo")}, {num(row, "miou_ci95_hi")}]</span>'
        )
    return _td(content, row["miou"], numeric=True)


def _seeds_cell(row: CsvRow, _position: str) -> str:
    content = num(row, "miou_seed_std")
    if "n_seeds" in row:
        content += f' <span class="sub">(n = {num(row, "n_seeds")})</span>'
    return _td(content, row["miou_seed_std"], numeric=True)


def _gflops_cell(uniform_res: bool) -> Callable[[CsvRow, str], str]:
    def cell(row: CsvRow, _position: str) -> str:
        content = num(row, "gflops")
        if row["gflops"]:
            if row["disagreement"] == "True":
                content += (
                    f'<span class="mark" title="the FLOP counter and its cross-check '
                    f'disagree">{DISAGREE_MARK}</span>'
                )
            if row["unsupported_heavy_ops"]:
                content += (
                    f'<span class="mark" title="the counter skipped compute-heavy operators: '
                    f'{esc(row["unsupported_heavy_ops"])} (an undercount)">{UNSUPPORTED_MARK}</span>'
                )
            if not uniform_res and row["complexity_res"]:
                content += f' <span class="sub">@ {txt(row, "complexity_res")}</span>'
        return _td(content, row["gflops"], numeric=True)

    return cell


def _batch_cell(column: str, batch: str | None) -> Callable[[CsvRow, str], str]:
    def cell(row: CsvRow, _position: str) -> str:
        content = num(row, column)
        if batch is not None and row[column] and row[batch]:
            content += f' <span class="sub">(bs{num(row, batch)})</span>'
        return _td(content, row[column], numeric=True)

    return cell


def _status_cell(row: CsvRow, _position: str) -> str:
    if row["status"] == "ok":
        return _td(txt(row, "status"), "ok", css="status")
    message = row["error_message"]
    stage = f" (stage: {txt(row, 'error_stage')})" if row["error_stage"] else ""
    shown = (
        f'error: <span class="x" data-col="error_message" data-value="{esc(message)}">'
        f"{esc(first_line(message))}</span>{stage}"
    )
    return _td(shown, f"error {message}", css="status")


def _variant_cell(row: CsvRow, _position: str) -> str:
    """The fastest speed variant: its name, latency p50 and speed-up over eager, where known."""
    if not row["speed_variant"]:
        return _td(NA, "")
    content = txt(row, "speed_variant")
    if row.get("speed_variant_p50_ms"):
        content += f' <span class="sub">{num(row, "speed_variant_p50_ms")} ms'
        if row.get("speed_variant_speedup"):
            content += f", x{num(row, 'speed_variant_speedup')}"
        content += "</span>"
    return _td(content, row["speed_variant"])


def _text_cell(column: str) -> Callable[[CsvRow, str], str]:
    return lambda row, _rank: _td(txt(row, column), row.get(column, ""))


def _rank_cell(row: CsvRow, position: str) -> str:
    """The CSV's ``rank``, sorted by the row's place in the ranking order (``position``)."""
    return _td(txt(row, "rank"), position, numeric=False, css="rank")


def _columns(
    rows: list[CsvRow], header: list[str], timed: bool, where: str, device: str | None
) -> list[_Column]:
    """The columns one ranking table shows (those without any value left out)."""
    res = uniform([r["complexity_res"] or None for r in rows])
    bs = uniform([r["latency_batch_size"] or None for r in rows])
    columns = [
        _Column("Rank", False, _rank_cell),
        _Column("Architecture", False, _arch_cell),
        _Column("Trained here / published weights", False, _kind_cell),
        _Column("Paper", False, _paper_cell),
        _Column("Year", True, _num_cell("year")),
    ]
    with_ci = "miou_ci95_lo" in header and any(r["miou_ci95_lo"] for r in rows)
    columns.append(_Column("mIoU % [95% CI]" if with_ci else "mIoU %", True, _miou_cell))
    if "miou_seed_std" in header and any(r["miou_seed_std"] for r in rows):
        columns.append(_Column("mIoU seed std (points)", True, _seeds_cell))
    columns += [
        _Column("Pixel acc %", True, _num_cell("pixel_acc")),
        _Column("Mean acc %", True, _num_cell("mean_acc")),
        _Column("Params (M)", True, _num_cell("params_m")),
        _Column(f"GFLOPs @ {res}" if res else "GFLOPs", True, _gflops_cell(res is not None)),
    ]
    if timed:
        batch_header = f"/bs{bs}" if bs else ""
        columns += [
            _Column(
                f"Latency p50 ms @ {where}{batch_header}",
                True,
                _batch_cell("latency_p50_ms", None if bs else "latency_batch_size"),
            ),
            _Column(
                "Throughput img/s (best bs)",
                True,
                _batch_cell("throughput_ips", "throughput_batch"),
            ),
            _Column(f"Peak mem MiB @ {device}", True, _num_cell("peak_mem_mb")),
            _Column("Efficiency %", True, _num_cell("efficiency")),
        ]
    if any(r["kind"] == "loaded" for r in rows):
        columns.append(_Column("Published mIoU %", True, _num_cell("published_miou")))
    if "speed_variant" in header and any(r["speed_variant"] for r in rows):
        columns.append(_Column("Fastest speed variant (p50, speed-up)", False, _variant_cell))
    if any(r["status"] != "ok" for r in rows):
        columns.append(_Column("Status", False, _status_cell))
    return columns


def _row_class(row: CsvRow) -> str:
    if row["status"] != "ok":
        return "failed"
    return "baseline" if row["kind"] == "baseline" else ""


def table_html(table_id: str, rows: list[CsvRow], columns: list[_Column]) -> str:
    """One sortable, filterable table (the filter box and the row counter above it).

    Args:
        table_id: The table's ``id`` (unique in the page).
        rows: The table's CSV rows, in the order shown.
        columns: What each column shows.

    Returns:
        The HTML.
    """
    head = "".join(
        f'<th scope="col" data-type="num" class="num">{esc(c.header)}</th>'
        if c.numeric
        else f'<th scope="col" data-type="text">{esc(c.header)}</th>'
        for c in columns
    )
    body = []
    for position, row in enumerate(rows):
        css = _row_class(row)
        cells = "".join(column.cell(row, f"{position:04d}") for column in columns)
        attrs = f' class="{css}"' if css else ""
        body.append(f'<tr data-run-id="{esc(row["run_id"])}"{attrs}>{cells}</tr>')
    return (
        f'<div class="table-tools"><input type="search" class="filter" data-table="{table_id}" '
        f'placeholder="filter rows" aria-label="filter the rows of this table">'
        f'<span class="muted" data-count-for="{table_id}"></span></div>'
        f'<div class="table-wrap"><table class="board" id="{table_id}">'
        f"<thead><tr>{head}</tr></thead><tbody>\n" + "\n".join(body) + "\n</tbody></table></div>"
    )


def ranking_tables(
    group_rows: list[Row], csv_rows: dict[str, CsvRow], header: list[str], prefix: str
) -> list[str]:
    """HTML of one ``(suite, dataset, setting)``: one ranking table per speed device and dtype.

    Args:
        group_rows: The group's :func:`~bench.reporting.frame.report_frame` rows (dicts).
        csv_rows: Every CSV row by run id.
        header: The CSV's columns.
        prefix: The group's id prefix (table ids are ``prefix-0``, ``prefix-1``, ...).

    Returns:
        HTML fragments, one per table (heading, conditions, table).
    """
    out = []
    for n, table in enumerate(device_tables(group_rows)):
        ordered = rank_order(table.rows)
        rows = [csv_rows[r["run_id"]] for r in ordered]
        timed = table.dtype is not None
        where = f"{table.device or 'unknown device'}/{table.dtype}" if timed else ""
        title = (
            f"Ranking, speed on {where}"
            if timed
            else f"Ranking, device {table.device or 'unknown'} (speed not measured)"
        )
        conditions = "".join(
            f'<p class="conditions">{inline_code(line)}</p>'
            for line in _table_context(table)
            if line
        )
        columns = _columns(rows, header, timed, where, table.device)
        out.append(
            f"<h3>{esc(title)}</h3>{conditions}" + table_html(f"{prefix}-{n}", rows, columns)
        )
    return out


def semisup_table(table_id: str, rows: Sequence[CsvRow]) -> str:
    """One table of semi-supervised runs (not ranked: settings differ by method, share, seed).

    Args:
        table_id: The table's ``id``.
        rows: Its CSV rows (one suite and dataset), in CSV order.

    Returns:
        The HTML.
    """
    columns = [
        _Column("Setting", False, _text_cell("setting")),
        _Column("Architecture", False, _arch_cell),
        _Column("Trained here / published weights", False, _kind_cell),
        _Column("mIoU %", True, _miou_cell),
        _Column("Pixel acc %", True, _num_cell("pixel_acc")),
        _Column("Mean acc %", True, _num_cell("mean_acc")),
        _Column("Params (M)", True, _num_cell("params_m")),
        _Column("Train steps", True, _num_cell("train_steps")),
    ]
    if any(r["status"] != "ok" for r in rows):
        columns.append(_Column("Status", False, _status_cell))
    return table_html(table_id, list(rows), columns)
