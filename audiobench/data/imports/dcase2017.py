"""DCASE 2017 task 4 audio: the organisers' download script and ``dcase_util``.

The organisers' script (github.com/ankitshah009/Task-4-Large-scale-weakly-supervised-sound-event-detection-
for-smart-cars, ``download_data.py``) writes ``Y<ytid>_<start>_<end>.wav`` with the times as the CSV writes
them (``30.000``), 44.1 kHz 16-bit, and leaves the whole video ``Y<ytid>.wav`` beside the cuts; a video that
ended early gives a short cut. ``dcase_util`` (``TUTSoundEvents``-style datasets) keeps
``audio/Y<ytid>_<s>_<e>.flac`` in the source's channels. Both are plain files: names resolve in ``match``.
"""
from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from audiobench.data.imports.entry import Entry, audio_files, file_entry

FORMAT = "dcase2017"
_CUT = re.compile(r"^Y.+_\d+\.\d{3}_\d+\.\d{3}$")


def looks_like(names: list[str]) -> bool:
    """Most audio file stems are DCASE cuts (``Y<ytid>_30.000_40.000``)."""
    cuts = sum(bool(_CUT.match(n)) for n in names)
    return bool(names) and cuts * 2 >= len(names)


def entries(copy: Path) -> Iterator[Entry]:
    for path in audio_files(copy):
        yield file_entry(FORMAT, copy, path)
