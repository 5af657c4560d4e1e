"""Progress bars for long stages: one place decides how they look and how ``--quiet`` silences them."""
from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TypeVar

from tqdm.auto import tqdm

T = TypeVar("T")


def progress(items: Iterable[T], *, total: int | None = None, desc: str = "", quiet: bool = False,
             unit: str = "clip") -> Iterator[T]:
    """Iterate with a bar on stderr (none when ``quiet``), sized to the terminal."""
    yield from tqdm(items, total=total, desc=desc, disable=quiet, unit=unit, dynamic_ncols=True, leave=False)


def byte_progress(total: int | None, *, desc: str = "", quiet: bool = False) -> tqdm:
    """A bar counting bytes (KB, MB) for a download of ``total`` bytes (unknown: ``None``); call ``update(n)``."""
    return tqdm(total=total, desc=desc, disable=quiet, unit="B", unit_scale=True, unit_divisor=1024,
                dynamic_ncols=True, leave=False)
