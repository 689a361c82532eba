"""``LEADERBOARD.md``: the leaderboard as GitHub-flavoured Markdown, from run records.

Conventions (also written into the header of every rendered leaderboard):

* Rows are de-duplicated as :mod:`bench.reporting.frame` documents: the newest ok record per
  ``(suite, dataset, setting, arch, device, dtype)``; a failed run only when no ok record exists
  for it.
* One ranking table per ``(suite, dataset, setting, device, dtype)``
  (:mod:`bench.reporting.ranking`): speed measured on different devices or dtypes is never put
  in one column, and CPU kernels are part of the device (``cpu (AVX512)``, see
  :mod:`bench.reporting.frame`). A record without a speed section (baseline, failed run, suite
  that skipped timing) is listed in every table of its ``(suite, dataset, setting)`` whose
  device type matches its ``env.device`` and which has no ok row for the same architecture;
  when no such table exists it gets a table of its own.
* Accuracy is shown in percent (the records hold fractions); params in millions; GFLOPs = 2 x
  GMACs; latency the batch-1 p50 in ms; a missing value is an en dash.

Sections: the header (units and conventions), the environment, per group the ranking tables and
per-class IoU, and "paper vs measured". Rendering is deterministic: the same records always give
byte-identical text.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.errors import ConfigError
from bench.records import RunRecord
from bench.reporting._format import NA, Row, arch_label, cell, fmt, is_ok, md_table, missing
from bench.reporting.frame import GROUP, known_cpu, report_frame
from bench.reporting.published import group_title, published_section
from bench.reporting.ranking import DISAGREE_MARK, UNSUPPORTED_MARK, group_tables
from bench.reporting.semisup import semisup_section
from bench.reporting.tables import NOT_LEARNED, SEED_SPREAD
from bench.reporting.ties import per_image_loader

__all__ = ["NA", "render_markdown"]


def _signed_pct(measured: Any, reference: Any) -> str:
    if missing(measured) or missing(reference) or reference == 0:
        return NA
    return f"{(measured - reference) / reference * 100.0:+.1f}"


def _measured_compute(row: Row, paper_res: str | None) -> tuple[str, str, str]:
    """(paper compute, measured compute, difference) cells of one paper-table row."""
    info = row["record"].arch_info
    if info.paper_gflops is None:
        return NA, NA, NA
    unit = {"macs": "GMACs", "2*macs": "GFLOPs (2 x MACs)"}.get(
        info.paper_flops_convention or "", "G (convention not stated)"
    )
    paper_text = f"{info.paper_gflops:.2f} {unit}" + (f" @ {paper_res}" if paper_res else "")
    res = row["complexity_res"]
    if paper_res is None or res != paper_res:
        where = f" (measured at {res})" if res else ""
        return paper_text, f"not measured at paper resolution{where}", NA
    if info.paper_gflops_with_aux:
        measured = f"{fmt(row['gmacs'], 2)} GMACs (eval; the paper's runs the aux head)"
        return paper_text, measured, NA
    if info.paper_flops_convention == "macs":
        measured = f"{fmt(row['gmacs'], 2)} GMACs"
        return paper_text, measured, _signed_pct(row["gmacs"], info.paper_gflops)
    if info.paper_flops_convention == "2*macs":
        measured = f"{fmt(row['gflops'], 2)} GFLOPs"
        return paper_text, measured, _signed_pct(row["gflops"], info.paper_gflops)
    measured = f"{fmt(row['gmacs'], 2)} GMACs = {fmt(row['gflops'], 2)} GFLOPs"
    return paper_text, measured, NA


def _paper_resolution(record: RunRecord) -> str | None:
    res = record.arch_info.paper_resolution if record.arch_info is not None else None
    return f"{res[0]}x{res[1]}" if res else None


def _measured_params(row: Row, record: RunRecord) -> tuple[float, str]:
    """Our count to set beside the paper's: with the auxiliary heads where the paper's has them.

    Returns:
        ``(millions, cell text)``; the text names the evaluated network's count when they differ.
    """
    info, cx = record.arch_info, record.complexity
    if info is not None and info.paper_params_with_aux and cx and cx.params_with_aux is not None:
        with_aux = cx.params_with_aux / 1e6
        return with_aux, f"{fmt(with_aux, 2)} incl. aux (eval {fmt(row['params_m'], 2)})"
    return row["params_m"], fmt(row["params_m"], 2)


def _paper_section(rows: list[Row]) -> list[str]:
    """Paper-reported params/compute against the measurement, per (dataset, architecture)."""
    by_key: dict[tuple[str, str], list[Row]] = {}
    for row in rows:
        if is_ok(row) and row["kind"] == "model":
            by_key.setdefault((row["dataset"], row["arch"]), []).append(row)
    cells: list[list[str]] = []
    for (dataset, _arch), group in sorted(by_key.items()):
        # Prefer a record counted at the paper's resolution, then any with complexity.
        at_res = [
            r
            for r in group
            if _paper_resolution(r["record"])
            and r["complexity_res"] == _paper_resolution(r["record"])
        ]
        counted = [r for r in group if r["record"].complexity is not None]
        row = max(at_res or counted or group, key=lambda r: r["record"].newest_key)
        record: RunRecord = row["record"]
        info = record.arch_info
        if info is None or (info.paper_params is None and info.paper_gflops is None):
            continue
        paper_params_m = math.nan if info.paper_params is None else info.paper_params / 1e6
        class_names = record.dataset_info.class_names if record.dataset_info else ()
        measured_m, measured_text = _measured_params(row, record)
        cells.append(
            [
                arch_label(row),
                f"{dataset} ({len(class_names)} classes)" if class_names else dataset,
                fmt(paper_params_m, 2),
                measured_text,
                _signed_pct(measured_m, paper_params_m),
                *_measured_compute(row, _paper_resolution(record)),
                cell(info.paper_params_note or ""),
            ]
        )
    lines = [
        "## Paper vs measured",
        "",
        "Measured here at this suite's class count and complexity resolution. `PAPERS.md` "
        "(`python run_bench.py papers`) measures every entry under its paper's own class count "
        "and resolution.",
        "",
    ]
    if not cells:
        return [*lines, "No architecture in these records declares paper params or compute.", ""]
    headers = [
        "architecture",
        "dataset",
        "paper params (M)",
        "measured params (M)",
        "params diff %",
        "paper compute @ res (convention)",
        "measured, same res & convention",
        "compute diff %",
        "paper params note",
    ]
    align = ["left", "left", "right", "right", "right", "left", "left", "right", "left"]
    if not any(line[-1] for line in cells):
        headers, align, cells = headers[:-1], align[:-1], [line[:-1] for line in cells]
    return [
        *lines,
        "Parameter counts depend on the number of classes (the classifier head), so a paper's "
        "count for its own dataset can differ from ours by the head's size. Measured params are "
        "the network as evaluated; where the paper's count includes the auxiliary training "
        "heads, ours does too (`incl. aux`, with the evaluated count beside it). Compute is compared "
        "only when the record's complexity was counted at the paper's resolution, in the paper's "
        "own convention (GMACs or 2 x MACs).",
        "",
        md_table(headers, cells, align),
        "",
    ]


def _environment_section(rows: list[Row]) -> list[str]:
    envs = [r["record"].env for r in rows if r["record"].env is not None]

    def distinct(key: str) -> str:
        values = sorted({str(getattr(e, key)) for e in envs if getattr(e, key) is not None})
        return ", ".join(values) if values else "not recorded"

    lines = [
        "## Environment",
        "",
        f"- torch {distinct('torch')}; torchvision {distinct('torchvision')}; "
        f"Python {distinct('python')}",
    ]
    devices: dict[str, list[Row]] = {}
    for row in rows:
        devices.setdefault(row["device"] or "unknown", []).append(row)
    for device, members in sorted(devices.items()):
        names = sorted({r["device_name"] for r in members if r["device_name"]})
        threads = sorted({r["threads"] for r in members if r["threads"] is not None})
        matmul = sorted({m for r in members if not missing(m := r["matmul_gflops_per_s"])})
        kernels = sorted({cpu.kernel_key for r in members if (cpu := known_cpu(r["record"]))})
        line = f"- device `{device}`: {'; '.join(cell(n) for n in names) or 'name not recorded'}"
        if kernels:
            line += f"; CPU kernels {', '.join(f'`{k}`' for k in kernels)}"
        if threads:
            line += f"; {'/'.join(str(t) for t in threads)} threads"
        if matmul:
            line += f"; measured dense matmul {', '.join(f'{m:.1f}' for m in matmul)} GFLOP/s"
        lines.append(line)
    commits = sorted(
        {f"{e.git_commit}{' (dirty)' if e.git_dirty else ''}" for e in envs if e.git_commit}
    )
    lines.append(f"- git commit(s): {', '.join(f'`{c}`' for c in commits) or 'not recorded'}")
    lines.append(f"- seed(s): {distinct('seed')}")
    first = min(rows, key=lambda r: r["record"].newest_key)["created"]
    last = max(rows, key=lambda r: r["record"].newest_key)["created"]
    lines.append(f"- runs created {first} to {last}" if first != last else f"- run created {first}")
    return [*lines, ""]


_CPU_CONVENTION = (
    "- **CPU kernels are part of the device**: a CPU record that names its CPU (`env.cpu`) is "
    "timed on `cpu (<torch CPU capability>)`, e.g. `cpu (AVX512)` (`cpu-AVX512` in plot file "
    "names), or on `cpu (<vendor/family/model/capability/pins>)` where CPUs of one capability "
    "differ; speed from different CPU kernels is never mixed. Records that do not name their CPU "
    "stay on `cpu`."
)


def _header(n_records: int, n_shown: int, *, known_cpus: bool) -> list[str]:
    return [
        "# Semantic-segmentation leaderboard",
        "",
        f"Rendered by `bench.reporting` from {n_records} run record(s), {n_shown} after "
        "de-duplication. Do not edit by hand: regenerate it from the run records with "
        "`python run_bench.py leaderboard`.",
        "",
        "## Conventions",
        "",
        "- **Accuracy** (mIoU, pixel accuracy, mean class accuracy, per-class IoU) is in percent, "
        "computed from one confusion matrix accumulated over the whole evaluation split. Classes "
        "absent from both ground truth and prediction are excluded from the means "
        "(mmsegmentation convention) and shown as " + NA + ".",
        "- **Params** in millions.",
        "- **GFLOPs** = 2 x GMACs (fvcore counts one multiply-add as one FLOP; we store MACs and "
        "double once), for one image at the resolution in the column header. "
        f"{DISAGREE_MARK} = the FLOP counter and its cross-check disagree; "
        f"{UNSUPPORTED_MARK} = the counter skipped a convolution/matmul-like operator "
        "(undercount).",
        "- **Latency** = median (p50) of batch-1 forward passes in ms, on the device/dtype named "
        "in the column header.",
        "- **Throughput** = best images/s over the batch-size sweep (the batch size that achieved "
        "it in parentheses).",
        "- **Peak memory** in MiB (2^20 bytes) over batch-1 forward passes; how it was measured "
        "(e.g. `cpu_rss_delta_sampled`, `cuda_max_allocated`) is stated under each table.",
        "- **Efficiency** = achieved GFLOP/s (2 x GMACs x best images/s) / the dense matmul "
        "GFLOP/s measured on the same device and dtype, in percent. It can exceed 100% where "
        "the backend's convolution kernels outrun the one large fp32 GEMM used as reference.",
        "- **One table per device and dtype**: speed measured on different devices is never "
        "mixed in one column. Records without speed (baselines, failed runs) appear in the tables "
        "of the device they ran on.",
        *([_CPU_CONVENTION] if known_cpus else []),
        "- **De-duplication**: the newest ok record (by `created`, then `run_id`) per suite, "
        "dataset, setting, architecture, device and dtype is shown; a failed run is shown (at the "
        "bottom) only when no ok record exists for it.",
        "- **Intervals**: `29.3 [27.1, 31.4]` is the mIoU with its 95% percentile bootstrap "
        "interval over the evaluation images (1,000 seeded resamples of the per-image confusion "
        "matrices the run kept). It measures how much the number depends on which test images "
        "were drawn, for this one trained model; it says nothing of the spread over training "
        "seeds. Records from before the per-image matrices were kept have no interval.",
        "- **Ranks and ties**: rows are ranked by mIoU. Two rows that a paired bootstrap on the "
        "same resampled images cannot tell apart (the 95% interval of their difference contains "
        "0) share a rank, written `=2`; a row's rank is one plus the number of rows above it "
        "that it is told apart from. A row without per-image matrices has its plain rank.",
        "- **Seeds**: where a setting was run with several seeds (`run --seeds 0,1,2`), each "
        "seed's run is a row of its own table (its interval: the test images), and the column "
        "*mIoU % over seeds* gives the mean ± sample standard deviation of the seeds' mIoU and "
        "their number: how much the number moves with the training seed. The two measure "
        "different things; neither replaces the other.",
        "- **Baselines** (rank `baseline`, marked *baseline*) are trivial reference predictors, "
        "not ranked.",
        f"- **Not learned** (rank `{NOT_LEARNED}`): a model trained here whose mIoU is less than "
        f"{200 * SEED_SPREAD:.1f} points above its table's all-background baseline, two seed "
        f"spreads ({100 * SEED_SPREAD:.1f} points: the standard deviation of short runs' mIoU "
        "over seeds 0-2, measured on five `quick` entries). Its number is within noise of "
        "predicting background everywhere, so it says nothing about the architecture at this "
        "budget and is not ranked.",
        "",
    ]


def render_markdown(records: Sequence[RunRecord], results_dir: Path | str | None = None) -> str:
    """Renders the leaderboard as GitHub-flavoured Markdown.

    Sections: a header stating units and conventions; the environment taken from the records;
    per ``(suite, dataset, setting)`` one ranking table per speed device/dtype (ranked by mIoU,
    baselines marked, failed runs at the bottom) with its evaluation protocol, and a per-class
    IoU table; finally a "paper vs measured" table and, where published weights were evaluated,
    "published figures vs measured" (:mod:`bench.reporting.published`). Rendering is deterministic: the same records
    always give byte-identical text.

    Args:
        records: Run records (e.g. from :func:`bench.records.load_records`).
        results_dir: The folder they were read from, where their per-image confusion matrices
            are (tie ranks, :mod:`bench.reporting.ties`); None: plain competition ranks.

    Returns:
        The Markdown text, ending in a newline.

    Raises:
        ConfigError: ``records`` is empty.
        TypeError: An element of ``records`` is not a :class:`RunRecord`.
    """
    if not records:
        raise ConfigError(
            "render_markdown: no run records given; expected at least one record. Fix: run "
            "`python run_bench.py run` first, then render the records it wrote."
        )
    semi = semisup_section(records)  # the semi-supervised track has a section of its own
    frame = report_frame([r for r in records if getattr(r, "semisup", None) is None])
    if frame.empty and semi:
        return "\n".join(_header(len(records), 0, known_cpus=False) + semi).rstrip() + "\n"
    if frame.empty:
        raise ConfigError(
            "render_markdown: no run records given; expected at least one record. Fix: run "
            "`python run_bench.py run` first, then render the records it wrote."
        )
    rows = frame.to_dict("records")
    per_image = per_image_loader(results_dir)
    known = any(known_cpu(r["record"]) for r in rows)
    lines = _header(len(records), len(rows), known_cpus=known) + _environment_section(rows)
    for (suite, dataset, setting), members in frame.groupby(GROUP, sort=True):
        title = group_title(suite, dataset, setting, members.to_dict("records"))
        lines += [title, "", *group_tables(members, per_image)]
    lines += _paper_section(rows)
    lines += published_section(rows)
    lines += semi
    while lines and lines[-1] == "":
        lines.pop()
    return "\n".join(lines) + "\n"
