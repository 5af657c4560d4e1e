"""``audiobench import DATASET PATH...`` of copies: each copy's format detected, then adopted, or merged if a root.

The dispatcher above the two engines: the clips of copies in a reader's format are adopted
(:mod:`audiobench.data.imports.adopt`), another audiobench root is merged (:mod:`audiobench.data.imports.merge`).
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from audiobench.core.errors import AudiobenchError
from audiobench.core.layout import DatasetPaths, resolve_root, validate_name
from audiobench.data.imports import folder
from audiobench.data.imports.adopt import adopt_entries
from audiobench.data.imports.destination import require_dataset_folder
from audiobench.data.imports.merge import MergeResult, merge_roots
from audiobench.data.imports.result import ImportResult
from audiobench.data.ledger import Ledger
from audiobench.data.manifests import load_manifest
from audiobench.data.register import register_dataset


def import_copies(dataset: str, paths: Sequence[Path], *, root: Path | None = None, format: str = "auto",
                  split: str | None = None, index_mirror: str | None = None, jobs: int = 1,
                  quiet: bool = False, wait: bool = False) -> ImportResult | MergeResult:
    """Register ``dataset``'s lists (as fetch does) and adopt every listed clip the copies at ``paths`` hold.

    ``format`` is one of :data:`folder.FORMATS` (``auto`` detects each copy's); a copy that is another
    audiobench root is merged instead (:func:`~audiobench.data.imports.merge.merge_roots`). Returns the counts;
    raises :class:`AudiobenchError` on a usage error (an unknown format or split, a missing path). The import is
    the dataset's one writer: another one (or a featurize of it) running makes it fail at once naming that
    process, or with ``wait`` wait for it.

    >>> import_copies("sl-dcase17", [Path("dcase2017/audio")], index_mirror="lists").summary()  # doctest: +SKIP
    'sl-dcase17: dcase2017/audio read as dcase2017. 1578 clips adopted, 0 already had, ...'
    """
    if format not in folder.FORMATS:
        raise AudiobenchError(f"--format {format!r}: expected one of {', '.join(folder.FORMATS)}")
    if not paths:
        raise AudiobenchError("no copy given: name at least one file or folder to import from")
    copies = [Path(p) for p in paths]
    validate_name(dataset)
    require_dataset_folder(resolve_root(root), dataset)
    for copy in copies:
        if not copy.exists():
            raise AudiobenchError(f"{copy}: no such file or folder")
    chosen = {copy: folder.detect(copy) if format == "auto" else format for copy in copies}
    if folder.AUDIOBENCH in chosen.values():  # another root: merged, not read as copies
        return merge_roots(dataset, copies, root=root, quiet=quiet, wait=wait)
    total = None
    estimates = [folder.estimate(f, c) for c, f in chosen.items()]
    if None not in estimates:
        total = sum(e for e in estimates if e is not None)
    with DatasetPaths(resolve_root(root), load_manifest(dataset, root=root).name).writing(wait=wait):
        registration = register_dataset(dataset, root=root, mirror=index_mirror)
        dpaths = DatasetPaths(resolve_root(root), registration.dataset)
        result = ImportResult(registration.dataset, {str(c): f for c, f in chosen.items()})
        entries = (e for c, f in chosen.items() for e in folder.entries(f, c))
        with Ledger(dpaths.ledger) as ledger:
            check_split(ledger, split)
            adopt_entries(ledger, dpaths, entries, result, split=split, jobs=jobs, quiet=quiet, total=total)
    return result


def check_split(ledger: Ledger, split: str | None) -> None:
    splits = list(ledger.splits())
    if split is not None and split not in splits:
        raise AudiobenchError(f"--split {split!r}: the dataset has splits {', '.join(splits)}")
