"""A dataset from a folder of your own audio and a labels table (``audiobench import NAME DIR --labels ...``).

The import writes what a published dataset has, so every later stage treats it as one:

- ``<root>/<NAME>/index/*.csv``: the clips in the ``local-clips`` list format (``audiobench.data.lists.local``),
  one list per split of a split table, or one list shared by ``fold1`` .. ``foldK`` (``--folds K``);
- ``<root>/<NAME>/manifest.toml``: ``[source] kind = "local"``, the classes (taken from the labels in order of
  first appearance, or ``--classes FILE``), the lists with their sha256, the splits, and for folds a
  ``[partition]`` (stratified, seeded: the rule that divides AudioSet's lists) with ``share = 1/K`` each;
- the ledger, registered from that manifest exactly as ``fetch`` registers a published one, then each file
  copied into ``raw/<split>/<clip_id><ext>`` (temporary name, then rename) and marked ``ok`` with its origin
  ``{"via": "import", "format": "folder", "copy": DIR, "member": <path in DIR>, "sha256": ...}``.

With folds, each ``k`` also gets a *rotation*, the dataset ``<NAME>-fold<k>``: fold ``k`` is its ``test`` split,
the next fold (cyclically) its ``val`` split and the other folds its ``train`` split, so ``compare`` runs on each
fold as test in turn without knowing about folds (training reads one feature file per role). A rotation
hard-links the raw files of ``<NAME>`` where the file system allows.

Each file is one clip, its segment the whole file (``0`` to its duration). Its recording ID is made from its
path in the folder (``audiobench.data.sources.local``); a path that leaves the folder (``..``, an absolute path,
a link pointing out) is an error. Every error in a table is one line naming the table and the line; nothing is
written until all tables and files have been read and checked, the folds divided (on a scratch copy outside the
root, by the parser and partition that registration runs) and every dataset to be written checked for one of
that name made from other inputs (:func:`_plan`). A rerun with the same inputs changes nothing;
other inputs under the same name are refused (choose another name or root).
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import re
import tempfile
import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath

from audiobench.core.errors import AudiobenchError, InputFormatError
from audiobench.core.layout import (DatasetPaths, atomic_path, ensure_writable_dir, resolve_root, validate_name,
                                    write_atomic)
from audiobench.core.parallel import map_unordered
from audiobench.core.progress import progress
from audiobench.data.decode import DecodeError, codec_of, read_audio
from audiobench.data.imports.copying import CopyMismatch, copy_checked
from audiobench.data.imports.destination import require_dataset_folder
from audiobench.data.ledger import Ledger
from audiobench.data.lists._common import csv_fields, format_error, numbered_lines, seconds
from audiobench.data.lists.local import HEADER
from audiobench.data.lists import parse_clips
from audiobench.data.manifests import OWN_MANIFEST, ROLES, load_manifest
from audiobench.data.register import load_classes, partition, register_dataset
from audiobench.data.sources import LOCAL
from audiobench.data.sources.local import local_id_for

FORMAT = "local-clips"
FOLDS_FILE = "clips.csv"
FOLDS_MIN, FOLDS_MAX = 3, 99  # a test, a validation and a training fold at least
_LABEL_SPLIT = re.compile(r"[;,]")
_SUFFIX = re.compile(r"^\.[a-z0-9]{1,5}$")
_BIDI = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


@dataclass
class OwnDataResult:
    """What an import of your own data made: where, its classes, clips per split, files copied."""

    name: str
    root: Path
    manifest: Path
    classes: tuple[str, ...]
    splits: dict[str, int]  # split -> clips
    copied: int = 0  # files copied into NAME's raw/ (its rotations link them: not counted again)
    already: int = 0  # files already imported, unchanged
    folds: int | None = None
    rotations: list[str] = field(default_factory=list)  # with folds: the datasets NAME-fold1 .. NAME-foldK

    @property
    def empty(self) -> bool:
        """Nothing was taken and nothing was there already: the command exits non-zero."""
        return self.copied + self.already == 0

    def summary(self) -> str:
        splits = ", ".join(f"{s} {n}" for s, n in self.splits.items())
        return (f"imported {self.name} into {self.root / self.name}: {sum(self.splits.values())} clips "
                f"({splits}), {len(self.classes)} classes; {self.copied} files copied, {self.already} already "
                f"there; manifest {self.manifest}"
                + (f"; folds as test in turn: datasets {', '.join(self.rotations)}" if self.rotations else ""))

    def to_dict(self) -> dict[str, object]:
        return {"name": self.name, "root": str(self.root), "manifest": str(self.manifest),
                "classes": list(self.classes), "splits": dict(self.splits), "copied": self.copied,
                "already": self.already, "folds": self.folds, "rotations": list(self.rotations)}


@dataclass(frozen=True)
class _File:
    """One labelled file: where the labels table names it, its labels and events, what decoding found."""

    relative: str  # POSIX path inside the folder
    line: int
    labels: tuple[str, ...]
    events: tuple[tuple[float, float, str, int], ...] = ()  # onset, offset, label, line of the strong table
    source_id: str = ""
    duration: float = 0.0
    sha256: str = ""
    split: str = ""
    stream: tuple[tuple[str, object], ...] = ()  # codec, sample rate, channels: recorded in the clip's origin


def import_own_data(name: str, folder: Path, *, labels: Path, strong: Path | None = None,
                    splits: Path | None = None, folds: int | None = None, classes: Path | None = None,
                    root: Path | None = None, jobs: int = 1, quiet: bool = False, seed: int = 0,
                    wait: bool = False) -> OwnDataResult:
    """Make dataset ``name`` from the audio files in ``folder`` (see the module docstring).

    ``labels``: ``file,labels``; ``strong``: ``file,onset,offset,label``; ``splits``: ``file,split`` (or ``folds``:
    that many stratified folds, seeded by ``seed``); ``classes``: one class name a line. Everything is read and
    checked first (:func:`_plan`); only then is anything written under ``root``, each dataset as its one
    writer: another process writing it makes the import fail naming that process, or with ``wait`` wait for it.
    """
    validate_name(name)
    require_dataset_folder(resolve_root(root), name)  # before any other check: the one a wrong name fails
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise AudiobenchError(f"{folder}: no such folder")
    if (splits is None) == (folds is None):
        raise AudiobenchError("give either a split table (--splits FILE) or a number of folds (--folds K)")
    if folds is not None and not FOLDS_MIN <= folds <= FOLDS_MAX:
        raise AudiobenchError(f"--folds {folds}: need {FOLDS_MIN} to {FOLDS_MAX} folds (a test, a validation and a "
                              "training fold at least)")
    for k in range(1, (folds or 0) + 1):
        validate_name(fold_dataset(name, k), where=f"--folds {folds}")
    root_path = resolve_root(root)
    for k in range(1, (folds or 0) + 1):
        require_dataset_folder(root_path, fold_dataset(name, k))
    datasets = _plan(name, folder, root_path, labels=Path(labels), strong=strong, splits=splits, folds=folds,
                     classes=classes, jobs=jobs, quiet=quiet, seed=seed)
    result = OwnDataResult(name, root_path, root_path / name / OWN_MANIFEST, tuple(datasets[0].classes), {},
                           folds=folds)
    result.splits, result.copied, result.already = _make(datasets[0], folder, quiet=quiet, wait=wait)
    # one bar for the rotations, not one per rotation: their files are hard links of the first dataset's
    for rotation in progress(datasets[1:], desc="folds", quiet=quiet, unit="dataset"):
        _make(rotation, folder, quiet=True, wait=wait)
        result.rotations.append(rotation.paths.name)
    return result


def fold_dataset(name: str, k: int) -> str:
    """The dataset of the ``k``-th rotation of ``name``'s folds: fold ``k`` is its ``test`` split."""
    return f"{name}-fold{k}"


