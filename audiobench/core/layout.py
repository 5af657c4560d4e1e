"""Where each stage keeps its files (docs/architecture.md, "Storage").

One storage root (``--root``, else ``AUDIOBENCH_ROOT``, else ``./audiobench-data``) holds one folder per
dataset: ``index/`` (verified list files), ``ledger.sqlite``, ``raw/``, ``audio/``,
``features/<feature-id>/<split>.h5``; and ``runs/<run-id>/`` for training and comparisons.
"""
from __future__ import annotations

import errno
import math
import os
import re
import shutil
from collections.abc import Iterator
from typing import Any
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from audiobench.core.errors import AudiobenchError
from audiobench.core.locking import LOCK_NAME, hold, pid_running
from audiobench.core.names import unknown_name

DEFAULT_ROOT = Path("audiobench-data")
AUDIO_RATE = 16000  # Hz: every file under audio/ is mono at this rate (the VGGish front end's input rate)
ROOT_ENV = "AUDIOBENCH_ROOT"

_DATASET_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
# What any source's recording ID must look like to become part of a clip's file name (each source checks
# its own, stricter rule first: ``audiobench.data.sources``).
_SOURCE_ID = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$")


def resolve_root(root: str | os.PathLike[str] | None = None) -> Path:
    """The storage root: the argument, else ``$AUDIOBENCH_ROOT``, else ``./audiobench-data``."""
    if root is None or str(root) == "":
        root = os.environ.get(ROOT_ENV) or DEFAULT_ROOT
    return Path(root).expanduser()


def validate_name(name: object, *, what: str = "dataset name", where: str = "") -> str:
    """Refuse a name that becomes one path component (dataset, split, study) unless it is plainly safe.

    Letters, digits, '.', '_' and '-', starting with a letter or digit, at most 64: no separator, no
    ``..``, nothing that could leave the folder it is joined to.
    """
    if not isinstance(name, str) or not _DATASET_NAME.match(name):
        prefix = f"{where}: " if where else ""
        raise AudiobenchError(f"{prefix}invalid {what} {name!r} (letters, digits, '.', '_' and '-', "
                              "starting with a letter or digit, at most 64)")
    return name


def clip_id_for(source_id: str, start: float, end: float) -> str:
    """The clip's stable name, ``<source_id>_<start_ms>_<end_ms>`` (``<ytid>_...`` for YouTube clips).

    Safe as a file name: an ID that could leave its folder (a separator, a leading dot, a space) is refused.
    """
    if not isinstance(source_id, str) or not _SOURCE_ID.match(source_id):
        raise AudiobenchError(f"invalid recording ID {source_id!r}: it cannot be part of a file name "
                              "(letters, digits, '.', '_' and '-', not starting with '.', at most 128)")
    return f"{source_id}_{round(start * 1000):d}_{round(end * 1000):d}"


def ensure_writable_dir(path: Path) -> Path:
    """Create ``path`` (and parents) or say in one line why it cannot be written."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise AudiobenchError(f"cannot create {path}: {exc.strerror or exc}") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise AudiobenchError(f"cannot write to {path}: permission denied (choose another --root)")
    return path


def require_inside(path: Path, folder: Path) -> Path:
    """``path`` if it lies strictly inside ``folder`` (both resolved), else an error: every deletion of dataset
    data goes through this, so no name, however it got into a manifest or ledger, can aim one elsewhere."""
    resolved, base = Path(path).resolve(), Path(folder).resolve()
    if resolved == base or not resolved.is_relative_to(base):
        raise AudiobenchError(f"refusing to delete {path}: it is not inside {folder}")
    return path


class DiskFullError(AudiobenchError):
    """The disk under the storage root is full (the message names the folder and the space)."""


def is_disk_full(exc: BaseException) -> bool:
    """Whether ``exc`` (or an exception it was raised from or during) says the disk is full."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        text = str(current)
        if isinstance(current, DiskFullError) or getattr(current, "errno", None) == errno.ENOSPC or any(
                sign in text for sign in ("No space left on device", "database or disk is full", "errno = 28,")):
            return True
        current = current.__cause__ or current.__context__
    return False


