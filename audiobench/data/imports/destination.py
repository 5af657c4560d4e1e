"""Where an import writes: a dataset's own folder under the storage root, and nothing else's.

Checked by the library functions themselves (not only the command line), before anything is written, so a
script calling :func:`~audiobench.data.imports.copies.import_copies` cannot turn a run, a study, the root's
``runs/`` or ``weights/`` or a folder of other files into a dataset either.
"""
from __future__ import annotations

from pathlib import Path

from audiobench.core.errors import AudiobenchError
from audiobench.core.folders import DATASET, require_own_folder
from audiobench.core.layout import DatasetPaths, runs_dir, weights_dir


def require_dataset_folder(root: Path, dataset: str) -> None:
    """Refuse to import into a folder that holds a run, a study, the root's runs or weights, or other files."""
    paths = DatasetPaths(root, dataset)
    if paths.dir in (runs_dir(root), weights_dir(root)):
        raise AudiobenchError(f"import {dataset}: {paths.dir} is the storage root's folder of "
                              f"{paths.dir.name}, not a dataset's; choose another dataset name")
    require_own_folder(paths.dir, DATASET, option="import into", fix="choose another dataset name or --root")
