"""``audiobench import DATASET PATH...``: adopt clips from copies already on disk instead of downloading them."""
from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from audiobench.cli.options import (jobs_option, json_option, quiet_option, root_option, stops_workers_on_signals,
                                     wait_option)
from audiobench.core.errors import AudiobenchError
from audiobench.core.layout import resolve_root

if TYPE_CHECKING:
    from audiobench.data.imports.own_data import OwnDataResult

# The limits of --folds, checked by import_own_data (kept here so that --help does not import it).
FOLDS_MIN, FOLDS_MAX = 3, 99
FORMATS = ("auto", "dcase2017", "audioset-wav", "panns-hdf5", "hf-parquet", "webdataset", "audiobench", "folder")


@click.command("import")
@stops_workers_on_signals
@click.argument("dataset")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="auto", show_default=True,
              help="How the copies are laid out; auto detects each and says which it chose.")
@click.option("--split", default=None, help="Adopt only clips of this split.")
@click.option("--index-mirror", envvar="AUDIOBENCH_INDEX_MIRROR", show_envvar=True, metavar="DIR|URL",
              help="Take the list files from this folder or base URL instead of their official hosts.")
@click.option("--labels", type=click.Path(dir_okay=False, exists=True, path_type=Path), default=None,
              help="Your own data: a file,labels table; DATASET is then the new dataset's name.")
@click.option("--strong", type=click.Path(dir_okay=False, exists=True, path_type=Path), default=None,
              help="Your own data: a file,onset,offset,label table of strong events.")
@click.option("--splits", "splits_file", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              default=None, help="Your own data: a file,split table.")
@click.option("--folds", type=int, default=None, metavar="K",
              help=f"Your own data: K seeded stratified folds, {FOLDS_MIN} to {FOLDS_MAX} and at most one per file.")
@click.option("--classes", type=click.Path(dir_okay=False, exists=True, path_type=Path), default=None,
              help="Your own data: the class names, one a line, in this order.")
@root_option
@jobs_option
@wait_option
@quiet_option
@json_option
def command(dataset: str, paths: tuple[Path, ...], fmt: str, split: str | None, index_mirror: str | None,
            labels: Path | None, strong: Path | None, splits_file: Path | None, folds: int | None,
            classes: Path | None, root: str | None, jobs: int, wait: bool, quiet: bool, as_json: bool) -> None:
    """Match each file, row or tar member of the copies to a listed clip (by YouTube ID and segment), check
    its audio, and adopt it as if fetched: raw/ file, ledger row ok with its origin.

    One writer per dataset: while another process writes it (fetch, import, resample) or featurizes it, the
    import stops at once naming that process, or with --wait waits for it.

    Exit status: 0 when any clip was adopted or already there (even if some entries were rejected); 2 when
    nothing could be adopted, another process writes the dataset, or on a usage error.

    \b
    Examples:
      audiobench import sl-dcase17 ~/dcase2017/audio --index-mirror lists/
      audiobench import audioset-balanced balanced_train.h5 eval.h5 --format panns-hdf5
      audiobench import audioset-balanced hf-mirror/data/ --jobs 4 --json
    """
    own = (strong, splits_file, folds, classes)
    if labels is None and any(v is not None for v in own):
        raise AudiobenchError("--strong, --splits, --folds and --classes describe your own data: give --labels too")
    root_path = resolve_root(root)
    if labels is not None:
        result = _own_data(dataset, paths, labels=labels, strong=strong, splits=splits_file, folds=folds,
                           classes=classes, root=root_path, jobs=jobs, quiet=quiet, wait=wait)
    elif fmt == "audiobench":
        from audiobench.data.imports.merge import merge_roots

        result = merge_roots(dataset, list(paths), root=root_path, quiet=quiet, wait=wait)
    else:
        from audiobench.data.imports.copies import import_copies

        result = import_copies(dataset, list(paths), root=root_path, format=fmt, split=split,
                               index_mirror=index_mirror, jobs=jobs, quiet=quiet, wait=wait)
    click.echo(json.dumps(result.to_dict(), indent=2) if as_json else result.summary())
    if result.empty:
        raise AudiobenchError(f"nothing of {dataset} could be adopted from {', '.join(map(str, paths))}")


def _own_data(name: str, paths: tuple[Path, ...], **options: Any) -> OwnDataResult:
    if len(paths) != 1:
        raise AudiobenchError("--labels: give one folder of audio (import NAME DIR --labels FILE)")
    from audiobench.data.imports.own_data import import_own_data

    return import_own_data(name, paths[0], **options)
