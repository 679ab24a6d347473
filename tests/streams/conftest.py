"""Broker fixtures for integration tests: Tansu (tests/broker.py) started on a free 127.0.0.1
port for the test module or the test and stopped after it; `Worker`, a `crswatch worker` process.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.broker import free_port, start_tansu, stop
from tests.streams.proxy import PausableProxy


@pytest.fixture(scope="module")
def kafka_broker() -> Iterator[str]:
    proc, address = start_tansu()
    try:
        yield address
    finally:
        stop(proc)


@pytest.fixture
def fresh_broker() -> Iterator[str]:
    """A broker of its own for one test: the input topic names are fixed."""
    proc, address = start_tansu()
    try:
        yield address
    finally:
        stop(proc)


@pytest.fixture
def proxied_broker() -> Iterator[tuple[str, PausableProxy]]:
    """A broker of its own behind a proxy the test can pause and cut (tests/streams/proxy.py)."""
    proxy_port = free_port()
    proc, address = start_tansu(advertised_port=proxy_port)
    proxy = PausableProxy(proxy_port, int(address.rsplit(":", 1)[1]))
    try:
        yield f"127.0.0.1:{proxy_port}", proxy
    finally:
        proxy.close()
        stop(proc)


class Worker:
    """`crswatch worker` in its own process, on the Tansu flavor, with a web port to ask."""

    def __init__(self, broker: str, data_dir: Path, store: str = "memory", partitions: int = 4,
                 faust_cli: bool = False, name: str = "w", extra_env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.log_path = data_dir.parent / f"{name}-{self.port}.log"
        env = {**os.environ, "CRSWATCH_BROKER": broker, "CRSWATCH_STORE": store,
               "CRSWATCH_DATA_DIR": str(data_dir), "CRSWATCH_WEB_PORT": str(self.port),
               "CRSWATCH_PARTITIONS": str(partitions), "CRSWATCH_BROKER_FLAVOR": "tansu", **(extra_env or {})}
        if faust_cli:
            cmd = [sys.executable, "-m", "faust", "-A", "streams.app", "worker", "--loglevel", "info"]
        else:
            cmd = [sys.executable, "-m", "streams.cli", "worker"]
        self.log = self.log_path.open("wb")
        self.proc = subprocess.Popen(cmd, env=env, stdout=self.log, stderr=subprocess.STDOUT,
                                     cwd=Path(__file__).resolve().parents[2])

    def get(self, path: str) -> Any:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=2) as r:
            return json.loads(r.read())

    def stats(self) -> dict[str, Any]:
        try:
            stats: dict[str, Any] = self.get("/crswatch/stats/")
            return stats
        except (OSError, ValueError):
            return {}

    def count(self, name: str) -> int:
        return int(self.stats().get("counts", {}).get(name, 0))

    def wait_for(self, condition: Callable[[], bool], timeout: float = 90, what: str = "condition") -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if self.proc.poll() is not None:
                raise AssertionError(f"worker exited ({self.proc.returncode}): {self.tail()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}; stats {self.stats()}; log: {self.tail()}")
            time.sleep(0.1)

    def tail(self) -> str:
        self.log.flush()
        return self.log_path.read_text(errors="replace")[-3000:]

    def terminate(self) -> None:
        self.proc.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self.log.close()

    def stop(self) -> None:
        if self.proc.poll() is None:
            stop(self.proc)
        self.log.close()


def wait_quiet(workers: list[Worker], seconds: float = 3.0, timeout: float = 120) -> None:
    """Until every worker has caught up with its input partitions, holds nothing, and has taken
    no message for `seconds`."""
    deadline = time.monotonic() + timeout
    last: tuple[int, ...] = ()
    since = time.monotonic()
    while True:
        stats = [w.stats() for w in workers]
        now = tuple(s.get("counts", {}).get("in", 0) + s.get("held", 0) * 1_000_000 for s in stats)
        if now != last or any(s.get("held", 1) or s.get("input_lag") != 0 for s in stats):
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= seconds:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"workers never went quiet: {stats}")
        for w in workers:
            if w.proc.poll() is not None:
                raise AssertionError(f"worker exited: {w.tail()}")
        time.sleep(0.2)