def disk_full_error(folder: Path, *, needed: float | None = None) -> DiskFullError:
    """The one-line error for a full disk: the folder, its free space and about how much the work needs."""
    try:
        free = f"{_size(shutil.disk_usage(folder).free)} free"
    except OSError:
        free = "free space unknown"
    need = f", about {_size(needed)} more needed" if needed else ""
    return DiskFullError(f"no space left on the disk of {folder} ({free}{need}); free some space and rerun "
                           "(finished work is kept)")


def _size(n: float) -> str:
    for unit in ("B", "kB", "MB"):
        if n < 1000:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"


@dataclass(frozen=True)
class DatasetPaths:
    """The folders of one dataset under the storage root."""

    root: Path
    name: str

    def __post_init__(self) -> None:
        validate_name(self.name)

    @property
    def dir(self) -> Path:
        return self.root / self.name

    @property
    def index(self) -> Path:
        return self.dir / "index"

    @property
    def ledger(self) -> Path:
        return self.dir / "ledger.sqlite"

    @property
    def raw(self) -> Path:
        return self.dir / "raw"

    @property
    def audio(self) -> Path:
        return self.dir / "audio"

    @property
    def features(self) -> Path:
        return self.dir / "features"

    @property
    def partial(self) -> Path:
        """``raw/.partial``: downloads in progress, one folder per fetch process (``<pid>/``)."""
        return self.raw / ".partial"

    @property
    def lock(self) -> Path:
        """``<dataset>/.lock``: the dataset's one-writer lock (:meth:`writing`, :meth:`reading`)."""
        return self.dir / LOCK_NAME

    @contextmanager
    def writing(self, *, wait: bool = False) -> Iterator[None]:
        """Be the dataset's one writer for the duration: fetch, import, merge, resample and synth hold this
        while they write its lists, ledger, ``raw/`` or ``audio/``. Another writer (or a featurize reading
        the dataset) makes it fail at once naming that process, or with ``wait`` wait for it.

        Once held, what killed runs left is removed: temporary files in ``raw/`` and ``audio/`` and download
        folders under ``raw/.partial/``; no other process can be writing them now.
        """
        ensure_writable_dir(self.dir)
        with hold(self.lock, shared=False, busy=f"dataset {self.name!r} in {self.root} is in use",
                  wait=wait, hint=BUSY_HINT):
            self.remove_leftovers()
            yield

    @contextmanager
    def reading(self, *, wait: bool = False) -> Iterator[None]:
        """Read the dataset while no writer changes it (featurize): shared with other readers, never with a
        writer (see :meth:`writing`)."""
        ensure_writable_dir(self.dir)
        with hold(self.lock, shared=True, busy=f"dataset {self.name!r} in {self.root} is being written",
                  wait=wait, hint=BUSY_HINT):
            yield

    def remove_leftovers(self) -> None:
        """Delete every temporary file under ``raw/<split>/`` and ``audio/<split>/`` and every download folder
        under ``raw/.partial/``: only for the dataset's writer (:meth:`writing`), when nothing else writes them.
        """
        for folder in (self.raw, self.audio):
            remove_dead_temporaries(folder, everyone=True)
        if self.partial.is_dir():
            for leftover in self.partial.iterdir():
                remove_tree(require_inside(leftover, self.partial))

    def feature_dir(self, feature_id: str) -> Path:
        """``features/<feature_id>``; an id that could leave ``features/`` (``--feature-id ../x``) is refused."""
        return self.features / validate_name(feature_id, what="feature id")

    def require_ledger(self) -> Path:
        """The ledger path, or an error naming the closest dataset there is (a typo is the likely cause),
        else the stages that make one."""
        if not self.ledger.is_file():
            raise unknown_name("dataset", self.name, known_datasets(self.root), under=self.root,
                               then=f"make it with `audiobench synth --name {self.name}`, "
                                    f"`audiobench fetch {self.name}` or `audiobench import {self.name} DIR`")
        return self.ledger


