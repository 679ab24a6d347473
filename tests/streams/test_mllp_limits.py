"""The MLLP listener's limits on a real socket on 127.0.0.1: an oversized message, a frame that never
ends, an idle connection and too many connections are refused and counted, and the listener answers
the next good message."""

from __future__ import annotations

import asyncio
import contextlib
import io
import socket
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from streams.mllp import JsonlSink, Limits, Listener, start
from tests.streams.feeds.test_hl7v2 import PCD01
from tests.streams.test_mllp import FS, VT, exchange, frame, msa

Serve = Callable[[Limits], tuple[int, Listener]]


@pytest.fixture
def serve() -> Iterator[Serve]:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    servers: list[asyncio.Server] = []

    def make(limits: Limits) -> tuple[int, Listener]:
        lst = Listener(JsonlSink(io.StringIO(), io.StringIO()), limits=limits)
        server = asyncio.run_coroutine_threadsafe(start(lst, "127.0.0.1", 0), loop).result(timeout=10)
        servers.append(server)
        return server.sockets[0].getsockname()[1], lst

    async def shutdown() -> None:
        for server in servers:
            server.close()
            await server.wait_closed()
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    try:
        yield make
    finally:
        asyncio.run_coroutine_threadsafe(shutdown(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()


def _closed(sock: socket.socket, timeout: float = 5.0) -> bytes:
    """Everything the listener sends until it closes the connection."""
    sock.settimeout(timeout)
    got = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return got
        got += chunk


def test_an_oversized_message_is_refused_and_the_next_good_one_is_answered(serve: Serve) -> None:
    port, lst = serve(Limits(max_message_bytes=4096))
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(VT + b"MSH|" + b"X" * 20_000 + FS + b"\r")
        answer = _closed(sock)
    assert b"MSA|AR" in answer and b"over 4096 bytes" in answer
    assert lst.refused["oversized"] == 1
    assert msa(exchange(port, frame(PCD01))[0])[1] == "AA"  # the listener is still up
    assert lst.acks["AA"] == 1


def test_a_frame_that_never_ends_is_bounded_by_the_size_limit(serve: Serve) -> None:
    port, lst = serve(Limits(max_message_bytes=4096, idle_seconds=30))
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(VT + b"MSH|^~\\&|")
        # 200 kB of a frame with no end: the listener refuses it and closes the connection, which the
        # sender may see as a reset while it is still writing
        with contextlib.suppress(ConnectionResetError, BrokenPipeError):
            for _ in range(200):
                sock.sendall(b"Y" * 1024)
            _closed(sock)
    deadline = time.monotonic() + 5
    while lst.refused["oversized"] == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert lst.refused["oversized"] == 1 and lst.connections == 0
    assert msa(exchange(port, frame(PCD01))[0])[1] == "AA"


def test_an_idle_or_stalled_connection_is_closed_and_counted(serve: Serve) -> None:
    port, lst = serve(Limits(idle_seconds=0.5))
    with socket.create_connection(("127.0.0.1", port), timeout=10) as idle, \
            socket.create_connection(("127.0.0.1", port), timeout=10) as stalled:
        stalled.sendall(VT + b"MSH|^~\\&|SLOW")  # a frame started and never finished
        started = time.monotonic()
        assert _closed(idle) == b"" and _closed(stalled) == b""
        assert time.monotonic() - started < 5
    assert lst.refused["idle"] == 2
    assert msa(exchange(port, frame(PCD01))[0])[1] == "AA"


def test_connections_beyond_the_limit_are_closed_and_counted(serve: Serve) -> None:
    port, lst = serve(Limits(max_connections=2))
    held = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(2)]
    try:
        deadline = time.monotonic() + 5
        while lst.connections < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        with socket.create_connection(("127.0.0.1", port), timeout=10) as extra:
            assert _closed(extra) == b""
        assert lst.refused["connections"] == 1
    finally:
        for sock in held:
            sock.close()
    deadline = time.monotonic() + 5
    while lst.connections and time.monotonic() < deadline:
        time.sleep(0.01)
    assert msa(exchange(port, frame(PCD01))[0])[1] == "AA"  # a slot is free again
