"""The index: a dataset's published list files, downloaded once, checked by sha256, kept under ``index/``.

Each file comes from its official URL, or from a mirror that replaces the official host (``--index-mirror``,
``$AUDIOBENCH_INDEX_MIRROR``): a folder or a base URL. A mirror is searched at ``<mirror>/<file>``, then at
``<mirror>/<mirror_dir>/<file>`` where the manifest names a ``mirror_dir``, so a copy of
``tests/data/reference`` (files in per-source sub-folders) and a flat folder of lists both work.

A file is streamed to a temporary name beside its target while its sha256 is computed, and renamed into
place only when the hash matches: a killed run or a bad copy never leaves a file that looks verified.
"""
from __future__ import annotations

import hashlib
import http.client
import logging
import os
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import BinaryIO

from audiobench import __version__
from audiobench.core.errors import AudiobenchError, SourceUnreachable
from audiobench.core.layout import DatasetPaths, ensure_writable_dir
from audiobench.data.manifests import IndexFile, Manifest
from audiobench.core.network import endpoint, require_reachable
from audiobench.core.progress import byte_progress

INDEX_MIRROR_ENV = "AUDIOBENCH_INDEX_MIRROR"

log = logging.getLogger(__name__)

_CHUNK = 1 << 16
_TIMEOUT_S = 60.0
_ATTEMPTS = 3  # per source, for transient errors (timeouts, connection resets, HTTP 5xx)
_BACKOFF_S = 0.5
_NOT_THERE = (404, 410)

Source = str | Path  # a URL, or a file in a mirror folder


class _Missing(Exception):
    """The source cannot give the file (not there, refused, or still failing after retries): try the next."""

    def __init__(self, reason: str, *, network: bool = False) -> None:
        super().__init__(reason)
        self.network = network  # the host did not answer (no route, refused, timed out), as opposed to "not there"


def resolve_index_mirror(mirror: str | os.PathLike[str] | None = None, *, env: str = INDEX_MIRROR_ENV) -> str | None:
    """The mirror to use: the argument, else ``$<env>`` (``$AUDIOBENCH_INDEX_MIRROR``), else ``None``
    (official URLs)."""
    if mirror is None or str(mirror) == "":
        mirror = os.environ.get(env) or None
    if mirror is None:
        return None
    text = os.fspath(mirror)
    if text.startswith("file://"):
        return urllib.request.url2pathname(urllib.parse.urlparse(text).path)
    return text


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def fetch_index(manifest: Manifest, paths: DatasetPaths, *, mirror: str | os.PathLike[str] | None = None) -> list[Path]:
    """Make every list file of ``manifest`` present and verified under ``paths.index``; returns their paths.

    Files already there with the right sha256 are not fetched again. A mismatch is an ``AudiobenchError``
    naming the file, the expected and the actual hash; the bad copy is deleted.

    >>> fetch_index(load_manifest("sl-dcase17"), DatasetPaths(root, "sl-dcase17"),
    ...             mirror="/tmp/lists")                     # doctest: +SKIP
    [PosixPath('.../sl-dcase17/index/train_strong_labels.csv'), ...]
    """
    mirror = resolve_index_mirror(mirror)
    index_dir = ensure_writable_dir(paths.index)
    return [fetch_index_file(spec, index_dir, mirror=mirror) for spec in manifest.index]


def fetch_index_file(spec: IndexFile, index_dir: Path, *, mirror: str | None = None, show_progress: bool = False,
                     mirror_option: str = "--index-mirror") -> Path:
    """One file into ``index_dir``, from the first source that has it with the right hash.

    ``show_progress`` draws a byte-count bar (for large files such as pretrained weights). Before the first
    request, each host still needed is checked to answer at all: one that does not is a
    :class:`SourceUnreachable` (exit status 3) whose hint names ``mirror_option``, the calling command's option
    for a mirror.
    """
    target = index_dir / spec.name
    if target.is_file() and sha256_file(target) == spec.sha256:
        return target
    if spec.url is None and mirror is None:
        raise AudiobenchError(f"{target}: missing, or its sha256 is no longer {spec.sha256} (the list was written "
                              "by `audiobench import NAME DIR`, which makes it again)")
    sources = index_sources(spec, mirror)
    mirror_hint = (f"check the network and {mirror_option} {mirror}" if mirror else
                   f"check the network, or give {mirror_option} DIR|URL: a folder or server holding {spec.name}")
    for url in {endpoint(s): s for s in sources if isinstance(s, str)}.values():
        require_reachable(url, hint=f"nothing was downloaded; {mirror_hint}")
    problems: list[str] = []
    network_only = True
    mismatches: list[str] = []
    for source in sources:
        try:
            part, actual = _download(source, index_dir, spec.name, show_progress=show_progress)
        except _Missing as exc:
            problems.append(f"{source} ({exc})")
            network_only = network_only and exc.network
            continue
        if actual == spec.sha256:
            os.replace(part, target)
            log.info("index: %s from %s", spec.name, source)
            return target
        part.unlink(missing_ok=True)
        mismatches.append(f"{spec.name}: sha256 mismatch for {source}: expected {spec.sha256}, got {actual} "
                          "(the file was not kept)")
    if mismatches:
        raise AudiobenchError("; ".join(mismatches))
    if network_only:
        raise SourceUnreachable(f"cannot get {spec.name}: tried {', '.join(problems)}; {mirror_hint}")
    hint = "" if mirror else f" (no network to the official host? use {mirror_option} DIR|URL)"
    raise AudiobenchError(f"cannot get {spec.name}: tried {', '.join(problems)}{hint}")


