"""Merge other audiobench roots into this one: how downloads split over machines (``fetch --shard i/n``) meet.

Each source is another storage root holding ``<dataset>/ledger.sqlite`` and its ``raw/`` files. The merge
takes the lists from the source ledger (its classes, splits, clips with their labels, and the facts
registration wrote: the list files' sha256, splits, roles, partition); a target that already has the dataset
must hold the very same lists, else nothing is merged (clips of other lists would mix silently). The list
files themselves (``index/``, checked against the sha256 registered) and the ``manifest.toml`` of a dataset
imported from a folder of one's own are copied where the target lacks them.

Per clip, the rows of the target and of every source combine so that a rerun changes nothing:

- a clip ``ok`` in the target stays as it is (never downgraded, never replaced);
- else the first source (in the order given) whose row is ``ok`` and whose raw file matches that row's size
  and sha256 gives the clip: the file is copied to ``raw/<split>/<clip_id><ext>`` (temporary name, then
  rename) and then, in one transaction, its row (attempts, last error, bytes, sha256, duration, path, origin);
- else the most telling status wins: ``unavailable`` (gone for good) over ``failed`` (worth a retry) over
  ``pending``, with that row's last error;
- ``attempts`` is the largest of the rows', not their sum: merging the same root twice, or a root that was
  itself merged from another, must not count the same tries again.

The source is only read: its ledger through SQLite's backup API into a temporary copy (so a source written by
an older release, or on a read-only disk, is read as it is). Nothing a source ledger says is trusted as a
path: a clip ID must be the one its recording and segment give, its split a plain name, and its raw file must
lie inside the source's ``raw/`` folder (links leading out are refused). Resampled audio is not merged: run
``audiobench resample`` on the merged root.
"""
from __future__ import annotations

import re
import sqlite3
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from audiobench.core.errors import AudiobenchError
from audiobench.core.layout import DatasetPaths, clip_id_for, resolve_root, validate_name, write_atomic
from audiobench.core.progress import progress
from audiobench.core.records import ClipStatus
from audiobench.data.imports.copying import CopyMismatch, copy_checked
from audiobench.data.ledger import Ledger
from audiobench.data.manifests import OWN_MANIFEST
from audiobench.data.register import REGISTRATION_META

# Statuses ranked: the higher wins when rows of several roots disagree and none is a usable ``ok``.
_RANK = {"pending": 0, "failed": 1, "unavailable": 2}
# Meta written by registration that must agree between roots: the same lists, divided the same way.
_SAME_LISTS = ("dataset", "splits", "roles", "partition", "index")
_RAW_SUFFIX = re.compile(r"^\.[a-z0-9]{1,5}$")


@dataclass
class MergeResult:
    """What a merge did: clips copied, rows updated from the sources, and what could not be taken."""

    dataset: str
    root: Path
    sources: tuple[Path, ...]
    copied: int = 0  # clips made ok from a source (file and row)
    updated: int = 0  # not-ok rows that took a source's status (unavailable, failed) or attempts
    already: int = 0  # clips ok in the target before the merge
    unchanged: int = 0  # every other clip: nothing new in any source
    problems: list[str] = field(default_factory=list)  # one line each: a source ok clip not taken, and why

    @property
    def empty(self) -> bool:
        """Nothing was taken and nothing was there already: the command exits non-zero."""
        return self.copied + self.already == 0

    def summary(self) -> str:
        text = (f"merged {len(self.sources)} root(s) into {self.root / self.dataset}: {self.copied} clips copied, "
                f"{self.updated} statuses updated, {self.already} already ok, {self.unchanged} unchanged")
        if self.problems:
            text += f"; {len(self.problems)} not taken:\n" + "\n".join(f"  {p}" for p in self.problems)
        return text

    def to_dict(self) -> dict[str, object]:
        return {"dataset": self.dataset, "root": str(self.root), "sources": [str(s) for s in self.sources],
                "copied": self.copied, "updated": self.updated, "already": self.already,
                "unchanged": self.unchanged, "problems": list(self.problems)}


@dataclass(frozen=True)
class _SourceRow:
    root: Path  # the source's dataset folder
    row: ClipStatus
    origin: dict[str, object] | None


