"""One writer per folder: an advisory ``flock`` on a lock file, which names its holder.

The kernel drops the lock when the holding process ends, however it ends (kill -9 included), so a lock file
left behind never blocks a later run; what it says about its holders (one JSON line each: pid, host, command
line, when it took the lock) is only read to tell a refused or waiting run who holds the folder now.

A lock is taken exclusive (a writer) or shared (a reader that must not see the folder change under it, such
as featurize reading a dataset's audio: several readers at once, never beside a writer). A second process
either fails at once with :class:`Busy`, one line naming the holder, or with ``wait`` blocks until the lock
frees, after one line on stderr saying whom it waits for.
"""
from __future__ import annotations

import fcntl
import json
import os
import re
import shlex
import socket
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from audiobench.core.errors import AudiobenchError

LOCK_NAME = ".lock"
_CREDENTIALS = re.compile(r"(?<=://)[^/@\s]+@")  # user:password@ in a URL (--proxy): not written to the file


class Busy(AudiobenchError):
    """Another live process holds the lock (the message names it: PID, host, since when, command line)."""


@contextmanager
def exclusive(folder: Path, *, busy: str, wait: bool = False,
              hint: str = "wait for it to finish") -> Iterator[None]:
    """Hold ``folder/.lock`` alone for the duration, or raise ``busy`` plus who holds it.

    ``wait``: block until the lock frees instead (one line on stderr says for whom).
    """
    with hold(folder / LOCK_NAME, shared=False, busy=busy, wait=wait, hint=hint):
        yield


@contextmanager
def hold(lock_file: Path, *, shared: bool, busy: str, wait: bool = False,
         hint: str = "wait for it to finish") -> Iterator[None]:
    """Hold ``lock_file`` shared or exclusive for the duration (see the module docstring).

    Refused: :class:`Busy`, ``"{busy}: PID 4242 on host, started ...: `audiobench fetch sl-dcase17`; {hint}"``.
    """
    mode = fcntl.LOCK_SH if shared else fcntl.LOCK_EX
    with open(lock_file, "a+", encoding="utf-8") as handle:
        try:
            fcntl.flock(handle, mode | fcntl.LOCK_NB)
        except BlockingIOError:
            holders = _holders(handle)
            if not wait:
                raise Busy(f"{busy}: {holders}; {hint}") from None
            print(f"waiting: {busy}: {holders}", file=sys.stderr, flush=True)
            fcntl.flock(handle, mode)
        try:
            if not shared:  # alone now: the lines of earlier holders are stale
                handle.seek(0)
                handle.truncate()
            handle.write(json.dumps(_me()) + "\n")  # "a+": appended, in one write, beside other readers' lines
            handle.flush()
            yield
        finally:
            _forget(handle, shared=shared)
            fcntl.flock(handle, fcntl.LOCK_UN)


def _forget(handle: IO[str], *, shared: bool) -> None:
    """Clear the holders' lines on release, so that a process still running (a notebook) is never named as
    holding a lock it gave back: a writer always, a reader when it is the last (its lock then turns exclusive)."""
    if shared:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return  # other readers still hold it; lines of ended processes are skipped when read
    handle.seek(0)
    handle.truncate()
    handle.flush()


def command_line() -> str:
    """This process's command line as a user typed it (``audiobench fetch ...``), credentials in URLs hidden."""
    argv = list(sys.argv) or [""]
    program = Path(argv[0]).name
    if program == "__main__.py" and "audiobench" in Path(argv[0]).parts:  # python -m audiobench[.cli]
        program = "audiobench"
    return _CREDENTIALS.sub("***@", shlex.join([program or "python", *argv[1:]]))


def _me() -> dict[str, object]:
    return {"pid": os.getpid(), "host": socket.gethostname(), "command": command_line(),
            "started": time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime())}


def _holders(handle: IO[str], *, tries: int = 20) -> str:
    """Who holds the lock now, as one phrase; the lines of processes that ended are skipped.

    A holder that has just taken the lock may not have written its line yet: read again for a moment.
    """
    for attempt in range(tries):
        handle.seek(0)
        live = [h for h in map(_parse, handle.read().splitlines()) if h is not None and _alive(h)]
        if live:
            return "; ".join(_describe(h) for h in live)
        time.sleep(0.05)
    return "holder unknown"


def _parse(line: str) -> dict[str, object] | None:
    try:
        holder = json.loads(line)
    except ValueError:  # the plain line of an older release: shown as it is
        return {"text": line.strip()} if line.strip() else None
    return holder if isinstance(holder, dict) else None


def _alive(holder: dict[str, object]) -> bool:
    """False only for a holder on this host whose process is gone (a pid elsewhere cannot be checked)."""
    pid = holder.get("pid")
    if not isinstance(pid, int) or holder.get("host") != socket.gethostname():
        return True
    return pid_running(pid)


def _describe(holder: dict[str, object]) -> str:
    if "text" in holder:
        return str(holder["text"])
    return (f"PID {holder.get('pid')} on {holder.get('host')}, started {holder.get('started')}: "
            f"`{holder.get('command')}`")


def pid_running(pid: int) -> bool:
    """Whether process ``pid`` runs on this host (one of another user counts as running)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
