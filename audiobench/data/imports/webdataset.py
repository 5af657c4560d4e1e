"""WebDataset shards: tar files of samples, each an audio member (``.wav``/``.flac``) and a ``.json``.

Keys are opaque (``sample-000000000``): the ID is the JSON's ``id`` (``youtube_id``/``video_id`` also
taken), which may carry a ``Y`` prefix; labels, where the JSON has ``labels`` (or a ``.cls`` member class
numbers), are compared with the lists.

A shard is read once, front to back, one sample at a time. Memory does not follow the members' sizes: a
member that is neither audio nor a sidecar is skipped unread (a seek in a plain ``.tar``; decompressed and
dropped in a ``.tar.gz``), a sidecar over :data:`MAX_SIDECAR` is refused unread, and an audio member is read
only when its clip is to be adopted (from its offset in a plain ``.tar``; a compressed shard passes it through
a spooled temporary file), its size checked first (:data:`MAX_AUDIO`). Python's tarfile ends an archive
without a word at a damaged header or where the file is cut, so the reader checks the end itself: the
archive must end in zero blocks, the compressed stream with its checksum. Anything else is a ``damaged``
entry naming the shard, the byte and the last whole member; every whole sample before it is adopted.
"""
from __future__ import annotations

import bz2
import gzip
import io
import json
import lzma
import re
import shutil
import tarfile
import tempfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from audiobench.data.imports.entry import AUDIO_SUFFIXES, Entry
from audiobench.data.imports.result import DAMAGED
from audiobench.data.imports.validate import Rejected

FORMAT = "webdataset"
SUFFIXES = (".tar", ".tar.gz", ".tgz")
_ID_KEYS = ("id", "youtube_id", "video_id", "ytid")
MAX_AUDIO = 64 * 2**20  # bytes: over six minutes of 48 kHz stereo 16-bit WAV, for clips of seconds
MAX_SIDECAR = 2**20  # bytes of a .json or .cls member; metadata of one clip is a few hundred
SPOOL = 4 * 2**20  # bytes of a compressed shard's audio member kept in memory before a temporary file takes it
_BLOCK = tarfile.BLOCKSIZE
_CUT = "the shard ends (cut short)"
_CHUNK = 2**20
_DAMAGE = (tarfile.TarError, EOFError, OSError, zlib.error, lzma.LZMAError)
_COMPRESSED = ((b"\x1f\x8b", "gzip", gzip.GzipFile), (b"BZh", "bzip2", bz2.BZ2File),
               (b"\xfd7zXZ\x00", "xz", lzma.LZMAFile))


def entries(copy: Path, path: Path | None = None) -> Iterator[Entry]:
    """The samples of the shard at ``path`` (a file of ``copy``), then a ``damaged`` entry if it is damaged."""
    path = path or copy
    shard = path.relative_to(copy).as_posix() if path != copy else path.name
    with path.open("rb") as raw:
        magic = raw.read(6)
        raw.seek(0)
        kind, opener = next(((k, o) for m, k, o in _COMPRESSED if magic.startswith(m)), ("", None))
        if opener is not None:
            problem = _unverifiable(opener, raw, kind)
            if problem is not None:
                yield Entry(FORMAT, copy, f"{shard}@0", "", "", lambda: b"", skip=f"{shard}: {problem}",
                            skip_category=DAMAGED)
                return
            raw.seek(0)
        reader = _Shard(copy, path, shard, _Stream(opener(fileobj=raw) if opener else raw, seekable=opener is None),
                        compressed=kind)
        yield from reader.samples()
        if reader.damage is not None:
            yield Entry(FORMAT, copy, f"{shard}@{reader.damage[0]}", "", "", lambda: b"", skip=reader.notice(),
                        skip_category=DAMAGED)


def _unverifiable(opener: Callable[..., BinaryIO], raw: BinaryIO, kind: str) -> str | None:
    """Why a compressed shard cannot be trusted at all, or None. Its checksum covers the whole stream and a
    damaged one can garble the bytes before the point where decompression fails, so the stream is checked to
    its end before any sample is taken: a stream that merely ends early (a cut) keeps what precedes the cut."""
    stream = opener(fileobj=raw)
    try:
        while stream.read(_CHUNK):
            pass
    except EOFError:
        return None  # cut short: the reading pass adopts what comes before the cut and names it
    except (OSError, zlib.error, lzma.LZMAError) as exc:
        return (f"the {kind} stream is damaged ({exc}), so none of its samples can be trusted; none "
                "was taken")
    return None


