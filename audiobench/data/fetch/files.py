"""``fetch`` with a local ``--source-template`` (``file://`` URLs or paths): the clips' files read by the importer.

The same registration, clip selection and result as a download; each file found is validated and adopted
exactly as ``audiobench import`` adopts a copy's (:func:`audiobench.data.imports.adopt.adopt_entries`), and a
clip whose file is absent, or is not the clip, stays as it was.
"""
from __future__ import annotations

from pathlib import Path

from audiobench.core.layout import DatasetPaths, resolve_root
from audiobench.core.records import ClipFailure
from audiobench.data.coverage import coverage
from audiobench.data.fetch.options import FetchOptions, select_clips, splits_of
from audiobench.data.fetch.outcome import DownloadSummary, FetchResult, empty_if_nothing_ok
from audiobench.data.imports.adopt import adopt_entries
from audiobench.data.imports.result import ImportResult
from audiobench.data.imports.template import template_entries
from audiobench.data.ledger import Ledger
from audiobench.data.register import register_dataset


def fetch_from_files(dataset: str, *, root: str | Path | None, index_mirror: str | None, options: FetchOptions,
                     quiet: bool = False) -> FetchResult:
    """``fetch`` for a local ``--source-template`` (the caller holds the dataset's lock)."""
    registration = register_dataset(dataset, root=root, mirror=index_mirror)
    paths = DatasetPaths(resolve_root(root), registration.dataset)
    result = ImportResult(registration.dataset, {options.source_template: "template"})
    with Ledger(paths.ledger) as ledger:
        splits_of(ledger, options.split)
        rows = select_clips(ledger, options)
        entries = template_entries(options.source_template, rows, result)
        adopt_entries(ledger, paths, entries, result, split=options.split, jobs=options.jobs, quiet=quiet,
                      total=len(rows))
        split_of = {r.clip_id: r.split for r in rows}
        failures = [ClipFailure(e.clip_id or e.member, f"{e.member}: {e.reason}", split_of.get(e.clip_id or ""),
                                "pending") for e in result.rejected_entries]
        cover = [r for r in coverage(ledger) if options.split in (None, r.split)]
    # A file that is not the clip leaves the clip as it was (pending, with the reason as its last error).
    counts = {"ok": result.adopted, "unavailable": 0, "failed": 0,
              "pending": result.missing + sum(result.rejected.values())}
    summary = DownloadSummary(len(rows), counts, False, failures=failures)
    return FetchResult(registration, empty_if_nothing_ok(summary, cover, registration.dataset, options), cover)
