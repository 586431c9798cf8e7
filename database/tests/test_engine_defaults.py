"""create_engine's production defaults: pool options, application name, stale connections."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.pool import NullPool, QueuePool

from macrostrat.database import Database, SessionResetWarning, create_engine
from macrostrat.database.engine import (
    DEFAULT_APPLICATION_NAME,
    ENGINE_DEFAULTS,
    engine_defaults,
)


def test_postgres_engines_get_the_defaults(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        pool = engine.pool
        assert isinstance(pool, QueuePool)
        assert pool._pre_ping is True
        assert pool._recycle == ENGINE_DEFAULTS["pool_recycle"]
        assert pool.size() == ENGINE_DEFAULTS["pool_size"]
        assert pool._max_overflow == ENGINE_DEFAULTS["max_overflow"]
        with engine.connect() as conn:
            name = conn.execute(text("SHOW application_name")).scalar()
        assert name == DEFAULT_APPLICATION_NAME
    finally:
        engine.dispose()


def test_caller_options_win(database_url: str) -> None:
    engine = create_engine(
        database_url,
        pool_pre_ping=False,
        pool_size=2,
        pool_recycle=-1,
        connect_args={"application_name": "mine"},
    )
    try:
        assert engine.pool._pre_ping is False
        assert engine.pool.size() == 2
        assert engine.pool._recycle == -1
        with engine.connect() as conn:
            assert conn.execute(text("SHOW application_name")).scalar() == "mine"
    finally:
        engine.dispose()
    sep = "&" if "?" in database_url else "?"
    with Database(f"{database_url}{sep}application_name=from_url") as db:
        assert db.run_query("SHOW application_name").scalar() == "from_url"


def test_null_pool_and_no_defaults(database_url: str) -> None:
    engine = create_engine(database_url, poolclass=NullPool)
    try:
        assert isinstance(engine.pool, NullPool)
        assert engine.pool._pre_ping is True
        with engine.connect() as conn:
            assert conn.execute(text("SELECT 1")).scalar() == 1
    finally:
        engine.dispose()
    plain = create_engine(database_url, apply_defaults=False)
    try:
        assert plain.pool._pre_ping is False
    finally:
        plain.dispose()


@pytest.mark.parametrize("kind", ["memory", "file"])
def test_sqlite_urls_still_work(kind: str, tmp_path: Path) -> None:
    url = "sqlite://" if kind == "memory" else f"sqlite:///{tmp_path / 'x.db'}"
    assert engine_defaults(url, {"echo": False}) == {"echo": False}
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            assert conn.execute(text("SELECT 1")).scalar() == 1
    finally:
        engine.dispose()


def test_terminated_pooled_connections_are_replaced(database_url: str) -> None:
    """Every backend killed (what a restart does to a pool): the next query just works."""
    db = Database(database_url, connect_args={"application_name": "stale_test"})
    try:
        first = db.run_query("SELECT pg_backend_pid()").scalar()
        db.session.commit()
        with db.engine.connect() as conn:  # a pooled connection besides the session's
            pooled = conn.execute(text("SELECT pg_backend_pid()")).scalar()
        assert pooled != first
        admin = create_engine(database_url, apply_defaults=False, poolclass=NullPool)
        with admin.begin() as conn:
            conn.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE application_name = 'stale_test'"
                )
            )
        for _ in range(100):  # the backends exit asynchronously
            with admin.connect() as conn:
                left = conn.execute(
                    text(
                        "SELECT count(*) FROM pg_stat_activity "
                        "WHERE application_name = 'stale_test'"
                    )
                ).scalar()
            if not left:
                break
            time.sleep(0.05)
        admin.dispose()
        with pytest.warns(SessionResetWarning, match="session was started"):
            second = db.run_query("SELECT pg_backend_pid()").scalar()
        assert second not in (first, pooled)
        with db.engine.connect() as conn:  # pre-ping replaced the pooled one
            assert conn.execute(text("SELECT pg_backend_pid()")).scalar() != pooled
    finally:
        db.cleanup()


def _pg_ctl(cluster: object, *args: str) -> None:
    """Run pg_ctl on ``cluster``'s data directory as the directory's owner."""
    data = cluster.data_directory  # type: ignore[attr-defined]
    owner = os.stat(data)
    kwargs = {}
    if os.geteuid() == 0 and owner.st_uid != 0:
        kwargs = {"user": owner.st_uid, "group": owner.st_gid, "extra_groups": []}
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    subprocess.run(
        [str(cluster.binaries.path("pg_ctl")), "-D", str(data), *args],  # type: ignore[attr-defined]
        check=True,
        capture_output=True,
        timeout=60,
        env=env,
        cwd=str(data),
        **kwargs,
    )


def test_stale_connection_after_a_server_restart_is_replaced() -> None:
    """A real restart (pg_ctl restart) between two queries: the next one works.

    It runs in a new session, and says so (`SessionResetWarning`).
    """
    from macrostrat.dinosaur.cluster import LocalCluster

    with LocalCluster(optimize_for_testing=True) as cluster:
        log = cluster.data_directory / "restart.log"
        db = Database(cluster.url())
        try:
            before = db.run_query("SELECT pg_postmaster_start_time()").scalar()
            db.session.close()
            _pg_ctl(cluster, "restart", "-m", "fast", "-w", "-l", str(log))
            try:
                with pytest.warns(SessionResetWarning):
                    after = db.run_query("SELECT pg_postmaster_start_time()").scalar()
                assert after > before
            finally:
                db.cleanup()
                _pg_ctl(cluster, "stop", "-m", "immediate", "-w")
        finally:
            db.cleanup()
