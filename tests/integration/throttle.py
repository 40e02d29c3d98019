"""An HTTPS reverse proxy before moto that answers a share of EC2 and EBS requests with AWS throttling errors.

A throttled request is answered before it reaches moto (as AWS throttles before acting), in each API's
own error format: EC2's query protocol gets HTTP 503 `RequestLimitExceeded` (XML), the EBS direct APIs
(REST-JSON, paths under /snapshots) HTTP 429 `ThrottlingException`. Other requests (STS...) pass through.
It serves TLS with the lab's own certificate, so the tool keeps verifying it.
"""

from __future__ import annotations

import random
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import requests

__all__ = ["ThrottlingProxy"]

_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "content-encoding"}
_EC2_ERROR = ("<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Errors><Error><Code>RequestLimitExceeded</Code>"
              "<Message>Request limit exceeded.</Message></Error></Errors><RequestID>throttled</RequestID></Response>")


class ThrottlingProxy:
    """Listen on 127.0.0.1 with TLS; forward to `upstream` (https URL), throttling `rate` of EC2/EBS requests."""

    def __init__(self, upstream: str, *, cert_file: Path, key_file: Path, ca_file: Path, rate: float,
                 seed: int = 0) -> None:
        self.upstream = upstream.rstrip("/")
        self.rate = rate
        self.throttled = 0
        self.forwarded = 0
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._http = requests.Session()
        self._ca = str(ca_file)
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                api = proxy.api_of(self.path, body)
                if api is not None and proxy.roll():
                    self._answer(*proxy.throttle_answer(api))
                    return
                response = proxy._http.request(self.command, proxy.upstream + self.path, data=body,
                                               headers={k: v for k, v in self.headers.items()
                                                        if k.lower() not in ("host", "content-length")},
                                               timeout=120, verify=proxy._ca)
                with proxy._lock:
                    proxy.forwarded += 1
                headers = [(k, v) for k, v in response.headers.items() if k.lower() not in _HOP_BY_HOP]
                self._answer(response.status_code, headers, response.content)

            def _answer(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
                self.send_response(status)
                for key, value in headers:
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _handle

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(cert_file), str(key_file))
        self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self.port: int = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @staticmethod
    def api_of(path: str, body: bytes) -> str | None:
        """'ebs', 'ec2' or None (not throttled) for a request."""
        if path.startswith("/snapshots"):
            return "ebs"
        if b"Action=" in body and b"Version=2016-11-15" in body:
            return "ec2"
        return None

    def roll(self) -> bool:
        with self._lock:
            hit = self._rng.random() < self.rate
            self.throttled += hit
            return hit

    @staticmethod
    def throttle_answer(api: str) -> tuple[int, list[tuple[str, str]], bytes]:
        if api == "ebs":
            return 429, [("Content-Type", "application/json"), ("x-amzn-ErrorType", "ThrottlingException")], \
                b'{"message": "Rate exceeded"}'
        return 503, [("Content-Type", "text/xml")], _EC2_ERROR.encode()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._http.close()
