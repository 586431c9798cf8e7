"""Multi-host connection strings: parsing, building, and libpq failover for real."""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import make_url

from macrostrat.database import Database, normalize_url
from macrostrat.database.dsn import (
    DSN,
    build_dsn,
    hosts_of,
    is_multi_host,
    parse_dsn,
    replace_database,
    to_libpq_dsn,
    with_target_session_attrs,
)
from macrostrat.database.errors import InvalidOptionError

MULTI = "postgresql://u:p%40ss@h1:5432,h2:5433/db?target_session_attrs=read-write"


def test_parse_both_syntaxes_alike() -> None:
    libpq = parse_dsn(MULTI)
    assert libpq.hosts == (("h1", 5432), ("h2", 5433))
    assert (libpq.username, libpq.password, libpq.database) == ("u", "p@ss", "db")
    assert libpq.query == {"target_session_attrs": "read-write"}
    sa = parse_dsn(
        "postgresql+psycopg://u:p%40ss@/db?host=h1:5432&host=h2:5433"
        "&target_session_attrs=read-write"
    )
    assert (sa.hosts, sa.password, sa.query) == (libpq.hosts, "p@ss", libpq.query)
    assert parse_dsn(libpq) is libpq
    single = parse_dsn("postgresql://a@h/db")
    assert single.hosts == (("h", None),)
    ipv6 = parse_dsn("postgresql://a@[::1]:5432,h2/db")
    assert ipv6.hosts == (("::1", 5432), ("h2", None))
    assert to_libpq_dsn(ipv6) == "postgresql://a@[::1]:5432,h2/db"


def test_is_multi_host_and_round_trips() -> None:
    assert is_multi_host(MULTI)
    assert is_multi_host(normalize_url(MULTI))
    assert not is_multi_host("postgresql://a@h:1/db")
    assert hosts_of(MULTI) == [("h1", 5432), ("h2", 5433)]
    assert to_libpq_dsn(MULTI) == MULTI
    assert to_libpq_dsn(MULTI, hide_password=True).startswith("postgresql://u:***@")
    assert parse_dsn(parse_dsn(MULTI).to_url()) == parse_dsn(MULTI)


def test_replace_database_and_target_session_attrs() -> None:
    other = replace_database(MULTI, "other")
    assert other.database == "other"
    assert hosts_of(other) == [("h1", 5432), ("h2", 5433)]
    ro = with_target_session_attrs(MULTI, "read-only")
    assert ro.query["target_session_attrs"] == "read-only"
    assert hosts_of(ro) == hosts_of(MULTI)
    with pytest.raises(InvalidOptionError):
        with_target_session_attrs(MULTI, "writable")
    with pytest.raises(InvalidOptionError):
        build_dsn([])
    built = build_dsn(
        ["h1:5432", ("h2", 5433)], "db", username="u", target_session_attrs="primary"
    )
    assert built.drivername == "postgresql+psycopg"
    assert parse_dsn(built).hosts == (("h1", 5432), ("h2", 5433))
    assert isinstance(parse_dsn(built), DSN)


def test_normalize_url_accepts_the_libpq_form() -> None:
    url = normalize_url(MULTI)
    assert url.drivername == "postgresql+psycopg"
    assert url.query["host"] == ("h1:5432", "h2:5433")
    assert make_url(url.render_as_string(hide_password=False)) == url
    # Commas that do not separate hosts keep their meaning.
    odd = normalize_url("postgresql://u:pa,ss@h:5/a,b")
    assert (odd.password, odd.host, odd.port, odd.database) == ("pa,ss", "h", 5, "a,b")


@pytest.fixture(scope="module")
def two_servers() -> Iterator[tuple[object, object, str]]:
    """Two local servers sharing a superuser password."""
    from macrostrat.dinosaur.cluster import LocalCluster

    password = secrets.token_urlsafe(12)
    first = LocalCluster(optimize_for_testing=True, password=password)
    second = LocalCluster(optimize_for_testing=True, password=password)
    with first, second:
        yield first, second, password


def _dsn(password: str, *ports: int, **query: str) -> str:
    hosts = ",".join(f"127.0.0.1:{p}" for p in ports)
    params = "&".join(f"{k}={v}" for k, v in query.items())
    return (
        f"postgresql://postgres:{password}@{hosts}/postgres?connect_timeout=5&{params}"
    )


def _port_of(db: Database) -> int:
    return int(db.run_query("SHOW port").scalar())


