"""The fetch stage: get every listed segment that can be had, and record exactly what could not.

Workers are threads (downloads wait on the network, not the CPU); only the calling thread writes the
ledger. A clip's file lands under ``raw/<split>/<clip_id>.flac`` by rename after it was validated, and
only then is the clip marked ``ok``: a run killed at any moment leaves no half file that counts.

Only YouTube recordings are downloaded (``[source] kind = "youtube"``, the default): a dataset or clip of
another source is refused in one line before anything is fetched.

The network is never a clip's fault: before the first download the media host must answer (else
:class:`SourceUnreachable`, exit status 3, nothing marked), and a download whose connection never opened
leaves its clip as it was; ``max_network_errors`` of those in a row stop the run, as refusals do.

Nor is a broken setup: a probe clip known to exist is fetched before the first download and whenever
``unavailable`` piles up (:mod:`audiobench.data.probe`); if it fails too, the run stops (exit status 3) and
the clips marked ``unavailable`` since the last good probe go back to ``pending``. Every download started is
recorded in the ledger, which paces runs across workers and restarts (:mod:`audiobench.data.pacing`).
Each ``ok`` clip's origin records the source stream (format, codec, sample rate, ...) and the yt-dlp version.
"""
from __future__ import annotations

import hashlib
import os
import random
import shutil
import threading
import time
import zlib
from datetime import datetime, timezone
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from audiobench.core.records import ClipFailure, ClipStatus
from audiobench.data.coverage import ALL, CoverageRow, coverage
from audiobench.data.decode import DecodeError, read_audio
from audiobench.data.sources.youtube import (
    NO_FORMATS,
    YOUTUBE_TEMPLATE,
    DownloadSettings,
    SegmentRequest,
    check_source_template,
    download_segment,
    require_javascript_runtime,
    source_url,
)
from audiobench.core.errors import AudiobenchError
from audiobench.core.layout import DatasetPaths, ensure_writable_dir, remove_tree, require_inside, resolve_root
from audiobench.core.locking import pid_running
from audiobench.data.ledger import Ledger, now
from audiobench.data.pacing import Clock, NotStarted, Pacer
from audiobench.data.probe import (
    ProbeResult,
    UnavailableWatch,
    broken_message,
    probe_candidates,
    record_probe,
    run_probe,
)
from audiobench.data.sources.ytdlp_setup import age_warning, plugin_names, ytdlp_version
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
    probe: str | None = None  # the recording the probe fetches (default: see audiobench.data.probe)
    max_per_hour: int | None = None  # downloads started per rolling hour, all workers and runs together
    wait: bool = False  # another process writes the dataset: wait for it (else refused at once)
    download: DownloadSettings = field(default_factory=DownloadSettings)


@dataclass(frozen=True)
class ClipOutcome:
    clip_id: str
    status: str  # ok | unavailable | failed | pending (refused, no connection, or not started: run stopped)
    error: str | None = None
    tries: int = 0  # 0: nothing to record, the clip's ledger row stays as it was
    refused: bool = False
    network: bool = False  # the connection never opened: not the clip's fault, not recorded
    no_formats: bool = False  # "no formats": a gone video or a broken setup; a probe decides
    paced: NotStarted | None = None  # not started: the pacer refused (or the run stopped during its pause)
    origin: dict[str, object] | None = None
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
    notes: list[str] = field(default_factory=list)  # the yt-dlp setup: version, plugins, warnings


@dataclass(frozen=True)
class FetchResult:
    registration: Registration
    summary: DownloadSummary
    coverage: list[CoverageRow]


