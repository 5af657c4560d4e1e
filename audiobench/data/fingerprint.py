"""A dataset split's clip-set fingerprint: 16 hex characters that change whenever the clips a split held change.

Two studies can only be compared number for number when they were measured on the same clips. The
fingerprint hashes (sha256), sorted by clip id, every clip's id, segment (start and end, in ms) and the
sha256 of its audio as adopted: the ledger's ``sha256`` of the downloaded or imported file where the ledger
has it, else the hash of the ``audio/`` file the features were computed from (recorded in the feature file).
The same clips with the same audio give the same fingerprint on any machine, whatever features were
computed from them (the feature set is recorded apart: :func:`audiobench.features.store.feature_set`); one
clip more, less, cut differently or with other audio gives another.

>>> fingerprint([("a_0_1000", 0.0, 1.0, "ab12"), ("b_0_1000", 0.0, 1.0, "cd34")])
'd91f4d506b22f7b9'
"""
from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from pathlib import Path

import h5py
import numpy as np

from audiobench.data.ledger import Ledger

Row = tuple[str, float, float, str]  # clip id, start (s), end (s), audio sha256
LENGTH = 16


def fingerprint(rows: Iterable[Row]) -> str:
    """The fingerprint of clips ``(clip id, start, end, audio sha256)``."""
    lines = [f"{cid}\t{round(start * 1000)}\t{round(end * 1000)}\t{sha}" for cid, start, end, sha in sorted(rows)]
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()[:LENGTH]


def split_rows(path: Path) -> list[Row]:
    """The rows of a feature split file, in file order, each clip's audio hash as adopted."""
    with h5py.File(path, "r") as f:
        ids = list(f["clip_id"].asstr()[()])
        start, end = f["start"][()].tolist(), f["end"][()].tolist()
        hashes = list(f["audio_sha256"].asstr()[()]) if "audio_sha256" in f else [""] * len(ids)
    adopted = _ledger_hashes(path)
    return [(cid, s, e, adopted.get(cid) or sha) for cid, s, e, sha in zip(ids, start, end, hashes)]


def split_fingerprint(path: Path, rows: Sequence[int] | np.ndarray | None = None) -> str:
    """The fingerprint of a feature split file, or of its rows ``rows`` only (a subset evaluated)."""
    found = split_rows(Path(path))
    if rows is not None:
        found = [found[int(i)] for i in rows]
    return fingerprint(found)


def _ledger_hashes(path: Path) -> dict[str, str]:
    """clip id -> the ledger's sha256 of its adopted audio, from the ledger of the dataset the file lies in
    (``<dataset>/features/<feature-id>/<split>.h5``); empty when there is none."""
    ledger = path.parent.parent.parent / "ledger.sqlite"
    if path.parent.parent.name != "features" or not ledger.is_file():
        return {}
    with Ledger(ledger) as db:
        return {s.clip_id: s.sha256 for s in db.statuses(status="ok") if s.sha256}