def _role(fold: int, k: int, folds: int) -> str:
    """In rotation ``k``: fold ``k`` tests, the next one (cyclically) validates, the others train."""
    if fold == k:
        return "test"
    return "val" if fold == k % folds + 1 else "train"


@dataclass(frozen=True)
class _Dataset:
    """One dataset the import writes, decided in full before anything is written."""

    paths: DatasetPaths
    files: tuple[_File, ...]  # with their split (a fold, or a rotation's role)
    classes: tuple[str, ...]
    manifest: str
    lists: dict[str, str]  # list file name -> text
    base: DatasetPaths | None = None  # a rotation: the dataset whose folds (and raw files) it takes


def _plan(name: str, folder: Path, root: Path, *, labels: Path, strong: Path | None, splits: Path | None,
          folds: int | None, classes: Path | None, jobs: int, quiet: bool, seed: int) -> list[_Dataset]:
    """Read and check every table and file, divide the folds, and check that no dataset of these names holds
    other data: the datasets to write (``name``, then its rotations), or an error with nothing written."""
    files = _read_labels(labels, folder)
    class_names = _read_classes(Path(classes), files, labels) if classes else \
        list(dict.fromkeys(label for f in files for label in f.labels))
    if strong is not None:
        files = _read_strong(Path(strong), files)
    if splits is not None:
        files = _read_splits(Path(splits), files)
    if folds is not None and folds > len(files):
        raise AudiobenchError(f"--folds {folds}: {labels} names {len(files)} files, too few for {folds} folds (each "
                              f"fold needs a file); give --folds {FOLDS_MIN} to {len(files)}" if len(files) >= FOLDS_MIN
                              else f"--folds {folds}: {labels} names {len(files)} files; folds need at least "
                                   f"{FOLDS_MIN} (give a split table with --splits instead)")
    files = _decode_all(files, folder, labels=labels, jobs=jobs, quiet=quiet)
    if strong is not None:
        _check_events(Path(strong), files)
    made_by = f"audiobench import {name} {folder}"
    def dataset(paths: DatasetPaths, members: list[_File], fold_count: int | None, what: str,
                base: DatasetPaths | None = None) -> _Dataset:
        lists = _lists(members, fold_count)
        manifest = _manifest(paths.name, class_names, lists, folds=fold_count, seed=seed, strong=strong is not None,
                             comment=f"Written by `{made_by}`: {what}.",
                             description=f"{len(members)} files of {folder}")
        _check_target(paths, manifest)
        return _Dataset(paths, tuple(members), tuple(class_names), manifest, lists, base)

    main = dataset(DatasetPaths(root, name), files, folds, "a folder of your own audio")
    if not folds:
        return [main]
    fold_of = _divide(main, folds, labels)
    main = replace(main, files=tuple(replace(f, split=f"fold{fold_of[f.source_id]}") for f in files))
    return [main] + [dataset(DatasetPaths(root, fold_dataset(name, k)),
                             [replace(f, split=_role(fold_of[f.source_id], k, folds)) for f in files], None,
                             f"rotation {fold_dataset(name, k)} of the folds of {name}", base=main.paths)
                     for k in range(1, folds + 1)]


