"""What an import did, as data (``--json``) and as one paragraph."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


DAMAGED = "damaged"  # the category of a container (a tar shard) that is cut short or damaged


@dataclass
class RejectedEntry:
    copy: str
    member: str
    category: str
    reason: str
    clip_id: str | None = None  # the clip it was matched to, where one was


@dataclass
class ImportResult:
    """Counts of one import run; ``rejected`` counts entries by reason category."""

    dataset: str
    formats: dict[str, str] = field(default_factory=dict)  # copy -> format read
    adopted: int = 0
    already_had: int = 0  # clips ok before this run that the copies hold too
    identical: int = 0  # further copies of a clip adopted in this run, byte for byte the same
    duplicates: int = 0  # further good copies with other audio than the one adopted
    not_listed: int = 0
    other_split: int = 0  # listed, but not in --split
    missing: int = 0  # --source-template paths with no file
    label_disagreements: int = 0
    rejected: Counter = field(default_factory=Counter)
    rejected_entries: list[RejectedEntry] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)  # files of the copies passed over, and why

    @property
    def empty(self) -> bool:
        """Nothing adopted and nothing already there: the import gave the dataset nothing."""
        return self.adopted == 0 and self.already_had == 0

    def reject(self, copy: str, member: str, category: str, reason: str, clip_id: str | None = None) -> None:
        self.rejected[category] += 1
        self.rejected_entries.append(RejectedEntry(copy, member, category, reason, clip_id))

    def to_dict(self) -> dict[str, object]:
        return {
            "dataset": self.dataset, "formats": self.formats, "adopted": self.adopted,
            "already_had": self.already_had, "identical_copies": self.identical, "duplicates": self.duplicates,
            "not_listed": self.not_listed, "other_split": self.other_split, "missing": self.missing,
            "label_disagreements": self.label_disagreements, "rejected": dict(sorted(self.rejected.items())),
            "rejected_entries": [vars(e) for e in self.rejected_entries], "notices": self.notices,
        }

    def summary(self) -> str:
        read = "; ".join(f"{copy} read as {fmt}" for copy, fmt in self.formats.items())
        parts = [f"{self.adopted} clips adopted", f"{self.already_had} already had"]
        if self.identical or self.duplicates:
            parts.append(f"{self.identical} identical copies and {self.duplicates} duplicates with other audio "
                         "left (the first good copy wins)")
        if self.not_listed:
            parts.append(f"{self.not_listed} entries name no listed clip")
        if self.other_split:
            parts.append(f"{self.other_split} belong to another split")
        if self.missing:
            parts.append(f"{self.missing} have no file")
        if self.rejected:
            why = ", ".join(f"{n} {category}" for category, n in sorted(self.rejected.items()))
            parts.append(f"{sum(self.rejected.values())} rejected ({why})")
        damaged = [e.reason for e in self.rejected_entries if e.category == DAMAGED]
        if damaged:  # a container cut or damaged: which, where, and how much of it was read
            parts.append("damaged: " + "; ".join(damaged[:3]) + (f"; and {len(damaged) - 3} more (--json lists "
                                                                  "them)" if len(damaged) > 3 else ""))
        if self.label_disagreements:
            parts.append(f"{self.label_disagreements} adopted clips whose labels in the copy differ from the lists "
                         "(the lists win)")
        head = f"{self.dataset}: {read}. " if read else f"{self.dataset}: "
        skipped = "".join(f" Skipped {text}." for text in self.notices)
        return head + ", ".join(parts) + "." + skipped
