"""Tests for ``bench.plugins``: loading user architecture files, and the example plugin.

The example plugin (``examples/my_arch_plugin.py``, shown in the README) must pass the same
checks as every registered entry: the ``check_*`` functions of the contract test are reused.
"""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from test_architecture_contract import (
    AWKWARD_SHAPE,
    BATCH_SHAPE,
    NUM_CLASSES,
    check_complexity,
    check_eval_deterministic,
    check_eval_forward,
    check_gradients,
    check_info,
    check_state_dict_round_trip,
    check_train_outputs,
    run_train_step,
)

import architectures
from architectures._registry import unregister
from bench.models import PadCrop, build_model
from bench.plugins import PluginError, load_plugin
from tests.factories import ROOT

EXAMPLE = ROOT / "examples" / "my_arch_plugin.py"
EXAMPLE_NAME = "my_tiny_unet"

BUILDER = """
from torch import nn
from architectures import ArchInfo, register

@register(ArchInfo(name={name!r}, title="T", paper="1505.04597", year=2015, family="test"))
def _build(*, num_classes: int) -> nn.Module:
    return nn.Conv2d(3, num_classes, 1)
"""


def _write(path: Path, source: str) -> Path:
    path.write_text(textwrap.dedent(source))
    return path


@pytest.fixture
def example(restore_registry: None) -> Iterator[str]:
    """Loads the example plugin (again, if ``SEMSEG_BENCH_PLUGINS`` already did) and cleans up."""
    unregister(EXAMPLE_NAME)
    assert load_plugin(EXAMPLE) == [EXAMPLE_NAME]
    try:
        yield EXAMPLE_NAME
    finally:
        unregister(EXAMPLE_NAME)


# --------------------------------------------------------------------------- the example


def test_example_registers_with_plugin_source(example: str) -> None:
    entry = architectures.get_entry(example)
    assert entry.source == f"plugin:{EXAMPLE}"
    check_info(entry.info, example)
    assert entry.info.aux_weights == (("aux", 0.4),)


def test_example_meets_the_contract(example: str) -> None:
    info = architectures.get_info(example)
    torch.manual_seed(0)
    model = build_model(example, num_classes=NUM_CLASSES[0]).eval()
    assert isinstance(model, PadCrop) and model.divisor == info.input_divisor == 8
    check_eval_forward(model, NUM_CLASSES[0], BATCH_SHAPE)
    check_eval_forward(model, NUM_CLASSES[0], AWKWARD_SHAPE)  # padded to 104x136, cropped back
    check_eval_forward(
        build_model(example, num_classes=NUM_CLASSES[1]), NUM_CLASSES[1], BATCH_SHAPE
    )
    step = run_train_step(model, info, NUM_CLASSES[0])
    assert step.output_kind == "dict" and set(step.output_shapes) == {"out", "aux"}
    check_train_outputs(step, info, NUM_CLASSES[0])
    check_gradients(step)
    check_eval_deterministic(model)
    check_state_dict_round_trip(example, NUM_CLASSES[0], model)
    check_complexity(model, info=info)  # the aux head is left out of the eval params


def test_example_aux_head_only_in_train_mode(example: str) -> None:
    """The auxiliary head runs in train mode only, so eval speed and MACs exclude it."""
    model = architectures.build(example, num_classes=2)
    calls: list[str] = []
    model.aux_head.register_forward_hook(lambda *args: calls.append("aux"))
    with torch.no_grad():
        model.eval()(torch.randn(1, 3, 32, 32))
        assert calls == []
        model.train()(torch.randn(2, 3, 32, 32))
    assert calls == ["aux"]


def test_example_width_option(example: str) -> None:
    narrow = architectures.build(example, num_classes=2, width=8)
    wide = architectures.build(example, num_classes=2)
    assert narrow.enc1[0].out_channels == 8 and wide.enc1[0].out_channels == 16


