"""Shared pytest setup: import path, user plugins, the ``cuda`` marker, and every shared fixture.

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

Fixtures (the plain helpers they use, the same at every scope, are in ``tests/factories.py``):

* ``one_thread`` (per test) / ``one_thread_per_module``: one intra-op torch thread, the count
  restored after.
* ``restore_threads``: restores the thread count after a test whose sweep set its suite's.
* ``restore_registry`` (per test) / ``restore_registry_per_module``: restores the architecture
  registry, removing what a test, a module fixture or a ``--plugin`` registered.
* ``no_download``: an empty torch hub folder; any attempt to download fails the test.
* ``fake_clock``: a :class:`~tests.factories.FakeClock` that ``bench.speed.timing`` reads.
* ``camvid``: the CamVid fixture dataset written to ``tmp_path``.
* ``shard_runs`` (per session): the fault suite run unsharded and as three shards, one results
  folder each (read by ``test_shards.py`` and ``test_merge.py``).

Modules that need a fixture for every test say so with
``pytestmark = pytest.mark.usefixtures("one_thread")``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from tests.factories import FakeClock

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


# --------------------------------------------------------------------------- process state


@pytest.fixture
def one_thread() -> Iterator[None]:
    """One intra-op torch thread for the test, then the previous count.

    The inputs of the tests are tiny, and on a shared 2-core machine two OpenMP threads contend
    with other processes (the contract test took 230 s with 2 threads at load ~4.5, 99 s with
    one). No test depends on the thread count it runs with.
    """
    from tests.factories import torch_threads

    with torch_threads(1):
        yield


@pytest.fixture(scope="module")
def one_thread_per_module() -> Iterator[None]:
    """:func:`one_thread` for a whole module (its module-scoped models and runs included)."""
    from tests.factories import torch_threads

    with torch_threads(1):
        yield


@pytest.fixture
def restore_threads() -> Iterator[None]:
    """Restores torch's thread count after the test: a sweep sets its suite's ``threads`` for
    the whole process."""
    from tests.factories import torch_threads

    with torch_threads(None):
        yield


@pytest.fixture
def restore_registry() -> Iterator[None]:
    """Restores the architecture registry (entries and order) after the test."""
    from tests.factories import registry_restored

    with registry_restored():
        yield


@pytest.fixture(scope="module")
def restore_registry_per_module() -> Iterator[None]:
    """:func:`restore_registry` for a whole module (entries registered by module fixtures)."""
    from tests.factories import registry_restored

    with registry_restored():
        yield


# --------------------------------------------------------------------------- isolation


@pytest.fixture
def no_download(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """An empty torch hub folder (``tmp_path``); any attempt to download fails the test.

    Returns:
        The hub folder: a builder looks for weights in its ``checkpoints/``.
    """
    import torch

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a builder tried to download")

    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", refuse)
    monkeypatch.setattr(torch.hub, "download_url_to_file", refuse)
    return tmp_path


@pytest.fixture
def fake_clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    """A :class:`~tests.factories.FakeClock` that ``bench.speed.timing`` reads instead of the
    ``time`` module (every clock read of the latency, throughput and normalised loops)."""
    from bench.speed import timing
    from tests.factories import FakeClock

    clock = FakeClock()
    monkeypatch.setattr(timing, "time", clock)
    return clock


# --------------------------------------------------------------------------- data and runs


@pytest.fixture
def camvid(tmp_path: Path) -> Path:
    """The CamVid fixture dataset (``bench.data.fixtures``) written to ``tmp_path / "camvid"``."""
    from bench.data.fixtures import write_fixture

    return write_fixture("camvid", tmp_path / "camvid")


@pytest.fixture(scope="session")
def shard_runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The fault suite run unsharded (``single/``) and as its three shards (``shard1/`` ..
    ``shard3/``), in process, one results folder each (read by the shard and merge tests).

    The plugin's entries are registered for the runs only, and the thread count the suite sets
    is restored, so the folders are all that outlives the fixture (tests must not change them).
    """
    from bench.plugins import load_plugin
    from bench.runner import Sweep
    from bench.suites import load_suite
    from tests.factories import (
        FAULT_PLUGIN,
        FAULT_SUITE,
        FAULT_SUITE_ARCHS,
        registry_restored,
        torch_threads,
    )

    base = tmp_path_factory.mktemp("shards")
    with torch_threads(None), registry_restored():
        load_plugin(FAULT_PLUGIN)
        archs = list(FAULT_SUITE_ARCHS)
        suite = load_suite(str(FAULT_SUITE))
        quiet = {"device": "cpu", "progress": False, "log": lambda m: None}
        Sweep(suite, results_dir=base / "single", **quiet).run(archs)
        for i in (1, 2, 3):
            Sweep(suite, results_dir=base / f"shard{i}", **quiet).run(archs, shard=(i, 3))
    return base
