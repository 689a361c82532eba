"""Markdown cell formatting shared by the leaderboard's sections (private to bench.reporting).

Percentages, fixed decimals, the en dash for a missing value, safe cell text, architecture and
device labels, and the GitHub table itself.
"""

from __future__ import annotations

import re
from typing import Any

import pandas as pd
from tabulate import tabulate

NA = "–"
"""What the Markdown shows for a missing value (an en dash)."""

Row = dict[str, Any]
"""One row of :func:`~bench.reporting.frame.report_frame` (``to_dict("records")``)."""

_ARXIV_NEW = re.compile(r"^\d{4}\.\d{4,5}(v\d+)?$")
_ARXIV_OLD = re.compile(r"^[a-z][a-z.-]*/\d{7}(v\d+)?$", re.IGNORECASE)


def missing(value: Any) -> bool:
    """True for None, NaN and ``pd.NA`` (the frame's spellings of "absent")."""
    return value is None or bool(pd.isna(value))


def cell(text: str) -> str:
    """Makes free text safe inside a Markdown table cell."""
    return " ".join(text.split()).replace("|", "\\|")


def fmt(value: Any, digits: int, scale: float = 1.0) -> str:
    """``value * scale`` with ``digits`` decimals, or the en dash when it is missing."""
    if missing(value):
        return NA
    return f"{float(value) * scale:.{digits}f}"


def pct(value: Any) -> str:
    """A fraction as a percentage with one decimal (``0.6123`` -> ``"61.2"``)."""
    return fmt(value, 1, 100.0)


def signed_points(measured: Any, published: Any) -> str:
    """``measured - published`` (fractions) in percentage points, signed, two decimals."""
    if missing(measured) or missing(published):
        return NA
    return f"{100.0 * (float(measured) - float(published)):+.2f}"


def paper_link(paper: str | None) -> str:
    """An arXiv id as a link to its abstract; other text as a safe cell."""
    if not paper:
        return NA
    if _ARXIV_NEW.match(paper) or _ARXIV_OLD.match(paper):
        return f"[{paper}](https://arxiv.org/abs/{paper})"
    return cell(paper)


def device_label(device: str | None, dtype: str | None) -> str:
    """``device/dtype`` (``cpu (AVX512)/fp32``), or the device alone without a dtype."""
    return f"{device or 'unknown device'}/{dtype}" if dtype else f"{device or 'unknown device'}"


def arch_label(row: Row, *, with_device: bool = False) -> str:
    """``Title (`arch`)``, marked *baseline*, with ``[device/dtype]`` when asked.

    Published weights are named instead of the architecture (``Title (`espnet.camvid_x`)``):
    several of one architecture can share a table.
    """
    title = row["title"]
    arch = row.get("weights") or row["arch"]
    label = f"{cell(title)} (`{arch}`)" if title != arch else f"`{arch}`"
    if row["kind"] == "baseline":
        label += " *baseline*"
    if with_device:
        label += f" [{device_label(row['device'], row['dtype'])}]"
    return label


def uniform(values: list[Any]) -> Any:
    """The single distinct non-missing value, or None when there are none or several."""
    distinct = {v for v in values if not missing(v)}
    return next(iter(distinct)) if len(distinct) == 1 else None


def first_line(text: str) -> str:
    """The first non-empty line of ``text``, at most 160 characters."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    line = lines[0] if lines else "(empty message)"
    return line if len(line) <= 160 else line[:157] + "..."


def md_table(headers: list[str], rows: list[list[str]], align: list[str]) -> str:
    """A GitHub-flavoured Markdown table; cells are shown as given (no number parsing)."""
    return tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True, colalign=align)


def is_ok(row: Row) -> bool:
    """Whether the row's run succeeded."""
    return row["status"] == "ok"


def is_timed(row: Row) -> bool:
    """Whether the row's run measured speed (it has a dtype)."""
    return row["dtype"] is not None
