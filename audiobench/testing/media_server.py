"""An HTTP media server on 127.0.0.1 that behaves like the real sources do, good and bad.

It supports Range requests (yt-dlp's section download through ffmpeg seeks with them, and silently
misbehaves on a server that ignores them), and answers per ID with a chosen behaviour: the media, 404,
410, 429, 500, a truncated body, a body that is not audio, a stall, the media at a lower sample rate
(``lowrate``, from ``lowrate_media``), or a page that offers no formats at all (``noformats``: an empty HLS
playlist, on which yt-dlp says "No video formats found", as it does for every YouTube video when the setup
no longer passes YouTube's checks). ``default`` is the answer for IDs without a behaviour (``noformats``: a
source that answers every page and serves nothing), and ``break_after=N`` makes a source break halfway: once
N recordings were asked for, every answer is ``noformats``. Used by the fetch tests and benchmark as the
``--source-template`` host.
"""
from __future__ import annotations

import re
import subprocess
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Literal

import numpy as np
import soundfile as sf

from audiobench.data.ffmpeg import ffmpeg_exe

Behaviour = Literal["ok", "404", "410", "429", "500", "truncated", "notaudio", "stall", "lowrate", "noformats"]
Format = Literal["wav", "flac", "m4a", "webm"]

CONTENT_TYPES = {"wav": "audio/wav", "flac": "audio/flac", "m4a": "audio/mp4", "webm": "audio/webm"}
_CODECS = {"wav": ["-c:a", "pcm_s16le"], "flac": ["-c:a", "flac"], "m4a": ["-c:a", "aac", "-b:a", "96k"],
           "webm": ["-c:a", "libopus", "-b:a", "64k"]}


def second_tone(seconds: float, rate: int = 16000) -> np.ndarray:
    """A tone whose frequency names the second it plays in (200 + 20 * (s mod 60) Hz).

    A cut segment can then be checked for its true start: see :func:`tone_second`.
    """
    t = np.arange(int(seconds * rate)) / rate
    freq = 200.0 + 20.0 * (np.floor(t) % 60)
    return (0.5 * np.sin(2 * np.pi * np.cumsum(freq) / rate)).astype(np.float32)


def tone_second(samples: np.ndarray, rate: int) -> int:
    """Which second (mod 60) of :func:`second_tone` the first 0.5 s of ``samples`` come from."""
    window = samples[int(0.1 * rate): int(0.6 * rate)]
    spectrum = np.abs(np.fft.rfft(window * np.hanning(window.size)))
    peak_hz = np.argmax(spectrum) * rate / window.size
    return int(round((peak_hz - 200.0) / 20.0)) % 60


def encode_source(fmt: Format, seconds: float, folder: Path, rate: int = 16000) -> bytes:
    """Bytes of a :func:`second_tone` recording of ``seconds`` encoded as ``fmt`` by the bundled ffmpeg."""
    folder.mkdir(parents=True, exist_ok=True)
    wav = folder / f"tone-{seconds:g}.wav"
    if not wav.exists():
        sf.write(wav, second_tone(seconds, rate), rate, subtype="PCM_16")
    out = folder / f"tone-{seconds:g}.{fmt}"
    if not out.exists():
        subprocess.run([ffmpeg_exe(), "-v", "error", "-y", "-i", str(wav), *_CODECS[fmt], str(out)], check=True)
    return out.read_bytes()


class _QuietServer(ThreadingHTTPServer):
    """Clients (ffmpeg seeking) hang up mid-answer all the time; that is not worth a traceback."""

    def handle_error(self, request: object, client_address: object) -> None:
        import sys

        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)