def fetch(dataset: str, *, root: str | Path | None = None, index_mirror: str | None = None,
          options: FetchOptions | None = None, quiet: bool = False) -> FetchResult:
    """Rebuild ``dataset`` from its published lists: verified index files, then every segment that can be had.

    Rerun at will: finished clips are skipped, ``failed`` ones are tried again, ``unavailable`` ones only
    with ``retry_unavailable``. One writer per dataset: while another process writes it (fetch, import,
    resample, synth) or featurize reads it, :class:`~audiobench.core.locking.Busy` names that process, or with
    ``options.wait`` the run waits for it.

    >>> fetch("sl-dcase17", root="data", options=FetchOptions(split="test", limit=10))   # doctest: +SKIP
    """
    options = options or FetchOptions()
    manifest = load_manifest(dataset, root=root)
    require_fetchable(manifest.source, what=f"dataset {manifest.name!r} ({manifest.path})")
    check_source_template(options.source_template)  # before any work, so the message comes first
    local = is_local(options.source_template)
    if not local:
        require_javascript_runtime(options.source_template)
    with DatasetPaths(resolve_root(root), manifest.name).writing(wait=options.wait):  # the lists too
        if local:  # local files: validated and adopted by the importer
            from audiobench.data.imports.template import fetch_from_files

            return fetch_from_files(dataset, root=root, index_mirror=index_mirror, options=options, quiet=quiet)
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
            current = time.monotonic()
            slot = max(current, self._next)
            self._next = slot + self._interval
        time.sleep(max(0.0, slot - current))


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
                          hint=f"no clip was tried or marked; {_network_hint(options)}")
    remove_dead_downloads(paths)
    partial = partial_dir(paths)
    remove_tree(partial)  # this process's own, of an earlier call: never counted, start afresh
    ensure_writable_dir(partial)
    stop = threading.Event()
    limiter = RateLimiter(options.rate_limit)
    pacer = Pacer(ledger, options.max_per_hour, clock=clock)
    run = _Run(ledger, options, rows, stop)

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


