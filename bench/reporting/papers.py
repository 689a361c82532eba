"""Renders ``PAPERS.md`` from ``papers.json`` alone (paper figures against our measurements).

``papers.json`` is written by :mod:`bench.papers` (``python run_bench.py papers``); this module
reads it, checks its layout, and writes the markdown table. It imports neither the
architectures, torch, :mod:`bench.complexity` nor :mod:`bench.papers`: re-rendering never
builds or measures a model (``python run_bench.py papers --render-only``).

The file layout (``schema_version`` :data:`PAPERS_SCHEMA_VERSION`)::

    {"schema_version": 2, "created": "<UTC ISO time>Z", "command": "python run_bench.py papers",
     "env": {"torch": "...", ...}, "rows": [<row>, ...]}

A row holds the entry's identity (``arch``, ``title``, ``paper``, ``year``), ``status``
(``"ok"`` or ``"error"``, then ``error.message``), the paper's figures (``paper_params``,
``paper_params_note``, ``paper_params_with_aux``, ``paper_num_classes``, ``paper_gflops``,
``paper_gflops_with_aux`` (the published compute runs the aux head: shown, not compared),
``paper_flops_convention``, ``paper_resolution``) and ours: ``params`` (the parameters the
eval forward pass reads), ``params_with_aux`` (every parameter, auxiliary heads included),
``params_compared`` (which of the two ``params_rel_diff`` compares with the paper: the eval
count, or ``params_with_aux`` where the paper's count included the auxiliary heads),
``params_num_classes``, ``params_input_shape``, ``complexity`` (the full count at the paper's
resolution), ``compute_in_paper_convention`` and ``compute_rel_diff``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from tabulate import tabulate

from bench.errors import MissingFileError, RecordError
from bench.fileio import write_text_atomic

PAPERS_JSON = "papers.json"
PAPERS_MD = "PAPERS.md"
PAPERS_SCHEMA_VERSION = 2
"""Version of the ``papers.json`` layout; 2 added ``params_with_aux`` and ``params_compared``
(version 1 compared every paper with all registered parameters)."""

FIX = "Re-run `python run_bench.py papers` to rewrite it (the harness writes it; never by hand)."
_COMPARED = ("params", "params_with_aux")
_MISSING = object()
_UNITS = {"macs": "GMACs", "2*macs": "GFLOPs"}

HEADERS = [
    "architecture",
    "paper",
    "classes",
    "paper params (M)",
    "measured params (M)",
    "params diff %",
    "paper compute",
    "measured (same res. & convention)",
    "compute diff %",
    "what the paper's count covers",
]


# --------------------------------------------------------------------------- reading


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_str(value: object) -> bool:
    return isinstance(value, str)


def _optional(check: Callable[[object], bool]) -> Callable[[object], bool]:
    return lambda value: value is None or check(value)


def _is_resolution(value: object) -> bool:
    return isinstance(value, list) and len(value) == 2 and all(_is_int(v) and v > 0 for v in value)


class _Reader:
    """Checks fields of the parsed file; every failure names the file, field, expected, found."""

    def __init__(self, source: Path) -> None:
        self.source = source

    def fail(self, field: str, expected: str, found: object) -> RecordError:
        shown = "nothing (the field is missing)" if found is _MISSING else repr(found)
        if len(shown) > 80:
            shown = shown[:77] + "..."
        return RecordError(f"{self.source}: field {field} must be {expected}; found {shown}. {FIX}")

    def get(
        self,
        obj: Mapping[str, Any],
        key: str,
        where: str,
        check: Callable[[object], bool],
        expected: str,
    ) -> Any:
        field = f"{where}.{key}" if where else key
        if key not in obj:
            raise self.fail(field, expected, _MISSING)
        value = obj[key]
        if not check(value):
            raise self.fail(field, expected, value)
        return value


def read_papers(results_dir: Path | str) -> dict[str, Any]:
    """Reads and checks ``<results_dir>/papers.json``.

    Args:
        results_dir: The folder holding ``papers.json``.

    Returns:
        The parsed file, every field the renderer uses checked.

    Raises:
        MissingFileError: There is no ``papers.json`` in ``results_dir``.
        RecordError: The file is not JSON, is of another schema version, or a field is missing
            or of the wrong type (the message names the file, the field, what was expected,
            what was found, and the fix).
    """
    src = Path(results_dir) / PAPERS_JSON
    if not src.is_file():
        raise MissingFileError(
            f"Cannot render {PAPERS_MD}: {src} is missing. Run `python run_bench.py papers "
            f"--results-dir {results_dir}` first (it measures and writes {PAPERS_JSON})."
        )
    reader = _Reader(src)
    try:
        data = json.loads(src.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise RecordError(
            f"{src}: not readable as JSON ({type(exc).__name__}: {exc}). {FIX}"
        ) from exc
    if not isinstance(data, dict):
        raise reader.fail("(top level)", "a JSON object", data)
    reader.get(
        data,
        "schema_version",
        "",
        lambda v: v == PAPERS_SCHEMA_VERSION,
        f"{PAPERS_SCHEMA_VERSION} (the layout this harness renders)",
    )
    reader.get(data, "created", "", _is_str, "a str (UTC time)")
    reader.get(data, "command", "", _is_str, "a str (the command that wrote the file)")
    env = reader.get(data, "env", "", lambda v: isinstance(v, dict), "an object")
    reader.get(env, "torch", "env", _is_str, "a str (the torch version)")
    rows = reader.get(data, "rows", "", lambda v: isinstance(v, list), "a list of rows")
    for i, row in enumerate(rows):
        _check_row(reader, row, f"rows[{i}]")
    return data


def _check_row(reader: _Reader, row: object, where: str) -> None:
    """Checks the fields of one row that the renderer reads."""
    if not isinstance(row, dict):
        raise reader.fail(where, "an object", row)
    for key in ("arch", "title", "paper", "paper_params_note"):
        reader.get(row, key, where, _is_str, "a str")
    status = reader.get(row, "status", where, lambda v: v in ("ok", "error"), "'ok' or 'error'")
    reader.get(row, "params_num_classes", where, _optional(_is_int), "an int or null")
    reader.get(row, "paper_params", where, _optional(_is_int), "an int or null")
    reader.get(row, "paper_gflops", where, _optional(_is_number), "a number or null")
    if "paper_gflops_with_aux" in row:
        reader.get(row, "paper_gflops_with_aux", where, lambda v: isinstance(v, bool), "a bool")
    reader.get(
        row,
        "paper_flops_convention",
        where,
        lambda v: v is None or v in _UNITS,
        f"one of {sorted(_UNITS)} or null",
    )
    reader.get(row, "paper_resolution", where, _optional(_is_resolution), "[H, W] or null")
    for key in ("params_rel_diff", "compute_rel_diff"):
        reader.get(row, key, where, _optional(_is_number), "a number or null")
    if status == "error":
        error = reader.get(row, "error", where, lambda v: isinstance(v, dict), "an object")
        reader.get(error, "message", f"{where}.error", _is_str, "a str")
        return
    for key in ("params", "params_with_aux"):
        reader.get(row, key, where, lambda v: _is_int(v) and v >= 0, "a non-negative int")
    reader.get(row, "params_compared", where, lambda v: v in _COMPARED, f"one of {_COMPARED}")
    reader.get(row, "compute_in_paper_convention", where, _optional(_is_number), "a number or null")


# --------------------------------------------------------------------------- rendering


def _pct(rel: float | None) -> str:
    return "–" if rel is None or math.isnan(rel) else f"{100 * rel:+.1f}"


def _millions(count: int) -> str:
    return f"{count / 1e6:.2f}"


def _measured_params(row: Mapping[str, Any]) -> str:
    """The compared count first; the other one beside it where they differ."""
    params, with_aux = row["params"], row["params_with_aux"]
    if row["params_compared"] == "params_with_aux":
        return f"{_millions(with_aux)} incl. aux (eval {_millions(params)})"
    if with_aux != params:
        return f"{_millions(params)} (incl. aux {_millions(with_aux)})"
    return _millions(params)


def _table_row(row: Mapping[str, Any]) -> list[object]:
    unit = _UNITS.get(row["paper_flops_convention"] or "", "")
    res = row["paper_resolution"]
    res_text = f" @ {res[0]}x{res[1]}" if res else ""
    if row["status"] != "ok":
        ours_params = ours_compute = f"error: {row['error']['message'][:80]}"
    else:
        ours_params = _measured_params(row)
        compute = row["compute_in_paper_convention"]
        ours_compute = "–" if compute is None else f"{compute:.2f} {unit}"
        if compute is not None and row.get("paper_gflops_with_aux"):
            ours_compute += " (eval; the paper's runs the aux head)"
    paper = row["paper"]
    link = paper[:1].isdigit() and "/" not in paper  # an arXiv id, not a DOI
    return [
        f"{row['title']} (`{row['arch']}`)",
        f"[{paper}](https://arxiv.org/abs/{paper})" if link else paper,
        "–" if row["params_num_classes"] is None else row["params_num_classes"],
        "–" if row["paper_params"] is None else _millions(row["paper_params"]),
        ours_params,
        _pct(row["params_rel_diff"]),
        "–" if row["paper_gflops"] is None else f"{row['paper_gflops']:.2f} {unit}{res_text}",
        ours_compute,
        _pct(row["compute_rel_diff"]),
        row["paper_params_note"],
    ]


def render_markdown(data: Mapping[str, Any]) -> str:
    """The text of ``PAPERS.md`` for a checked ``papers.json`` (see :func:`read_papers`).

    Args:
        data: The parsed, checked file.

    Returns:
        The markdown, ending with a newline.
    """
    lines = [
        "# Paper figures vs measured",
        "",
        f"Rendered from `{PAPERS_JSON}`, written by `{data['command']}` on {data['created']} "
        f"(torch {data['env']['torch']}, fvcore MACs cross-checked with FlopCounterMode). "
        "Do not edit by hand.",
        "",
        "- **Parameters**: those the eval forward pass reads, i.e. the network the compute "
        "column counts (auxiliary heads that run only in training are left out, and shown "
        "beside as *incl. aux*), of the default build at the class count the paper reported "
        "for (column *classes*; 21 when the paper states none). Where the paper's count "
        "includes the auxiliary heads (column *what the paper's count covers*), the comparison "
        "uses every parameter: *incl. aux* comes first and the eval count beside it.",
        "- **Compute**: one image in eval mode at the paper's resolution (the harness pads to "
        "the entry's input divisor), in the paper's convention: GMACs (one multiply-add = one "
        "operation, as fvcore and most segmentation papers) or GFLOPs = 2 x GMACs.",
        "- **diff %** = (measured - paper) / paper. Differences beyond 5% (params) or 10% "
        "(compute) are explained in the entry's module docstring and pinned in "
        "`tests/paper_gaps.py`.",
        "",
        tabulate(
            [_table_row(r) for r in data["rows"]],
            headers=HEADERS,
            tablefmt="github",
            disable_numparse=True,
        ),
        "",
    ]
    return "\n".join(lines)


def render_papers(results_dir: Path | str) -> Path:
    """Re-renders ``PAPERS.md`` from ``papers.json`` (no measuring).

    Args:
        results_dir: The folder holding ``papers.json``; ``PAPERS.md`` is written beside it.

    Returns:
        The path of ``PAPERS.md``.

    Raises:
        MissingFileError: ``papers.json`` is missing.
        RecordError: ``papers.json`` is malformed (see :func:`read_papers`).
    """
    data = read_papers(results_dir)
    return write_text_atomic(Path(results_dir) / PAPERS_MD, render_markdown(data))
