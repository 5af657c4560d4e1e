"""Shared fixtures: the real published lists from ../shared/reference, small real files in tmp_path."""
from __future__ import annotations

from pathlib import Path

import pytest

REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "reference"


@pytest.fixture(scope="session")
def reference_dir() -> Path:
    """The byte-exact published lists (eusipco19, AudioSet, DCASE 2017 task 4) beside the checkout."""
    if not REFERENCE.is_dir():
        raise RuntimeError(f"the reference lists are missing: expected {REFERENCE} (../shared/reference)")
    return REFERENCE
