"""``audiobench featurize DATASET``: features (VGGish log-mel by default) of every clip with audio, into HDF5."""
from __future__ import annotations

import json

import click

from audiobench.cli.options import (backend_options, jobs_option, json_option, quiet_option, root_option,
                                     stops_workers_on_signals, wait_option)
from audiobench.features.base import DEFAULT_EXTRACTOR, DTYPES, extractors
from audiobench.core.layout import resolve_root
from audiobench.core.errors import AudiobenchError


@click.command("featurize")
@click.argument("dataset")
@root_option
@jobs_option
@backend_options
@click.option("--dtype", type=click.Choice(DTYPES), default="float32", show_default=True,
              help="Storage type of the features (float16 halves the files).")
@click.option("--features", default=DEFAULT_EXTRACTOR, show_default=True, metavar="NAME",
              help=f"Feature extractor, one of: {', '.join(extractors())}.")
@click.option("--split", "splits", multiple=True, metavar="NAME",
              help="Only this split (repeat for several) [default: every split].")
@wait_option
@quiet_option
@json_option
@stops_workers_on_signals
def command(dataset: str, root: str | None, jobs: int, backend: str, scheduler: str | None, dtype: str,
            features: str, splits: tuple[str, ...], wait: bool, quiet: bool, as_json: bool) -> None:
    """Compute features (VGGish log-mel by default) into features/<feature-id>/<split>.h5.

    Adds only clips not yet in the files; safe to kill and rerun. Clips that cannot be read are listed at
    the end by id and reason, and do not stop the others. Exits with 2 when no clip has 16 kHz audio yet
    (run resample first), when every clip failed, or while another process writes the dataset (fetch,
    import, resample) or featurizes the same recipe (with --wait: waits for it).

    \b
    Example:
      audiobench featurize synth --jobs 2
      audiobench featurize synth --features kaldi-fbank-128
      audiobench featurize sl-dcase17 --backend dask --scheduler tcp://10.0.0.5:8786 --split train
    """
    from audiobench.features.featurize import featurize

    result = featurize(dataset, root=resolve_root(root), jobs=jobs, backend=backend, scheduler=scheduler,
                       dtype=dtype, splits=splits or None, quiet=quiet or as_json, features=features,
                       wait=wait)
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2))
    else:
        click.echo(result.summary())
    if result.empty:  # after the summary, so the failures are listed first
        raise AudiobenchError(f"no clip of {dataset} could be featurized (all {len(result.failures)} failed); "
                              "rerun `audiobench resample` for them, then this")
