"""``audiobench resample DATASET``: fetched clips as 16 kHz mono FLAC under audio/."""
from __future__ import annotations

import json
from dataclasses import asdict

import click

from audiobench.cli.options import (backend_options, jobs_option, json_option, quiet_option, root_option,
                                     stops_workers_on_signals, wait_option)
from audiobench.core.errors import AudiobenchError


@click.command("resample")
@click.argument("dataset")
@root_option
@jobs_option
@backend_options
@wait_option
@quiet_option
@json_option
@stops_workers_on_signals
def command(dataset: str, root: str | None, jobs: int, backend: str, scheduler: str | None, wait: bool, quiet: bool,
            as_json: bool) -> None:
    """Decode every fetched clip, mix to mono, resample to 16 kHz (soxr) and write FLAC under audio/.

    Clips already converted from the same raw file are skipped. A clip that cannot be decoded is listed
    with its reason and keeps its fetch status; the others complete. Exits with 2 when no clip is fetched
    yet, when every clip failed (nothing for featurize), or when another process writes the dataset (with
    --wait: waits for it).

    \b
    Example:
      audiobench resample sl-dcase17 --root audiobench-data --jobs 4
    """
    from audiobench.data.resample import resample

    result = resample(dataset, root=root, jobs=jobs, backend=backend, scheduler=scheduler, quiet=quiet, wait=wait)
    if as_json:
        click.echo(json.dumps({"dataset": result.dataset, **result.counts, "elapsed": round(result.elapsed, 3),
                               "failures": [asdict(r) for r in result.failed]}, indent=2))
    else:
        click.echo(result.summary())
    if result.empty:  # after the summary, so the failures are listed first
        raise AudiobenchError(f"no clip of {dataset} could be converted (all {result.counts['failed']} failed); "
                              "fix or re-fetch them, then rerun")