BUSY_HINT = "rerun with --wait to wait for it, or once it has finished"


def temporary_pid(path: Path) -> int | None:
    """The process that writes a temporary name of :func:`atomic_path` (``.<name>.<pid>.tmp``), if it says."""
    pid = path.name.rsplit(".", 2)[-2] if path.name.count(".") >= 2 else ""
    return int(pid) if pid.isdigit() else None


def remove_dead_temporaries(folder: Path, *, everyone: bool = False) -> None:
    """Delete the temporary files (``.*.tmp``) in ``folder``'s subfolders (``raw/<split>/``, ``audio/<split>/``)
    that a killed run left: those of processes no longer running, or that name none; with ``everyone``, all
    (for the dataset's writer, when no other process may be writing there). They never counted: a file only
    counts once renamed to its name, and the ledger marks a clip only after that.
    """
    if not folder.is_dir():
        return
    for tmp in folder.glob("*/.*.tmp"):
        pid = temporary_pid(tmp)
        if everyone or pid is None or not pid_running(pid):
            require_inside(tmp, folder).unlink(missing_ok=True)


def remove_tree(path: Path) -> None:
    """Delete a file or folder, and whatever is in it; already gone is fine."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def known_datasets(root: Path) -> list[str]:
    """The dataset folders under ``root`` that hold a ledger (made by ``synth``, ``fetch`` or ``import``)."""
    if not root.is_dir():
        return []
    return sorted(p.parent.name for p in root.glob("*/ledger.sqlite") if p.is_file())


def runs_dir(root: Path) -> Path:
    return root / "runs"


def weights_dir(root: Path) -> Path:
    """``<root>/weights``: pretrained weights (``audiobench weights``), where the pipelines' ``init`` look."""
    return root / "weights"


def fsync_path(path: Path, *, directory: bool = False) -> None:
    """Flush a written file (or a directory entry after a rename) to disk."""
    fd = os.open(path, os.O_RDONLY | (os.O_DIRECTORY if directory else 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def replace_durably(tmp: Path, final: Path) -> None:
    """fsync ``tmp``, rename it onto ``final`` (atomic), fsync the folder: all or nothing, even on power loss."""
    fsync_path(tmp)
    os.replace(tmp, final)
    fsync_path(final.parent, directory=True)


@contextmanager
def atomic_path(path: Path, *, durable: bool = False) -> Iterator[Path]:
    """A temporary name beside ``path`` for the block to write; renamed onto ``path`` when the block ends,
    removed when it raises.

    A run killed at any moment leaves either the old file or the new one, never a half-written file that a
    rerun would read (or refuse) as complete. ``durable``: also fsync the file and the folder entry
    (:func:`replace_durably`), so that the new file survives a power loss too, at the cost of waiting for
    the disk; for files that mark work done, not for records a rerun rewrites.

    >>> with atomic_path(Path(folder) / "model.pt") as tmp:      # doctest: +SKIP
    ...     torch.save(state, tmp)
    """
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        yield tmp
        if durable:
            replace_durably(tmp, path)
        else:
            os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_atomic(path: Path, data: bytes | str, *, durable: bool = False) -> None:
    """Write ``data`` (text is UTF-8) to ``path`` through :func:`atomic_path`: the old file or the new one."""
    with atomic_path(path, durable=durable) as tmp:
        tmp.write_bytes(data.encode() if isinstance(data, str) else data)


def json_safe(value: Any) -> Any:
    """JSON-safe: NaN and infinities (a d′ at AUC 1) become null, numpy scalars Python numbers; what every
    results file holds, so that any JSON reader (not only Python's) takes it."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if hasattr(value, "item") and getattr(value, "shape", None) == ():  # a numpy scalar
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
