"""The published-weights sections of the leaderboard, rendered from ``loaded`` records alone.

A group whose records all evaluate published weights is titled by what it is ("CamVid (SegNet
release) test: published checkpoints"), and "Published figures vs measured" lists every such
record with the authors' figure, its source, ours and the difference, the way ``PAPERS.md``
lists paper params against ours.
"""

from __future__ import annotations

from collections.abc import Sequence

from bench.records import RunRecord
from bench.reporting._format import NA, Row, arch_label, cell, fmt, is_ok, md_table, signed_points

AUTHORS_SUFFIX = "-authors"
"""Setting ids of weights scored under their authors' own protocol end so
(``bench.suites.published_setting``)."""


def is_published_group(rows: Sequence[Row]) -> bool:
    """Whether every row of a ``(suite, dataset, setting)`` evaluates published weights."""
    return bool(rows) and all(r["kind"] == "loaded" for r in rows)


def group_title(suite: str, dataset: str, setting: str, rows: Sequence[Row]) -> str:
    """The ``##`` heading of a group: named for what it holds when it is published weights.

    Args:
        suite: The suite name.
        dataset: The dataset name.
        setting: The setting id.
        rows: The group's rows.

    Returns:
        The heading line.
    """
    if not is_published_group(rows):
        return f"## {suite} / {dataset} (setting `{setting}`)"
    record: RunRecord = rows[0]["record"]
    title = (
        record.dataset_info.title if record.dataset_info and record.dataset_info.title else dataset
    )
    split = record.protocol.split if record.protocol and record.protocol.split else ""
    what = "published checkpoints"
    if setting.endswith(AUTHORS_SUFFIX):
        what += ", their authors' own protocol (not comparable with the standard rows)"
    return f"## {title} {split}: {what} (suite `{suite}`, setting `{setting}`)".replace("  ", " ")


def _figure(record: RunRecord) -> tuple[str, str]:
    figures = record.weights.published if record.weights is not None else ()
    miou = next((m for m in figures if m.metric == "miou"), None)
    if miou is None:
        return NA, ""
    split = f"{miou.split}; " if miou.split else ""
    return f"{miou.value:.1f}", f"{split}{miou.source}"


def published_section(rows: Sequence[Row]) -> list[str]:
    """The "published figures vs measured" section: every ok ``loaded`` record.

    Args:
        rows: All rows of the leaderboard frame.

    Returns:
        Markdown lines (none when no published weights were evaluated).
    """
    loaded = [r for r in rows if r["kind"] == "loaded" and is_ok(r)]
    if not loaded:
        return []
    loaded.sort(key=lambda r: (r["weights"] or "", r["setting"], r["suite"]))
    cells = []
    for row in loaded:
        record: RunRecord = row["record"]
        published, source = _figure(record)
        protocol = "authors'" if row["setting"].endswith(AUTHORS_SUFFIX) else "standard"
        sha = record.weights.sha256[:12] if record.weights is not None else NA
        cells.append(
            [
                arch_label(row),
                f"{row['dataset']} {record.protocol.split if record.protocol else ''}".strip(),
                f"{protocol} (`{row['setting']}`)",
                published,
                fmt(row["miou"], 2, 100.0),
                signed_points(row["miou"], row["published_miou"]),
                cell(source),
                f"`{sha}`",
            ]
        )
    headers = [
        "weights",
        "dataset split",
        "protocol (setting)",
        "published mIoU %",
        "measured mIoU %",
        "measured - published (points)",
        "where the figure is published",
        "file sha256",
    ]
    align = ["left", "left", "left", "right", "right", "right", "left", "left"]
    return [
        "## Published figures vs measured",
        "",
        "Published weights loaded and scored here (`eval --weights`, or a suite with `weights:`), "
        "against the figure their authors published. *standard*: the dataset's protocol (labels "
        "as loaded, void ignored), with the authors' preprocessing, input size and logits "
        "interpolation; *authors'*: their own scoring where it differs (see each weights' "
        "notes in `python run_bench.py list weights`).",
        "",
        md_table(headers, cells, align),
        "",
    ]
