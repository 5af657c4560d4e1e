"""Benchmark of ``audiobench import`` from a parquet mirror, then ``resample``; prints the ratio with its floor.

    .venv/bin/python benchmarks/import.py [--clips 300] [--jobs 2] [--repeats 2]

Builds a Hugging Face-style parquet file of ``--clips`` 10 s clips, 48 kHz stereo 24-bit FLAC (tone over
noise), whose ``video_id`` are real SL-DCASE-17 IDs (the published lists under tests/data/reference serve as
the index mirror). Then, in the same run, best of ``--repeats`` rounds (the contenders take turns in each),
after one warm-up of each:

1. ``import_copies(jobs)`` then ``resample(jobs)`` into a fresh root: match, validate (decode), hash and
   write each clip, mark the ledger; then decode, mix to mono, soxr to 16 kHz and write FLAC;
2. a hand-written loop in ``jobs`` processes: pyarrow reads a share of the row groups, soundfile decodes,
   soxr resamples to 16 kHz mono, soundfile writes FLAC; no matching, validation, ledger or resumability.

Prints speed ratio = loop time / import+resample time (floor 0.8x), the CPU time of each (a busy machine
stretches wall time, not CPU time), and the peak RSS of an import run in a process of its own (its parquet
file's size beside it). Exits 1 when the ratio misses its floor.
"""
from __future__ import annotations

import argparse
import io
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import soundfile as sf
import soxr

from audiobench.core.layout import DatasetPaths
from audiobench.data.imports.copies import import_copies
from audiobench.data.ledger import Ledger
from audiobench.data.register import register_dataset
from audiobench.data.resample import resample
from audiobench.testing.reference import unpack_reference

DATASET, RATE, SECONDS, GROUP = "sl-dcase17", 48000, 10.0, 16


def listed_ids(mirror: Path, root: Path, n: int) -> list[str]:
    """``n`` IDs of the lists, each listed once with a 10 s segment."""
    register_dataset(DATASET, root=root, mirror=str(mirror))
    with Ledger(DatasetPaths(root, DATASET).ledger) as ledger:
        rows = [r for r in ledger.statuses() if r.end - r.start == SECONDS]
    counts: dict[str, int] = {}
    for r in rows:
        counts[r.source_id] = counts.get(r.source_id, 0) + 1
    return [r.source_id for r in rows if counts[r.source_id] == 1][:n]


