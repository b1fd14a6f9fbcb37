"""Peak resident memory of this process per phase, for `stats.json`'s `peak_worker_rss_mb`.

On Linux, writing "5" to /proc/self/clear_refs resets the high-water mark (VmHWM) to the
current RSS, so the mark read after a phase's tasks is that phase's peak, including whatever
the process still holds from earlier phases. Elsewhere the fallback is `ru_maxrss`, the peak
since the process started: an upper bound, not a per-phase figure. The reset also lowers
`ru_maxrss`, so the lifetime peak is kept here for callers that want it.
"""

from __future__ import annotations

import contextlib
import resource
import sys
from pathlib import Path

_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")
_lifetime_kib = 0


def _hwm_kib() -> int:
    with contextlib.suppress(OSError, ValueError, IndexError):  # no /proc: ru_maxrss below
        for line in _STATUS.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return maxrss // 1024 if sys.platform == "darwin" else maxrss  # bytes there, KiB on Linux


def reset_peak() -> None:
    """Start a new phase: the next `peak_rss_mb()` covers only what happens from now on."""
    global _lifetime_kib
    _lifetime_kib = max(_lifetime_kib, _hwm_kib())
    with contextlib.suppress(OSError):  # not Linux, or /proc not writable: ru_maxrss then
        _CLEAR_REFS.write_text("5")


def peak_rss_mb() -> float:
    """Peak RSS in MB (10^6 bytes) since the last `reset_peak()` (Linux) or process start."""
    return round(_hwm_kib() * 1024 / 1e6, 1)


def lifetime_peak_rss_mb() -> float:
    """Peak RSS in MB since the process started, whatever resets happened in between."""
    return round(max(_lifetime_kib, _hwm_kib()) * 1024 / 1e6, 1)
