"""A loopback HTTP server: the tests' mirrors and the rehearsal's (benchmarks/rehearsal.py), so nothing
they download leaves the machine."""

from __future__ import annotations

import contextlib
import functools
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


class QuietHandler(SimpleHTTPRequestHandler):
    """Static file handler that does not print a line per request."""

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextlib.contextmanager
def serve(handler: Callable[..., BaseHTTPRequestHandler]) -> Iterator[str]:
    """Run an HTTP server with `handler` on a free loopback port; yield the base URL (trailing slash)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    # A short poll interval keeps shutdown (once per test server) fast.
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def serve_folder(folder: Path) -> contextlib.AbstractContextManager[str]:
    """`with serve_folder(folder) as url:` serves the files in `folder` on 127.0.0.1, quietly."""
    return serve(functools.partial(QuietHandler, directory=str(folder)))
