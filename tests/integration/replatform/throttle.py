"""A loopback TCP relay that paces the bytes clients send (all connections share one rate).

Put between the tool and the lab's moto (TLS passes through untouched), it makes EBS block puts
(512 KiB each) slow enough that a test can kill -9 the tool in the middle of a disk upload.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time


class ThrottlingProxy:
    def __init__(self, upstream: tuple[str, int], bytes_per_second: float) -> None:
        self.upstream = upstream
        self.rate = bytes_per_second
        self._next = time.monotonic()
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

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
            threading.Thread(target=self._pump, args=(client, server, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, False), daemon=True).start()

    def _pace(self, size: int) -> None:
        with self._lock:
            start = max(time.monotonic(), self._next)
            self._next = start + size / self.rate
            wait = self._next - time.monotonic()
        if wait > 0:
            time.sleep(wait)

    def _pump(self, src: socket.socket, dst: socket.socket, upstream: bool) -> None:
        try:
            while data := src.recv(16384):
                if upstream:
                    self._pace(len(data))
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self._listener.close()