def _divide(dataset: _Dataset, folds: int, labels: Path) -> dict[str, int]:
    """Recording ID -> fold, divided exactly as registering ``dataset``'s manifest will divide its list (the
    same parser and partition, run on a scratch copy outside the root); a fold left empty is an error."""
    with tempfile.TemporaryDirectory(prefix="audiobench-import-") as scratch:
        paths = DatasetPaths(Path(scratch), dataset.paths.name)
        paths.index.mkdir(parents=True)
        (paths.index / FOLDS_FILE).write_text(dataset.lists[FOLDS_FILE], encoding="utf-8")
        (paths.dir / OWN_MANIFEST).write_text(dataset.manifest, encoding="utf-8")
        manifest = load_manifest(paths.dir / OWN_MANIFEST)
        clips = parse_clips(paths.index / FOLDS_FILE, FORMAT, classes=load_classes(manifest, paths.index),
                            split="fold1", source=manifest.source)
    assert manifest.partition is not None  # a folds manifest always has one
    parts = partition(clips, {s.name: s.share for s in manifest.splits if s.share is not None},
                      rule=manifest.partition)
    empty = [split for split, members in parts.items() if not members]
    if empty:
        raise AudiobenchError(f"--folds {folds}: the stratified division of the {len(clips)} files of {labels} "
                              f"leaves {', '.join(empty)} empty; give fewer folds")
    return {clip.source_id: int(split[len("fold"):]) for split, members in parts.items() for clip in members}


