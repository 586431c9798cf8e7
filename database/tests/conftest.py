"""Fixtures for the database tests: SQL fixture loading, a sample schema, fresh database names."""

from __future__ import annotations

import re
import secrets
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from sqlalchemy import URL, Engine, make_url

from macrostrat.database import Database, admin

FIXTURES = Path(__file__).parent / "fixtures"


def load_sql(engine: Engine, name: str) -> None:
    """Run fixture file ``name`` in one transaction (psycopg, several statements)."""
    sql = (FIXTURES / name).read_text()
    raw = engine.raw_connection()
    try:
        raw.driver_connection.execute(sql)  # type: ignore[union-attr]
        raw.commit()
    finally:
        raw.close()


@pytest.fixture(scope="module")
def sample_db(db: Database) -> Database:
    """The module's database with ``sample-schema.sql`` loaded."""
    load_sql(db.engine, "sample-schema.sql")
    return db


ADMIN_PREFIX = "macrostrat_test_adm_"
"""Names of the databases the admin tests make (all dropped after each test)."""


def _drop_now(server_url: str, name: str) -> None:
    kwargs = make_url(server_url).translate_connect_args(
        username="user", database="dbname"
    )
    with psycopg.connect(**kwargs, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                sql.Identifier(name)
            )
        )


@pytest.fixture
def short_settle(monkeypatch: pytest.MonkeyPatch) -> None:
    """Call a database busy after 0.2 s instead of 1 s, to keep the tests fast."""
    monkeypatch.setattr(admin._connection, "_SETTLE_SECONDS", 0.2)


@pytest.fixture
def new_url(database_url: str) -> Iterator[Callable[..., URL]]:
    """A factory of URLs naming fresh, not yet created databases; all dropped after."""
    created: list[str] = []

    def make(name: str | None = None) -> URL:
        name = name or f"{ADMIN_PREFIX}{secrets.token_hex(4)}"
        created.append(name)
        return make_url(database_url).set(database=name)

    yield make
    for name in created:
        _drop_now(database_url, name)


