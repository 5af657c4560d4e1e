"""Benchmark of the featurize stage and of the Dataset's reads; prints each ratio with its floor.

    .venv/bin/python benchmarks/featurize.py [--clips 300] [--jobs 2] [--repeats 3]

Builds ``--clips`` 10 s 16 kHz FLAC clips as a dataset (ledger + audio) in a temporary folder, then measures
in the same run, best of ``--repeats`` (the contenders take turns in each round, so a busy machine slows
them alike), after one warm-up of each (worker processes and their imports start once, for all alike):

1. ``featurize(jobs=2)``, HDF5 written, against a hand-written single-process loop of ``librosa.load`` +
   ``librosa.feature.melspectrogram`` (VGGish-like parameters) + an h5py write (floor 2.5x);
2. featurize against decoding alone: soundfile reading the same files in 2 joblib processes (floor 0.5x,
   speed ratio = decode time / featurize time);
3. the Dataset's random-order reads against raw ``f['logmel'][i]`` reads of the same file (floor 0.5x).

Exits 1 when a ratio misses its floor.
"""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import h5py
import numpy as np
import soundfile as sf

from audiobench.core.parallel import map_unordered
from audiobench.features.store import feature_file
from audiobench.core.records import AudioRecord, ClassInfo, Clip, Event
from audiobench.features.dataset import LogmelDataset
from audiobench.features.featurize import featurize
from audiobench.core.layout import DatasetPaths, clip_id_for
from audiobench.data.ledger import Ledger

RATE = 16_000
CLASSES = [ClassInfo(f"/t/bench{i}", f"Class {i}") for i in range(17)]


def make_dataset(root: Path, n: int, *, seconds: float = 10.0, seed: int = 0) -> DatasetPaths:
    """``n`` clips of tones and bursts over noise, strongly labelled, as synth/resample would leave them."""
    paths = DatasetPaths(root, "bench")
    paths.dir.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    samples = int(seconds * RATE)
    t = np.arange(samples) / RATE
    clips = []
    for i in range(n):
        ytid = f"bench{i:06d}"
        onset = float(rng.uniform(0, seconds - 1))
        events = (Event(i % 17, onset, onset + float(rng.uniform(0.2, 1.0))),)
        clips.append(Clip(clip_id_for(ytid, 0.0, seconds), "train", ytid, 0.0, seconds, (i % 17,), events))
    with Ledger(paths.ledger) as ledger:
        ledger.set_classes(CLASSES)
        ledger.add_clips(clips)
        (paths.audio / "train").mkdir(parents=True)
        for clip in clips:
            noise = rng.uniform(0.005, 0.05) * rng.standard_normal(samples)
            tone = rng.uniform(0.05, 0.5) * np.sin(2 * np.pi * rng.uniform(200, 3000) * t + 3 * np.sin(2 * np.pi * t))
            envelope = ((t > clip.events[0].onset) & (t < clip.events[0].offset)).astype(np.float64)
            x = np.clip(noise + tone * (0.2 + envelope), -1, 1).astype(np.float32)
            rel = f"audio/train/{clip.clip_id}.flac"
            sf.write(paths.dir / rel, x, RATE)
            ledger.mark(clip.clip_id, "ok")
            ledger.record_audio(AudioRecord(clip.clip_id, rel, samples, seconds, False))
    return paths


def best_of_rounds(repeats: int, contenders: dict[str, Callable[[], object]],
                   before: dict[str, Callable[[], object]] | None = None) -> dict[str, float]:
    """Fastest time of each contender over ``repeats`` rounds, every contender running once per round."""
    times: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(repeats):
        for name, run in contenders.items():
            (before or {}).get(name, lambda: None)()
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)
    for name, t in times.items():
        print(f"  {name:<10} rounds: {'  '.join(f'{x:.3f}' for x in t)} s")
    return {name: min(t) for name, t in times.items()}


def librosa_loop(files: list[Path], out: Path) -> None:
    """What one writes by hand: librosa load + mel spectrogram with VGGish-like parameters, one process."""
    import librosa

    with h5py.File(out, "w") as f:
        dset = f.create_dataset("logmel", shape=(len(files), 998, 64), dtype=np.float32, chunks=(1, 998, 64))
        for i, path in enumerate(files):
            y, _ = librosa.load(path, sr=RATE)
            mel = librosa.feature.melspectrogram(y=y, sr=RATE, n_fft=512, hop_length=160, win_length=400,
                                                 window="hann", center=False, power=1.0, n_mels=64, fmin=125,
                                                 fmax=7500, htk=True)
            dset[i, :mel.shape[1]] = np.log(mel.T + 0.01)


def _decode(path: Path) -> int:
    return len(sf.read(path, dtype="float32")[0])


def decode_only(files: list[Path], jobs: int) -> None:
    """Decoding alone, the floor of any featurizer: soundfile in ``jobs`` joblib (loky) processes.

    Through the same joblib configuration as featurize, so both use the same warm worker processes: loky
    replaces its workers whenever the configuration changes, and alternating two would time start-ups.
    """
    list(map_unordered(_decode, files, jobs=jobs, quiet=True))


def read_dataset(path: Path, order: np.ndarray) -> None:
    data = LogmelDataset(path, frames=998)
    for i in order:
        data[int(i)]


def read_raw(path: Path, order: np.ndarray) -> None:
    with h5py.File(path, "r") as f:
        for i in order:
            f["logmel"][int(i)]


def report(name: str, ratio: float, floor: float) -> bool:
    ok = ratio >= floor
    print(f"{name:<58} {ratio:6.2f}x  (floor {floor:.1f}x)  {'PASS' if ok else 'FAIL'}")
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=300)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="audiobench-bench-") as tmp:
        tmp = Path(tmp)
        t0 = time.perf_counter()
        paths = make_dataset(tmp / "data", args.clips)
        warm = make_dataset(tmp / "warm", 2 * args.jobs, seed=1)
        print(f"built {args.clips} clips of 10 s in {time.perf_counter() - t0:.1f} s")
        with Ledger(paths.ledger) as ledger:
            files = [paths.dir / r.path for r in ledger.audio().values()]

        start = time.perf_counter()
        featurize("bench", root=warm.root, jobs=args.jobs, quiet=True)  # starts the workers (and their imports)
        print(f"featurize, first call ({2 * args.jobs} clips, includes starting {args.jobs} workers): "
              f"{time.perf_counter() - start:.2f} s")
        decode_only(files[:4], args.jobs)
        librosa_loop(files[:2], tmp / "warm-librosa.h5")

        def clear_features() -> None:
            shutil.rmtree(paths.features, ignore_errors=True)

        best = best_of_rounds(args.repeats, {
            "featurize": lambda: featurize("bench", root=paths.root, jobs=args.jobs, quiet=True),
            "decode": lambda: decode_only(files, args.jobs),
            "librosa": lambda: librosa_loop(files, tmp / "librosa.h5"),
        }, before={"featurize": clear_features})
        t_feat, t_decode, t_librosa = best["featurize"], best["decode"], best["librosa"]

        path = feature_file(paths, "train")
        order = np.random.default_rng(0).permutation(args.clips)
        read_dataset(path, order[:8])
        best = best_of_rounds(args.repeats, {"dataset": lambda: read_dataset(path, order),
                                             "raw": lambda: read_raw(path, order)})
        t_dataset, t_raw = best["dataset"], best["raw"]

    per_clip = 1000 / args.clips
    print(f"featurize jobs={args.jobs}, HDF5 written   {t_feat:7.3f} s  ({t_feat * per_clip:.2f} ms/clip)")
    print(f"librosa loop, 1 process, h5py    {t_librosa:7.3f} s  ({t_librosa * per_clip:.2f} ms/clip)")
    print(f"decode only, {args.jobs} processes          {t_decode:7.3f} s  ({t_decode * per_clip:.2f} ms/clip)")
    print(f"Dataset reads, random order      {t_dataset:7.3f} s  ({t_dataset * 1e6 / args.clips:.0f} us/item)")
    print(f"raw f['logmel'][i], same order   {t_raw:7.3f} s  ({t_raw * 1e6 / args.clips:.0f} us/item)")
    ok = [
        report(f"(1) featurize jobs={args.jobs} vs librosa loop (speed-up)", t_librosa / t_feat, 2.5),
        report("(2) featurize vs decode only (decode time / featurize time)", t_decode / t_feat, 0.5),
        report("(3) Dataset random reads vs raw h5py reads", t_raw / t_dataset, 0.5),
    ]
    return 0 if all(ok) else 1


if __name__ == "__main__":
    sys.exit(main())
