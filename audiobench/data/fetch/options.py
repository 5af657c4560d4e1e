"""What one fetch run is asked to do (:class:`FetchOptions`, every field a CLI option) and which clips that selects."""
from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field

from audiobench.core.errors import AudiobenchError
from audiobench.core.records import ClipStatus
from audiobench.data.ledger import Ledger
from audiobench.data.sources.youtube import YOUTUBE_TEMPLATE, DownloadSettings


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
    probe: str | None = None  # the recording the probe fetches (default: see audiobench.data.fetch.probe)
    max_per_hour: int | None = None  # downloads started per rolling hour, all workers and runs together
    wait: bool = False  # another process writes the dataset: wait for it (else refused at once)
    download: DownloadSettings = field(default_factory=DownloadSettings)


def select_clips(ledger: Ledger, options: FetchOptions) -> list[ClipStatus]:
    """The clips this run should try: pending and failed (and unavailable if asked), this shard, the limit."""
    wanted = ["pending", "failed"] + (["unavailable"] if options.retry_unavailable else [])
    rows = ledger.statuses(split=options.split, status=wanted)
    if options.shard is not None:
        index, count = options.shard
        rows = [r for r in rows if zlib.crc32(r.clip_id.encode()) % count == index]
    return rows[: options.limit] if options.limit is not None else rows


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
