"""The fetch stage: get every listed segment that can be had, and record exactly what could not.

:func:`fetch` checks what it is asked, takes the dataset's lock, and hands the run to one of two ways in:
downloads from YouTube (:mod:`~audiobench.data.fetch.download`, the default) or, for a ``--source-template``
naming local files, the importer (:mod:`~audiobench.data.fetch.files`). Both register the lists, select the
same clips (:mod:`~audiobench.data.fetch.options`) and give the same result
(:mod:`~audiobench.data.fetch.outcome`). A download run's counts, stops and probe verdicts are kept by
:mod:`~audiobench.data.fetch.bookkeeping`, its probe clip by :mod:`~audiobench.data.fetch.probe`, its pace by
:mod:`~audiobench.data.fetch.pacing`.

Only YouTube recordings are downloaded (``[source] kind = "youtube"``, the default): a dataset or clip of
another source is refused in one line before anything is fetched.
"""
from __future__ import annotations

from pathlib import Path

from audiobench.core.layout import DatasetPaths, resolve_root
from audiobench.data.fetch.download import download_clips, fetch_downloads
from audiobench.data.fetch.files import fetch_from_files
from audiobench.data.fetch.options import FetchOptions, parse_shard, select_clips
from audiobench.data.fetch.outcome import DownloadSummary, FetchResult
from audiobench.data.manifests import load_manifest
from audiobench.data.sources import require_fetchable
from audiobench.data.sources.template import is_local
from audiobench.data.sources.youtube import check_source_template, require_javascript_runtime


def fetch(dataset: str, *, root: str | Path | None = None, index_mirror: str | None = None,
          options: FetchOptions | None = None, quiet: bool = False) -> FetchResult:
    """Rebuild ``dataset`` from its published lists: verified index files, then every segment that can be had.

    Rerun at will: finished clips are skipped, ``failed`` ones are tried again, ``unavailable`` ones only
    with ``retry_unavailable``. One writer per dataset: while another process writes it (fetch, import,
    resample, synth) or featurize reads it, :class:`~audiobench.core.locking.Busy` names that process, or with
    ``options.wait`` the run waits for it.

    >>> fetch("sl-dcase17", root="data", options=FetchOptions(split="test", limit=10))   # doctest: +SKIP
    """
    options = options or FetchOptions()
    manifest = load_manifest(dataset, root=root)
    require_fetchable(manifest.source, what=f"dataset {manifest.name!r} ({manifest.path})")
    check_source_template(options.source_template)  # before any work, so the message comes first
    local = is_local(options.source_template)
    if not local:
        require_javascript_runtime(options.source_template)
    with DatasetPaths(resolve_root(root), manifest.name).writing(wait=options.wait):  # the lists too
        if local:  # local files: validated and adopted by the importer
            return fetch_from_files(dataset, root=root, index_mirror=index_mirror, options=options, quiet=quiet)
        return fetch_downloads(manifest.path, root=root, index_mirror=index_mirror, options=options, quiet=quiet)


__all__ = ["DownloadSummary", "FetchOptions", "FetchResult", "download_clips", "fetch", "parse_shard", "select_clips"]
