"""Downloading a fetch run's clips from YouTube: threads, retries with backoff, rate limits, validation, atomic moves.

Workers are threads (downloads wait on the network, not the CPU); only the calling thread writes the
ledger (:mod:`audiobench.data.fetch.bookkeeping`). A clip's file lands under ``raw/<split>/<clip_id>.flac`` by
rename after it was validated, and only then is the clip marked ``ok``: a run killed at any moment leaves no
half file that counts.

The network is never a clip's fault: before the first download the media host must answer (else
:class:`SourceUnreachable`, exit status 3, nothing marked), and a download whose connection never opened
leaves its clip as it was; ``max_network_errors`` of those in a row stop the run, as refusals do.

Nor is a broken setup: a probe clip known to exist is fetched before the first download and whenever
``unavailable`` piles up (:mod:`audiobench.data.fetch.probe`); if it fails too, the run stops (exit status 3)
and the clips marked ``unavailable`` since the last good probe go back to ``pending``. Every download started
is recorded in the ledger, which paces runs across workers and restarts (:mod:`audiobench.data.fetch.pacing`).
Each ``ok`` clip's origin records the source stream (format, codec, sample rate, ...) and the yt-dlp version.
"""
from __future__ import annotations

import hashlib
import os
import random
import shutil
import threading
from pathlib import Path

from audiobench.core.errors import AudiobenchError
from audiobench.core.layout import DatasetPaths, ensure_writable_dir, remove_tree, require_inside, resolve_root
from audiobench.core.locking import pid_running
from audiobench.core.network import require_reachable
from audiobench.core.parallel import map_unordered
from audiobench.core.records import ClipStatus
from audiobench.data.coverage import coverage
from audiobench.data.decode import DecodeError, read_audio
from audiobench.data.fetch.bookkeeping import Bookkeeping, network_hint
from audiobench.data.fetch.options import FetchOptions, select_clips, splits_of
from audiobench.data.fetch.outcome import ClipOutcome, DownloadSummary, FetchResult, empty_if_nothing_ok
from audiobench.data.fetch.pacing import Clock, Pacer, RateLimiter
from audiobench.data.fetch.probe import ProbeResult, probe_candidates, record_probe, run_probe
from audiobench.data.ledger import Ledger, now
from audiobench.data.register import register_dataset
from audiobench.data.sources import require_fetchable
from audiobench.data.sources.youtube import (
    SegmentRequest,
    check_source_template,
    download_segment,
    require_javascript_runtime,
    source_url,
)
from audiobench.data.sources.ytdlp_setup import age_warning, plugin_names, ytdlp_version

DURATION_TOLERANCE = 0.1  # seconds a cut may differ from its segment


def fetch_downloads(manifest: Path, *, root: str | Path | None, index_mirror: str | None, options: FetchOptions,
                    quiet: bool = False) -> FetchResult:
    """Register the dataset of ``manifest``, then download its selected clips (the caller holds its lock)."""
    registration = register_dataset(manifest, root=root, mirror=index_mirror)
    paths = DatasetPaths(resolve_root(root), registration.dataset)
    with Ledger(paths.ledger) as ledger:
        splits_of(ledger, options.split)
        summary = download_clips(ledger, paths, options, quiet=quiet)
        rows = [r for r in coverage(ledger) if options.split in (None, r.split)]
    return FetchResult(registration, empty_if_nothing_ok(summary, rows, registration.dataset, options), rows)


def download_clips(ledger: Ledger, paths: DatasetPaths, options: FetchOptions, *,
                   quiet: bool = False, clock: Clock | None = None) -> DownloadSummary:
    """Download the selected clips, updating the ledger as each ends.

    Stops early (exit status 3, with a message) after ``max_refusals`` refusals or ``max_network_errors``
    connections that never opened, in a row; when the probe clip fails too; or when ``max_per_hour``
    downloads started in the past hour. Raises :class:`SourceUnreachable` before anything when the media host
    does not answer at all. ``clock`` (wall time and waiting) is for tests.
    """
    check_source_template(options.source_template)
    js_runtimes = require_javascript_runtime(options.source_template)
    if options.download.cookies is not None and not options.download.cookies.is_file():
        raise AudiobenchError(f"--cookies {options.download.cookies}: no such file")
    rows = select_clips(ledger, options)
    for row in rows:
        require_fetchable(row.source, what=f"clip {row.clip_id} of {ledger.path}")
    candidates = probe_candidates(ledger, paths.name, options.probe)
    notes = setup_notes()
    if rows:
        first = rows[0]
        require_reachable(source_url(options.source_template, first.source_id, first.start, first.end),
                          proxy=options.download.proxy,
                          hint=f"no clip was tried or marked; {network_hint(options)}")
    remove_dead_downloads(paths)
    partial = partial_dir(paths)
    remove_tree(partial)  # this process's own, of an earlier call: never counted, start afresh
    ensure_writable_dir(partial)
    stop = threading.Event()
    limiter = RateLimiter(options.rate_limit)
    pacer = Pacer(ledger, options.max_per_hour, clock=clock)
    run = Bookkeeping(ledger, options, rows, stop)

    def probe() -> ProbeResult:
        result = run_probe(candidates, partial / "probe", options.source_template, options.download, js_runtimes,
                           lambda clip_id: pacer.start(clip_id, stop))
        record_probe(ledger, result)
        return result

    def task(row: ClipStatus) -> ClipOutcome:
        if stop.is_set():
            return ClipOutcome(row.clip_id, "pending", error="not started: the run stopped early")
        return fetch_one(row, paths, options, js_runtimes=js_runtimes, limiter=limiter, pacer=pacer, stop=stop)

    if rows and run.judge_probe(probe()):
        outcomes = map_unordered(task, rows, jobs=options.jobs, backend="threading", desc="fetch", quiet=quiet,
                                 unit="clip")
        for outcome in outcomes:
            run.take(outcome, probe)
    else:
        run.counts["pending"] = len(rows)
    remove_tree(partial)  # after an exception, the next run removes it (see remove_dead_downloads)
    return run.summary(notes)


