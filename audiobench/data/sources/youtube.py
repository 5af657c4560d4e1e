"""The ``youtube`` source: its ID rule, and downloading one segment of one recording with yt-dlp.

yt-dlp does the work: format selection (best audio), the section cut (``download_ranges`` with
``force_keyframes_at_cuts``, which makes ffmpeg cut at the exact times), and the FLAC conversion
(``FFmpegExtractAudio``). This module builds its options, runs it into a private temporary folder, and
sorts what went wrong into the ledger's words: ``unavailable`` (permanent), ``failed`` (transient),
*refused* (HTTP 429, bot checks: the caller must slow down, not retry), *network* (the host gave no answer
at all: no name resolution, no route, connection refused or timed out; not the clip's fault, so not marked),
or *no_formats* ("No video formats found", "Requested format is not available": what YouTube answers for
every video when the setup no longer passes its checks, so the caller judges it with a probe clip).
"""
from __future__ import annotations

import errno
import os
import re
import shutil
import socket
import sys
import tempfile
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from audiobench.core.errors import AudiobenchError
from audiobench.data.ffmpeg import ffmpeg_exe
from audiobench.data.sources.template import fill, is_local
from audiobench.data.sources.ytdlp_setup import check_javascript_runtime

YOUTUBE_TEMPLATE = "https://www.youtube.com/watch?v={ytid}"
_YTID = re.compile(r"^[A-Za-z0-9_-]{11}$")

Outcome = Literal["ok", "unavailable", "failed", "refused", "network", "no_formats"]

# Phrases yt-dlp (and YouTube through it) uses for media that will not come back by retrying.
_PERMANENT = (
    "video unavailable", "private video", "has been removed", "not available in your country",
    "blocked it in your country", "confirm your age", "age-restricted", "members-only", "account associated",
    "has been terminated", "copyright", "does not exist", "this video is not available",
)
# Phrases that a gone video and a broken setup (no JavaScript runtime, no PO token, an old yt-dlp) share: never
# permanent on their own (see :mod:`audiobench.data.fetch.probe`).
NO_FORMATS = ("no video formats found", "requested format is not available")
# Phrases meaning "slow down or authenticate": retrying at once makes it worse.
_REFUSED = ("not a bot", "sign in to confirm", "too many requests", "rate-limit", "rate limit")
# urllib3's exceptions for a connection that never opened (yt-dlp's requests handler raises them); matched by
# name so that the other yt-dlp handlers, which raise the stdlib's errors below, need nothing more.
_NO_CONNECTION = ("NewConnectionError", "NameResolutionError", "ConnectTimeoutError")
_NO_ROUTE = (errno.ENETUNREACH, errno.EHOSTUNREACH, errno.ENETDOWN, errno.ECONNREFUSED)


def validate_youtube_id(ytid: str, *, where: str = "") -> str:
    """Refuse anything but an 11-character YouTube ID before it becomes part of a path or URL."""
    if not isinstance(ytid, str) or not _YTID.match(ytid):
        prefix = f"{where}: " if where else ""
        raise AudiobenchError(f"{prefix}invalid YouTube ID {ytid!r} (expected 11 characters of A-Z a-z 0-9 _ -)")
    return ytid


@dataclass(frozen=True)
class SegmentRequest:
    """What to fetch: the recording, the segment (seconds) and the source URL."""

    clip_id: str
    ytid: str
    start: float
    end: float
    url: str


@dataclass(frozen=True)
class DownloadSettings:
    """The yt-dlp settings one fetch run shares between its workers."""

    socket_timeout: float = 30.0
    proxy: str | None = None
    cookies: Path | None = None  # each call gets its own copy: yt-dlp writes cookie jars back on exit
    sleep: float = 0.0  # seconds before each download (yt-dlp's sleep_interval), jittered up to 2x
    ffmpeg: str | None = None  # a system ffmpeg; default: the one the imageio-ffmpeg wheel carries
    # yt-dlp's ``extractor_args`` (``--extractor-args``, parsed by yt-dlp: {"youtube": {"player_client": [...]}})
    extractor_args: dict[str, dict[str, list[str]]] = field(default_factory=dict)


@dataclass(frozen=True)
class DownloadResult:
    outcome: Outcome
    file: Path | None = None  # the FLAC in the temporary folder (the caller validates and moves it)
    error: str | None = None
    source_duration: float | None = None  # the recording's length where the source says it
    stream: dict[str, object] | None = None  # the source stream yt-dlp chose: see :func:`stream_facts`


def check_source_template(template: str) -> None:
    """Refuse, in one line, a ``--source-template`` that could name no clip's recording.

    An http(s) URL with a host and ``{ytid}`` outside the host goes to yt-dlp; a ``file://`` URL or a path
    names local files, which the importer reads instead (yt-dlp refuses them). Either may also carry
    ``{start}``/``{end}`` (seconds, ``30.000``) and ``{start_ms}``/``{end_ms}``.
    """
    if "{ytid}" not in template:
        raise AudiobenchError(f"--source-template {template!r} has no {{ytid}} placeholder")
    if is_local(template):
        return
    try:
        parts = urlsplit(template)
        host, _ = parts.hostname, parts.port  # .port checks the number
    except ValueError as exc:
        raise AudiobenchError(f"--source-template {template!r}: not a URL ({exc})") from None
    if parts.scheme not in ("http", "https") or not host:
        raise AudiobenchError(f"--source-template {template!r}: not an http(s) URL with a host, a file:// URL or "
                              f"a path (the default is {YOUTUBE_TEMPLATE})")
    if "{ytid}" in parts.netloc:
        raise AudiobenchError(f"--source-template {template!r}: {{ytid}} belongs in the path or query, not the host")


