"""Where a dataset's recordings come from, by the name a manifest's ``[source] kind`` gives.

A clip is one segment (``start``..``end`` seconds) of recording ``source_id`` of a source; the source says
which IDs are valid, and every ID is checked by its source before the ledger records it or any path is
built from it. Adding a source is one module here (its ID rule, and how its audio is had) and one entry in
``SOURCES``; manifests then name it. ``audiobench fetch`` downloads ``youtube`` recordings only.

| kind | IDs | audio |
| --- | --- | --- |
| ``youtube`` | 11 characters of ``A-Z a-z 0-9 _ -`` | downloaded by ``audiobench fetch`` (yt-dlp) |
| ``local`` | a file's path in a folder of your own, made safe (``local.local_id_for``) | copied by ``audiobench import NAME DIR`` |
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from audiobench.core.errors import AudiobenchError
from audiobench.data.sources.local import validate_local_id
from audiobench.data.sources.youtube import validate_youtube_id

YOUTUBE = "youtube"
LOCAL = "local"


@dataclass(frozen=True)
class Source:
    """One source of recordings: its name and its ID rule.

    ``validate_id(source_id, where=...)`` returns the ID or raises :class:`AudiobenchError` naming ``where``
    (a file and line); it must refuse anything that is not safe inside a file name.
    """

    kind: str
    validate_id: Callable[..., str]
    description: str


SOURCES: dict[str, Source] = {s.kind: s for s in (
    Source(YOUTUBE, validate_youtube_id, "YouTube videos, downloaded by `audiobench fetch`"),
    Source(LOCAL, validate_local_id, "files of a folder of your own, copied by `audiobench import NAME DIR`"),
)}


def get_source(kind: str, *, where: str = "") -> Source:
    """The registered source ``kind``, or an error listing the known ones."""
    try:
        return SOURCES[kind]
    except (KeyError, TypeError):
        prefix = f"{where}: " if where else ""
        raise AudiobenchError(f"{prefix}unknown source {kind!r} (known: {', '.join(SOURCES)})") from None


def validate_source_id(kind: str, source_id: str, *, where: str = "") -> str:
    """``source_id`` checked by its source ``kind`` (which must be registered)."""
    return get_source(kind, where=where).validate_id(source_id, where=where)


def require_fetchable(kind: str, *, what: str) -> None:
    """Refuse, in one line, to download recordings of a source other than YouTube (``what`` names the clip
    or dataset)."""
    if kind != YOUTUBE:
        raise AudiobenchError(f"{what} comes from source {kind!r}: `audiobench fetch` downloads only "
                              f"{YOUTUBE!r} recordings and cannot download it")


__all__ = ["LOCAL", "SOURCES", "YOUTUBE", "Source", "get_source", "require_fetchable", "validate_source_id"]
