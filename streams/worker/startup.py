"""Start-up phases of the worker, each logged once at INFO with the seconds since the process began.

A worker is ready when it has joined the group, holds partitions and has recovered its table from
the changelog; until then `/crswatch/ready/` answers 503. The log says where the time went.
"""

from __future__ import annotations

import logging
import time

logger = logging.getLogger("crswatch.startup")


def _process_start() -> float:
    """Monotonic time of the process start (Linux /proc), else now."""
    try:
        with open("/proc/self/stat", encoding="ascii") as fh:
            ticks = float(fh.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/uptime", encoding="ascii") as fh:
            uptime = float(fh.read().split()[0])
        import os

        return time.monotonic() - (uptime - ticks / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError):
        return time.monotonic()


class StartupLog:
    """Phases before faust has set up logging (reading settings, building the app) are kept and logged
    at the first `flush()` after it has."""

    def __init__(self) -> None:
        self.started = _process_start()
        self.last = self.started
        self.seen: set[str] = set()
        self.done = False
        self.pending: list[tuple[str, float, float, str]] = []
        self.warnings: list[str] = []

    def phase(self, name: str, detail: str = "") -> None:
        now = time.monotonic()
        self.pending.append((name, now - self.started, now - self.last, f"; {detail}" if detail else ""))
        self.last = now
        self.flush()

    def warn(self, message: str) -> None:
        self.warnings.append(message)
        self.flush()

    def flush(self) -> None:
        if not logging.getLogger().handlers:
            return
        for name, total, delta, detail in self.pending:
            logger.info("start-up: %s after %.1f s (+%.1f s)%s", name, total, delta, detail)
        for message in self.warnings:
            logger.warning("start-up: %s", message)
        self.pending.clear()
        self.warnings.clear()

    def once(self, name: str, detail: str = "") -> None:
        if name not in self.seen:
            self.seen.add(name)
            self.phase(name, detail)
