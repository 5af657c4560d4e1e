"""From a manifest to a ledger: fetch the verified lists, parse them, build the splits, register the clips.

``register_dataset`` is the first half of ``fetch``: afterwards the ledger lists every clip of every split as
``pending`` with its weak labels (and events, for strongly labelled splits), and the download stage only
has to change statuses. Rerunning it adds nothing and changes no status.
"""
from __future__ import annotations

import hashlib
import os
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from audiobench.core.records import ClassInfo, Clip
from audiobench.core.errors import AudiobenchError
from audiobench.data.index import fetch_index, sha256_file
from audiobench.core.layout import DatasetPaths, resolve_root
from audiobench.data.ledger import Ledger
from audiobench.data.lists import parse_classes, parse_clips
from audiobench.data.manifests import Manifest, Partition, load_manifest

# The ledger meta keys that describe the registered lists (what `register_dataset` writes); other keys are one
# machine's records (a fetch's probe, say) and do not travel with the lists.
REGISTRATION_META = ("dataset", "source", "manifest", "splits", "roles", "partition", "index", "listed")


@dataclass(frozen=True)
class ListedDataset:
    """What the lists of a dataset hold: its classes and, per split in manifest order, its clips."""

    name: str
    classes: tuple[ClassInfo, ...]
    splits: Mapping[str, tuple[Clip, ...]]
    strong: Mapping[str, bool]

    def counts(self) -> dict[str, int]:
        return {split: len(clips) for split, clips in self.splits.items()}


@dataclass(frozen=True)
class Registration:
    """The outcome of ``register_dataset``: where things are and what the lists gave."""

    dataset: str
    ledger: Path
    index_files: tuple[Path, ...]
    listed: Mapping[str, int]  # split -> clips listed
    added: int  # clips new to the ledger in this run (0 on a rerun)


def register_dataset(dataset: str | os.PathLike[str], *, root: str | os.PathLike[str] | None = None,
                     mirror: str | os.PathLike[str] | None = None) -> Registration:
    """Fetch and verify a dataset's lists, then register every listed clip in its ledger as ``pending``.

    ``dataset`` is a manifest name (``"sl-dcase17"``) or a path to a manifest TOML. ``mirror`` replaces the
    official hosts for the list files (a folder or base URL; default ``$AUDIOBENCH_INDEX_MIRROR``).

    >>> register_dataset("sl-dcase17", root="data", mirror="/tmp/lists").listed   # doctest: +SKIP
    {'train': 1591, 'val': 1638, 'test': 626}
    """
    manifest = load_manifest(dataset, root=root)
    paths = DatasetPaths(resolve_root(root), manifest.name)
    index_files = fetch_index(manifest, paths, mirror=mirror)
    listed = list_dataset(manifest, paths.index)
    with Ledger(paths.ledger) as ledger:
        added = write_ledger(ledger, listed, manifest=manifest, index_files=index_files)
    return Registration(manifest.name, paths.ledger, tuple(index_files), listed.counts(), added)


def list_dataset(manifest: Manifest, index_dir: Path) -> ListedDataset:
    """Parse the (already verified) list files in ``index_dir`` into the manifest's classes and splits.

    A clip listed in two splits is an error: the ledger holds one row per clip, and a shared clip would leak
    training data into evaluation.
    """
    classes = load_classes(manifest, index_dir)
    splits = _parse_splits(manifest, index_dir, classes)
    for spec in manifest.splits:
        if not splits[spec.name]:
            raise AudiobenchError(f"split {spec.name!r} of {manifest.name} lists no clip ({index_dir / spec.file})")
    _check_disjoint(splits)
    return ListedDataset(manifest.name, tuple(classes), splits, {s.name: s.strong for s in manifest.splits})


def _parse_splits(manifest: Manifest, index_dir: Path, classes: Sequence[ClassInfo]) -> dict[str, tuple[Clip, ...]]:
    """Split name -> clips, in manifest order; a file shared by several splits is parsed once, then divided."""
    splits: dict[str, list[Clip]] = {}
    for file in dict.fromkeys(s.file for s in manifest.splits):
        group = [s for s in manifest.splits if s.file == file]
        clips = parse_clips(index_dir / file, group[0].format, classes=classes, split=group[0].name,
                            source=manifest.source)
        if group[0].share is None:
            splits[group[0].name] = clips
        else:
            assert manifest.partition is not None  # checked when the manifest was loaded
            splits.update(partition(clips, {s.name: s.share for s in group}, rule=manifest.partition))
    # A split declared weak keeps no events, even when its format has them.
    return {s.name: tuple(c if s.strong or c.events is None else replace(c, events=None) for c in splits[s.name])
            for s in manifest.splits}


def load_classes(manifest: Manifest, index_dir: Path) -> list[ClassInfo]:
    """The manifest's class list: inline, or parsed from its index file."""
    source = manifest.classes
    if source.inline is not None:
        return list(source.inline)
    assert source.file is not None and source.format is not None
    return parse_classes(index_dir / source.file, source.format)


