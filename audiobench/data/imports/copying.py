"""Copy files into a dataset's ``raw/``, checked on the way: what a merge and an import both need (each as the
dataset's one writer, :meth:`~audiobench.core.layout.DatasetPaths.writing`)."""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

from audiobench.core.errors import AudiobenchError
from audiobench.core.layout import atomic_path, ensure_writable_dir

_CHUNK = 1 << 20


class CopyMismatch(AudiobenchError):
    """The bytes copied are not those expected (a damaged copy, or a file that changed meanwhile)."""


def copy_checked(source: Path, target: Path, *, sha256: str, size: int | None = None) -> int:
    """Copy ``source`` to ``target`` through a temporary name, renamed only if the bytes hash to ``sha256``
    (and number ``size``, when given); returns the size. A kill or a mismatch leaves no file at ``target``
    that was not there before (:class:`CopyMismatch` says what was found)."""
    ensure_writable_dir(target.parent)
    digest, copied = hashlib.sha256(), 0
    try:
        with open(source, "rb") as f, atomic_path(target) as tmp, open(tmp, "wb") as out:
            for chunk in iter(lambda: f.read(_CHUNK), b""):
                digest.update(chunk)
                copied += len(chunk)
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
            if digest.hexdigest() != sha256 or (size is not None and copied != size):
                raise CopyMismatch(f"{copied} bytes, sha256 {digest.hexdigest()[:12]}…")
    except OSError as exc:
        raise AudiobenchError(f"cannot copy {source} to {target}: {exc.strerror or exc}") from None
    return copied
