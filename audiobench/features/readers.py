"""Readers of a feature folder and featurize's deletions: no shard is deleted while a reader may read it.

Every open :class:`~audiobench.features.dataset.LogmelDataset` holds a shared ``flock`` on
``features/<feature-id>/.readers``, taken before it reads the split file and held until it is closed (or
collected). featurize deletes the shards that its new split file no longer maps (superseded, or left by a
killed run) only while it holds that lock exclusively, taken without waiting after the new split file is in
place: with a reader present it keeps them, and a later run deletes them. So a reader that opened the old split
file finds every shard it maps, and one that waited for the deletion to end opens the new split file.

The kernel drops a lock when its process ends, however it ends. A folder where the lock file cannot be created
(read-only storage) is read without one.
"""
from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

READERS = ".readers"


class ReaderLock:
    """A shared lock on a feature folder's readers file, held until :meth:`close` or until it is collected
    (without the ``ResourceWarning`` of a file left open: holding it is the point)."""

    def __init__(self, fd: int) -> None:
        self._fd: int | None = fd

    def close(self, _close=os.close) -> None:  # os.close bound now: at exit the module may be gone first
        if self._fd is not None:  # no LOCK_UN: a forked child closing its copy leaves the parent's lock held
            _close(self._fd)
            self._fd = None

    def __del__(self) -> None:
        self.close()


def hold(folder: Path) -> ReaderLock | None:
    """A shared lock on ``folder``'s readers file (waiting out a deletion in progress), or ``None`` where the
    file can be neither created nor opened."""
    path = folder / READERS
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CREAT, 0o666)
    except OSError:
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:
            return None
    fcntl.flock(fd, fcntl.LOCK_SH)
    return ReaderLock(fd)


@contextmanager
def unread(folder: Path) -> Iterator[bool]:
    """Whether no reader holds ``folder`` (and then none can start until the block ends)."""
    with open(folder / READERS, "ab") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
