"""Tests for ``speed.variants`` (``bench.speed.variants``): the config check, each variant's
figures and failures, the record field, the leaderboard's fastest-variant columns and the
setting ids.

Timing runs on a fake clock driven by the model (10 ms per image contiguous, 4 ms
channels-last, 5 ms under bf16 autocast), so every figure below is exact; no test asserts on
an absolute duration. The one real ``torch.compile`` is marked slow (the smoke suite compiles
for real in CI).
"""

from __future__ import annotations

import io

import pandas as pd
import pytest
import torch
from torch import nn

from bench import record_sections
from bench.errors import ConfigError, RecordError
from bench.records import RunRecord
from bench.reporting import leaderboard_csv
from bench.reporting.frame import report_frame
from bench.reporting.ranking import group_tables
from bench.speed import VARIANT_NAMES, SpeedConfig, measure_variants
from bench.speed.variants import error_text, variant_config
from bench.suites import load_suite
from tests.factories import FakeClock, run_record, write_suite

CONFIG = SpeedConfig(warmup=1, min_iters=3, max_iters=3, min_time_s=0.0, max_batch=2)
SHAPE = (3, 8, 8)


class ClockNet(nn.Module):
    """A 1x1 convolution that advances a fake clock per image: 10 ms for a contiguous input,
    4 ms for a channels-last one, 5 ms under bf16 autocast; counts its calls."""

    def __init__(self, clock: FakeClock) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 2, 1)
        self.clock = clock
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        if torch.is_autocast_enabled("cpu"):
            per_image = 0.005
        elif x.is_contiguous(memory_format=torch.channels_last):
            per_image = 0.004
        else:
            per_image = 0.010
        self.clock.now += per_image * x.shape[0]
        return self.conv(x)


def with_variants(*names: str) -> SpeedConfig:
    return SpeedConfig(**{**CONFIG.__dict__, "variants": list(names)})


# ----------------------------------------------------------------------------- the config


def test_variants_default_to_none_and_accept_every_name() -> None:
    assert SpeedConfig().variants == []
    assert VARIANT_NAMES == ("eager", "channels_last", "compile", "fp16", "bf16")
    assert SpeedConfig(variants=list(VARIANT_NAMES)).variants == list(VARIANT_NAMES)