def index_sources(spec: IndexFile, mirror: str | None) -> list[Source]:
    """Where to look for ``spec``, in order: its official URL, or its places in the mirror."""
    if mirror is None:
        return [spec.url] if spec.url is not None else []
    relative = [spec.name] + ([f"{spec.mirror_dir.strip('/')}/{spec.name}"] if spec.mirror_dir else [])
    if mirror.startswith(("http://", "https://")):
        base = mirror.rstrip("/")
        return [f"{base}/{urllib.parse.quote(r)}" for r in relative]
    folder = Path(mirror).expanduser()
    if not folder.is_dir():
        raise AudiobenchError(f"index mirror {mirror!r} is neither a folder nor an http(s) URL")
    return [folder / r for r in relative]


def _download(source: Source, folder: Path, name: str, *, show_progress: bool = False) -> tuple[Path, str]:
    """Copy ``source`` to a temporary file in ``folder``; returns it and its sha256. Retries transient errors."""
    for attempt in range(1, _ATTEMPTS + 1):
        try:
            with _open(source) as stream:
                return _stream_to_part(stream, folder, name, show_progress=show_progress)
        except _Missing:
            raise
        except (urllib.error.URLError, http.client.HTTPException, TimeoutError, ConnectionError) as exc:
            reason = _describe(exc)
            if attempt == _ATTEMPTS or (isinstance(exc, urllib.error.HTTPError) and exc.code < 500):
                raise _Missing(reason, network=_no_answer(exc)) from None
            log.warning("index: %s: %s; retrying", source, reason)
            time.sleep(_BACKOFF_S * 2 ** (attempt - 1))
    raise AssertionError("unreachable")


def _open(source: Source) -> BinaryIO:
    if isinstance(source, Path):
        if not source.is_file():
            raise _Missing("no such file")
        return open(source, "rb")
    request = urllib.request.Request(source, headers={"User-Agent": f"audiobench/{__version__}"})
    try:
        return urllib.request.urlopen(request, timeout=_TIMEOUT_S)  # noqa: S310 (http(s) checked by the manifest)
    except urllib.error.HTTPError as exc:
        if exc.code in _NOT_THERE:
            raise _Missing(f"HTTP {exc.code}") from None
        raise


def _stream_to_part(stream: BinaryIO, folder: Path, name: str, *, show_progress: bool = False) -> tuple[Path, str]:
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{name}.", suffix=".part")
    part = Path(tmp)
    digest = hashlib.sha256()
    try:
        with os.fdopen(fd, "wb") as out, byte_progress(_announced_size(stream), desc=name,
                                                       quiet=not show_progress) as bar:
            for chunk in iter(lambda: stream.read(_CHUNK), b""):
                digest.update(chunk)
                out.write(chunk)
                bar.update(len(chunk))
            out.flush()
            os.fsync(out.fileno())
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    return part, digest.hexdigest()


def _announced_size(stream: BinaryIO) -> int | None:
    """The bytes a source says it will send (HTTP ``Content-Length``, a local file's size), for the bar."""
    headers = getattr(stream, "headers", None)
    if headers is not None:
        length = headers.get("Content-Length", "")
        return int(length) if length.isdigit() else None
    return os.fstat(stream.fileno()).st_size or None


def _no_answer(exc: BaseException) -> bool:
    """Whether the host gave no answer at all (name, route, refused, timed out), not an HTTP error."""
    if isinstance(exc, urllib.error.HTTPError):
        return False
    return isinstance(exc, (urllib.error.URLError, TimeoutError, ConnectionRefusedError))


def _describe(exc: BaseException) -> str:
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code}"
    if isinstance(exc, urllib.error.URLError):
        return str(exc.reason)
    return str(exc) or type(exc).__name__
