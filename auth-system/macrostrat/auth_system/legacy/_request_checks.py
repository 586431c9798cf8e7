"""Where a request comes from: cross-site checks and the client address."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from urllib.parse import urlsplit

from starlette.requests import HTTPConnection

from ..errors import AuthConfigurationError

__all__ = [
    "SAFE_METHODS",
    "IPNetwork",
    "client_address",
    "cross_site_reason",
    "is_state_changing",
    "parse_trusted_proxies",
]

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
"""HTTP methods that must not change state (no cross-site check for them)."""

_MAX_FORWARDED_HOPS = 32


def is_state_changing(conn: HTTPConnection) -> bool:
    """Whether ``conn`` is an HTTP request with a method outside `SAFE_METHODS`."""
    if conn.scope.get("type") != "http":
        return False
    return str(conn.scope.get("method", "GET")).upper() not in SAFE_METHODS


def cross_site_reason(
    conn: HTTPConnection, trusted_origins: frozenset[str]
) -> str | None:
    """Why ``conn`` looks like a cross-site request, or None if it does not.

    ``Origin`` (when present) must name the request's own host (``Host``) or
    be one of ``trusted_origins``; a malformed ``Origin`` (including ``null``)
    is refused. ``Sec-Fetch-Site: cross-site`` is refused unless the origin is
    trusted. Requests with neither header (non-browser clients) pass. Schemes
    are not compared: behind a TLS-terminating proxy the app may see ``http``
    while the browser's origin is ``https``.

    Parameters:
        conn: the request.
        trusted_origins: lower-case origins without a trailing slash.
    """
    origin = conn.headers.get("origin")
    own_host = (conn.headers.get("host") or conn.url.netloc).lower()
    if origin is not None:
        origin = origin.strip().rstrip("/").lower()
        if origin not in trusted_origins:
            try:
                netloc = urlsplit(origin).netloc
            except ValueError:  # e.g. "https://[" (an invalid IPv6 literal)
                netloc = None
            if netloc != own_host:
                return f"origin {origin[:100]!r} is not allowed"
    site = (conn.headers.get("sec-fetch-site") or "").strip().lower()
    if site == "cross-site" and (origin is None or origin not in trusted_origins):
        return "cross-site request"
    return None


def parse_trusted_proxies(values: Iterable[str] | str) -> tuple[IPNetwork, ...]:
    """The networks of ``values`` (addresses or CIDR blocks such as ``10.0.0.0/8``).

    Raises:
        AuthConfigurationError: a value is not an IP address or network.
    """
    if isinstance(values, str):
        values = [values]
    networks = []
    for value in values:
        try:
            networks.append(ipaddress.ip_network(str(value).strip(), strict=False))
        except ValueError as exc:
            raise AuthConfigurationError(
                f"trusted_proxies entries are IP addresses or networks; got {value!r}"
            ) from exc
    return tuple(networks)


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    text = text.strip()
    if text.startswith("[") and "]" in text:  # "[2001:db8::1]:443"
        text = text[1 : text.index("]")]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return address.ipv4_mapped
    return address


def client_address(
    conn: HTTPConnection, trusted_proxies: tuple[IPNetwork, ...] = ()
) -> str:
    """The address of the client that sent ``conn``.

    By default this is the ASGI ``client`` host: the peer of the connection,
    which behind a reverse proxy is the proxy. ``X-Forwarded-For`` is read
    only when the peer is in ``trusted_proxies``: its entries are walked from
    the right, skipping trusted proxies, and the first other address is the
    client. Unparsable entries stop the walk (the last trusted hop is used).

    Parameters:
        conn: the request.
        trusted_proxies: networks of proxies whose ``X-Forwarded-For`` is
            believed (see `parse_trusted_proxies`); empty turns it off.
    """
    host = conn.client.host if conn.client else None
    if not host:
        return "unknown"
    peer = _ip(host)
    if peer is None:
        return host[:100]
    if not trusted_proxies or not any(peer in net for net in trusted_proxies):
        return str(peer)
    hops = [
        hop
        for value in conn.headers.getlist("x-forwarded-for")
        for hop in value.split(",")
    ][-_MAX_FORWARDED_HOPS:]
    current = peer
    for hop in reversed(hops):
        address = _ip(hop)
        if address is None:
            break
        current = address
        if not any(address in net for net in trusted_proxies):
            break
    return str(current)
