"""Which reader a copy needs (``--format auto``), and the ``folder`` format: any mix of the others.

A file is read by its suffix (``.h5``/``.hdf5`` PANNs, ``.parquet`` Hugging Face, ``.tar`` WebDataset, an
audio suffix a single clip); a folder by what it holds: only audio files named like DCASE cuts is
``dcase2017``, other audio files ``audioset-wav``, only containers of one kind that kind, a ledger
``audiobench``, anything else ``folder``. Every walk is in sorted relative-path order.
"""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from audiobench.core.errors import AudiobenchError
from audiobench.data.imports import audioset_wav, dcase2017, hf_parquet, panns_hdf5, webdataset
from audiobench.data.imports.entry import AUDIO_SUFFIXES, Entry, file_entry

FORMAT = "folder"
AUDIOBENCH = "audiobench"
FORMATS = ("auto", dcase2017.FORMAT, audioset_wav.FORMAT, panns_hdf5.FORMAT, hf_parquet.FORMAT, webdataset.FORMAT,
           AUDIOBENCH, FORMAT)
_CONTAINERS = {panns_hdf5.FORMAT: panns_hdf5, hf_parquet.FORMAT: hf_parquet, webdataset.FORMAT: webdataset}


def kind_of(path: Path) -> str | None:
    """The format a single file belongs to by its suffix (``"audio"`` for a clip), or None."""
    name = path.name.lower()
    for fmt, module in _CONTAINERS.items():
        if name.endswith(module.SUFFIXES):
            return fmt
    return "audio" if path.suffix.lower() in AUDIO_SUFFIXES else None


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and kind_of(p) is not None)


def detect(path: Path) -> str:
    """The format of the copy at ``path``; an error when it holds nothing importable."""
    if path.is_file():
        kind = kind_of(path)
        if kind is None:
            raise AudiobenchError(f"{path}: not a copy audiobench can read (an audio file, .h5, .parquet or .tar)")
        return audioset_wav.FORMAT if kind == "audio" else kind
    if not path.is_dir():
        raise AudiobenchError(f"{path}: no such file or folder")
    if (path / "ledger.sqlite").is_file():
        return AUDIOBENCH
    files = _files(path)
    kinds = {kind_of(p) for p in files}
    if not kinds:
        raise AudiobenchError(f"{path}: holds no audio file, .h5, .parquet or .tar shard")
    if kinds == {"audio"}:
        return dcase2017.FORMAT if dcase2017.looks_like([p.stem for p in files]) else audioset_wav.FORMAT
    return kinds.pop() if len(kinds) == 1 else FORMAT


def entries(fmt: str, copy: Path) -> Iterator[Entry]:
    """Every entry of ``copy`` read as ``fmt`` (not ``auto``/``audiobench``)."""
    if fmt == dcase2017.FORMAT:
        yield from dcase2017.entries(copy) if copy.is_dir() else [file_entry(fmt, copy, copy)]
    elif fmt == audioset_wav.FORMAT:
        yield from audioset_wav.entries(copy) if copy.is_dir() else [audioset_wav.audio_file_entry(fmt, copy, copy)]
    elif fmt in _CONTAINERS:
        module = _CONTAINERS[fmt]
        for path in [copy] if copy.is_file() else [p for p in _files(copy) if kind_of(p) == fmt]:
            yield from module.entries(copy, path)
    elif fmt == FORMAT:
        for path in [copy] if copy.is_file() else _files(copy):
            kind = kind_of(path)
            if kind == "audio":
                yield audioset_wav.audio_file_entry(FORMAT, copy, path)
            else:
                yield from _CONTAINERS[kind].entries(copy, path)
    else:
        raise AudiobenchError(f"--format {fmt!r}: expected one of {', '.join(FORMATS)}")


def estimate(fmt: str, copy: Path) -> int | None:
    """How many entries ``copy`` holds, where that is cheap to know (for the progress bar)."""
    try:
        paths = [copy] if copy.is_file() else _files(copy)
        total = 0
        for path in paths:
            kind = kind_of(path)
            if kind == "audio":
                total += 1
            elif kind == webdataset.FORMAT:
                return None
            elif kind is not None:
                total += _CONTAINERS[kind].count(path)
        return total
    except (OSError, AudiobenchError):
        return None
