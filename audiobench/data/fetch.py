"""The fetch stage: get every listed segment that can be had, and record exactly what could not.

Workers are threads (downloads wait on the network, not the CPU); only the calling thread writes the
ledger. A clip's file lands under ``raw/<split>/<clip_id>.flac`` by rename after it was validated, and
only then is the clip marked ``ok``: a run killed at any moment leaves no half file that counts.

Only YouTube recordings are downloaded (``[source] kind = "youtube"``, the default): a dataset or clip of
another source is refused in one line before anything is fetched.

The network is never a clip's fault: before the first download the media host must answer (else
:class:`SourceUnreachable`, exit status 3, nothing marked), and a download whose connection never opened
leaves its clip as it was; ``max_network_errors`` of those in a row stop the run, as refusals do.
"""
from __future__ import annotations

import hashlib
import random
import shutil
import threading
import time
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from audiobench.core.records import ClipFailure, ClipStatus
from audiobench.data.coverage import ALL, CoverageRow, coverage
from audiobench.data.decode import DecodeError, read_audio
from audiobench.data.sources.youtube import (
    YOUTUBE_TEMPLATE,
    DownloadSettings,
    SegmentRequest,
    check_source_template,
    download_segment,
    require_javascript_runtime,
    source_url,
)
from audiobench.core.errors import AudiobenchError
from audiobench.core.layout import DatasetPaths, ensure_writable_dir, require_inside, resolve_root
from audiobench.data.ledger import Ledger
from audiobench.core.network import endpoint, require_reachable
from audiobench.core.parallel import map_unordered
from audiobench.data.manifests import load_manifest
from audiobench.data.register import Registration, register_dataset
from audiobench.data.imports.template import is_local
from audiobench.data.sources import require_fetchable

DURATION_TOLERANCE = 0.1  # seconds a cut may differ from its segment


@dataclass(frozen=True)
class FetchOptions:
    """How to download; every field is a CLI option of the same name."""

    source_template: str = YOUTUBE_TEMPLATE
    jobs: int = 4
    retries: int = 2  # further tries of a transient failure within this run
    backoff: float = 2.0  # seconds before the first retry; doubles each time, jittered
    rate_limit: float | None = None  # downloads started per second, all workers together
    max_refusals: int = 5  # refusals (HTTP 429, bot checks) in a row before the run stops
    max_network_errors: int = 5  # downloads in a row whose connection never opened before the run stops
    retry_unavailable: bool = False
    split: str | None = None
    shard: tuple[int, int] | None = None  # (i, n): this machine takes the clips whose hash mod n == i
    limit: int | None = None
    download: DownloadSettings = field(default_factory=DownloadSettings)


@dataclass(frozen=True)
class ClipOutcome:
    clip_id: str
    status: str  # ok | unavailable | failed | pending (refused, no connection, or not started: run stopped)
    error: str | None = None
    tries: int = 0  # 0: nothing to record, the clip's ledger row stays as it was
    refused: bool = False
    network: bool = False  # the connection never opened: not the clip's fault, not recorded
    bytes: int | None = None
    sha256: str | None = None
    duration: float | None = None
    path: str | None = None


@dataclass(frozen=True)
class DownloadSummary:
    attempted: int
    counts: dict[str, int]
    stopped_early: bool
    message: str | None = None  # why the run stopped early, or why it counts as empty; one line
    failures: list[ClipFailure] = field(default_factory=list)
    exit_code: int = 0  # for the command line: 3 stopped early (rerun later), 2 nothing fetched at all


@dataclass(frozen=True)
class FetchResult:
    registration: Registration
    summary: DownloadSummary
    coverage: list[CoverageRow]


def fetch(dataset: str, *, root: str | Path | None = None, index_mirror: str | None = None,
          options: FetchOptions | None = None, quiet: bool = False) -> FetchResult:
    """Rebuild ``dataset`` from its published lists: verified index files, then every segment that can be had.

    Rerun at will: finished clips are skipped, ``failed`` ones are tried again, ``unavailable`` ones only
    with ``retry_unavailable``.

    >>> fetch("sl-dcase17", root="data", options=FetchOptions(split="test", limit=10))   # doctest: +SKIP
    """
    options = options or FetchOptions()
    manifest = load_manifest(dataset)
    require_fetchable(manifest.source, what=f"dataset {manifest.name!r} ({manifest.path})")
    check_source_template(options.source_template)  # before any work, so the message comes first
    if is_local(options.source_template):  # local files: validated and adopted by the importer
        from audiobench.data.imports.template import fetch_from_files

        return fetch_from_files(dataset, root=root, index_mirror=index_mirror, options=options, quiet=quiet)
    require_javascript_runtime(options.source_template)
    registration = register_dataset(manifest.path, root=root, mirror=index_mirror)
    paths = DatasetPaths(resolve_root(root), registration.dataset)
    with Ledger(paths.ledger) as ledger:
        splits_of(ledger, options.split)
        summary = download_clips(ledger, paths, options, quiet=quiet)
        rows = [r for r in coverage(ledger) if options.split in (None, r.split)]
    return FetchResult(registration, empty_if_nothing_ok(summary, rows, registration.dataset, options), rows)


