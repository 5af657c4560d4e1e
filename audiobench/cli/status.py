"""``audiobench status DATASET``: the coverage table, any time."""
from __future__ import annotations

import json
from dataclasses import asdict

import click

from audiobench.cli.options import json_option, root_option
from audiobench.layout import DatasetPaths, resolve_root
from audiobench.ledger import Ledger


@click.command("status")
@click.argument("dataset")
@root_option
@click.option("--per-class/--no-per-class", default=True, show_default=True, help="One row per class too.")
@json_option
def command(dataset: str, root: str | None, per_class: bool, as_json: bool) -> None:
    """Print per split and per class: listed, ok, unavailable, failed, pending.

    \b
    Example:
      audiobench status synth --root audiobench-data
    """
    from audiobench.coverage import coverage, coverage_table

    paths = DatasetPaths(resolve_root(root), dataset)
    with Ledger(paths.require_ledger()) as ledger:
        rows = coverage(ledger, per_class=per_class)
    if as_json:
        click.echo(json.dumps([asdict(r) for r in rows], indent=2))
    else:
        click.echo(coverage_table(rows))
