"""Where the ``ok`` clips came from, summarised from each clip's recorded origin in the ledger.

Two labs whose results differ often hold different audio: some clips downloaded, others imported from a
copy; YouTube serves several streams per video (AAC at 44.1 kHz, Opus at 48 kHz, lower rates for old
uploads) and a copy may have been re-encoded. ``audiobench status`` prints the ok clips of each split by way
in (:func:`sources_by_split`); ``--per-source`` adds the codec and sample rate (:func:`source_streams`).
"""
from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass
from typing import Any

from audiobench.data.ledger import Ledger

UNKNOWN = "?"
UNRECORDED = "(not recorded)"  # clips fetched or made before origins were recorded


def source_label(origin: dict[str, Any] | None) -> str:
    """``yt-dlp``, ``import <format>``, or :data:`UNRECORDED`: the way a clip came in."""
    if origin is None:
        return UNRECORDED
    if origin.get("via") == "import":
        return f"import {origin.get('format', UNKNOWN)}"
    return str(origin.get("via", UNKNOWN))


@dataclass(frozen=True)
class SplitSourceRow:
    """How many ``ok`` clips of a split came in one way."""

    split: str
    source: str
    clips: int


@dataclass(frozen=True)
class StreamRow:
    """How many ``ok`` clips came in one way with one codec and sample rate ("?" where none was recorded)."""

    via: str
    codec: str
    sample_rate: str
    clips: int


def sources_by_split(ledger: Ledger) -> list[SplitSourceRow]:
    """Per split, in the ledger's split order, the ok clips counted by :func:`source_label`."""
    origins = ledger.origins()
    counts: Counter[tuple[str, str]] = Counter(
        (row.split, source_label(origins.get(row.clip_id))) for row in ledger.statuses(status="ok"))
    order = list(ledger.splits())
    return [SplitSourceRow(split, source, n)
            for (split, source), n in sorted(counts.items(), key=lambda kv: (order.index(kv[0][0]), kv[0][1]))]


def source_streams(ledger: Ledger, *, split: str | None = None) -> list[StreamRow]:
    """One row per (way in, codec, sample rate) of the ok clips with a recorded origin, most clips first."""
    counts: Counter[tuple[str, str, str]] = Counter()
    for origin in ledger.origins(split=split).values():
        counts[(source_label(origin),
                *(str(origin[k]) if origin.get(k) is not None else UNKNOWN for k in ("codec", "sample_rate")))] += 1
    return [StreamRow(*key, clips=n) for key, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]


def rows_table(rows: list[SplitSourceRow] | list[StreamRow], *, empty: str) -> str:
    """Rows of either kind as an aligned text table, or ``empty`` when there are none."""
    if not rows:
        return empty
    import pandas as pd  # deferred: heavy, and only the printed table needs it

    return pd.DataFrame([asdict(r) for r in rows]).to_string(index=False)
