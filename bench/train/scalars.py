"""Training curves for TensorBoard: event files written while a run trains.

``tensorboard`` is an optional dependency (``pip install 'semseg-bench[tensorboard]'``; the
``dev`` extra has it). Without it :func:`tensorboard_writer` returns None, the caller says so in
one line (:data:`MISSING_MESSAGE`) and training goes on unlogged.

Scalars (the tags a test and a reader rely on), at the 1-based step they follow:

* ``train/loss``: the loss of each step;
* ``train/lr``: the learning rate the step used;
* ``train/images_per_s``: training throughput over each logging window (``steps // 20`` steps,
  at least 1; data loading included);
* ``val/miou`` (and ``val/pixel_acc``): the evaluation after training, at the last step (the
  sweep writes them).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

LOSS_TAG, LR_TAG, THROUGHPUT_TAG = "train/loss", "train/lr", "train/images_per_s"
# The final evaluation (on the suite's eval split, often test) and periodic validation (val).
MIOU_TAG, PIXEL_ACC_TAG = "eval/miou", "eval/pixel_acc"
VAL_MIOU_TAG = "val/miou"
MISSING_MESSAGE = (
    "TensorBoard logging off: the tensorboard package is not installed "
    "(pip install tensorboard); the run goes on without event files."
)


class ScalarWriter(Protocol):
    """What training logs to: ``torch.utils.tensorboard.SummaryWriter`` is one."""

    def add_scalar(self, tag: str, scalar_value: float, global_step: int | None = None) -> Any:
        """Records ``scalar_value`` under ``tag`` at ``global_step``."""

    def close(self) -> None:
        """Flushes and closes the event file."""


def summary_writer_class() -> type | None:
    """``torch.utils.tensorboard.SummaryWriter``, or None when tensorboard is not installed."""
    try:
        import tensorboard  # noqa: F401  (torch's writer needs it; checked first)
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        return None
    return SummaryWriter


def tensorboard_available() -> bool:
    """Whether event files can be written (the ``tensorboard`` package imports)."""
    return summary_writer_class() is not None


class EventFiles:
    """TensorBoard event files of one run, opened at the first scalar.

    The ``SummaryWriter`` is created when the first scalar arrives, with ``purge_step`` set to
    that scalar's step: TensorBoard then drops the events that earlier files in the folder hold
    at that step and after. A run resumed from a saved state (first step logged: the saved
    step + 1) so replaces the steps it repeats, and a run started again from scratch (step 1)
    replaces the old curve, instead of drawing both.

    Args:
        log_dir: The run's folder of event files (created when the writer opens).
        writer_class: ``SummaryWriter`` (:func:`summary_writer_class`).
    """

    def __init__(self, log_dir: Path, writer_class: type) -> None:
        self.log_dir = Path(log_dir)
        self._writer_class = writer_class
        self._writer: Any = None

    def add_scalar(self, tag: str, scalar_value: float, global_step: int | None = None) -> None:
        """Records ``scalar_value`` under ``tag`` at ``global_step`` (opening the file first)."""
        if self._writer is None:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            self._writer = self._writer_class(log_dir=str(self.log_dir), purge_step=global_step)
        self._writer.add_scalar(tag, scalar_value, global_step)

    def close(self) -> None:
        """Flushes and closes the event file (nothing to do if no scalar came)."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def tensorboard_writer(log_dir: Path) -> EventFiles | None:
    """The event files of one run under ``log_dir``, or None without tensorboard.

    Args:
        log_dir: The run's folder of event files.

    Returns:
        An :class:`EventFiles` (a :class:`ScalarWriter`), or None.
    """
    cls = summary_writer_class()
    return None if cls is None else EventFiles(log_dir, cls)
