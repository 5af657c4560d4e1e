"""Score a run on another dataset's split (``evaluate --on DATASET:SPLIT``): same classes, same features.

SL-DCASE-17 has weak labels only in its test split, while DCASE 2017 task 4's testing and evaluation sets
label the same 17 classes strongly and share no clip with it. A model trained on one is scored on the
other only when the two agree on what each output means: the same class MIDs in the same order (checked
from both feature files, refused otherwise) and the same feature set (the run's feature id, looked up in
the storage root the run's own features lie in).

>>> target = dataset_target("dcase2017-task4:evaluation")
>>> target.dataset, target.split
('dcase2017-task4', 'evaluation')
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from audiobench.core.errors import AudiobenchError
from audiobench.core.layout import DatasetPaths, validate_name
from audiobench.core.roots import feature_path, root_of_file
from audiobench.data.cliplist import EvalSubset
from audiobench.data.fingerprint import split_fingerprint
from audiobench.data.roles import split_for
from audiobench.features.store import feature_file, split_path


@dataclass(frozen=True)
class DatasetTarget:
    """Every clip of ``split`` of ``dataset`` (a role name such as ``test`` is read as the split playing it)."""

    dataset: str
    split: str | None  # None: the split playing the test role

    @property
    def label(self) -> str:
        """The default evaluation name: ``evaluation-<dataset>-<split>.json``."""
        return f"{self.dataset}-{self.split or 'test'}"

    def resolve(self, metrics: Mapping[str, Any], run_dir: Path, *,
                root: str | os.PathLike[str] | None = None) -> tuple[Path, EvalSubset]:
        """The target split's feature file in the run's storage root, and all its rows; refused when the
        classes or their order differ from the run's."""
        own_test = feature_path(metrics, run_dir, "test", root=root)
        paths = DatasetPaths(root_of_file(own_test), self.dataset)
        feature_id = (metrics.get("config") or {}).get("feature_id")
        split = self.split or split_for(paths, "test")
        path = feature_file(paths, split, feature_id)
        check_same_classes(own_test, path)
        with h5py.File(path, "r") as f:
            n = int(f["clip_id"].shape[0])
        rows = np.arange(n, dtype=np.int64)
        where = f"{self.dataset}:{split}"
        return path, EvalSubset(where, n, n, rows, split_fingerprint(path, rows))


    def choosing_split(self, scored: Path) -> tuple[Path, str] | None:
        """The target dataset's split playing ``val``, when it has strong labels and is not the one scored:
        where event post-processing is chosen for it (the organisers' testing set for DCASE 2017 task 4's
        evaluation set), never on the clips scored."""
        paths = DatasetPaths(root_of_file(scored), self.dataset)
        try:
            val = split_for(paths, "val")
        except AudiobenchError:
            return None
        path = split_path(scored.parent, val)
        if path == scored or not path.is_file():
            return None
        with h5py.File(path, "r") as f:
            strong = "strong" in f
        return (path, f"{self.dataset}:{val}") if strong else None


def dataset_target(text: str) -> DatasetTarget:
    """``DATASET`` or ``DATASET:SPLIT`` (validated names) as a :class:`DatasetTarget`."""
    dataset, _, split = text.partition(":")
    validate_name(dataset, what="dataset name", where="--on")
    if split:
        validate_name(split, what="split name", where="--on")
    return DatasetTarget(dataset, split or None)


def classes_of(path: Path) -> list[tuple[str, str]]:
    """(MID, name) of every class of a feature file, in its output order."""
    with h5py.File(path, "r") as f:
        return [(str(m), str(n)) for m, n in zip(f.attrs["class_mids"], f.attrs["class_names"])]


def check_same_classes(trained: Path, target: Path) -> None:
    """Refuse, naming the first difference, unless both files have the same classes in the same order."""
    ours, theirs = classes_of(trained), classes_of(target)
    if [m for m, _ in ours] == [m for m, _ in theirs]:
        return
    if {m for m, _ in ours} == {m for m, _ in theirs}:
        at = next(i for i, (a, b) in enumerate(zip(ours, theirs)) if a[0] != b[0])
        raise AudiobenchError(f"{target}: the same classes as the run's features {trained} in another order "
                              f"(output {at} is {ours[at][1]!r} for the run, {theirs[at][1]!r} here); "
                              "scores would be read against the wrong labels")
    missing = [n for m, n in ours if m not in {t for t, _ in theirs}]
    extra = [n for m, n in theirs if m not in {o for o, _ in ours}]
    raise AudiobenchError(f"{target}: its classes differ from those the run was trained on ({trained}): "
                          f"{len(missing)} of the run's are missing ({', '.join(missing[:3]) or '-'}), "
                          f"{len(extra)} are new ({', '.join(extra[:3]) or '-'})")
