"""One writer per folder: an advisory ``flock`` on a lock file, which names its holder.

The kernel drops the lock when the holding process ends, however it ends (kill -9 included), so a lock file
left behind never blocks a later run; what it says about its last holder is only read to tell a refused run
who holds the folder now.
"""
from __future__ import annotations

import fcntl
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from audiobench.core.errors import AudiobenchError

LOCK_NAME = ".lock"


@contextmanager
def exclusive(folder: Path, *, busy: str) -> Iterator[None]:
    """Hold ``folder/.lock`` for the duration, or raise ``busy`` plus who holds it (PID, host, since when)."""
    with open(folder / LOCK_NAME, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip()
            raise AudiobenchError(f"{busy} ({holder or 'holder unknown'}); wait for it to finish") from None
        try:
            handle.seek(0)
            handle.truncate()
            stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime())
            handle.write(f"PID {os.getpid()} on {socket.gethostname()}, since {stamp}\n")
            handle.flush()
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
