"""Parquet mirrors of AudioSet on the Hugging Face hub (``data/<split>/*.parquet``), and any parquet file the
``datasets`` library writes.

Layout followed: the ``datasets`` library's Audio feature as it stores it: a ``video_id`` column (some name it
``ytid`` or ``id``), an ``audio`` struct of ``bytes`` (encoded; mostly 48 kHz 24-bit FLAC) and ``path``, and
label columns (``labels``/``human_labels``: MIDs or names). No segment times. A row's container is told from
its bytes (:mod:`sniff`; ``Dataset.from_dict`` + ``cast_column(Audio())`` rows have no path), its name's
suffix only where the bytes say nothing. A row with no bytes but a ``path`` (``Audio(decode=False)`` of local
files, which ``to_parquet`` does not embed), or an ``audio`` column of path strings, reads that file (relative
to the parquet file's folder); an already decoded ``{array, sampling_rate}`` struct is taken as its samples.
Any other audio column is refused in one line.

Files are read :data:`BATCH` rows at a time, only the columns needed, so memory holds a few rows and the
parquet pages they sit in (``datasets`` writes pages of a few MB), whatever the file's or row group's size;
a row's encoded audio is checked by its header before it is decoded (:func:`validate.decode`).
"""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from audiobench.core.errors import AudiobenchError
from audiobench.data.imports.entry import Entry, Pcm
from audiobench.data.imports.sniff import HEAD, container_suffix
from audiobench.data.imports.validate import Rejected

FORMAT = "hf-parquet"
SUFFIXES = (".parquet",)
_ID_COLUMNS = ("video_id", "ytid", "youtube_id", "id")
_LABEL_COLUMNS = ("labels", "label", "human_labels")
BATCH = 8  # rows decoded from the column chunks at a time


def _require_pyarrow():
    try:
        import pyarrow.parquet as pq  # deferred: optional (the parquet extra), and heavy
    except ImportError:
        raise AudiobenchError("reading parquet copies needs pyarrow: pip install 'audiobench[parquet]'") from None
    return pq


def count(path: Path) -> int:
    return _require_pyarrow().ParquetFile(path).metadata.num_rows


def entries(copy: Path, path: Path | None = None) -> Iterator[Entry]:
    pq = _require_pyarrow()
    path = path or copy
    member_of = path.relative_to(copy).as_posix() if path != copy else path.name
    try:  # no pre-buffering, a small read buffer: memory holds the pages of a few rows, not a row group
        parquet = pq.ParquetFile(path, pre_buffer=False, buffer_size=1 << 20)
    except Exception as exc:  # pyarrow raises ArrowInvalid/OSError for a damaged file
        raise AudiobenchError(f"{path}: not a readable parquet file ({exc})") from None
    names = parquet.schema_arrow.names
    id_column = next((c for c in _ID_COLUMNS if c in names), None)
    if id_column is None or "audio" not in names:
        raise AudiobenchError(f"{path}: no {'/'.join(_ID_COLUMNS)} column and audio column (has {', '.join(names)})")
    kind = audio_kind(parquet.schema_arrow.field("audio").type, path)
    label_column = next((c for c in _LABEL_COLUMNS if c in names), None)
    columns = [id_column, "audio"] + ([label_column] if label_column else [])
    row = 0
    # A few rows at a time; no pyarrow threads: the workers are ours.
    for batch in parquet.iter_batches(batch_size=BATCH, columns=columns, use_threads=False):
        ids = batch.column(id_column).to_pylist()
        audio = batch.column("audio")
        labels = batch.column(label_column).to_pylist() if label_column else [None] * len(ids)
        for i, ytid in enumerate(ids):
            suffix, read, source = _row(kind, audio, i, path)
            yield Entry(FORMAT, copy, f"{member_of}#{row}", str(ytid), suffix, read, path=source,
                        labels=_labels(labels[i]))
            row += 1


def audio_kind(kind, path: Path) -> str:
    """How the ``audio`` column holds each row's audio: ``encoded`` bytes (the Audio feature's {bytes, path},
    or plain binary), a ``path`` string, or ``decoded`` samples; anything else is refused."""
    import pyarrow as pa  # deferred: optional (the parquet extra), and heavy

    t = pa.types
    if t.is_struct(kind):
        fields = {kind.field(j).name: kind.field(j).type for j in range(kind.num_fields)}
        if "bytes" in fields and (t.is_binary(fields["bytes"]) or t.is_large_binary(fields["bytes"])):
            return "encoded"
        array, rate = fields.get("array"), fields.get("sampling_rate")
        if (array is not None and rate is not None and (t.is_list(array) or t.is_large_list(array))
                and t.is_floating(array.value_type) and t.is_integer(rate)):
            return "decoded"
    elif t.is_binary(kind) or t.is_large_binary(kind):
        return "encoded"
    elif t.is_string(kind) or t.is_large_string(kind):
        return "path"
    raise AudiobenchError(f"{path}: the audio column holds {kind}; expected encoded audio ({{bytes, path}}, as the "
                          "datasets Audio feature stores it), a file path, or decoded mono samples "
                          "({array: list<float>, sampling_rate: int})")


def _row(kind: str, audio, i: int, parquet: Path):
    """(suffix, read, file) of row ``i``: ``read`` returns its bytes or :class:`Pcm`, or raises :class:`Rejected`."""
    if kind == "decoded":
        array, rate = audio.field("array")[i], audio.field("sampling_rate")[i].as_py()
        if not array.is_valid or not rate or rate <= 0:
            return ".flac", _refuse("no-audio", f"decoded audio without samples or a rate ({rate!r} Hz)"), None
        samples = array.values.to_numpy(zero_copy_only=False)
        if samples.dtype not in (np.float32, np.float64):  # float16
            samples = samples.astype(np.float32)
        return ".flac", lambda: Pcm(samples[None, :], int(rate)), None
    struct = hasattr(audio, "field")
    if kind == "path":
        data, name = None, audio[i].as_py()
    else:
        data = (audio.field("bytes") if struct else audio)[i].as_py()
        name = _field(audio, "path", i) if struct else None
    if data:
        suffix = container_suffix(data[:HEAD]) or _suffix(name)
        if suffix is None:
            return ".bin", _refuse("undecodable", f"no audio container known by its first bytes "
                                                  f"({data[:8].hex(' ')}) and no file name to tell"), None
        return suffix, lambda: data, None
    if not name:
        return ".flac", _refuse("no-audio", "the row's audio has neither bytes nor a path"), None
    file = Path(name) if Path(name).is_absolute() else parquet.parent / name
    if not file.is_file():
        return ".flac", _refuse("missing-file", f"audio path {name}: no such file (the parquet names its audio "
                                                "files rather than holding them; import from where they are)"), None
    with open(file, "rb") as f:
        suffix = container_suffix(f.read(HEAD)) or _suffix(name) or ".bin"
    return suffix, file.read_bytes, file


def _refuse(category: str, reason: str):
    """A ``read`` that refuses the row (examined like any entry, so its clip records the reason)."""
    def read():
        raise Rejected(category, reason)
    return read


def _field(audio, name: str, i: int) -> str | None:
    try:
        return audio.field(name)[i].as_py()
    except (KeyError, AttributeError, TypeError):
        return None


def _suffix(name: str | None) -> str | None:
    return Path(name).suffix.lower() if name and Path(name).suffix else None


def _labels(value: object) -> tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return tuple(v.strip() for v in value.split(",") if v.strip())
    return tuple(str(v) for v in value)  # type: ignore[union-attr]
