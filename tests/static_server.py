"""Hosts on 127.0.0.1 for download tests (index lists, weights, media): real HTTP and real TCP, no network.

``StaticServer`` serves a folder; ``closed_port`` is a port where nothing listens (connection refused, as
with no network); ``HostThatGoesAway`` answers the reachability check, then refuses every later connection.
"""
from __future__ import annotations

import functools
import socket
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


class StaticServer:
    """A static file server on 127.0.0.1 that records request paths and can fail a path with a status."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.requests: list[str] = []
        self.fail: dict[str, list[int]] = {}  # path -> statuses to answer first, one per request
        outer = self

        class Handler(SimpleHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                outer.requests.append(self.path)
                statuses = outer.fail.get(self.path)
                if statuses:
                    self.send_error(statuses.pop(0))
                    return
                super().do_GET()

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(folder)))
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)

    def __enter__(self) -> StaticServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def closed_port() -> int:
    """A port on 127.0.0.1 where nothing listens: a connection there is refused at once."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class HostThatGoesAway:
    """Accepts ``connections`` TCP connections (and closes them), then stops listening: later ones are refused.

    With ``connections=1`` the reachability check before a download passes, and every download after it
    finds the host gone, as when the network drops right after a run started.
    """

    def __init__(self, connections: int = 1) -> None:
        self.connections = connections
        self.accepted = 0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        with self._listener:
            while self.accepted < self.connections:
                conn, _ = self._listener.accept()
                conn.close()
                self.accepted += 1

    def __enter__(self) -> HostThatGoesAway:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._thread.is_alive():  # still waiting for a connection: end the accept with one
            socket.create_connection(("127.0.0.1", self.port)).close()
        self._thread.join(timeout=5)
