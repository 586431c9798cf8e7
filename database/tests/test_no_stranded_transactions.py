"""Issue 16, items 3 and 4: no call leaves a transaction open behind the caller.

Outside an explicit ``transaction()``/``session_scope()`` (or ORM work the
caller began), nothing a `Database` does keeps a transaction open on its
session connection, so DDL from another connection of the same process never
waits for it; and ``table_exists`` sees what the caller's block sees.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

from macrostrat.database import Database, create_engine, table_exists


@pytest.fixture
def other(db: Database) -> Iterator[Engine]:
    """Another connection of the same process, impatient with locks."""
    engine = create_engine(
        db.engine.url,
        poolclass=NullPool,
        connect_args={"options": "-c lock_timeout=2000"},
    )
    yield engine
    engine.dispose()


@pytest.fixture
def fresh(db: Database) -> Iterator[Database]:
    db.reset_session()
    db.run_sql("DROP TABLE IF EXISTS st; CREATE TABLE st (id int)")
    yield db
    db.reset_session()


def test_ddl_right_after_run_query_does_not_wait(
    fresh: Database, other: Engine
) -> None:
    assert fresh.run_query("SELECT count(*) FROM st").scalar() == 0
    assert not fresh.session.in_transaction()
    with other.begin() as conn:  # would wait for the lock on st, then time out
        conn.execute(text("ALTER TABLE st ADD COLUMN v text"))
    fresh.run_query("INSERT INTO st (id) VALUES (1)")
    with other.connect() as conn:  # committed on its own
        assert conn.execute(text("SELECT id FROM st")).scalars().all() == [1]


def test_run_query_joins_work_the_caller_began(fresh: Database, other: Engine) -> None:
    fresh.session.execute(text("INSERT INTO st VALUES (1)"))
    fresh.run_query("INSERT INTO st VALUES (2)")
    with other.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM st")).scalar() == 0
    fresh.session.commit()
    with other.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM st")).scalar() == 2


def test_a_savepoint_then_a_replaced_session_strand_nothing(
    fresh: Database, other: Engine
) -> None:
    """The reported deadlock: an uncommitted CREATE SCHEMA behind a savepoint."""
    with fresh.savepoint():
        fresh.run_sql("CREATE SCHEMA stranded_a")
    fresh.session = Session(bind=fresh.engine)  # the caller moves on
    with other.begin() as conn:  # waited forever before
        conn.execute(text("CREATE SCHEMA IF NOT EXISTS stranded_a"))
        conn.execute(text("DROP SCHEMA stranded_a"))
    fresh.session.close()


def test_replacing_a_session_with_uncommitted_work_rolls_it_back_and_says_so(
    fresh: Database, other: Engine
) -> None:
    fresh.session.execute(text("LOCK TABLE st IN ACCESS EXCLUSIVE MODE"))
    with pytest.warns(UserWarning, match="rolled back"):
        fresh.session = Session(bind=fresh.engine)
    with other.begin() as conn:  # the lock is gone
        conn.execute(text("SELECT count(*) FROM st"))
    fresh.session.close()


def test_table_exists_sees_what_the_block_sees(fresh: Database, tmp_path: Path) -> None:
    fixture = tmp_path / "made_here.sql"
    fixture.write_text("CREATE TABLE made_here (id int);")
    try:
        with fresh.transaction():
            fresh.run_fixtures(fixture)
            assert table_exists(fresh, "made_here")
            with fresh.savepoint():
                fresh.run_sql("CREATE TABLE made_in_savepoint (id int)")
                assert table_exists(fresh, "made_in_savepoint")
            assert not table_exists(fresh.engine, "made_here")  # not committed
        assert table_exists(fresh, "made_here")
        # The session's search_path decides the default schema.
        fresh.run_sql(
            "CREATE SCHEMA s_ex; CREATE TABLE s_ex.t_in (id int); SET search_path TO s_ex"
        )
        assert table_exists(fresh, "t_in")
        assert not table_exists(fresh.engine, "t_in")  # a pooled connection: public
        assert not fresh.session.in_transaction()
    finally:
        fresh.run_sql(
            "DROP TABLE IF EXISTS public.made_here; "
            "DROP TABLE IF EXISTS public.made_in_savepoint; "
            "DROP SCHEMA IF EXISTS s_ex CASCADE"
        )