class _Run:
    """One run's bookkeeping in the calling thread: marks, counters in a row, the probe's verdicts."""

    def __init__(self, ledger: Ledger, options: FetchOptions, rows: list[ClipStatus], stop: threading.Event) -> None:
        self.ledger, self.options, self.rows, self.stop = ledger, options, rows, stop
        self.counts = dict.fromkeys(("ok", "unavailable", "failed", "pending"), 0)
        self.failures: list[ClipFailure] = []
        self.split_of = {row.clip_id: row.split for row in rows}
        self.refusals_in_a_row, self.last_refusal = 0, ""
        self.network_in_a_row, self.last_network = 0, ""
        self.reason = ""  # what stopped the run: refusals, network, broken or paced
        self.probe_ok = False  # a probe succeeded in this run: "no formats" may count as unavailable
        self.unavailable_here: set[str] = set()
        self.watch = UnavailableWatch()
        self.broken: ProbeResult | None = None
        self.reopened = 0
        self.next_at: float | None = None

    def _stop(self, reason: str) -> None:
        if not self.reason:
            self.reason = reason
        self.stop.set()

    def judge_probe(self, result: ProbeResult) -> bool:
        """Take a probe's verdict; False when the run must not go on."""
        if result.outcome == "ok":
            self.probe_ok = True
            self.watch.reset()
        elif result.outcome == "broken":
            self.broken = result
            note = f"put back: the probe failed too ({result.error})"
            # this run's, by id (a clip an earlier run marked in the same second is not this run's) ...
            reopened = self.ledger.reopen_unavailable(clip_ids=self.unavailable_here, note=note)
            last_good = self.ledger.meta().get("last_good_probe")
            if last_good:  # ... and earlier runs': only what a broken setup also says (a 404 stays a 404)
                reopened += self.ledger.reopen_unavailable(since=str(last_good), note=note, matching=NO_FORMATS)
            self.reopened = len(reopened)
            for clip_id in self.unavailable_here.intersection(reopened):
                self.counts["unavailable"] -= 1
                self.counts["pending"] += 1
            self.failures = [f for f in self.failures if f.clip_id not in reopened]
            self._stop("broken")
        elif result.outcome == "paced":
            self.next_at = result.next_at
            self._stop("paced")
        elif result.outcome == "network":
            self._network(result.error)
        elif result.outcome == "refused":
            self._refused(result.error)
        return not self.stop.is_set()

    def _network(self, error: str | None) -> None:
        self.network_in_a_row += 1
        self.last_network = error or ""
        if self.network_in_a_row >= self.options.max_network_errors:
            self._stop("network")

    def _refused(self, error: str | None) -> None:
        self.refusals_in_a_row += 1
        self.last_refusal = error or ""
        if self.refusals_in_a_row >= self.options.max_refusals:
            self._stop("refusals")

    def take(self, outcome: ClipOutcome, probe: Callable[[], ProbeResult]) -> None:
        """Record one clip's outcome (the ledger, the counters), probing when its failure calls for it."""
        status = outcome.status
        if outcome.paced is not None:
            if outcome.paced.next_at is not None:
                self.next_at = outcome.paced.next_at
                self._stop("paced")
        elif outcome.network:
            self._network(outcome.error)
            status = "pending" if not outcome.tries else status
        if outcome.tries and not outcome.network:
            self.network_in_a_row = 0  # the host answered
        if status == "unavailable" and outcome.no_formats and self.broken is None and not self.probe_ok:
            self.judge_probe(probe())
        if status == "unavailable" and (self.broken is not None or (outcome.no_formats and not self.probe_ok)):
            status = "pending"  # not judged: the clip stays as it was
        elif outcome.tries and not outcome.network:
            fields = {k: getattr(outcome, k) for k in ("bytes", "sha256", "duration", "path")
                      if getattr(outcome, k) is not None}
            self.ledger.mark(outcome.clip_id, status, error=outcome.error, attempts=outcome.tries,
                             origin=outcome.origin, **fields)
            if status == "unavailable":
                self.unavailable_here.add(outcome.clip_id)
            if status != "ok":
                self.failures.append(ClipFailure(outcome.clip_id, outcome.error or "", self.split_of[outcome.clip_id],
                                                 status))
        self.counts[status] += 1
        if outcome.refused:
            self._refused(outcome.error)
        elif outcome.tries:
            self.refusals_in_a_row = 0
        if outcome.tries and not outcome.refused and self.broken is None and not self.stop.is_set():
            if self.watch.add(status == "unavailable"):
                self.judge_probe(probe())

    def summary(self, notes: list[str]) -> DownloadSummary:
        options, counts = self.options, self.counts
        message = None
        if self.reason == "broken" and self.broken is not None:
            message = broken_message(self.broken, self.reopened, counts["pending"])
        elif self.reason == "paced":
            when = (datetime.fromtimestamp(self.next_at, timezone.utc).strftime("at %Y-%m-%d %H:%M UTC")
                    if self.next_at else "within the hour")
            message = (f"stopped: {options.max_per_hour} downloads started in the past hour (--max-per-hour "
                       f"{options.max_per_hour}, counted over every run of this dataset); the next may start "
                       f"{when}. {counts['pending']} clips stay pending; rerun then.")
        elif self.reason == "network":
            first = self.rows[0]
            host = endpoint(source_url(options.source_template, first.source_id, first.start, first.end),
                            proxy=options.download.proxy)
            message = (f"stopped early: {options.max_network_errors} downloads in a row could not connect to {host} "
                       f"({self.last_network}). {counts['pending']} clips were left as they were; "
                       f"{_network_hint(options)}, then rerun.")
        elif self.reason == "refusals":
            message = (f"stopped early: the source refused {options.max_refusals} requests in a row "
                       f"({self.last_refusal}). {counts['pending']} clips stay pending. Wait a while, then rerun "
                       "with --cookies FILE (cookies of a logged-in browser), a longer --sleep, a lower "
                       "--rate-limit or --max-per-hour.")
        stopped = self.stop.is_set()
        return DownloadSummary(len(self.rows), counts, stopped, message, self.failures,
                               exit_code=3 if stopped else 0, notes=notes)


def _network_hint(options: FetchOptions) -> str:
    """What to try when the media host does not answer (every option named is one of ``fetch``'s)."""
    if options.download.proxy:
        return "check the network and --proxy"
    return "check the network (or pass --proxy URL), or take the recordings from another host with --source-template"


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
