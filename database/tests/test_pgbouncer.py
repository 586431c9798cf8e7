"""Through a real PgBouncer in transaction pooling (issue #21).

The `pgbouncer_topology` fixture (the shipped pytest plugin) runs Debian's
``pgbouncer`` in front of a throwaway cluster in transaction pooling mode:
every transaction may run on a different server connection. The library's
paths (queries, SQL files, transactions, savepoints, automap, COPY, retries,
commit-outcome checks) must work there, with psycopg's automatic server-side
prepared statements turned off where PgBouncer cannot carry them (< 1.21).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from sqlalchemy import text

from macrostrat.database import Database, InvalidOptionError, postgres_retry
from macrostrat.database.transfer import copy_rows, copy_to

pytestmark = pytest.mark.filterwarnings(
    "ignore::macrostrat.database.SessionResetWarning"
)


@pytest.fixture(scope="module")
def pooled(pgbouncer_topology: Any) -> Iterator[Database]:
    bouncer = pgbouncer_topology.pgbouncer
    db = Database(
        pgbouncer_topology.url(),
        server_prepared_statements=bouncer.supports_prepared_statements,
    )
    db.run_sql(
        """
        CREATE TABLE IF NOT EXISTS sample (
          id serial PRIMARY KEY, name text NOT NULL UNIQUE,
          geom geometry(Point, 4326)
        );
        CREATE TABLE IF NOT EXISTS unit (
          id serial PRIMARY KEY, sample_id int REFERENCES sample(id), label text
        );
        """
    )
    yield db
    db.engine.dispose()


def test_transactions_really_are_pooled(pgbouncer_topology: Any) -> None:
    """Two client connections, one after the other, run on the same server
    backend (a direct connection never would): session state cannot stick."""
    url = pgbouncer_topology.url()
    options: dict[str, Any] = {"autocommit": True, "prepare_threshold": None}
    with psycopg.connect(url, **options) as a, psycopg.connect(url, **options) as b:
        first = a.execute("SELECT pg_backend_pid()").fetchone()
        second = b.execute("SELECT pg_backend_pid()").fetchone()
    assert first == second
    rows = pgbouncer_topology.pgbouncer.admin("SHOW POOLS")
    assert any(row[1] == "postgres" and row[-1] == "transaction" for row in rows)


def test_server_prepared_statements_option(pgbouncer_topology: Any) -> None:
    """The option reaches psycopg; an existing engine cannot take it."""
    db = Database(pgbouncer_topology.url(), server_prepared_statements=False)
    with db.engine.connect() as conn:
        assert conn.connection.driver_connection.prepare_threshold is None
    with pytest.raises(InvalidOptionError):
        Database(db.engine, server_prepared_statements=False)
    db.engine.dispose()


def test_repeated_queries_need_no_prepared_statements(pooled: Database) -> None:
    """psycopg prepares a query after 5 runs; across server connections that breaks.

    Run the same statement many times from several threads, so transactions
    land on different server connections in turn.
    """
    errors: list[BaseException] = []

    def worker(k: int) -> None:
        try:
            for i in range(40):
                value = pooled.run_query(
                    "SELECT :a::int + :b::int", {"a": k, "b": i}
                ).scalar()
                assert value == k + i
        except BaseException as exc:  # collected for the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_run_sql_stops_at_a_failure_and_keeps_what_committed(pooled: Database) -> None:
    with pytest.raises(Exception, match="duplicate key"):
        pooled.run_sql(
            "INSERT INTO sample (name) VALUES ('a'); "
            "INSERT INTO sample (name) VALUES ('b'); "
            "INSERT INTO sample (name) VALUES ('a'); "
            "INSERT INTO sample (name) VALUES ('c')",
            raise_errors=True,
        )
    names = pooled.run_query("SELECT name FROM sample ORDER BY name").scalars().all()
    assert names == ["a", "b"]


def test_transaction_and_savepoint(pooled: Database) -> None:
    with pooled.transaction():
        pooled.run_sql("INSERT INTO sample (name) VALUES ('in_tx')")
        with pytest.raises(Exception, match="duplicate key"), pooled.savepoint():
            pooled.run_sql(
                "INSERT INTO sample (name) VALUES ('in_tx')", raise_errors=True
            )
        pooled.run_sql("INSERT INTO sample (name) VALUES ('after_savepoint')")

    def undone() -> None:
        with pooled.transaction():
            pooled.run_sql("INSERT INTO sample (name) VALUES ('rolled_back')")
            raise RuntimeError("undo")

    with pytest.raises(RuntimeError):
        undone()
    names = set(pooled.run_query("SELECT name FROM sample").scalars().all())
    assert {"in_tx", "after_savepoint"} <= names
    assert "rolled_back" not in names


def test_session_state_does_not_survive_a_transaction(pooled: Database) -> None:
    """What a pooled session cannot keep: a plain SET lands on some server connection.

    ``SET LOCAL`` inside a transaction is the form that works (and is what
    `Database.tenant_scope` uses).
    """
    with pooled.transaction():
        pooled.session.execute(text("SET LOCAL application_name = 'scoped'"))
        shown = pooled.session.execute(text("SHOW application_name")).scalar()
    assert shown == "scoped"
    seen = {pooled.run_query("SHOW application_name").scalar() for _ in range(10)}
    assert "scoped" not in seen


def test_automap_and_orm(pooled: Database) -> None:
    pooled.automap()
    Sample = pooled.model.sample
    with pooled.transaction():
        pooled.session.add(Sample(name="orm"))
    assert (
        pooled.run_query("SELECT count(*) FROM sample WHERE name = 'orm'").scalar() == 1
    )


def test_copy_rows_and_copy_to(pooled: Database) -> None:
    rows = [(f"copy{i}", f"SRID=4326;POINT({i % 180} 1)") for i in range(2000)]
    assert copy_rows(pooled, "sample", rows, columns=["name", "geom"]) == 2000
    out = b"".join(
        copy_to(pooled, query="SELECT name FROM sample WHERE name LIKE 'copy%'")
    )  # type: ignore[arg-type]
    assert out.count(b"\n") == 2000


def test_retry_helper_through_the_pooler(pooled: Database) -> None:
    calls = []

    @postgres_retry(base_delay=0)
    def unit() -> None:
        calls.append(1)
        with pooled.transaction():
            pooled.run_sql("INSERT INTO sample (name) VALUES ('retried')")
            if len(calls) == 1:
                # a real serialization-style failure: the backend is killed
                pid = pooled.session.execute(text("SELECT pg_backend_pid()")).scalar()
                with psycopg.connect(
                    pooled.engine.url.set(drivername="postgresql").render_as_string(
                        False
                    ),
                    autocommit=True,
                    prepare_threshold=None,
                ) as other:
                    other.execute("SELECT pg_terminate_backend(%s)", (pid,))
                pooled.session.execute(text("SELECT 1"))

    unit()
    assert len(calls) == 2
    assert (
        pooled.run_query("SELECT count(*) FROM sample WHERE name = 'retried'").scalar()
        == 1
    )
