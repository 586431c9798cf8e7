"""Connection strings with several hosts (libpq's failover syntax).

libpq (and so psycopg 3) accepts ``postgresql://u@h1:5432,h2:5433/db``: it
tries the hosts in order and, with ``target_session_attrs``, keeps the first
that fits (``read-write`` for the primary). SQLAlchemy's URL parser refuses
the comma form but supports the same thing as repeated ``host`` query
parameters (``postgresql+psycopg://u@/db?host=h1:5432&host=h2:5433``), which
its psycopg dialect hands to libpq. These helpers convert between the two,
change the database name or ``target_session_attrs``, and tell whether a
DSN names several hosts. The connecting and failing over is left to libpq.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from urllib.parse import quote, unquote, urlsplit

from sqlalchemy import URL, make_url

from ._redact import MASK, redact_query, redact_text
from .errors import InvalidOptionError

__all__ = [
    "DSN",
    "TARGET_SESSION_ATTRS",
    "build_dsn",
    "hosts_of",
    "is_multi_host",
    "parse_dsn",
    "replace_database",
    "to_libpq_dsn",
    "with_target_session_attrs",
]

TARGET_SESSION_ATTRS = (
    "any",
    "read-write",
    "read-only",
    "primary",
    "standby",
    "prefer-standby",
)
"""The values libpq accepts for ``target_session_attrs``."""

Host = tuple[str, "int | None"]


@dataclass(frozen=True)
class DSN:
    """A parsed PostgreSQL connection string.

    Attributes:
        drivername: e.g. ``"postgresql"`` or ``"postgresql+psycopg"``.
        username: the user name (decoded), or None.
        password: the password (decoded), or None.
        database: the database name, or None.
        hosts: ``(host, port)`` pairs in the order libpq will try them.
        query: the other query parameters (values may be tuples).
    """

    drivername: str = "postgresql"
    username: str | None = None
    password: str | None = None
    hosts: tuple[Host, ...] = ()
    database: str | None = None
    query: dict[str, str | tuple[str, ...]] = field(default_factory=dict)

    @property
    def is_multi_host(self) -> bool:
        """Whether more than one host is named."""
        return len(self.hosts) > 1

    def to_url(self) -> URL:
        """A SQLAlchemy ``URL``: one host as usual, several as ``host=`` query values."""
        query = dict(self.query)
        host: str | None = None
        port: int | None = None
        if len(self.hosts) == 1:
            host, port = self.hosts[0]
        elif self.hosts:
            query["host"] = tuple(
                f"{h}:{p}" if p is not None else h for h, p in self.hosts
            )
        return URL.create(
            self.drivername,
            username=self.username,
            password=self.password,
            host=host,
            port=port,
            database=self.database,
            query=query,
        )

    def to_libpq(self, *, hide_password: bool = False) -> str:
        """The libpq form, ``postgresql://u:p@h1:5432,h2:5433/db?...`` (for psql, pg_dump).

        Parameters:
            hide_password: mask every secret (see `macrostrat.database._redact`):
                the password, and query parameters such as ``password``,
                ``sslpassword`` or an ``options`` setting with a secret name.
        """
        auth = ""
        if self.username is not None:
            auth = quote(self.username, safe="")
            if self.password is not None:
                secret = MASK if hide_password else quote(self.password, safe="")
                auth += f":{secret}"
            auth += "@"
        hosts = ",".join(
            _host_text(h) + (f":{p}" if p is not None else "") for h, p in self.hosts
        )
        path = f"/{quote(self.database, safe='')}" if self.database else "/"
        params = []
        shown = redact_query(self.query) if hide_password else self.query
        for key, value in shown.items():
            for item in value if isinstance(value, tuple) else (value,):
                safe = "*=" if hide_password else ""
                params.append(f"{quote(key, safe='')}={quote(item, safe=safe)}")
        query = f"?{'&'.join(params)}" if params else ""
        return f"postgresql://{auth}{hosts}{path}{query}"

    def __repr__(self) -> str:
        """The DSN with its secrets masked (never the password)."""
        return f"DSN({self.drivername!r}, {self.to_libpq(hide_password=True)!r})"

    def replace(self, **changes: object) -> DSN:
        """A copy with ``changes`` applied (dataclass fields)."""
        from dataclasses import replace

        return replace(self, **changes)  # type: ignore[arg-type]


def _host_text(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("/") else host


def _split_host(text: str) -> Host:
    """``"h:5432"``, ``"[::1]:5432"`` or ``"h"`` to ``(host, port)``."""
    text = unquote(text)
    if text.startswith("["):
        end = text.index("]")
        host, rest = text[1:end], text[end + 1 :]
        return host, int(rest[1:]) if rest.startswith(":") and rest[1:] else None
    if text.count(":") == 1:
        host, port = text.split(":")
        return host, int(port) if port else None
    return text, None


def parse_dsn(dsn: str | URL | DSN) -> DSN:
    """Parse a connection string, one host or several, in either syntax.

    Accepts libpq's ``postgresql://u@h1:5432,h2:5433/db?...``, SQLAlchemy's
    ``postgresql+psycopg://u@/db?host=h1:5432&host=h2:5433``, a ``URL`` or a
    `DSN` (returned as is).

    Parameters:
        dsn: the connection string.

    Raises:
        InvalidOptionError: the string cannot be parsed.
    """
    if isinstance(dsn, DSN):
        return dsn
    try:
        if isinstance(dsn, str) and "," in (urlsplit(dsn).netloc or ""):
            return _parse_libpq_multi(dsn)
        url = make_url(dsn)
    except (ValueError, TypeError) as exc:
        # Not chained: the parser's message quotes the string, password and all.
        raise InvalidOptionError(
            f"cannot parse the connection string: {redact_text(str(exc))}"
        ) from None
    query = {k: v for k, v in url.query.items() if k != "host"}
    hosts: list[Host] = []
    if url.host:
        hosts.append((url.host, url.port))
    extra = url.query.get("host")
    if extra:
        for item in (extra,) if isinstance(extra, str) else extra:
            hosts.append(_split_host(item))
    return DSN(
        drivername=url.drivername,
        username=url.username,
        password=url.password,
        hosts=tuple(hosts),
        database=url.database,
        query=dict(query),
    )


def _parse_libpq_multi(dsn: str) -> DSN:
    parts = urlsplit(dsn)
    netloc = parts.netloc
    auth, _, hostlist = netloc.rpartition("@")
    username = password = None
    if auth:
        user, sep, secret = auth.partition(":")
        username = unquote(user)
        password = unquote(secret) if sep else None
    hosts = tuple(_split_host(h) for h in hostlist.split(",") if h)
    query = parse_query(parts.query)
    database = unquote(parts.path.lstrip("/")) or None
    return DSN(
        drivername=parts.scheme,
        username=username,
        password=password,
        hosts=hosts,
        database=database,
        query=query,
    )


def parse_query(text: str) -> dict[str, str | tuple[str, ...]]:
    """A URL query string as a dict; repeated keys give tuples."""
    from urllib.parse import parse_qsl

    result: dict[str, str | tuple[str, ...]] = {}
    for key, value in parse_qsl(text, keep_blank_values=True):
        if key in result:
            old = result[key]
            result[key] = (*((old,) if isinstance(old, str) else old), value)
        else:
            result[key] = value
    return result


def hosts_of(dsn: str | URL | DSN) -> list[Host]:
    """The ``(host, port)`` pairs a DSN names, in order."""
    return list(parse_dsn(dsn).hosts)


def is_multi_host(dsn: str | URL | DSN) -> bool:
    """Whether ``dsn`` names more than one host (in either syntax)."""
    return parse_dsn(dsn).is_multi_host


def replace_database(dsn: str | URL | DSN, database: str) -> URL:
    """The same connection (every host kept) to another database, as a ``URL``."""
    return parse_dsn(dsn).replace(database=database).to_url()


def with_target_session_attrs(dsn: str | URL | DSN, value: str) -> URL:
    """The same connection with ``target_session_attrs=value``, as a ``URL``.

    Parameters:
        dsn: the connection string.
        value: one of `TARGET_SESSION_ATTRS` (``"read-write"`` picks the primary).

    Raises:
        InvalidOptionError: ``value`` is not a libpq value.
    """
    if value not in TARGET_SESSION_ATTRS:
        raise InvalidOptionError(
            f"target_session_attrs must be one of {', '.join(TARGET_SESSION_ATTRS)}; "
            f"not {value!r}"
        )
    parsed = parse_dsn(dsn)
    return parsed.replace(
        query={**parsed.query, "target_session_attrs": value}
    ).to_url()


def to_libpq_dsn(dsn: str | URL | DSN, *, hide_password: bool = False) -> str:
    """``dsn`` in libpq's syntax (hosts separated by commas), for command-line tools."""
    return parse_dsn(dsn).to_libpq(hide_password=hide_password)


def build_dsn(
    hosts: Sequence[str | Host],
    database: str | None = None,
    *,
    username: str | None = None,
    password: str | None = None,
    drivername: str = "postgresql+psycopg",
    target_session_attrs: str | None = None,
    **query: str,
) -> URL:
    """Build a ``URL`` for one or several hosts.

    Parameters:
        hosts: ``"host:port"`` strings or ``(host, port)`` pairs, in the order
            libpq should try them.
        database: the database name.
        username: the user name.
        password: the password.
        drivername: the SQLAlchemy driver name.
        target_session_attrs: one of `TARGET_SESSION_ATTRS`.
        **query: other connection parameters (``connect_timeout="3"``...).

    Raises:
        InvalidOptionError: no host, or an invalid ``target_session_attrs``.
    """
    pairs = tuple(h if isinstance(h, tuple) else _split_host(h) for h in hosts)
    if not pairs:
        raise InvalidOptionError("build_dsn needs at least one host")
    dsn = DSN(drivername, username, password, pairs, database, dict(query))
    if target_session_attrs is not None:
        return with_target_session_attrs(dsn, target_session_attrs)
    return dsn.to_url()
