"""``audiobench report RUN [RUN ...]``: re-render report.md, its figures, exports and results.json from saved
results; with several studies and ``--columns``, one table with a column per study."""
from __future__ import annotations

import json
from pathlib import Path

import click

from audiobench.cli.options import json_option, quiet_option_for, root_option, run_folder

PAPER_CHOICES = ("I-one-step", "I-two-step", "II", "none")  # audiobench.study.paper.TABLES, and none


@click.command("report")
@click.argument("runs", nargs=-1, required=True, metavar="RUN [RUN ...]")
@click.option("--columns", default=None, metavar="A,B,...",
              help="Several studies as one table: one column name per RUN, in order (e.g. one-step,two-step). "
                   "Each later column's gain over the first is tested per variant, paired by trial seed.")
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="Folder for the --columns table (default: the first RUN's folder).")
@click.option("--paper", "paper_table", type=click.Choice(PAPER_CHOICES), default=None,
              help="The paper's table to print beside a single study's numbers (default: what its dataset and "
                   "init say; none: no paper column).")
@root_option
@quiet_option_for("Print only where the report was written, not the table.")
@json_option
def command(runs: tuple[str, ...], columns: str | None, out: str | None, paper_table: str | None, root: str | None,
            quiet: bool, as_json: bool) -> None:
    """Write report.md, its figures, table.csv/.tex and results.json for RUN from its trials.csv and config.json.

    RUN is a study folder, or the name of one under ROOT/runs/. With several RUNs and --columns, write
    columns-A-B.md (and .json, .csv, .tex): one table, a column per study.

    \b
    Examples:
      audiobench report audiobench-data/runs/synth-demo
      audiobench report synth-demo --root audiobench-data
      audiobench report sl-dcase17-table1-one-step sl-dcase17-table1-two-step --columns one-step,two-step
    """
    from audiobench.core.errors import AudiobenchError

    folders = [run_folder(run, root) for run in runs]
    if len(folders) > 1 or columns is not None:
        if columns is None:
            raise AudiobenchError(f"{len(folders)} studies given: name their columns with --columns A,B,...")
        if paper_table is not None:
            raise AudiobenchError("--paper is for one study; with --columns each study's own table is shown")
        from audiobench.study.columns import column_cells, render_columns
        from audiobench.study.exports import markdown_table

        path = render_columns(folders, [c.strip() for c in columns.split(",")], out=Path(out) if out else None)
        results = json.loads(path.with_suffix(".json").read_text())
        if as_json:
            click.echo(json.dumps(results, indent=2))
            return
        if not quiet:
            click.echo(markdown_table(*column_cells(results)) + "\n")
        click.echo(f"wrote {path} (.json, .csv and .tex beside it)")
        return
    if out is not None:
        raise AudiobenchError("--out is for --columns; a single study's report is written into its folder")
    from audiobench.study.report import render_report, variant_table

    run_dir = folders[0]
    path = render_report(run_dir, paper_table=paper_table)
    results = json.loads((run_dir / "results.json").read_text())
    if as_json:
        click.echo(json.dumps(results, indent=2))
        return
    if not quiet:
        from audiobench.study.findings import summary

        click.echo(variant_table(results) + "\n")
        click.echo("".join(f"- {line}\n" for line in summary(results)))  # the verdicts, with their stability
    click.echo(f"wrote {path} (figures and results.json beside it)")
