"""How fast is `audiobench synth` on one core, and is the synthetic task free of a loudness shortcut?

    .venv/bin/python benchmarks/synth.py            # real-time factor with jobs=1, PASS/FAIL against 100x
    .venv/bin/python benchmarks/synth.py --check    # also: the loudness check on the default-size dataset

The real-time factor is seconds of audio written per wall-clock second by `synthesize` with `jobs=1`,
everything included: planning, rendering, FLAC encoding, atomic writes, ledger updates. The target is
at least 100x (a 10-second clip in at most 0.1 s). Exit status 1 when it fails.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

from audiobench.data.synth import synthesize
from audiobench.data.synth.check import loudness_check

TARGET = 100.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", type=int, default=60, help="clips to time (default 60)")
    parser.add_argument("--duration", type=float, default=10.0, help="clip length in seconds (default 10)")
    parser.add_argument("--check", action="store_true", help="also run the loudness check (600/200/200 clips)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="audiobench-bench-") as tmp:
        started = time.perf_counter()
        result = synthesize("bench", root=tmp, train=args.clips, val=0, test=0, duration=args.duration, jobs=1,
                            quiet=True)
        elapsed = time.perf_counter() - started
        factor = result.audio_seconds / elapsed
        verdict = "PASS" if factor >= TARGET else "FAIL"
        print(f"synth, one core: {result.generated} clips x {args.duration:g} s in {elapsed:.2f} s = "
              f"{1000 * elapsed / result.generated:.1f} ms a clip, {factor:.0f}x real time "
              f"(target >= {TARGET:.0f}x): {verdict}")
        if args.check:
            jobs = os.cpu_count() or 1
            started = time.perf_counter()
            synthesize("check", root=tmp, jobs=jobs, quiet=True)
            check = loudness_check("check", root=tmp)
            seconds = time.perf_counter() - started
            print(f"loudness check (default dataset: train 600, test 200, 10 s; {seconds:.0f} s): "
                  f"{check.classes} classes, prior {check.prior:.3f}, chance AP {check.chance:.3f}, "
                  f"loudness mAP {check.loudness_map:.3f}, spectral mAP {check.spectral_map:.3f}")
    return 0 if verdict == "PASS" else 1


if __name__ == "__main__":
    sys.exit(main())
