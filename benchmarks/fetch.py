"""Parallel download throughput: `--jobs 8` against `--jobs 1`, on a loopback server adding 200 ms a request.

Target: at least 5x the clips/s. Run: .venv/bin/python benchmarks/fetch.py [--clips 24]
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from audiobench.data.sources.youtube import DownloadSettings
from audiobench.data.fetch import FetchOptions, fetch
from audiobench.data.register import register_dataset
from audiobench.testing.media_server import MediaServer, encode_source
from audiobench.testing.reference import unpack_reference



def clips_per_second(root: Path, server: MediaServer, reference: Path, *, jobs: int, clips: int) -> float:
    register_dataset("sl-dcase17", root=root, mirror=str(reference))
    options = FetchOptions(source_template=server.template("flac"), jobs=jobs, split="val", limit=clips,
                           retries=0, download=DownloadSettings(socket_timeout=10))
    start = time.perf_counter()
    result = fetch("sl-dcase17", root=root, index_mirror=str(reference), options=options, quiet=True)
    seconds = time.perf_counter() - start
    if result.summary.counts["ok"] != clips:
        raise SystemExit(f"expected {clips} ok clips, got {result.summary.counts}")
    return clips / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clips", type=int, default=24)
    parser.add_argument("--latency", type=float, default=0.2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        reference = unpack_reference(Path(tmp) / "reference")
        media = {"flac": encode_source("flac", 600, Path(tmp) / "src")}
        with MediaServer(media, latency=args.latency) as server:
            one = clips_per_second(Path(tmp) / "j1", server, reference, jobs=1, clips=args.clips)
            eight = clips_per_second(Path(tmp) / "j8", server, reference, jobs=8, clips=args.clips)
            requests_per_clip = len(server.requests) / (2 * args.clips)
    ratio = eight / one
    print(f"latency {args.latency * 1000:.0f} ms/request, {requests_per_clip:.1f} requests/clip, {args.clips} clips")
    print(f"--jobs 1: {one:.2f} clips/s")
    print(f"--jobs 8: {eight:.2f} clips/s")
    print(f"ratio jobs8/jobs1: {ratio:.2f}x (target >= 5.0x) {'PASS' if ratio >= 5.0 else 'FAIL'}")


if __name__ == "__main__":
    main()
