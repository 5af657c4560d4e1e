"""Pacing downloads like a person: at most N started per rolling hour, across workers and restarts.

YouTube caps what one address or account may download per hour; past the cap it answers every request with a
bot check for a while. The memory of what was started is the ledger's ``attempts`` table (one row per download
started, written in the same transaction that checks the cap), so every worker, every process sharing the
ledger, and the next run after a restart see the same count. Starts are spread with a random pause (jitter);
when the hour's budget is spent the run stops and says when the next download may start. ``--rate-limit``
(:class:`RateLimiter`) spaces starts within this process only: at most so many per second.
"""
from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass
from typing import Protocol

from audiobench.data.ledger import Ledger

HOUR = 3600.0


class Clock(Protocol):
    """Wall time and waiting; tests inject a fake one."""

    def time(self) -> float: ...

    def sleep(self, seconds: float, stop: threading.Event) -> bool:
        """Wait ``seconds``; True when ``stop`` was set meanwhile."""
        ...


class SystemClock:
    def time(self) -> float:
        return time.time()

    def sleep(self, seconds: float, stop: threading.Event) -> bool:
        return stop.wait(seconds)


@dataclass(frozen=True)
class NotStarted:
    """Why a download did not start: over the cap (``next_at``: epoch time a start becomes possible), or the
    run stopped during the pause (``next_at`` is None)."""

    next_at: float | None


class Pacer:
    """Lets downloads start and records each in the ledger. With ``max_per_hour``, a start waits a random
    pause of up to ``3600 / max_per_hour`` seconds (half that on average, the gaps of all workers together)
    and is refused when ``max_per_hour`` downloads began in the past hour.
    """

    def __init__(self, ledger: Ledger, max_per_hour: int | None, *, clock: Clock | None = None,
                 rng: random.Random | None = None) -> None:
        self.ledger = ledger
        self.max_per_hour = max_per_hour
        self.clock = clock or SystemClock()
        self._rng = rng or random.Random()
        self._lock = threading.Lock()

    def start(self, clip_id: str, stop: threading.Event) -> NotStarted | None:
        """Record a start of ``clip_id`` (None), or say why it may not start now."""
        cap = self.max_per_hour
        with self._lock:
            if stop.is_set():  # stopped while this worker waited for the lock
                return NotStarted(None)
            if cap:
                recent = [t for t, _ in self.ledger.starts(since=self.clock.time() - HOUR)]
                if len(recent) >= cap:  # spent: say so at once instead of pausing first
                    return NotStarted(recent[len(recent) - cap] + HOUR)
                if self.clock.sleep(self._rng.uniform(0.0, HOUR / cap), stop):
                    return NotStarted(None)
            next_at = self.ledger.reserve_start(clip_id, self.clock.time(), cap=cap, window=HOUR)
        return None if next_at is None else NotStarted(next_at)


class RateLimiter:
    """At most ``rate`` starts per second across threads (``None``: no limit)."""

    def __init__(self, rate: float | None) -> None:
        self._interval = 1.0 / rate if rate else 0.0
        self._next = time.monotonic()
        self._lock = threading.Lock()

    def wait(self) -> None:
        if not self._interval:
            return
        with self._lock:
            current = time.monotonic()
            slot = max(current, self._next)
            self._next = slot + self._interval
        time.sleep(max(0.0, slot - current))
