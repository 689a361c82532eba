"""Shared pytest setup: import path, user plugins, the ``cuda`` marker and a registry guard.

* The repository root goes first on ``sys.path``, so ``import architectures`` and
  ``import bench`` work from a plain checkout (no ``pip install -e .`` needed).
* **Your own architectures under the contract test.** Set ``SEMSEG_BENCH_PLUGINS`` to one or
  more plugin files (``.py`` paths separated by ``os.pathsep``: ``:`` on Linux/macOS, ``;`` on
  Windows). Each is loaded with :func:`bench.plugins.load_plugin` before collection, so every
  entry it registers is parametrized into ``tests/test_architecture_contract.py`` like a
  built-in one::

      SEMSEG_BENCH_PLUGINS=examples/my_arch_plugin.py \\
          python -m pytest tests/test_architecture_contract.py -k my_unet

  A plugin that fails to import stops the session with its traceback (a usage error), rather
  than silently testing fewer architectures. The loaded entries are listed in the report header.
* Tests marked ``cuda`` are skipped when ``torch.cuda.is_available()`` is False.
* The ``restore_registry`` fixture snapshots the architecture registry and restores it after the
  test, for tests that register temporary entries.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

PLUGINS_ENV = "SEMSEG_BENCH_PLUGINS"

_loaded_plugins: dict[str, list[str]] = {}


def plugin_paths(value: str | None) -> list[str]:
    """The plugin files named by a ``SEMSEG_BENCH_PLUGINS`` value (empty items ignored)."""
    return [p.strip() for p in (value or "").split(os.pathsep) if p.strip()]


def pytest_configure(config: pytest.Config) -> None:
    """Loads the plugins named in ``SEMSEG_BENCH_PLUGINS`` before any test module is collected."""
    from bench.plugins import PluginError, load_plugin

    for path in plugin_paths(os.environ.get(PLUGINS_ENV)):
        if path in _loaded_plugins:
            continue
        try:
            _loaded_plugins[path] = load_plugin(path)
        except (FileNotFoundError, PluginError) as exc:
            raise pytest.UsageError(f"{PLUGINS_ENV}: could not load {path}:\n{exc}") from exc


def pytest_report_header(config: pytest.Config) -> list[str]:
    """Names the plugin entries under test, so a run says what it covered."""
    return [
        f"semseg-bench plugin {path}: {', '.join(names) or '(registered nothing)'}"
        for path, names in _loaded_plugins.items()
    ]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skips tests marked ``cuda`` when no CUDA device is available."""
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device (torch.cuda.is_available() is False)")
    for item in items:
        if item.get_closest_marker("cuda") is not None:
            item.add_marker(skip)


@pytest.fixture
def restore_registry() -> Iterator[None]:
    """Restores the architecture registry (entries and order) after the test."""
    from architectures import _registry

    snapshot = dict(_registry._REGISTRY)
    try:
        yield
    finally:
        _registry._REGISTRY.clear()
        _registry._REGISTRY.update(snapshot)
