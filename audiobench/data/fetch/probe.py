"""The probe: one clip known to exist, fetched before a run trusts any failure.

When YouTube stops serving a setup (no JavaScript runtime for its player challenges, a client that now needs a
PO token, a guest session over its hourly cap, an old yt-dlp), yt-dlp answers "No video formats found" for
every video, gone or not. A probe clip tells the two apart: it is fetched before the first download of a run,
and again whenever the share of ``unavailable`` among the last :data:`WINDOW` outcomes rises over
:data:`UNAVAILABLE_SHARE`. A probe that fails stops the run; the clips marked ``unavailable`` since the last
successful probe go back to ``pending``: every one this run marked, and those of earlier runs whose error is
one a broken setup also gives ("No video formats found", ...; an HTTP 404 stays).

Default probe: up to three clips this root already has ``ok`` (most recent first), then :data:`PROBE_IDS`,
recordings taken from the dataset's own lists (for another dataset: its first listed clips); the probe fails
only when every one of them fails. ``--probe ID`` picks the one recording to try.
Each probe is recorded in the ledger's meta (``last_probe``; ``last_good_probe``, the time of the last
success), never as a clip status.
"""
from __future__ import annotations

import shutil
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from audiobench.core.records import ClipStatus
from audiobench.data.decode import DecodeError, read_audio
from audiobench.data.ledger import Ledger, now
from audiobench.data.fetch.pacing import NotStarted
from audiobench.data.sources.youtube import (
    DownloadSettings,
    SegmentRequest,
    download_segment,
    source_url,
    validate_youtube_id,
)

# Recordings from the lists' train splits (segment 30-40 s each), listed since the lists were published;
# a probe tries them in order. When they go away, pass --probe ID with a recording you know exists.
PROBE_IDS: dict[str, tuple[str, ...]] = {
    "sl-dcase17": ("CU2MyVM_B48", "CZB6WXDuM1g", "CZgx_6XaEkg"),
    "audioset-balanced": ("SXFMAPPaAbA", "SXMQxeGFY9k", "SXQF06ZPEi8"),
}
MAX_CANDIDATES = 3  # clips already ok that a probe tries, and as many from the lists
WINDOW = 50  # outcomes looked back on
MIN_OUTCOMES = 10  # outcomes needed before the share is judged
UNAVAILABLE_SHARE = 0.6  # share of unavailable among them that calls for a probe

ProbeOutcome = Literal["ok", "broken", "refused", "network", "paced"]


@dataclass(frozen=True)
class ProbeResult:
    outcome: ProbeOutcome  # broken: every candidate failed; refused / network / paced: nothing was judged
    source_id: str
    error: str | None = None
    next_at: float | None = None  # paced: when a download may start again (epoch seconds)


def probe_candidates(ledger: Ledger, dataset: str, explicit: str | None = None) -> list[ClipStatus]:
    """The clips a probe tries, in order (see the module docstring)."""
    rows = ledger.statuses()
    if explicit is not None:
        validate_youtube_id(explicit, where="--probe")
        listed = [r for r in rows if r.source_id == explicit]
        return listed[:1] or [ClipStatus(f"probe_{explicit}", "", explicit, 0.0, 10.0, "pending")]
    ok = sorted((r for r in rows if r.status == "ok"), key=lambda r: r.updated or "", reverse=True)
    by_id = {r.source_id: r for r in rows}
    known = [by_id[i] for i in PROBE_IDS.get(dataset, ()) if i in by_id] or rows[:MAX_CANDIDATES]
    chosen = {r.clip_id: r for r in [*ok[:MAX_CANDIDATES], *known]}  # in order, each clip once
    return list(chosen.values())[: 2 * MAX_CANDIDATES]


def run_probe(candidates: list[ClipStatus], workdir: Path, template: str, settings: DownloadSettings,
              js_runtimes: dict[str, dict[str, str]], start: Callable[[str], NotStarted | None]) -> ProbeResult:
    """Fetch the candidates in turn until one decodes. ``start(clip_id)`` asks the pacer (None: go ahead).

    A refusal, a connection that never opened, or the pacer ends the probe undecided: those say nothing
    about the setup, and the run handles them as it does for any clip.
    """
    last = ProbeResult("broken", "", "no clip to probe")
    for row in candidates:
        blocked = start(row.clip_id)
        if blocked is not None:
            return ProbeResult("paced", row.source_id, next_at=blocked.next_at)
        shutil.rmtree(workdir, ignore_errors=True)
        workdir.mkdir(parents=True)
        request = SegmentRequest(row.clip_id, row.source_id, row.start, row.end,
                                 source_url(template, row.source_id, row.start, row.end))
        try:
            result = download_segment(request, workdir, settings, js_runtimes)
            if result.outcome == "ok" and result.file is not None:
                read_audio(result.file)
                return ProbeResult("ok", row.source_id)
            if result.outcome in ("refused", "network"):
                return ProbeResult(result.outcome, row.source_id, result.error)
            last = ProbeResult("broken", row.source_id, result.error)
        except DecodeError as exc:
            last = ProbeResult("broken", row.source_id, f"invalid file: {exc}")
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
    return last


def record_probe(ledger: Ledger, result: ProbeResult) -> None:
    """The probe's record in the ledger's meta (no clip changes)."""
    stamp = now()
    values: dict[str, object] = {"last_probe": {"at": stamp, "source_id": result.source_id,
                                                "outcome": result.outcome, "error": result.error}}
    if result.outcome == "ok":
        values["last_good_probe"] = stamp
    ledger.set_meta(**values)


def likely_cause(error: str | None) -> str:
    """What a failed probe most likely means, from yt-dlp's words."""
    text = (error or "").lower()
    if "sign in" in text or "not a bot" in text or "login" in text:
        return "YouTube wants a signed-in session (pass --cookies FILE) or a PO token"
    if "po token" in text or "pot" in text.split():
        return "the client needs a PO token (install a PO-token provider plugin)"
    if "javascript" in text or "deno" in text or "challenge" in text or "signature" in text or "n challenge" in text:
        return "yt-dlp could not solve YouTube's player challenge (check the JavaScript runtime: deno --version)"
    return ("YouTube no longer serves this setup: yt-dlp too old, the JavaScript runtime (deno), a client that "
            "needs a PO token, or a session that must sign in")


def broken_message(result: ProbeResult, reopened: int, pending: int) -> str:
    """One line: the run stopped because the probe failed, what it means, and what to try, in order."""
    return (f"stopped: the probe clip {result.source_id} could not be fetched either ({result.error}), so failures "
            f"now say nothing about the videos. Likely cause: {likely_cause(result.error)}. "
            f"{reopened} clips marked unavailable since the last good probe are pending again; {pending} clips "
            "stay pending. Try in order: pip install -U 'yt-dlp[default]'; deno --version; "
            "--extractor-args 'youtube:player_client=default,web_safari'; a PO-token provider; --cookies FILE; "
            "a lower --max-per-hour; then rerun (docs: \"When YouTube stops answering\").")


class UnavailableWatch:
    """The last :data:`WINDOW` recorded outcomes; says when the share of ``unavailable`` calls for a probe."""

    def __init__(self) -> None:
        self._recent: deque[bool] = deque(maxlen=WINDOW)

    def add(self, unavailable: bool) -> bool:
        self._recent.append(unavailable)
        return len(self._recent) >= MIN_OUTCOMES and sum(self._recent) / len(self._recent) > UNAVAILABLE_SHARE

    def reset(self) -> None:
        self._recent.clear()
