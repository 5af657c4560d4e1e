"""How a run's records name the storage root's files, so that a copied or moved root uses its own.

A run records its storage root as a path relative to its own folder (``"root": "../.."`` for
``<root>/runs/<id>/``) and its feature files relative to that root (``"toy/features/<id>/test.h5"``):
never an absolute path. A root copied or moved whole takes its runs along, and they find the copy's files;
a run kept outside its root (``train --out elsewhere``) finds the root it was trained on as long as both
stay where they are, else ``--root`` says where that root went.

Records of earlier versions named the feature files by the path they had then (absolute, or relative to
the working folder). Such a path is read by its layout tail, ``<dataset>/features/<feature-id>/<split>.h5``,
under the root the run lies in, never at the old place: the old root may be another root's files now.
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Any

from audiobench.core.errors import AudiobenchError, InputFormatError
from audiobench.core.layout import resolve_root, validate_name

ROOT_KEY = "root"  # in metrics.json: the storage root, relative to the run folder
RUNS = "runs"  # <root>/runs/: the folder of runs and studies (as core.layout.runs_dir names it)


def root_of_file(path: Path) -> Path:
    """The storage root of a feature file laid out as ``<root>/<dataset>/features/<id>/<split>.h5``."""
    return path.parents[3] if path.parent.parent.name == "features" and len(path.parents) > 3 else path.parent


def relative_to(path: Path, start: Path) -> str:
    """``path`` relative to ``start`` (both resolved), in forward slashes: what records hold."""
    return PurePosixPath(Path(os.path.relpath(path.resolve(), start.resolve())).as_posix()).as_posix()


def feature_records(files: Mapping[str, Path], run_dir: Path) -> dict[str, Any]:
    """``{"root": <root from run_dir>, "feature_files": {split: <path under the root>}}`` for metrics.json."""
    root = root_of_file(next(iter(files.values())))
    return {ROOT_KEY: relative_to(root, run_dir),
            "feature_files": {split: relative_to(path, root) for split, path in files.items()}}


def enclosing_root(folder: Path) -> Path | None:
    """The root a run or study folder lies in by the layout (the folder above its nearest ``runs/``)."""
    for parent in folder.resolve().parents:
        if parent.name == RUNS:
            return parent.parent
    return None


def record_path(path: Path, root: Path | None = None) -> str:
    """A run or study folder as records name it: relative to the root it lies in (``runs/<id>``), else its
    own name (the record lies in it or beside it)."""
    root = enclosing_root(path) if root is None else root
    if root is not None and path.resolve().is_relative_to(root.resolve()):
        return relative_to(path, root)
    return path.name


def feature_path(metrics: Mapping[str, Any], run_dir: Path, split: str, *,
                 root: str | os.PathLike[str] | None = None) -> Path:
    """The feature file of ``split`` a run was trained or scored on, in the root it belongs to.

    ``root``: where to look when the run lies outside its root and that root is not where the run's record
    says (``--root``). A run inside its root uses that root's file or fails: never another root's.
    """
    where = run_dir / "metrics.json"
    files = metrics.get("feature_files")
    dataset = (metrics.get("config") or {}).get("dataset")
    if not isinstance(files, Mapping) or not isinstance(files.get(split), str) or not isinstance(dataset, str):
        raise InputFormatError(f"{where}: records no {split} feature file (feature_files.{split}) or no dataset; "
                               "train the run again")
    recorded = files[split]
    link = metrics.get(ROOT_KEY)
    if isinstance(link, str):
        relative = _relative(recorded, where)
        candidates = [Path(os.path.normpath(run_dir / link))]  # the root itself, not <run>/..
        inside = all(part == ".." for part in PurePosixPath(link).parts)  # the run lies in its root
    else:  # an earlier version's record: the path then; read by its layout tail under this root
        relative = _layout_tail(recorded, dataset, split, where)
        found = enclosing_root(run_dir)
        candidates = [found] if found is not None else []
        inside = found is not None
    if not inside:
        candidates.append(resolve_root(root))
    for candidate in candidates:
        path = candidate / relative
        if path.is_file():
            return path
    hint = ("featurize the dataset again in that root" if inside else
            "give --root the storage root the run was trained with, or featurize the dataset again")
    shown = " nor ".join(os.path.normpath(c) for c in candidates)
    raise AudiobenchError(f"{run_dir}: its {split} features {relative} are not in the storage root {shown}; {hint}")


def _relative(recorded: str, where: Path) -> PurePosixPath:
    path = PurePosixPath(recorded)
    if path.is_absolute() or ".." in path.parts or not path.parts:
        raise InputFormatError(f"{where}: feature file {recorded!r} is not a path under the storage root")
    return path


def _layout_tail(recorded: str, dataset: str, split: str, where: Path) -> PurePosixPath:
    """``<dataset>/features/<id>/<split>.h5`` of an earlier record's path, or an error if it has none."""
    parts = PurePosixPath(Path(recorded).as_posix()).parts
    if len(parts) >= 4 and parts[-4] == dataset and parts[-3] == "features" and parts[-1].endswith(".h5"):
        validate_name(parts[-2], what="feature id", where=str(where))
        validate_name(parts[-1][:-3], what="split name", where=str(where))
        return PurePosixPath(*parts[-4:])
    raise InputFormatError(f"{where}: its {split} feature file {recorded} does not lie under a storage root's "
                           f"{dataset}/features/ folder; train the run again")
