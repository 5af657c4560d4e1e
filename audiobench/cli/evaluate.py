"""``audiobench evaluate RUN_OR_STUDY --eval-on CLIPS.csv | --on DATASET[:SPLIT]``: finished runs scored, no training."""
from __future__ import annotations

import json

import click

from audiobench.cli.options import (json_option, quiet_option_for, root_option, run_folder,
                                     stops_workers_on_signals)
from audiobench.training.options import DEFAULT_METRIC, METRIC_COLUMNS


@click.command("evaluate")
@stops_workers_on_signals
@click.argument("run")
@click.option("--eval-on", "eval_on", default=None, type=click.Path(dir_okay=False), metavar="CLIPS.csv",
              help="The clips of the run's test split to score: a `status --export` list, or any CSV with a "
                   "clip_id, ytid, youtube_id or source_id column.")
@click.option("--on", "on", default=None, metavar="DATASET[:SPLIT]",
              help="Instead: every clip of another dataset's split (default: the split playing test), featurized "
                   "in the same root with the same feature set; its classes must be the run's, in the same order.")
@click.option("--name", default=None,
              help="Names evaluation-NAME.json [default: the CSV's file stem, or DATASET-SPLIT].")
@click.option("--metric", type=click.Choice(tuple(METRIC_COLUMNS)), default=DEFAULT_METRIC, show_default=True,
              help="For a study: the metric the paired tests compare.")
@click.option("--device", default="cpu", show_default=True, metavar="auto|cpu|cuda",
              help="Where the saved models predict.")
@root_option
@quiet_option_for("Print only where the evaluation was written, not the table.")
@json_option
def command(run: str, eval_on: str | None, on: str | None, name: str | None, metric: str, device: str, root: str | None, quiet: bool,
            as_json: bool) -> None:
    """Score a finished run, or every trial of a study, on the test clips CLIPS.csv lists, or on another
    dataset's split with the same classes (--on), without training.

    Each run's saved model predicts its test split again (or the --on split); the clips are scored with
    every metric (mAP, AUC, d′, per-class AP with its interval) into evaluation-NAME.json in the run folder,
    and for a study each variant's mean and the paired tests on those clips into the study's
    evaluation-NAME.json.

    \b
    Examples:
      audiobench evaluate synth-demo --eval-on their-clips.csv
      audiobench evaluate audiobench-data/runs/train-synth-att-self-s0-20250101-120000 --eval-on eval.csv
      audiobench evaluate sl-dcase17-table1 --on dcase2017-task4:evaluation
    """
    from audiobench.study.evaluate import evaluate, evaluation_name, evaluation_table

    folder = run_folder(run, root)
    result = evaluate(folder, eval_on, on=on, name=name, metric=metric, device=device, root=root)
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    label = evaluation_name(eval_on, name, on=on)
    if quiet:
        pass
    elif "variants" in result:
        click.echo(evaluation_table(result))
    else:
        e = result["eval_on"]
        auc, dprime = (("n/a" if result[k] is None else f"{result[k]:.4f}") for k in ("test_auc", "test_dprime"))
        click.echo(f"{result['variant']} seed {result['seed']} on {e['held']} of the {e['listed']} clips listed "
                   f"({e['clips']} test clips, fingerprint {e['fingerprint']}): mAP {result['test_map']:.4f}, "
                   f"AUC {auc}, d′ {dprime}")
    click.echo(f"wrote {folder / f'evaluation-{label}.json'}")
