"""What exists downstream of a dataset's download: its feature sets, and the runs and studies made from it.

``audiobench status`` prints these after the coverage table. Nothing here imports torch: it reads only
file names, JSON and the small ``length`` arrays of the feature files.

Runs are recognised by the files ``train`` and ``compare`` write under ``<root>/runs/``: a training run's
``config.json`` (``"kind": "run"``, written when it starts; older runs only have ``metrics.json``) and a
study's ``config.json`` (it holds ``study_id``), each naming the dataset. ``metrics.json`` is written last,
so a run folder without it was stopped (a kill, Ctrl-C, an error) before it finished. Runs written with
``--out`` outside ``<root>/runs/`` are not seen.
"""
from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from audiobench.features.store import check_shards, summarize_split
from audiobench.core.errors import AudiobenchError
from audiobench.core.layout import DatasetPaths, known_datasets, runs_dir  # noqa: F401 (known_datasets: re-exported)

# The file names train.py and compare.py write (importing them here would import torch).
CONFIG, METRICS, REPORT, TRIALS = "config.json", "metrics.json", "report.md", "trials"
_SPLIT_ORDER = {"train": 0, "val": 1, "test": 2}
_TRIAL = re.compile(r"^t(\d+)-(.+)$")  # trials/t<k>-<variant>/


@dataclass(frozen=True)
class FeatureRow:
    """One split file of a feature set; ``clips`` and ``frames`` are None when the file cannot be read."""

    feature_id: str
    split: str  # "(unfinished)": a feature folder without any finished split file yet
    clips: int | None
    frames: int | None  # the longest clip: the default training input length (``--frames``)
    dtype: str
    damaged: int = 0  # shards a reader would refuse (see :func:`feature_sets`)
    repair: str = ""  # the command that computes their rows again


@dataclass(frozen=True)
class RunRow:
    """A training run (one variant, one seed) or a study (paired trials of several variants)."""

    id: str  # the folder name under runs/
    kind: str  # "run" or "study"
    variants: tuple[str, ...]
    done: int  # finished training runs
    planned: int
    finished: bool


def require_dataset(paths: DatasetPaths) -> Path:
    """The dataset's ledger, or an error naming the closest dataset there is (see ``require_ledger``)."""
    return paths.require_ledger()


def feature_sets(paths: DatasetPaths, *, verify: bool = False) -> list[FeatureRow]:
    """One row per split file of every feature set under ``features/``, by feature id then split, with its
    damaged shards: missing ones, or with ``verify`` every check a reader makes (reads every feature once)."""
    rows: list[FeatureRow] = []
    if not paths.features.is_dir():
        return rows
    for folder in sorted(p for p in paths.features.iterdir() if p.is_dir()):
        files = sorted(folder.glob("*.h5"), key=lambda p: (_SPLIT_ORDER.get(p.stem, len(_SPLIT_ORDER)), p.stem))
        if not files:
            rows.append(FeatureRow(folder.name, "(unfinished)", None, None, ""))
        for path in files:
            try:
                s = summarize_split(path, require_shards=False)  # damaged shards are counted below
                shards = check_shards(path, read=verify)
                rows.append(FeatureRow(folder.name, s.split, s.clips, s.longest, s.dtype, len(shards.damaged),
                                       shards.hint if shards.damaged else ""))
            except (AudiobenchError, OSError, KeyError):
                rows.append(FeatureRow(folder.name, path.stem, None, None, "(unreadable)"))
    return rows


def runs_of(root: Path, dataset: str) -> list[RunRow]:
    """The runs and studies under ``<root>/runs/`` made from ``dataset``, by folder name."""
    folder = runs_dir(root)
    if not folder.is_dir():
        return []
    rows = []
    for run in sorted(p for p in folder.iterdir() if p.is_dir()):
        row = _read_run(run)
        if row is not None and row[0] == dataset:
            rows.append(row[1])
    return rows


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _read_run(run: Path) -> tuple[str, RunRow] | None:
    """(dataset, row) of a run or study folder; None for anything else (or unreadable)."""
    config = _read_json(run / CONFIG)
    if config is not None and "study_id" in config:
        variants = tuple(str(v) for v in config.get("variants") or ())
        trials = config.get("trials")
        if not isinstance(trials, int):
            return None
        done = 0
        for trial in (run / TRIALS).glob("t*-*"):
            match = _TRIAL.match(trial.name)
            if match and int(match[1]) < trials and match[2] in variants and (trial / METRICS).is_file():
                done += 1
        planned = trials * len(variants)
        row = RunRow(run.name, "study", variants, done, planned, done >= planned and (run / REPORT).is_file())
        return str(config.get("dataset")), row
    if config is None or config.get("kind") != "run":
        config = _read_json(run / METRICS)  # a run from before config.json was written: finished, or nothing
    train = config.get("config") if config is not None else None
    if not isinstance(train, dict) or "dataset" not in train:
        return None
    finished = (run / METRICS).is_file()
    row = RunRow(run.name, "run", (str(train.get("variant")),), int(finished), 1, finished)
    return str(train["dataset"]), row


def features_table(rows: list[FeatureRow], *, dataset: str) -> str:
    """The feature rows as an aligned text table (or the command that makes some)."""
    if not rows:
        return f"(no features; run `audiobench featurize {dataset}`)"
    import pandas as pd  # deferred: heavy, and only the printed table needs it

    frame = pd.DataFrame([asdict(r) for r in rows]).drop(columns="repair")
    frame = frame.rename(columns={"feature_id": "feature set", "damaged": "damaged shards"})
    table = frame.astype(object).where(frame.notna(), "-").to_string(index=False)
    repairs = sorted({f"{r.feature_id} {r.split}: {r.damaged} damaged shard(s); {r.repair}" for r in rows if r.damaged})
    return "\n".join([table, *repairs])


def runs_table(rows: list[RunRow]) -> str:
    """The runs and studies as an aligned text table."""
    if not rows:
        return "(no runs or studies)"
    import pandas as pd  # deferred: heavy, and only the printed table needs it

    return pd.DataFrame([{"run": r.id, "kind": r.kind, "variants": ",".join(r.variants),
                          "trained": f"{r.done}/{r.planned}",
                          "state": "finished" if r.finished else "unfinished"} for r in rows]).to_string(index=False)
