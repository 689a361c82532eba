"""The ``eval`` command: score one model, fresh, from a checkpoint, or with published weights."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import yaml


def parse_arch_options(pairs: list[str] | None) -> dict[str, Any]:
    """``KEY=VALUE`` strings as builder options; values are read as YAML scalars.

    Args:
        pairs: ``["p=2", "q=8"]``.

    Returns:
        ``{"p": 2, "q": 8}``.

    Raises:
        ConfigError: An item without ``=`` or with an empty key.
    """
    from bench.errors import ConfigError

    options: dict[str, Any] = {}
    for item in pairs or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(
                f"--arch-option {item!r}: expected KEY=VALUE, e.g. --arch-option q=8."
            )
        options[key.strip()] = yaml.safe_load(value)
    return options


def _weights_for(args: argparse.Namespace) -> Any:
    """The declaration named by ``--weights`` or ``--like`` (checked against the arguments)."""
    import architectures
    from bench.errors import ConfigError

    if args.like and not args.checkpoint:
        raise ConfigError(
            f"--like {args.like} borrows a weights entry's metadata for --checkpoint FILE; "
            f"pass the file, or use --weights {args.like} for the declared one."
        )
    if args.weights and (args.like or args.checkpoint):
        raise ConfigError(
            "--weights NAME loads the declared file; for your own file use --checkpoint FILE "
            "--like NAME."
        )
    name = args.weights or args.like
    if name is None:
        return None
    info = architectures.get_weights(name)
    if info.arch != args.arch:
        raise ConfigError(
            f"Weights {name!r} are for --arch {info.arch}, not {args.arch}; pass --arch "
            f"{info.arch}."
        )
    return info


def _protocol_line(out: dict[str, Any]) -> str:
    p = out["protocol"]
    size = "native size" if p["resolution"] is None else "x".join(map(str, p["resolution"]))
    return (
        f"{out['dataset']} {out['split']}: {out['num_images']} images at {size}; "
        f"{p['note']}; device {out['device']}"
    )


def cmd_eval(args: argparse.Namespace) -> int:
    """Evaluates one architecture and prints the protocol used and the metrics.

    The model is a fresh one (``--seed``), a checkpoint (``--checkpoint FILE``), declared
    published weights (``--weights NAME``: their preprocessing, class mapping, builder options
    and protocol), or a user's file evaluated like declared weights (``--checkpoint FILE --like
    NAME``). With ``--suite`` the dataset, its options, the eval split and the builder options
    are the suite's, and so is the resolution unless weights declare their own protocol.

    Args:
        args: Parsed ``eval`` arguments.

    Returns:
        0 (``--json`` also writes the result there).

    Raises:
        ConfigError: Neither ``--dataset`` nor ``--suite``, contradicting arguments, or weights
            for another architecture or dataset.
        ArchitectureError: An unknown ``--arch`` or ``--weights`` (before any dataset work).
        CheckpointError: A checkpoint that does not fit (see :mod:`bench.checkpoint`).
    """
    import torch

    import architectures
    from bench.checkpoint import load_into
    from bench.data import build_dataset
    from bench.devices import resolve_device
    from bench.errors import ConfigError
    from bench.evaluate import evaluate
    from bench.models import build_model

    architectures.get_entry(args.arch)  # an unknown name fails before the dataset is indexed
    weights = _weights_for(args)
    arch_options = parse_arch_options(args.arch_option)
    device = resolve_device(args.device)
    if args.results_dir is not None:  # before any work: a run is never lost to a bad folder
        from bench.cli.folders import check_writable

        if weights is None:
            raise ConfigError(
                "--results-dir records published weights (--weights NAME, or --checkpoint FILE "
                "--like NAME); a model trained here gets its record from `run`."
            )

        check_writable(args.results_dir, "--results-dir")
    options: dict[str, object] = {}
    split, root = args.split, args.data_root
    if args.suite:
        from bench.suites import load_suite

        suite = load_suite(args.suite)
        if args.dataset not in (None, suite.dataset):
            raise ConfigError(
                f"--dataset {args.dataset} contradicts suite {suite.name!r}, "
                f"which uses {suite.dataset!r}; pass one of them."
            )
        args.dataset = suite.dataset
        options = dict(suite.dataset_options)
        if weights is None:
            options["size"] = tuple(suite.resolution)
        arch_options = {**suite.arch_options.get(args.arch, {}), **arch_options}
        split, root = split or suite.eval.split, root or suite.data_root
    if weights is not None:
        if args.dataset not in (None, weights.dataset):
            raise ConfigError(
                f"Weights {weights.name!r} were trained for {weights.dataset!r}, not "
                f"{args.dataset!r}; pass --dataset {weights.dataset}."
            )
        args.dataset = weights.dataset
    if args.dataset is None:
        raise ConfigError("eval needs --dataset NAME or --suite NAME (see `list datasets`).")
    if args.resolution:
        options["size"] = tuple(args.resolution)
    args.split = split or "val"
    if args.protocol != "standard" and weights is None:
        raise ConfigError(
            f"--protocol {args.protocol} scores published weights their authors' way; pass "
            f"--weights NAME (or --checkpoint FILE --like NAME)."
        )
    if weights is not None:
        weights.protocol_named(args.protocol)  # an undeclared protocol fails before the data
    dataset, info = build_dataset(args.dataset, split=args.split, root=root, **options)
    sha256 = prepared = None
    scored_in: Any = info
    if weights is not None:
        from bench.loaded import prepare_published, preprocess_text

        prepared = prepare_published(
            weights,
            info,
            checkpoint=args.checkpoint,
            weights_dir=args.weights_dir,
            arch_options=arch_options,
            protocol_name=args.protocol,
        )
        model, scored_in = prepared.model, prepared.scoring
        sha256 = prepared.weights.sha256
        note = f"weights {weights.name} ({preprocess_text(weights, args.protocol)})"
    else:
        torch.manual_seed(args.seed)  # a fresh model's numbers must not depend on the RNG state
        model = build_model(args.arch, num_classes=info.num_classes, **arch_options)
        if args.checkpoint:
            from bench.weights import sha256_of

            load_into(model.model, args.checkpoint, arch=args.arch, num_classes=info.num_classes)
            sha256 = sha256_of(Path(args.checkpoint))
        note = "harness normalisation (dataset mean/std)"
    if prepared is not None:
        result = prepared.evaluate(
            dataset,
            device=device,
            batch_size=args.batch_size,
            progress=not args.quiet,
            desc=f"eval {weights.name}",
        )
    else:
        result = evaluate(
            model, dataset, info, device=device, batch_size=args.batch_size, progress=not args.quiet
        )
    metrics = result.metrics.to_dict()
    if result.per_image is not None and len(result.per_image):  # 95% bootstrap over the images
        from bench.bootstrap import bootstrap_intervals

        for name, lo_hi in bootstrap_intervals(result.per_image, no_class=result.no_class).items():
            metrics[f"{name}_ci95"] = list(lo_hi)
    sample = dataset[0][1] if len(dataset) else None
    loaded_size = None if sample is None else tuple(sample.shape[-2:])
    scored_size = loaded_size
    if prepared is not None and loaded_size is not None:
        scored_size = prepared.resolution(loaded_size)
    out = {
        "arch": args.arch,
        "arch_options": arch_options,
        "dataset": args.dataset,
        "split": args.split,
        "weights": weights.name if weights is not None else None,
        "checkpoint": str(args.checkpoint) if args.checkpoint else None,
        "checkpoint_sha256": sha256,
        "seed": None if (args.checkpoint or weights) else args.seed,
        "device": str(device),
        "num_images": result.num_images,
        "protocol": {
            "name": args.protocol,
            "resolution": None if scored_size is None else list(scored_size),
            "loaded_resolution": None if loaded_size is None else list(loaded_size),
            "note": note,
        },
        "metrics": metrics,
        "per_class": [  # in the dataset's class order (the metrics' dicts are keyed by name)
            {
                "class": name,
                "iou": metrics["per_class_iou"][name],
                "acc": metrics["per_class_acc"][name],
            }
            for name in scored_in.class_names
        ],
        "class_names": list(scored_in.class_names),
        "confusion_matrix": result.matrix.tolist(),
    }
    print(_protocol_line(out))
    for key in ("miou", "pixel_acc", "mean_acc", "fwiou", "mean_dice"):
        v, ci = metrics[key], metrics.get(f"{key}_ci95")
        ci_text = f" [{100 * ci[0]:.2f}, {100 * ci[1]:.2f}] (95% bootstrap)" if ci else ""
        print(f"{key:>10}: {'n/a' if v is None else f'{100 * v:.2f} %'}{ci_text}")
    if weights is not None:
        for m in weights.published:
            print(f"{'published':>10}: {m.metric} {m.value:g} % ({m.split}; {m.source})")
    if args.results_dir is not None:
        _write_loaded_record(args, prepared, info, result, loaded_size, device)
    if args.json:
        from bench.fileio import write_json_atomic

        write_json_atomic(args.json, out)
        print(f"wrote {args.json}")
    return 0


def _write_loaded_record(
    args: argparse.Namespace,
    prepared: Any,
    info: Any,
    result: Any,
    loaded_size: tuple[int, int],
    device: Any,
) -> None:
    """Writes the ``loaded`` run record into ``--results-dir`` and re-renders its leaderboard."""
    from bench.cli.folders import write_leaderboard
    from bench.loaded import loaded_record
    from bench.provenance import command_line
    from bench.records import load_records, write_record

    record = loaded_record(
        prepared=prepared,
        dataset=args.dataset,
        data_info=info,
        split=args.split,
        loaded_size=loaded_size,
        result=result,
        device=str(device),
        suite=args.record_suite,
        command=command_line(args.argv),
        results_dir=Path(args.results_dir),
    )
    path = write_record(args.results_dir, record)
    print(f"wrote {path}")
    write_leaderboard(args.results_dir, load_records(args.results_dir))
