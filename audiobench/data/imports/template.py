"""The entries a local ``fetch --source-template`` names: one clip's file each, read as a copy's entry.

The template's text (placeholders, ``file://`` URLs and paths) is :mod:`audiobench.data.sources.template`'s;
this reader turns it into entries that the importer validates and adopts exactly as it adopts a copy's
(:mod:`audiobench.data.fetch.files` runs it). A clip whose file is absent is counted as missing and stays as
it was.
"""
from __future__ import annotations

from collections.abc import Iterator, Sequence

from audiobench.core.records import ClipStatus
from audiobench.data.imports.entry import Entry
from audiobench.data.imports.result import ImportResult
from audiobench.data.sources.template import copy_root, fill, local_path


def template_entries(template: str, rows: Sequence[ClipStatus], result: ImportResult) -> Iterator[Entry]:
    """One entry per clip whose file exists (the others are counted as missing)."""
    copy = copy_root(template)
    for row in rows:
        path = local_path(fill(template, row.source_id, row.start, row.end))
        if not path.is_file():
            result.missing += 1
            continue
        member = path.relative_to(copy).as_posix() if path.is_relative_to(copy) else str(path)
        yield Entry("template", copy, member, row.source_id, path.suffix.lower(), path.read_bytes, path=path,
                    clip_id=row.clip_id)
