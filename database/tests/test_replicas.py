"""Read-only work on a real hot standby, with a bound on its lag (issue #21).

The `replicated_topology` fixture (the shipped pytest plugin) runs a primary
and one synchronous hot standby from the local binaries. ``read_only()`` work
must land on the standby while it is fresh, on the primary when it is not
(replay paused past the bound, or the standby unreachable), and be read-only
wherever it lands.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from macrostrat.database import Database


@pytest.fixture(scope="module")
def replicated(replicated_topology: Any) -> Iterator[Database]:
    topo = replicated_topology
    db = Database(
        topo.primary.url(),
        replicas=[s.url() for s in topo.standbys],
        max_replica_lag=0.5,
    )
    db.run_sql("CREATE TABLE IF NOT EXISTS reading (id int PRIMARY KEY)")
    topo.wait_for_replay()
    yield db
    db.cleanup(dispose_engine=True)


def _where(conn: Any) -> bool:
    """True on a standby."""
    return bool(conn.execute(text("SELECT pg_is_in_recovery()")).scalar())


def test_reads_go_to_a_fresh_standby(replicated: Database) -> None:
    with replicated.read_only() as conn:
        assert _where(conn) is True
        assert conn.execute(text("SELECT count(*) FROM reading")).scalar() == 0


def test_read_only_work_cannot_write(replicated: Database) -> None:
    with pytest.raises(DBAPIError, match="read-only"), replicated.read_only() as conn:
        conn.execute(text("INSERT INTO reading VALUES (1)"))
    # not after a commit inside the block either
    plain = Database(replicated.engine)

    def commit_then_write() -> None:
        with plain.read_only() as conn:
            conn.execute(text("SELECT 1"))
            conn.commit()
            conn.execute(text("INSERT INTO reading VALUES (1)"))

    with pytest.raises(DBAPIError, match="read-only"):
        commit_then_write()
    # on the primary too: a database without standbys reads there, read-only
    plain = Database(replicated.engine)
    with plain.read_only() as conn:
        assert _where(conn) is False
    with pytest.raises(DBAPIError, match="read-only"), plain.read_only() as conn:
        conn.execute(text("INSERT INTO reading VALUES (1)"))


def test_a_lagging_standby_is_skipped_until_it_catches_up(
    replicated: Database, replicated_topology: Any
) -> None:
    standby = replicated_topology.standbys[0]
    with psycopg.connect(standby.url(), autocommit=True) as conn:
        conn.execute("SELECT pg_wal_replay_pause()")
    try:
        replicated.run_sql("INSERT INTO reading VALUES (10)")
        time.sleep(1.2)  # past max_replica_lag (0.5 s) and the check interval
        with replicated.read_only() as conn:
            assert _where(conn) is False  # the primary took it, and sees the row
            assert conn.execute(text("SELECT count(*) FROM reading")).scalar() == 1
        assert replicated.replicas is not None
        lag = replicated.replicas.lag(0)
        assert lag is not None
        assert lag > 0.5
    finally:
        with psycopg.connect(standby.url(), autocommit=True) as conn:
            conn.execute("SELECT pg_wal_replay_resume()")
    replicated_topology.wait_for_replay()
    time.sleep(1.1)  # the next check
    with replicated.read_only() as conn:
        assert _where(conn) is True
        assert conn.execute(text("SELECT count(*) FROM reading")).scalar() == 1


def test_an_unreachable_standby_falls_back_to_the_primary(
    replicated_topology: Any,
) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed_port = s.getsockname()[1]
    down = replicated_topology.primary.url().replace(
        f":{replicated_topology.primary.port}/", f":{closed_port}/"
    )
    db = Database(
        replicated_topology.primary.url(),
        replicas=[down],
        connect_args={"connect_timeout": 2},
    )
    with db.read_only() as conn:
        assert _where(conn) is False
    assert db.replicas is not None
    assert db.replicas.lag(0) is None
    db.cleanup(dispose_engine=True)


def test_an_application_role_sees_a_caught_up_standby_as_fresh(
    replicated_topology: Any,
) -> None:
    """Lag needs no privilege: a role without pg_read_all_stats, an idle
    primary for longer than the bound, and the standby is still fresh."""
    topo = replicated_topology
    with psycopg.connect(topo.primary.url(), autocommit=True) as conn:
        conn.execute("DROP ROLE IF EXISTS app_reader")
        conn.execute("CREATE ROLE app_reader LOGIN PASSWORD 'reader'")
        conn.execute("GRANT SELECT ON reading TO app_reader")
    topo.wait_for_replay()

    def as_reader(url: str) -> str:
        from sqlalchemy import make_url

        return (
            make_url(url)
            .set(username="app_reader", password="reader")
            .render_as_string(hide_password=False)
        )

    db = Database(
        as_reader(topo.primary.url()),
        replicas=[as_reader(s.url()) for s in topo.standbys],
        max_replica_lag=0.5,
    )
    try:
        time.sleep(1.0)  # the primary idles past the bound
        with db.read_only() as conn:
            assert _where(conn) is True
        assert db.replicas is not None
        assert db.replicas.lag(0) == 0.0
    finally:
        db.cleanup(dispose_engine=True)
