"""Integrity check of a dataset on disk (``python run_bench.py data check``).

Walks every sample of the chosen splits with the loader's own functions (so a problem reported
here is reported with the same words when a run loads the dataset) and decodes every image and
label fully. The report holds, per split, the sample count against the official one, the image
sizes and the label histogram (pixels per class after the dataset's label mapping, plus ignored
pixels), and the list of problems, each naming its file: missing root or split folder (with the
expected tree), unpaired files, unreadable or truncated files, image/label size mismatches,
colour labels, and label values that are neither a class nor ignored.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from bench.data.decoding import class_histogram
from bench.data.problems import Problem, errors
from bench.data.registry import file_dataset_spec
from bench.data.spec import FileDatasetSpec
from bench.data.verify import PairStats, check_pair
from bench.errors import ConfigError


@dataclass
class SplitReport:
    """What was found in one split."""

    split: str
    num_samples: int
    expected: int | None
    image_sizes: dict[str, int]  # "WxH" -> samples, most common first
    class_pixels: list[int]  # pixels per class id, after the label mapping
    ignored_pixels: int
    raw_values: dict[int, int]  # pixels per raw label value as stored

    def to_dict(self) -> dict[str, Any]:
        """The split report as a JSON-ready dict."""
        return dataclasses.asdict(self)


@dataclass
class CheckReport:
    """The result of :func:`check_dataset`."""

    dataset: str
    root: str
    class_names: list[str]
    splits: list[SplitReport] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """No errors (warnings allowed)."""
        return not errors(self.problems)

    def to_dict(self) -> dict[str, Any]:
        """The report as a JSON-ready dict (what ``data check --json`` writes)."""
        return {
            "dataset": self.dataset,
            "root": self.root,
            "ok": self.ok,
            "class_names": self.class_names,
            "splits": [s.to_dict() for s in self.splits],
            "problems": [p.to_dict() for p in self.problems],
        }

    def format(self) -> str:
        """A plain-text report (tables via tabulate)."""
        from tabulate import tabulate

        lines = [f"{self.dataset} at {self.root}"]
        if self.splits:
            rows = []
            for s in self.splits:
                sizes = list(s.image_sizes.items())
                shown = ", ".join(f"{k} ({v})" for k, v in sizes[:3])
                if len(sizes) > 3:
                    shown += f", +{len(sizes) - 3} more sizes"
                rows.append(
                    [
                        s.split,
                        s.num_samples,
                        "?" if s.expected is None else s.expected,
                        shown or "-",
                    ]
                )
            lines += [
                "",
                tabulate(
                    rows,
                    headers=["split", "samples", "official", "image sizes (W x H)"],
                    tablefmt="github",
                ),
            ]
            hist = [
                [name, *(s.class_pixels[i] for s in self.splits)]
                for i, name in enumerate(self.class_names)
            ]
            hist.append(["(ignored)", *(s.ignored_pixels for s in self.splits)])
            lines += [
                "",
                "label histogram (pixels per class after the label mapping):",
                tabulate(
                    hist,
                    headers=["class", *(s.split for s in self.splits)],
                    tablefmt="github",
                    intfmt=",",
                ),
            ]
        n_err = len(errors(self.problems))
        n_warn = len(self.problems) - n_err
        if not self.problems:
            lines += ["", "problems: none"]
        else:
            lines += ["", f"problems: {n_err} error(s), {n_warn} warning(s)"]
            for p in self.problems:
                where = f"[{p.severity}{', ' + p.split if p.split else ''}] "
                lines.append(where + p.message.replace("\n", "\n    "))
        return "\n".join(lines)


def check_dataset(
    name: str,
    root: str | Path | None,
    splits: Sequence[str] | None = None,
    *,
    progress: bool = False,
) -> CheckReport:
    """Check the splits of a file-backed dataset (all of its splits by default).

    Args:
        name: A file-backed dataset.
        root: Its data root (a missing root is reported, not raised).
        splits: The splits to check (None or empty: all of them).
        progress: Show a progress bar per split.

    Returns:
        The report: per split the sample count, image sizes and label histogram, and every
        problem found.

    Raises:
        ConfigError: ``name`` is unknown or not file-backed, or a split is unknown. Problems of
            the data itself are returned in the report, not raised.
    """
    spec = file_dataset_spec(name)
    splits = list(splits) if splits else list(spec.info.splits)
    for split in splits:
        if split not in spec.info.splits:
            raise ConfigError(
                f"{name}: unknown split {split!r}; valid splits are {', '.join(spec.info.splits)}."
            )
    report = CheckReport(dataset=name, root=str(root), class_names=list(spec.info.class_names))
    root_problem = spec.root_problem(root)
    if root_problem is not None:
        report.problems.append(root_problem)
        return report
    data_root = spec.locate(root)
    report.root = str(data_root)
    for split in splits:
        split_report, problems = _check_split(spec, data_root, split, progress)
        report.problems += problems
        if split_report is not None:
            report.splits.append(split_report)
    return report


def _check_split(
    spec: FileDatasetSpec, root: Path, split: str, progress: bool
) -> tuple[SplitReport | None, list[Problem]]:
    index = spec.split_index(root, split)
    problems = [p if p.split else dataclasses.replace(p, split=split) for p in index.problems]
    if not index.pairs:
        return None, problems
    stats: list[PairStats] = []
    for pair in tqdm(
        index.pairs,
        desc=f"check {spec.name} {split}",
        disable=not progress,
        leave=False,
        unit="img",
    ):
        problems += [dataclasses.replace(p, split=split) for p in check_pair(spec, pair, stats)]
    raw = np.zeros(256, dtype=np.int64)
    sizes: Counter[str] = Counter()
    for s in stats:
        raw += s.raw_hist
        sizes[f"{s.size[0]}x{s.size[1]}"] += 1
    classes, ignored = class_histogram(
        raw, spec.codec, spec.info.num_classes, spec.info.ignore_index
    )
    report = SplitReport(
        split=split,
        num_samples=len(index.pairs),
        expected=spec.expected_counts.get(split),
        image_sizes=dict(sizes.most_common()),
        class_pixels=classes.tolist(),
        ignored_pixels=ignored,
        raw_values={int(v): int(raw[v]) for v in np.flatnonzero(raw)},
    )
    return report, problems
