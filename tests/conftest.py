"""Shared fixtures: the real published lists (committed under tests/data/), small real files in tmp_path."""
from __future__ import annotations

from pathlib import Path

import pytest

from audiobench.testing.reference import unpack_reference


@pytest.fixture(scope="session")
def reference_dir(tmp_path_factory) -> Path:
    """The published lists (eusipco19, AudioSet, DCASE 2017 task 4), byte-exact, laid out as an index mirror.

    tests/data/SOURCES.md says where each comes from, its sha256 and its licence.
    """
    return unpack_reference(tmp_path_factory.mktemp("reference"))
