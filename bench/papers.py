"""Paper-reported parameters and compute against our measurement, under the paper's conditions.

A suite's records count complexity at the suite's resolution and class count (e.g. 64x64 and 4
synthetic classes), which is the right figure next to the suite's latency but not comparable with
the number a paper printed. This module measures every registered architecture the way its paper
reported it:

* parameters of the default build at ``ArchInfo.paper_num_classes`` (auxiliary heads included
  exactly when the builder builds them by default; ``paper_params_note`` says what the paper
  counted);
* MACs of one forward pass in eval mode at ``(1, 3, *ArchInfo.paper_resolution)``, with the
  harness's padding to ``input_divisor`` (what the leaderboard reports), converted to the paper's
  convention (``"macs"`` or ``"2*macs"``, see :mod:`bench.complexity`).

It writes ``<results_dir>/papers.json`` (one row per architecture, with the environment and the
command that produced it) and renders ``<results_dir>/PAPERS.md`` from that file alone, so the
table can be re-rendered without measuring again. An architecture whose build or count fails is
a row with ``status: "error"`` and the message; the others are still measured.
"""

from __future__ import annotations

import json
import math
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from tabulate import tabulate
from tqdm import tqdm

import architectures
from bench import complexity as cx
from bench.fileio import write_json_atomic
from bench.models import build_model
from bench.provenance import command_line, environment
from bench.records import utc_now

PAPERS_JSON = "papers.json"
PAPERS_MD = "PAPERS.md"
SCHEMA_VERSION = 1


def _count_params_at(name: str, num_classes: int) -> int:
    """Parameters of the default build; on the meta device when the builder allows it."""
    try:
        with torch.device("meta"):
            model = architectures.build(name, num_classes=num_classes)
    except Exception:  # noqa: BLE001 - some builders need real tensors; fall back to the CPU
        model = architectures.build(name, num_classes=num_classes)
    return cx.count_params(model)[0]


def _rel(measured: float | None, paper: float | None) -> float | None:
    if measured is None or paper is None or paper == 0:
        return None
    return (measured - paper) / paper


def measure_architecture(name: str) -> dict[str, Any]:
    """One row: the paper's figures, ours under the same conditions, and the differences."""
    info = architectures.get_info(name)
    row: dict[str, Any] = {
        "arch": name,
        "title": info.title,
        "paper": info.paper,
        "year": info.year,
        "status": "ok",
        "paper_num_classes": info.paper_num_classes,
        "paper_params": info.paper_params,
        "paper_params_note": info.paper_params_note,
        "paper_gflops": info.paper_gflops,
        "paper_flops_convention": info.paper_flops_convention,
        "paper_resolution": list(info.paper_resolution) if info.paper_resolution else None,
        "params": None,
        "params_rel_diff": None,
        "complexity": None,
        "compute_in_paper_convention": None,
        "compute_rel_diff": None,
    }
    try:
        num_classes = info.paper_num_classes or 21
        row["params_num_classes"] = num_classes
        row["params"] = _count_params_at(name, num_classes)
        row["params_rel_diff"] = _rel(row["params"], info.paper_params)
        if info.paper_resolution is not None:
            h, w = info.paper_resolution
            torch.manual_seed(0)
            model = build_model(name, num_classes=num_classes).eval()
            report = cx.count_complexity(model, (1, 3, h, w))
            row["complexity"] = report.to_dict()
            ours = report.gflops if info.paper_flops_convention == "2*macs" else report.gmacs
            row["compute_in_paper_convention"] = ours
            row["compute_rel_diff"] = _rel(ours, info.paper_gflops)
    except Exception as exc:  # noqa: BLE001 - one architecture's failure must not end the table
        row["status"] = "error"
        row["error"] = {
            "type": type(exc).__name__,
            "message": str(exc),
            "traceback": traceback.format_exc(),
        }
    return row


def measure(names: Sequence[str], *, progress: bool = True) -> list[dict[str, Any]]:
    """Rows for ``names`` (in order), with a progress bar."""
    rows = []
    for name in tqdm(list(names), desc="papers", unit="arch", disable=not progress):
        rows.append(measure_architecture(name))
    return rows


