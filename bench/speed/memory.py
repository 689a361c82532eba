"""Peak memory of a block of code: CUDA allocator peak, or CPU resident-set growth.

On the CPU the resident set size is sampled by a background thread from ``/proc/self/statm``
(fallback: the ``ru_maxrss`` delta, which only sees new process-lifetime highs), after returning
the C heap's free pages to the OS (glibc ``malloc_trim``) so that pages kept from earlier work do
not hide the block's own memory. Still a lower bound: allocations shorter than the sampling
interval can be missed. Sizes in MB are MiB (2**20 bytes).
"""

from __future__ import annotations

import ctypes
import functools
import os
import resource
import sys
import threading
from collections.abc import Callable
from types import TracebackType

import torch

from bench.devices import parse_device
from bench.errors import ConfigError

PEAK_MEM_KINDS = ("cuda_max_allocated", "cpu_rss_delta_sampled", "cpu_maxrss_delta")
CPU_METHODS = ("auto", "sampled", "maxrss")
_MIB = float(2**20)


def _statm_rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        resident_pages = int(f.read().split()[1])
    return resident_pages * os.sysconf("SC_PAGE_SIZE")


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    """Returns glibc's ``malloc_trim`` (None on other C libraries)."""
    try:
        trim = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim


def release_free_heap() -> bool:
    """Returns the C heap's free pages to the OS (glibc ``malloc_trim(0)``).

    Without it, pages freed by earlier work (training, an earlier model) stay resident and are
    reused silently, so a later block's RSS growth reads about zero.

    Returns:
        False where ``malloc_trim`` is not available (not glibc), else True.
    """
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True


def _maxrss_bytes() -> int:
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return maxrss if sys.platform == "darwin" else maxrss * 1024  # Linux reports KiB


class PeakMemory:
    """Context manager measuring peak memory of the code inside it.

    Kinds (``.kind``):

    * ``"cuda_max_allocated"``: ``torch.cuda.max_memory_allocated`` after resetting the peak on
      entry; absolute, so it includes the model's weights and any tensor alive on entry.
    * ``"cpu_rss_delta_sampled"``: maximum resident set size seen by a background thread reading
      ``/proc/self/statm`` every ``interval_s``, minus the RSS on entry. Allocations shorter than
      the interval can be missed; the values on entry and exit are always sampled. On entry the
      C heap's free pages are first returned to the OS (:func:`release_free_heap`, glibc), so
      memory the block allocates shows as RSS growth even where earlier work left freed pages
      behind; ``.trimmed`` says whether that was possible.
    * ``"cpu_maxrss_delta"``: growth of ``ru_maxrss`` (the process-lifetime high-water mark);
      zero unless the block sets a new high for the process. Used where ``/proc`` is missing.

    Example:
        >>> with PeakMemory("cpu") as mem:
        ...     x = torch.ones(1024, 1024)
        >>> mem.kind
        'cpu_rss_delta_sampled'

    Args:
        device: ``"cpu"`` or ``"cuda[:index]"``.
        interval_s: Sampling interval of the CPU background thread.
        cpu_method: ``"auto"`` (sampled where ``/proc/self/statm`` is readable), ``"sampled"``
            or ``"maxrss"``.

    Raises:
        ConfigError: An invalid device (see :func:`bench.devices.parse_device`), ``cpu_method``
            or ``interval_s``.
    """

    def __init__(
        self,
        device: str | torch.device = "cpu",
        *,
        interval_s: float = 0.002,
        cpu_method: str = "auto",
    ) -> None:
        """Validates the arguments and picks the kind (see the class docstring)."""
        self._dev = parse_device(device)
        if cpu_method not in CPU_METHODS:
            raise ConfigError(
                f"cpu_method must be one of {', '.join(CPU_METHODS)}; found {cpu_method!r}. "
                f"Fix: use 'auto' unless testing a fallback."
            )
        if not interval_s > 0:
            raise ConfigError(
                f"interval_s must be > 0; found {interval_s}. Fix: use e.g. 0.002 (2 ms)."
            )
        self._interval_s = interval_s
        if self._dev.type == "cuda":
            self.kind = "cuda_max_allocated"
        elif cpu_method == "maxrss" or (
            cpu_method == "auto" and not os.access("/proc/self/statm", os.R_OK)
        ):
            self.kind = "cpu_maxrss_delta"
        else:
            self.kind = "cpu_rss_delta_sampled"
        self._peak_mb: float | None = None
        self.trimmed = False
        self._baseline = 0
        self._peak_bytes = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def peak_mb(self) -> float:
        """Peak memory in MiB (see the class docstring for what each kind means).

        Raises:
            RuntimeError: If read before the ``with`` block has exited.
        """
        if self._peak_mb is None:
            raise RuntimeError("PeakMemory.peak_mb is available after the with-block exits.")
        return self._peak_mb

    def _sample(self) -> None:
        while not self._stop.wait(self._interval_s):
            self._peak_bytes = max(self._peak_bytes, _statm_rss_bytes())

    def __enter__(self) -> PeakMemory:
        """Starts measuring (resets the CUDA peak, or trims the heap and starts the sampler)."""
        self._peak_mb = None
        if self.kind == "cuda_max_allocated":
            torch.cuda.synchronize(self._dev)
            torch.cuda.reset_peak_memory_stats(self._dev)
        elif self.kind == "cpu_maxrss_delta":
            self._baseline = _maxrss_bytes()
        else:
            self.trimmed = release_free_heap()
            self._baseline = self._peak_bytes = _statm_rss_bytes()
            self._stop.clear()
            self._thread = threading.Thread(target=self._sample, name="PeakMemory", daemon=True)
            self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stops measuring and sets :attr:`peak_mb` (also when the block raised)."""
        if self.kind == "cuda_max_allocated":
            torch.cuda.synchronize(self._dev)
            self._peak_mb = torch.cuda.max_memory_allocated(self._dev) / _MIB
        elif self.kind == "cpu_maxrss_delta":
            self._peak_mb = max(0, _maxrss_bytes() - self._baseline) / _MIB
        else:
            self._stop.set()
            if self._thread is not None:
                self._thread.join()
                self._thread = None
            self._peak_bytes = max(self._peak_bytes, _statm_rss_bytes())
            self._peak_mb = max(0, self._peak_bytes - self._baseline) / _MIB
