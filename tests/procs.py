"""Processes as a user sees them in `ps`: who is the child of whom, and who is still alive (from /proc)."""
from __future__ import annotations

import os
import time
from collections.abc import Iterable
from pathlib import Path


def processes() -> dict[int, tuple[int, str, str]]:
    """Every process: pid -> (parent pid, state, command line), from /proc."""
    table = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            command = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue  # gone meanwhile
        fields = stat[stat.rindex(")") + 2:].split()
        table[int(entry)] = (int(fields[1]), fields[0], command)
    return table


def descendants(pid: int) -> dict[int, str]:
    """Children, their children, and so on: pid -> command line (record them before the parent dies)."""
    table, found, todo = processes(), {}, [pid]
    while todo:
        children = [child for child, (parent, _, _) in table.items() if parent == todo[-1]]
        todo.pop()
        found.update({child: table[child][2] for child in children})
        todo += children
    return found


def alive(pids: Iterable[int]) -> list[int]:
    """Those of ``pids`` still running."""
    table = processes()
    return [pid for pid in pids if pid in table and table[pid][1] != "Z"]  # a zombie has ended


def wait_until_gone(pids: Iterable[int], seconds: float) -> list[int]:
    """Wait up to ``seconds`` for every one of ``pids`` to end; those still running then."""
    pids = list(pids)
    deadline = time.monotonic() + seconds
    while alive(pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    return alive(pids)
