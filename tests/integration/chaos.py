"""A loopback TCP proxy that resets a share of connections at random, for fault campaigns (TLS passes through).

Each accepted connection is doomed with probability `reset_rate` (seeded, so a campaign is repeatable);
a doomed connection is cut with a TCP RST (SO_LINGER 0) on both sides once a random number of bytes, up
to `max_bytes`, has passed in either direction: during the TLS handshake, mid-request, mid-response. Every
chunk relayed waits `latency` seconds first. Run it alone for a manual campaign:

    python -m tests.integration.chaos --upstream 127.0.0.1:8989 --rate 0.25 --port 9443
"""

from __future__ import annotations

import argparse
import contextlib
import random
import socket
import struct
import threading
import time
from dataclasses import dataclass, field

__all__ = ["ChaosProxy", "ChaosStats"]


@dataclass
class ChaosStats:
    """What a proxy did: connections seen and reset."""

    connections: int = 0
    resets: int = 0
    bytes: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)


class _Conn:
    """One proxied connection: both sockets and the byte count at which it is cut (None: never)."""

    def __init__(self, client: socket.socket, server: socket.socket, cut_at: int | None) -> None:
        self.client = client
        self.server = server
        self.cut_at = cut_at
        self.seen = 0
        self.lock = threading.Lock()
        self.cut = False

    def reset(self) -> None:
        """RST both sides (SO_LINGER with a zero timeout), once."""
        with self.lock:
            if self.cut:
                return
            self.cut = True
        for sock in (self.client, self.server):
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            with contextlib.suppress(OSError):  # wakes a thread blocked in recv; close() alone would not
                sock.shutdown(socket.SHUT_RD)
            with contextlib.suppress(OSError):
                sock.close()


class ChaosProxy:
    """Listen on 127.0.0.1 and relay to `upstream`, resetting `reset_rate` of the connections at random."""

    def __init__(self, upstream: tuple[str, int], *, reset_rate: float = 0.0, seed: int = 0,
                 max_bytes: int = 32 * 1024, latency: float = 0.002, port: int = 0) -> None:
        self.upstream = upstream
        self.reset_rate = reset_rate
        self.max_bytes = max_bytes
        self.latency = latency
        self.stats = ChaosStats()
        self._rng = random.Random(seed)
        self._listener = socket.create_server(("127.0.0.1", port))
        self.port: int = self._listener.getsockname()[1]
        self._open: set[_Conn] = set()
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True, name=f"chaos-{self.port}").start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(self.upstream, timeout=10)
                server.settimeout(None)
            except OSError:
                client.close()
                continue
            with self._lock:
                doomed = self._rng.random() < self.reset_rate
                cut_at = self._rng.randint(0, self.max_bytes) if doomed else None
            conn = _Conn(client, server, cut_at)
            with self.stats.lock:
                self.stats.connections += 1
            with self._lock:
                self._open.add(conn)
            if cut_at == 0:
                self._cut(conn)
                continue
            threading.Thread(target=self._pump, args=(conn, client, server), daemon=True).start()
            threading.Thread(target=self._pump, args=(conn, server, client), daemon=True).start()

    def _cut(self, conn: _Conn) -> None:
        with self.stats.lock:
            self.stats.resets += 1
        conn.reset()

    def _pump(self, conn: _Conn, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(16384):
                if self.latency:
                    time.sleep(self.latency)
                with conn.lock:
                    before = conn.seen
                    conn.seen += len(data)
                if conn.cut_at is not None and conn.seen >= conn.cut_at:
                    with contextlib.suppress(OSError):
                        dst.sendall(data[:max(0, conn.cut_at - before)])
                    self._cut(conn)
                    return
                dst.sendall(data)
                with self.stats.lock:
                    self.stats.bytes += len(data)
        except OSError:
            pass
        finally:
            if not conn.cut:
                with contextlib.suppress(OSError):
                    dst.shutdown(socket.SHUT_WR)
            with self._lock:
                self._open.discard(conn)

    def close(self) -> None:
        """Stop listening and drop every open connection."""
        self._listener.close()
        with self._lock:
            victims, self._open = self._open, set()
        for conn in victims:
            for sock in (conn.client, conn.server):
                with contextlib.suppress(OSError):
                    sock.close()


def main() -> None:
    """Run one proxy until Ctrl-C, printing its counters every 10 s."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--upstream", required=True, help="host:port to relay to")
    parser.add_argument("--rate", type=float, default=0.25, help="share of connections reset (0..1)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--port", type=int, default=0, help="port to listen on, on 127.0.0.1")
    args = parser.parse_args()
    host, port = args.upstream.rsplit(":", 1)
    proxy = ChaosProxy((host, int(port)), reset_rate=args.rate, seed=args.seed, port=args.port)
    print(f"listening on 127.0.0.1:{proxy.port}", flush=True)
    try:
        while True:
            time.sleep(10)
            print(f"connections {proxy.stats.connections} resets {proxy.stats.resets}", flush=True)
    except KeyboardInterrupt:
        proxy.close()


if __name__ == "__main__":
    main()
