"""A progress line for long runs of the CLI (publish): events done, rate, and the simulated clock.

On a terminal one line is rewritten in place at most every `every` seconds; elsewhere (a log file, CI)
a plain line is written every `log_every` seconds, so a slow `publish --speed N` says what it is doing
without flooding a log. Writes to stderr by default; the summary of the run is the caller's.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TextIO


class Progress:
    def __init__(self, what: str, out: TextIO | None = None, interactive: bool | None = None,
                 every: float = 0.5, log_every: float = 10.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.what = what
        self.out = out if out is not None else sys.stderr
        self.interactive = self.out.isatty() if interactive is None else interactive
        self.every = every if self.interactive else log_every
        self.clock = clock
        self.started = clock()
        self.last = self.started
        self.shown = False

    def line(self, done: int, simulated: float | None) -> str:
        elapsed = max(self.clock() - self.started, 1e-9)
        sim = "" if simulated is None else \
            f", simulated clock {datetime.fromtimestamp(simulated, UTC).strftime('%Y-%m-%d %H:%M')} UTC"
        return f"{self.what}: {done:,} events, {done / elapsed:,.0f} ev/s{sim}"

    def update(self, done: int, simulated: float | None) -> None:
        now = self.clock()
        if now - self.last < self.every:
            return
        self.last = now
        self._write(self.line(done, simulated))

    def close(self, done: int, simulated: float | None) -> None:
        """The last state, if anything was shown (a short run stays silent), and the end of the line."""
        if self.shown:
            self._write(self.line(done, simulated))
            if self.interactive:
                self.out.write("\n")
                self.out.flush()

    def _write(self, text: str) -> None:
        self.shown = True
        if self.interactive:
            self.out.write("\r" + text + "\x1b[K")
        else:
            self.out.write(text + "\n")
        self.out.flush()