def partial_dir(paths: DatasetPaths) -> Path:
    """``raw/.partial/<pid>/``: this process's downloads in progress, never another's (their names say whose)."""
    return paths.partial / str(os.getpid())


def remove_dead_downloads(paths: DatasetPaths) -> None:
    """Delete the download folders under ``raw/.partial/`` of processes no longer running (a killed fetch's).

    Those of a live process are left alone, whoever it is; the dataset's writer lock clears the rest
    (:meth:`DatasetPaths.writing`).
    """
    if paths.partial.is_dir():
        for folder in paths.partial.iterdir():
            if folder.name.isdigit() and not pid_running(int(folder.name)):
                remove_tree(require_inside(folder, paths.partial))


def setup_notes() -> list[str]:
    """The yt-dlp setup in a line (its version and plugins), then a warning when it is old."""
    version = ytdlp_version()
    plugins = plugin_names()
    notes = [f"yt-dlp {version}; plugins: {', '.join(plugins) if plugins else 'none'}"]
    warning = age_warning(version)
    return notes + ([warning] if warning else [])


def fetch_one(row: ClipStatus, paths: DatasetPaths, options: FetchOptions, *, js_runtimes: dict[str, dict[str, str]],
              limiter: RateLimiter, pacer: Pacer, stop: threading.Event) -> ClipOutcome:
    """Try one clip up to ``1 + retries`` times; transient failures back off exponentially with jitter."""
    request = SegmentRequest(row.clip_id, row.source_id, row.start, row.end,
                             source_url(options.source_template, row.source_id, row.start, row.end))
    workdir = require_inside(partial_dir(paths) / row.clip_id, partial_dir(paths))  # it gets rmtree
    error, tries = None, 0
    for attempt in range(options.retries + 1):
        if attempt:
            delay = options.backoff * 2 ** (attempt - 1) * random.uniform(0.5, 1.5)
            if stop.wait(delay):
                break
        shutil.rmtree(workdir, ignore_errors=True)
        workdir.mkdir(parents=True)
        limiter.wait()
        blocked = pacer.start(row.clip_id, stop)
        if blocked is not None:
            shutil.rmtree(workdir, ignore_errors=True)
            if tries:  # a retry the pacer refused: the failure so far stands
                return ClipOutcome(row.clip_id, "failed", error, tries=tries, paced=blocked)
            return ClipOutcome(row.clip_id, "pending", "not started: paced", paced=blocked)
        tries += 1
        result = download_segment(request, workdir, options.download, js_runtimes)
        if result.outcome == "ok" and result.file is not None:
            try:
                outcome = keep_segment(row, result.file, paths, source_duration=result.source_duration, tries=tries,
                                       stream=result.stream)
            except DecodeError as exc:
                error = f"invalid file: {exc}".replace(str(workdir) + "/", "")
            else:
                shutil.rmtree(workdir, ignore_errors=True)
                return outcome
        elif result.outcome == "network":
            shutil.rmtree(workdir, ignore_errors=True)
            return ClipOutcome(row.clip_id, "pending", result.error, network=True)
        elif result.outcome in ("unavailable", "refused", "no_formats"):
            shutil.rmtree(workdir, ignore_errors=True)
            status = "pending" if result.outcome == "refused" else "unavailable"
            return ClipOutcome(row.clip_id, status, result.error, tries=tries, refused=result.outcome == "refused",
                               no_formats=result.outcome == "no_formats")
        else:
            error = result.error
    shutil.rmtree(workdir, ignore_errors=True)
    return ClipOutcome(row.clip_id, "failed", error, tries=tries)


def keep_segment(row: ClipStatus, file: Path, paths: DatasetPaths, *, source_duration: float | None,
                 tries: int = 1, stream: dict[str, object] | None = None) -> ClipOutcome:
    """Validate a downloaded segment (it decodes; its length is the segment's) and move it into ``raw/``.

    Its origin is ``stream`` (what yt-dlp says of the source stream) with the download time; a sample rate or
    channel count the source does not state is read from the file (the FLAC keeps the source's).
    """
    audio, rate = read_audio(file)
    duration = audio.shape[1] / rate
    wanted = row.end - row.start
    ends_early = source_duration is not None and source_duration < row.end - DURATION_TOLERANCE
    if duration < wanted - DURATION_TOLERANCE and not ends_early:
        raise DecodeError(f"truncated: {duration:.2f} s of the {wanted:.2f} s segment")
    if duration > wanted + DURATION_TOLERANCE:
        raise DecodeError(f"inexact cut: {duration:.2f} s for a {wanted:.2f} s segment")
    digest = hashlib.sha256(file.read_bytes()).hexdigest()
    relative = Path("raw") / row.split / f"{row.clip_id}.flac"
    target = paths.dir / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    size = file.stat().st_size
    file.replace(target)  # same file system: atomic
    note = f"the recording ends at {source_duration:.2f} s" if ends_early else None
    origin: dict[str, object] = {"via": "yt-dlp", **(stream or {}), "downloaded": now()}
    if origin.get("sample_rate") is None:
        origin["sample_rate"] = rate
    if origin.get("channels") is None:
        origin["channels"] = audio.shape[0]
    return ClipOutcome(row.clip_id, "ok", note, tries=tries, bytes=size, sha256=digest, duration=duration,
                       path=str(relative), origin=origin)
