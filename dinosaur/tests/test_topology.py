"""Throwaway topologies from local binaries: standbys and PgBouncer (issue #21)."""

from __future__ import annotations

import time
from pathlib import Path

import psycopg
import pytest

from macrostrat.dinosaur.cluster import (
    database_cluster,
    find_postgres_binaries,
    local_topology,
)
from macrostrat.dinosaur.cluster._pgbouncer import find_pgbouncer
from macrostrat.dinosaur.errors import BackendUnavailableError, PostgresNotFoundError


@pytest.fixture(autouse=True)
def _binaries() -> None:
    try:
        find_postgres_binaries()
    except PostgresNotFoundError as exc:
        pytest.skip(f"requires PostgreSQL server binaries on this machine ({exc})")


def _has_pgbouncer() -> None:
    try:
        find_pgbouncer()
    except BackendUnavailableError as exc:
        pytest.skip(f"requires pgbouncer ({exc})")


def test_standbys_stream_replay_and_are_removed() -> None:
    started = time.monotonic()
    with local_topology(standbys=2) as topo:
        took = time.monotonic() - started
        with psycopg.connect(topo.primary.url(), autocommit=True) as conn:
            senders = conn.execute(
                "SELECT application_name, state FROM pg_stat_replication"
            ).fetchall()
            slots = conn.execute(
                "SELECT slot_name, active FROM pg_replication_slots ORDER BY 1"
            ).fetchall()
            conn.execute("CREATE TABLE t (v int); INSERT INTO t VALUES (7)")
        assert len(senders) == 2
        assert {state for _, state in senders} == {"streaming"}
        assert slots == [("standby_1", True), ("standby_2", True)]
        topo.wait_for_replay()
        for standby in topo.standbys:
            with psycopg.connect(standby.url(), autocommit=True) as conn:
                assert conn.execute("SELECT pg_is_in_recovery()").fetchone() == (True,)
                assert conn.execute("SELECT v FROM t").fetchall() == [(7,)]
                with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
                    conn.execute("INSERT INTO t VALUES (8)")
        dirs = [Path(s.data_directory) for s in (topo.primary, *topo.standbys)]
        procs = [s._proc for s in (topo.primary, *topo.standbys)]
    assert all(not d.exists() for d in dirs)
    assert all(p is not None and p.poll() is not None for p in procs)
    print(f"\nprimary + 2 standbys up in {took:.2f} s")


def test_synchronous_standby_and_promotion() -> None:
    with local_topology(standbys=1, synchronous=True) as topo:
        with psycopg.connect(topo.primary.url(), autocommit=True) as conn:
            assert conn.execute(
                "SELECT application_name, sync_state FROM pg_stat_replication"
            ).fetchall() == [("standby_1", "sync")]
            conn.execute("CREATE TABLE t (v int); INSERT INTO t VALUES (1)")
        # a synchronous commit is on the standby when the primary says so
        with psycopg.connect(topo.standbys[0].url(), autocommit=True) as conn:
            topo.wait_for_replay()
            assert conn.execute("SELECT count(*) FROM t").fetchone() == (1,)
        # A standby added later does not inherit the primary's ALTER SYSTEM
        # synchronous_standby_names (promoted, it would wait forever).
        from macrostrat.dinosaur.cluster import LocalStandby

        with (
            LocalStandby(topo.primary, name="late") as late,
            psycopg.connect(late.url(), autocommit=True) as conn,
        ):
            shown = conn.execute("SHOW synchronous_standby_names").fetchone()
        assert shown == ("",)
        topo.primary.stop()
        topo.standbys[0].promote()
        with psycopg.connect(topo.multi_host_url(), autocommit=True) as conn:
            assert conn.info.port == topo.standbys[0].port
            conn.execute("INSERT INTO t VALUES (2)")  # commits: no sync standby named
            assert conn.execute("SELECT count(*) FROM t").fetchone() == (2,)


@pytest.mark.parametrize("mode", ["session", "transaction"])
def test_database_cluster_through_pgbouncer(mode: str) -> None:
    _has_pgbouncer()
    with database_cluster(pgbouncer=mode, backend="local") as db:  # type: ignore[arg-type]
        assert db.run_query("SELECT 40 + 2").scalar() == 42
        for i in range(8):  # past psycopg's prepare threshold
            assert db.run_query("SELECT :i::int", {"i": i}).scalar() == i
        port = db.engine.url.port
        with psycopg.connect(
            db.engine.url.set(
                drivername="postgresql", database="pgbouncer"
            ).render_as_string(False),
            autocommit=True,
            prepare_threshold=None,
        ) as admin:
            modes = {row[1]: row[-1] for row in admin.execute("SHOW POOLS").fetchall()}
    assert modes["postgres"] == mode
    assert port is not None


@pytest.mark.parametrize("backend", ["local", "docker"])
def test_topologies_refuse_a_data_volume(backend: str) -> None:
    cluster = database_cluster(standbys=1, backend=backend, data_volume="kept")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="data_volume cannot be combined"):
        cluster.__enter__()
