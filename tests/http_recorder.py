"""A real HTTP server on 127.0.0.1 that records the JSON bodies POSTed to it.

Used as a stand-in Alertmanager for the sink's unit tests and as the webhook receiver that
the real Alertmanager notifies in the end-to-end test.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Recorder:
    url: str = ""
    posts: list[tuple[str, Any]] = field(default_factory=list)  # (path, JSON body)
    statuses: list[int] = field(default_factory=list)  # answers to give first; then 200
    lock: threading.Condition = field(default_factory=threading.Condition)

    def wait_for(self, predicate: Callable[[list[tuple[str, Any]]], bool], timeout: float = 30.0) -> bool:
        """Wait until predicate(posts) holds (or the deadline passes: returns False)."""
        deadline = time.monotonic() + timeout
        with self.lock:
            while not predicate(self.posts):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.lock.wait(left)
            return True


@contextmanager
def recording_server() -> Iterator[Recorder]:
    rec = Recorder()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            with rec.lock:
                status = rec.statuses.pop(0) if rec.statuses else 200
                if status == 200:
                    rec.posts.append((self.path, json.loads(body)))
                rec.lock.notify_all()
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    rec.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield rec
    finally:
        server.shutdown()
        server.server_close()