def test_contract_checks_catch_broken_entries(restore_registry: None, tmp_path: Path) -> None:
    """The reused checks can fail: an entry with the wrong output size, one with a dead layer."""
    plugin = _write(
        tmp_path / "broken.py",
        """
        import torch.nn.functional as F
        from torch import nn
        from architectures import ArchInfo, register

        class Broken(nn.Module):
            def __init__(self, num_classes, half):
                super().__init__()
                self.conv = nn.Conv2d(3, num_classes, 1)
                self.unused = nn.Linear(4, 4)
                self.half = half

            def forward(self, x):
                out = self.conv(x)
                return F.avg_pool2d(out, 2) if self.half else out

        def info(name):
            return ArchInfo(name=name, title="B", paper="1505.04597", year=2015, family="t")

        @register(info("tmp_half_res"))
        def tmp_half_res(*, num_classes):
            return Broken(num_classes, half=True)

        @register(info("tmp_dead_layer"))
        def tmp_dead_layer(*, num_classes):
            return Broken(num_classes, half=False)
    """,
    )
    assert load_plugin(plugin) == ["tmp_half_res", "tmp_dead_layer"]
    with pytest.raises(AssertionError, match=r"expected logits \(2, 2, 64, 64\), got \(2, 2, 32"):
        check_eval_forward(build_model("tmp_half_res", num_classes=2), 2, BATCH_SHAPE)
    model = build_model("tmp_dead_layer", num_classes=2)
    step = run_train_step(model, architectures.get_info("tmp_dead_layer"), 2)
    assert set(step.no_grad) == {"unused.weight", "unused.bias"}
    with pytest.raises(AssertionError, match="unused.weight"):
        check_gradients(step)
    check_gradients(step, {"unused.weight": "test", "unused.bias": "test"})


# --------------------------------------------------------------------------- loading errors


def test_plugin_source_is_plugin_path(restore_registry: None, tmp_path: Path) -> None:
    plugin = _write(tmp_path / "one.py", BUILDER.format(name="tmp_one"))
    assert load_plugin(plugin) == ["tmp_one"]
    assert architectures.get_entry("tmp_one").source == f"plugin:{plugin}"
    assert architectures.build("tmp_one", num_classes=3).out_channels == 3


def test_plugin_imports_a_module_next_to_it(restore_registry: None, tmp_path: Path) -> None:
    folder = tmp_path / "my_plugins_7f3a"
    folder.mkdir()
    _write(folder / "blocks_7f3a.py", "from torch import nn\n\nWIDTH = 5\nHead = nn.Conv2d\n")
    source = """
from torch import nn
from architectures import ArchInfo, register
from blocks_7f3a import WIDTH

@register(ArchInfo(name="tmp_sibling", title="T", paper="1505.04597", year=2015, family="test"))
def _build(*, num_classes: int) -> nn.Module:
    from blocks_7f3a import Head  # also importable later, when the entry is built

    return nn.Sequential(nn.Conv2d(3, WIDTH, 1), Head(WIDTH, num_classes, 1))
"""
    plugin = _write(folder / "net.py", source)
    try:
        assert load_plugin(plugin) == ["tmp_sibling"]
        assert architectures.build("tmp_sibling", num_classes=3)[1].out_channels == 3
    finally:
        sys.modules.pop("blocks_7f3a", None)
        sys.path.remove(str(folder.resolve()))


def test_plugin_weights_are_removed_with_its_entries_when_it_raises(
    restore_registry: None, tmp_path: Path
) -> None:
    source = (
        BUILDER.format(name="tmp_w")
        + """
from architectures import WeightsInfo, WeightsSource, register_weights

register_weights(
    WeightsInfo(
        name="tmp_w.mine",
        file="mine.pt",
        sha256="0" * 64,
        source=WeightsSource("me/net", "abc", "mine.pt", "MIT"),
        dataset="synthetic",
        class_names=("a", "b"),
        channels=(0, 1),
    )
)
raise RuntimeError("later")
"""
    )
    plugin = _write(tmp_path / "w.py", source)
    with pytest.raises(PluginError, match="RuntimeError: later"):
        load_plugin(plugin)
    assert "tmp_w" not in architectures.names()
    assert [w.name for w in architectures.weights_entries("tmp_w")] == []


