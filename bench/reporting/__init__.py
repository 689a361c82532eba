"""Reporting: run records in; ``LEADERBOARD.md``, ``leaderboard.csv`` and ``plots/`` out.

Reporting reads :class:`~bench.records.RunRecord` objects (and the sample files they point to)
and nothing else: it never builds a model, loads a dataset, measures or trains, so the report
can be regenerated anywhere from the JSON records alone. It imports none of ``architectures``,
torch, training, data, measurement, suites or the runner.

Modules (data flows one way; the renderers build on the frame and not on each other):

* :mod:`bench.reporting.frame`: records -> pandas frame (``pd.json_normalize``), the
  de-duplication rule, the CSV, the device labels (CPU kernels are part of the device).
* :mod:`bench.reporting.markdown`: the Markdown leaderboard.
* :mod:`bench.reporting.plots`: mIoU vs latency / GFLOPs, per-class IoU heatmap, and
  :mod:`bench.reporting.qualitative`: the sample-prediction grid.
* :mod:`bench.reporting.papers`: ``PAPERS.md`` from ``papers.json`` (written by
  :mod:`bench.papers`, which measures).
* :mod:`bench.reporting.site`: the static web leaderboard ``site/`` (sortable tables,
  interactive figures, samples, per-record detail; offline, from the CSV's rows).
* :func:`write_report`: the one entry that writes the leaderboard files and figures.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from bench.errors import ConfigError
from bench.fileio import write_text_atomic
from bench.records import RunRecord
from bench.reporting._output import writing
from bench.reporting.frame import leaderboard_csv
from bench.reporting.markdown import render_markdown
from bench.reporting.plots import write_plots
from bench.reporting.semisup import write_semisup_plots
from bench.reporting.site import write_site

__all__ = ["write_report"]


def write_report(results_dir: Path | str, records: Sequence[RunRecord]) -> list[Path]:
    """Writes ``LEADERBOARD.md``, ``leaderboard.csv``, the figures under ``plots/`` and ``site/``.

    Every file is written atomically: a render killed half-way leaves each file old or new,
    never truncated. Files under ``plots/`` of other names are left alone.

    Args:
        results_dir: Directory the records were loaded from; outputs go here.
        records: Run records (e.g. :func:`bench.records.load_records` of ``results_dir``).

    Returns:
        The written paths: the Markdown file, the CSV file, then the PNGs in the order
        :func:`bench.reporting.plots.write_plots` returns them, then the site's files
        (:func:`bench.reporting.site.write_site`).

    Raises:
        ConfigError: ``records`` is empty, or a file cannot be written (read-only folder, a
            directory in its place); the message names the file and the fix.
        TypeError: An element of ``records`` is not a :class:`RunRecord`.
    """
    results_dir = Path(results_dir)
    if not records:
        raise ConfigError(
            f"no run records to render into {results_dir}; run `python run_bench.py run` first."
        )
    markdown = render_markdown(records, results_dir)  # rendered before anything is written
    csv_text = leaderboard_csv(records, results_dir)
    md_path = results_dir / "LEADERBOARD.md"
    csv_path = results_dir / "leaderboard.csv"
    for path, text in ((md_path, markdown), (csv_path, csv_text)):
        with writing(path):
            write_text_atomic(path, text)
    supervised = [r for r in records if r.semisup is None]
    plots = write_plots(supervised, results_dir) if supervised else []
    semisup_plots = write_semisup_plots(records, results_dir / "plots")
    site = write_site(results_dir, records, csv_text)
    return [md_path, csv_path, *plots, *semisup_plots, *site]