def merge_roots(dataset: str, sources: Sequence[Path], *, root: Path | None = None,
                quiet: bool = False, wait: bool = False) -> MergeResult:
    """Merge ``dataset`` of each root in ``sources`` into ``root`` (see the module docstring for the rules),
    as the target dataset's one writer (``wait``: for another one to finish, else refused at once).

    >>> merge_roots("sl-dcase17", [Path("machine-a"), Path("machine-b")], root=Path("data"))  # doctest: +SKIP
    """
    validate_name(dataset)
    if not sources:
        raise AudiobenchError("merge: give at least one root to merge from")
    paths = DatasetPaths(resolve_root(root), dataset)
    source_dirs = [DatasetPaths(Path(s).expanduser(), dataset).dir for s in sources]
    for folder in source_dirs:
        if folder.resolve() == paths.dir.resolve():
            raise AudiobenchError(f"merge: {folder} is the target itself")
        if not (folder / "ledger.sqlite").is_file():
            raise AudiobenchError(f"merge: no dataset {dataset!r} under {folder.parent} "
                                  f"(no {folder / 'ledger.sqlite'})")
    result = MergeResult(dataset, paths.root, tuple(Path(s) for s in sources))
    with paths.writing(wait=wait), tempfile.TemporaryDirectory(prefix="audiobench-merge-") as tmp, \
            Ledger(paths.ledger) as target:
        rows: dict[str, list[_SourceRow]] = {}
        for i, folder in enumerate(source_dirs):
            with Ledger(_snapshot(folder / "ledger.sqlite", Path(tmp) / f"{i}.sqlite")) as src:
                statuses = src.statuses()
                for row in statuses:
                    _check_row(row, folder)
                _register_lists(target, src, folder)
                _copy_lists(folder, paths, src.meta().get("index"))
                origins = src.origins()
                for row in statuses:
                    rows.setdefault(row.clip_id, []).append(_SourceRow(folder, row, origins.get(row.clip_id)))
        origins = target.origins()
        for current in progress(target.statuses(), desc="merge", quiet=quiet, unit="clip"):
            _merge_clip(target, paths, current, origins.get(current.clip_id), rows.get(current.clip_id, []),
                        result)
    return result


def _snapshot(ledger: Path, copy: Path) -> Path:
    """A consistent copy of a source ledger (committed WAL content included), read without writing to it.

    A ledger without a ``-wal`` file is opened immutable (SQLite then creates no ``-wal``/``-shm`` beside it);
    one with a ``-wal`` (its writer was killed, or still runs) read-only, which needs those files.
    """
    mode = "mode=ro" if ledger.with_name(ledger.name + "-wal").exists() else "immutable=1"
    try:
        src = sqlite3.connect(f"{ledger.resolve().as_uri()}?{mode}", uri=True)
        try:
            with sqlite3.connect(copy) as out:
                src.backup(out)
        finally:
            src.close()
    except sqlite3.DatabaseError as exc:
        raise AudiobenchError(f"{ledger}: not a usable ledger ({exc})") from None
    return copy


def _register_lists(target: Ledger, src: Ledger, folder: Path) -> None:
    """Give the target the source's lists, or check that it already holds the same ones."""
    meta = src.meta()
    if not meta.get("dataset"):
        raise AudiobenchError(f"{folder / 'ledger.sqlite'}: records no registered lists (run `audiobench fetch "
                              "DATASET --limit 0` there, or choose another root)")
    mine = target.meta()
    if mine.get("dataset"):
        differ = [k for k in _SAME_LISTS if mine.get(k) != meta.get(k)]
        if differ:
            raise AudiobenchError(f"{folder / 'ledger.sqlite'}: its lists differ from those of {target.path} "
                                  f"({', '.join(differ)}); nothing was merged")
    target.set_classes(src.classes())  # a different class list is an error naming the target
    known = {row.clip_id: row.split for row in target.statuses()}
    for split in src.splits():
        validate_name(split, what="split name", where=str(folder / "ledger.sqlite"))
        clips = src.clips(split=split)
        for clip in clips:
            if known.get(clip.clip_id, clip.split) != clip.split:
                raise AudiobenchError(f"{folder / 'ledger.sqlite'}: clip {clip.clip_id} is in split {clip.split!r} "
                                      f"there but {known[clip.clip_id]!r} in {target.path}; nothing was merged")
        target.add_clips(clips)
    if not mine.get("dataset"):  # last: a merge killed before this point registers again on the rerun
        target.set_meta(**{k: meta[k] for k in REGISTRATION_META if k in meta})  # not the source's probe


