"""User architectures: ``--plugin FILE.py`` and the ``semseg_bench.architectures`` entry points.

Trust model: a plugin is Python code and runs with your permissions. The harness imports only
files you name on the command line and entry points of packages you installed; it never
discovers code in other places. Only load what you trust.
"""

from __future__ import annotations

import importlib.util
import sys
import traceback
from importlib.metadata import entry_points
from pathlib import Path

from architectures._registry import registering_from
from bench.errors import MissingFileError, PluginError

__all__ = [
    "ENTRY_POINT_GROUP",
    "PluginError",
    "load_entry_points",
    "load_plugin",
    "plugin_files",
]

ENTRY_POINT_GROUP = "semseg_bench.architectures"


def load_plugin(path: str | Path) -> list[str]:
    """Imports a plugin file; its ``@register`` entries (and declared weights) join the registry.

    The file's folder is put first on ``sys.path``, so a plugin may import a module that sits
    next to it (``from my_blocks import Block``).

    Args:
        path: The ``.py`` file.

    Returns:
        The names the file registered.

    Raises:
        MissingFileError: The file does not exist or is not a ``.py`` file.
        PluginError: Importing it raised, e.g. an ``ArchInfo`` with a bad field (the message
            names the file and the error, and holds the file's traceback). Entries the file
            registered before it raised are removed again: a plugin joins whole or not at all.
    """
    import architectures
    from architectures._registry import unregister
    from architectures._weights import unregister_weights

    path = Path(path)
    if not path.is_file() or path.suffix != ".py":
        raise MissingFileError(
            f"Plugin {path} not found or not a .py file. Pass the path of a Python file that "
            f"defines @register(ArchInfo(...)) builders (see README, 'Add an architecture')."
        )
    before = set(architectures.names())
    weights_before = {w.name for w in architectures.weights_entries()}
    # The plugin's folder goes on sys.path (first, for the rest of the process), so the
    # plugin can import the modules that sit next to it, also later from inside a builder.
    folder = str(path.resolve().parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    module_name = f"semseg_bench_plugin_{path.stem}_{abs(hash(str(path.resolve()))) % 10**8}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise PluginError(f"Plugin {path}: Python cannot import this file.")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        with registering_from(f"plugin:{path}"):
            spec.loader.exec_module(module)
    except Exception as exc:
        sys.modules.pop(module_name, None)
        for w in list(architectures.weights_entries()):
            if w.name not in weights_before:
                unregister_weights(w.name)
        for name in architectures.names():
            if name not in before:
                unregister(name)
        raise PluginError(
            f"Plugin {path} raised while being imported, so none of its entries were "
            f"registered ({type(exc).__name__}: {exc}):\n{traceback.format_exc()}"
        ) from exc
    return [n for n in architectures.names() if n not in before]


def load_entry_points() -> list[str]:
    """Loads architectures from installed packages' ``semseg_bench.architectures`` entry points.

    Returns:
        The names the entry points registered.

    Raises:
        PluginError: An entry point raised while loading (the message holds its traceback).
    """
    import architectures

    before = set(architectures.names())
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            with registering_from(f"entry-point:{ep.name}"):
                ep.load()
        except Exception as exc:
            raise PluginError(
                f"Entry point {ep.name!r} ({ep.value}) in group {ENTRY_POINT_GROUP!r} raised "
                f"while loading:\n{traceback.format_exc()}"
            ) from exc
    return [n for n in architectures.names() if n not in before]


def plugin_files() -> list[str]:
    """Files of the ``--plugin`` entries in the registry, in registration order."""
    files: list[str] = []
    import architectures

    for entry in architectures.entries():
        if entry.source.startswith("plugin:"):
            path = entry.source.split(":", 1)[1]
            if path not in files:
                files.append(path)
    return files
