"""The published lists committed under ``tests/data/reference`` (large ones xz-compressed), unpacked for use.

Tests and benchmarks need the real lists as an index mirror, but a clone must test itself without network
or anything beside it, so byte-exact copies travel with the tests. The package never reads them: at run time
it downloads each list from its official URL.
"""
from __future__ import annotations

import lzma
import shutil
from pathlib import Path

# Where a source checkout keeps them (absent from an installed wheel).
FIXTURES = Path(__file__).resolve().parents[2] / "tests" / "data" / "reference"


def unpack_reference(dest: Path, *, src: Path = FIXTURES) -> Path:
    """Copy ``src`` to ``dest`` with every ``*.xz`` decompressed; returns ``dest``, laid out as a mirror.

    Per-source sub-folders (``eusipco19/``, ``audioset/``, ``dcase2017-task4/``), each file byte-exact, so
    ``dest`` serves as ``--index-mirror`` and the manifests' sha256 hold for it.
    """
    if not src.is_dir():
        raise FileNotFoundError(f"the list fixtures are missing: expected {src} (a source checkout's tests/data)")
    for path in sorted(src.rglob("*")):
        if not path.is_file():
            continue
        out = dest / path.relative_to(src)
        out.parent.mkdir(parents=True, exist_ok=True)
        if path.suffix == ".xz":
            out.with_suffix("").write_bytes(lzma.decompress(path.read_bytes()))
        else:
            shutil.copyfile(path, out)
    return dest
