"""Paper-reported parameters and compute against our measurement, under the paper's conditions.

A suite's records count complexity at the suite's resolution and class count (e.g. 64x64 and 4
synthetic classes), which is the right figure next to the suite's latency but not comparable with
the number a paper printed. This module measures every registered architecture the way its paper
reported it:

* parameters of the default build at ``ArchInfo.paper_num_classes``: ``params`` counts those
  the eval forward pass reads (the network the compute figure describes; auxiliary heads that
  only run in training are left out), ``params_with_aux`` every registered one. The paper's
  figure is compared with ``params``, or with ``params_with_aux`` where the paper's count
  includes the auxiliary heads (``ArchInfo.paper_params_with_aux``; ``paper_params_note`` says
  what the paper counted), and the row says which (``params_compared``);
* MACs of one forward pass in eval mode at ``(1, in_channels, *ArchInfo.paper_resolution)``,
  with the harness's padding to ``input_divisor`` (what the leaderboard reports), converted to
  the paper's convention (``"macs"`` or ``"2*macs"``, see :mod:`bench.complexity`).

It writes ``<results_dir>/papers.json`` (one row per architecture, with the environment and the
command that produced it); :mod:`bench.reporting.papers` renders ``PAPERS.md`` from that file
alone. An architecture whose build or count fails is a row with ``status: "error"`` and the
message; the others are still measured.
"""

from __future__ import annotations

import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

import architectures
from bench import complexity as cx
from bench.fileio import write_json_atomic
from bench.models import build_model
from bench.provenance import command_line, environment
from bench.records import utc_now
from bench.reporting.papers import PAPERS_JSON, PAPERS_SCHEMA_VERSION

PARAMS_INPUT_SIZE = 64
"""H = W of the forward pass that finds the used parameters of an entry without a paper
resolution (the harness pads it to the entry's input divisor)."""


def _eval_params(name: str, num_classes: int, in_channels: int) -> tuple[int, int, list[int]]:
    """``(params, params_with_aux, input shape)`` of the default build's eval forward pass.

    Built and run on the meta device when the model allows it (shapes only: FCN's 134M
    parameters cost nothing there; parameters are matched by identity), else on the CPU.
    """
    shape = (1, in_channels, PARAMS_INPUT_SIZE, PARAMS_INPUT_SIZE)
    try:
        with torch.device("meta"):
            model = build_model(name, num_classes=num_classes)
            used = cx.count_used_params(model, shape)[0]
    except Exception:  # noqa: BLE001 - data-dependent models cannot run on meta; use the CPU
        torch.manual_seed(0)
        model = build_model(name, num_classes=num_classes)
        used = cx.count_used_params(model, shape)[0]
    return used, cx.count_params(model)[0], list(shape)


def _rel(measured: float | None, paper: float | None) -> float | None:
    """``(measured - paper) / paper``, or None when either is missing (or the paper's is 0)."""
    if measured is None or paper is None or paper == 0:
        return None
    return (measured - paper) / paper


def measure_architecture(name: str) -> dict[str, Any]:
    """One row: the paper's figures, ours under the same conditions, and the differences.

    Args:
        name: A registered architecture.

    Returns:
        The row (layout in :mod:`bench.reporting.papers`); ``status`` is ``"error"`` with the
        message and traceback when building or counting raised.
    """
    info = architectures.get_info(name)
    num_classes = info.paper_num_classes or 21
    row: dict[str, Any] = {
        "arch": name,
        "title": info.title,
        "paper": info.paper,
        "year": info.year,
        "status": "ok",
        "paper_num_classes": info.paper_num_classes,
        "paper_params": info.paper_params,
        "paper_params_note": info.paper_params_note,
        "paper_params_with_aux": info.paper_params_with_aux,
        "paper_gflops": info.paper_gflops,
        "paper_gflops_with_aux": info.paper_gflops_with_aux,
        "paper_flops_convention": info.paper_flops_convention,
        "paper_resolution": list(info.paper_resolution) if info.paper_resolution else None,
        "params_num_classes": num_classes,
        "params": None,
        "params_with_aux": None,
        "params_input_shape": None,
        "params_compared": "params_with_aux" if info.paper_params_with_aux else "params",
        "params_rel_diff": None,
        "complexity": None,
        "compute_in_paper_convention": None,
        "compute_rel_diff": None,
    }
    try:
        if info.paper_resolution is not None:
            h, w = info.paper_resolution
            torch.manual_seed(0)
            model = build_model(name, num_classes=num_classes).eval()
            report = cx.count_complexity(model, (1, info.in_channels, h, w))
            row["complexity"] = report.to_dict()
            row["params"], row["params_with_aux"] = report.params, report.params_with_aux
            row["params_input_shape"] = list(report.input_shape)
            ours = report.gflops if info.paper_flops_convention == "2*macs" else report.gmacs
            row["compute_in_paper_convention"] = ours
            # A published figure that runs the aux head is another network: shown, not compared.
            if not info.paper_gflops_with_aux:
                row["compute_rel_diff"] = _rel(ours, info.paper_gflops)
        else:
            row["params"], row["params_with_aux"], row["params_input_shape"] = _eval_params(
                name, num_classes, info.in_channels
            )
        row["params_rel_diff"] = _rel(row[row["params_compared"]], info.paper_params)
    except Exception as exc:  # noqa: BLE001 - one architecture's failure must not end the table
        row["status"] = "error"
        row["error"] = {
            "type": type(exc).__name__,
            "message": str(exc),
            "traceback": traceback.format_exc(),
        }
    return row


def measure(names: Sequence[str], *, progress: bool = True) -> list[dict[str, Any]]:
    """Rows for ``names`` (in order), with a progress bar.

    Args:
        names: Registered architectures.
        progress: Show a progress bar.

    Returns:
        One row per name (see :func:`measure_architecture`).
    """
    rows = []
    for name in tqdm(list(names), desc="papers", unit="arch", disable=not progress):
        rows.append(measure_architecture(name))
    return rows


def write_papers(
    results_dir: Path | str, rows: list[dict[str, Any]], argv: list[str] | None = None
) -> Path:
    """Writes ``<results_dir>/papers.json`` atomically, with the environment and the command.

    Render ``PAPERS.md`` from it with :func:`bench.reporting.papers.render_papers`.

    Args:
        results_dir: Destination folder (created when missing).
        rows: Rows from :func:`measure`.
        argv: The command as typed (``["run_bench.py", "papers", ...]``); default ``sys.argv``.

    Returns:
        The path of ``papers.json``.
    """
    data = {
        "schema_version": PAPERS_SCHEMA_VERSION,
        "created": utc_now().isoformat().replace("+00:00", "Z"),
        "command": command_line(argv),
        "env": environment("cpu", 0, None).to_dict(),
        "rows": rows,
    }
    return write_json_atomic(Path(results_dir) / PAPERS_JSON, data)
