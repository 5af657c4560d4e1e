"""``audiobench report RUN``: re-render report.md, its figures and results.json from saved results."""
from __future__ import annotations

import json

import click

from audiobench.cli.options import json_option, quiet_option_for, root_option, run_folder


@click.command("report")
@click.argument("run")
@root_option
@quiet_option_for("Print only where the report was written, not the table.")
@json_option
def command(run: str, root: str | None, quiet: bool, as_json: bool) -> None:
    """Write report.md, its figures and results.json for RUN from its trials.csv and config.json.

    RUN is a study folder, or the name of one under ROOT/runs/.

    \b
    Examples:
      audiobench report audiobench-data/runs/synth-demo
      audiobench report synth-demo --root audiobench-data
    """
    from audiobench.study.report import render_report, variant_table

    run_dir = run_folder(run, root)
    path = render_report(run_dir)
    results = json.loads((run_dir / "results.json").read_text())
    if as_json:
        click.echo(json.dumps(results, indent=2))
        return
    if not quiet:
        click.echo(variant_table(results) + "\n")
    click.echo(f"wrote {path} (figures and results.json beside it)")

