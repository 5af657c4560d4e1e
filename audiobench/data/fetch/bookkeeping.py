"""A fetch run's bookkeeping, kept by the calling thread alone: what each clip's outcome marks in the ledger, the
summary counts, the refusals and dead connections in a row that stop a run, and the probe's verdicts.

A probe that fails puts back (to ``pending``) the clips this run marked ``unavailable``, and those of earlier
runs since the last good probe whose error a broken setup also gives (:mod:`audiobench.data.fetch.probe`);
"no formats" counts as ``unavailable`` only once a probe of this run has succeeded. The summary's message says
why a run stopped early and what to try next.
"""
from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime, timezone

from audiobench.core.network import endpoint
from audiobench.core.records import ClipFailure, ClipStatus
from audiobench.data.fetch.options import FetchOptions
from audiobench.data.fetch.outcome import ClipOutcome, DownloadSummary
from audiobench.data.fetch.probe import ProbeResult, UnavailableWatch, broken_message
from audiobench.data.ledger import Ledger
from audiobench.data.sources.youtube import NO_FORMATS, source_url


class Bookkeeping:
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
                       f"{network_hint(options)}, then rerun.")
        elif self.reason == "refusals":
            message = (f"stopped early: the source refused {options.max_refusals} requests in a row "
                       f"({self.last_refusal}). {counts['pending']} clips stay pending. Wait a while, then rerun "
                       "with --cookies FILE (cookies of a logged-in browser), a longer --sleep, a lower "
                       "--rate-limit or --max-per-hour.")
        stopped = self.stop.is_set()
        return DownloadSummary(len(self.rows), counts, stopped, message, self.failures,
                               exit_code=3 if stopped else 0, notes=notes)


def network_hint(options: FetchOptions) -> str:
    """What to try when the media host does not answer (every option named is one of ``fetch``'s)."""
    if options.download.proxy:
        return "check the network and --proxy"
    return "check the network (or pass --proxy URL), or take the recordings from another host with --source-template"