def empty_if_nothing_ok(summary: DownloadSummary, rows: list[CoverageRow], dataset: str,
                        options: FetchOptions) -> DownloadSummary:
    """A run after which the fetched splits hold no ``ok`` clip leaves the next stage nothing: say so.

    A rerun where every clip is already ``ok`` is a success, not an empty stage; so is ``--limit 0``, which
    asks only for the lists to be registered.
    """
    if summary.stopped_early or options.limit == 0 or sum(r.ok for r in rows if r.label == ALL):
        return summary
    split = options.split
    where = f"split {split} of {dataset}" if split else dataset
    counts = ", ".join(f"{sum(getattr(r, s) for r in rows if r.label == ALL)} {s}"
                       for s in ("unavailable", "failed", "pending"))
    message = (f"no clip of {where} is fetched ({counts}); `audiobench status {dataset}` lists the reasons, and a "
               "rerun tries the failed and pending clips again")
    return replace(summary, message=message, exit_code=AudiobenchError.exit_code)


def select_clips(ledger: Ledger, options: FetchOptions) -> list[ClipStatus]:
    """The clips this run should try: pending and failed (and unavailable if asked), this shard, the limit."""
    wanted = ["pending", "failed"] + (["unavailable"] if options.retry_unavailable else [])
    rows = ledger.statuses(split=options.split, status=wanted)
    if options.shard is not None:
        index, count = options.shard
        rows = [r for r in rows if zlib.crc32(r.clip_id.encode()) % count == index]
    return rows[: options.limit] if options.limit is not None else rows


class RateLimiter:
    """At most ``rate`` starts per second across threads (``None``: no limit)."""

    def __init__(self, rate: float | None) -> None:
        self._interval = 1.0 / rate if rate else 0.0
        self._next = time.monotonic()
        self._lock = threading.Lock()

    def wait(self) -> None:
        if not self._interval:
            return
        with self._lock:
            now = time.monotonic()
            slot = max(now, self._next)
            self._next = slot + self._interval
        time.sleep(max(0.0, slot - now))


def download_clips(ledger: Ledger, paths: DatasetPaths, options: FetchOptions, *,
                   quiet: bool = False) -> DownloadSummary:
    """Download the selected clips, updating the ledger as each ends.

    Stops early (exit status 3, with a message) after ``max_refusals`` refusals or ``max_network_errors``
    connections that never opened, in a row. Raises :class:`SourceUnreachable` before anything when the
    media host does not answer at all.
    """
    check_source_template(options.source_template)
    js_runtimes = require_javascript_runtime(options.source_template)
    if options.download.cookies is not None and not options.download.cookies.is_file():
        raise AudiobenchError(f"--cookies {options.download.cookies}: no such file")
    rows = select_clips(ledger, options)
    for row in rows:
        require_fetchable(row.source, what=f"clip {row.clip_id} of {ledger.path}")
    if rows:
        first = rows[0]
        require_reachable(source_url(options.source_template, first.source_id, first.start, first.end),
                          proxy=options.download.proxy,
                          hint=f"no clip was tried or marked; {_network_hint(options)}")
    partial = ensure_writable_dir(paths.raw / ".partial")
    shutil.rmtree(partial, ignore_errors=True)  # leftovers of a killed run: never counted, start afresh
    partial.mkdir(parents=True)
    stop = threading.Event()
    limiter = RateLimiter(options.rate_limit)

    def task(row: ClipStatus) -> ClipOutcome:
        if stop.is_set():
            return ClipOutcome(row.clip_id, "pending", error="not started: the run stopped early")
        return fetch_one(row, paths, options, js_runtimes=js_runtimes, limiter=limiter, stop=stop)

    counts = dict.fromkeys(("ok", "unavailable", "failed", "pending"), 0)
    failures: list[ClipFailure] = []
    split_of = {row.clip_id: row.split for row in rows}
    refusals_in_a_row, last_refusal = 0, ""
    network_in_a_row, last_network = 0, ""
    reason = ""  # what stopped the run: "refusals" or "network"
    outcomes = map_unordered(task, rows, jobs=options.jobs, backend="threading", desc="fetch", quiet=quiet,
                             unit="clip")
    for outcome in outcomes:
        counts[outcome.status] += 1
        if outcome.network:
            network_in_a_row += 1
            last_network = outcome.error or ""
            if network_in_a_row >= options.max_network_errors and not reason:
                reason = "network"
                stop.set()
            continue
        if outcome.tries:
            network_in_a_row = 0  # the host answered
            fields = {k: getattr(outcome, k) for k in ("bytes", "sha256", "duration", "path")
                      if getattr(outcome, k) is not None}
            origin = {"via": "yt-dlp"} if outcome.status == "ok" else None  # what `status` counts by source
            ledger.mark(outcome.clip_id, outcome.status, error=outcome.error, attempts=outcome.tries, origin=origin,
                        **fields)
        if outcome.status != "ok" and outcome.tries:
            failures.append(ClipFailure(outcome.clip_id, outcome.error or "", split_of[outcome.clip_id],
                                        outcome.status))
        if outcome.refused:
            refusals_in_a_row += 1
            last_refusal = outcome.error or ""
            if refusals_in_a_row >= options.max_refusals and not reason:
                reason = "refusals"
                stop.set()
        elif outcome.tries:
            refusals_in_a_row = 0
    message = None
    if reason == "network":
        message = (f"stopped early: {options.max_network_errors} downloads in a row could not connect to "
                   f"{endpoint(source_url(options.source_template, rows[0].source_id), proxy=options.download.proxy)} "
                   f"({last_network}). {counts['pending']} clips were left as they were; "
                   f"{_network_hint(options)}, then rerun.")
    elif reason == "refusals":
        message = (f"stopped early: the source refused {options.max_refusals} requests in a row "
                   f"({last_refusal}). {counts['pending']} clips stay pending. Wait a while, then rerun with "
                   "--cookies FILE (cookies of a logged-in browser), a longer --sleep, or a lower --rate-limit.")
    return DownloadSummary(len(rows), counts, stop.is_set(), message, failures, exit_code=3 if stop.is_set() else 0)


