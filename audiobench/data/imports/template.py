"""``fetch --source-template`` naming local files (``file://`` URLs or paths): read by the importer, not yt-dlp.

The template names each clip's file with ``{ytid}``, and where the copy's names carry the segment,
``{start}``/``{end}`` (seconds as the lists write them, ``30.000``) or ``{start_ms}``/``{end_ms}``. Each
file found is validated and adopted exactly as ``audiobench import`` adopts a copy's; a clip whose file is
absent stays as it was.
"""
from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from urllib.parse import unquote, urlsplit

from audiobench.core.layout import DatasetPaths, resolve_root
from audiobench.core.records import ClipFailure, ClipStatus
from audiobench.data.imports.adopt import adopt_entries
from audiobench.data.imports.entry import Entry
from audiobench.data.imports.result import ImportResult
from audiobench.data.ledger import Ledger

PLACEHOLDERS = ("{ytid}", "{start}", "{end}", "{start_ms}", "{end_ms}")


def is_local(template: str) -> bool:
    """A ``file://`` URL, or a path (absolute, relative with ``.``/``~``, or ``C:\\``) rather than a URL."""
    scheme = template.split("://", 1)[0].lower() if "://" in template else ""
    return scheme == "file" or (not scheme and (template[:1] in "/\\.~" or template[1:3] in (":\\", ":/")))


def fill(template: str, ytid: str, start: float | None = None, end: float | None = None) -> str:
    """The template with one clip's values in place of its placeholders."""
    text = template.replace("{ytid}", ytid)
    if start is not None:
        text = text.replace("{start}", f"{start:.3f}").replace("{start_ms}", str(round(start * 1000)))
    if end is not None:
        text = text.replace("{end}", f"{end:.3f}").replace("{end_ms}", str(round(end * 1000)))
    return text


def local_path(text: str) -> Path:
    """The path a filled local template names."""
    if text.startswith("file:"):
        return Path(unquote(urlsplit(text).path))
    return Path(text).expanduser()


def copy_root(template: str) -> Path:
    """The folder above every file the template can name: its text before the first placeholder."""
    first = min(template.index(p) for p in PLACEHOLDERS if p in template)
    head = local_path(template[:first] or ".")
    return head if template[:first].endswith(("/", "\\")) else head.parent


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


def fetch_from_files(dataset: str, *, root, index_mirror, options, quiet: bool = False):
    """``fetch`` for a local ``--source-template``: the same registration, selection and result as a download."""
    from audiobench.data.coverage import coverage
    from audiobench.data.fetch import DownloadSummary, FetchResult, empty_if_nothing_ok, select_clips, splits_of
    from audiobench.data.register import register_dataset

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

