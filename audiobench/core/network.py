"""Does a download host answer at all? One TCP connection, a few seconds, before any real request.

The stages that download (fetch: the list files and the media; weights) check each host first, so that with
no network they stop at once with one line naming the host and what to try, instead of marking every clip
failed or retrying for minutes. Where a proxy is in the way (``--proxy``, or ``$https_proxy`` /
``$http_proxy``, which yt-dlp and urllib both honour), the proxy is what the downloads connect to, so it is
what is checked.
"""
from __future__ import annotations

import socket
import urllib.request
from dataclasses import dataclass
from urllib.parse import urlsplit

from audiobench.core.errors import SourceUnreachable

CHECK_TIMEOUT_S = 5.0  # seconds the check waits for a host that neither answers nor refuses
_DEFAULT_PORTS = {"http": 80, "https": 443, "socks4": 1080, "socks4a": 1080, "socks5": 1080, "socks5h": 1080}


@dataclass(frozen=True)
class Endpoint:
    """Where a download connects: the URL's host, or the proxy in front of it."""

    host: str
    port: int
    behind: str | None = None  # the URL's host when this is its proxy

    def __str__(self) -> str:
        where = f"{self.host}:{self.port}"
        return f"the proxy {where} (for {self.behind})" if self.behind else where


def endpoint(url: str, *, proxy: str | None = None) -> Endpoint:
    """The host and port a request for ``url`` connects to first (``proxy``, else the environment's)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if proxy is None and not urllib.request.proxy_bypass(host):
        proxy = urllib.request.getproxies().get(parts.scheme)
    if proxy:
        via = urlsplit(proxy if "://" in proxy else f"http://{proxy}")
        return Endpoint(via.hostname or "", via.port or _DEFAULT_PORTS.get(via.scheme, 80), behind=host)
    return Endpoint(host, parts.port or _DEFAULT_PORTS.get(parts.scheme, 80))


def why_unreachable(target: Endpoint, *, timeout: float = CHECK_TIMEOUT_S) -> str | None:
    """Why ``target`` accepts no TCP connection within ``timeout`` seconds; ``None`` when it does."""
    try:
        with socket.create_connection((target.host, target.port), timeout=timeout):
            return None
    except socket.gaierror:
        return "its name does not resolve: no network, or no DNS"
    except ConnectionRefusedError:
        return "connection refused"
    except TimeoutError:
        return f"no answer within {timeout:g} s"
    except OSError as exc:
        return (exc.strerror or str(exc)).lower()


def require_reachable(url: str, *, hint: str, proxy: str | None = None, timeout: float = CHECK_TIMEOUT_S) -> None:
    """Raise :class:`SourceUnreachable` (exit status 3) naming the host and ``hint`` when it does not answer."""
    target = endpoint(url, proxy=proxy)
    reason = why_unreachable(target, timeout=timeout)
    if reason is not None:
        raise SourceUnreachable(f"cannot reach {target} ({reason}); {hint}")
