"""Shared fixtures: the real published lists (committed under tests/data/), small real files in tmp_path."""
from __future__ import annotations

from pathlib import Path

import pytest

from audiobench.testing.reference import unpack_reference


@pytest.fixture(scope="module")
def one_torch_thread():
    """The nets of the tests are tiny: one thread is faster than two, and immune to a busy shared machine."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def reference_dir(tmp_path_factory) -> Path:
    """The published lists (eusipco19, AudioSet, DCASE 2017 task 4), byte-exact, laid out as an index mirror.

    tests/data/SOURCES.md says where each comes from, its sha256 and its licence.
    """
    return unpack_reference(tmp_path_factory.mktemp("reference"))


@pytest.fixture
def toy_source(monkeypatch) -> str:
    """A recording source added the way a new one is (an entry in ``SOURCES``): IDs of 4 to 12 ``a-z 0-9``."""
    import re

    from audiobench.core.errors import AudiobenchError
    from audiobench.data.sources import SOURCES, Source

    def validate(source_id: str, *, where: str = "") -> str:
        if not isinstance(source_id, str) or not re.fullmatch(r"[a-z0-9]{4,12}", source_id):
            raise AudiobenchError(f"{where}: invalid toy recording ID {source_id!r} (4 to 12 of a-z 0-9)")
        return source_id

    monkeypatch.setitem(SOURCES, "toy", Source("toy", validate, "recordings of the tests"))
    return "toy"
