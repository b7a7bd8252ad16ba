"""uvicorn's server, with the signal handling this service promises: SIGTERM or SIGINT stops
accepting connections, lets the requests in flight finish, and then the process exits with a
status (uvicorn itself re-raises the signal after draining, which would end the process with
-15 instead of 0)."""

from __future__ import annotations

import contextlib
import signal

import uvicorn


class DrainingServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config):
        super().__init__(config)
        self.signals: list[int] = []

    @contextlib.contextmanager
    def capture_signals(self):
        def handle(signum, frame):
            self.signals.append(signum)
            if self.should_exit and signum == signal.SIGINT:
                self.force_exit = True  # a second Ctrl-C: stop waiting for the requests
            self.should_exit = True

        previous = {s: signal.signal(s, handle) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            yield
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)
