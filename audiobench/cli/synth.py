"""``audiobench synth``: generate the synthetic SL-DCASE-17-like dataset (no network needed)."""
from __future__ import annotations

import json

import click

from audiobench.cli.options import (jobs_option, json_option, quiet_option, root_option, stops_workers_on_signals,
                                     wait_option)


@click.command("synth")
@root_option
@click.option("--name", default="synth", show_default=True, help="Dataset name (its folder under the root).")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True,
              help="Same seed, same audio (byte for byte) and labels.")
@click.option("--train", type=click.IntRange(min=0), default=600, show_default=True, help="Clips in the train split.")
@click.option("--val", type=click.IntRange(min=0), default=200, show_default=True, help="Clips in the val split.")
@click.option("--test", type=click.IntRange(min=0), default=200, show_default=True, help="Clips in the test split.")
@click.option("--duration", type=click.FloatRange(1.0, 60.0), default=10.0, show_default=True,
              help="Clip length in seconds.")
@click.option("--classes", default=None, metavar="NAME,NAME,...",
              help="Only these target classes (names or MIDs, comma-separated; a name holding a comma, such as "
                   "'Air horn, truck horn', by its MID) "
                   "[default: all 17].")
@jobs_option
@wait_option
@quiet_option
@json_option
@stops_workers_on_signals
def command(root: str | None, name: str, seed: int, train: int, val: int, test: int, duration: float,
            classes: str | None, jobs: int, wait: bool, quiet: bool, as_json: bool) -> None:
    """Write a strongly labelled synthetic dataset: sirens, horns, beeps, engines, screams over noise.

    Audio goes straight to audio/<split>/ as 16 kHz mono FLAC, with the ledger, so featurize runs next
    (resample has nothing to do). Rerunning finishes an interrupted run and skips what is done. While
    another process writes the dataset, the run stops at once naming it (or with --wait waits for it).

    \b
    Example:
      audiobench synth --root audiobench-data --jobs 2
      audiobench synth --name synth-tiny --train 60 --val 20 --test 20 --duration 5
      audiobench synth --name synth6 --classes "Reversing beeps,Screaming,Car alarm,Police car (siren),Car,Train"
    """
    from audiobench.data.synth import synthesize

    chosen = [c.strip() for c in classes.split(",") if c.strip()] if classes else None
    result = synthesize(name, root=root, seed=seed, train=train, val=val, test=test, duration=duration,
                        classes=chosen, jobs=jobs, quiet=quiet, wait=wait)
    if as_json:
        click.echo(json.dumps({"dataset": result.dataset, "path": str(result.path), "seed": result.seed,
                               "splits": result.splits, "events": result.events, "generated": result.generated,
                               "already_done": result.already_done, "audio_seconds": result.audio_seconds,
                               "elapsed": round(result.elapsed, 3),
                               "realtime_factor": round(result.realtime_factor, 1)}, indent=2))
        return
    click.echo(f"dataset {result.dataset} (seed {result.seed}) in {result.path}")
    click.echo(f"{'split':<6} {'clips':>6}")
    for split, count in result.splits.items():
        click.echo(f"{split:<6} {count:>6}")
    speed = f", {result.realtime_factor:.0f}x real time" if result.generated else ""
    click.echo(f"generated {result.generated}, already done {result.already_done}, "
               f"{result.events} labelled events, {result.elapsed:.1f} s{speed}")
