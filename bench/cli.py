"""Command-line interface: parses arguments and calls the harness (no logic of its own)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

EPILOG = """\
examples:
  python run_bench.py                          # = run --suite quick (CUDA if present, else CPU)
  python run_bench.py list archs --format json
  python run_bench.py run --suite smoke --results-dir /tmp/res
  python run_bench.py run --suite quick --archs fcn8s,tv_lraspp_mobilenet_v3_large
  python run_bench.py run --suite quick --plugin my_arch.py --archs my_arch
  python run_bench.py leaderboard              # re-render results/ from stored records only
  python run_bench.py eval --arch fcn8s --dataset synthetic --checkpoint fcn8s.pt
  python run_bench.py profile --arch fcn8s --input-shape 1,3,512,512 --speed
  python run_bench.py data check --dataset camvid --data-root ../shared/datasets/camvid
  python run_bench.py score --dataset camvid --data-root DIR --split test --pred-dir preds/
  python run_bench.py run --suite quick --shard 2/3 --results-dir shared/res  # 1 of 3 machines
  python run_bench.py merge host1/results host2/results --into results
  python run_bench.py baseline --suite smoke   # results/baselines/smoke.json from the records
  python run_bench.py check --suite smoke --baseline results/baselines/smoke.json

Records: results/records/*.json (one per run; schema in bench/records/schema.py).
Leaderboard: results/LEADERBOARD.md, results/leaderboard.csv, results/plots/*.png.
"""


def _csv(value: str) -> list[str]:
    items = [v.strip() for v in value.split(",") if v.strip()]
    if not items:
        raise argparse.ArgumentTypeError("expected a comma-separated list of names; got nothing")
    return items


def _shape(value: str) -> tuple[int, int, int, int]:
    try:
        parts = tuple(int(v) for v in value.split(","))
    except ValueError:
        parts = ()
    if len(parts) != 4 or min(parts) < 1:
        raise argparse.ArgumentTypeError(
            f"expected N,C,H,W as four positive integers (e.g. 1,3,512,512); got {value!r}"
        )
    return parts  # type: ignore[return-value]


def _shard(value: str) -> tuple[int, int]:
    from bench.shards import parse_shard

    try:
        return parse_shard(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _add_plugin(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--plugin",
        action="append",
        default=[],
        metavar="FILE.py",
        help="import a Python file whose @register entries join the registry "
        "(repeatable; plugins are code: load only what you trust)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="run_bench.py",
        description="semseg-bench: measure segmentation architectures the same way "
        "(mIoU, pixel accuracy, FLOPs, params, latency, throughput, memory), "
        "record every run, render leaderboards.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser(
        "list",
        help="list architectures, datasets or suites",
        description="List registered architectures (with paper, year, family), "
        "datasets or built-in suites.",
    )
    p.add_argument("what", nargs="?", default="archs", choices=["archs", "datasets", "suites"])
    p.add_argument("--format", default="table", choices=["table", "json"])
    _add_plugin(p)

    p = sub.add_parser(
        "run",
        help="run a suite and regenerate the leaderboard",
        description="Run a suite: for each architecture count complexity, train "
        "for the suite's steps, evaluate, time it, and write one "
        "record; then regenerate the leaderboard and plots.",
    )
    p.add_argument(
        "--suite",
        default="quick",
        help="built-in suite name (see `list suites`) or path to a .yaml file (default: quick)",
    )
    p.add_argument(
        "--archs",
        type=_csv,
        default=None,
        help="comma-separated subset of the suite's architectures",
    )
    p.add_argument(
        "--device", default="auto", help="auto (CUDA when available, else CPU), cpu, or cuda[:N]"
    )
    p.add_argument("--results-dir", type=Path, default=Path("results"))
    p.add_argument(
        "--resume",
        action="store_true",
        help="skip architectures that already have an ok record for this suite and setting",
    )
    p.add_argument(
        "--save-checkpoints",
        type=Path,
        default=None,
        metavar="DIR",
        help="also save each trained model as DIR/<arch>.pt",
    )
    p.add_argument(
        "--shard",
        type=_shard,
        default=None,
        metavar="I/N",
        help="run shard I of N (1-based): a deterministic round-robin slice of the "
        "suite's combinations, for job arrays; the leaderboard is then left to "
        "`leaderboard` or `merge` once every shard is done",
    )
    p.add_argument(
        "--timeout-per-arch",
        type=float,
        default=None,
        metavar="SECONDS",
        help="end an architecture that takes longer as an error record and go on "
        "(each architecture then runs in a child process)",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars (CI logs)")
    _add_plugin(p)

    p = sub.add_parser(
        "leaderboard",
        help="re-render LEADERBOARD.md, CSV and plots from records",
        description="Regenerate LEADERBOARD.md, leaderboard.csv and plots/ "
        "from the stored records alone (nothing is re-run).",
    )
    p.add_argument("--results-dir", type=Path, default=Path("results"))

    p = sub.add_parser("eval", help="evaluate one model (fresh or from a checkpoint)")
    p.add_argument("--arch", required=True)
    p.add_argument(
        "--dataset",
        default=None,
        help="dataset name (see `list datasets`); or take it from --suite",
    )
    p.add_argument(
        "--suite",
        default=None,
        help="use a suite's dataset, dataset options, resolution and eval split "
        "(e.g. to re-score a checkpoint saved by `run --suite quick`)",
    )
    p.add_argument("--data-root", default=None)
    p.add_argument("--split", default=None, help="split to score (default: val, or the suite's)")
    p.add_argument(
        "--resolution",
        type=int,
        nargs=2,
        default=None,
        metavar=("H", "W"),
        help="image size (synthetic set; default: the dataset's)",
    )
    p.add_argument(
        "--checkpoint",
        type=Path,
        default=None,
        help="a checkpoint saved by the harness or a plain state_dict",
    )
    p.add_argument("--device", default="auto")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seed of the fresh model's initialisation (without --checkpoint)",
    )
    p.add_argument(
        "--json", type=Path, default=None, metavar="OUT", help="also write the metrics as JSON"
    )
    p.add_argument("-q", "--quiet", action="store_true")
    _add_plugin(p)

    p = sub.add_parser(
        "profile",
        help="params, MACs, GFLOPs (and speed) of one model",
        description="Count parameters and MACs/GFLOPs (fvcore, cross-checked "
        "with torch's FlopCounterMode) at one input shape; with "
        "--speed also latency and throughput.",
    )
    p.add_argument("--arch", required=True)
    p.add_argument("--input-shape", type=_shape, required=True, metavar="N,C,H,W")
    p.add_argument("--num-classes", type=int, default=21)
    p.add_argument("--speed", action="store_true")
    p.add_argument("--device", default="auto")
    p.add_argument("--dtype", default="fp32", choices=["fp32", "fp16", "bf16"])
    p.add_argument("--format", default="table", choices=["table", "json"])
    _add_plugin(p)

    p = sub.add_parser(
        "papers",
        help="paper-reported params/compute vs ours (PAPERS.md)",
        description="Measure every architecture under its paper's conditions "
        "(parameters at the paper's class count, MACs at the paper's "
        "resolution, in the paper's FLOP convention) and write "
        "DIR/papers.json and DIR/PAPERS.md. With --render-only, "
        "re-render PAPERS.md from papers.json without measuring.",
    )
    p.add_argument(
        "--archs",
        type=_csv,
        default=None,
        help="comma-separated subset (default: every registered architecture)",
    )
    p.add_argument("--results-dir", type=Path, default=Path("results"))
    p.add_argument("--render-only", action="store_true")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    _add_plugin(p)

    p = sub.add_parser(
        "data",
        help="check a dataset on disk",
        description="Dataset tools. `data check` walks a file-backed dataset "
        "and reports counts per split, image sizes, the label "
        "histogram and every problem, with file names.",
    )
    data_sub = p.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    q = data_sub.add_parser(
        "check",
        help="walk a dataset and report counts, sizes, label "
        "histogram and problems (exit 1 on errors)",
        description="Decode every image and label of a dataset's splits "
        "with the loader's own code and report sample counts "
        "(against the official ones), image sizes, the label "
        "histogram and every problem: missing folders (with "
        "the expected layout), unpaired, unreadable or "
        "truncated files, size mismatches, colour labels, "
        "out-of-range label values. Exit status 1 when there "
        "are errors (warnings alone give 0).",
    )
    q.add_argument("--dataset", required=True, help="file-backed dataset (see `list datasets`)")
    q.add_argument("--data-root", required=True, metavar="DIR")
    q.add_argument(
        "--split", type=_csv, default=None, help="split(s) to check, comma-separated (default: all)"
    )
    q.add_argument(
        "--json", type=Path, default=None, metavar="OUT", help="also write the report as JSON"
    )
    q.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    _add_plugin(q)

    p = sub.add_parser(
        "score",
        help="score a folder of predicted label PNGs",
        description="Score predictions made anywhere: one single-channel PNG "
        "of class ids per image of the split, named <sample "
        "id>.png (the image's file stem), at the label's size. "
        "Ground truth is read and mapped by the dataset's loader; "
        "metrics come from bench.metrics (one confusion matrix).",
    )
    p.add_argument("--dataset", required=True)
    p.add_argument("--data-root", required=True, metavar="DIR")
    p.add_argument("--split", required=True)
    p.add_argument("--pred-dir", required=True, type=Path, metavar="DIR")
    p.add_argument(
        "--json",
        type=Path,
        default=None,
        metavar="OUT",
        help="also write the metrics (and confusion matrix) as JSON",
    )
    p.add_argument("-q", "--quiet", action="store_true")
    _add_plugin(p)
    _add_fleet_parsers(sub)
    return parser


def _add_fleet_parsers(sub: argparse._SubParsersAction) -> None:
    """`baseline`, `check` and `merge`: regression gate and results from many machines."""
    p = sub.add_parser(
        "baseline",
        help="write a suite's regression baseline from its records",
        description="Write the baseline `check` compares with (default "
        "results/baselines/<suite>.json) from the newest record of "
        "each of the suite's architectures in --results-dir. Every "
        "architecture needs an ok record of the suite's current "
        "setting.",
    )
    p.add_argument("--suite", required=True, help="built-in suite name or path to a .yaml file")
    p.add_argument("--results-dir", type=Path, default=Path("results"))
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        metavar="FILE",
        help="baseline file (default: results/baselines/<suite>.json)",
    )
    _add_plugin(p)

    p = sub.add_parser(
        "check",
        help="compare a suite's latest records with its baseline",
        description="Compare the newest records of a suite with a committed "
        "baseline and print a table (arch, metric, baseline, now, "
        "delta, verdict). Exit status 1 on any regression, missing "
        "architecture or error record; improvements are reported, "
        "not failed. Speed is compared as latency relative to a "
        "reference network timed in the same process; absolute "
        "milliseconds are shown for information only.",
    )
    p.add_argument("--suite", required=True, help="built-in suite name or path to a .yaml file")
    p.add_argument(
        "--baseline",
        type=Path,
        default=None,
        metavar="FILE",
        help="baseline file (default: results/baselines/<suite>.json)",
    )
    p.add_argument("--results-dir", type=Path, default=Path("results"))
    p.add_argument(
        "--tol-miou",
        type=float,
        default=0.5,
        metavar="PP",
        help="allowed mIoU change in percentage points between runs on the same CPU kernels "
        "(vendor, family, model, torch CPU capability), where a run reproduces the baseline "
        "exactly (default: 0.5)",
    )
    p.add_argument(
        "--tol-miou-other-cpu",
        type=float,
        default=1.0,
        metavar="PP",
        help="allowed mIoU change when the CPU kernels differ from the baseline's or are "
        "unknown: other CPUs round differently (default: 1.0; measured spread in the README)",
    )
    p.add_argument(
        "--tol-speed",
        default="15%",
        metavar="PCT",
        help="allowed change of the normalised latency, e.g. 15%% (default) or 0.15",
    )
    _add_plugin(p)

    p = sub.add_parser(
        "merge",
        help="combine result folders from several machines or shards",
        description="Copy the records (and sample files) of several result "
        "folders into one: identical runs count once, the newest "
        "run per (suite, dataset, setting, arch, device) is kept, "
        "nothing in the destination is deleted; conflicts (runs "
        "that disagree) are reported and give exit status 1. Then "
        "render the leaderboard of the merged folder.",
    )
    p.add_argument(
        "sources",
        nargs="+",
        type=Path,
        metavar="DIR",
        help="result folders (each with a records/ subfolder)",
    )
    p.add_argument("--into", type=Path, required=True, metavar="DIR")
    p.add_argument(
        "--no-leaderboard",
        action="store_true",
        help="only merge the records; do not render the leaderboard",
    )


def _load_plugins(paths: list[str]) -> None:
    from bench.plugins import load_entry_points, load_plugin

    load_entry_points()
    for path in paths:
        load_plugin(path)


def cmd_list(args: argparse.Namespace) -> int:
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
    """``run``: a suite's sweep into ``--results-dir``, then the leaderboard (unless sharded)."""
    import architectures
    from bench.errors import ConfigError
    from bench.provenance import command_line
    from bench.records import load_records
    from bench.runner import Sweep, SweepInterrupted
    from bench.suites import load_suite

    suite = load_suite(args.suite)
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
    _check_writable(args.results_dir, "--results-dir")
    if args.save_checkpoints is not None:
        _check_writable(args.save_checkpoints, "--save-checkpoints")
    sweep = Sweep(
        suite,
        results_dir=args.results_dir,
        device=args.device,
        command=command_line(args.argv),
        progress=not args.quiet,
        checkpoint_dir=args.save_checkpoints,
        timeout_per_arch=args.timeout_per_arch,
    )
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
    else:
        written = _write_leaderboard(args.results_dir, load_records(args.results_dir))
        print(f"leaderboard: {', '.join(str(p) for p in written[:2])} (+{len(written) - 2} plots)")
    if summary.failed:
        print(f"\n{len(summary.failed)} of {len(archs)} architectures FAILED:", file=sys.stderr)
        for arch, msg in summary.failed:
            print(f"  {arch}: {msg}", file=sys.stderr)
        return 1
    return 0


def _check_writable(folder: Path, option: str) -> None:
    import tempfile

    from bench.errors import ConfigError

    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        raise ConfigError(
            f"{option} {folder} is not a writable folder ({exc.strerror}). Pass "
            f"{option} pointing at a folder you can write to."
        ) from None


def _write_leaderboard(results_dir: Path, records: list, option: str = "--results-dir") -> list:
    """Renders the report into ``results_dir`` with :func:`bench.reporting.write_report`.

    Its ConfigError (a file it cannot write, no records) is prefixed with the option that named
    the folder; the records are never touched.
    """
    from bench.errors import ConfigError
    from bench.reporting import write_report

    try:
        return write_report(results_dir, records)
    except ConfigError as exc:
        raise ConfigError(f"{option} {results_dir}: {exc}") from None


def cmd_leaderboard(args: argparse.Namespace) -> int:
    """``leaderboard``: re-render LEADERBOARD.md, the CSV and plots from stored records."""
    from bench.records import load_records

    written = _write_leaderboard(args.results_dir, load_records(args.results_dir))
    for path in written:
        print(path)
    return 0


def cmd_papers(args: argparse.Namespace) -> int:
    import architectures
    from bench.papers import measure, render_papers, write_papers

    if args.render_only:
        print(render_papers(args.results_dir))
        return 0
    names = args.archs or architectures.names()
    for name in names:
        architectures.get_info(name)  # unknown names fail before any measuring
    _check_writable(args.results_dir, "--results-dir")
    rows = measure(names, progress=not args.quiet)
    for path in write_papers(args.results_dir, rows):
        print(path)
    failed = [r["arch"] for r in rows if r["status"] != "ok"]
    if failed:
        print(
            f"error: could not measure {len(failed)} architecture(s): {', '.join(failed)} "
            f"(messages in {args.results_dir / 'papers.json'})",
            file=sys.stderr,
        )
        return 1
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    import torch

    import architectures
    from bench.checkpoint import load_into
    from bench.data import build_dataset
    from bench.devices import resolve_device
    from bench.evaluate import evaluate
    from bench.models import build_model

    device = resolve_device(args.device)
    options: dict[str, object] = {}
    split, root = args.split, args.data_root
    if args.suite:
        from bench.suites import load_suite

        suite = load_suite(args.suite)
        if args.dataset not in (None, suite.dataset):
            raise ValueError(
                f"--dataset {args.dataset} contradicts suite {suite.name!r}, "
                f"which uses {suite.dataset!r}; pass one of them."
            )
        args.dataset = suite.dataset
        options = {**suite.dataset_options, "size": tuple(suite.resolution)}
        split, root = split or suite.eval.split, root or suite.data_root
    if args.dataset is None:
        raise ValueError("eval needs --dataset NAME or --suite NAME (see `list datasets`).")
    if args.resolution:
        options["size"] = tuple(args.resolution)
    args.split = split or "val"
    dataset, info = build_dataset(args.dataset, split=args.split, root=root, **options)
    architectures.get_entry(args.arch)
    torch.manual_seed(args.seed)  # a fresh model's numbers must not depend on the RNG state
    model = build_model(args.arch, num_classes=info.num_classes)
    if args.checkpoint:
        load_into(model.model, args.checkpoint, arch=args.arch, num_classes=info.num_classes)
    result = evaluate(
        model,
        dataset,
        num_classes=info.num_classes,
        ignore_index=info.ignore_index,
        class_names=info.class_names,
        device=device,
        batch_size=args.batch_size,
        progress=not args.quiet,
    )
    metrics = result.metrics.to_dict()
    out = {
        "arch": args.arch,
        "dataset": args.dataset,
        "split": args.split,
        "checkpoint": str(args.checkpoint) if args.checkpoint else None,
        "seed": None if args.checkpoint else args.seed,
        "num_images": result.num_images,
        "metrics": metrics,
    }
    for key in ("miou", "pixel_acc", "mean_acc", "fwiou", "mean_dice"):
        v = metrics[key]
        print(f"{key:>10}: {'n/a' if v is None else f'{100 * v:.2f} %'}")
    if args.json:
        from bench.fileio import write_json_atomic

        write_json_atomic(args.json, out)
        print(f"wrote {args.json}")
    return 0


def cmd_profile(args: argparse.Namespace) -> int:
    from tabulate import tabulate

    from bench import complexity as cx
    from bench import speed as sp
    from bench.devices import resolve_device
    from bench.models import build_model

    device = resolve_device(args.device)
    model = build_model(args.arch, num_classes=args.num_classes).eval()
    report = cx.count_complexity(model, args.input_shape)
    out: dict[str, object] = {"arch": args.arch, "complexity": report.to_dict()}
    if args.speed:
        n, c, h, w = args.input_shape
        speed = sp.measure_speed(
            model, (c, h, w), gmacs_per_image=report.gmacs / n, device=device, dtype=args.dtype
        )
        out["speed"] = speed.to_dict()
    if args.format == "json":
        print(json.dumps(out, indent=1))
        return 0
    rows = [
        ("params", f"{report.params:,}"),
        ("trainable params", f"{report.trainable_params:,}"),
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
    from bench.data.check import check_dataset

    report = check_dataset(args.dataset, args.data_root, args.split, progress=not args.quiet)
    print(report.format())
    if args.json:
        from bench.fileio import write_json_atomic

        write_json_atomic(args.json, report.to_dict())
        print(f"wrote {args.json}")
    return 0 if report.ok else 1


def cmd_score(args: argparse.Namespace) -> int:
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
    from bench.merge import merge_results
    from bench.records import load_records

    _check_writable(args.into, "--into")
    report = merge_results(args.sources, args.into)
    for line in report.lines():
        print(line, file=sys.stderr if line.startswith("CONFLICT") else sys.stdout)
    if not args.no_leaderboard:
        written = _write_leaderboard(args.into, load_records(args.into), "--into")
        print(f"leaderboard: {', '.join(str(p) for p in written[:2])} (+{len(written) - 2} plots)")
    return 1 if report.conflicts else 0


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
}


def main(argv: list[str] | None = None) -> int:
    # The command as typed, for run records (not the host's sys.argv when called in-process).
    typed = list(sys.argv) if argv is None else ["run_bench.py", *argv]
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv or ["run", "--suite", "quick"])
    args.argv = typed
    from bench.errors import BenchError

    try:
        if hasattr(args, "plugin"):
            _load_plugins(args.plugin)
        return COMMANDS[args.command](args)
    except (BenchError, ValueError, FileNotFoundError) as exc:  # TODO(integration): narrow
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"\ninterrupted: {args.command} stopped before it finished.", file=sys.stderr)
        return 130
