"""Where the ``ok`` clips came from, summarised: how many per way in, codec and sample rate.

Two labs whose results differ often fetched different audio: YouTube serves several streams per video (AAC
at 44.1 kHz, Opus at 48 kHz, lower rates for old uploads) and a copy may have been re-encoded. Each ``ok``
clip's origin in the ledger records its stream (see ``audiobench fetch``, ``audiobench import``); this is
the table ``audiobench status --per-source`` prints.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass

import pandas as pd

from audiobench.data.ledger import Ledger

UNKNOWN = "?"


@dataclass(frozen=True)
class SourceRow:
    via: str  # yt-dlp, import, ...
    codec: str  # the source stream's codec as the source named it ("?" where it did not)
    sample_rate: str  # Hz ("?" where unknown)
    clips: int


def source_summary(ledger: Ledger, *, split: str | None = None) -> list[SourceRow]:
    """One row per (way in, codec, sample rate) of the clips with a recorded origin, most clips first."""
    counts: Counter[tuple[str, str, str]] = Counter()
    for origin in ledger.origins(split=split).values():
        counts[tuple(str(origin.get(k)) if origin.get(k) is not None else UNKNOWN  # type: ignore[misc]
                     for k in ("via", "codec", "sample_rate"))] += 1
    return [SourceRow(*key, clips=n) for key, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]


def source_table(rows: list[SourceRow]) -> str:
    if not rows:
        return "(no clip with a recorded origin)"
    return pd.DataFrame([asdict(r) for r in rows]).to_string(index=False)
