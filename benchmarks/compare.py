"""Benchmark of the demo (`make demo`): its wall time, the share spent outside training, and what --jobs 2 buys.

    .venv/bin/python benchmarks/compare.py [--pipeline pipelines/synth-demo.toml] [--scaling-trials 2]

1. Runs the demo pipeline (synth -> featurize -> compare, 20 trials of four variants) in a temporary root,
   in this process, as `audiobench run` does, and prints its wall time (the target: at most 10 minutes on
   2 cores) with a breakdown:
   - data preparation: synth + featurize;
   - training: each run's own work from building its network to its test mAP: the optimizer steps, the
     validation pass of every epoch and the test pass (``timing.total_s`` in each ``metrics.json``), summed
     and divided by the number of parallel jobs;
   - outside training: everything else in the compare stage: worker start-up, opening the feature files,
     writing checkpoints and ``metrics.json``, the tables, the statistics, the figures and the report.
   The share outside training (target: at most 5%) is taken of the compare stage's wall time.
2. Runs ``--scaling-trials`` trials of the same study with ``--jobs 1`` (two torch threads per run) and
   ``--jobs 2`` (one thread each) on the demo's features and prints trials per minute of the trials phase
   (worker start-up included, the report not) and their ratio.

Exits 1 when the demo takes over 10 minutes or the share outside training is above 5%.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from audiobench.study.compare import CompareConfig, compare
from audiobench.pipeline import compare_config, load_pipeline

LIMIT_S = 600.0
MAX_OUTSIDE_SHARE = 0.05


def study(pipeline_path: Path) -> tuple[CompareConfig, int, dict]:
    """The pipeline's [[compare]] table as a CompareConfig, its jobs, and its [synth]/[featurize] tables."""
    pipeline = load_pipeline(pipeline_path)
    tables = {step.stage: dict(step.options) for step in pipeline.steps}
    options = tables.pop("compare")
    options.pop("name", None)
    jobs = options.pop("jobs", 1)
    config = compare_config(pipeline.dataset, options)
    return config, jobs, tables


def run_demo(pipeline_path: Path, root: Path) -> dict[str, float]:
    """The demo's stages, timed one by one (the same calls `audiobench run` makes)."""
    from audiobench.features.featurize import featurize
    from audiobench.data.synth import synthesize

    config, jobs, tables = study(pipeline_path)
    t0 = time.perf_counter()
    synthesize(config.dataset, root=root, quiet=True, **tables["synth"])
    featurize(config.dataset, root=root, quiet=True, **tables["featurize"])
    t1 = time.perf_counter()
    result = compare(config, root=root, out=root / "runs" / "demo", jobs=jobs, quiet=True)
    t2 = time.perf_counter()
    if result.failures:
        raise SystemExit(f"{len(result.failures)} runs failed: {result.failures[0].error}")
    trained = 0.0
    for metrics in (root / "runs" / "demo" / "trials").glob("*/metrics.json"):
        trained += json.loads(metrics.read_text())["timing"]["total_s"]
    return {"prepare": t1 - t0, "compare": t2 - t1, "training": trained / jobs, "wall": t2 - t0,
            "trials_phase": result.timing["trials"], "report": result.timing["report"], "jobs": jobs,
            "runs": result.finished}


def trials_per_minute(config: CompareConfig, root: Path, jobs: int, trials: int) -> float:
    out = root / "runs" / f"scaling-jobs{jobs}"
    result = compare(replace(config, trials=trials), root=root, out=out, jobs=jobs, quiet=True)
    if result.failures or result.trained != trials * len(config.variants):
        raise SystemExit(f"scaling run with --jobs {jobs} did not train every run: {result}")
    return trials / (result.timing["trials"] / 60.0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pipeline", type=Path, default=Path(__file__).parent.parent / "pipelines" / "synth-demo.toml")
    parser.add_argument("--scaling-trials", type=int, default=4)
    args = parser.parse_args()
    config, _, _ = study(args.pipeline)
    with tempfile.TemporaryDirectory(prefix="audiobench-bench-compare-") as tmp:
        root = Path(tmp)
        t = run_demo(args.pipeline, root)
        outside = t["compare"] - t["training"]
        share = outside / t["compare"]
        print(f"demo ({args.pipeline.name}): {t['runs']} runs, --jobs {t['jobs']}")
        print(f"  wall time            {t['wall']:7.1f} s  ({t['wall'] / 60:.2f} min; limit {LIMIT_S / 60:.0f} min)")
        print(f"  data preparation     {t['prepare']:7.1f} s  (synth + featurize)")
        print(f"  compare stage        {t['compare']:7.1f} s  (trials {t['trials_phase']:.1f} s, "
              f"tables/statistics/figures/report {t['report']:.1f} s)")
        print(f"  training             {t['training']:7.1f} s  (every run's steps, validation and test, per job)")
        print(f"  outside training     {outside:7.1f} s  = {share:.1%} of the compare stage "
              f"(floor: at most {MAX_OUTSIDE_SHARE:.0%}); {(t['wall'] - t['training']) / t['wall']:.1%} of the "
              "whole demo with data preparation")
        one = trials_per_minute(config, root, 1, args.scaling_trials)
        two = trials_per_minute(config, root, 2, args.scaling_trials)
        print(f"throughput, {args.scaling_trials} trials of {len(config.variants)} variants: --jobs 1 {one:.2f} "
              f"trials/min, --jobs 2 {two:.2f} trials/min: ratio {two / one:.2f}x")
    ok = t["wall"] <= LIMIT_S and share <= MAX_OUTSIDE_SHARE
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
