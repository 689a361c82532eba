"""What the harness loads and runs, checked statically over ``bench/``, ``architectures/`` and
``run_bench.py``: every checkpoint load is weights-only, YAML is read with ``safe_load``, NumPy
never unpickles, and no subprocess goes through a shell.
"""

from __future__ import annotations

import ast

from tests.factories import ROOT


def _calls(tree):
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            f = node.func
            name = f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", "")
            owner = getattr(f.value, "id", "") if isinstance(f, ast.Attribute) else ""
            yield node, owner, name


def test_loads_are_safe_and_nothing_runs_a_shell():
    """Every checkpoint load is weights-only, YAML is read with safe_load, NumPy never unpickles,
    and no subprocess goes through a shell (a static scan of the harness and architectures)."""
    files = [
        *sorted((ROOT / "bench").rglob("*.py")),
        *sorted((ROOT / "architectures").rglob("*.py")),
        ROOT / "run_bench.py",
    ]
    torch_loads = set()
    for path in files:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node, owner, name in _calls(tree):
            kw = {k.arg: k.value for k in node.keywords}
            where = f"{path.relative_to(ROOT)}:{node.lineno}"
            if (owner, name) == ("torch", "load"):
                torch_loads.add(str(path.relative_to(ROOT)))
                value = kw.get("weights_only")
                assert isinstance(value, ast.Constant) and value.value is True, where
            assert (owner, name) not in {
                ("yaml", "load"),
                ("yaml", "unsafe_load"),
                ("yaml", "full_load"),
                ("pickle", "load"),
                ("pickle", "loads"),
                ("os", "system"),
                ("os", "popen"),
            }, where
            if owner == "np" and name == "load":
                value = kw.get("allow_pickle")
                assert value is None or (isinstance(value, ast.Constant) and not value.value), where
            if owner == "subprocess":
                value = kw.get("shell")
                assert value is None or (isinstance(value, ast.Constant) and not value.value), where
    # The scan saw the three loads there are (a harness checkpoint, a pretrained backbone, a
    # saved training state).
    assert torch_loads == {
        "bench/checkpoint.py",
        "architectures/_pretrained.py",
        "bench/train/state.py",
    }
