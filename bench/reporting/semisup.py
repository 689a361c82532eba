"""The semi-supervised section of the leaderboard and its figure, from records alone.

Records with a ``semisup`` section (the semi-supervised track, :mod:`bench.sweep_semisup`)
are left out of the ordinary ranking tables: their settings differ by method, labelled share
and seed. Here they are averaged over seeds per (suite, dataset, segmenter, method, share):
mIoU as mean ± standard deviation over seeds, and the **gain** over the supervised-only
record of the same segmenter, share and seed (the same labelled images and initialisation
seed), as the mean ± standard deviation of those paired differences. The figure draws mIoU
against the labelled share, one line per (segmenter, method), with the seed spread as error
bars: ``plots/<suite>__<dataset>__semisup.png``.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

from bench.records import RunRecord, latest_ok
from bench.reporting._figure import new_figure, save, slug

Key = tuple[str, str, str, str, str]  # suite, dataset, arch, method, share


def share_label(record: RunRecord) -> str:
    """``1/8``-style for fractions of one over a whole number, else the value; ``5/class``."""
    s = record.semisup
    assert s is not None
    if s.labelled_per_class is not None:
        return f"{s.labelled_per_class}/class"
    f = float(s.labelled_fraction or 0)
    inverse = 1 / f if f else 0
    return f"1/{round(inverse)}" if f and abs(inverse - round(inverse)) < 1e-9 else f"{f:g}"


def _share_value(record: RunRecord) -> float:
    s = record.semisup
    assert s is not None
    if s.labelled_fraction is not None:
        return float(s.labelled_fraction)
    return float(s.labelled_images or 0)


def semisup_records(records: Sequence[RunRecord]) -> list[RunRecord]:
    """The latest ok model record of each semi-supervised combination."""
    return [
        r
        for r in latest_ok(list(records)).values()
        if r.semisup is not None and r.kind == "model" and r.metrics is not None
    ]


def _spread(values: list[float]) -> tuple[float, float | None]:
    """Mean and sample standard deviation (None for one value: no spread is measured)."""
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else None


def summary(records: Sequence[RunRecord]) -> list[dict]:
    """One row per (suite, dataset, segmenter, method, share), seeds pooled, sorted."""
    by_key: dict[Key, dict[int, RunRecord]] = defaultdict(dict)
    for r in semisup_records(records):
        seed = r.env.seed if r.env is not None and r.env.seed is not None else 0
        key = (r.suite, r.dataset, r.arch, r.semisup.method, share_label(r))  # type: ignore[union-attr]
        by_key[key][int(seed)] = r
    rows = []
    for key, seeds in by_key.items():
        suite, dataset, arch, method, share = key
        mious = [100 * s.metrics.miou for s in seeds.values()]  # type: ignore[union-attr]
        base = by_key.get((suite, dataset, arch, "supervised", share), {})
        gains = [
            100 * (r.metrics.miou - base[seed].metrics.miou)  # type: ignore[union-attr]
            for seed, r in seeds.items()
            if seed in base and method != "supervised"
        ]
        first = next(iter(seeds.values()))
        seconds = [s.train.seconds for s in seeds.values() if s.train and s.train.seconds]
        rows.append(
            {
                "suite": suite, "dataset": dataset, "arch": arch, "method": method,
                "share": share, "share_value": _share_value(first), "seeds": sorted(seeds),
                "miou": _spread(mious), "gain": _spread(gains) if gains else None,
                "miou_ci95": first.metrics.miou_ci95 if len(seeds) == 1 else None,  # type: ignore[union-attr]
                "train_s": statistics.fmean(seconds) if seconds else None,
                "params_m": first.complexity.params / 1e6
                if first.complexity and first.complexity.params else None,
                "gflops": first.complexity.gflops if first.complexity else None,
                "title": first.arch_info.title if first.arch_info else arch,
            }
        )  # fmt: skip
    order = {"supervised": 0, "advsemi": 1, "gan_ss": 2, "decouplednet": 3}
    rows.sort(key=lambda x: (x["suite"], x["dataset"], x["share_value"], x["arch"],
                             order.get(x["method"], 9)))  # fmt: skip
    return rows


def _pm(
    pair: tuple[float, float | None] | None,
    signed: bool = False,
    ci95: Sequence[float] | None = None,
) -> str:
    """``mean ± std``; one seed: the value, with its bootstrap interval (``ci95``) if given."""
    if pair is None:
        return "-"
    mean, std = pair
    text = f"{mean:+.1f}" if signed else f"{mean:.1f}"
    if std is not None:
        return f"{text} ± {std:.1f}"
    if ci95 is not None:
        return f"{text} [{100 * ci95[0]:.1f}, {100 * ci95[1]:.1f}]"
    return text


def _num(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def semisup_section(records: Sequence[RunRecord]) -> list[str]:
    """The Markdown lines of the semi-supervised section (none without such records)."""
    rows = summary(records)
    if not rows:
        return []
    lines = [
        "## Semi-supervised track",
        "",
        "Each method trains the same steps as the supervised-only row of its segmenter at the "
        "same labelled share (the CPS convention), on the same labelled images (the split file "
        "each record names by sha256); evaluation is the suite's protocol. mIoU is the mean ± "
        "standard deviation over seeds; the gain is the mean ± standard deviation of the "
        "per-seed differences from the supervised-only run with the same seed. With one seed no "
        "spread is measured: the mIoU is that run's, with its 95% bootstrap interval over the "
        "test images where the record has one (what varies is which images were drawn, not "
        "the training), and the gain is one difference. Train seconds "
        "are this machine's wall time (methods add a discriminator or generator and extra "
        "forward passes).",
        "",
    ]
    groups: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for row in rows:
        groups[(row["suite"], row["dataset"])].append(row)
    for (suite, dataset), members in groups.items():
        lines += [
            f"### {suite} on {dataset}",
            "",
            "| labelled | segmenter | method | seeds | mIoU % | gain vs supervised-only (pp) "
            "| train s | params (M) | GFLOPs |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for r in members:
            lines.append(
                f"| {r['share']} | {r['title']} | {r['method']} | {len(r['seeds'])} "
                f"| {_pm(r['miou'], ci95=r['miou_ci95'])} | {_pm(r['gain'], signed=True)} "
                f"| {_num(r['train_s'], 0)} | {_num(r['params_m'], 2)} | {_num(r['gflops'], 2)} |"
            )
        lines += [
            "",
            f"![mIoU against labelled share](plots/{slug(suite)}__{slug(dataset)}__semisup.png)",
            "",
        ]
    return lines


def write_semisup_plots(records: Sequence[RunRecord], plots_dir: Path) -> list[Path]:
    """MIoU against the labelled share per (segmenter, method), one figure per suite and dataset."""
    groups: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for row in summary(records):
        groups[(row["suite"], row["dataset"])].append(row)
    written = []
    for (suite, dataset), rows in groups.items():
        fig = new_figure(8.4, 4.2)
        ax = fig.add_subplot()
        lines: dict[tuple[str, str], list[dict]] = defaultdict(list)
        for r in rows:
            lines[(r["title"], r["method"])].append(r)
        n = len(lines)
        for i, ((title, method), pts) in enumerate(sorted(lines.items())):
            pts.sort(key=lambda p: p["share_value"])
            shift = 2 ** (0.04 * (i - (n - 1) / 2))  # apart, so that error bars do not overlap
            ax.errorbar(
                [p["share_value"] * shift for p in pts], [p["miou"][0] for p in pts],
                yerr=[p["miou"][1] or 0.0 for p in pts], marker="o", capsize=3,
                linestyle="--" if method == "supervised" else "-", label=f"{title}: {method}",
            )  # fmt: skip
        shares = sorted({(r["share_value"], r["share"]) for r in rows})
        ax.set_xscale("log", base=2)
        ax.set_xticks([v for v, _ in shares], [label for _, label in shares])
        ax.minorticks_off()
        ax.set_xlabel("labelled share of the training split")
        ax.set_ylabel("mIoU (%), mean ± std over seeds (one seed: no bar)")
        ax.set_title(f"{suite} on {dataset}: semi-supervised vs supervised-only")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0))
        written.append(save(fig, plots_dir / f"{slug(suite)}__{slug(dataset)}__semisup.png"))
    return written