def test_read_write_selection(two_servers: tuple[object, object, str]) -> None:
    """libpq picks the read-write server with target_session_attrs=read-write.

    The first server is made read-only by ``default_transaction_read_only``,
    which is what libpq (14+) checks for ``read-write``/``read-only`` (a hot
    standby reports the same way).
    """
    first, second, password = two_servers
    with first.connect() as conn:  # type: ignore[attr-defined]
        conn.execute("ALTER SYSTEM SET default_transaction_read_only = on")
        conn.execute("SELECT pg_reload_conf()")
    try:
        ports = (first.port, second.port)  # type: ignore[attr-defined]
        with Database(_dsn(password, *ports, target_session_attrs="read-write")) as db:
            assert _port_of(db) == second.port  # type: ignore[attr-defined]
        with Database(_dsn(password, *ports, target_session_attrs="read-only")) as db:
            assert _port_of(db) == first.port  # type: ignore[attr-defined]
        url = with_target_session_attrs(_dsn(password, *ports), "read-write")
        with Database(url) as db:
            assert _port_of(db) == second.port  # type: ignore[attr-defined]
    finally:
        with first.connect() as conn:  # type: ignore[attr-defined]
            conn.execute("ALTER SYSTEM RESET default_transaction_read_only")
            conn.execute("SELECT pg_reload_conf()")


def test_failover_to_the_live_host() -> None:
    """The first host is down: the connection goes to the second one."""
    from macrostrat.dinosaur.cluster import LocalCluster

    password = secrets.token_urlsafe(12)
    with (
        LocalCluster(optimize_for_testing=True, password=password) as down,
        LocalCluster(optimize_for_testing=True, password=password) as live,
    ):
        dead_port = down.port
        assert dead_port is not None
        down.stop()
        with Database(_dsn(password, dead_port, live.port)) as db:  # type: ignore[arg-type]
            assert _port_of(db) == live.port
            assert is_multi_host(db.engine.url)


def _as_owner(path: Path) -> dict[str, object]:
    """subprocess options to run as ``path``'s owner (the server account) when root."""
    owner = os.stat(path)
    if os.geteuid() != 0 or owner.st_uid == 0:
        return {}
    return {"user": owner.st_uid, "group": owner.st_gid, "extra_groups": []}


def test_read_write_picks_the_primary_over_a_real_standby() -> None:
    """A standby made with pg_basebackup listed first: read-write skips it.

    The standby lives in its own temporary directory (owned by the server
    account, which cannot enter pytest's root-only ``tmp_path``).
    """
    import psycopg

    from macrostrat.dinosaur.cluster import LocalCluster

    password = secrets.token_urlsafe(12)
    replication = {"wal_level": "replica", "max_wal_senders": "4"}
    with LocalCluster(
        optimize_for_testing=True, password=password, config=replication
    ) as primary:
        run_as = _as_owner(primary.data_directory)
        base = Path(tempfile.mkdtemp(prefix="standby-"))
        standby_dir, sockets = base / "data", base / "run"
        sockets.mkdir()
        if run_as:
            for path in (base, sockets):
                os.chown(path, run_as["user"], run_as["group"])  # type: ignore[arg-type]
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        proc = None
        log = None
        try:
            subprocess.run(
                [
                    str(primary.binaries.path("pg_basebackup")),
                    "-h", str(primary.socket_directory), "-p", str(primary.port),
                    "-U", primary.user, "-D", str(standby_dir), "-R", "-X", "stream",
                ],
                check=True, capture_output=True, timeout=60, env=env, cwd=str(base),
                **run_as,  # type: ignore[arg-type]
            )  # fmt: skip
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                port = s.getsockname()[1]
            args = [str(primary.binaries.path("postgres")), "-D", str(standby_dir)]
            settings = {
                "port": str(port),
                "listen_addresses": "127.0.0.1",
                "unix_socket_directories": str(sockets),
                "logging_collector": "off",
                "hot_standby": "on",
                **replication,
            }
            for key, value in settings.items():
                args += ["-c", f"{key}={value}"]
            log = (base / "standby.log").open("wb")
            proc = subprocess.Popen(
                args, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=str(base),
                start_new_session=True, **run_as,  # type: ignore[arg-type]
            )  # fmt: skip
            deadline = time.monotonic() + 30
            while True:
                try:
                    with psycopg.connect(
                        host=str(sockets), port=port, user=primary.user,
                        dbname="postgres", connect_timeout=2,
                    ) as conn:  # fmt: skip
                        assert conn.execute("SELECT pg_is_in_recovery()").fetchone()[0]  # type: ignore[index]
                        break
                except psycopg.OperationalError:
                    if time.monotonic() > deadline or proc.poll() is not None:
                        raise
                    time.sleep(0.05)
            hosts = (port, primary.port)
            assert primary.port is not None
            with Database(
                _dsn(password, *hosts, target_session_attrs="read-write")
            ) as db:
                assert _port_of(db) == primary.port
                assert db.run_query("SELECT pg_is_in_recovery()").scalar() is False
            with Database(
                _dsn(password, primary.port, port, target_session_attrs="standby")
            ) as db:
                assert _port_of(db) == port
        finally:
            if proc is not None:
                proc.send_signal(signal.SIGINT)
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:  # pragma: no cover
                    proc.kill()
                    proc.wait(10)
            if log is not None:
                log.close()
            shutil.rmtree(base, ignore_errors=True)
