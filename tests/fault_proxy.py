"""A small fault-injecting HTTP proxy for S3 tests (standard library only).

It sits between the client and an S3 endpoint (moto's server) on 127.0.0.1 and forwards every
request unchanged (the Host header too, so request signatures stay valid), except every
`every`-th request, which gets a fault instead, in rotation:

- ``503``: answered at once with an S3 ``SlowDown`` or ``ServiceUnavailable`` error; the
  request never reaches the store;
- ``reset``: the connection is reset (RST) before any response; the request never reaches
  the store;
- ``truncate``: (GET with a body only) forwarded, then the response is cut off halfway
  through its body, as a dropped connection does.

Which requests fail depends only on their arrival order, so a run is reproducible up to the
order of concurrent requests. `counts` says what was injected; `permanent_503` makes every
request fail (for a client that must give up), and so does `outage_after = n` from the n-th
request on (storage that goes away in the middle of a job).
"""

from __future__ import annotations

import http.client
import socket
import struct
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade",
              "proxy-connection"}
S3_ERRORS = {
    "SlowDown": b"<Error><Code>SlowDown</Code><Message>Please reduce your request rate."
                b"</Message></Error>",
    "ServiceUnavailable": b"<Error><Code>ServiceUnavailable</Code><Message>Service is "
                          b"unable to handle request.</Message></Error>",
}


class FaultProxy:
    """`with FaultProxy(upstream, every=4) as proxy: ... proxy.url ...`"""

    def __init__(self, upstream: str, every: int = 0, permanent_503: bool = False,
                 outage_after: int | None = None) -> None:
        split = urlsplit(upstream)
        self.upstream = (split.hostname or "127.0.0.1", split.port or 80)
        self.every = every
        self.permanent_503 = permanent_503
        self.outage_after = outage_after
        self.counts: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> FaultProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def faults(self) -> int:
        return sum(n for kind, n in self.counts.items() if kind != "requests")

    def _decide(self, method: str) -> str | None:
        """The fault for the next request, or None: every `every`-th request, in rotation."""
        with self._lock:
            self.counts["requests"] += 1
            outage = self.outage_after is not None and self.counts["requests"] >= self.outage_after
            if self.permanent_503 or outage:
                kind = "503"
            elif not self.every or self.counts["requests"] % self.every:
                return None
            else:
                number = self.counts["requests"] // self.every
                kind = ("503", "reset", "truncate")[number % 3]
                if kind == "truncate" and method != "GET":
                    kind = "reset"
            self.counts[kind] += 1
            return kind

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                """Quiet: the test reads `counts`, not a log."""

            def _body(self) -> bytes:
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    chunks = []
                    while True:
                        size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                        if size == 0:
                            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                                pass
                            return b"".join(chunks)
                        chunks.append(self.rfile.read(size))
                        self.rfile.readline()
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def _reset(self) -> None:
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                           struct.pack("ii", 1, 0))
                self.close_connection = True

            def _handle(self) -> None:
                body = self._body()
                fault = proxy._decide(self.command)
                if fault == "503":
                    code = "SlowDown" if proxy.counts["503"] % 2 else "ServiceUnavailable"
                    payload = S3_ERRORS[code]
                    self.send_response(503)
                    self.send_header("Content-Type", "application/xml")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    if self.command != "HEAD":
                        self.wfile.write(payload)
                    return
                if fault == "reset":
                    self._reset()
                    return
                conn = http.client.HTTPConnection(*proxy.upstream, timeout=60)
                try:
                    conn.putrequest(self.command, self.path, skip_host=True,
                                    skip_accept_encoding=True)
                    for key, value in self.headers.items():
                        if key.lower() not in HOP_BY_HOP and key.lower() != "content-length":
                            conn.putheader(key, value)
                    if body or self.command in ("PUT", "POST"):
                        conn.putheader("Content-Length", str(len(body)))
                    conn.endheaders(body or None)
                    response = conn.getresponse()
                    payload = response.read()
                    headers = response.getheaders()
                    status = response.status
                finally:
                    conn.close()
                self.send_response(status)
                for key, value in headers:
                    if key.lower() not in HOP_BY_HOP and key.lower() != "content-length":
                        self.send_header(key, value)
                if self.command == "HEAD":
                    length = dict((k.lower(), v) for k, v in headers).get("content-length")
                    self.send_header("Content-Length", length or "0")
                else:
                    self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                if self.command == "HEAD":
                    return
                if fault == "truncate" and len(payload) > 1:
                    self.wfile.write(payload[: len(payload) // 2])
                    self.wfile.flush()
                    self._reset()
                    return
                self.wfile.write(payload)

            do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = _handle  # noqa: N815

        return Handler