@pytest.mark.parametrize(
    ("variants", "message"),
    [
        (["eager", "jit"], r"variants must be names out of eager, channels_last, compile, fp16, "
         r"bf16; found 'jit' in \['eager', 'jit'\]\. Fix: list some of"),
        (["compile", "eager", "compile"], r"each variant once; found compile more than once"),
        ("compile", r"variants must be a list of names; found 'compile'\. Fix:"),
    ],
)  # fmt: skip
def test_bad_variants_are_refused_with_the_fix(variants: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        SpeedConfig(variants=variants)  # type: ignore[arg-type]


def test_a_suite_file_with_an_unknown_variant_names_the_file_and_section(tmp_path) -> None:
    text = "dataset: synthetic\narchs: [fcn8s]\nspeed: {variants: [eager, tensorrt]}\n"
    path = write_suite(tmp_path, text, "bad.yaml")
    with pytest.raises(ConfigError, match=r"bad\.yaml: speed: variants must be names out of"):
        load_suite(str(path))


def test_each_variant_changes_one_field_of_the_suites_setting() -> None:
    base = SpeedConfig(dtype="bf16", variants=["eager", "channels_last"])
    assert variant_config(base, "eager") == SpeedConfig(dtype="bf16")
    assert variant_config(base, "compile") == SpeedConfig(dtype="bf16")
    assert variant_config(base, "channels_last") == SpeedConfig(dtype="bf16", channels_last=True)
    assert variant_config(base, "fp16") == SpeedConfig(dtype="fp16")
    assert variant_config(SpeedConfig(), "bf16") == SpeedConfig(dtype="bf16")


def test_variants_leave_the_setting_id_alone(tmp_path) -> None:
    # Timed last, variants change no other figure: committed records and the smoke baseline
    # keep their ids (smoke itself lists variants).
    assert load_suite("quick").setting == "64x64-steps60-bs4-fp32-seed0-18fb5f"
    smoke = load_suite("smoke")
    assert smoke.speed.variants == ["eager", "channels_last", "compile"]
    assert smoke.setting == "64x64-steps40-bs8-fp32-seed0-a7eb2e"
    base = "dataset: synthetic\nresolution: [64, 64]\narchs: [fcn8s]\n"
    plain = load_suite(str(write_suite(tmp_path, base, "plain.yaml")))
    listed = load_suite(
        str(write_suite(tmp_path, base + "speed: {variants: [compile]}\n", "v.yaml"))
    )
    assert listed.setting == plain.setting


# ----------------------------------------------------------------------------- measuring


def test_each_variant_is_timed_with_its_own_figures(fake_clock: FakeClock) -> None:
    model = ClockNet(fake_clock).train()
    config = with_variants("eager", "channels_last", "bf16")
    results = measure_variants(model, SHAPE, config, batch_size=2)
    assert [r.name for r in results] == ["eager", "channels_last", "bf16"]
    assert [r.status for r in results] == ["ok"] * 3
    assert [(r.dtype, r.channels_last, r.compiled) for r in results] == [
        ("fp32", False, False), ("fp32", True, False), ("bf16", False, False),
    ]  # fmt: skip
    assert [r.latency.p50 for r in results] == pytest.approx([10.0, 4.0, 5.0])
    assert [r.latency.n for r in results] == [3, 3, 3]
    # Batch 2: 2 images per 20, 8 and 10 ms.
    assert [r.throughput_ips for r in results] == pytest.approx([100.0, 250.0, 200.0])
    assert {r.throughput_batch_size for r in results} == {2}
    assert [r.speedup for r in results] == pytest.approx([1.0, 2.5, 2.0])
    assert [r.compile_s for r in results] == [None] * 3
    # Per variant: warm-up + 3 latency calls, warm-up + 3 throughput calls.
    assert model.calls == 3 * (4 + 4)
    # The model is as it was: training mode, contiguous weights.
    assert model.training and model.conv.weight.is_contiguous()


def test_a_failing_variant_is_recorded_and_the_others_go_on(
    fake_clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_compiler(*args: object, **kwargs: object) -> nn.Module:
        raise RuntimeError("backend='inductor' raised:\nCppCompileError: no C++ compiler\nmore")

    monkeypatch.setattr(torch, "compile", no_compiler)
    config = with_variants("compile", "fp16", "channels_last")
    results = measure_variants(ClockNet(fake_clock), SHAPE, config, batch_size=1)
    assert [r.status for r in results] == ["error", "error", "ok"]
    assert results[0].error == (
        "RuntimeError: backend='inductor' raised: CppCompileError: no C++ compiler"
    )
    assert results[1].error.startswith("ConfigError: dtype 'fp16' is only supported on CUDA")
    assert [r.latency for r in results[:2]] == [None, None]
    assert [r.throughput_ips for r in results[:2]] == [None, None]
    assert results[2].latency.p50 == pytest.approx(4.0)
    # No eager variant: no speed-up to state.
    assert [r.speedup for r in results] == [None, None, None]


class LazyFailure(nn.Module):
    """What ``torch.compile`` returns when compilation fails only at the first call."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        raise RuntimeError("compile failed at the first call")


def test_a_compile_that_fails_at_the_first_call_is_recorded(
    fake_clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(torch, "compile", lambda model, **kwargs: LazyFailure())
    (result,) = measure_variants(ClockNet(fake_clock), SHAPE, with_variants("compile"))
    assert (result.status, result.error) == (
        "error",
        "RuntimeError: compile failed at the first call",
    )


def test_compile_times_its_first_calls_apart(
    fake_clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    compiled: list[dict[str, object]] = []

    def fake_compile(model: nn.Module, **kwargs: object) -> nn.Module:
        compiled.append(kwargs)
        return model  # "compiles" to itself: its first calls take the model's time

    monkeypatch.setattr(torch, "compile", fake_compile)
    model = ClockNet(fake_clock)
    eager, comp = measure_variants(model, SHAPE, with_variants("eager", "compile"), batch_size=2)
    assert compiled == [{"dynamic": False}]
    assert (comp.status, comp.compiled) == ("ok", True)
    # One untimed call at batch 1 (10 ms) and one at batch 2 (20 ms).
    assert comp.compile_s == pytest.approx(0.030)
    assert comp.latency.p50 == pytest.approx(10.0) and comp.speedup == pytest.approx(1.0)
    assert eager.compile_s is None


def test_error_text_is_the_type_and_the_first_line() -> None:
    assert error_text(ValueError("bad\nworse")) == "ValueError: bad"
    assert error_text(KeyError()) == "KeyError"
    assert len(error_text(RuntimeError("x" * 1000))) == 300


# ----------------------------------------------------------------------------- the record


def speed_with_variants() -> dict[str, object]:
    """A FIXTURE speed section (hand-chosen numbers) with three variants, one failed."""
    speed = run_record(p50=10.0).to_dict()["speed"]

    def variant(name: str, p50: float | None, **extra: object) -> dict[str, object]:
        ok = p50 is not None
        return {
            "name": name,
            "status": "ok" if ok else "error",
            "error": None if ok else "RuntimeError: no compiler",
            "dtype": "fp32",
            "channels_last": name == "channels_last",
            "compiled": name == "compile",
            "latency_ms": {"p50": p50, "p90": p50, "p99": p50, "mean": p50, "std": 0.0,
                           "cv": 0.0, "n": 5} if ok else None,
            "throughput_ips": 1000.0 / p50 if ok else None,
            "throughput_batch_size": 8 if ok else None,
            "compile_s": None,
            "speedup": 10.0 / p50 if ok else None,
            **extra,
        }  # fmt: skip

    speed["variants"] = [
        variant("eager", 10.0),
        variant("channels_last", 8.0),
        variant("compile", None),
    ]
    return speed


def test_records_round_trip_with_and_without_variants() -> None:
    old = run_record().to_dict()
    assert "variants" not in old["speed"]  # left out, not null: older records are unchanged
    assert RunRecord.from_dict(old).to_dict() == old
    new = {**old, "speed": speed_with_variants()}
    record = RunRecord.from_dict(new)
    assert record.to_dict() == new
    assert [v.name for v in record.speed.variants] == ["eager", "channels_last", "compile"]
    best = record.speed.best_variant()
    assert (best.name, best.latency_ms.p50, best.speedup) == ("channels_last", 8.0, 1.25)


def test_a_variant_with_an_unknown_name_is_refused() -> None:
    data = {**run_record().to_dict(), "speed": speed_with_variants()}
    data["speed"]["variants"][0]["name"] = "tensorrt"
    with pytest.raises(RecordError, match=r"speed\.variants\[\]\.name|variants\[0\]\.name"):
        RunRecord.from_dict(data)


def test_speed_section_times_the_variants_last(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(record_sections, "NORMALISED_MIN_TIME_S", 0.0)
    monkeypatch.setattr(torch, "compile", lambda *a, **k: (_ for _ in ()).throw(OSError("no cc")))
    config = SpeedConfig(
        warmup=0, min_iters=2, max_iters=2, min_time_s=0.0, max_batch=2,
        variants=["eager", "compile"],
    )  # fmt: skip
    model = nn.Conv2d(3, 2, 1)
    section = record_sections.speed_section(
        model, SHAPE, config, gmacs=0.0, device="cpu", matmul_gflops_per_s=1.0
    )
    eager, comp = section.variants
    assert (eager.name, eager.status, eager.latency_ms.n) == ("eager", "ok", 2)
    assert eager.throughput_batch_size == section.throughput_batch_size
    assert (comp.status, comp.error) == ("error", "OSError: no cc")
    plain = record_sections.speed_section(
        model, SHAPE, SpeedConfig(**{**config.__dict__, "variants": []}),
        gmacs=0.0, device="cpu", matmul_gflops_per_s=1.0,
    )  # fmt: skip
    assert plain.variants is None and "variants" not in plain.to_dict()


# ----------------------------------------------------------------------------- reporting


def test_the_leaderboard_shows_the_fastest_ok_variant() -> None:
    with_v = RunRecord.from_dict({**run_record("fcn8s").to_dict(), "speed": speed_with_variants()})
    without = run_record("segnet", miou=0.4)
    csv = pd.read_csv(io.StringIO(leaderboard_csv([with_v, without])))
    rows = csv.set_index("arch")
    assert rows.loc["fcn8s", "speed_variant"] == "channels_last"
    assert rows.loc["fcn8s", "speed_variant_p50_ms"] == 8.0
    assert rows.loc["fcn8s", "speed_variant_speedup"] == 1.25
    assert rows.loc[["segnet"], ["speed_variant", "speed_variant_p50_ms"]].isna().all(axis=None)
    text = "\n".join(group_tables(report_frame([with_v, without])))
    table = [line.split("|")[1:-1] for line in text.splitlines() if line.startswith("|")]
    header, cells = [c.strip() for c in table[0]], {r[1].strip(): r for r in table[2:]}
    column = header.index("fastest variant (p50 ms, speed-up)")
    assert cells["FCN8S (`fcn8s`)"][column].strip() == "channels_last 8.00 ms (1.25x)"
    assert cells["SEGNET (`segnet`)"][column].strip() == "–"
    # A table without variants has no such column.
    assert "fastest variant" not in "\n".join(group_tables(report_frame([without])))


# ----------------------------------------------------------------------------- real compile


@pytest.mark.slow
def test_torch_compile_for_real_on_a_tiny_net() -> None:
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 2, 1))
    config = SpeedConfig(
        warmup=1, min_iters=3, max_iters=3, min_time_s=0.0, variants=["eager", "compile"]
    )
    eager, comp = measure_variants(net, (3, 16, 16), config, batch_size=2)
    assert eager.status == "ok"
    assert comp.status == "ok", comp.error
    assert comp.compiled and comp.compile_s > 0 and comp.latency.n == 3
    assert comp.speedup == pytest.approx(eager.latency.p50 / comp.latency.p50)
