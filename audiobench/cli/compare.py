"""``audiobench compare DATASET --trials N --variants a,b,...``: the paired study and its report."""
from __future__ import annotations

import json

import click

from audiobench.cli.options import backend_options, json_option, quiet_option, root_option, stops_workers_on_signals
from audiobench.cli.train_options import training_options
from audiobench.training.options import DEFAULT_METRIC, METRIC_COLUMNS


@click.command("compare")
@click.argument("dataset")
@click.option("--variants", required=True, metavar="A,B,...",
              help="Comma-separated variants, e.g. noatt-weak,att-unsup,att-strong,att-self.")
@click.option("--trials", type=click.IntRange(min=1), default=20, show_default=True,
              help="Paired trials; trial k trains every variant with seed k.")
@click.option("--baseline", default=None, help="Variant the others are tested against [default: the first].")
@click.option("--metric", type=click.Choice(tuple(METRIC_COLUMNS)), default=DEFAULT_METRIC, show_default=True,
              help="Per-trial test metric the paired tests compare: mAP, macro ROC AUC, d′, or an event-level "
                   "metric (PSDS1, PSDS2, segment F1 or ER, event F1; the test split needs strong labels).")
@training_options
@click.option("--jobs", "-j", type=click.IntRange(min=1), default=1, show_default=True,
              help="Training runs at once (processes, or Dask workers).")
@backend_options
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="Study folder [default: ROOT/runs/compare-DATASET-<hash of the options>].")
@root_option
@quiet_option
@json_option
@stops_workers_on_signals
def command(dataset: str, variants: str, trials: int, baseline: str | None, metric: str, jobs: int, backend: str,
            scheduler: str | None, out: str | None, root: str | None, quiet: bool, as_json: bool,
            **train_options) -> None:
    """Train paired trials of every variant, then test every pair (Wilcoxon, Holm) and write report.md.

    Rerun the same command to resume: finished (trial, variant) runs are kept.

    \b
    Examples:
      audiobench compare synth --trials 20 --variants noatt-weak,att-unsup,att-strong,att-self \\
          --width 0.125 --epochs 6 --lr 1e-3 --jobs 2
      audiobench compare sl-dcase17 --trials 20 --variants noatt-weak,att-self \\
          --init vggish:vggish-10086976.pth --device cuda
    """
    from audiobench.study.compare import CompareConfig, compare
    from audiobench.training.options import TrainOptions

    names = tuple(v.strip() for v in variants.split(",") if v.strip())
    config = CompareConfig(dataset, names, trials=trials, baseline=baseline, metric=metric,
                           train=TrainOptions(**train_options))
    result = compare(config, root=root, out=out, jobs=jobs, backend=backend, scheduler=scheduler, quiet=quiet)
    for failure in result.failures:
        click.echo(f"failed: trial {failure.trial} {failure.variant}: {failure.error}", err=True)
    summary = {"run_dir": str(result.run_dir), "finished": result.finished, "trained": result.trained,
               "resumed": result.resumed, "failed": len(result.failures),
               "report": str(result.report) if result.report else None}
    if as_json:
        click.echo(json.dumps(summary, indent=2))
    else:
        if result.report is not None:
            from audiobench.study.findings import summary
            from audiobench.study.report import variant_table

            results = json.loads((result.run_dir / "results.json").read_text())
            click.echo(variant_table(results) + "\n")
            click.echo("".join(f"- {line}\n" for line in summary(results)))  # the verdicts, with their stability
        click.echo(f"{result.finished} runs finished ({result.trained} trained now, {result.resumed} resumed, "
                   f"{len(result.failures)} failed); report: {result.report}")
    if result.failures:
        click.get_current_context().exit(1)
