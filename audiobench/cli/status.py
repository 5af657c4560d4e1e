"""``audiobench status DATASET``: the coverage table, then the feature sets and runs made from it, any time."""
from __future__ import annotations

import json
from dataclasses import asdict

import click

from audiobench.cli.options import json_option, quiet_option, root_option
from audiobench.core.layout import DatasetPaths, resolve_root, runs_dir


@click.command("status")
@click.argument("dataset")
@root_option
@click.option("--per-class/--no-per-class", default=True, show_default=True, help="One row per class too.")
@click.option("--per-source", is_flag=True,
              help="Also how many ok clips came per way in (yt-dlp, import), codec and sample rate.")
@click.option("--export", type=click.Path(dir_okay=False), default=None, metavar="CLIPS.csv",
              help="Also write every clip (id, split, status, source, segment, duration, audio sha256, origin) "
                   "as CSV: the list another study can --eval-on.")
@click.option("--verify", is_flag=True,
              help="Check every feature shard as a reader does (CRC-32 included: reads every feature once); "
                   "without it only missing shards are found.")
@quiet_option
@json_option
def command(dataset: str, root: str | None, per_class: bool, per_source: bool, export: str | None, verify: bool,
            quiet: bool, as_json: bool) -> None:
    """Print per split and per class: listed, ok, unavailable, failed, pending; the ok clips by source
    (downloaded, or imported from which format); then the feature sets
    (clips and longest clip per split, dtype, damaged shards and the command that repairs them) and the runs
    and studies of the dataset, finished or not.

    \b
    Examples:
      audiobench status synth --root audiobench-data
      audiobench status sl-dcase17 --per-source --no-per-class
      audiobench status synth --export synth-clips.csv
      audiobench status sl-dcase17 --verify
    """
    from audiobench.data.coverage import coverage, coverage_table
    from audiobench.data.inventory import feature_sets, features_table, require_dataset, runs_of, runs_table
    from audiobench.data.ledger import Ledger
    from audiobench.data.origins import rows_table, source_streams, sources_by_split

    del quiet  # accepted like every command's: status draws no progress bar
    paths = DatasetPaths(resolve_root(root), dataset)
    with Ledger(require_dataset(paths)) as ledger:
        rows = coverage(ledger, per_class=per_class)
        sources = sources_by_split(ledger)
        streams = source_streams(ledger) if per_source else None
        if export is not None:
            from pathlib import Path

            from audiobench.data.cliplist import export_clips

            written = export_clips(ledger, Path(export))
            click.echo(f"wrote {written} clips to {export}", err=as_json)
    features, runs = feature_sets(paths, verify=verify), runs_of(paths.root, dataset)
    if as_json:
        out = {"coverage": [asdict(r) for r in rows], "sources": [asdict(r) for r in sources],
               "features": [asdict(f) for f in features], "runs": [asdict(r) for r in runs]}
        if streams is not None:
            out["streams"] = [asdict(s) for s in streams]
        click.echo(json.dumps(out, indent=2))
        return
    click.echo(coverage_table(rows))
    click.echo("\nok clips by source:")
    click.echo(rows_table(sources, empty="(no clip is ok yet)"))
    if streams is not None:
        click.echo("\nsources of the ok clips:")
        click.echo(rows_table(streams, empty="(no clip with a recorded origin)"))
    click.echo(f"\nfeatures ({paths.features}):")
    click.echo(features_table(features, dataset=dataset))
    click.echo(f"\nruns ({runs_dir(paths.root)}):")
    click.echo(runs_table(runs))