def source_url(template: str, ytid: str, start: float | None = None, end: float | None = None) -> str:
    """The URL for one (already validated) ID, and its segment where the template names it."""
    if "{ytid}" not in template:
        raise AudiobenchError(f"--source-template {template!r} has no {{ytid}} placeholder")
    return fill(template, ytid, start, end)


def is_youtube(template: str) -> bool:
    host = urlsplit(template.replace("{ytid}", "x")).hostname or ""
    return host == "youtu.be" or host == "youtube.com" or host.endswith(".youtube.com")


def javascript_runtime() -> str | None:
    """Path of the deno binary (PyPI package ``deno``) that yt-dlp needs for YouTube, if installed."""
    try:
        from deno import find_deno_bin  # deferred: a check of an ID or a URL needs no JavaScript runtime
    except ImportError:
        pass
    else:
        try:
            return find_deno_bin()
        except FileNotFoundError:
            pass
    beside_python = Path(sys.executable).parent / "deno"
    if beside_python.exists():
        return str(beside_python)
    return shutil.which("deno")


def require_javascript_runtime(template: str) -> dict[str, dict[str, str]]:
    """yt-dlp's ``js_runtimes`` option for YouTube sources; a clear error when none is installed or it does not
    run (``deno --version``)."""
    if not is_youtube(template):
        return {}
    deno = javascript_runtime()
    if deno is None:
        raise AudiobenchError(
            "downloading from YouTube needs a JavaScript runtime for yt-dlp: "
            "pip install --upgrade deno 'yt-dlp[default]' (audiobench depends on both; the install lacks them)"
        )
    check_javascript_runtime(deno)
    return {"deno": {"path": deno}}


@lru_cache(maxsize=4)
def ffmpeg_dir(ffmpeg: str | None = None) -> str:
    """A folder whose ``ffmpeg`` is the binary to use.

    yt-dlp checks for ffmpeg on PATH before a section download (its ``ffmpeg_location`` option is not
    consulted there), and it needs the program to be called ``ffmpeg``; the wheel's binary is not.
    """
    target = ffmpeg or ffmpeg_exe()
    folder = Path(tempfile.mkdtemp(prefix="audiobench-ffmpeg-"))
    (folder / "ffmpeg").symlink_to(Path(target).resolve())
    return str(folder)


def ensure_ffmpeg_on_path(ffmpeg: str | None = None) -> None:
    """Put the chosen ffmpeg first on PATH for this process (see :func:`ffmpeg_dir`)."""
    folder = ffmpeg_dir(ffmpeg)
    parts = os.environ.get("PATH", "").split(os.pathsep)
    if parts[0] != folder:
        os.environ["PATH"] = os.pathsep.join([folder, *[p for p in parts if p != folder]])


def ytdlp_options(request: SegmentRequest, workdir: Path, settings: DownloadSettings,
                  js_runtimes: dict[str, dict[str, str]]) -> dict[str, object]:
    from yt_dlp.utils import download_range_func  # deferred: yt-dlp is heavy; only a download needs it

    options: dict[str, object] = {
        "format": "bestaudio/best",
        "outtmpl": str(workdir / "segment.%(ext)s"),
        "download_ranges": download_range_func(None, [(request.start, request.end)]),
        "force_keyframes_at_cuts": True,
        # ffmpeg 9's FLAC encoder refuses the odd-sized first frame that an input seek produces; re-framing
        # the audio into fixed blocks avoids it and changes no sample.
        "external_downloader_args": {"ffmpeg_o": ["-af", "asetnsamples=n=4096:p=0"]},
        "postprocessors": [{"key": "FFmpegExtractAudio", "preferredcodec": "flac"}],
        "ffmpeg_location": ffmpeg_dir(settings.ffmpeg),
        "socket_timeout": settings.socket_timeout,
        "retries": 0,  # the fetch stage retries with backoff and keeps the count in the ledger
        "fragment_retries": 0,
        "quiet": True,
        "no_warnings": True,
        "noprogress": True,
        "noplaylist": True,
        "cachedir": False,
        "logger": _SilentLogger(),
    }
    if js_runtimes:
        options["js_runtimes"] = js_runtimes
    if settings.extractor_args:
        options["extractor_args"] = settings.extractor_args
    if settings.proxy:
        options["proxy"] = settings.proxy
    if settings.sleep > 0:
        options["sleep_interval"] = settings.sleep
        options["max_sleep_interval"] = 2 * settings.sleep
    if settings.cookies is not None:
        private = workdir / "cookies.txt"
        shutil.copyfile(settings.cookies, private)
        options["cookiefile"] = str(private)
    return options


