"""``synthesize``: write the synthetic dataset in the layout of a fetched one (ledger + 16 kHz FLACs).

The main process plans every clip (labels need no audio), registers the clips in the ledger, then hands
chunks of plans to workers that render and write FLACs; only the main process writes the ledger. A clip
counts as done when its status is ``ok``, its audio record exists and its file is there, so a killed run
resumes where it stopped, and a rerun of a finished dataset does nothing.
"""
from __future__ import annotations

from collections.abc import Sequence

import hashlib
import os
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from audiobench.core.records import AudioRecord, ClassInfo
from audiobench.core.errors import AudiobenchError
from audiobench.core.layout import AUDIO_RATE, DatasetPaths, ensure_writable_dir, resolve_root, write_atomic
from audiobench.data.ledger import Ledger
from audiobench.core.parallel import map_unordered
from audiobench.data.resample import audio_relpath, encode_flac
from audiobench.data.synth.scene import SPLITS, ClipPlan, plan_clip, render_clip
from audiobench.data.synth.targets import TARGETS

# Bump when a change to the generator changes any sample: a dataset records the version that made it.
GENERATOR_VERSION = 1
CLASSES: tuple[ClassInfo, ...] = tuple(ClassInfo(s.mid, s.name) for s in TARGETS)
MAX_DURATION = 60.0


@dataclass(frozen=True)
class SynthResult:
    """What a ``synthesize`` call left on disk."""

    dataset: str
    path: Path  # the dataset folder
    seed: int
    splits: dict[str, int]  # split -> clips
    events: int  # labelled (target) events over all clips
    generated: int  # clips rendered and written by this call
    already_done: int  # clips a previous run had finished
    audio_seconds: float  # seconds of audio written by this call
    elapsed: float  # wall-clock seconds of this call

    @property
    def realtime_factor(self) -> float:
        """Seconds of audio written per wall-clock second (0 when nothing was written)."""
        return self.audio_seconds / self.elapsed if self.generated and self.elapsed > 0 else 0.0


@dataclass(frozen=True)
class _Written:
    clip_id: str
    split: str
    samples: int
    size: int
    sha256: str