class _Stream(io.RawIOBase):
    """The tar bytes of a shard for tarfile's ``r:`` mode, which reads headers and member data in order: a
    forward seek is a real seek in a plain file and a read-and-drop in a decompressed stream (never a read
    into memory). ``last`` holds the bytes of the latest read (the header tarfile stopped at)."""

    def __init__(self, raw: BinaryIO, *, seekable: bool) -> None:
        super().__init__()
        self.raw, self.is_file, self.pos, self.last = raw, seekable, 0, b""

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.pos

    def read(self, size: int | None = -1) -> bytes:
        data = self.raw.read(-1 if size is None else size)
        self.pos += len(data)
        self.last = data
        return data

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        target = offset if whence == io.SEEK_SET else self.pos + offset
        if whence not in (io.SEEK_SET, io.SEEK_CUR) or target < self.pos and not self.is_file:
            raise io.UnsupportedOperation("a compressed shard is read forward only")
        if self.is_file:
            self.raw.seek(target)
            self.pos = target
        while self.pos < target:
            if not self.read(min(_CHUNK, target - self.pos)):
                break  # the end: tarfile's next read finds nothing and says so
        return self.pos


@dataclass
class _Sample:
    key: str
    audio: tarfile.TarInfo | None = None
    data: Callable[[], bytes] | None = None
    meta: dict[str, bytes] = field(default_factory=dict)  # "json" / "cls" -> the member's bytes
    problem: str | None = None  # a sidecar refused unread, or cut


class _Shard:
    """One pass over a shard: samples as entries, and where (if anywhere) it is damaged."""

    def __init__(self, copy: Path, path: Path, shard: str, stream: _Stream, *, compressed: str) -> None:
        self.copy, self.path, self.shard, self.stream, self.compressed = copy, path, shard, stream, compressed
        self.samples_read = 0
        self.last_member = ""
        self.damage: tuple[int, str, str] | None = None  # (byte, what happened, after which member)
        self.reading = ""  # the member being read, while it is
        self.size = path.stat().st_size

    def samples(self) -> Iterator[Entry]:
        current: _Sample | None = None
        try:
            tar = tarfile.open(fileobj=self.stream, mode="r:")
            while (member := tar.next()) is not None:
                tar.members.clear()  # tarfile keeps every header it read; one at a time is enough here
                if not member.isfile():
                    continue
                stem = Path(member.name).name.partition(".")[0]
                key = str(Path(member.name).parent / stem)
                if current is not None and key != current.key:
                    yield from self._entries(current)
                    current = None
                current = current or _Sample(key)
                self.reading = member.name
                if self._member(tar, member, current):
                    self.last_member, self.reading = member.name, ""
            self._check_end(tar.offset)
        except _DAMAGE as exc:
            self._damaged(self.stream.pos, _why(exc))
        if current is not None and not self.reading:  # a sample cut inside a member is not taken
            yield from self._entries(current)

    def _member(self, tar: tarfile.TarFile, member: tarfile.TarInfo, sample: _Sample) -> bool:
        """Take one member into its sample; False where the file ends inside it (the next header read fails)."""
        ext = Path(member.name).name.partition(".")[2].lower()
        if "." + ext in AUDIO_SUFFIXES:
            data = self._audio(tar, member)
            if data is None:
                return False
            sample.audio, sample.data = member, data
        elif ext in ("json", "cls"):
            if member.size > MAX_SIDECAR:
                sample.problem = f"{member.name} is {member.size} bytes, over the {MAX_SIDECAR} a sidecar may have"
                return True
            handle = tar.extractfile(member)
            sample.meta[ext] = handle.read() if handle is not None else b""
        return True

    def _audio(self, tar: tarfile.TarFile, member: tarfile.TarInfo) -> Callable[[], bytes] | None:
        """How to read the audio member when its clip is adopted: its size checked first, then its bytes (None:
        the file ends inside it, which the next header read reports)."""
        if member.size > MAX_AUDIO:
            def refuse() -> bytes:
                raise Rejected("too-large", f"{member.size} bytes of audio, over the {MAX_AUDIO} one clip may have")
            return refuse
        if self.stream.is_file:  # read later from its offset: an audio member of an unneeded clip stays unread
            path, offset, size = self.path, member.offset_data, member.size
            if offset + size > self.size:
                return None
            return lambda: _read_at(path, offset, size)
        spool = tempfile.SpooledTemporaryFile(max_size=SPOOL)
        handle = tar.extractfile(member)
        if handle is not None:
            shutil.copyfileobj(handle, spool, _CHUNK)

        def read() -> bytes:
            spool.seek(0)
            return spool.read()
        return read

    def _entries(self, sample: _Sample) -> Iterator[Entry]:
        if sample.audio is None:
            return
        self.samples_read += 1
        name = sample.audio.name
        member = f"{self.shard}:{name}"
        suffix = "." + Path(name).name.partition(".")[2].lower()
        try:
            info, labels = _metadata(sample)
        except ValueError as exc:
            yield Entry(FORMAT, self.copy, member, "", suffix, lambda: b"", skip=str(exc), skip_category="metadata")
            return
        ytid = next((str(info[k]) for k in _ID_KEYS if info.get(k)), "")
        yield Entry(FORMAT, self.copy, member, ytid, suffix, sample.data or (lambda: b""), labels=labels,
                    labels_complete="cls" not in sample.meta or "labels" in info,
                    skip=None if ytid else f"no id in {sample.key}.json")

    def _check_end(self, offset: int) -> None:
        """tarfile stopped at ``offset``: a whole archive has zero blocks there up to its end, and a compressed
        one its checksum; a short or non-zero header there is a cut or a damaged header."""
        block = self.stream.last
        if len(block) < _BLOCK:
            self._damaged(self.stream.pos, _CUT)
            return
        if block.count(0) != _BLOCK:
            self._damaged(offset, "a damaged tar header")
            return
        while chunk := self.stream.read(_CHUNK):  # also makes a decompressor check its stream's checksum
            if chunk.count(0) != len(chunk):
                at = self.stream.pos - len(chunk) + next(i for i, b in enumerate(chunk) if b)
                self._damaged(at, "data after the end-of-archive blocks (a zeroed header?)")
                return

    def _damaged(self, byte: int, what: str) -> None:
        if what == _CUT and self.stream.is_file:
            byte = min(byte, self.size)  # tarfile may have sought past the end: say where the file ends
        where = f"inside member {self.reading}" if self.reading else \
            f"after member {self.last_member}" if self.last_member else "before its first member"
        self.damage = (byte, what, where)

    def notice(self) -> str:
        """The damage in one line: the shard, what, the byte, the last whole member, the samples read."""
        assert self.damage is not None
        byte, what, where = self.damage
        unit = f"byte {byte} of the {self.compressed}-decompressed tar" if self.compressed else f"byte {byte}"
        n = self.samples_read
        return (f"{self.shard}: {what} at {unit}, {where}; the {n} whole sample{'s' if n != 1 else ''} before it "
                "taken, the rest of the shard missing")