def _make(dataset: _Dataset, folder: Path, *, quiet: bool, wait: bool = False) -> tuple[dict[str, int], int, int]:
    """Lists, manifest, ledger and raw files of one planned dataset, as its one writer; returns its clips per
    split, files copied and files already there."""
    with dataset.paths.writing(wait=wait):
        _write(dataset.paths, dataset.manifest, dataset.lists)
        registration = register_dataset(dataset.paths.dir / OWN_MANIFEST, root=dataset.paths.root)
        return (dict(registration.listed), *_copy_files(dataset.paths, folder, dataset.files, quiet=quiet,
                                                         base=dataset.base))


# -- the tables ---------------------------------------------------------------------------------------------
def _rows(path: Path, header: list[str]) -> list[tuple[int, list[str]]]:
    """(line, fields) of a CSV table after its header line, ``len(header)`` fields each."""
    if not path.is_file():
        raise AudiobenchError(f"{path}: no such file")
    rows = [(line, csv_fields(path, line, text, count=len(header), skipinitialspace=True))
            for line, text in _lines(path)]
    if not rows or [f.strip().lower() for f in rows[0][1]] != header:
        raise format_error(path, rows[0][0] if rows else 1, f"expected the header {','.join(header)}")
    if len(rows) == 1:
        raise format_error(path, rows[0][0], "the table has no row")
    return [(line, [f.strip() for f in fields]) for line, fields in rows[1:]]


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    """(line, text) of a table, refusing control characters: they would reach list files, the manifest, reports
    and terminals (a tab, an escape sequence, a NUL, a bidirectional override that reorders what is shown)."""
    for line, text in numbered_lines(path):
        bad = next((c for c in text if unicodedata.category(c) in ("Cc", "Zl", "Zp") or c in _BIDI), None)
        if bad is not None:
            raise format_error(path, line, f"control character {bad!r} at column {text.index(bad) + 1} of {text!r}")
        yield line, text


def _inside(path: Path, line: int, folder: Path, text: str) -> str:
    """``text`` as a POSIX path inside ``folder`` naming a file there, or an error naming the table and line."""
    relative = PurePosixPath(text.replace("\\", "/"))
    if not text or relative.is_absolute() or ".." in relative.parts or str(relative) == ".":
        raise format_error(path, line, f"file {text!r} must be a path inside {folder}")
    resolved, base = (folder / relative).resolve(), folder.resolve()
    if not resolved.is_relative_to(base):
        raise format_error(path, line, f"file {text!r} leads outside {folder}")
    if not resolved.is_file():
        raise format_error(path, line, f"no file {text!r} in {folder}")
    return str(relative)