class _SilentLogger:
    """yt-dlp prints to stderr unless given a logger; errors reach us as exceptions anyway."""

    def debug(self, msg: str) -> None:
        pass

    def info(self, msg: str) -> None:
        pass

    def warning(self, msg: str) -> None:
        pass

    def error(self, msg: str) -> None:
        pass


def download_segment(request: SegmentRequest, workdir: Path, settings: DownloadSettings,
                     js_runtimes: dict[str, dict[str, str]] | None = None) -> DownloadResult:
    """Run yt-dlp for one segment into ``workdir`` (which must be empty and private to this call)."""
    from yt_dlp import YoutubeDL  # deferred: yt-dlp is heavy; only a download needs it
    from yt_dlp.utils import DownloadError

    ensure_ffmpeg_on_path(settings.ffmpeg)
    try:
        with YoutubeDL(ytdlp_options(request, workdir, settings, js_runtimes or {})) as ydl:
            info = ydl.extract_info(request.url, download=True)
    except DownloadError as exc:
        outcome, message = classify_error(exc)
        return DownloadResult(outcome, error=message)
    files = sorted(workdir.glob("segment*.flac"))
    if not files:
        return DownloadResult("failed", error="yt-dlp finished but wrote no FLAC file")
    duration = info.get("duration") if isinstance(info, dict) else None
    return DownloadResult("ok", file=files[0], source_duration=float(duration) if duration else None,
                          stream=stream_facts(info) if isinstance(info, dict) else None)


# yt-dlp's format fields -> the names a clip's origin records them under
_STREAM_FIELDS = {"format_id": "format_id", "ext": "container", "acodec": "codec", "abr": "bitrate",
                  "asr": "sample_rate", "audio_channels": "channels"}


def stream_facts(info: dict[str, object]) -> dict[str, object]:
    """The source stream yt-dlp downloaded, as yt-dlp describes it (``None`` where the source does not say).

    The fields come from the chosen entry of ``info["formats"]``, since the FLAC conversion afterwards
    rewrites the top-level ``ext``; ``upload_date`` and the yt-dlp version complete the record.
    """
    from yt_dlp.version import __version__  # deferred: yt-dlp is heavy; only a download needs it

    chosen = str(info.get("format_id"))
    formats = [f for f in info.get("formats") or [] if isinstance(f, dict) and str(f.get("format_id")) == chosen]
    stream = formats[0] if formats else info
    facts: dict[str, object] = {name: stream.get(key) for key, name in _STREAM_FIELDS.items()}
    if facts["codec"] == "none":
        facts["codec"] = None
    facts["upload_date"] = info.get("upload_date")
    facts["ytdlp_version"] = __version__
    return facts


def classify_error(exc: BaseException) -> tuple[Outcome, str]:
    """Sort a yt-dlp failure into unavailable / refused / network / failed, with a one-line reason."""
    status = _http_status(exc)
    message = " ".join(str(exc).replace("ERROR: ", "").split())
    if message.startswith("ffmpeg exited with code"):
        message = f"the source is not decodable audio ({message})"
    lowered = message.lower()
    if status == 429 or any(p in lowered for p in _REFUSED):
        return "refused", message
    if status in (404, 410):
        return "unavailable", message
    if any(p in lowered for p in NO_FORMATS):
        return "no_formats", message
    if any(p in lowered for p in _PERMANENT):
        return "unavailable", message
    if status is None and any(_no_connection(e) for e in _chain(exc)):
        return "network", message.split(" (caused by ")[0]
    return "failed", message


def _no_connection(exc: BaseException) -> bool:
    """The connection never opened: the name did not resolve, no route, refused, or the connect timed out.

    A read that times out or breaks after the host answered is the clip's own (transient) failure instead.
    """
    if any(cls.__name__ in _NO_CONNECTION for cls in type(exc).__mro__):
        return True
    return isinstance(exc, (socket.gaierror, ConnectionRefusedError)) or (
        isinstance(exc, OSError) and exc.errno in _NO_ROUTE)


def _chain(exc: BaseException) -> list[BaseException]:
    """``exc`` and every exception behind it: yt-dlp's ``exc_info`` and ``cause``, ``__cause__``, ``__context__``."""
    seen: set[int] = set()
    found: list[BaseException] = []
    stack: list[object] = [exc]
    while stack:
        current = stack.pop()
        if not isinstance(current, BaseException) or id(current) in seen:
            continue
        seen.add(id(current))
        found.append(current)
        exc_info = getattr(current, "exc_info", None)
        if isinstance(exc_info, tuple) and len(exc_info) > 1:
            stack.append(exc_info[1])
        stack.extend([getattr(current, "cause", None), current.__cause__, current.__context__])
    return found


def _http_status(exc: BaseException) -> int | None:
    """The HTTP status behind a yt-dlp error, following its ``exc_info`` and ``__cause__`` chain."""
    for current in _chain(exc):
        status = getattr(current, "status", None) or getattr(current, "code", None)
        if isinstance(status, int) and 100 <= status < 600:
            return status
    return None
