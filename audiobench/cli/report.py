"""``audiobench report RUN_DIR``: re-render report.md, its figures and results.json from saved results."""
from __future__ import annotations

import json
from pathlib import Path

import click

from audiobench.cli.options import json_option


@click.command("report")
@click.argument("run_dir", type=click.Path(file_okay=False, path_type=Path))
@json_option
def command(run_dir: Path, as_json: bool) -> None:
    """Write RUN_DIR/report.md, its figures and results.json from the run's trials.csv and config.json.

    \b
    Example:
      audiobench report audiobench-data/runs/synth-demo
    """
    from audiobench.report import render_report, variant_table

    path = render_report(run_dir)
    results = json.loads((run_dir / "results.json").read_text())
    if as_json:
        click.echo(json.dumps(results, indent=2))
        return
    click.echo(variant_table(results))
    click.echo(f"\nwrote {path} (figures and results.json beside it)")
