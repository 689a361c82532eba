"""The command line's grammar: every command, option and help text, and nothing else.

:func:`build_parser` describes the commands; :mod:`bench.cli.commands` runs them.
"""

from __future__ import annotations

import argparse
from pathlib import Path

EPILOG = """\
examples:
  python run_bench.py                          # = run --suite quick (CUDA if present, else CPU)
  python run_bench.py list archs --format json
  python run_bench.py run --suite smoke --results-dir /tmp/res
  python run_bench.py run --suite quick --archs fcn8s,tv_lraspp_mobilenet_v3_large
  python run_bench.py run --suite quick --plugin my_arch.py --archs my_arch
  python run_bench.py run --suite camvid --archs linknet --backbone-weights resnet18-f37072fd.pth
  python run_bench.py leaderboard              # re-render results/ from stored records only
  python run_bench.py eval --arch fcn8s --dataset synthetic --checkpoint fcn8s.pt
  python run_bench.py profile --arch fcn8s --input-shape 1,3,512,512 --speed
  python run_bench.py data check --dataset camvid --data-root ../shared/datasets/camvid
  python run_bench.py score --dataset camvid --data-root DIR --split test --pred-dir preds/
  python run_bench.py run --suite quick --shard 2/3 --results-dir shared/res  # 1 of 3 machines
  python run_bench.py merge host1/results host2/results --into results
  python run_bench.py baseline --suite smoke   # results/baselines/smoke.json from the records
  python run_bench.py check --suite smoke --baseline results/baselines/smoke.json
  python run_bench.py upgrade-records --results-dir old/results  # records of an older harness

Records: results/records/*.json (one per run; schema in bench/records/schema.py).
Leaderboard: results/LEADERBOARD.md, results/leaderboard.csv, results/plots/*.png.
"""


def _csv(value: str) -> list[str]:
    items = [v.strip() for v in value.split(",") if v.strip()]
    if not items:
        raise argparse.ArgumentTypeError("expected a comma-separated list of names; got nothing")
    return items


def _seeds(value: str) -> list[int]:
    try:
        seeds = [int(v) for v in value.split(",") if v.strip()]
    except ValueError:
        seeds = []
    if not seeds or min(seeds) < 0:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated non-negative integers (e.g. 0,1,2); got {value!r}"
        )
    return seeds


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
    """Builds the parser of ``run_bench.py``: every command, its options and help texts.

    Returns:
        The parser. ``args.command`` names the command (a key of
        :data:`bench.cli.commands.COMMANDS`); commands that load architectures have
        ``args.plugin``.
    """
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
        "datasets, declared published weights (with their published figures and whether the "
        "file is on the search path) or built-in suites.",
    )
    p.add_argument(
        "what", nargs="?", default="archs", choices=["archs", "datasets", "weights", "suites"]
    )
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
    p.add_argument(
        "--seeds",
        type=_seeds,
        default=None,
        metavar="S,S,...",
        help="repeat the suite once per seed (model initialisation and data order), each a "
        "setting of its own, instead of the suite's seed (the suite key seeds: does the same)",
    )
    p.add_argument("--results-dir", type=Path, default=Path("results"))
    p.add_argument(
        "--resume",
        action="store_true",
        help="skip architectures that already have an ok record for this suite and setting, "
        "and continue the others' training from their saved state (train.checkpoint_every)",
    )
    p.add_argument(
        "--no-tensorboard",
        dest="tensorboard",
        action="store_false",
        help="write no TensorBoard event files (default: RESULTS_DIR/tensorboard/, "
        "when the tensorboard package is installed)",
    )
    p.add_argument(
        "--save-checkpoints",
        type=Path,
        default=None,
        metavar="DIR",
        help="also save each trained model as DIR/<arch>.pt",
    )
    p.add_argument(
        "--backbone-weights",
        action="append",
        default=[],
        metavar="[ARCH=]FILE",
        help="start the ImageNet trunk from FILE (torchvision's state dict of the trunk's "
        "network, e.g. resnet18-f37072fd.pth; loaded with weights_only=True and checked; "
        "nothing is downloaded): for ARCH, or for every architecture run when ARCH= is left "
        "out (choose them with --archs). Repeatable. The file's sha256 enters the setting id "
        "and the record",
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
        help="a checkpoint saved by the harness, a plain state_dict, or a dict holding one "
        "under 'state_dict' or 'model'",
    )
    p.add_argument(
        "--weights",
        default=None,
        metavar="NAME",
        help="declared published weights (`list weights`), evaluated with their "
        "preprocessing, class mapping, builder options and protocol",
    )
    p.add_argument(
        "--like",
        default=None,
        metavar="NAME",
        help="with --checkpoint FILE: evaluate your own file of the same family with the "
        "metadata of weights NAME",
    )
    p.add_argument(
        "--protocol",
        choices=("standard", "authors"),
        default="standard",
        help="with published weights: 'standard' scores the dataset's way (labels as loaded, "
        "void ignored: the rankings' numbers); 'authors' their own way where it differs "
        "(e.g. labels resized, void averaged in as a class; `list weights` shows which have "
        "one)",
    )
    p.add_argument(
        "--weights-dir",
        default=None,
        metavar="DIR",
        help="folder searched first for weights files (then $SEMSEG_BENCH_WEIGHTS, "
        "../shared/checkpoints, torch hub's cache; nothing is downloaded)",
    )
    p.add_argument(
        "--arch-option",
        action="append",
        default=None,
        metavar="KEY=VALUE",
        help="a builder option (repeatable), e.g. --arch-option q=8; overrides the suite's "
        "arch_options and the weights' declared ones",
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
    p.add_argument(
        "--results-dir",
        type=Path,
        default=None,
        metavar="DIR",
        help="with published weights: write a run record (kind 'loaded') there and re-render "
        "its leaderboard",
    )
    p.add_argument(
        "--record-suite",
        default="published",
        metavar="NAME",
        help="the results group the record is ranked in (default: published)",
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

    p = sub.add_parser(
        "upgrade-records",
        help="rewrite a results folder's records in the current schema",
        description="Rewrite every record of --results-dir that an older harness wrote in the "
        "current schema, re-counting what a record of the old schema cannot tell (schema 1: "
        "parameters of the network as evaluated; the old count, auxiliary heads included, "
        "becomes params_with_aux). Each rewritten record names this command in its "
        "`amendments`. Reading old records never needs this; rewriting makes them complete.",
    )
    p.add_argument("--results-dir", type=Path, default=Path("results"))
    _add_plugin(p)
    return parser


def _add_suite_and_baseline_file(p: argparse.ArgumentParser, flag: str) -> None:
    """``--suite``, ``--results-dir`` and the baseline file option (``--out`` / ``--baseline``)."""
    p.add_argument("--suite", required=True, help="built-in suite name or path to a .yaml file")
    p.add_argument("--results-dir", type=Path, default=Path("results"))
    p.add_argument(
        flag,
        type=Path,
        default=None,
        metavar="FILE",
        help="baseline file (default: results/baselines/<suite>.json)",
    )


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
    _add_suite_and_baseline_file(p, "--out")
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
    _add_suite_and_baseline_file(p, "--baseline")
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
