"""What a dataset holds: per split and per class, how many clips are listed, ok, unavailable, failed, pending.

This is the dataset's ``validate()``: it returns the numbers as data; the CLI prints them as a table.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import pandas as pd

from audiobench.data.ledger import STATUSES, Ledger

ALL = "(all)"


@dataclass(frozen=True)
class CoverageRow:
    split: str
    label: str  # a class name, or "(all)" for the whole split
    listed: int
    ok: int
    unavailable: int
    failed: int
    pending: int


def coverage(ledger: Ledger, *, per_class: bool = True) -> list[CoverageRow]:
    """One row per split (label ``(all)``), then, with ``per_class``, one per class with a listed clip."""
    rows: list[CoverageRow] = []
    for split, counts in ledger.counts().items():
        rows.append(CoverageRow(split, ALL, sum(counts.values()), *(counts[s] for s in STATUSES[1:]),
                                counts["pending"]))
    if per_class:
        names = [c.name for c in ledger.classes()]
        by_class = ledger.class_counts()
        order = list(ledger.splits())
        for (split, idx), counts in sorted(by_class.items(), key=lambda kv: (order.index(kv[0][0]), kv[0][1])):
            rows.append(CoverageRow(split, names[idx], sum(counts.values()), *(counts[s] for s in STATUSES[1:]),
                                    counts["pending"]))
    return rows


def coverage_table(rows: list[CoverageRow]) -> str:
    """The rows as an aligned text table."""
    if not rows:
        return "(no clips listed)"
    return pd.DataFrame([asdict(r) for r in rows]).to_string(index=False)
