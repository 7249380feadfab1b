"""A real HTTP server on the loopback address, for the download tests (core and napari).

:class:`LoopbackServer` serves ``files`` (path -> bytes), honours ``Range`` requests, can cut
its first answer after ``cut_at`` bytes, and can send slowly (``throttle`` seconds per
64 KiB), so a test can cancel a download half-way. The ``server`` fixture
(:func:`loopback_server`; import it into a test module) starts one in a daemon thread and
shuts it down after the test.
"""

from __future__ import annotations

import http.server
import socket
import threading
import time
from collections.abc import Iterator

import pytest

#: Bytes written per step when throttled (the downloader's chunk size).
STEP = 1 << 16


class LoopbackServer(http.server.ThreadingHTTPServer):
    """Serves ``files``; honours ``Range``; can cut the first answer after ``cut_at`` bytes
    and pause ``throttle`` seconds after every :data:`STEP` bytes."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.files: dict[str, bytes] = {}
        self.cut_at: int | None = None
        self.ranges = True
        self.throttle = 0.0
        self.requests: list[str | None] = []

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(http.server.BaseHTTPRequestHandler):
    server: LoopbackServer

    def log_message(self, *args: object) -> None:  # keep the test output quiet
        pass

    def do_GET(self) -> None:
        data = self.server.files.get(self.path)
        asked = self.headers.get("Range")
        self.server.requests.append(asked)
        if data is None:
            self.send_error(404)
            return
        start = 0
        if asked and self.server.ranges:
            start = int(asked.removeprefix("bytes=").split("-")[0])
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        body = data[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.server.cut_at is not None:
            cut, self.server.cut_at = self.server.cut_at, None
            self.wfile.write(body[:cut])
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        if not self.server.throttle:
            self.wfile.write(body)
            return
        try:
            for offset in range(0, len(body), STEP):
                self.wfile.write(body[offset : offset + STEP])
                self.wfile.flush()
                time.sleep(self.server.throttle)
        except OSError:  # the client went away (a cancelled download)
            pass


def closed_port() -> int:
    """A loopback port nothing listens on (an offline URL)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(name="server")
def loopback_server() -> Iterator[LoopbackServer]:
    """A :class:`LoopbackServer` running in a daemon thread for the test."""
    httpd = LoopbackServer()
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield httpd
    finally:
        httpd.shutdown()
        httpd.server_close()
