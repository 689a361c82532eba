"""Tests for bench.devices: the one device validator, device types and the CPU description."""

from __future__ import annotations

import pytest
import torch

from bench import devices
from bench.devices import (
    CpuInfo,
    cpu_info,
    device_name,
    device_type,
    parse_device,
    resolve_device,
    run_flags,
)
from bench.errors import BenchError, ConfigError


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_without_cuda_is_a_config_error_naming_the_fix():
    with pytest.raises(ConfigError) as exc:
        resolve_device("cuda")
    msg = str(exc.value)
    assert "--device cuda was requested but torch.cuda.is_available() is False" in msg
    assert "Use --device cpu" in msg
    with pytest.raises(ConfigError, match=r"--device cuda:1 was requested"):
        resolve_device("cuda:1")
    with pytest.raises(ConfigError, match=r"^device cuda:0 was requested"):
        parse_device("cuda:0")


def test_auto_and_cpu():
    assert resolve_device("cpu") == "cpu"
    assert resolve_device("auto") == ("cuda" if torch.cuda.is_available() else "cpu")
    assert parse_device("cpu") == torch.device("cpu")


@pytest.mark.parametrize("bad", ["tpu", "cuda:x", "CPU", "cpu:0:1", ""])
def test_other_names_are_rejected_with_the_accepted_forms(bad):
    with pytest.raises(ConfigError, match=r"--device must be auto, cpu or cuda\[:N\]; got "):
        resolve_device(bad)
    assert issubclass(ConfigError, BenchError) and issubclass(ConfigError, ValueError)


@pytest.mark.parametrize("bad", ["tpu", "meta", "mps"])
def test_parse_device_rejects_devices_the_harness_cannot_time(bad):
    with pytest.raises(ConfigError, match=rf"device must be cpu or cuda\[:N\]; got '{bad}'"):
        parse_device(bad)


@pytest.mark.parametrize(
    ("device", "expected"),
    [
        ("cuda:1", "cuda"),
        ("cuda", "cuda"),
        ("cpu", "cpu"),
        (None, ""),
        (torch.device("cpu"), "cpu"),
    ],
)
def test_device_type(device, expected):
    assert device_type(device) == expected


def test_cpu_info_reads_proc_cpuinfo_and_torch(monkeypatch):
    text = (
        "processor\t: 0\nvendor_id\t: AuthenticAMD\ncpu family\t: 25\nmodel\t\t: 1\n"
        "model name\t: AMD EPYC 7B13\nstepping\t: 0\nflags\t\t: fpu avx avx2 fma sse\n\n"
        "processor\t: 1\nvendor_id\t: SomethingElse\n"
    )
    monkeypatch.setattr(devices, "_proc_cpuinfo", lambda: devices._parse_cpuinfo(text))
    monkeypatch.setenv("ATEN_CPU_CAPABILITY", "avx2")
    devices.cpu_info.cache_clear()
    try:
        info = cpu_info()
    finally:
        devices.cpu_info.cache_clear()
    assert (info.vendor, info.family, info.model, info.stepping) == ("AuthenticAMD", 25, 1, 0)
    assert info.model_name == "AMD EPYC 7B13"
    assert info.flags == ("avx", "avx2", "fma")  # in KERNEL_FLAGS order, others dropped
    assert info.kernel_env == {"ATEN_CPU_CAPABILITY": "avx2"}
    assert info.capability == torch.backends.cpu.get_cpu_capability()
    assert info.kernel_key == f"AuthenticAMD/25/1/{info.capability}/ATEN_CPU_CAPABILITY=avx2"


def test_kernel_key_separates_what_changes_kernels():
    base = CpuInfo("AMD EPYC", "AuthenticAMD", 25, 17, 1, ("avx2",), "AVX2", "3.12.0", "2024.2", {})
    same_but_stepping = CpuInfo(
        "AMD EPYC", "AuthenticAMD", 25, 17, 2, ("avx2",), "AVX2", "3.12.0", "2024.2", {}
    )
    zen4 = CpuInfo(
        "AMD EPYC", "AuthenticAMD", 25, 17, 1, ("avx512f",), "AVX512", "3.12.0", "2024.2", {}
    )
    assert base.kernel_key == same_but_stepping.kernel_key == "AuthenticAMD/25/17/AVX2"
    assert zen4.kernel_key != base.kernel_key  # same model name, other capability
    assert base.to_dict()["capability"] == "AVX2" and base.to_dict()["flags"] == ["avx2"]


def test_device_name_of_the_cpu_is_its_model_name():
    assert device_name("cpu") == cpu_info().model_name != ""


def test_run_flags_set_and_restore_threads_and_determinism():
    before = (torch.get_num_threads(), torch.are_deterministic_algorithms_enabled())
    with run_flags("cpu", 1):
        assert torch.get_num_threads() == 1
        assert torch.are_deterministic_algorithms_enabled()
    assert (torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()) == before