def _metadata(sample: _Sample) -> tuple[dict, tuple[str, ...] | None]:
    """The sample's JSON (a dict, else empty) and its labels; a ValueError names the sidecar it cannot read."""
    if sample.problem is not None:
        raise ValueError(sample.problem)
    info: dict = {}
    if "json" in sample.meta:
        try:
            loaded = json.loads(sample.meta["json"])
        except RecursionError:
            raise ValueError(f"{sample.key}.json is nested too deeply to read") from None
        except ValueError as exc:
            raise ValueError(f"{sample.key}.json is not JSON ({exc})") from None
        info = loaded if isinstance(loaded, dict) else {}
    labels = info.get("labels")
    if isinstance(labels, str):
        labels = [v.strip() for v in labels.split(",") if v.strip()]
    if isinstance(labels, list):
        return info, tuple(str(v) for v in labels)
    if "cls" in sample.meta:
        text = sample.meta["cls"].decode("utf-8", "replace").strip()
        numbers = re.split(r"[\s,]+", text) if text else []
        if not numbers or not all(n.isdigit() for n in numbers):
            raise ValueError(f"{sample.key}.cls is not class numbers ({text[:40]!r})")
        return info, tuple(f"#{int(n)}" for n in numbers)
    return info, None


def _read_at(path: Path, offset: int, size: int) -> bytes:
    with path.open("rb") as f:
        f.seek(offset)
        data = f.read(size)
    if len(data) != size:
        raise Rejected("unreadable", f"{path} ends inside the member ({len(data)} of {size} bytes)")
    return data


def _why(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    if isinstance(exc, tarfile.TarError) and "unexpected end of data" in text:
        return _CUT
    if isinstance(exc, EOFError):
        return f"the compressed stream ends early ({text})"
    return f"unreadable data ({text})"
