"""Small real feature files for trainer and compare tests, written with the cache's own writer."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from audiobench.features.store import SplitHeader, SplitWriter, split_path
from audiobench.core.records import ClassInfo, Clip, Event
from audiobench.features.vggish import event_frames, feature_id
from audiobench.core.layout import DatasetPaths
from audiobench.data.ledger import Ledger

CLASSES = tuple(ClassInfo(f"/m/toy{c}", f"toy {c}") for c in range(4))
FRAMES = 96  # about 1 s of 10 ms frames: 6 segments, fast on a narrow net


def _clip(rng: np.random.Generator, split: str, i: int, frames: int) -> tuple[Clip, np.ndarray]:
    """A clip whose events of class c raise mel bands [16c, 16c + 16) during their frames."""
    seconds = ((frames - 1) * 160 + 400) / 16000
    logmel = rng.normal(-3.0, 1.0, (frames, 64)).astype(np.float32)
    events = []
    for c in rng.choice(len(CLASSES), size=rng.integers(1, 3), replace=False):
        onset = float(rng.uniform(0, seconds * 0.7))
        offset = min(seconds, onset + float(rng.uniform(0.1, 0.4)))
        first, stop = event_frames(onset, offset, frames)
        logmel[int(first):int(stop), 16 * c:16 * c + 16] += 4.0
        events.append(Event(int(c), round(onset, 3), round(offset, 3)))
    if i == 0:
        events.append(Event(0, 0.0, 0.0))  # zero-length: "present, not localised"
    weak = tuple(sorted({e.class_index for e in events}))
    ytid = f"toy{split[:2]}{i:06d}"[:11].ljust(11, "x")
    return Clip(f"{ytid}_0_{round(seconds * 1000)}", split, ytid, 0.0, seconds, weak, tuple(events)), logmel


def write_features(root: Path, name: str = "toy", *, sizes=(48, 24, 24), strong_train: bool = True,
                   seed: int = 0, lengths: dict[str, list[int]] | None = None, ledger: bool = False,
                   splits: tuple[str, str, str] = ("train", "val", "test"),
                   strong: tuple[str, ...] = (), classes: tuple[ClassInfo, ...] = CLASSES) -> DatasetPaths:
    """train/val/test feature files through the cache's SplitWriter, as featurize writes them.

    ``ledger``: also a ledger listing the same clips, all ``ok`` (as if fetched), for ``status``. ``splits``:
    the names of the three splits (the first has strong labels with ``strong_train``; those named in
    ``strong`` have them too). ``classes``: the class list the files declare (events are drawn among the
    first four only).
    """
    paths = DatasetPaths(root, name)
    fid = feature_id()
    rng = np.random.default_rng(seed)
    for split, n in zip(splits, sizes):
        frames = (lengths or {}).get(split, [FRAMES] * n)
        has_strong = strong_train if split == splits[0] else split in strong
        header = SplitHeader(name, split, classes, has_strong, fid, "float32")
        path = split_path(paths.feature_dir(fid), split)
        path.parent.mkdir(parents=True, exist_ok=True)
        writer = SplitWriter(path, header, capacity=n, t_max=max(frames))
        made = [_clip(rng, split, i, frames[i]) for i in range(n)]
        if not has_strong:
            made = [(Clip(c.clip_id, c.split, c.source_id, c.start, c.end, c.weak, None), x) for c, x in made]
        writer.append([c for c, _ in made], [x for _, x in made])
        writer.commit()
        if ledger:
            with Ledger(paths.ledger) as db:
                db.set_classes(classes)
                db.add_clips(c for c, _ in made)
                for clip, _ in made:
                    db.mark(clip.clip_id, "ok")
    return paths