def _read_labels(path: Path, folder: Path) -> list[_File]:
    files: dict[str, _File] = {}
    real: dict[Path, _File] = {}  # the file itself, whatever path (a link inside the folder) names it
    for line, (file, text) in _rows(path, ["file", "labels"]):
        relative = _inside(path, line, folder, file)
        if relative in files:
            raise format_error(path, line, f"file {relative!r} already on line {files[relative].line}")
        same = real.setdefault((folder / relative).resolve(), _File(relative, line, ()))
        if same.relative != relative:
            raise format_error(path, line, f"file {relative!r} is the file {same.relative!r} of line {same.line}")
        labels = tuple(label.strip() for label in _LABEL_SPLIT.split(text))
        if not text.strip() or any(not label for label in labels):
            raise format_error(path, line, f"{relative}: empty label in {text!r}")
        if len(set(labels)) != len(labels):
            raise format_error(path, line, f"{relative}: repeated label in {text!r}")
        files[relative] = _File(relative, line, labels)
    return list(files.values())


def _read_classes(path: Path, files: Sequence[_File], labels: Path) -> list[str]:
    """One class name a line, in the order of the file; every label of the labels table must be one."""
    if not path.is_file():
        raise AudiobenchError(f"{path}: no such file")
    classes: dict[str, int] = {}
    for line, text in _lines(path):
        name = text.strip()
        if _LABEL_SPLIT.search(name):
            raise format_error(path, line, f"class {name!r} contains ';' or ','")
        if name in classes:
            raise format_error(path, line, f"class {name!r} already on line {classes[name]}")
        classes[name] = line
    for f in files:
        for label in f.labels:
            if label not in classes:
                raise format_error(labels, f.line, f"{f.relative}: unknown label {label!r} (not in {path})")
    return list(classes)


def _read_strong(path: Path, files: list[_File]) -> list[_File]:
    by_file = {f.relative: f for f in files}
    events: dict[str, list[tuple[float, float, str, int]]] = {}
    for line, (file, onset_text, offset_text, label) in _rows(path, ["file", "onset", "offset", "label"]):
        relative = str(PurePosixPath(file.replace("\\", "/")))
        if relative not in by_file:
            raise format_error(path, line, f"file {file!r} is not in the labels table")
        onset = seconds(path, line, onset_text, what="onset")
        offset = seconds(path, line, offset_text, what="offset")
        if onset > offset:
            raise format_error(path, line, f"{relative}: onset {onset:g} after offset {offset:g}")
        if label not in by_file[relative].labels:
            raise format_error(path, line, f"{relative}: label {label!r} is not among its labels in the labels "
                                           f"table ({';'.join(by_file[relative].labels)})")
        events.setdefault(relative, []).append((round(onset, 3), round(offset, 3), label, line))
    return [replace(f, events=tuple(sorted(events.get(f.relative, ())))) for f in files]


def _check_events(path: Path, files: Sequence[_File]) -> None:
    """Every event must end within its file (known once the files are decoded)."""
    for f in files:
        for onset, offset, label, line in f.events:
            if offset > round(f.duration, 3):
                raise format_error(path, line, f"{f.relative}: event {label!r} {onset:g}-{offset:g} s ends after "
                                               f"the file ({f.duration:.3f} s)")


def _read_splits(path: Path, files: list[_File]) -> list[_File]:
    by_file = {f.relative: f for f in files}
    split_of: dict[str, tuple[str, int]] = {}
    for line, (file, split) in _rows(path, ["file", "split"]):
        relative = str(PurePosixPath(file.replace("\\", "/")))
        if relative not in by_file:
            raise format_error(path, line, f"file {file!r} is not in the labels table")
        validate_name(split, what="split name", where=f"{path} line {line}")
        if relative in split_of:
            raise format_error(path, line, f"file {relative!r} already on line {split_of[relative][1]}")
        split_of[relative] = (split, line)
    missing = [f for f in files if f.relative not in split_of]
    if missing:
        raise InputFormatError(f"{path}: no split for {missing[0].relative!r} (labels table line {missing[0].line})"
                               + (f" and {len(missing) - 1} more" if len(missing) > 1 else ""))
    return [replace(f, split=split_of[f.relative][0]) for f in files]


