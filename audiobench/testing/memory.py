"""The peak resident memory of this process, for the tests and benchmarks that bound it.

``resource.getrusage(RUSAGE_SELF).ru_maxrss`` is the figure, except that Linux carries into it, across the
``exec`` that started this process, the high-water mark of the process it was forked from: a small import
started from a test that built a large file reports the test's peak. The kernel's own high-water mark of
this process's memory (``VmHWM`` in ``/proc/self/status``) starts at the exec, so it is read where it exists.
"""
from __future__ import annotations

import resource
from pathlib import Path


def peak_rss_mb() -> float:
    """MB (2^20 bytes): the most resident memory this process has held since it started."""
    status = Path("/proc/self/status")
    if status.is_file():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux (bytes on macOS)
