"""SIGTERM and SIGINT as an exception in the main thread, so that an interrupted stage cleans up.

Python's default SIGTERM ends the process on the spot: no ``finally`` runs, locks are dropped only by the
kernel, and worker processes are left training for nobody. Raised as :class:`Interrupted` instead, the
stage's ``finally`` blocks run (temporary files removed, locks released) and the command line stops the
workers and exits with 128 + the signal number, as a shell expects (143 for SIGTERM, 130 for SIGINT).
"""
from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

SIGNALS = (signal.SIGTERM, signal.SIGINT)


class Interrupted(KeyboardInterrupt):
    """The run was stopped by a signal; a ``KeyboardInterrupt`` so that code handling Ctrl-C handles it too."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        self.name = signal.Signals(signum).name
        super().__init__(self.name)

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


@contextmanager
def interrupt_on_signals() -> Iterator[None]:
    """Raise :class:`Interrupted` in the main thread on SIGTERM or SIGINT while the block runs.

    The first signal restores the previous handlers, so a second one while cleaning up acts as it used to
    (SIGINT: ``KeyboardInterrupt``; SIGTERM: the process ends at once). Outside the main thread (where
    Python cannot set handlers) this does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {signum: signal.getsignal(signum) for signum in SIGNALS}

    def restore() -> None:
        for signum, handler in previous.items():
            if handler is not None:  # None: set outside Python, cannot be put back
                signal.signal(signum, handler)

    def handle(signum: int, frame: FrameType | None) -> None:
        restore()
        raise Interrupted(signum)

    for signum in SIGNALS:
        signal.signal(signum, handle)
    try:
        yield
    finally:
        restore()
