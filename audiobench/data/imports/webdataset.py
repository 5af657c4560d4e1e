"""WebDataset shards: tar files of samples, each an audio member (``.wav``/``.flac``) and a ``.json``.

Keys are opaque (``sample-000000000``): the ID is the JSON's ``id`` (``youtube_id``/``video_id`` also
taken), which may carry a ``Y`` prefix; labels, where the JSON has ``labels``, are compared with the lists.
A shard is read as a stream (``tarfile`` mode ``r|*``), one sample in memory at a time, in its own order.
"""
from __future__ import annotations

import json
import tarfile
from collections.abc import Iterator
from pathlib import Path

from audiobench.core.errors import AudiobenchError
from audiobench.data.imports.entry import AUDIO_SUFFIXES, Entry

FORMAT = "webdataset"
SUFFIXES = (".tar", ".tar.gz", ".tgz")
_ID_KEYS = ("id", "youtube_id", "video_id", "ytid")


def entries(copy: Path, path: Path | None = None) -> Iterator[Entry]:
    path = path or copy
    shard = path.relative_to(copy).as_posix() if path != copy else path.name
    key, audio, meta = None, None, None
    try:
        with tarfile.open(path, "r|*") as tar:
            for member in tar:
                if not member.isfile():
                    continue
                name = member.name
                stem, _, ext = Path(name).name.partition(".")
                sample = str(Path(name).parent / stem)
                if sample != key:
                    if key is not None:
                        yield from _sample(copy, shard, key, audio, meta)
                    key, audio, meta = sample, None, None
                handle = tar.extractfile(member)
                data = handle.read() if handle is not None else b""
                if "." + ext.lower() in AUDIO_SUFFIXES:
                    audio = (name, "." + ext.lower(), data)
                elif ext.lower() == "json":
                    meta = data
            if key is not None:
                yield from _sample(copy, shard, key, audio, meta)
    except tarfile.TarError as exc:
        raise AudiobenchError(f"{path}: not a readable tar shard ({exc})") from None


def _sample(copy: Path, shard: str, key: str, audio: tuple[str, str, bytes] | None,
            meta: bytes | None) -> Iterator[Entry]:
    if audio is None:
        return
    name, suffix, data = audio
    info: dict = {}
    if meta is not None:
        try:
            loaded = json.loads(meta)
            info = loaded if isinstance(loaded, dict) else {}
        except ValueError:
            info = {}
    ytid = next((str(info[k]) for k in _ID_KEYS if info.get(k)), "")
    labels = info.get("labels")
    if isinstance(labels, str):
        labels = [v.strip() for v in labels.split(",") if v.strip()]
    skip = None if ytid else f"no id in {key}.json"
    yield Entry(FORMAT, copy, f"{shard}:{name}", ytid, suffix, lambda: data,
                labels=tuple(str(v) for v in labels) if isinstance(labels, list) else None, skip=skip)
