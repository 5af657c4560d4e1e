"""What came of a fetch: one clip's outcome, the run's summary, the result a caller gets."""
from __future__ import annotations

from dataclasses import dataclass, field, replace

from audiobench.core.errors import AudiobenchError
from audiobench.core.records import ClipFailure
from audiobench.data.coverage import ALL, CoverageRow
from audiobench.data.fetch.options import FetchOptions
from audiobench.data.fetch.pacing import NotStarted
from audiobench.data.register import Registration


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