def _copy_lists(folder: Path, paths: DatasetPaths, index: object) -> None:
    """The verified list files the target lacks (checked against the sha256 the source registered), and the
    manifest of a dataset imported from a folder of one's own: so the merged root registers offline too."""
    if isinstance(index, dict):
        for name, sha256 in index.items():
            validate_name(name, what="index file name", where=str(folder / "ledger.sqlite"))
            source, target = folder / "index" / name, paths.index / name
            if not target.exists() and source.is_file() and isinstance(sha256, str):
                try:
                    copy_checked(source, target, sha256=sha256)
                except CopyMismatch:
                    pass  # a changed copy is not copied; registering the target fetches the file again
    manifest = folder / OWN_MANIFEST
    if manifest.is_file() and not (paths.dir / OWN_MANIFEST).exists():
        write_atomic(paths.dir / OWN_MANIFEST, manifest.read_bytes())


def _check_row(row: ClipStatus, folder: Path) -> None:
    """A source row's clip ID must be the one its recording and segment name, its split a plain name (both
    become part of a path)."""
    validate_name(row.split, what="split name", where=f"{folder / 'ledger.sqlite'}: clip {row.clip_id}")
    if row.clip_id != clip_id_for(row.source_id, row.start, row.end):
        raise AudiobenchError(f"{folder / 'ledger.sqlite'}: clip {row.clip_id!r} does not match its recording "
                              f"{row.source_id!r} and segment {row.start:g}-{row.end:g} s; nothing was merged")


def _merge_clip(target: Ledger, paths: DatasetPaths, current: ClipStatus, origin: dict[str, object] | None,
                found: list[_SourceRow], result: MergeResult) -> None:
    if current.status == "ok":
        result.already += 1
        return
    for src in found:
        if src.row.status != "ok":
            continue
        try:
            relative = _copy_raw(src, paths, split=current.split)
        except AudiobenchError as exc:
            result.problems.append(str(exc))
            continue
        row = src.row
        target.mark(row.clip_id, "ok", error=row.last_error, attempts=_attempts(current, found) - current.attempts,
                    origin=src.origin, bytes=row.bytes, sha256=row.sha256, duration=row.duration, path=relative)
        result.copied += 1
        return
    rows = [current] + [s.row for s in found if s.row.status != "ok"]
    best = max(rows, key=lambda r: _RANK[r.status])  # the first of the highest rank: the target's on a tie
    attempts = _attempts(current, found)
    if (best.status, best.last_error, attempts) == (current.status, current.last_error, current.attempts):
        result.unchanged += 1
        return
    target.mark(current.clip_id, best.status, error=best.last_error, attempts=attempts - current.attempts)
    result.updated += 1


def _attempts(current: ClipStatus, found: list[_SourceRow]) -> int:
    return max([current.attempts, *(s.row.attempts for s in found)])


def _copy_raw(src: _SourceRow, paths: DatasetPaths, *, split: str) -> str:
    """Copy an ok clip's raw file into the target's ``raw/<split>/`` (the split the target holds it in),
    checked against the source's row; returns its path relative to the dataset folder."""
    row = src.row
    where = f"{src.root / 'ledger.sqlite'}: clip {row.clip_id}"
    if not row.path or not row.sha256 or row.bytes is None:
        raise AudiobenchError(f"{where}: ok but no raw file, size or sha256 recorded")
    raw = (src.root / "raw").resolve()
    file = (src.root / row.path).resolve()
    if not file.is_relative_to(raw) or file == raw:
        raise AudiobenchError(f"{where}: raw file {row.path!r} is not inside {src.root / 'raw'}; not read")
    suffix = Path(row.path).suffix.lower()
    if not _RAW_SUFFIX.match(suffix):
        raise AudiobenchError(f"{where}: raw file {row.path!r} has no plain audio extension; not read")
    relative = Path("raw") / split / f"{row.clip_id}{suffix}"
    target = paths.dir / relative
    try:
        copy_checked(file, target, sha256=row.sha256, size=row.bytes)
    except CopyMismatch as exc:
        raise AudiobenchError(f"{where}: raw file {row.path} does not match its ledger record ({exc}); "
                              "not copied") from None
    return str(relative)
