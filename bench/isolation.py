"""Run one job in a spawned child process under a time limit, and say how it ended.

The ``spawn`` start method is used: a forked child of a process that already ran OpenMP
kernels can hang, and CUDA cannot be forked. The child reports its stage as it goes
(``("stage", name)`` messages) and finally sends ``("result", value)`` or ``("setup_error",
text)``. The limit counts from the child's first stage, not from its start-up (Python, imports,
datasets), which has an allowance of its own, so a slow start on a busy machine is not charged
to the job. A child that overruns is killed; one that dies (a segfault, the OS out-of-memory
killer) is reported with its exit code or signal.

This module knows nothing of what the job does (the sweep's child entry point lives in
:mod:`bench.runner`).
"""

from __future__ import annotations

import multiprocessing
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ChildOutcome:
    """How a child process ended.

    Attributes:
        result: What the child sent with ``("result", value)``, or None.
        setup_error: The text of a ``("setup_error", text)`` message, or None.
        timed_out: The child overran its allowance or limit and was killed.
        stage: The last stage the child reported (``"setup"`` before the first).
        exitcode: The child's exit code (negative: the signal that ended it).
        setup_allowance_s: The start-up allowance it ran under.
    """

    result: Any
    setup_error: str | None
    timed_out: bool
    stage: str
    exitcode: int | None

    setup_allowance_s: float = 0.0

    def death(self) -> str:
        """``"was killed by signal SIGKILL"`` or ``"exited with code 3"``."""
        code = self.exitcode
        if code is not None and code < 0:
            return f"was killed by signal {signal.Signals(-code).name}"
        return f"exited with code {code}"

    def failure(self, job: str, limit_s: float, option: str) -> tuple[str, str, str]:
        """Why the child sent no result, as ``(error type, stage, message)``.

        Args:
            job: What the child was running (an architecture name), for the message.
            limit_s: The limit it ran under.
            option: The option that set the limit (``"--timeout-per-arch"``).
        """
        if self.setup_error is not None:
            return "ChildSetupError", "setup", self.setup_error
        if self.timed_out and self.stage == "setup":
            allowance = max(limit_s, self.setup_allowance_s)
            return (
                "TimeoutError",
                self.stage,
                f"the child process for {job} did not start within {allowance:g} s (imports "
                f"and dataset set-up); it was killed and the sweep went on.",
            )
        if self.timed_out:
            return (
                "TimeoutError",
                self.stage,
                f"{job} did not finish within {option} {limit_s:g} s (stuck in stage "
                f"{self.stage!r}); its process was killed and the sweep went on. Raise the limit "
                f"or lower the suite's budget if the run was merely slow.",
            )
        return (
            "ChildProcessError",
            self.stage,
            f"the process running {job} {self.death()} in stage {self.stage!r} before sending "
            f"its record (a crash in native code, or the OS out-of-memory killer?).",
        )


def run_in_child(
    target: Callable[..., None],
    args: tuple[Any, ...],
    *,
    limit_s: float,
    setup_allowance_s: float,
    name: str,
) -> ChildOutcome:
    """Runs ``target(*args, conn)`` in a spawned process and waits for its result.

    Args:
        target: A module-level function (picklable by reference) that sends messages on the
            connection it receives as its last argument.
        args: Picklable arguments.
        limit_s: Seconds from the first ``("stage", ...)`` message to the result.
        setup_allowance_s: Seconds for the child to report its first stage.
        name: Process name (shown by ``ps``).
    """
    ctx = multiprocessing.get_context("spawn")
    receive, send = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=target, args=(*args, send), name=name)
    proc.start()
    send.close()  # the child holds the other end: EOF here when it dies
    deadline = time.monotonic() + max(limit_s, setup_allowance_s)
    stage, result, setup_error, timed_out, done = "setup", None, None, False, False
    try:
        while not done:
            left = deadline - time.monotonic()
            if left <= 0 or not receive.poll(left):
                timed_out = True
                break
            try:
                kind, payload = receive.recv()
            except EOFError:
                break
            if kind == "stage":
                if stage == "setup":
                    deadline = time.monotonic() + limit_s
                stage = payload
            elif kind == "result":
                result, done = payload, True
            else:
                setup_error, done = payload, True
    finally:
        if not done and proc.is_alive():
            proc.kill()
        proc.join(timeout=60)
        if proc.is_alive():  # finished its work but hangs on exit
            proc.kill()
            proc.join()
        receive.close()
    return ChildOutcome(result, setup_error, timed_out, stage, proc.exitcode, setup_allowance_s)
