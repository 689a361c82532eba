"""The layers of the house, enforced: the one place the tests check who may import whom.

* **Statically**, by import-linter: the contracts under ``[tool.importlinter]`` in
  ``pyproject.toml`` (what ``lint-imports``, run by ``make lint``, checks) must all be kept.
  import-linter follows indirect imports and imports inside functions. The tests also pin that
  the contracts still state the layer rules of the README ("Layout"), so a contract cannot be
  weakened silently, and check the one kind of circle the ``acyclic_siblings`` contract cannot
  see: a module importing the package that contains it (whose ``__init__`` imports it back).
* **At run time**, in a fresh interpreter per case: what static analysis of ``bench`` and
  ``architectures`` cannot see, because ``torch`` is outside the analysed packages. Records and
  reporting can be read and rendered without torch, and ``run_bench.py --help`` answers without
  loading it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator

import grimp
import pytest
from importlinter.api import read_configuration

from tests.factories import ROOT

PYPROJECT = ROOT / "pyproject.toml"
ROOT_PACKAGES = ("bench", "architectures")


def _contracts() -> list[dict[str, object]]:
    """The import-linter contracts declared in ``pyproject.toml``, as import-linter reads them."""
    return read_configuration(str(PYPROJECT))["contracts_options"]


def lint_imports() -> subprocess.CompletedProcess[str]:
    """``lint-imports`` on this checkout's ``pyproject.toml``, in a subprocess of this Python.

    The checkout goes first on the child's ``PYTHONPATH``, so the packages analysed are this
    checkout's (not an installed copy); no cache is read or written, and the report is not
    wrapped (one line per contract).
    """
    code = "import sys; from importlinter.cli import lint_imports_command; lint_imports_command()"
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "COLUMNS": "500", "PYTHONPATH": path}
    return subprocess.run(
        [sys.executable, "-c", code, str(PYPROJECT), "--no-cache", "--no-logo"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


# --------------------------------------------------------------------------- static: contracts


def test_every_declared_contract_is_kept() -> None:
    contracts = _contracts()
    assert len(contracts) >= 4, f"only {len(contracts)} import-linter contracts in pyproject.toml"
    assert any(c["type"] == "acyclic_siblings" for c in contracts), "no contract forbids cycles"
    result = lint_imports()
    report = result.stdout + result.stderr
    assert result.returncode == 0, report
    for contract in contracts:
        assert f"{contract['name']} KEPT" in report.splitlines(), (contract["name"], report)
    assert f"Contracts: {len(contracts)} kept, 0 broken." in report, report


def _forbidden(source: str) -> set[str]:
    """The modules forbidden to ``source`` by the ``forbidden`` contracts that name it."""
    out: set[str] = set()
    for contract in _contracts():
        if contract["type"] == "forbidden" and source in contract["source_modules"]:
            out.update(contract["forbidden_modules"])
    return out


@pytest.mark.parametrize(
    ("sources", "forbidden"),
    [
        # architectures knows nothing of the harness.
        (["architectures"], {"bench"}),
        # Measurement imports neither training, data nor the suites and the sweep.
        (
            ["bench.metrics", "bench.complexity", "bench.speed"],
            {"bench.train", "bench.data", "bench.suites", "bench.runner"},
        ),
        # Reporting reads records: no architectures, training or measurement.
        (
            ["bench.reporting"],
            {
                "architectures",
                "bench.train",
                "bench.metrics",
                "bench.complexity",
                "bench.speed",
            },
        ),
        # Records import none of the suite or runner code.
        (["bench.records"], {"bench.suites", "bench.runner"}),
        # Training does not import the suites that drive it.
        (["bench.train"], {"bench.suites"}),
    ],
    ids=["architectures", "measurement", "reporting", "records", "training"],
)
def test_the_contracts_state_the_documented_layers(sources: list[str], forbidden: set[str]) -> None:
    """The README's layer rules are (at least) what the contracts forbid."""
    for source in sources:
        missing = forbidden - _forbidden(source)
        assert not missing, f"no contract forbids {source} to import {sorted(missing)}"


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    """The import graph of this checkout's packages (function-level imports included), built by
    grimp, the library under import-linter (``tests/conftest.py`` puts the checkout first on
    ``sys.path``)."""
    return grimp.build_graph(*ROOT_PACKAGES, cache_dir=None)


def _packages(graph: grimp.ImportGraph) -> Iterator[str]:
    for module in sorted(graph.modules):
        if graph.find_children(module):
            yield module


def test_the_graph_is_this_checkouts(graph: grimp.ImportGraph) -> None:
    assert {"bench.records", "bench.reporting", "bench.data", "architectures"} <= set(
        _packages(graph)
    )


def test_no_module_imports_its_own_package(graph: grimp.ImportGraph) -> None:
    """``from bench.data import X`` inside ``bench.data.voc`` is a circle through
    ``bench/data/__init__.py`` (which imports ``voc``): ``acyclic_siblings`` compares siblings
    only, so this is checked here, for every package."""
    circles = [
        f"{child} imports {package}"
        for package in _packages(graph)
        for child in graph.find_descendants(package)
        if package in graph.find_modules_directly_imported_by(child)
        and graph.chain_exists(importer=package, imported=child)
    ]
    assert circles == []


# --------------------------------------------------------------------------- run time: torch

LOADED = "print(json.dumps(sorted(sys.modules)))"
IMPORT_PACKAGE = (
    "import importlib, json, pkgutil, sys\n"
    "package = importlib.import_module({name!r})\n"
    "for info in pkgutil.walk_packages(package.__path__, package.__name__ + '.'):\n"
    "    importlib.import_module(info.name)\n" + LOADED
)
CLI_HELP = (
    "import contextlib, io, json, runpy, sys\n"
    "sys.argv = ['run_bench.py', '--help']\n"
    "with contextlib.redirect_stdout(io.StringIO()) as out:\n"
    "    try:\n"
    "        runpy.run_path('run_bench.py', run_name='__main__')\n"
    "    except SystemExit as exc:\n"
    "        assert exc.code == 0, exc.code\n"
    "assert 'usage: run_bench.py' in out.getvalue(), out.getvalue()\n" + LOADED
)


def loaded_modules(code: str) -> list[str]:
    """``sys.modules`` after running ``code`` in a fresh interpreter of this checkout."""
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize(
    ("code", "proof"),
    [
        pytest.param(
            IMPORT_PACKAGE.format(name="bench.records"), "bench.records.upgrade", id="records"
        ),
        pytest.param(
            IMPORT_PACKAGE.format(name="bench.reporting"), "bench.reporting.plots", id="reporting"
        ),
        pytest.param(CLI_HELP, "bench.cli.parser", id="run_bench.py --help"),
    ],
)
def test_loads_no_torch(code: str, proof: str) -> None:
    """Records and reporting (every module of each package) and ``run_bench.py --help`` run
    without torch: a user's script reads records, and the leaderboard renders, where torch is
    not installed; ``--help`` answers at once."""
    modules = loaded_modules(code)
    assert proof in modules  # the child imported what the case is about
    assert [m for m in modules if m == "torch" or m.startswith("torch.")] == []


def test_no_module_of_the_harness_or_the_architectures_is_over_700_lines() -> None:
    """Issue 11: no room over 700 lines (split a module along its concerns instead)."""
    long = {
        str(path.relative_to(ROOT)): n
        for folder in ("bench", "architectures")
        for path in sorted((ROOT / folder).rglob("*.py"))
        if (n := len(path.read_text(encoding="utf-8").splitlines())) > 700
    }
    assert long == {}
