"""What can be wrong with a dataset on disk, and the errors that carry it.

A :class:`Problem` is one finding (a missing folder, an unpaired file, a truncated image, a
label value that is neither a class nor ignored), with a message that names the file, what was
expected and what was found. Loading raises them as a :class:`DatasetError` (or, when only
folders, list files or the root are missing, as a :class:`MissingDataError`); ``run_bench.py
data check`` collects them in its report instead. Both errors are
:class:`~bench.errors.BenchError` subclasses, so the CLI prints their message and exits 2.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from bench.errors import BenchError, MissingFileError

MAX_LISTED = 10  # problems spelled out in an exception message
# Problem kinds that mean "a path of the documented layout is absent" (not "a file is broken").
MISSING_KINDS = frozenset({"missing_root", "missing_folder", "missing_list"})


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a dataset on disk.

    Attributes:
        kind: Stable identifier: ``missing_root``, ``missing_folder``, ``missing_list``,
            ``missing_label``, ``missing_image``, ``unreadable``, ``size_mismatch``,
            ``colour_label``, ``invalid_labels``, ``image_mode``, ``count``, ``excluded``,
            ``mat_labels``, ``empty_split``.
        message: A full sentence naming the file, what was expected and what was found.
        path: The file or folder concerned.
        split: The split it belongs to ("" for the whole dataset).
        severity: ``"error"`` (loading refuses) or ``"warning"`` (reported, loading goes on).
    """

    kind: str
    message: str
    path: str = ""
    split: str = ""
    severity: str = "error"

    def to_dict(self) -> dict[str, str]:
        """The problem as a JSON-ready dict (for ``data check --json``)."""
        return {
            "kind": self.kind,
            "severity": self.severity,
            "split": self.split,
            "path": self.path,
            "message": self.message,
        }


class DatasetError(BenchError, ValueError):
    """A dataset on disk is missing or broken; ``problems`` lists every problem found.

    The message holds the first :data:`MAX_LISTED` problem messages, one per line, then
    ``hint`` (usually the ``data check`` command that reports everything).

    Args:
        problems: What is wrong, each naming its file. A plain message is accepted too (no
            problems then): a DataLoader worker's error is re-raised in the main process as
            ``type(error)(message_with_worker_traceback)``, like every exception.
        hint: A last line saying what to do next ("" for none).
    """

    def __init__(self, problems: Sequence[Problem] | str, hint: str = "") -> None:
        self.hint = hint
        if isinstance(problems, str):
            self.problems: list[Problem] = []
            super().__init__("\n".join(m for m in (problems, hint) if m))
            return
        self.problems = list(problems)
        lines = [p.message for p in self.problems[:MAX_LISTED]]
        if len(self.problems) > MAX_LISTED:
            lines.append(f"... and {len(self.problems) - MAX_LISTED} more problems.")
        if hint:
            lines.append(hint)
        super().__init__("\n".join(lines))

    def __reduce__(self) -> tuple[type[DatasetError], tuple[list[Problem], str]]:
        """Pickle with the problems (the default would rebuild it from the message alone)."""
        return type(self), (self.problems, self.hint)


class MissingDataError(DatasetError, MissingFileError):
    """The data root, or a folder or list file of the dataset's layout, does not exist.

    A :class:`DatasetError` (it carries the problems, each with the expected layout) that is
    also a :class:`~bench.errors.MissingFileError` (a ``FileNotFoundError``).
    """


def dataset_error(problems: Sequence[Problem], hint: str = "") -> DatasetError:
    """The error to raise for ``problems``.

    Args:
        problems: The problems found (at least one).
        hint: A last line of the message saying what to do next.

    Returns:
        A :class:`MissingDataError` when every problem is a missing root, folder or list file,
        otherwise a :class:`DatasetError`.
    """
    missing = bool(problems) and all(p.kind in MISSING_KINDS for p in problems)
    return (MissingDataError if missing else DatasetError)(problems, hint)


def errors(problems: Iterable[Problem]) -> list[Problem]:
    """The problems of severity ``"error"`` (those that stop loading), in order.

    Args:
        problems: Errors and warnings.

    Returns:
        The errors among them.
    """
    return [p for p in problems if p.severity == "error"]
