"""``audiobench train DATASET --variant NAME``: one training run, summarised in a few lines."""
from __future__ import annotations

import json

import click

from audiobench.cli.options import json_option, quiet_option, root_option, stops_workers_on_signals
from audiobench.cli.train_options import run_options


@click.command("train")
@stops_workers_on_signals
@click.argument("dataset")
@run_options
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="Run folder [default: ROOT/runs/train-DATASET-VARIANT-sSEED-TIME].")
@root_option
@quiet_option
@json_option
def command(dataset: str, root: str | None, quiet: bool, as_json: bool, **options) -> None:
    """Train one variant; write metrics.json, model.pt and training-curve.png to the run folder.

    \b
    Examples:
      audiobench train synth --variant att-self --width 0.25 --epochs 20
      audiobench train sl-dcase17 --variant att-strong --init vggish:vggish-10086976.pth --device cuda
    """
    from audiobench.training.train import train

    result = train(dataset, root=root, quiet=quiet, **options)
    summary = {"variant": result.config.variant, "seed": result.config.seed, "best_epoch": result.best_epoch,
               "val_map": result.val_map, "test_map": result.test_map, "test_auc": result.test_auc,
               "test_dprime": result.test_dprime, "seconds": result.seconds,
               "run_dir": str(result.run_dir)}
    if as_json:
        click.echo(json.dumps(summary, indent=2))
        return
    click.echo(f"{'variant':<18} {'seed':>4} {'best epoch':>10} {'val mAP':>8} {'test mAP':>8}")
    click.echo(f"{result.config.variant:<18} {result.config.seed:>4} {result.best_epoch:>10} "
               f"{result.val_map:>8.4f} {result.test_map:>8.4f}")
    click.echo(f"run: {result.run_dir}  ({result.seconds:.0f} s)")