def test_plugin_that_raises_reports_traceback_and_registers_nothing(
    restore_registry: None, tmp_path: Path
) -> None:
    source = (
        BUILDER.format(name="tmp_half")
        + """
def helper():
    raise RuntimeError("boom")

helper()
"""
    )
    plugin = _write(tmp_path / "bad.py", source)
    line = source.splitlines().index('    raise RuntimeError("boom")') + 1
    before = architectures.names()
    with pytest.raises(PluginError) as info:
        load_plugin(plugin)
    message = str(info.value)
    assert str(plugin) in message
    assert 'raise RuntimeError("boom")' in message  # the plugin's own source line
    assert "RuntimeError: boom" in message
    assert f"line {line}, in helper" in message
    assert architectures.names() == before  # tmp_half, registered before the raise, is gone


BAD_META = """
@register(ArchInfo({fields}))
def _bad(*, num_classes: int) -> nn.Module:
    return nn.Conv2d(3, num_classes, 1)
"""


@pytest.mark.parametrize(
    ("field", "bad"),
    [
        ("year", {"year": "215"}),
        ("paper", {"paper": "'arXiv:1505.04597'"}),
        ("aux_weights keys", {"aux_weights": "(('out', 0.4),)"}),
        ("in_channels", {"in_channels": "0"}),
    ],
)
def test_plugin_with_bad_archinfo_fails_at_load_and_registers_nothing(
    restore_registry: None, tmp_path: Path, field: str, bad: dict[str, str]
) -> None:
    """``ArchInfo`` validates itself, so a bad entry fails when the plugin registers it (not
    later in a test); the good entry the file registered before it is removed again."""
    fields = {"name": "'tmp_bad_meta'", "title": "'T'", "paper": "'1505.04597'"}
    fields.update({"year": "2015", "family": "'test'", **bad})
    source = BUILDER.format(name="tmp_good_first") + BAD_META.format(
        fields=", ".join(f"{k}={v}" for k, v in fields.items())
    )
    plugin = _write(tmp_path / "bad_meta.py", source)
    before = architectures.names()
    with pytest.raises(PluginError) as info:
        load_plugin(plugin)
    message = str(info.value)
    assert str(plugin) in message
    assert f"ArchitectureError: ArchInfo 'tmp_bad_meta': {field} must be " in message
    assert architectures.names() == before  # tmp_good_first is gone too


def test_plugin_with_syntax_error(restore_registry: None, tmp_path: Path) -> None:
    plugin = _write(tmp_path / "syntax.py", "def broken(:\n")
    with pytest.raises(PluginError, match="SyntaxError"):
        load_plugin(plugin)


@pytest.mark.parametrize("name", ["missing.py", "plugin.txt"])
def test_missing_or_non_python_file(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    if name.endswith(".txt"):
        path.write_text("x = 1\n")
    with pytest.raises(FileNotFoundError, match=name):
        load_plugin(path)


def test_duplicate_of_builtin_names_previous_source(restore_registry: None, tmp_path: Path) -> None:
    plugin = _write(tmp_path / "dup.py", BUILDER.format(name="fcn8s"))
    with pytest.raises(PluginError, match=r"'fcn8s' is already registered \(by builtin\)"):
        load_plugin(plugin)
    assert architectures.get_entry("fcn8s").source == "builtin"


def test_duplicate_across_plugins_names_first_plugin(
    restore_registry: None, tmp_path: Path
) -> None:
    first = _write(tmp_path / "first.py", BUILDER.format(name="tmp_shared"))
    second = _write(tmp_path / "second.py", BUILDER.format(name="tmp_shared"))
    load_plugin(first)
    with pytest.raises(PluginError) as info:
        load_plugin(second)
    assert f"'tmp_shared' is already registered (by plugin:{first})" in str(info.value)
    assert architectures.get_entry("tmp_shared").source == f"plugin:{first}"
