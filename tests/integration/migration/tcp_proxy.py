"""A loopback TCP relay that cuts every open connection once, after relaying a given number of bytes.

Put between the tool and a vCenter (TLS passes through untouched), it makes a real dropped
connection in the middle of a phase: a disk download, a SOAP call, whatever is in flight.
"""

from __future__ import annotations

import contextlib
import socket
import threading


class DroppingProxy:
    def __init__(self, upstream: tuple[str, int], drop_after_bytes: int) -> None:
        self.upstream = upstream
        self.drop_after = drop_after_bytes
        self.relayed = 0
        self.drops = 0
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.upstream)
            with self._lock:
                self._open |= {client, server}
            threading.Thread(target=self._pump, args=(server, client, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(client, server, False), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, downstream: bool) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
                if downstream:
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
            if self.drops or self.relayed < self.drop_after:
                return
            self.drops += 1
            victims, self._open = self._open, set()
        for sock in victims:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def close(self) -> None:
        self._listener.close()
        with self._lock:
            victims, self._open = self._open, set()
        for sock in victims:
            sock.close()
