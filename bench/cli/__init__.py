"""Command-line interface: parses arguments and calls the harness (no logic of its own).

``python run_bench.py --help`` (or ``semseg-bench --help``) lists the commands. The grammar is
in :mod:`bench.cli.parser`, what each command does in :mod:`bench.cli.commands`; :func:`main`
ties them together and turns a user's error into one line and exit status 2.
"""

from __future__ import annotations

import os
import sys
import time

from bench.cli.commands import COMMANDS, load_plugins
from bench.cli.parser import build_parser
from bench.errors import BenchError

__all__ = ["COMMANDS", "TORCHRUN_ERROR_WAIT_S", "build_parser", "main"]

#: Seconds a torchrun rank other than 0 waits before exiting on an error (see :func:`main`).
TORCHRUN_ERROR_WAIT_S = 10.0


def main(argv: list[str] | None = None) -> int:
    """Runs one command.

    Args:
        argv: The arguments after the program name (``sys.argv[1:]`` when None); none at all
            runs the default suite (``run --suite quick``).

    Returns:
        The exit status: 0 success, 1 a failed architecture, regression or conflict (the
        command says which), 2 bad input, 130 interrupted.
    """
    # The command as typed, for run records (not the host's sys.argv when called in-process).
    typed = list(sys.argv) if argv is None else ["run_bench.py", *argv]
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv or ["run", "--suite", "quick"])
    args.argv = typed
    # What is reported as a message (exit 2): errors a user can fix. Anything else is a bug in
    # the harness or a model and keeps its traceback. (architectures imports torch: not at the
    # top, so that --help stays fast.)
    from architectures import ArchitectureError

    try:
        if hasattr(args, "plugin"):
            load_plugins(args.plugin)
        return COMMANDS[args.command](args)
    except (BenchError, ArchitectureError) as exc:
        if os.environ.get("RANK", "0") == "0":  # under torchrun every rank refuses alike
            print(f"error: {exc}", file=sys.stderr)
        else:
            # Rank 0 says it. Torchrun stops every worker as soon as one exits with an error,
            # so the others wait before they exit: otherwise rank 0 (slower to start, on a busy
            # machine) can be stopped before it has printed, and the message is lost. An error
            # raised on this rank alone is printed after the wait, and ends the job.
            time.sleep(TORCHRUN_ERROR_WAIT_S)
            print(f"error (rank {os.environ['RANK']}): {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"\ninterrupted: {args.command} stopped before it finished.", file=sys.stderr)
        return 130
