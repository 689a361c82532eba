"""Ranking tables: which rows share a table, their order and their rank texts.

One ``(suite, dataset, setting)`` (:data:`GROUP`) is ranked in one table per speed device and
dtype (:func:`device_tables`); rows are ordered by :func:`rank_order` and get their rank texts
from :func:`table_ranks` (tie ranks: :mod:`bench.reporting.ties`). The Markdown
(:mod:`bench.reporting.ranking`), the CSV's ``rank`` column (:mod:`bench.reporting.frame`) and
the site all rank with these, so they agree.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from bench.reporting._format import NA, Row, is_ok, is_timed, missing
from bench.reporting.ties import PerImage, no_per_image, rank_texts

GROUP = ["suite", "dataset", "setting"]
"""The columns that make one leaderboard section (one ranking per device under it)."""

SEED_SPREAD = 0.0259
"""Seed spread of a short from-scratch run's mIoU (fraction): the root mean square of the sample
standard deviations over seeds 0, 1, 2 of five ``quick`` entries (64x64 synthetic, 60 steps):
BiSeNet 1.87, ENet 2.78, ERFNet 2.07, LinkNet 3.99, SegFormer-B0 1.47 points; measured with
``run --suite <quick with seed: N, speed off> --archs enet,erfnet,linknet,bisenet_r18,
segformer_b0`` on an AVX512 CPU (2026-12-06)."""
NOT_LEARNED = "not learned"
"""Rank text of a trained row within noise of its table's all-background baseline."""


def not_learned(row: Row, baseline_miou: float | None) -> bool:
    """Whether a model trained here is within noise of the baseline.

    Within noise: less than two seed spreads (:data:`SEED_SPREAD`) above it. Such a row is not
    ranked (its number says nothing about the architecture at this budget). Published weights
    and rows without a baseline never are.
    """
    if row["kind"] != "model" or baseline_miou is None or missing(row["miou"]):
        return False
    return float(row["miou"]) < baseline_miou + 2 * SEED_SPREAD


@dataclass(frozen=True, eq=False)
class Table:
    """One ranking table: its speed device and dtype (None: not timed) and its rows."""

    device: str | None
    dtype: str | None
    rows: list[Row]


def device_tables(rows: list[Row]) -> list[Table]:
    """Splits one (suite, dataset, setting) into ranking tables, one per (device, dtype)."""
    timed_keys = sorted(
        {(r["device"] or "", r["dtype"], r["device_type"]) for r in rows if is_timed(r)}
    )
    tables: list[Table] = []
    placed: set[int] = set()
    for device, dtype, kind in timed_keys:
        members = [
            r for r in rows if is_timed(r) and (r["device"] or "", r["dtype"]) == (device, dtype)
        ]
        ok_archs = {r["arch"] for r in members if is_ok(r)}
        for i, row in enumerate(rows):
            if not is_timed(row) and row["device_type"] == kind:
                placed.add(i)
                if row["arch"] not in ok_archs:
                    members.append(row)
        tables.append(Table(device or None, dtype, members))
    leftovers = [r for i, r in enumerate(rows) if not is_timed(r) and i not in placed]
    for device in sorted({r["device"] or "" for r in leftovers}):
        members = [r for r in leftovers if (r["device"] or "") == device]
        tables.append(Table(device or None, None, members))
    return tables


def rank_order(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows of one table in ranking order: ok with mIoU (highest first), ok without, failed.

    Args:
        rows: Frame rows as dicts (``report_frame(...).to_dict("records")``).

    Returns:
        The rows sorted; ties broken by arch, then run_id.
    """

    def key(row: dict[str, Any]) -> tuple[Any, ...]:
        miou = row["miou"]
        has = not pd.isna(miou)
        tier = 0 if row["status"] == "ok" and has else 1 if row["status"] == "ok" else 2
        return (tier, -miou if has else 0.0, row["arch"], row["run_id"])

    return sorted(rows, key=key)


def table_ranks(table: Table, per_image: PerImage = no_per_image) -> dict[str, str]:
    """The rank text of each row of a table, by run id, in :func:`rank_order`.

    ``baseline`` for baselines, :data:`NOT_LEARNED` for trained rows within noise of the
    baseline, tie ranks (:mod:`bench.reporting.ties`) for the other ok rows with an mIoU, and
    ``n/a`` for the rest.
    """
    rows = rank_order(table.rows)
    baselines = [r["miou"] for r in rows if r["kind"] == "baseline" and not missing(r["miou"])]
    baseline = float(max(baselines)) if baselines else None
    texts: dict[str, str] = {}
    ranked = []
    for row in rows:
        if row["kind"] == "baseline":
            texts[row["run_id"]] = "baseline"
        elif is_ok(row) and not_learned(row, baseline):
            texts[row["run_id"]] = NOT_LEARNED
        elif is_ok(row) and not missing(row["miou"]):
            ranked.append(row)
        else:
            texts[row["run_id"]] = NA
    ties = rank_texts([r["record"] for r in ranked], [r["miou"] for r in ranked], per_image)
    texts.update(zip([r["run_id"] for r in ranked], ties, strict=True))
    return texts


def rank_column(frame: pd.DataFrame, per_image: PerImage = no_per_image) -> list[str | None]:
    """The rank text of each row of a :func:`~bench.reporting.frame.report_frame` (the CSV's).

    A row is ranked in the first table of its ``(suite, dataset, setting)`` that lists it (a
    record without speed can be listed in several: see the module docstring); semi-supervised
    records, which no table ranks, get None.
    """
    ranks: dict[str, str] = {}
    supervised = frame[[r.semisup is None for r in frame["record"]]]
    for _, members in supervised.groupby(GROUP, sort=True):
        for tab in device_tables(members.to_dict("records")):
            for run_id, text in table_ranks(tab, per_image).items():
                ranks.setdefault(run_id, text)
    return [ranks.get(run_id) for run_id in frame["run_id"]]
