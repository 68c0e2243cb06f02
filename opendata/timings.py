"""Wall seconds and peak RSS per pipeline stage in this process (`opendata publish --timings`).

``with stage("build"): ...`` adds the block's wall seconds to the process-wide total of that
stage (thread-safe; blocks running in parallel threads add up, so with ``build_workers`` > 1 the
sum of a stage can exceed the wall time it took). At the end of each block the process's peak RSS
so far is recorded for the stage: the first stage whose figure equals the process peak is where
the peak was reached.
"""

from __future__ import annotations

import resource
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

STAGES = ("fetch", "inputs", "build", "serialise", "validate", "diff", "release", "site")
_LOCK = threading.Lock()
_SECONDS: dict[str, float] = {}
_PEAKS: dict[str, float] = {}
_highest = 0.0  # the highest reading so far


def peak_rss_mb() -> float:
    """The peak resident set size of this process so far, in MB (2**20 bytes).

    On Linux VmHWM of /proc/self/status: ``ru_maxrss`` also counts the memory of the parent
    that started the process (the kernel keeps the old address space's peak across exec), so a
    small command started by a big process would report the parent's peak. Elsewhere ru_maxrss.
    VmHWM can read lower than before (memory handed back with madvise, as Arrow's pool and
    malloc_trim do, may leave a passing peak unrecorded), so the highest reading is returned.
    """
    global _highest
    reading = _reading()
    with _LOCK:
        _highest = max(_highest, reading)
        return _highest


def _reading() -> float:
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024  # kB
    except (OSError, ValueError, IndexError):
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024  # bytes on macOS, else KiB


@contextmanager
def stage(name: str) -> Iterator[None]:
    """Add the wall seconds of the block to stage ``name`` (also when it raises)."""
    start = time.perf_counter()
    try:
        yield
    finally:
        took, peak = time.perf_counter() - start, peak_rss_mb()
        with _LOCK:
            _SECONDS[name] = _SECONDS.get(name, 0.0) + took
            _PEAKS[name] = max(_PEAKS.get(name, 0.0), peak)


def snapshot() -> dict[str, float]:
    """Seconds per stage so far, in ``STAGES`` order (other names after them, sorted)."""
    with _LOCK:
        found = dict(_SECONDS)
    return {k: found[k] for k in _ordered(found)}


def peaks() -> dict[str, float]:
    """Per stage, the process's peak RSS in MB at the end of its last block."""
    with _LOCK:
        found = dict(_PEAKS)
    return {k: found[k] for k in _ordered(found)}


def reset() -> None:
    """Forget every stage (the process peak RSS itself cannot be reset)."""
    with _LOCK:
        _SECONDS.clear()
        _PEAKS.clear()


def _ordered(names: dict[str, float]) -> list[str]:
    return [s for s in STAGES if s in names] + sorted(set(names) - set(STAGES))
