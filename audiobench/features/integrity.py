"""The feature store returns the rows featurize wrote, or an error: the checks (docs/features.md).

A split file's ``logmel`` is a virtual dataset over shard files (:mod:`audiobench.features.store`). HDF5 reads
the rows of a missing source as padding without a word, and reads whatever file lies under a source's name, so
every row is checked against what was written before it is handed out:

* every shard carries ``clip_id`` (one per row), ``length``, a ``shard_id`` (its file name when written) and
  the CRC-32 of its ``logmel``; the split file records, per shard it maps, the name, shard id and CRC-32 it
  expects there (group ``shards``), beside each row's ``clip_id`` and ``length``;
* before the first row of a shard is returned (once per shard per open, in each process) the reader checks
  that the file is there, is a readable HDF5 file with its completion marker (not cut short, not zeroed), is
  the shard the split file names (not another shard's file renamed into place), has the shape mapped, holds
  at each row the split file maps onto it the clip id and frame count the split file lists for that row, and
  that the CRC-32 of the bytes read matches both the split file's and the shard's own record.

So a row returned is the one written: it comes from the shard the split file names, at the row it maps, which
holds the clip the split file lists for that row, and its bytes are those whose CRC-32 was taken when they were
written. The reader then keeps that file open and reads every later row of the shard from it (the same file,
whatever happens to the folder's names). A shard damaged after this check, while open, is not checked again.

Any failed check is one :class:`DamagedShard` line naming the shard and the ``audiobench featurize`` command
that computes its clips again (featurize runs the same checks and recomputes what fails them).
"""
from __future__ import annotations

import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from audiobench.core.errors import AudiobenchError
from audiobench.core.layout import resolve_root

STRING = h5py.string_dtype("utf-8")
COMPLETE = "complete"  # attribute set to True as the very last write of a split or shard file
SHARDS = "shards"  # the split file's group: name, shard_id, crc32 of each shard it maps
UNKNOWN_CRC = -1  # a shard table entry whose CRC-32 was never recorded


class DamagedShard(AudiobenchError):
    """A shard that a split file maps fails a check: missing, unreadable, another shard, or other bytes."""

    def __init__(self, message: str) -> None:
        # torch's DataLoader raises a worker's error again as ``DamagedShard("Caught DamagedShard in DataLoader
        # worker process 0.\nOriginal Traceback ...\n...DamagedShard: <message>")``: keep the one line.
        if "\n" in message.strip():
            message = message.strip().splitlines()[-1].split(": ", 1)[-1]
        super().__init__(message)


@dataclass(frozen=True)
class ShardRef:
    """A shard as the split file maps it: its name (relative to the split file), ``logmel`` shape as mapped (its
    first dimension may be only the rows mapped), and the shard id and CRC-32 it recorded (``""`` and ``None``
    in split files written before they were)."""

    name: str
    shape: tuple[int, int, int]
    shard_id: str = ""
    crc32: int | None = None


@dataclass(frozen=True)
class RowMap:
    """Where each row of a split file lies: ``shard[i]`` indexes ``refs`` (-1: mapped nowhere), ``row[i]`` is the
    row there."""

    refs: tuple[ShardRef, ...]
    shard: np.ndarray  # int64 [N]
    row: np.ndarray  # int64 [N]

    def rows_of(self, k: int) -> np.ndarray:
        """The split file's rows that lie in shard ``k``."""
        return np.flatnonzero(self.shard == k)


@dataclass
class VerifiedShard:
    """A shard that passed every check: the open file, its ``logmel`` as stored, and its id and CRC-32."""

    file: h5py.File
    data: np.ndarray | None
    ref: ShardRef

    def close(self) -> None:
        self.file.close()
        self.data = None


