"""A loopback TCP relay for fault tests: put it between the tool and a lab server (TLS passes through).

It can cut every open connection once after relaying some bytes (a dropped connection in the middle
of a disk copy), pace what clients send (slow uploads, so a test can kill -9 mid-upload), and hold
all traffic (a server that stops answering, so a test can kill -9 while a call hangs).
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time


class Relay:
    def __init__(self, upstream: tuple[str, int], *, drop_after_bytes: int | None = None,
                 upstream_rate: float | None = None) -> None:
        self.upstream = upstream
        self.drop_after = drop_after_bytes
        self.rate = upstream_rate
        self.relayed = 0
        self.drops = 0
        self._next = time.monotonic()
        self._flowing = threading.Event()
        self._flowing.set()
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def hold(self) -> None:
        """Stop relaying: every call through the relay hangs until `release`."""
        self._flowing.clear()

    def release(self) -> None:
        self._flowing.set()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(self.upstream)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._open |= {client, server}
            threading.Thread(target=self._pump, args=(client, server, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, False), daemon=True).start()

    def _pace(self, size: int) -> None:
        with self._lock:
            start = max(time.monotonic(), self._next)
            self._next = start + size / (self.rate or 1.0)
            wait = self._next - time.monotonic()
        if wait > 0:
            time.sleep(wait)

    def _pump(self, src: socket.socket, dst: socket.socket, upstream: bool) -> None:
        try:
            while data := src.recv(16384):
                self._flowing.wait()
                if upstream and self.rate:
                    self._pace(len(data))
                dst.sendall(data)
                if not upstream:
                    self._count(len(data))
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def _count(self, size: int) -> None:
        with self._lock:
            self.relayed += size
            if self.drop_after is None or self.drops or self.relayed < self.drop_after:
                return
            self.drops += 1
            victims, self._open = self._open, set()
        for sock in victims:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def close(self) -> None:
        self._flowing.set()
        self._listener.close()
        with self._lock:
            victims, self._open = self._open, set()
        for sock in victims:
            sock.close()
