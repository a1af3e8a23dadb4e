"""Measurement helpers: peak memory, step timing and memory bandwidth."""

from __future__ import annotations

import os
import re
import resource
import statistics
import sys
import time
from collections.abc import Callable

import numpy as np

MB = 1e6
GB = 1e9

# --- host memory -----------------------------------------------------------------------------

_STATUS = "/proc/self/status"
_CLEAR_REFS = "/proc/self/clear_refs"


def _status_kib(field: str) -> int | None:
    try:
        with open(_STATUS) as status:
            match = re.search(rf"^{field}:\s+(\d+) kB", status.read(), re.MULTILINE)
    except OSError:
        return None
    return int(match.group(1)) if match else None


def _reset_peak_rss() -> bool:
    """Resets the kernel's peak-RSS counter (VmHWM) to the current RSS; Linux >= 4.0 only."""
    try:
        with open(_CLEAR_REFS, "w") as clear_refs:
            clear_refs.write("5")
    except OSError:
        return False
    return True


def _ru_maxrss_bytes() -> int:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


class HostMemoryProbe:
    """Peak RSS above a baseline taken after the params and grads exist.

    On Linux the peak counter is reset at the baseline (``/proc/self/clear_refs``), so the
    peak covers only what follows.  Elsewhere it falls back to ``ru_maxrss``, the lifetime
    peak, which can include the creation of the tree itself.
    """

    def __init__(self) -> None:
        self.method = "VmHWM after clear_refs" if _reset_peak_rss() else "ru_maxrss"
        self.baseline = self.current()

    def current(self) -> int:
        rss = _status_kib("VmRSS")
        return rss * 1024 if rss is not None else _ru_maxrss_bytes()

    def restart_peak(self) -> None:
        """Starts a new peak window; the baseline stays the post-creation RSS."""
        _reset_peak_rss()

    def peak_above_baseline(self) -> int:
        peak = _status_kib("VmHWM")
        peak_bytes = peak * 1024 if peak is not None else _ru_maxrss_bytes()
        return max(0, peak_bytes - self.baseline)


class JaxDeviceMemoryProbe:
    """Accelerator memory from ``Device.memory_stats()``; the peak cannot be reset."""

    method = "jax memory_stats peak_bytes_in_use - bytes_in_use at baseline"

    def __init__(self, device) -> None:
        self._device = device
        self.baseline = self._stats().get("bytes_in_use", 0)

    def _stats(self) -> dict:
        return self._device.memory_stats() or {}

    def restart_peak(self) -> None:
        pass

    def peak_above_baseline(self) -> int:
        return max(0, self._stats().get("peak_bytes_in_use", 0) - self.baseline)


class TorchCudaMemoryProbe:
    method = "torch.cuda.max_memory_allocated - memory_allocated at baseline"

    def __init__(self, torch) -> None:
        self._cuda = torch.cuda
        self._cuda.reset_peak_memory_stats()
        self.baseline = self._cuda.memory_allocated()

    def restart_peak(self) -> None:
        self._cuda.reset_peak_memory_stats()

    def peak_above_baseline(self) -> int:
        return max(0, self._cuda.max_memory_allocated() - self.baseline)


# --- timing ----------------------------------------------------------------------------------


def timed(fn: Callable[[], object]) -> tuple[float, object]:
    """``(seconds, result)`` of one call."""
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def summarize_ms(seconds: list[float]) -> dict[str, float]:
    ms = [s * 1e3 for s in seconds]
    return {
        "step_ms": statistics.median(ms),
        "step_ms_min": min(ms),
        "step_ms_max": max(ms),
        "step_ms_mean": statistics.fmean(ms),
        "repeats": len(ms),
        "step_ms_all": [round(x, 4) for x in ms],
    }


class OtherLoad:
    """CPU used by *other* processes (and VM steal) while this object lives, in cores.

    System-wide busy time from ``/proc/stat`` minus this process's own CPU time.  The
    benchmark shares the machine with whatever else runs; a value well above zero flags a
    step time that may be inflated by contention.
    """

    def __init__(self) -> None:
        self._start = self._snapshot()

    @staticmethod
    def _snapshot() -> tuple[float, float, float] | None:
        try:
            with open("/proc/stat") as stat:
                ticks = [int(value) for value in stat.readline().split()[1:9]]
        except (OSError, ValueError):
            return None
        busy = (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")  # minus idle, iowait
        own = sum(os.times()[:2])
        return time.perf_counter(), busy, own

    def cores(self) -> float | None:
        end = self._snapshot()
        if self._start is None or end is None or end[0] <= self._start[0]:
            return None
        wall, busy, own = (b - a for a, b in zip(self._start, end, strict=True))
        return max(0.0, (busy - own) / wall)


# --- bandwidth -------------------------------------------------------------------------------

BANDWIDTH_TRIES = 10


def best_copy_bandwidth(copy: Callable[[], object], nbytes: int, tries: int) -> float:
    """GB/s of the fastest of ``tries`` copies, counting read + write (``2 * nbytes``)."""
    copy()  # touch every page once so page faults are not timed
    fastest = min(timed(copy)[0] for _ in range(tries))
    return 2 * nbytes / fastest / GB


def numpy_copy_bandwidth(nbytes: int, tries: int = BANDWIDTH_TRIES) -> float:
    src = np.ones(nbytes // 4, dtype=np.float32)
    dst = np.empty_like(src)
    return best_copy_bandwidth(lambda: np.copyto(dst, src), src.nbytes, tries)


def torch_copy_bandwidth(torch, nbytes: int, device: str, tries: int = BANDWIDTH_TRIES) -> float:
    """``Tensor.copy_`` uses all intra-op threads (or the GPU), unlike ``np.copyto``."""
    src = torch.ones(nbytes // 4, dtype=torch.float32, device=device)
    dst = torch.empty_like(src)

    def copy():
        dst.copy_(src)
        if device != "cpu":
            torch.cuda.synchronize()

    return best_copy_bandwidth(copy, nbytes, tries)


def jax_copy_bandwidth(jax, nbytes: int, tries: int = BANDWIDTH_TRIES) -> float:
    """A jitted device copy that donates its input, so no fresh buffer is faulted in."""
    src = jax.numpy.ones(nbytes // 4, dtype=jax.numpy.float32)
    copy_fn = jax.jit(lambda x: x + 1.0, donate_argnums=0)  # x + 0 would compile to nothing
    holder = [copy_fn(src)]

    def copy():
        holder[0] = copy_fn(holder[0])
        holder[0].block_until_ready()

    return best_copy_bandwidth(copy, nbytes, tries)
