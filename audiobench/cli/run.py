"""``audiobench run PIPELINE``: every stage of a pipeline file, in order, each skipping what is done."""
from __future__ import annotations

from pathlib import Path

import click

from audiobench.cli.options import quiet_option, root_option, stops_workers_on_signals


@click.command("run")
@click.argument("pipeline", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@root_option
@quiet_option
@click.option("--check", is_flag=True, help="Only read and check the pipeline file; run nothing.")
@click.option("--index-mirror", metavar="DIR|URL", default=None,
              help="For [fetch]: take the list files from this folder or base URL instead of their official hosts "
                   "(default: the table's index_mirror, else $AUDIOBENCH_INDEX_MIRROR).")
@click.option("--weights-mirror", metavar="DIR|URL", default=None,
              help="For [weights]: take the weight files from this folder or base URL instead of the official host "
                   "(default: the table's mirror, else $AUDIOBENCH_WEIGHTS_MIRROR).")
@stops_workers_on_signals
def command(pipeline: Path, root: str | None, quiet: bool, check: bool, index_mirror: str | None,
            weights_mirror: str | None) -> None:
    """Run a pipeline: synth or fetch, resample, featurize, train, compare.

    \b
    Examples:
      audiobench run pipelines/synth-demo.toml
      audiobench run pipelines/sl-dcase17-table1.toml --root /data/audiobench
      audiobench run pipelines/sl-dcase17-table1.toml --index-mirror /media/lists --weights-mirror /media/weights
    """
    from audiobench.pipeline import PipelineError, load_pipeline, run_pipeline

    try:
        spec = load_pipeline(pipeline)
    except PipelineError as exc:
        for problem in exc.problems:  # all of them, one line each
            click.echo(f"error: {problem}", err=True)
        click.get_current_context().exit(2)
    if check:
        click.echo(f"{spec.path}: dataset {spec.dataset}; stages: {', '.join(s.stage for s in spec.steps)}")
        return
    run_pipeline(spec, root=root, quiet=quiet, echo=click.echo, index_mirror=index_mirror,
                 weights_mirror=weights_mirror)
