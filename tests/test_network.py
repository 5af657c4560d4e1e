"""The reachability check before downloads: real sockets on 127.0.0.1 that refuse, hang, or sit behind a proxy."""
from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest

from audiobench.core.errors import SourceUnreachable
from audiobench.core.network import Endpoint, endpoint, require_reachable, why_unreachable
from static_server import StaticServer, closed_port


@pytest.fixture
def hanging_port() -> Iterator[int]:
    """A listener whose accept queue is full: the kernel drops new connections, which then time out."""
    with socket.create_server(("127.0.0.1", 0), backlog=0) as listener:
        port = listener.getsockname()[1]
        queued: list[socket.socket] = []
        try:
            for _ in range(64):  # fill the queue until a connection no longer completes
                client = socket.socket()
                client.settimeout(0.2)
                try:
                    client.connect(("127.0.0.1", port))
                except TimeoutError:
                    client.close()
                    break
                queued.append(client)
            else:
                pytest.fail("could not make a connection time out: this kernel completed every connection to a "
                            "full accept queue")
            yield port
        finally:
            for client in queued:
                client.close()


def test_a_host_that_answers_passes_and_one_that_refuses_is_named(tmp_path):
    with StaticServer(tmp_path) as server:
        require_reachable(server.url + "/list.csv", hint="unused")
        assert why_unreachable(endpoint(server.url)) is None
    port = closed_port()
    with pytest.raises(SourceUnreachable) as err:
        require_reachable(f"http://127.0.0.1:{port}/x", hint="try --index-mirror DIR|URL")
    assert str(err.value) == f"cannot reach 127.0.0.1:{port} (connection refused); try --index-mirror DIR|URL"
    assert err.value.exit_code == 3


def test_a_host_that_never_answers_is_given_up_after_the_timeout(hanging_port):
    started = time.monotonic()
    assert why_unreachable(Endpoint("127.0.0.1", hanging_port), timeout=0.5) == "no answer within 0.5 s"
    assert time.monotonic() - started < 2


def test_behind_a_proxy_the_proxy_is_what_is_checked(monkeypatch):
    port = closed_port()
    assert endpoint("https://www.youtube.com/watch?v=x", proxy=f"socks5://127.0.0.1:{port}") == \
        Endpoint("127.0.0.1", port, behind="www.youtube.com")
    assert endpoint("https://www.youtube.com/watch?v=x") == Endpoint("www.youtube.com", 443)
    monkeypatch.setenv("https_proxy", f"http://127.0.0.1:{port}")
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.delenv("NO_PROXY", raising=False)
    with pytest.raises(SourceUnreachable, match=rf"cannot reach the proxy 127\.0\.0\.1:{port} \(for www\.youtube\."
                                                r"com\) \(connection refused\); check --proxy"):
        require_reachable("https://www.youtube.com/watch?v=x", hint="check --proxy")
