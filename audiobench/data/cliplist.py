"""Clip lists: ``status --export`` writes a dataset's; ``--eval-on`` scores the test clips another list names.

A list is a CSV with a ``clip_id`` column (matched to clip ids, segment included) or, failing that, a
``ytid``, ``youtube_id`` or ``source_id`` column (matched to the recording's ID: every segment of it that the
split holds). Column names are matched without regard to case; AudioSet's own CSVs, whose header line is a
comment (``# YTID, start_seconds, ...``), read as they are.

>>> ClipList(Path("theirs.csv"), "ytid", frozenset({"a", "b"})).listed
2
"""
from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from audiobench.core.errors import AudiobenchError
from audiobench.core.layout import write_atomic
from audiobench.data.fingerprint import split_fingerprint
from audiobench.data.ledger import Ledger

ID_COLUMNS = ("clip_id", "ytid", "youtube_id", "source_id")  # in order of preference
# Cells a spreadsheet would run as a formula (OWASP, CSV injection): the export writes them after a "'".
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
NEUTRAL = "'"
_HEADER_ROWS = 10  # a header is looked for in the first rows (AudioSet's CSVs start with two comments)


@dataclass(frozen=True)
class ClipList:
    """The ids a CSV lists and the column they came from (``clip_id``: clip ids; else recording ids)."""

    file: Path
    column: str
    ids: frozenset[str]

    @property
    def listed(self) -> int:
        return len(self.ids)


@dataclass(frozen=True)
class EvalSubset:
    """The rows of a split that a clip list selects, and what ``metrics.json`` records of them."""

    file: str
    listed: int
    held: int  # listed ids the split holds
    rows: np.ndarray  # row indices into the split, ascending
    fingerprint: str

    def record(self) -> dict[str, Any]:
        """``{file, listed, held, clips, fingerprint}`` (``clips``: the split's rows scored)."""
        return {"file": self.file, "listed": self.listed, "held": self.held, "clips": int(len(self.rows)),
                "fingerprint": self.fingerprint}


def read_clip_list(path: str | Path) -> ClipList:
    """The ids of a clip-list CSV; a one-line error naming the file when it has no id column or no id."""
    path = Path(path)
    try:
        # a quoted cell may hold a line break: the csv module splits the lines, not str.splitlines
        rows = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8-sig")), skipinitialspace=True))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise AudiobenchError(f"{path}: cannot be read as a CSV clip list ({exc})") from None
    for at, header in enumerate(rows[:_HEADER_ROWS]):
        names = [cell.strip().lstrip("#").strip().lower() for cell in header]
        column = next((c for c in ID_COLUMNS if c in names), None)
        if column is None:
            continue
        index = names.index(column)
        ids = frozenset(plain(row[index].strip()) for row in rows[at + 1:]
                        if len(row) > index and row[index].strip() and not row[0].startswith("#"))
        if not ids:
            raise AudiobenchError(f"{path}: its {column} column lists no clip")
        return ClipList(path, column, ids)
    raise AudiobenchError(f"{path}: no {', '.join(ID_COLUMNS[:-1])} or {ID_COLUMNS[-1]} column in its header: "
                          "not a clip list")


def plain(cell: str) -> str:
    """A cell as it was before :func:`neutral` (the ``'`` it put before a formula's first character removed).

    Every other cell is taken as it is: text, never evaluated; an id like ``=cmd()`` matches no clip, and a
    YouTube ID may start with ``-``.
    """
    return cell[1:] if cell.startswith(NEUTRAL) and cell[1:2] and cell[1] in FORMULA_STARTS else cell


def neutral(cell: str) -> str:
    """``cell``, with a ``'`` first when a spreadsheet would read it as a formula (``=``, ``+``, ``-``, ``@``,
    tab or CR first): an export's clip names and origins come from other people's files."""
    return NEUTRAL + cell if cell[:1] in FORMULA_STARTS and cell else cell


def select(clips: ClipList, split_file: Path) -> EvalSubset:
    """The rows of the feature file ``split_file`` that ``clips`` lists; an error when it holds none."""
    with h5py.File(split_file, "r") as f:
        key = "clip_id" if clips.column == "clip_id" else "ytid"
        ids = list(f[key].asstr()[()])
    rows = np.array([i for i, cid in enumerate(ids) if cid in clips.ids], dtype=np.int64)
    if rows.size == 0:
        raise AudiobenchError(f"{clips.file}: none of its {clips.listed} {clips.column}s is in {split_file}")
    held = len(clips.ids.intersection(ids))
    return EvalSubset(str(clips.file), clips.listed, held, rows, split_fingerprint(split_file, rows))


def eval_subset(path: str | Path, split_file: Path) -> EvalSubset:
    """:func:`read_clip_list` then :func:`select`: the ``--eval-on`` rows of a test split."""
    return select(read_clip_list(path), split_file)


EXPORT_COLUMNS = ("clip_id", "split", "status", "source", "source_id", "start", "end", "duration", "audio_sha256")


def export_clips(ledger: Ledger, path: Path) -> int:
    """Write every clip of the ledger as a CSV (``status --export``); returns the rows written.

    Columns: :data:`EXPORT_COLUMNS` (``audio_sha256``: the ledger's sha256 of the audio as adopted), then
    each key of the clips' recorded origins as ``origin_<key>`` (``origin_via``: yt-dlp or import, and the
    facts each recorded), empty where a clip has none. A cell that would start a spreadsheet formula is
    written after a ``'`` (:func:`neutral`). The file reads back as an ``--eval-on`` list (without the ``'``).
    """
    statuses = ledger.statuses()
    origins = ledger.origins()
    keys = sorted({key for origin in origins.values() for key in origin})
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    quoted = csv.writer(out, lineterminator="\n", quoting=csv.QUOTE_ALL)  # a CR in a cell: quoted, or it ends the row
    writer.writerow([neutral(name) for name in (*EXPORT_COLUMNS, *(f"origin_{k}" for k in keys))])
    for s in statuses:
        origin = origins.get(s.clip_id, {})
        row = [neutral(_cell(value)) for value in (s.clip_id, s.split, s.status, s.source, s.source_id, s.start,
                                                   s.end, s.duration, s.sha256, *(origin.get(k) for k in keys))]
        (quoted if any("\r" in cell for cell in row) else writer).writerow(row)
    if not path.parent.is_dir():
        raise AudiobenchError(f"--export {path}: no folder {path.parent} to write it in (create it first)")
    try:
        write_atomic(path, out.getvalue())
    except OSError as exc:
        raise AudiobenchError(f"--export {path}: cannot be written ({exc.strerror or exc})") from None
    return len(statuses)


def _cell(value: object) -> str:
    if value is None:
        return ""
    return json.dumps(value, sort_keys=True) if isinstance(value, (dict, list)) else str(value)