def partition(clips: Sequence[Clip], shares: Mapping[str, float], *, rule: Partition) -> dict[str, list[Clip]]:
    """Divide one list between splits, in proportion to ``shares``; deterministic given ``rule.seed``.

    Clips are visited in the order of ``sha256("<seed>:<clip id>")``, which depends on nothing but the seed
    and the list (not on the machine, the Python version or the order of the file). ``random`` cuts that
    order at the cumulative shares (rounded). ``stratified`` is iterative stratification over the weak
    labels (Sechidis, Tsoumakas & Vlahavas, 2011): the class with the fewest unassigned clips goes first,
    each of its clips to the split that most lacks that class, so every class keeps about its share in
    every split (a random 10 % of balanced AudioSet can leave a class with no validation clip).
    Returns split -> clips, each in list order.
    """
    keyed = sorted(range(len(clips)), key=lambda i: hashlib.sha256(f"{rule.seed}:{clips[i].clip_id}".encode()).digest())
    names = list(shares)
    if rule.method == "random":
        assignment = _cut(keyed, [shares[n] for n in names])
    else:
        assignment = _stratify(keyed, [clips[i].weak for i in range(len(clips))], [shares[n] for n in names])
    out: dict[str, list[Clip]] = {n: [] for n in names}
    for i, clip in enumerate(clips):
        out[names[assignment[i]]].append(replace(clip, split=names[assignment[i]]))
    return out


def _cut(order: list[int], fractions: list[float]) -> list[int]:
    assignment = [0] * len(order)
    total, bounds = 0.0, []
    for f in fractions:
        total += f
        bounds.append(round(total * len(order)))
    part = 0
    for position, i in enumerate(order):
        while position >= bounds[part]:
            part += 1
        assignment[i] = part
    return assignment


def _stratify(order: list[int], labels: list[tuple[int, ...]], fractions: list[float]) -> list[int]:
    n_parts = len(fractions)
    by_class: dict[int, list[int]] = defaultdict(list)  # class -> clips in hash order
    for i in order:
        for c in labels[i]:
            by_class[c].append(i)
    left = {c: len(members) for c, members in by_class.items()}  # unassigned clips per class
    wanted = [{c: f * n for c, n in left.items()} for f in fractions]  # clips each part still lacks, per class
    size = [f * len(order) for f in fractions]  # clips each part still lacks in all
    assignment: dict[int, int] = {}

    def assign(i: int, part: int) -> None:
        assignment[i] = part
        size[part] -= 1
        for c in labels[i]:
            wanted[part][c] -= 1
            left[c] -= 1
            if left[c] == 0:
                del left[c]

    while left:
        rarest = min(left, key=lambda c: (left[c], c))
        for i in by_class[rarest]:
            if i not in assignment:
                assign(i, max(range(n_parts), key=lambda p: (wanted[p][rarest], size[p], -p)))
    for i in order:  # clips with no label at all
        if i not in assignment:
            assign(i, max(range(n_parts), key=lambda p: (size[p], -p)))
    return [assignment[i] for i in range(len(order))]


def _check_disjoint(splits: Mapping[str, Sequence[Clip]]) -> None:
    first: dict[str, str] = {}
    for split, clips in splits.items():
        for clip in clips:
            other = first.setdefault(clip.clip_id, split)
            if other != split:
                raise AudiobenchError(f"clip {clip.clip_id} is listed in both {other!r} and {split!r}")


def write_ledger(ledger: Ledger, listed: ListedDataset, *, manifest: Manifest,
                 index_files: Sequence[Path] = ()) -> int:
    """Record classes, splits and clips (``pending``) in ``ledger``; returns how many clips were new.

    Clips already in the ledger keep their status. A clip the ledger holds under another split (the split
    rule or the lists changed) is an error: silently keeping the old split would mix train and test. So is
    one it holds from another source (the manifest's ``[source]`` changed): its files came from elsewhere.
    """
    ledger.set_classes(listed.classes)
    known = {row.clip_id: row for row in ledger.statuses()}
    for split, clips in listed.splits.items():
        for clip in clips:
            row = known.get(clip.clip_id)
            if row is not None and row.split != split:
                raise AudiobenchError(
                    f"{ledger.path}: clip {clip.clip_id} is in split {row.split!r} there but "
                    f"{split!r} in the lists (the lists or the split rule changed); use a new --root"
                )
            if row is not None and row.source != clip.source:
                raise AudiobenchError(
                    f"{ledger.path}: clip {clip.clip_id} comes from source {row.source!r} there but "
                    f"{clip.source!r} in the manifest (its [source] changed); use a new --root"
                )
    added = sum(ledger.add_clips(clips) for clips in listed.splits.values())
    partition_rule = manifest.partition
    ledger.set_meta(  # the keys of REGISTRATION_META
        dataset=manifest.name,
        source="lists",
        manifest=manifest.path.name,
        splits={s.name: {"file": s.file, "format": s.format, "strong": s.strong, "share": s.share}
                for s in manifest.splits},
        roles=manifest.roles,
        partition=None if partition_rule is None else {"seed": partition_rule.seed, "method": partition_rule.method},
        index={p.name: sha256_file(p) for p in index_files},
        listed=listed.counts(),
    )
    return added