@dataclass
class MediaServer:
    """A threaded server; ``behaviours[ytid]`` picks the answer, anything else gets the media.

    Paths are ``/<ytid>.<ext>``; ``media[ext]`` holds the bytes served for each format. ``latency`` adds
    that many seconds before every answer (to measure parallel downloads).
    """

    media: dict[str, bytes]
    behaviours: dict[str, Behaviour] = field(default_factory=dict)
    latency: float = 0.0
    stall_seconds: float = 30.0
    requests: list[str] = field(default_factory=list)
    default: Behaviour = "ok"
    lowrate_media: dict[str, bytes] = field(default_factory=dict)  # served for "lowrate", per format
    break_after: int | None = None  # recordings asked for before every answer becomes "noformats"
    asked: list[str] = field(default_factory=list)  # the recordings asked for, in order of first request

    def __post_init__(self) -> None:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_HEAD(self) -> None:  # noqa: N802 (http.server's naming)
                server._answer(self, head=True)

            def do_GET(self) -> None:  # noqa: N802
                server._answer(self, head=False)

        self._httpd = _QuietServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._lock = threading.Lock()

    @property
    def port(self) -> int:
        return self._httpd.server_address[1]

    def template(self, ext: str = "flac") -> str:
        return f"http://127.0.0.1:{self.port}/{{ytid}}.{ext}"

    def __enter__(self) -> MediaServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def _answer(self, handler: BaseHTTPRequestHandler, *, head: bool) -> None:
        match = re.fullmatch(r"/([A-Za-z0-9_-]{11})\.(\w+)", handler.path.split("?")[0])
        with self._lock:
            self.requests.append(handler.path)
        if self.latency:
            time.sleep(self.latency)
        if not match or match.group(2) not in self.media:
            return self._status(handler, 404, "Not Found")
        ytid, ext = match.groups()
        with self._lock:
            if ytid not in self.asked:
                self.asked.append(ytid)
            broken = self.break_after is not None and len(self.asked) > self.break_after
        behaviour = "noformats" if broken else self.behaviours.get(ytid, self.default)
        if behaviour == "noformats":
            return self._send_range(handler, b"#EXTM3U\n#EXT-X-VERSION:3\n", "application/vnd.apple.mpegurl",
                                    head=head, truncate=False)
        if behaviour in ("404", "410", "429", "500"):
            code = int(behaviour)
            return self._status(handler, code, {404: "Not Found", 410: "Gone", 429: "Too Many Requests",
                                                 500: "Internal Server Error"}[code])
        if behaviour == "stall":
            time.sleep(self.stall_seconds)
            return self._status(handler, 503, "Service Unavailable")
        body = self.media[ext] if behaviour != "notaudio" else b"<html><body>not audio</body></html>" * 200
        if behaviour == "lowrate":
            body = self.lowrate_media[ext]
        self._send_range(handler, body, CONTENT_TYPES.get(ext, "application/octet-stream"), head=head,
                         truncate=behaviour == "truncated")

    @staticmethod
    def _status(handler: BaseHTTPRequestHandler, code: int, reason: str) -> None:
        payload = f"{code} {reason}".encode()
        handler.send_response(code, reason)
        handler.send_header("Content-Type", "text/plain")
        handler.send_header("Content-Length", str(len(payload)))
        if code == 429:
            handler.send_header("Retry-After", "60")
        handler.end_headers()
        handler.wfile.write(payload)

    @staticmethod
    def _send_range(handler: BaseHTTPRequestHandler, body: bytes, content_type: str, *, head: bool,
                    truncate: bool) -> None:
        start, end, code = 0, len(body) - 1, 200
        header = handler.headers.get("Range")
        match = re.fullmatch(r"bytes=(\d*)-(\d*)", header or "")
        if match and (match.group(1) or match.group(2)):
            if match.group(1):
                start = int(match.group(1))
                end = min(int(match.group(2)), end) if match.group(2) else end
            else:  # a suffix range: the last N bytes
                start = max(0, len(body) - int(match.group(2)))
            if start >= len(body):
                handler.send_response(416)
                handler.send_header("Content-Range", f"bytes */{len(body)}")
                handler.send_header("Content-Length", "0")
                handler.end_headers()
                return
            code = 206
        chunk = body[start:end + 1]
        handler.send_response(code)
        handler.send_header("Content-Type", content_type)
        handler.send_header("Accept-Ranges", "bytes")
        handler.send_header("Content-Length", str(len(chunk)))
        if code == 206:
            handler.send_header("Content-Range", f"bytes {start}-{end}/{len(body)}")
        handler.end_headers()
        if head:
            return
        try:
            if truncate:  # promise the whole file, hold only its first 2 %: every answer stops there
                handler.wfile.write(chunk[: max(0, len(body) // 50 - start)])
                handler.wfile.flush()
                handler.close_connection = True
                return
            handler.wfile.write(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass
