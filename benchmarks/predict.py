"""Benchmark of ``audiobench predict`` on a long recording: peak memory against the file's length.

    .venv/bin/python benchmarks/predict.py [--hours 2] [--rate 44100] [--channels 2]

Trains a tiny run (one epoch on a synthetic dataset of 1.5 s clips, width 0.125), writes a ``--hours`` long
FLAC of tones over noise (``--rate`` Hz, ``--channels`` channels, written block by block), then scores it
with ``audiobench.predict`` in a process of its own and prints that process's peak resident memory
(:mod:`audiobench.testing.memory`), the wall time, and the peak against its floor (1 GB, whatever the length).
predict decodes, resamples, featurizes and scores the file ``block_frames`` frames at a time, so the peak
follows the block size and the outputs (segment probabilities and attention: a few floats per 0.96 s), not
the file: the whole file decoded would be ``hours * 3600 * rate * channels * 4`` bytes of float32 alone.
Exits 1 when the peak misses its floor.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

FLOOR_MB = 1024


def write_long_flac(path: Path, *, hours: float, rate: int, channels: int, seed: int = 0) -> None:
    """A ``hours`` long FLAC written a minute at a time (memory holds one minute)."""
    rng = np.random.default_rng(seed)
    total, block = int(hours * 3600 * rate), 60 * rate
    with sf.SoundFile(path, "w", samplerate=rate, channels=channels, format="FLAC", subtype="PCM_16") as f:
        for start in range(0, total, block):
            n = min(block, total - start)
            t = (start + np.arange(n)) / rate
            tone = 0.3 * np.sin(2 * np.pi * rng.uniform(200, 3000) * t)
            f.write(np.stack([tone + 0.02 * rng.standard_normal(n) for _ in range(channels)], axis=1)
                    .astype(np.float32))


def train_tiny_run(root: Path) -> Path:
    import torch

    import audiobench
    from audiobench.data.synth import synthesize
    from audiobench.features.featurize import featurize

    synthesize("tiny", root=root, train=8, val=4, test=4, duration=1.5,
               classes=["Car", "Ambulance (siren)", "Train horn"], quiet=True)
    featurize("tiny", root=root, quiet=True)
    torch.set_num_threads(1)
    run = audiobench.train("tiny", root=root, variant="att-self", out=root / "runs" / "att", epochs=1,
                           width=0.125, lr=1e-3, batch_size=4, quiet=True)
    return run.run_dir


def predict_in_own_process(run: Path, audio: Path) -> tuple[float, float, int]:
    """(peak RSS MB, wall s, segments scored) of a process that only predicts ``audio``."""
    code = ("import sys, time; from audiobench import predict; from audiobench.testing.memory import peak_rss_mb; "
            "t = time.perf_counter(); "
            f"(p,) = predict({str(run)!r}, [{str(audio)!r}]); "
            "print(peak_rss_mb(), time.perf_counter() - t, p.segments.shape[1])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    peak, wall, segments = out.stdout.split()[-3:]
    return float(peak), float(wall), int(segments)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=float, default=2.0)
    parser.add_argument("--rate", type=int, default=44100)
    parser.add_argument("--channels", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="audiobench-bench-") as tmp:
        tmp = Path(tmp)
        run = train_tiny_run(tmp / "root")
        audio = tmp / "long.flac"
        t0 = time.perf_counter()
        write_long_flac(audio, hours=args.hours, rate=args.rate, channels=args.channels)
        decoded_mb = args.hours * 3600 * args.rate * args.channels * 4 / 2**20
        print(f"wrote {args.hours:g} h of {args.rate} Hz, {args.channels} channel FLAC: "
              f"{audio.stat().st_size / 2**20:.0f} MB on disk, {decoded_mb:.0f} MB as float32 samples "
              f"({time.perf_counter() - t0:.0f} s)")
        peak, wall, segments = predict_in_own_process(run, audio)
    ok = peak <= FLOOR_MB  # whatever the length: memory must not follow it
    print(f"predict: {segments} segments in {wall:.1f} s ({args.hours * 3600 / wall:.0f}x real time)")
    print(f"{'predict peak RSS':<40} {peak:7.0f} MB  (floor {FLOOR_MB} MB)  {'PASS' if ok else 'FAIL'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
