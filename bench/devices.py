"""Devices: the one validator of device strings, the device type, and what the CPU is.

* :func:`parse_device` / :func:`resolve_device` accept ``auto`` (CUDA when available, else the
  CPU), ``cpu``, ``cuda`` and ``cuda:N``, and raise one :class:`~bench.errors.ConfigError`
  message for anything else or for CUDA without a GPU.
* :func:`device_type` maps ``"cuda:1"`` to ``"cuda"``: records compare devices by type.
* :func:`cpu_info` says precisely which CPU ran a measurement: two machines with the same
  ``model name`` ("AMD EPYC") can differ in vector extensions, and so in which kernels torch,
  oneDNN and MKL pick, in speed (2x) and in floating-point rounding. The record keeps the vendor,
  family, model and stepping, the vector extensions that select kernels, torch's CPU capability
  (``torch.backends.cpu.get_cpu_capability()``), the oneDNN and MKL versions torch was built
  with, and the environment variables that pin kernels. :attr:`CpuInfo.kernel_key` is what two
  runs must share for their kernels (and so their rounding and speed) to be the same.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import os
import platform
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from bench.errors import ConfigError

DEVICE_FORMS = "auto, cpu or cuda[:N]"
# /proc/cpuinfo flags that decide which vector kernels torch, oneDNN and MKL run.
KERNEL_FLAGS = (
    "avx",
    "avx2",
    "fma",
    "f16c",
    "avx512f",
    "avx512bw",
    "avx512vl",
    "avx512_vnni",
    "avx512_bf16",
    "avx512_fp16",
    "amx_bf16",
    "amx_tile",
    "amx_int8",
    "avx_vnni",
)
# Environment variables that cap or pin the kernels (recorded when set).
KERNEL_ENV = (
    "ATEN_CPU_CAPABILITY",
    "ONEDNN_MAX_CPU_ISA",
    "DNNL_MAX_CPU_ISA",
    "MKL_ENABLE_INSTRUCTIONS",
    "MKL_CBWR",
)


def device_type(device: Any) -> str:
    """The device type of ``"cuda:1"`` (``"cuda"``), ``"cpu"`` or a ``torch.device``; ``""`` for None."""
    if device is None:
        return ""
    return str(device).split(":", 1)[0]


def parse_device(device: Any, *, option: str = "device") -> Any:
    """Validates a concrete device (``cpu``, ``cuda``, ``cuda:N``) and returns a ``torch.device``.

    A bare ``cuda`` is resolved to the current CUDA index, so the result names one device.

    Args:
        device: A string or ``torch.device``.
        option: How the message names the input (``"--device"``, ``"device"``).

    Raises:
        ConfigError: Not ``cpu``/``cuda[:N]``, or CUDA requested where it is not available.
    """
    import torch

    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        dev = None
    if dev is None or dev.type not in ("cpu", "cuda"):
        raise ConfigError(f"{option} must be cpu or cuda[:N]; got {str(device)!r}.")
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(
                f"{option} {device} was requested but torch.cuda.is_available() is False "
                f"(torch {torch.__version__}). Use {option} cpu, or install a CUDA build of "
                f"torch on a machine with a GPU."
            )
        if dev.index is None:
            dev = torch.device("cuda", torch.cuda.current_device())
    return dev


def resolve_device(device: str, *, option: str = "--device") -> str:
    """``auto`` -> ``"cuda"`` when CUDA is available, else ``"cpu"``; other values are validated.

    Returns:
        The device string as given (``"cuda:1"`` stays ``"cuda:1"``) or the one ``auto`` chose.

    Raises:
        ConfigError: See :func:`parse_device`.
    """
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if not isinstance(device, str) or not re.fullmatch(r"cpu|cuda(:\d+)?", device):
        raise ConfigError(f"{option} must be {DEVICE_FORMS}; got {device!r}.")
    parse_device(device, option=option)
    return device


@dataclass(frozen=True)
class CpuInfo:
    """What the CPU is, as far as kernel selection, speed and rounding are concerned.

    Attributes:
        model_name: ``model name`` from ``/proc/cpuinfo`` (e.g. ``"AMD EPYC"``).
        vendor: ``vendor_id`` (``"GenuineIntel"``, ``"AuthenticAMD"``) or None.
        family: ``cpu family`` or None.
        model: ``model`` or None.
        stepping: ``stepping`` or None.
        flags: The :data:`KERNEL_FLAGS` this CPU has, in that order.
        capability: ``torch.backends.cpu.get_cpu_capability()`` (``"AVX2"``, ``"AVX512"``, ...):
            the ATen kernels in use, after any ``ATEN_CPU_CAPABILITY`` cap.
        onednn: oneDNN (MKL-DNN) version torch was built with, or None.
        mkl: MKL version torch was built with, or None.
        kernel_env: The :data:`KERNEL_ENV` variables that are set, ``{name: value}``.
    """

    model_name: str
    vendor: str | None
    family: int | None
    model: int | None
    stepping: int | None
    flags: tuple[str, ...]
    capability: str | None
    onednn: str | None
    mkl: str | None
    kernel_env: dict[str, str]

    @property
    def kernel_key(self) -> str:
        """Vendor, family, model, capability and kernel pins: equal keys, equal kernels."""
        pins = ",".join(f"{k}={v}" for k, v in sorted(self.kernel_env.items()))
        return "/".join(
            str(part)
            for part in (self.vendor, self.family, self.model, self.capability, pins)
            if part not in (None, "")
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields (the run record's ``env.cpu``): the flags as a list."""
        return {**dataclasses.asdict(self), "flags": list(self.flags)}