def _network_hint(options: FetchOptions) -> str:
    """What to try when the media host does not answer (every option named is one of ``fetch``'s)."""
    if options.download.proxy:
        return "check the network and --proxy"
    return "check the network (or pass --proxy URL), or take the recordings from another host with --source-template"


def fetch_one(row: ClipStatus, paths: DatasetPaths, options: FetchOptions, *,
              js_runtimes: dict[str, dict[str, str]], limiter: RateLimiter, stop: threading.Event) -> ClipOutcome:
    """Try one clip up to ``1 + retries`` times; transient failures back off exponentially with jitter."""
    request = SegmentRequest(row.clip_id, row.source_id, row.start, row.end,
                             source_url(options.source_template, row.source_id, row.start, row.end))
    workdir = require_inside(paths.raw / ".partial" / row.clip_id, paths.raw / ".partial")  # it gets rmtree
    error, tries = None, 0
    for attempt in range(options.retries + 1):
        if attempt:
            delay = options.backoff * 2 ** (attempt - 1) * random.uniform(0.5, 1.5)
            if stop.wait(delay):
                break
        shutil.rmtree(workdir, ignore_errors=True)
        workdir.mkdir(parents=True)
        limiter.wait()
        tries += 1
        result = download_segment(request, workdir, options.download, js_runtimes)
        if result.outcome == "ok" and result.file is not None:
            try:
                outcome = keep_segment(row, result.file, paths, source_duration=result.source_duration, tries=tries)
            except DecodeError as exc:
                error = f"invalid file: {exc}".replace(str(workdir) + "/", "")
            else:
                shutil.rmtree(workdir, ignore_errors=True)
                return outcome
        elif result.outcome == "network":
            shutil.rmtree(workdir, ignore_errors=True)
            return ClipOutcome(row.clip_id, "pending", result.error, network=True)
        elif result.outcome in ("unavailable", "refused"):
            shutil.rmtree(workdir, ignore_errors=True)
            status = "pending" if result.outcome == "refused" else "unavailable"
            return ClipOutcome(row.clip_id, status, result.error, tries=tries, refused=result.outcome == "refused")
        else:
            error = result.error
    shutil.rmtree(workdir, ignore_errors=True)
    return ClipOutcome(row.clip_id, "failed", error, tries=tries)


def keep_segment(row: ClipStatus, file: Path, paths: DatasetPaths, *,
                 source_duration: float | None, tries: int = 1) -> ClipOutcome:
    """Validate a downloaded segment (it decodes; its length is the segment's) and move it into ``raw/``."""
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
    return ClipOutcome(row.clip_id, "ok", note, tries=tries, bytes=size, sha256=digest, duration=duration,
                       path=str(relative))


def parse_shard(text: str | None) -> tuple[int, int] | None:
    """``"i/n"`` -> (i, n) with 0 <= i < n."""
    if not text:
        return None
    try:
        index, count = (int(part) for part in text.split("/"))
    except ValueError:
        raise AudiobenchError(f"--shard {text!r}: expected i/n, e.g. 0/4") from None
    if not 0 <= index < count:
        raise AudiobenchError(f"--shard {text!r}: need 0 <= i < n")
    return index, count


def splits_of(ledger: Ledger, wanted: str | None) -> Sequence[str]:
    """Check a ``--split`` name against the ledger."""
    splits = list(ledger.splits())
    if wanted is not None and wanted not in splits:
        raise AudiobenchError(f"--split {wanted!r}: the dataset has splits {', '.join(splits)}")
    return [wanted] if wanted else splits
