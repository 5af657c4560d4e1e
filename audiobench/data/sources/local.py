"""The ``local`` source: recordings that are files in a folder of the user's own (``audiobench import NAME DIR``).

A recording's ID is made from the file's path relative to that folder (:func:`local_id_for`), so it can never
name anything outside the folder and is always safe inside a file name. Its audio is not downloaded: the
import copies each file into the dataset's ``raw/``.
"""
from __future__ import annotations

import re
from pathlib import PurePosixPath

from audiobench.core.errors import AudiobenchError

_LOCAL_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def validate_local_id(source_id: str, *, where: str = "") -> str:
    """Refuse anything but letters, digits, '.', '_' and '-' (starting with a letter or digit, at most 128,
    no ``..``): the ID becomes part of the clip's file names."""
    if not isinstance(source_id, str) or not _LOCAL_ID.match(source_id) or ".." in source_id:
        prefix = f"{where}: " if where else ""
        raise AudiobenchError(f"{prefix}invalid local recording ID {source_id!r} (letters, digits, '.', '_' and "
                              "'-', starting with a letter or digit, no '..', at most 128)")
    return source_id


def local_id_for(relative: str, *, where: str = "") -> str:
    """The recording ID of a file at ``relative`` (a POSIX path inside the folder): its path without the
    extension, folders joined by ``--``, any other character outside ``A-Z a-z 0-9 . _ -`` replaced by ``_``.

    >>> local_id_for("dogs/bark 01.wav")
    'dogs--bark_01'
    """
    path = PurePosixPath(relative)
    parts = [*path.parent.parts, path.stem] if str(path.parent) != "." else [path.stem]
    text = "--".join(_UNSAFE.sub("_", p) for p in parts).replace("..", "_.")
    if text and not text[0].isalnum():
        text = "x" + text
    return validate_local_id(text, where=where)