def _parse_cpuinfo(text: str) -> dict[str, str]:
    """The first processor's ``key: value`` lines of ``/proc/cpuinfo`` text."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            break  # end of the first processor's block
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    return fields


def _proc_cpuinfo() -> dict[str, str]:
    """:func:`_parse_cpuinfo` of this machine's ``/proc/cpuinfo`` ({} where unreadable)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            return _parse_cpuinfo(f.read())
    except OSError:
        return {}


def _int(text: str | None) -> int | None:
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None


def _build_versions() -> tuple[str | None, str | None]:
    """(oneDNN, MKL) versions from ``torch.__config__.show()``."""
    import torch

    shown = torch.__config__.show()
    onednn = re.search(r"MKL-DNN v([\w.]+)", shown)
    mkl = re.search(r"Math Kernel Library Version ([\w.]+)", shown)
    return (onednn.group(1) if onednn else None, mkl.group(1) if mkl else None)


@functools.cache
def cpu_info() -> CpuInfo:
    """The CPU of this process (read once; see :class:`CpuInfo`)."""
    import torch

    fields = _proc_cpuinfo()
    flags = set(fields.get("flags", "").split())
    try:
        capability = torch.backends.cpu.get_cpu_capability()
    except (AttributeError, RuntimeError):
        capability = None
    onednn, mkl = _build_versions()
    return CpuInfo(
        model_name=fields.get("model name") or platform.processor() or platform.machine(),
        vendor=fields.get("vendor_id"),
        family=_int(fields.get("cpu family")),
        model=_int(fields.get("model")),
        stepping=_int(fields.get("stepping")),
        flags=tuple(f for f in KERNEL_FLAGS if f in flags),
        capability=capability,
        onednn=onednn,
        mkl=mkl,
        kernel_env={k: os.environ[k] for k in KERNEL_ENV if os.environ.get(k)},
    )


def device_name(device: Any = "cpu") -> str:
    """Human-readable device name: the CUDA device's name or the CPU's ``model name``."""
    if device_type(device) == "cuda":
        import torch

        return torch.cuda.get_device_name(parse_device(device))
    return cpu_info().model_name


@contextlib.contextmanager
def run_flags(device: str, threads: int | None) -> Iterator[None]:
    """Thread count and determinism flags for a sweep (or one isolated architecture), restored.

    On the CPU: ``use_deterministic_algorithms(True, warn_only=True)`` with
    ``fill_uninitialized_memory`` off (filling every new tensor would slow the timing down).
    CUDA runs keep the caller's flags: deterministic cuDNN algorithms would change what the
    speed columns measure.
    """
    import torch
    import torch.utils.deterministic as det

    threads_before = torch.get_num_threads()
    flags_before = (
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
        det.fill_uninitialized_memory,
    )
    if threads:
        torch.set_num_threads(threads)
    if device_type(device) == "cpu":
        torch.use_deterministic_algorithms(True, warn_only=True)
        det.fill_uninitialized_memory = False
    try:
        yield
    finally:
        torch.set_num_threads(threads_before)
        torch.use_deterministic_algorithms(flags_before[0], warn_only=flags_before[1])
        det.fill_uninitialized_memory = flags_before[2]
