"""The harness's error types.

Every error a user can fix (a bad suite value, a missing folder, a malformed record, a plugin
that does not import) is a :class:`BenchError`: the CLI prints its message and exits with status
2. Anything else that escapes a command is a bug in the harness (or in a model) and keeps its
traceback.

Each subclass also derives from the built-in exception a caller would expect (``ValueError``,
``FileNotFoundError``, ``RuntimeError``), so ``except ValueError`` keeps working. Messages name
the input, what was expected, what was found and the fix.

This module imports nothing: every layer may raise these.
"""

from __future__ import annotations


class BenchError(Exception):
    """Base of every error a user can act on; the CLI reports it in one line (exit 2)."""


class ConfigError(BenchError, ValueError):
    """A suite setting, command-line option or argument has an invalid value."""


class RecordError(BenchError, ValueError):
    """A run record, baseline or other results file is malformed or of another schema."""


class MissingFileError(BenchError, FileNotFoundError):
    """A file or folder the user named (or the harness needs) does not exist."""


class PluginError(BenchError, RuntimeError):
    """A plugin file or entry point could not be loaded; the message carries its traceback."""


class CheckpointError(BenchError, ValueError):
    """A checkpoint file is unreadable, unsafe or for another architecture or class count."""


class ResultsLockedError(BenchError, RuntimeError):
    """Another live run is writing into the same results folder."""