# -- the files ----------------------------------------------------------------------------------------------
def _decode_all(files: list[_File], folder: Path, *, labels: Path, jobs: int, quiet: bool) -> list[_File]:
    """Each file decoded once (its duration) and hashed; an undecodable one is an error naming it, and so is a
    second file with the same bytes (one recording in two clips could be tested on in one fold and trained on
    in another)."""
    def one(f: _File) -> tuple[str, float, str, tuple[tuple[str, object], ...]] | str:
        try:
            data = (folder / f.relative).read_bytes()
            audio, rate = read_audio(folder / f.relative, data=data)
        except (DecodeError, OSError) as exc:
            return f"{exc}"
        stream = (("codec", codec_of(data, PurePosixPath(f.relative).suffix)), ("sample_rate", rate),
                  ("channels", int(audio.shape[0])))
        return f.relative, audio.shape[1] / rate, hashlib.sha256(data).hexdigest(), stream

    found: dict[str, tuple[float, str, tuple[tuple[str, object], ...]]] = {}
    for outcome in map_unordered(one, files, jobs=jobs, backend="threading", desc="read", quiet=quiet, unit="file"):
        if isinstance(outcome, str):
            raise AudiobenchError(f"{outcome} (labelled in the labels table); nothing was imported")
        found[outcome[0]] = outcome[1:]
    ids: dict[str, str] = {}
    first: dict[str, _File] = {}  # sha256 -> the file first holding those bytes
    out = []
    for f in files:
        source_id = local_id_for(f.relative, where=f.relative)
        if source_id in ids:
            raise AudiobenchError(f"{f.relative} and {ids[source_id]} would both be recording {source_id!r} "
                                  "(names differing only in extension or in characters outside A-Z a-z 0-9 . _ -); "
                                  "rename one")
        ids[source_id] = f.relative
        duration, sha, stream = found[f.relative]
        other = first.setdefault(sha, f)
        if other is not f:
            raise format_error(labels, f.line, f"{f.relative} holds the same bytes as {other.relative} (line "
                                               f"{other.line}); list one of them")
        if round(duration, 3) <= 0:
            raise AudiobenchError(f"{folder / f.relative}: shorter than a millisecond")
        out.append(replace(f, source_id=source_id, duration=duration, sha256=sha, stream=stream))
    return out


def _lists(files: Sequence[_File], folds: int | None) -> dict[str, str]:
    """List file name -> its ``local-clips`` text: one shared by the folds, or one per split."""
    groups: dict[str, list[_File]] = {}
    for f in files:
        groups.setdefault(FOLDS_FILE if folds else f"{f.split}.csv", []).append(f)
    texts = {}
    order = {f"{role}.csv": i for i, role in enumerate(ROLES)}  # train, val, test first; then as they came
    for file, members in sorted(groups.items(), key=lambda item: order.get(item[0], len(order))):
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(HEADER)
        for f in sorted(members, key=lambda m: m.source_id):
            writer.writerow([f.source_id, "0.000", f"{f.duration:.3f}", ";".join(f.labels),
                             json.dumps([[on, off, label] for on, off, label, _line in f.events])])
        texts[file] = buffer.getvalue()
    return texts


def _toml(value: object) -> str:
    return json.dumps(value, ensure_ascii=False)  # a JSON string is a TOML basic string


def _manifest(name: str, classes: Sequence[str], lists: dict[str, str], *, folds: int | None, seed: int, strong: bool,
              comment: str, description: str) -> str:
    lines = [f"# {comment}", f"name = {_toml(name)}", f"description = {_toml(description)}",
             "", "[source]", f"kind = {_toml(LOCAL)}", "", "[classes]", "inline = ["]
    lines += [f"  {{ mid = {_toml(c)}, name = {_toml(c)} }}," for c in classes]
    lines += ["]"]
    for file, text in lists.items():
        lines += ["", "[[index]]", f"file = {_toml(file)}",
                  f"sha256 = {_toml(hashlib.sha256(text.encode()).hexdigest())}"]
    if folds:
        for k in range(1, folds + 1):
            lines += ["", f"[splits.fold{k}]", f"file = {_toml(FOLDS_FILE)}", f'format = "{FORMAT}"',
                      f"strong = {str(strong).lower()}", f"share = {1 / folds!r}"]
        lines += ["", "[partition]", f"seed = {seed}", 'method = "stratified"']
    else:
        for file in lists:
            split = file[: -len(".csv")]
            lines += ["", f"[splits.{split}]", f"file = {_toml(file)}", f'format = "{FORMAT}"',
                      f"strong = {str(strong).lower()}"]
    return "\n".join(lines) + "\n"