def synthesize(name: str = "synth", *, root: str | os.PathLike[str] | None = None, seed: int = 0,
               train: int = 600, val: int = 200, test: int = 200, duration: float = 10.0,
               classes: Sequence[str] | None = None, jobs: int = 1, quiet: bool = False,
               wait: bool = False) -> SynthResult:
    """Generate (or finish generating) the synthetic SL-DCASE-17-like dataset ``name`` under ``root``.

    ``train``/``val``/``test`` are clip counts, ``duration`` the clip length in seconds. Every split is
    strongly labelled. ``classes`` (names or MIDs of :data:`CLASSES`) keeps only those target classes, in
    that order: a smaller, quicker problem (the demo uses six). The same seed gives byte-identical FLACs
    whatever ``jobs`` is. Rerunning with other parameters into an existing dataset is refused (use a new
    ``name``). The run is the dataset's one writer: another one running makes it fail naming that process,
    or with ``wait`` wait for it.

    >>> result = synthesize("synth-small", root="audiobench-data", train=60, val=20, test=20)  # doctest: +SKIP
    >>> result.splits, result.events                                                          # doctest: +SKIP
    ({'train': 60, 'val': 20, 'test': 20}, 180)
    """
    started = time.perf_counter()
    counts = {"train": train, "val": val, "test": test}
    _check_arguments(seed, counts, duration)
    subset = select_classes(classes)
    dataset_classes = [CLASSES[i] for i in subset] if subset is not None else list(CLASSES)
    paths = DatasetPaths(resolve_root(root), name)
    ensure_writable_dir(paths.dir)
    meta = {"kind": "synthetic", "generator": "audiobench.data.synth", "generator_version": GENERATOR_VERSION,
            "seed": seed, "duration": duration, "sample_rate": AUDIO_RATE, "splits": counts,
            "classes": [c.mid for c in dataset_classes]}
    plans = [plan_clip(seed, split, i, duration, subset) for split in SPLITS for i in range(counts[split])]
    with paths.writing(wait=wait), Ledger(paths.ledger) as ledger:
        _claim(ledger, meta, paths)
        ledger.set_classes(dataset_classes)
        ledger.add_clips(plan.to_clip() for plan in plans)
        _write_label_lists(paths, plans)
        done = _finished(ledger, paths)
        todo = [p for p in plans if p.clip_id not in done]
        for split in SPLITS:
            ensure_writable_dir(paths.audio / split)
        chunk = max(1, min(16, len(todo) // (4 * jobs) or 1))
        chunks = [todo[i:i + chunk] for i in range(0, len(todo), chunk)]
        work = partial(_render_chunk, str(paths.dir))
        origin = {"via": "synth", "seed": seed, "codec": "flac", "sample_rate": AUDIO_RATE, "channels": 1}
        try:
            for written in map_unordered(work, chunks, jobs=jobs, desc=f"synth {name}", quiet=quiet, unit="chunk"):
                for w in written:  # status first: a kill between the two writes only means re-rendering w
                    ledger.mark(w.clip_id, "ok", bytes=w.size, sha256=w.sha256, duration=w.samples / AUDIO_RATE,
                                origin=origin)
                    ledger.record_audio(AudioRecord(w.clip_id, audio_relpath(w.split, w.clip_id), w.samples,
                                                    w.samples / AUDIO_RATE, False, None))
        except OSError as exc:
            raise AudiobenchError(f"cannot write audio under {paths.audio}: {exc.strerror or exc}; "
                                  f"the clips written so far are kept, rerun to finish") from None
    return SynthResult(name, paths.dir, seed, counts, sum(len(p.events) for p in plans), len(todo),
                       len(plans) - len(todo), sum(p.samples for p in todo) / AUDIO_RATE,
                       time.perf_counter() - started)


def select_classes(classes: Sequence[str] | None) -> tuple[int, ...] | None:
    """TARGETS indices of the named classes (names or MIDs), in the order given; None keeps all."""
    if classes is None:
        return None
    by_key = {c.name.lower(): i for i, c in enumerate(CLASSES)} | {c.mid: i for i, c in enumerate(CLASSES)}
    picked = []
    for key in classes:
        index = by_key.get(key) if key in by_key else by_key.get(key.strip().lower())
        if index is None:
            raise AudiobenchError(f"synth has no class {key!r}; choose from: {', '.join(c.name for c in CLASSES)}")
        if index in picked:
            raise AudiobenchError(f"class {key!r} is asked for twice")
        picked.append(index)
    if not picked:
        raise AudiobenchError("--classes names no class")
    return tuple(picked)


def _check_arguments(seed: int, counts: dict[str, int], duration: float) -> None:
    if seed < 0:
        raise AudiobenchError(f"--seed must be 0 or more, got {seed}")
    for split, count in counts.items():
        if count < 0:
            raise AudiobenchError(f"--{split} must be 0 or more, got {count}")
    if sum(counts.values()) == 0:
        raise AudiobenchError("nothing to generate: --train, --val and --test are all 0")
    if not 1.0 <= duration <= MAX_DURATION:
        raise AudiobenchError(f"--duration must be between 1 and {MAX_DURATION:g} seconds, got {duration:g}")


def _claim(ledger: Ledger, meta: dict[str, object], paths: DatasetPaths) -> None:
    """Record what this dataset is; refuse to mix clips of different parameters (or a fetched dataset) in it."""
    existing = ledger.meta()
    if existing and "classes" not in existing:  # made before --classes existed: it holds all of them
        existing["classes"] = [c.mid for c in CLASSES]
    if not existing and ledger.counts():
        raise AudiobenchError(f"{paths.dir} already holds a dataset that synth did not make; choose another --name")
    if existing.get("kind") not in (None, "synthetic"):
        raise AudiobenchError(f"{paths.dir} holds a {existing.get('kind')} dataset; choose another --name")
    differ = [f"{k}={existing[k]!r} (asked {v!r})" for k, v in meta.items() if k in existing and existing[k] != v]
    if differ:
        raise AudiobenchError(f"{paths.dir} was generated with {', '.join(differ)}; "
                              f"rerun with the same options to finish it, or choose another --name")
    ledger.set_meta(**meta)


def _write_label_lists(paths: DatasetPaths, plans: list[ClipPlan]) -> None:
    """``index/<split>_strong_labels.tsv``: the strong labels as a plain list, for tools that don't read SQLite."""
    ensure_writable_dir(paths.index)
    subset = plans[0].classes if plans else None
    names = [(CLASSES[i].mid, CLASSES[i].name) for i in (subset if subset is not None else range(len(CLASSES)))]
    for split in SPLITS:
        lines = ["clip_id\tytid\tstart\tend\tonset\toffset\tmid\tlabel"]
        for plan in (p for p in plans if p.split == split):
            lines += [f"{plan.clip_id}\t{plan.ytid}\t0.000\t{plan.duration:.3f}\t{e.onset:.7f}\t{e.offset:.7f}\t"
                      f"{names[e.class_index][0]}\t{names[e.class_index][1]}" for e in plan.events]
        write_atomic(paths.index / f"{split}_strong_labels.tsv", ("\n".join(lines) + "\n").encode())


def _finished(ledger: Ledger, paths: DatasetPaths) -> set[str]:
    ok = {s.clip_id for s in ledger.statuses(status="ok")}
    return {cid for cid, rec in ledger.audio().items() if cid in ok and (paths.dir / rec.path).is_file()}


def _render_chunk(dataset_dir: str, plans: list[ClipPlan]) -> list[_Written]:
    """Worker: render and write each clip of a chunk (atomic writes); returns what the ledger needs."""
    out = []
    for plan in plans:
        data = encode_flac(render_clip(plan))
        write_atomic(Path(dataset_dir) / audio_relpath(plan.split, plan.clip_id), data)
        out.append(_Written(plan.clip_id, plan.split, plan.samples, len(data), hashlib.sha256(data).hexdigest()))
    return out
