"""What each command does: parse-free functions ``cmd_<name>(args) -> exit status``.

Each imports the harness modules it needs when it runs (so ``--help`` and cheap commands do not
import torch), calls them, and prints. User errors are raised as :class:`bench.errors.BenchError`
and reported by :func:`bench.cli.main`.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import sys
from typing import TYPE_CHECKING

from bench.cli.evaluation import cmd_eval
from bench.cli.folders import check_writable, write_leaderboard, written_summary

if TYPE_CHECKING:
    from bench.distributed_sweep import TorchrunJob
    from bench.suites import SuiteConfig


def load_plugins(paths: list[str]) -> None:
    """Loads installed entry points, then the ``--plugin`` files, into the registry."""
    from bench.plugins import load_entry_points, load_plugin

    load_entry_points()
    for path in paths:
        load_plugin(path)


def cmd_list(args: argparse.Namespace) -> int:
    """Prints the registered architectures, the datasets, the declared weights or the suites.

    Args:
        args: Parsed ``list`` arguments: ``what`` (archs, datasets, weights or suites), whether
            a weights file is on the search path (``present``, see :mod:`bench.weights`) and ``--format``
            (``json`` also shows the fixed metadata of file-backed datasets).

    Returns:
        0.
    """
    from tabulate import tabulate

    import architectures
    from bench.data import dataset_description, dataset_names
    from bench.suites import available_suites, load_suite

    if args.what == "archs":
        rows = [
            {
                "name": e.info.name,
                "title": e.info.title,
                "paper": e.info.paper,
                "year": e.info.year,
                "family": e.info.family,
                "input_divisor": e.info.input_divisor,
                "paper_params": e.info.paper_params,
                "source": e.source,
            }
            for e in architectures.entries()
        ]
    elif args.what == "datasets":
        rows = [
            _dataset_row(n, dataset_description(n), full=args.format == "json")
            for n in dataset_names()
        ]
    elif args.what == "weights":
        from bench.weights import find_weights

        rows = [
            {
                "name": w.name,
                "arch": w.arch,
                "dataset": w.dataset,
                "published": "; ".join(
                    f"{m.metric} {m.value:g} ({m.split}; {m.source})" for m in w.published
                ),
                "protocols": ", ".join(w.protocols()),
                "present": find_weights(w, getattr(args, "weights_dir", None)) is not None,
                "file": w.file,
            }
            for w in architectures.weights_entries()
        ]
    else:
        rows = []
        for n in available_suites():
            s = load_suite(n)
            rows.append(
                {
                    "name": n,
                    "dataset": s.dataset,
                    "setting": s.setting,
                    "archs": s.archs,
                    "description": s.description,
                }
            )
    if args.format == "json":
        print(json.dumps(rows, indent=1))
    else:
        print(tabulate(rows, headers="keys", tablefmt="github", disable_numparse=True))
    return 0


def _dataset_row(name: str, description: str, *, full: bool) -> dict[str, object]:
    """One `list datasets` row; file-backed datasets also show their fixed metadata."""
    from bench.data import file_dataset_names, file_dataset_spec

    if name not in file_dataset_names():
        row: dict[str, object] = {"name": name, "classes": "", "splits": "", "resolution": ""}
        return {**row, "description": description}
    spec = file_dataset_spec(name)
    info = spec.info
    res = info.eval_resolution
    row = {
        "name": name,
        "classes": info.num_classes,
        "splits": ",".join(info.splits),
        "resolution": f"{res[0]}x{res[1]}" if res else "native (varies)",
        "description": description,
    }
    if full:
        row.update(
            {
                "title": info.title,
                "class_names": list(info.class_names),
                "palette": [list(c) for c in info.palette],
                "ignore_index": info.ignore_index,
                "mean": list(info.mean),
                "std": list(info.std),
                "labels": spec.codec.description,
                "official_counts": dict(spec.expected_counts),
                "protocol": spec.protocol.to_dict(),
                "layout": spec.layout,
                "citation": info.citation,
            }
        )
    return row


def cmd_run(args: argparse.Namespace) -> int:
    """Runs a suite's sweep into ``--results-dir``, then renders the leaderboard.

    Under torchrun (``WORLD_SIZE``, ``RANK`` and ``LOCAL_RANK`` set) every process runs the
    sweep together (:mod:`bench.distributed_sweep`); rank 0 alone prints and writes.

    Args:
        args: Parsed ``run`` arguments. With ``--shard i/n`` only that shard's combinations run
            and no leaderboard is rendered (the message says how, once every shard is done).

    Returns:
        0; 1 when an architecture failed (its error record is written and listed); 130 when
        interrupted (the message names what finished and the ``--resume`` command).

    Raises:
        ConfigError: A bad suite, an ``--archs`` name not in the suite, a folder that cannot
            be written, or an option a torchrun job cannot run.
        ArchitectureError: An unknown ``--archs`` name (with close matches).
    """
    from bench.distributed_sweep import torchrun_job
    from bench.suites import load_suite

    suite = load_suite(args.suite)
    if args.seeds:
        suite = dataclasses.replace(suite, seeds=list(args.seeds))
    variants = suite.variants()  # one per seed and semi-supervised method and share
    job = torchrun_job(
        suite, device=args.device, timeout_per_arch=args.timeout_per_arch, shard=args.shard
    )
    with job if job is not None else contextlib.nullcontext():
        codes = []
        for i, variant in enumerate(variants):
            if len(variants) > 1:
                print(f"[{i + 1}/{len(variants)}] {variant.setting}")
            codes.append(_run_suite(args, variant, job, render=i == len(variants) - 1))
            if codes[-1] == 130:
                return 130
        return max(codes)


def _run_suite(
    args: argparse.Namespace, suite: SuiteConfig, job: TorchrunJob | None, render: bool = True
) -> int:
    """:func:`cmd_run` for one concrete suite (the torchrun job, if any, started).

    ``render``: regenerate the leaderboard afterwards (the last variant of a suite does).
    """
    import architectures
    from bench.distributed_sweep import DistributedSweep
    from bench.errors import ConfigError
    from bench.provenance import command_line
    from bench.records import load_records
    from bench.runner import Sweep, SweepInterrupted
    from bench.suites import with_backbone_weights
    from bench.sweep_semisup import semisup_archs

    if suite.weights:
        return _run_published(args, suite)
    archs = suite.arch_names(architectures.names())
    if args.archs:
        unknown = [a for a in args.archs if a not in archs]
        for a in unknown:
            architectures.get_entry(a)  # unknown name: raises with close matches
        if unknown:
            raise ConfigError(
                f"--archs {','.join(unknown)} not in suite {suite.name!r} "
                f"(its architectures: {', '.join(archs)})."
            )
        archs = [a for a in archs if a in args.archs]
    archs = semisup_archs(suite.semisup, archs)  # those the suite's method can train
    if not archs:
        return 0
    if args.backbone_weights:
        suite = with_backbone_weights(suite, args.backbone_weights, archs)
    check_writable(args.results_dir, "--results-dir")
    if args.save_checkpoints is not None:
        check_writable(args.save_checkpoints, "--save-checkpoints")
    options = dict(
        results_dir=args.results_dir,
        device=args.device if job is None else job.device,
        command=command_line(args.argv),
        progress=not args.quiet,
        checkpoint_dir=args.save_checkpoints,
        timeout_per_arch=args.timeout_per_arch,
        tensorboard=args.tensorboard,
    )
    if job is None:
        sweep = Sweep(suite, **options)
    else:
        sweep = DistributedSweep(suite, ranks=job.ranks, **options)
    if suite.archs == "all" and not args.archs:
        archs = _buildable(archs, sweep.info.num_classes, suite.dataset)
    print(
        f"suite {suite.name}: {len(archs)} architectures on {suite.dataset} "
        f"({suite.setting}) on {sweep.device}; records -> {args.results_dir / 'records'}"
    )
    try:
        summary = sweep.run(archs, resume=args.resume, shard=args.shard)
    except SweepInterrupted as stop:
        done = stop.summary.finished
        print(
            f"\ninterrupted: {len(done)} of {len(stop.summary.planned)} combination(s) finished"
            f"{' (' + ', '.join(done) + ')' if done else ''}; their records are in "
            f"{args.results_dir / 'records'}. Continue with: {command_line(args.argv)} --resume",
            file=sys.stderr,
        )
        return 130
    if summary.skipped:
        print(
            f"resumed: skipped {len(summary.skipped)} with ok records: {', '.join(summary.skipped)}"
        )
    for arch, step in summary.resumed:
        print(f"resumed: {arch} continued training from its saved state at step {step}")
    for arch, holder in summary.busy:
        print(f"not run: {arch} is being run into this folder by {holder}", file=sys.stderr)
    if args.shard:
        i, n = args.shard
        print(
            f"shard {i}/{n}: ran {len(summary.written)} combination(s); "
            f"{len(summary.not_in_shard)} belong to other shards. Once every shard is done: "
            f"`python run_bench.py leaderboard --results-dir {args.results_dir}` (one shared "
            f"folder) or `python run_bench.py merge DIR... --into DIR`."
        )
    elif render and (job is None or job.ranks.is_main):
        written = write_leaderboard(args.results_dir, load_records(args.results_dir))
        print(f"leaderboard: {written_summary(written)}")
    if summary.failed:
        print(f"\n{len(summary.failed)} of {len(archs)} architectures FAILED:", file=sys.stderr)
        for arch, msg in summary.failed:
            print(f"  {arch}: {msg}", file=sys.stderr)
        return 1
    return 0


def _run_published(args: argparse.Namespace, suite: SuiteConfig) -> int:
    """``run`` of a suite with ``weights``: score each published model; 1 if any failed."""
    import torch

    from bench.devices import resolve_device
    from bench.loaded import run_published
    from bench.provenance import command_line
    from bench.records import load_records

    check_writable(args.results_dir, "--results-dir")
    if suite.threads is not None:
        torch.set_num_threads(suite.threads)
    names = suite.weights_names()
    print(
        f"suite {suite.name}: {len(names)} published weights on {suite.dataset} {suite.eval.split}"
    )
    outcomes = run_published(
        suite,
        results_dir=args.results_dir,
        device=str(resolve_device(args.device)),
        command=command_line(args.argv),
        progress=not args.quiet,
    )
    for name, error in outcomes:
        print(f"  {name}: {'ok' if error is None else 'error: ' + error.splitlines()[0]}")
    for path in write_leaderboard(args.results_dir, load_records(args.results_dir)):
        print(path)
    return 1 if any(error is not None for _, error in outcomes) else 0


def _buildable(archs: list[str], num_classes: int, dataset: str) -> list[str]:
    """``archs`` without the entries that cannot be built with ``num_classes``.

    For ``archs: all`` only: an entry a suite names is run, and its build error recorded.
    """
    import architectures

    small = [a for a in archs if architectures.get_info(a).min_num_classes > num_classes]
    for a in small:
        print(
            f"not run: {a} needs at least {architectures.get_info(a).min_num_classes} classes "
            f"(ArchInfo.min_num_classes); {dataset} has {num_classes} here"
        )
    return [a for a in archs if a not in small]


def cmd_leaderboard(args: argparse.Namespace) -> int:
    """Re-renders LEADERBOARD.md, the CSV and the plots from the stored records alone.

    Args:
        args: Parsed ``leaderboard`` arguments (``--results-dir``).

    Returns:
        0 (the written files are printed).

    Raises:
        MissingFileError: ``--results-dir`` has no records folder.
        RecordError: A record file is not a valid record.
        ConfigError: The report cannot be written there, or there are no records.
    """
    from bench.records import load_records

    written = write_leaderboard(args.results_dir, load_records(args.results_dir))
    for path in written:
        print(path)
    return 0


def cmd_papers(args: argparse.Namespace) -> int:
    """Measures every (or each named) architecture under its paper's conditions.

    Writes ``papers.json`` (:mod:`bench.papers`) and renders ``PAPERS.md`` from it
    (:mod:`bench.reporting.papers`); with ``--render-only`` only re-renders.

    Args:
        args: Parsed ``papers`` arguments.

    Returns:
        0, or 1 when an architecture could not be measured (its row holds the message).
    """
    from bench.reporting.papers import PAPERS_JSON, render_papers

    if args.render_only:
        print(render_papers(args.results_dir))
        return 0
    import architectures
    from bench.papers import measure, write_papers

    names = args.archs or architectures.names()
    for name in names:
        architectures.get_info(name)  # unknown names fail before any measuring
    check_writable(args.results_dir, "--results-dir")
    rows = measure(names, progress=not args.quiet)
    print(write_papers(args.results_dir, rows, argv=args.argv))
    print(render_papers(args.results_dir))
    failed = [r["arch"] for r in rows if r["status"] != "ok"]
    if failed:
        print(
            f"error: could not measure {len(failed)} architecture(s): {', '.join(failed)} "
            f"(messages in {args.results_dir / PAPERS_JSON})",
            file=sys.stderr,
        )
        return 1
    return 0


def cmd_profile(args: argparse.Namespace) -> int:
    """Counts parameters and MACs of one architecture at one input shape (``--speed``: times it).

    ``params`` are those the counted eval forward pass reads (the network the MACs describe);
    ``params with aux`` adds the auxiliary heads that only run in training.

    Args:
        args: Parsed ``profile`` arguments.

    Returns:
        0.

    Raises:
        ConfigError: The input shape's channel count is not the entry's ``in_channels``
            (checked before anything is built), or another option is invalid.
    """
    from tabulate import tabulate

    import architectures
    from bench import complexity as cx
    from bench import speed as sp
    from bench.devices import resolve_device
    from bench.errors import ConfigError
    from bench.models import build_model

    info = architectures.get_info(args.arch)
    shape = list(args.input_shape)
    if shape[1] != info.in_channels:
        expected = ",".join(map(str, [shape[0], info.in_channels, *shape[2:]]))
        raise ConfigError(
            f"--input-shape {','.join(map(str, shape))}: {args.arch} takes "
            f"{info.in_channels}-channel input (ArchInfo.in_channels), found C={shape[1]}. "
            f"Pass --input-shape {expected}."
        )
    device = resolve_device(args.device)
    model = build_model(args.arch, num_classes=args.num_classes).eval()
    report = cx.count_complexity(model, args.input_shape)
    out: dict[str, object] = {"arch": args.arch, "complexity": report.to_dict()}
    if args.speed:
        n, c, h, w = args.input_shape
        # profile's timing budget (measure_speed's keyword defaults before SpeedConfig).
        config = sp.SpeedConfig(
            warmup=5, min_iters=10, max_iters=200, min_time_s=1.0, max_batch=64, dtype=args.dtype
        )
        speed = sp.measure_speed(
            model, (c, h, w), config, gmacs_per_image=report.gmacs / n, device=device
        )
        out["speed"] = speed.to_dict()
    if args.format == "json":
        print(json.dumps(out, indent=1))
        return 0
    rows = [
        ("params (eval network)", f"{report.params:,}"),
        ("trainable params", f"{report.trainable_params:,}"),
        ("params with aux", f"{report.params_with_aux:,}"),
        ("MACs", f"{report.macs:,}"),
        ("GMACs", f"{report.gmacs:.3f}"),
        ("GFLOPs (2 x GMACs)", f"{report.gflops:.3f}"),
        ("input shape", "x".join(map(str, args.input_shape))),
        ("counter", f"{report.counter} {report.counter_version}"),
        (
            "cross-check GMACs",
            f"{report.crosscheck_macs / 1e9:.3f} (rel. diff {100 * report.rel_diff:.2f}%)",
        ),
        (
            "skipped operators",
            ", ".join(f"{k} x{v}" for k, v in sorted(report.unsupported_ops.items())) or "none",
        ),
    ]
    if args.speed:
        s = out["speed"]
        rows += [
            ("device", f"{s['device']} ({s['device_name']}, {s['dtype']})"),
            (
                "latency p50 / p90 (ms)",
                f"{s['latency_ms']['p50']:.2f} / {s['latency_ms']['p90']:.2f}",
            ),
            (
                "throughput (img/s)",
                f"{s['throughput_ips']:.1f} at batch {s['throughput_batch_size']}",
            ),
            (
                "efficiency",
                f"{100 * s['efficiency']:.1f}% of {s['matmul_gflops_per_s']:.0f} GFLOP/s matmul",
            ),
        ]
    print(tabulate(rows, tablefmt="github", headers=["", args.arch]))
    return 0


def cmd_data(args: argparse.Namespace) -> int:
    """Checks a file-backed dataset on disk and prints every problem found (``data check``).

    Args:
        args: Parsed ``data check`` arguments.

    Returns:
        0 when the data is complete and sound, 1 when a problem was found.

    Raises:
        ConfigError: An unknown or not file-backed dataset, or an unknown split (problems of
            the data itself are reported, not raised).
    """
    from bench.data.check import check_dataset

    report = check_dataset(args.dataset, args.data_root, args.split, progress=not args.quiet)
    print(report.format())
    if args.json:
        from bench.fileio import write_json_atomic

        write_json_atomic(args.json, report.to_dict())
        print(f"wrote {args.json}")
    return 0 if report.ok else 1


def cmd_score(args: argparse.Namespace) -> int:
    """Scores a folder of predicted label PNGs against a dataset split and prints the metrics.

    Args:
        args: Parsed ``score`` arguments.

    Returns:
        0 (PNGs that match no image of the split are counted in a note on stderr).

    Raises:
        BenchError: A missing folder, a broken dataset, or missing or malformed predictions
            (see :func:`bench.scoring.score_predictions`).
    """
    from bench.scoring import score_predictions

    result = score_predictions(
        args.dataset,
        root=args.data_root,
        split=args.split,
        pred_dir=args.pred_dir,
        progress=not args.quiet,
    )
    metrics = result.metrics.to_dict()
    print(f"{args.dataset} {args.split}: {result.num_images} images scored from {args.pred_dir}")
    for key in ("miou", "pixel_acc", "mean_acc", "fwiou", "mean_dice"):
        v = metrics[key]
        print(f"{key:>10}: {'n/a' if v is None else f'{100 * v:.2f} %'}")
    if result.unmatched:
        print(
            f"note: {len(result.unmatched)} .png file(s) in {args.pred_dir} match no image of "
            f"the split and were not scored (e.g. {result.unmatched[0]})",
            file=sys.stderr,
        )
    if args.json:
        from bench.fileio import write_json_atomic

        write_json_atomic(args.json, result.to_dict())
        print(f"wrote {args.json}")
    return 0


def cmd_baseline(args: argparse.Namespace) -> int:
    """Writes a suite's regression baseline from the newest records in ``--results-dir``.

    Args:
        args: Parsed ``baseline`` arguments (``--out`` defaults to
            ``results/baselines/<suite>.json``).

    Returns:
        0.

    Raises:
        ConfigError: An architecture of the suite has no ok record of its current setting.
    """
    import architectures
    from bench.fileio import write_json_atomic
    from bench.provenance import command_line
    from bench.records import load_records
    from bench.regression import default_baseline_path, make_baseline
    from bench.suites import load_suite

    suite = load_suite(args.suite)
    baseline = make_baseline(
        load_records(args.results_dir),
        suite=suite.name,
        dataset=suite.dataset,
        setting=suite.setting,
        archs=suite.arch_names(architectures.names()),
        command=command_line(args.argv),
    )
    out = args.out or default_baseline_path(suite.name)
    write_json_atomic(out, baseline)
    print(
        f"wrote {out}: {len(baseline['archs'])} entries of suite {suite.name} "
        f"({suite.setting}) from {args.results_dir}"
    )
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    """Compares the records in ``--results-dir`` with a suite's baseline (the regression gate).

    Prints a verdict per architecture and metric, notes on what was not compared, PASS/FAIL.

    Args:
        args: Parsed ``check`` arguments.

    Returns:
        0 on PASS; 1 on a regression, a missing architecture or an error record.

    Raises:
        ConfigError: The baseline belongs to another suite or setting, or a tolerance is
            negative.
        MissingFileError: No baseline file (the message says how to write one).
        RecordError: The baseline or a record file is not valid.
    """
    from bench.errors import ConfigError
    from bench.records import load_records
    from bench.regression import check, default_baseline_path, load_baseline, parse_tolerance
    from bench.suites import load_suite

    suite = load_suite(args.suite)
    path = args.baseline or default_baseline_path(suite.name)
    baseline = load_baseline(path)
    if baseline["suite"] != suite.name:
        raise ConfigError(
            f"--baseline {path} is for suite {baseline['suite']!r}, not {suite.name!r}."
        )
    result = check(
        load_records(args.results_dir),
        baseline,
        tol_miou_pp=args.tol_miou,
        tol_miou_cross_cpu_pp=args.tol_miou_other_cpu,
        tol_speed=parse_tolerance(args.tol_speed),
        setting=suite.setting,
    )
    print(
        f"baseline {path} vs records in {args.results_dir} (tolerances: mIoU "
        f"{args.tol_miou:g} pp on the same CPU kernels, {args.tol_miou_other_cpu:g} pp on "
        f"others; normalised latency {args.tol_speed})"
    )
    print(result.table())
    for note in result.notes:
        print(f"note: {note}")
    print(result.summary(), file=sys.stderr if result.failed else sys.stdout)
    return 1 if result.failed else 0


def cmd_merge(args: argparse.Namespace) -> int:
    """Merges the records (and samples) of results folders into ``--into``, then its report.

    Args:
        args: Parsed ``merge`` arguments (``--no-leaderboard``: no report).

    Returns:
        0; 1 on a conflict (printed on stderr): one run id with different contents (the
        first copy is kept), or ok runs of one combination in different folders that disagree
        on mIoU (the newest is kept).

    Raises:
        ConfigError: ``--into`` cannot be written.
        MissingFileError: A source has no records folder.
        RecordError: A record file is corrupt (nothing has been written then).
    """
    from bench.merge import merge_results
    from bench.records import load_records

    check_writable(args.into, "--into")
    report = merge_results(args.sources, args.into)
    for line in report.lines():
        print(line, file=sys.stderr if line.startswith("CONFLICT") else sys.stdout)
    if not args.no_leaderboard:
        written = write_leaderboard(args.into, load_records(args.into), "--into")
        print(f"leaderboard: {written_summary(written)}")
    return 1 if report.conflicts else 0


def cmd_upgrade_records(args: argparse.Namespace) -> int:
    """Rewrites the older records of ``--results-dir`` in the current schema.

    Args:
        args: Parsed ``upgrade-records`` arguments (``--results-dir``).

    Returns:
        0; 1 when a record could not be upgraded (left as it was; the reason is printed).

    Raises:
        ConfigError: ``--results-dir`` cannot be written.
    """
    from bench.migrate import migrate_results
    from bench.provenance import command_line

    check_writable(args.results_dir, "--results-dir")
    report = migrate_results(args.results_dir, command_line(args.argv))
    print(
        f"{args.results_dir}: {len(report.upgraded)} record(s) upgraded, {report.current} "
        f"already current, {len(report.refused)} left as they were"
    )
    for run_id, old, new in report.params_changed:
        print(f"  {run_id}: params {old:,} -> {new:,} (the network as evaluated)")
    for run_id, why in report.refused:
        print(f"  not upgraded: {run_id}: {why}", file=sys.stderr)
    return 1 if report.refused else 0


COMMANDS = {
    "list": cmd_list,
    "run": cmd_run,
    "leaderboard": cmd_leaderboard,
    "eval": cmd_eval,
    "profile": cmd_profile,
    "papers": cmd_papers,
    "data": cmd_data,
    "score": cmd_score,
    "baseline": cmd_baseline,
    "check": cmd_check,
    "merge": cmd_merge,
    "upgrade-records": cmd_upgrade_records,
}
"""Command name -> function; :func:`bench.cli.parser.build_parser` describes the same names."""
