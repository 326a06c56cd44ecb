"""An HTTP proxy that fails before it forwards, run as its own process by the tests.

``python tests/flaky_proxy.py UPSTREAM PORTFILE FAILS`` listens on a free
loopback port (written to PORTFILE), answers the first FAILS GET requests of
every path and query with ``503 Service Unavailable`` and forwards later ones
to UPSTREAM (e.g. Orthanc), relaying status, headers and body. ``GET
/proxy-stats`` answers ``{"failed": n, "forwarded": m}``. It stands in for a
loaded server whose errors pass, so that retries are tested against real
HTTP. Nothing here imports ``lazydicom``.
"""

from __future__ import annotations

import json
import sys
import threading
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "server", "date"}


def main(upstream: str, portfile: str, fails: int) -> None:
    seen: dict[str, int] = {}
    stats = {"failed": 0, "forwarded": 0}
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def _send(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
            self.send_response(status)
            for name, value in headers:
                if name.lower() not in _HOP:
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            if self.path == "/proxy-stats":
                with lock:
                    body = json.dumps(stats).encode()
                self._send(200, [("Content-Type", "application/json")], body)
                return
            with lock:
                count = seen[self.path] = seen.get(self.path, 0) + 1
                failing = count <= fails
                stats["failed" if failing else "forwarded"] += 1
            if failing:
                self._send(503, [("Content-Type", "text/plain"), ("Retry-After", "0")],
                           b"busy, try again")
                return
            headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
            request = urllib.request.Request(upstream + self.path, headers=headers)
            try:
                with urllib.request.urlopen(request, timeout=60) as r:
                    self._send(r.status, list(r.headers.items()), r.read())
            except urllib.error.HTTPError as exc:
                self._send(exc.code, list(exc.headers.items()), exc.read())

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    with open(portfile, "w") as f:
        f.write(str(server.server_address[1]))
    server.serve_forever()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