def write_papers(
    results_dir: Path, rows: list[dict[str, Any]], argv: list[str] | None = None
) -> tuple[Path, Path]:
    """Writes ``papers.json`` (atomically) and renders ``PAPERS.md`` from it."""
    results_dir = Path(results_dir)
    data = {
        "schema_version": SCHEMA_VERSION,
        "created": utc_now().isoformat().replace("+00:00", "Z"),
        "command": command_line(argv),
        "env": environment("cpu", 0, None).to_dict(),
        "rows": rows,
    }
    json_path = write_json_atomic(results_dir / PAPERS_JSON, data)
    return json_path, render_papers(results_dir)


def _pct(rel: float | None) -> str:
    return (
        "–"
        if rel is None or (isinstance(rel, float) and math.isnan(rel))
        else (f"{100 * rel:+.1f}")
    )


def _num(value: float | None, digits: int = 2) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def render_papers(results_dir: Path) -> Path:
    """Re-renders ``PAPERS.md`` from ``papers.json`` (no measuring); returns its path."""
    results_dir = Path(results_dir)
    src = results_dir / PAPERS_JSON
    try:
        data = json.loads(src.read_text())
        rows = data["rows"]
    except (OSError, ValueError, KeyError) as exc:
        raise ValueError(
            f"Cannot render {PAPERS_MD}: {src} is missing or not a papers file written by "
            f"`python run_bench.py papers` ({type(exc).__name__}: {exc}). Re-run that command."
        ) from exc
    table = []
    for r in rows:
        conv = r.get("paper_flops_convention")
        unit = {"macs": "GMACs", "2*macs": "GFLOPs"}.get(conv or "", "")
        res = r.get("paper_resolution")
        res_text = f" @ {res[0]}x{res[1]}" if res else ""
        if r["status"] != "ok":
            ours_params = ours_compute = f"error: {r['error']['message'][:80]}"
        else:
            ours_params = f"{r['params'] / 1e6:.2f}"
            ours_compute = (
                f"{r['compute_in_paper_convention']:.2f} {unit}"
                if r.get("compute_in_paper_convention") is not None
                else "–"
            )
        table.append(
            [
                f"{r['title']} (`{r['arch']}`)",
                f"[{r['paper']}](https://arxiv.org/abs/{r['paper']})"
                if r["paper"][:1].isdigit() and "/" not in r["paper"]
                else r["paper"],
                r.get("params_num_classes", "–"),
                "–" if r.get("paper_params") is None else f"{r['paper_params'] / 1e6:.2f}",
                ours_params,
                _pct(r.get("params_rel_diff")),
                "–"
                if r.get("paper_gflops") is None
                else f"{r['paper_gflops']:.2f} {unit}{res_text}",
                ours_compute,
                _pct(r.get("compute_rel_diff")),
                r.get("paper_params_note") or "",
            ]
        )
    headers = [
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
    lines = [
        "# Paper figures vs measured",
        "",
        f"Rendered from `{PAPERS_JSON}`, written by `{data['command']}` on {data['created']} "
        f"(torch {data['env'].get('torch')}, fvcore MACs cross-checked with FlopCounterMode). "
        "Do not edit by hand.",
        "",
        "- **Parameters**: the default build at the class count the paper reported for "
        "(column *classes*; 21 when the paper states none).",
        "- **Compute**: one image in eval mode at the paper's resolution (the harness pads to "
        "the entry's input divisor), in the paper's convention: GMACs (one multiply-add = one "
        "operation, as fvcore and most segmentation papers) or GFLOPs = 2 x GMACs.",
        "- **diff %** = (measured - paper) / paper. Differences beyond 5% (params) or 10% "
        "(compute) are explained in the entry's module docstring and pinned in "
        "`tests/paper_gaps.py`.",
        "",
        tabulate(table, headers=headers, tablefmt="github", disable_numparse=True),
        "",
    ]
    out = results_dir / PAPERS_MD
    tmp = out.with_suffix(".md.tmp")
    tmp.write_text("\n".join(lines))
    tmp.replace(out)
    return out
