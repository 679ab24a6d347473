"""A TCP proxy on 127.0.0.1 in front of the test broker, to hold a worker's requests in flight.

The broker advertises the proxy's port, so every client connection goes through it.
`pause()` holds what clients send (the broker gets nothing more, so a write sent while paused
is never stored); `cut()` closes every connection and drops what was held, as a crash would.
"""

from __future__ import annotations

import socket
import threading


class PausableProxy:
    def __init__(self, listen_port: int, target_port: int) -> None:
        self.target_port = target_port
        self._flowing = threading.Event()
        self._flowing.set()
        self._lock = threading.Lock()
        self._connections: list[tuple[socket.socket, socket.socket, threading.Event]] = []
        self._server = socket.create_server(("127.0.0.1", listen_port))
        self._server.settimeout(0.2)
        self._stopped = threading.Event()
        self.to_broker = bytearray()  # every byte clients sent, for tests that read the requests
        threading.Thread(target=self._accept, daemon=True).start()

    def pause(self) -> None:
        self._flowing.clear()

    def resume(self) -> None:
        self._flowing.set()

    def cut(self) -> None:
        with self._lock:
            connections, self._connections = self._connections, []
        for client, upstream, dead in connections:
            dead.set()
            _close(client, upstream)

    def close(self) -> None:
        self._stopped.set()
        self.cut()
        self._server.close()

    def _accept(self) -> None:
        while not self._stopped.is_set():
            try:
                client, _ = self._server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            client.settimeout(None)
            dead = threading.Event()
            with self._lock:
                self._connections.append((client, upstream, dead))
            threading.Thread(target=self._pump, args=(client, upstream, dead, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, dead, False), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, dead: threading.Event, to_broker: bool) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                while to_broker and not self._flowing.wait(0.05):
                    if dead.is_set():
                        return  # cut while held: dropped, never reaches the broker
                if dead.is_set():
                    return
                if to_broker:
                    with self._lock:
                        self.to_broker += data
                dst.sendall(data)
        except OSError:
            pass
        finally:
            dead.set()
            _close(src, dst)


def _close(*sockets: socket.socket) -> None:
    for s in sockets:
        try:
            s.close()
        except OSError:
            pass
