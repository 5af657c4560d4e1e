"""Records read back as JSON objects (metrics.json, model.json, results.json): checked once, one-line errors.

A record cut short by a full disk or a copy, edited by hand or written by something else is named with
what is wrong (the line of the syntax error, or the keys it lacks) and what to do, never a traceback.
"""
from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from audiobench.core.errors import AudiobenchError, InputFormatError


def read_json_object(path: Path, *, required: Iterable[str] = (), fix: str = "") -> dict[str, Any]:
    """The JSON object in ``path``, holding every key of ``required``; else an error naming the file.

    ``fix``: what the user does about a damaged file (said after the problem).
    """
    then = f"; {fix}" if fix else ""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise AudiobenchError(f"no {path}{then}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputFormatError(f"{path}: cannot be read ({getattr(exc, 'strerror', None) or exc}){then}") from None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputFormatError(f"{path} line {exc.lineno}: not valid JSON ({exc.msg}){then}") from None
    if not isinstance(value, dict):
        raise InputFormatError(f"{path}: expected a JSON object, got {type(value).__name__}{then}")
    missing = [key for key in required if key not in value]
    if missing:
        raise InputFormatError(f"{path}: lacks {', '.join(missing)}{then}")
    return value
