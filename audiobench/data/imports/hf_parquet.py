"""Parquet mirrors of AudioSet on the Hugging Face hub (``data/<split>/*.parquet``).

Layout followed: the ``datasets`` library's Audio feature as those mirrors store it: a ``video_id`` column
(some name it ``ytid`` or ``id``), an ``audio`` struct of ``bytes`` (encoded; mostly 48 kHz 24-bit FLAC) and
``path``, and label columns (``labels``/``human_labels``: MIDs or names). No segment times. Files are read
a few rows at a time, only the columns needed, so memory is bounded by one row group's column chunks,
whatever the file's size.
"""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from audiobench.core.errors import AudiobenchError
from audiobench.data.imports.entry import Entry

FORMAT = "hf-parquet"
SUFFIXES = (".parquet",)
_ID_COLUMNS = ("video_id", "ytid", "youtube_id", "id")
_LABEL_COLUMNS = ("labels", "label", "human_labels")
BATCH = 8  # rows decoded from the column chunks at a time


def _require_pyarrow():
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise AudiobenchError("reading parquet copies needs pyarrow: pip install 'audiobench[parquet]'") from None
    return pq


def count(path: Path) -> int:
    return _require_pyarrow().ParquetFile(path).metadata.num_rows


def entries(copy: Path, path: Path | None = None) -> Iterator[Entry]:
    pq = _require_pyarrow()
    path = path or copy
    member_of = path.relative_to(copy).as_posix() if path != copy else path.name
    try:  # no pre-buffering, a small read buffer: memory holds one row group's column chunks, not more
        parquet = pq.ParquetFile(path, pre_buffer=False, buffer_size=1 << 20)
    except Exception as exc:  # pyarrow raises ArrowInvalid/OSError for a damaged file
        raise AudiobenchError(f"{path}: not a readable parquet file ({exc})") from None
    names = parquet.schema_arrow.names
    id_column = next((c for c in _ID_COLUMNS if c in names), None)
    if id_column is None or "audio" not in names:
        raise AudiobenchError(f"{path}: no {'/'.join(_ID_COLUMNS)} column and audio column (has {', '.join(names)})")
    label_column = next((c for c in _LABEL_COLUMNS if c in names), None)
    columns = [id_column, "audio"] + ([label_column] if label_column else [])
    row = 0
    # A few rows at a time; no pyarrow threads: the workers are ours.
    for batch in parquet.iter_batches(batch_size=BATCH, columns=columns, use_threads=False):
        ids = batch.column(id_column).to_pylist()
        audio = batch.column("audio")
        blobs = audio.field("bytes") if hasattr(audio, "field") else audio
        labels = batch.column(label_column).to_pylist() if label_column else [None] * len(ids)
        for i, ytid in enumerate(ids):
            data = blobs[i].as_py()
            yield Entry(FORMAT, copy, f"{member_of}#{row}", str(ytid), _suffix(audio, i), lambda d=data: d or b"",
                        labels=_labels(labels[i]))
            row += 1


def _suffix(audio, i: int) -> str:
    """The encoded file's extension, from the struct's ``path`` where it has one (FLAC otherwise)."""
    try:
        name = audio.field("path")[i].as_py()
    except (KeyError, AttributeError, TypeError):
        name = None
    return Path(name).suffix.lower() if name and Path(name).suffix else ".flac"


def _labels(value: object) -> tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return tuple(v.strip() for v in value.split(",") if v.strip())
    return tuple(str(v) for v in value)  # type: ignore[union-attr]
