"""Stopping a run cleanly: Ctrl-C (SIGINT) or SIGTERM (a job scheduler, or torchrun passing a
Ctrl-C on to its processes) lets the update in flight finish and ``last.pt`` be saved; a second
signal stops at once."""

from __future__ import annotations

import signal

# the signals that stop a run cleanly, and how the log names them
STOP_SIGNALS = {signal.SIGINT: "Ctrl-C", signal.SIGTERM: "SIGTERM"}


class StopSignals:
    """Catches the stop signals between :meth:`install` and :meth:`restore`; ``received`` is
    the name of the one that came ("" while none did)."""

    def __init__(self, log):
        self.log = log
        self.received = ""
        self._previous: dict = {}

    def _handle(self, number, frame) -> None:
        if self.received:  # a second signal: stop right now
            raise KeyboardInterrupt
        self.received = STOP_SIGNALS[number]
        self.log(
            f"\n{self.received}: finishing this update, saving last.pt, then stopping "
            "(press Ctrl-C again to abort without saving)"
        )

    def install(self) -> None:
        for number in STOP_SIGNALS:
            try:
                self._previous[number] = signal.signal(number, self._handle)
            except ValueError:  # not the main thread: leave signals alone
                break

    def restore(self) -> None:
        for number, handler in self._previous.items():
            signal.signal(number, handler)
        self._previous = {}