def make_parquet(path: Path, ids: list[str], *, seed: int = 0) -> None:
    """The mirror's layout: ``video_id``, ``audio`` {bytes, path}, ``labels``; written a row group at a time."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(SECONDS * RATE)) / RATE
    schema = pa.schema([("video_id", pa.string()),
                        ("audio", pa.struct([("bytes", pa.binary()), ("path", pa.string())])),
                        ("labels", pa.list_(pa.string()))])
    with pq.ParquetWriter(path, schema) as writer:
        for start in range(0, len(ids), GROUP):
            batch = ids[start:start + GROUP]
            audio = []
            for ytid in batch:
                tone = 0.3 * np.sin(2 * np.pi * rng.uniform(200, 3000) * t)
                x = np.stack([tone + 0.02 * rng.standard_normal(t.size) for _ in range(2)], axis=1)
                buf = io.BytesIO()
                sf.write(buf, x.astype(np.float32), RATE, format="FLAC", subtype="PCM_24")
                audio.append({"bytes": buf.getvalue(), "path": f"{ytid}.flac"})
            writer.write_table(pa.table({"video_id": batch, "audio": audio, "labels": [[] for _ in batch]},
                                        schema=schema))


def import_and_resample(parquet: Path, mirror: Path, root: Path, jobs: int) -> None:
    result = import_copies(DATASET, [parquet], root=root, index_mirror=str(mirror), jobs=jobs, quiet=True)
    assert result.adopted, result.summary()
    assert not resample(DATASET, root=root, jobs=jobs, quiet=True).failed


def _loop_share(args: tuple[str, list[int], str]) -> tuple[int, float]:
    """(clips written, CPU seconds this worker spent)."""
    parquet, groups, out = args
    cpu = time.process_time()
    file = pq.ParquetFile(parquet)
    n = 0
    for g in groups:
        table = file.read_row_group(g, columns=["video_id", "audio"], use_threads=False)
        for ytid, audio in zip(table.column("video_id").to_pylist(), table.column("audio").to_pylist()):
            x, rate = sf.read(io.BytesIO(audio["bytes"]), dtype="float32", always_2d=True)
            y = soxr.resample(x.mean(axis=1), rate, 16000)
            sf.write(Path(out) / f"{ytid}.flac", y, 16000, subtype="PCM_16")
            n += 1
    return n, time.process_time() - cpu


def hand_loop(parquet: Path, out: Path, pool: ProcessPoolExecutor, jobs: int) -> float:
    """CPU seconds of the workers."""
    out.mkdir(parents=True, exist_ok=True)
    groups = list(range(pq.ParquetFile(parquet).num_row_groups))
    shares = [(str(parquet), groups[i::jobs], str(out)) for i in range(jobs)]
    done = list(pool.map(_loop_share, shares))
    assert sum(n for n, _ in done) == pq.ParquetFile(parquet).metadata.num_rows
    return sum(cpu for _, cpu in done)


def peak_rss_of_import(parquet: Path, mirror: Path, root: Path, jobs: int) -> float:
    """MB: the peak resident memory of a process that only imports the file (``resource``'s ru_maxrss, or
    where Linux has it the same mark counted from the exec: :mod:`audiobench.testing.memory`)."""
    code = ("from pathlib import Path; from audiobench.data.imports.copies import import_copies; "
            "from audiobench.testing.memory import peak_rss_mb; "
            f"import_copies({DATASET!r}, [Path({str(parquet)!r})], root=Path({str(root)!r}), "
            f"index_mirror={str(mirror)!r}, jobs={jobs}, quiet=True); "
            "print(peak_rss_mb())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=300)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="audiobench-bench-") as tmp:
        tmp = Path(tmp)
        mirror = unpack_reference(tmp / "lists")
        ids = listed_ids(mirror, tmp / "ids", args.clips)
        t0 = time.perf_counter()
        parquet, warm = tmp / "data" / "00000.parquet", tmp / "warm.parquet"
        parquet.parent.mkdir()
        make_parquet(parquet, ids)
        make_parquet(warm, ids[:2 * args.jobs], seed=1)
        size = parquet.stat().st_size / 1e6
        print(f"built {len(ids)} clips of 10 s, 48 kHz stereo 24-bit FLAC: {size:.0f} MB of parquet "
              f"in {time.perf_counter() - t0:.1f} s")
        with ProcessPoolExecutor(args.jobs) as pool:
            import_and_resample(warm, mirror, tmp / "warm-root", args.jobs)  # workers and imports start once
            hand_loop(warm, tmp / "warm-loop", pool, args.jobs)
            times: dict[str, list[float]] = {"import+resample": [], "hand loop": []}
            cpu: dict[str, list[float]] = {"import+resample": [], "hand loop": []}
            for r in range(args.repeats):
                start, used = time.perf_counter(), time.process_time()  # process time: every thread of ours
                import_and_resample(parquet, mirror, tmp / f"root{r}", args.jobs)
                times["import+resample"].append(time.perf_counter() - start)
                cpu["import+resample"].append(time.process_time() - used)
                start = time.perf_counter()
                cpu["hand loop"].append(hand_loop(parquet, tmp / f"loop{r}", pool, args.jobs))
                times["hand loop"].append(time.perf_counter() - start)
                shutil.rmtree(tmp / f"root{r}")
                shutil.rmtree(tmp / f"loop{r}")
        for name, t in times.items():
            print(f"  {name:<16} rounds: {'  '.join(f'{x:.2f}' for x in t)} s wall, "
                  f"{'  '.join(f'{x:.2f}' for x in cpu[name])} s CPU")
        rss = peak_rss_of_import(parquet, mirror, tmp / "rss-root", args.jobs)
    best = {name: min(t) for name, t in times.items()}
    ratio = best["hand loop"] / best["import+resample"]
    per_clip = 1000 / len(ids)
    print(f"import + resample, jobs={args.jobs}      {best['import+resample']:7.2f} s  "
          f"({best['import+resample'] * per_clip:.1f} ms/clip)")
    print(f"hand loop, {args.jobs} processes            {best['hand loop']:7.2f} s  "
          f"({best['hand loop'] * per_clip:.1f} ms/clip)")
    print(f"CPU time (busy machines stretch wall time, not this): ours {min(cpu['import+resample']):.2f} s, "
          f"hand loop {min(cpu['hand loop']):.2f} s, ratio {min(cpu['hand loop']) / min(cpu['import+resample']):.2f}x")
    print(f"peak RSS of an import process: {rss:.0f} MB for {size:.0f} MB of parquet")
    ok = ratio >= 0.8
    print(f"{'import+resample vs hand loop (loop time / ours)':<58} {ratio:6.2f}x  (floor 0.8x)  "
          f"{'PASS' if ok else 'FAIL'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