class CutProxy:
    """Forward 127.0.0.1:<port> to PostgreSQL; cut the connections on demand.

    A few threads and sockets between the client and the server (no external
    tool), for fault tests: a cut after some bytes, or around a ``COMMIT``.

    Parameters:
        upstream: (host, port) of the server.
        cut_after: cut once this many bytes went in ``direction``.
        direction: ``"up"`` (client to server) or ``"down"``.
        delay: seconds to sleep per forwarded chunk (keeps a transfer running).
        on_commit: ``"before"`` cuts when a client message carrying ``COMMIT``
            arrives, without forwarding it (the server never commits);
            ``"after"`` forwards it, waits for the server's answer (the server
            committed), drops that answer and cuts.
        refuse_after_cut: once cut, accept no new connection (so nothing can
            ask the server what happened).
        commit_cuts: how many COMMITs ``on_commit`` cuts (later ones pass).
    """

    def __init__(
        self,
        upstream: tuple[str, int],
        *,
        cut_after: int | None = None,
        direction: str = "down",
        delay: float = 0.0,
        on_commit: str | None = None,
        refuse_after_cut: bool = False,
        commit_cuts: int = 1,
    ) -> None:
        self.upstream = upstream
        self.cut_after = cut_after
        self.direction = direction
        self.delay = delay
        self.on_commit = on_commit
        self.refuse_after_cut = refuse_after_cut
        self.commit_cuts = commit_cuts
        self.counts = {"up": 0, "down": 0}
        self.cut_done = False
        self.commits_seen = 0
        self._socks: list[socket.socket] = []
        self._lock = threading.Lock()
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if self.cut_done and self.refuse_after_cut:
                client.close()
                continue
            server = socket.create_connection(self.upstream)
            with self._lock:
                self._socks += [client, server]
            link = _Link()
            threading.Thread(
                target=self._pump_up, args=(client, server, link), daemon=True
            ).start()
            threading.Thread(
                target=self._pump, args=(server, client, "down", link), daemon=True
            ).start()

    def _over(self, direction: str, size: int) -> bool:
        with self._lock:
            self.counts[direction] += size
            return (
                self.cut_after is not None
                and direction == self.direction
                and self.counts[direction] >= self.cut_after
            )

    def _pump_up(self, src: socket.socket, dst: socket.socket, link: _Link) -> None:
        """Client to server, reading the protocol's messages to find COMMIT."""
        buffer = b""
        started = False
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if self.delay:
                    time.sleep(self.delay)
                if self._over("up", len(data)):
                    self.cut()
                    return
                buffer += data
                commit = False
                while True:
                    if not started:
                        if len(buffer) < 4:
                            break
                        size = struct.unpack("!I", buffer[:4])[0]
                        if len(buffer) < size:
                            break
                        code = struct.unpack("!I", buffer[4:8])[0]
                        started = code not in (80877103, 80877104)  # SSL, GSSENC
                        buffer = buffer[size:]
                        continue
                    if len(buffer) < 5:
                        break
                    size = struct.unpack("!I", buffer[1:5])[0]
                    if len(buffer) < size + 1:
                        break
                    kind, body = buffer[:1], buffer[5 : size + 1]
                    buffer = buffer[size + 1 :]
                    if kind in (b"Q", b"P") and _ends_with_commit(kind, body):
                        commit = True
                if commit and self.on_commit is not None:
                    self.commits_seen += 1
                if commit and self.on_commit is not None and self.commit_cuts > 0:
                    self.commit_cuts -= 1
                    if self.on_commit == "before":
                        self.cut()
                        return
                    link.drop_answer.set()
                dst.sendall(data)
        except OSError:
            pass
        finally:
            _shut(src, dst)

    def _pump(
        self, src: socket.socket, dst: socket.socket, direction: str, link: _Link
    ) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if self.delay:
                    time.sleep(self.delay)
                if self._over(direction, len(data)) or link.drop_answer.is_set():
                    self.cut()
                    return
                dst.sendall(data)
        except OSError:
            pass
        finally:
            _shut(src, dst)

    def cut(self) -> None:
        """Close every proxied connection (both ends)."""
        self.cut_done = True
        with self._lock:
            socks = list(self._socks)
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
                s.close()
            except OSError:
                pass

    def url(self, url: str | URL) -> URL:
        """``url`` through the proxy (no TLS, so the messages can be read)."""
        return (
            make_url(url)
            .set(host="127.0.0.1", port=self.port)
            .update_query_dict({"sslmode": "disable", "gssencmode": "disable"})
        )

    def close(self) -> None:
        self.listener.close()
        self.cut()


def _ends_with_commit(kind: bytes, body: bytes) -> bool:
    """Whether a Query (``Q``) or Parse (``P``) message's SQL ends with COMMIT."""
    text = body.split(b"\0")[1] if kind == b"P" else body.rstrip(b"\0")
    return re.search(rb"(^|;)\s*(COMMIT|END)\s*;?\s*$", text, re.IGNORECASE) is not None


class _Link:
    """What the two pumps of one proxied connection share."""

    def __init__(self) -> None:
        self.drop_answer = threading.Event()


def _shut(*socks: socket.socket) -> None:
    for s in socks:
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


@pytest.fixture
def cut_proxy() -> Iterator[Callable[..., CutProxy]]:
    """A factory of `CutProxy` in front of a server URL's host; all closed after.

    ``cut_proxy(url, **options)`` takes the URL of the server to forward to
    and `CutProxy`'s options.
    """
    made: list[CutProxy] = []

    def make(url: str | URL, **options: object) -> CutProxy:
        u = make_url(url)
        proxy = CutProxy((u.host or "127.0.0.1", int(u.port or 5432)), **options)  # type: ignore[arg-type]
        made.append(proxy)
        return proxy

    yield make
    for proxy in made:
        proxy.close()
