"""``audiobench run PIPELINE``: every stage of a pipeline file, in order, each skipping what is done."""
from __future__ import annotations

from pathlib import Path

import click

from audiobench.cli.options import quiet_option, root_option


@click.command("run")
@click.argument("pipeline", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@root_option
@quiet_option
@click.option("--check", is_flag=True, help="Only read and check the pipeline file; run nothing.")
def command(pipeline: Path, root: str | None, quiet: bool, check: bool) -> None:
    """Run a pipeline: synth or fetch, resample, featurize, train, compare.

    \b
    Examples:
      audiobench run pipelines/synth-demo.toml
      audiobench run pipelines/sl-dcase17-table1.toml --root /data/audiobench
    """
    from audiobench.pipeline import load_pipeline, run_pipeline

    spec = load_pipeline(pipeline)
    if check:
        click.echo(f"{spec.path}: dataset {spec.dataset}; stages: {', '.join(s.stage for s in spec.steps)}")
        return
    run_pipeline(spec, root=root, quiet=quiet, echo=click.echo)
