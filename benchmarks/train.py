"""Training-loop overhead and training-step throughput on the machine it runs on.

On the same batches, in one run, per width:
- the training loop's time per step: ``audiobench.training.train.train_epoch`` over the batches of
  ``train_loader`` as a run makes them from the HDF5 cache (at ``--workers 0`` and a split in memory,
  ``TrainBatches``: gathering and cropping clips; segment labels, every loss term of ``att-strong-self``, the
  bookkeeping);
- the bare model step: forward, clip BCE, backward, Adam step, on the same batches already in memory.
Overhead = loop / bare - 1; PASS when at most 10% for every width. Also prints clips/s of a training step.

    .venv/bin/python benchmarks/train.py                       # width 1 (the paper), 998-frame inputs
    .venv/bin/python benchmarks/train.py --widths 0.0625 --frames 298 --batch-size 8   # the demo's shape
    .venv/bin/python benchmarks/train.py --widths 0.25 --steps 8 --device cuda
    .venv/bin/python benchmarks/train.py --widths 0.0625 --frames 298 --batch-size 8 --threads 1 --clock cpu

Without ``--root``, a small feature set of ``--frames``-frame clips (998: 10 s) with 17 classes and strong
labels is written to a temporary folder with the cache's own writer (the values do not matter for timing).
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from itertools import islice
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from audiobench.features.store import SplitHeader, SplitWriter, split_path
from audiobench.core.records import ClassInfo, Clip, Event
from audiobench.features.vggish import feature_id
from audiobench.core.layout import DatasetPaths
from audiobench.models.net import build_net, use_fast_layout
from audiobench.training.splits import open_splits
from audiobench.training.train import TrainConfig, resolve_device, train_epoch, train_loader
from audiobench.models.variants import variant_spec

VARIANT = "att-strong-self"  # the variant with the most loss terms: the loop's worst case
MAX_OVERHEAD = 0.10


def write_bench_features(root: Path, *, clips: int, frames: int = 998, classes: int = 17) -> DatasetPaths:
    """A feature set for timing: random log-mels, 1–3 random strong events per clip."""
    paths = DatasetPaths(root, "bench")
    rng = np.random.default_rng(0)
    names = tuple(ClassInfo(f"/m/bench{c}", f"bench {c}") for c in range(classes))
    seconds = ((frames - 1) * 160 + 400) / 16000
    for split, n in (("train", clips), ("val", 8), ("test", 8)):
        header = SplitHeader("bench", split, names, split == "train", feature_id(), "float32")
        path = split_path(paths.feature_dir(feature_id()), split)
        path.parent.mkdir(parents=True, exist_ok=True)
        writer = SplitWriter(path, header, capacity=n, t_max=frames)
        rows = []
        for i in range(n):
            events = tuple(Event(int(c), float(on), float(min(seconds, on + rng.uniform(0.2, 5))))
                           for c, on in zip(rng.choice(classes, rng.integers(1, 4), replace=False),
                                            rng.uniform(0, seconds - 0.2, 3)))
            ytid = f"bench{i:06d}"
            clip = Clip(f"{ytid}_0_10000", split, ytid, 0.0, seconds, tuple(sorted({e.class_index for e in events})),
                        events if split == "train" else None)
            rows.append((clip, rng.normal(-2, 1.5, (frames, 64)).astype(np.float32)))
        writer.append([c for c, _ in rows], [x for _, x in rows])
        writer.commit()
    return paths


def time_width(paths: DatasetPaths, *, width: float, steps: int, batch_size: int, repeats: int,
               device: torch.device, frames: int, clock=time.perf_counter) -> dict[str, float]:
    """Seconds per step of the loop and of the bare step over the same ``steps`` batches (fastest timing)."""
    config = TrainConfig(paths.name, VARIANT, width=width, batch_size=batch_size, frames=frames)
    splits = open_splits(paths, feature_id=None, frames=config.frames, seed=0)
    spec = variant_spec(VARIANT)
    net = use_fast_layout(build_net(len(splits.classes), width=width, attention=True).to(device), device)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-4)

    def loader_batches():  # a fresh loader with the same seed: the same batches every time
        return islice(iter(train_loader(splits, config, device)), steps)

    in_memory = [{k: v.to(device) for k, v in b.items() if k in ("logmel", "weak")} for b in loader_batches()]

    def loop() -> None:
        train_epoch(net, loader_batches(), spec, optimizer, device=device, alpha=1.0, beta=1.0)

    def bare() -> None:
        for batch in in_memory:
            out = net(batch["logmel"])
            loss = F.binary_cross_entropy(out.clip, batch["weak"])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        if device.type == "cuda":
            torch.cuda.synchronize()

    timings: dict[str, list[float]] = {"loop": [], "bare": []}
    bare()  # warm-up (allocator, kernels)
    for _ in range(repeats):  # interleaved, so a busy spell of the machine hits both
        for name, fn in (("loop", loop), ("bare", bare)):
            tick = clock()
            fn()
            timings[name].append((clock() - tick) / steps)
    # The fastest of the interleaved timings: on a shared machine, interference only ever adds time, and a
    # step of the demo's net (~25 ms) varies by 15% from one timing to the next.
    loop_s, bare_s = min(timings["loop"]), min(timings["bare"])
    return {"width": width, "loop_s": loop_s, "bare_s": bare_s, "overhead": loop_s / bare_s - 1,
            "loop_clips_s": batch_size / loop_s, "bare_clips_s": batch_size / bare_s}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--widths", default="1.0,0.25", help="comma-separated width multipliers")
    parser.add_argument("--steps", type=int, default=4, help="training steps per timing")
    parser.add_argument("--repeats", type=int, default=5, help="interleaved timings of each (fastest kept)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--frames", type=int, default=998, help="clip and training input length in frames")
    parser.add_argument("--root", type=Path, default=None, help="where to write the timing features")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                        help="cpu: this process's CPU time (with --threads 1, barely moved by other jobs "
                             "on a shared machine)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    clock = time.process_time if args.clock == "cpu" else time.perf_counter
    device = resolve_device(args.device)
    with tempfile.TemporaryDirectory() as tmp:
        root = args.root or Path(tmp)
        paths = write_bench_features(root, clips=args.steps * args.batch_size, frames=args.frames)
        print(f"device {device}, torch {torch.__version__}, {torch.get_num_threads()} threads, "
              f"batch {args.batch_size} × {args.frames} frames, {args.steps} steps × {args.repeats} repeats, "
              f"{VARIANT}, {args.clock} clock")
        print(f"{'width':>6} {'loop s/step':>12} {'bare s/step':>12} {'overhead':>9} {'clips/s loop':>13} "
              f"{'clips/s bare':>13}")
        ok = True
        for width in (float(w) for w in args.widths.split(",")):
            r = time_width(paths, width=width, steps=args.steps, batch_size=args.batch_size,
                           repeats=args.repeats, device=device, frames=args.frames, clock=clock)
            ok &= r["overhead"] <= MAX_OVERHEAD
            print(f"{width:>6g} {r['loop_s']:>12.3f} {r['bare_s']:>12.3f} {100 * r['overhead']:>8.1f}% "
                  f"{r['loop_clips_s']:>13.1f} {r['bare_clips_s']:>13.1f}")
    print(f"training-loop overhead at most {100 * MAX_OVERHEAD:.0f}%: {'PASS' if ok else 'FAIL'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
