"""Progress bars for long stages: one place decides how they look and how ``--quiet`` silences them.

Bars are drawn on a terminal only: with stderr piped to a file or ``tee`` (a cluster job's log), tqdm's
carriage returns would leave one line per bar, frozen at whatever count it had last drawn.
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TypeVar

from tqdm.auto import tqdm

T = TypeVar("T")


def progress(items: Iterable[T], *, total: int | None = None, desc: str = "", quiet: bool = False,
             unit: str = "clip") -> Iterator[T]:
    """Iterate with a bar on stderr (none when ``quiet`` or stderr is no terminal), sized to the terminal."""
    yield from tqdm(items, total=total, desc=desc, disable=_disable(quiet), unit=unit, dynamic_ncols=True,
                    leave=False)


def byte_progress(total: int | None, *, desc: str = "", quiet: bool = False) -> tqdm:
    """A bar counting bytes (KB, MB) for a download of ``total`` bytes (unknown: ``None``); call ``update(n)``."""
    return tqdm(total=total, desc=desc, disable=_disable(quiet), unit="B", unit_scale=True, unit_divisor=1024,
                dynamic_ncols=True, leave=False)


def _disable(quiet: bool) -> bool | None:
    """tqdm's ``disable``: True hides the bar, None hides it when stderr is not a terminal."""
    return True if quiet else None
