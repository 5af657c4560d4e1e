"""Folders of per-clip AudioSet files, as the common downloaders lay them out.

- PANNs (github.com/qiuqiangkong/audioset_tagging_cnn, ``utils/dataset.py download_wavs``): ``Y<ytid>.wav``,
  32 kHz mono; a killed run leaves ``_Y<ytid>.*`` (its temporary names) behind, refused as partial;
- audiosetdl (github.com/speedyseal/audiosetdl): ``<ytid>_<start_ms>_<end_ms>.flac``, the end shortened when
  the video ends early;
- audioset-download (PyPI ``audioset-download``, MorenoLaQuatra): ``<label>/<ytid>_<start>-<end>.<ext>`` in
  seconds, the clip copied into the folder of each of its labels (``copy_and_replicate``);
- strong-label sets: ``<ytid>_<start_ms>.<ext>``; and bare ``<ytid>.<ext>``.

A file inside a sub-folder named like one of the dataset's classes carries that one label.
"""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from audiobench.data.imports.entry import Entry, audio_files, file_entry

FORMAT = "audioset-wav"


def entries(copy: Path) -> Iterator[Entry]:
    for path in audio_files(copy):
        yield audio_file_entry(FORMAT, copy, path)


def audio_file_entry(fmt: str, copy: Path, path: Path) -> Entry:
    """One file; a ``_Y…`` name is a partial download, a parent folder may name a label."""
    skip = "partial download (a downloader's temporary _Y… file)" if path.name.startswith("_Y") else None
    label = path.parent.name if path.parent != copy and copy.is_dir() else None
    return file_entry(fmt, copy, path, labels=(label,) if label else None, labels_complete=False, skip=skip)