def _check_target(paths: DatasetPaths, manifest: str) -> None:
    """Refuse, before anything is written, a dataset of that name made from other inputs or by other means."""
    target = paths.dir / OWN_MANIFEST
    if target.is_file() and target.read_text(encoding="utf-8") != manifest:
        raise AudiobenchError(f"{target}: dataset {paths.name!r} was imported from other files or tables; choose "
                              "another name or --root (or delete that folder)")
    if paths.ledger.exists() and not target.is_file():
        raise AudiobenchError(f"{paths.dir}: holds dataset {paths.name!r} already (not an import of your own "
                              "data); choose another name or --root")


def _write(paths: DatasetPaths, manifest: str, lists: dict[str, str]) -> None:
    """The lists, then the manifest (checked by :func:`_check_target` beforehand)."""
    ensure_writable_dir(paths.index)
    for file, text in lists.items():
        write_atomic(paths.index / file, text, durable=True)
    write_atomic(paths.dir / OWN_MANIFEST, manifest, durable=True)


def _copy_files(paths: DatasetPaths, folder: Path, files: Sequence[_File], *, quiet: bool,
                base: DatasetPaths | None = None) -> tuple[int, int]:
    """Copy each file into ``raw/`` and mark its clip ok, with its origin; files already there are skipped.
    Returns (files copied, files already there).

    ``base``: the dataset whose folds a rotation takes; its raw files, already copied and checked, are
    hard-linked where the file system allows (a rotation then costs no disk space for raw files).
    """
    by_id = {f.source_id: f for f in files}
    copied = already = 0
    linked: dict[str, Path] = {}
    if base is not None:
        with Ledger(base.ledger) as ledger:
            linked = {r.source_id: base.dir / r.path for r in ledger.statuses(status="ok") if r.path}
    with Ledger(paths.ledger) as ledger:
        rows = ledger.statuses()
        for row in progress(rows, desc="import", quiet=quiet, unit="clip"):
            f = by_id[row.source_id]
            if row.status == "ok" and row.sha256 == f.sha256 and row.path and (paths.dir / row.path).is_file():
                already += 1
                continue
            suffix = PurePosixPath(f.relative).suffix.lower()
            relative = Path("raw") / row.split / f"{row.clip_id}{suffix if _SUFFIX.match(suffix) else ''}"
            if row.source_id in linked and _link(linked[row.source_id], paths.dir / relative):
                size = (paths.dir / relative).stat().st_size
            else:
                size = None
            try:
                size = size or copy_checked(folder / f.relative, paths.dir / relative, sha256=f.sha256)
            except CopyMismatch:
                raise AudiobenchError(f"{folder / f.relative}: changed while it was imported; run the import "
                                      "again") from None
            ledger.mark(row.clip_id, "ok", attempts=0, bytes=size, sha256=f.sha256, duration=f.duration,
                        path=str(relative), origin={"via": "import", "format": "folder", "copy": str(folder),
                                                    "member": f.relative, "sha256": f.sha256, **dict(f.stream)})
            copied += 1
    return copied, already


def _link(source: Path, target: Path) -> bool:
    """Hard-link ``source`` at ``target`` (by way of a temporary name); False where links are not possible."""
    ensure_writable_dir(target.parent)
    try:
        with atomic_path(target) as tmp:
            os.link(source, tmp)
    except OSError:
        return False
    return True