def source_map(logmel: h5py.Dataset) -> tuple[tuple[tuple[str, int], ...], dict[str, tuple[int, int, int]]]:
    """Per row of a virtual ``logmel`` as :class:`~audiobench.features.store.SplitWriter` maps it: (shard file,
    row there); and the shape of each shard's ``logmel``. A row mapped to nothing has the name ``""``."""
    rows: list[tuple[str, int]] = [("", 0)] * logmel.shape[0]
    shapes: dict[str, tuple[int, int, int]] = {}
    for m in logmel.virtual_sources():
        (first, _, _), (last, _, _) = m.vspace.get_select_bounds()
        (row, _, _), _ = m.src_space.get_select_bounds()
        shapes[m.file_name] = tuple(int(n) for n in m.src_space.shape)
        rows[first:last + 1] = [(m.file_name, row + k) for k in range(last - first + 1)]
    return tuple(rows), shapes


def read_row_map(f: h5py.File) -> RowMap | None:
    """The row map of an open split file, with what its shard table records; ``None`` for a file that stores
    its own features."""
    logmel = f["logmel"]
    if not logmel.is_virtual:
        return None
    sources, shapes = source_map(logmel)
    recorded: dict[str, tuple[str, int | None]] = {}
    if SHARDS in f:
        table = f[SHARDS]
        for name, sid, crc in zip(table["name"].asstr()[()], table["shard_id"].asstr()[()], table["crc32"][()]):
            recorded[name] = (sid, None if int(crc) == UNKNOWN_CRC else int(crc))
    names = sorted(shapes)
    refs = tuple(ShardRef(n, shapes[n], *recorded.get(n, ("", None))) for n in names)
    index = {n: k for k, n in enumerate(names)}
    return RowMap(refs, np.array([index.get(n, -1) for n, _ in sources], dtype=np.int64),
                  np.array([r for _, r in sources], dtype=np.int64))


def write_shard_table(f: h5py.File, refs: Iterable[ShardRef]) -> None:
    """Record in a split file being written what each shard it maps must be: name, shard id, CRC-32."""
    refs = sorted(refs, key=lambda r: r.name)
    group = f.create_group(SHARDS)
    group.create_dataset("name", data=[r.name for r in refs], dtype=STRING)
    group.create_dataset("shard_id", data=[r.shard_id for r in refs], dtype=STRING)
    group.create_dataset("crc32", data=np.array([UNKNOWN_CRC if r.crc32 is None else r.crc32 for r in refs],
                                                dtype=np.int64))


def repair_hint(split: Path, attrs: Mapping[str, object]) -> str:
    """The command that computes a split file's damaged rows again, from the file's attributes and place."""
    dataset = str(attrs.get("dataset", "DATASET"))
    words = ["audiobench", "featurize", dataset]
    path = Path(split).absolute()
    if len(path.parents) > 3 and path.parents[1].name == "features" and path.parents[2].name == dataset:
        root = path.parents[3]
        if root.resolve() != resolve_root().absolute().resolve():
            words += ["--root", str(root)]
    words += ["--features", str(attrs.get("extractor", "vggish-logmel"))]
    if str(attrs.get("dtype", "float32")) != "float32":
        words += ["--dtype", str(attrs["dtype"])]
    return f"run `{' '.join(words)}` to compute them again"


def verify_shard(split: Path, ref: ShardRef, rows: np.ndarray, clip_ids: Sequence[str], lengths: np.ndarray, *,
                 hint: str, keep_data: bool = False, into: np.ndarray | None = None) -> VerifiedShard:
    """Open the shard ``ref`` of the split file ``split`` and check it (see the module docstring).

    ``rows`` are the shard's rows that the split file maps, ``clip_ids`` and ``lengths`` what the split file
    lists for them. Returns the open file (and with ``keep_data`` its ``logmel``), or raises :class:`DamagedShard`.
    ``into``: a C-contiguous ``[len(rows), T, dims]`` array that ``rows`` fill in order (``rows`` being
    ``0, 1, ...``); a shard of that many rows, that width or less and ``into``'s dtype is read straight into it
    (its ``data`` is then ``None``), which spares a copy of every feature when a split is read into memory.
    """
    path = split.parent / ref.name
    f = None
    try:
        if not path.is_file():
            raise _Problem("missing")
        f = h5py.File(path, "r")
        ref = _check(f, ref, rows, clip_ids, lengths)
        data, crc = _read_crc(f["logmel"], into)
        if crc != int(f.attrs["crc32"]) or (ref.crc32 is not None and crc != ref.crc32):
            raise _Problem("its features fail their CRC-32 check (damaged on disk)")
        return VerifiedShard(f, data if keep_data else None, ShardRef(ref.name, ref.shape, ref.shard_id, crc))
    except Exception as exc:
        if f is not None:
            f.close()
        if isinstance(exc, _Problem):
            problem = str(exc)
        elif isinstance(exc, (OSError, KeyError, ValueError, TypeError, IndexError)):
            problem = f"not a readable shard file ({_one_line(exc)})"
        else:
            raise
        raise DamagedShard(f"damaged feature shard {path}: {problem}; it holds the features of {len(rows)} "
                           f"clips of {split}; {hint}") from None


