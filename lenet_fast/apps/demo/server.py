"""The demo's web server: the standard library's ThreadingHTTPServer (no dependency; README, "The live demo").

``GET /`` (and ``/demo.js``, ``/demo.css``) serve the page from the package's ``static`` folder, read once
when the server starts: the three names are the only files a request can reach. ``POST /api/predict``
answers as ``api`` says. Errors are JSON ``{"error": message}``: 400 for a request the API cannot answer,
411 without a Content-Length, 413 for a body over ``api.MAX_BODY`` bytes, 404 for unknown paths, 405 for
a wrong method, 500 (logged) if the network fails; none of them stops the server. Every connection
closes after its answer and times out after TIMEOUT seconds of silence.
"""
import json
import socket
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from urllib.parse import urlsplit

from ...inspect import read_digit
from . import api

TIMEOUT = 20                  # seconds a client may stay silent mid-request
DRAIN_LIMIT = 16_000_000      # bytes of a too-large body read and dropped so the client sees the 413
STATIC = {"/": ("index.html", "text/html; charset=utf-8"),
          "/index.html": ("index.html", "text/html; charset=utf-8"),
          "/demo.js": ("demo.js", "text/javascript; charset=utf-8"),
          "/demo.css": ("demo.css", "text/css; charset=utf-8")}
HEADERS = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
           "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'"}


def static_files():
    """path -> (bytes, content type) of the page's files, read from the package."""
    folder = resources.files(__package__) / "static"
    return {path: (folder.joinpath(name).read_bytes(), kind) for path, (name, kind) in STATIC.items()}


class DemoServer(ThreadingHTTPServer):
    """The server of one model: one thread per connection; the per-layer forward pass (the feature
    maps) runs one request at a time under ``lock``."""
    daemon_threads = True

    def __init__(self, net, host="127.0.0.1", port=8000, quiet=False):
        self.net, self.quiet, self.lock = net, quiet, threading.Lock()
        self.files = static_files()
        self.address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        super().__init__((host, port), DemoHandler)

    @property
    def url(self):
        host, port = self.server_address[:2]
        return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"


class DemoHandler(BaseHTTPRequestHandler):
    server_version = "lenet_fast-demo"
    sys_version = ""
    default_request_version = "HTTP/1.0"   # answers to garbled request lines get a status line too
    disable_nagle_algorithm = True         # headers and body go out at once (no 40 ms delayed-ACK stall)
    timeout = TIMEOUT

    def do_GET(self):
        path = urlsplit(self.path).path
        if path in self.server.files:
            body, kind = self.server.files[path]
            self._send(200, body, kind)
        elif path == "/api/predict":
            self._error(405, "use POST with a JSON body", allow="POST")
        else:
            self._error(404, f"no such page: {path}")

    def do_POST(self):
        path = urlsplit(self.path).path
        if path != "/api/predict":
            self._error(404 if path not in self.server.files else 405, f"nothing to POST to at {path}")
            return
        body = self._body()
        if body is None:
            return
        try:
            picture = api.picture_from_body(body)
        except api.BadRequest as exc:
            self._error(400, str(exc))
            return
        self._predict(picture)

    def _predict(self, picture):
        net = self.server.net
        try:
            with self.server.lock:        # the per-layer path is not to be run by two threads at once
                reading = read_digit(net, picture)
            answer = api.answer(reading, net.architecture.decision)
        except Exception as exc:          # the server must live on; the traceback goes to the log
            self.log_error("prediction failed: %r", exc)
            self._error(500, "the network could not read this picture")
            return
        self._send(200, json.dumps(answer).encode(), "application/json")

    def _body(self):
        """The request's body, or None after answering 411/400/413 (or when the client went away)."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            self._error(411, "send the body with a Content-Length (chunked bodies are not accepted)")
            return None
        length = self.headers.get("Content-Length")
        if length is None:
            self._error(411, "a Content-Length header is required")
            return None
        if not length.strip().isdigit():
            self._error(400, f"invalid Content-Length: {length!r}")
            return None
        length = int(length)
        if length > api.MAX_BODY:
            self._drain(length)
            self._error(413, f"the body is {length:,} bytes; the limit is {api.MAX_BODY:,}")
            return None
        try:
            body = self.rfile.read(length)
        except OSError:                   # a timeout or a reset: nobody to answer
            self.close_connection = True
            return None
        if len(body) != length:
            self._error(400, f"the body ended after {len(body):,} of {length:,} bytes")
            return None
        return body

    def _drain(self, length):
        """Read and drop a too-large body (up to DRAIN_LIMIT) so that the client can read the answer."""
        left = length if length <= DRAIN_LIMIT else 0
        try:
            while left > 0:
                chunk = self.rfile.read(min(left, 1 << 16))
                if not chunk:
                    break
                left -= len(chunk)
        except OSError:
            pass

    def _error(self, status, message, allow=None):
        extra = {"Allow": allow} if allow else {}
        self._send(status, json.dumps({"error": message}).encode(), "application/json", extra)

    def _send(self, status, body, kind, extra=None):
        self.close_connection = True
        try:
            self.send_response(status)
            for name, value in {**HEADERS, **(extra or {}), "Content-Type": kind,
                                "Content-Length": str(len(body)), "Connection": "close"}.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)
        except OSError:                   # the client went away: nothing to do
            pass

    def log_message(self, format, *args):
        if not self.server.quiet:
            sys.stderr.write(f"{self.address_string()} - {format % args}\n")


def make_server(net, host="127.0.0.1", port=8000, quiet=False):
    """A DemoServer for `net`, bound (port 0: a free port; its ``url`` says which); call its
    ``serve_forever()`` (in a thread if need be), then ``shutdown()`` and ``server_close()``."""
    return DemoServer(net, host, port, quiet)
