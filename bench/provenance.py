"""Provenance of a run: versions, hardware, git state, seed, threads and backend flags.

:func:`environment` fills a record's ``env`` section; :func:`command_line` its ``command``.
The git state is read once per process, so the first record of a sweep and its last name the
same code even if a commit lands meanwhile.
"""

from __future__ import annotations

import functools
import platform
import shlex
import subprocess
import sys
from pathlib import Path

from bench.devices import cpu_info, device_type
from bench.records import Env, RunFlags


def _git(*args: str) -> str | None:
    try:
        res = subprocess.run(
            ["git", *args],
            capture_output=True,
            text=True,
            timeout=10,
            cwd=Path(__file__).resolve().parent,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return res.stdout.strip() if res.returncode == 0 else None


@functools.cache
def git_state() -> tuple[str | None, bool | None]:
    """``(commit, dirty)`` of the checkout this process imported its code from, read once.

    Dirty means tracked files other than ``results/`` differ from the commit (a sweep's own
    output, or an edited leaderboard, is not a change to the code that ran).
    """
    status = _git(
        "status", "--porcelain", "--untracked-files=no", "--", ":(top)", ":(top,exclude)results"
    )
    return _git("rev-parse", "HEAD"), None if status is None else bool(status)


def environment(device: str, seed: int, matmul_gflops: float | None) -> Env:
    """The ``env`` section of a record made now, in this process, on ``device``.

    Args:
        device: The device the run uses (``"cpu"``, ``"cuda:1"``).
        seed: The run's seed.
        matmul_gflops: The dense-GEMM rate measured for the run, or None.
    """
    import torch
    import torchvision

    cpu = cpu_info()
    # The named device ("cuda:1"), not the current one.
    gpu = (
        torch.cuda.get_device_name(torch.device(device)) if device_type(device) == "cuda" else None
    )
    commit, dirty = git_state()
    return Env(
        torch=torch.__version__,
        torchvision=torchvision.__version__,
        python=platform.python_version(),
        platform=platform.platform(),
        device=device,
        device_name=gpu or cpu.model_name,
        cpu_model=cpu.model_name,
        gpu_model=gpu,
        threads=torch.get_num_threads(),
        git_commit=commit,
        git_dirty=dirty,
        seed=seed,
        matmul_gflops_per_s=matmul_gflops,
        flags=RunFlags(
            deterministic_algorithms=torch.are_deterministic_algorithms_enabled(),
            cudnn_benchmark=torch.backends.cudnn.benchmark,
            tf32_matmul=torch.backends.cuda.matmul.allow_tf32,
        ),
        cpu=cpu,
    )


def command_line(argv: list[str] | None = None) -> str:
    """The command that produced a run, as a user would type it."""
    argv = sys.argv if argv is None else argv
    prog = Path(argv[0]).name if argv else "run_bench.py"
    if prog == "run_bench.py":
        prog = "python run_bench.py"
    return " ".join([prog, *(shlex.quote(a) for a in argv[1:])])
