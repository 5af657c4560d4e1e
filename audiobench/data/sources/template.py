"""``--source-template`` text: the placeholders, filling them for one clip, and telling local files from URLs.

The template names each recording with ``{ytid}`` and, where the names carry the segment, ``{start}``/``{end}``
(seconds as the lists write them, ``30.000``) or ``{start_ms}``/``{end_ms}``. An http(s) URL goes to yt-dlp
(:mod:`audiobench.data.sources.youtube`); a ``file://`` URL or a path names local files, which
``audiobench fetch`` reads through the importer instead (:mod:`audiobench.data.fetch.files`). Plain strings
only: the sources below the ledger and the fetch stage above it both use them.
"""
from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlsplit

PLACEHOLDERS = ("{ytid}", "{start}", "{end}", "{start_ms}", "{end_ms}")


def is_local(template: str) -> bool:
    """A ``file://`` URL, or a path (absolute, relative with ``.``/``~``, or ``C:\\``) rather than a URL.

    >>> is_local("file:///copies/{ytid}.flac"), is_local("~/copies/{ytid}.wav"), is_local("https://x/{ytid}")
    (True, True, False)
    """
    scheme = template.split("://", 1)[0].lower() if "://" in template else ""
    return scheme == "file" or (not scheme and (template[:1] in "/\\.~" or template[1:3] in (":\\", ":/")))


def fill(template: str, ytid: str, start: float | None = None, end: float | None = None) -> str:
    """The template with one clip's values in place of its placeholders.

    >>> fill("/c/{ytid}_{start}_{end_ms}.wav", "abcdefghijk", 30.0, 40.0)
    '/c/abcdefghijk_30.000_40000.wav'
    """
    text = template.replace("{ytid}", ytid)
    if start is not None:
        text = text.replace("{start}", f"{start:.3f}").replace("{start_ms}", str(round(start * 1000)))
    if end is not None:
        text = text.replace("{end}", f"{end:.3f}").replace("{end_ms}", str(round(end * 1000)))
    return text


def local_path(text: str) -> Path:
    """The path a filled local template names."""
    if text.startswith("file:"):
        return Path(unquote(urlsplit(text).path))
    return Path(text).expanduser()


def copy_root(template: str) -> Path:
    """The folder above every file the template can name: its text before the first placeholder."""
    first = min(template.index(p) for p in PLACEHOLDERS if p in template)
    head = local_path(template[:first] or ".")
    return head if template[:first].endswith(("/", "\\")) else head.parent
