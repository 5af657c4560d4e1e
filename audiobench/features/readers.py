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
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

READERS = ".readers"


def hold(folder: Path) -> IO[bytes] | None:
    """A shared lock on ``folder``'s readers file (waiting out a deletion in progress), or ``None`` where the
    file cannot be opened; close the handle to release it."""
    path = folder / READERS
    try:
        handle = open(path, "ab")
    except OSError:
        try:
            handle = open(path, "rb")
        except OSError:
            return None
    fcntl.flock(handle, fcntl.LOCK_SH)
    return handle


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