def sound_shards(split: Path, rows: RowMap, clip_ids: Sequence[str], lengths: np.ndarray, *,
                 hint: str) -> dict[str, ShardRef]:
    """The shards of a split file that pass every check, by name, with their shard id and CRC-32 (featurize
    computes the rows of the others again)."""
    sound = {}
    for k, ref in enumerate(rows.refs):
        mapped = rows.rows_of(k)
        try:
            shard = verify_shard(split, ref, rows.row[mapped], [clip_ids[i] for i in mapped], lengths[mapped],
                                 hint=hint)
        except DamagedShard:
            continue
        shard.close()
        sound[ref.name] = shard.ref
    return sound


def _read_crc(logmel: h5py.Dataset, into: np.ndarray | None) -> tuple[np.ndarray | None, int]:
    """The shard's features (``None`` when read into ``into``) and the CRC-32 of their bytes as stored."""
    n, width, _ = logmel.shape
    if into is None or into.shape[0] != n or into.shape[1] < width or into.dtype != logmel.dtype:
        data = logmel[()]
        return data, zlib.crc32(np.ascontiguousarray(data))
    logmel.read_direct(into, np.s_[:, :, :], np.s_[:, :width, :])
    crc = 0
    for row in into:  # the stored bytes are each row's first ``width`` frames, row after row
        crc = zlib.crc32(row[:width], crc)
    return None, crc


def _check(f: h5py.File, ref: ShardRef, rows: np.ndarray, clip_ids: Sequence[str], lengths: np.ndarray) -> ShardRef:
    """Every check but the CRC-32; ``ref`` with the shard id the file carries."""
    if not f.attrs.get(COMPLETE, False):
        raise _Problem("it has no completion marker (written only in part)")
    expected = ref.shard_id or Path(ref.name).name
    got = f.attrs.get("shard_id")
    if (got is not None and str(got) != expected) or (got is None and ref.shard_id):
        raise _Problem(f"it is shard {got or '(no id)'}, not {expected} (another shard's file put in its place?)")
    shape = tuple(int(n) for n in f["logmel"].shape)  # HDF5 may record a source's rows as those mapped: not them
    if len(shape) != 3 or shape[2] != ref.shape[2] or int(rows.max(initial=-1)) >= shape[0]:
        raise _Problem(f"its features have shape {shape}, where the split file maps rows up to "
                       f"{int(rows.max(initial=0))} of {ref.shape[2]} dims")
    stored = f["clip_id"].asstr()[()]
    stored_lengths = f["length"][()]
    if len(stored) != shape[0] or len(stored_lengths) != shape[0]:
        raise _Problem(f"it lists {len(stored)} clips for {shape[0]} rows of features")
    for r, cid, n in zip(rows.tolist(), clip_ids, np.asarray(lengths).tolist()):
        if stored[r] != cid or int(stored_lengths[r]) != n or n > shape[1]:
            raise _Problem(f"its row {r} holds clip {stored[r]} ({int(stored_lengths[r])} frames), where the split "
                           f"file lists {cid} ({n} frames)")
    return ShardRef(ref.name, ref.shape, str(got) if got is not None else "", ref.crc32)


class _Problem(Exception):
    """What is wrong with a shard, in a few words (turned into a :class:`DamagedShard` line)."""


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__
