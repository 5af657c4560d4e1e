"""What a folder holds (a run, a study, a dataset, a storage root, or other files), so that a command writes
only into a folder of its own kind: ``train --out``, ``compare --out``, ``run`` and ``import`` never overwrite
a study's config, a run's model or a dataset's ledger, nor mix their files with anything else's.

A folder that does not exist or is empty is anyone's; one of the command's own kind is continued (with the
same settings: the command checks those); anything else is refused in one line naming what it holds.
"""
from __future__ import annotations

import fnmatch
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from audiobench.core.errors import AudiobenchError

RUN, STUDY, DATASET = "run", "study", "dataset"
# What each kind keeps in its folder (hidden files: locks and temporary names of atomic writes).
OWN_FILES: dict[str, tuple[str, ...]] = {
    RUN: ("config.json", "metrics.json", "model.pt", "model.json", "training-curve.png", "test-predictions.npz",
          "logs", "evaluation-*.json", ".*"),
    STUDY: ("config.json", "trials", "attention", "report.md", "results.json", "*.csv", "*.tex", "*.png",
            "evaluation-*.json", "columns-*", ".*"),
    DATASET: ("manifest.toml", "index", "ledger.sqlite", "ledger.sqlite-*", "raw", "audio", "features", ".*"),
}
_DATASET_MARKS = ("ledger.sqlite", "manifest.toml")


def _json(path: Path) -> dict[str, Any] | None:
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def folder_kind(path: Path) -> str:
    """``"none"`` (missing, or empty but for hidden files), ``run``, ``study``, ``dataset``, ``"storage root"`` or ``"other"``."""
    if not path.is_dir() or all(p.name.startswith(".") for p in path.iterdir()):
        return "none"  # hidden files only: a lock or a temporary name, no one's work
    config = _json(path / "config.json") if (path / "config.json").is_file() else None
    if config is not None and "study_id" in config:
        return STUDY
    if config is not None and config.get("kind") == RUN or (path / "metrics.json").is_file():
        return RUN
    if (path / "trials").is_dir():
        return STUDY  # its config.json cut short: still a study, never a place for anything else
    if any((path / mark).exists() for mark in _DATASET_MARKS) or not stray_entries(path, DATASET):
        return DATASET  # a ledger or manifest, or only what a dataset holds (an import killed before its manifest)
    if (path / "runs").is_dir() or any((child / mark).exists() for child in path.iterdir() if child.is_dir()
                                       for mark in _DATASET_MARKS):
        return "storage root"
    return "other"


def stray_entries(path: Path, kind: str) -> list[str]:
    """The entries of ``path`` that a folder of ``kind`` does not hold, by name."""
    return sorted(p.name for p in path.iterdir() if not _own(p.name, OWN_FILES[kind]))


def _own(name: str, patterns: Iterable[str]) -> bool:
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in patterns)


def require_own_folder(path: Path, kind: str, *, option: str, fix: str) -> bool:
    """Refuse ``path`` unless it is missing, empty or a folder of ``kind`` holding nothing else.

    Returns whether it holds one of ``kind`` already (the caller then checks that its settings are the
    same). ``option``: what named the folder (``train --out``); ``fix``: the way out, said at the end.
    """
    found = folder_kind(path)
    if found == "none":
        return False
    if found != kind:
        what = {"other": f"other files ({', '.join(stray_entries(path, kind)[:3])})"}.get(found, f"a {found}")
        raise AudiobenchError(f"{option} {path}: the folder holds {what}, not a {kind} of this command's; {fix}")
    stray = stray_entries(path, kind)
    if stray:
        raise AudiobenchError(f"{option} {path}: the {kind} folder also holds {', '.join(stray[:3])}, which "
                              f"no {kind} writes; {fix}")
    return True


def differing(found: dict[str, Any], wanted: dict[str, Any], *, skip: Iterable[str] = ()) -> list[str]:
    """``key: found → wanted`` for each setting that differs (``skip``: keys that change no number)."""
    left_out = set(skip)
    return [f"{key} {found.get(key)!r} → {wanted.get(key)!r}" for key in dict.fromkeys([*found, *wanted])
            if key not in left_out and found.get(key) != wanted.get(key)]
