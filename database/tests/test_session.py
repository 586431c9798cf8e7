"""The session a `Database` runs SQL in keeps its state, as a psql session does.

``SET ROLE``, ``search_path``, temporary tables, prepared statements and
session locks made through `run_sql`, `run_query`, ``db.session`` or
`transaction` are there for the next call on the same `Database` and thread;
other threads have their own session; `reset_session` ends it; a lost
connection ends it and the next call says so; and no session state ever
reaches another user of the pool.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
import warnings
from collections.abc import Iterator

import pytest
from psycopg.sql import Identifier
from sqlalchemy import Engine, text
from sqlalchemy.pool import NullPool

from macrostrat.database import Database, SessionResetWarning, create_engine


@pytest.fixture(scope="module")
def owner(db: Database) -> Iterator[str]:
    """A role the login role may SET ROLE to, allowed to create in public."""
    role = f"owner_{uuid.uuid4().hex[:8]}"
    login = db.run_query("SELECT current_user").scalar()
    db.run_sql(
        "CREATE ROLE {role} NOLOGIN; GRANT {role} TO {login}; "
        "GRANT CREATE, USAGE ON SCHEMA public TO {role}",
        {"role": Identifier(role), "login": Identifier(login)},
    )
    db.reset_session()
    yield role
    db.reset_session()
    db.run_sql("DROP OWNED BY {role}; DROP ROLE {role}", {"role": Identifier(role)})


@pytest.fixture
def fresh(db: Database) -> Iterator[Database]:
    """The module's `Database` with a new session for each test."""
    db.reset_session()
    yield db
    db.reset_session()


def login_role(db: Database) -> str:
    """The role a new pooled connection runs as."""
    with db.engine.connect() as conn:
        return str(conn.execute(text("SELECT current_user")).scalar())


def wait_until_gone(admin: Engine, pid: int) -> None:
    """Wait until the backend ``pid`` has exited (each look in a new transaction)."""
    for _ in range(200):
        with admin.connect() as conn:
            alive = conn.execute(
                text("SELECT count(*) FROM pg_stat_activity WHERE pid = :p"),
                {"p": pid},
            ).scalar()
        if not alive:
            return
        time.sleep(0.05)
    raise AssertionError(f"backend {pid} did not exit")


def test_set_role_carries_over_to_every_later_call(fresh: Database, owner: str) -> None:
    db = fresh
    login = login_role(db)
    db.run_sql("SET ROLE {role}", {"role": Identifier(owner)})
    assert db.run_query("SELECT current_user").scalar() == owner
    db.session.commit()
    assert db.session.execute(text("SELECT current_user")).scalar() == owner
    db.session.commit()
    with db.transaction():
        assert db.session.execute(text("SELECT current_user")).scalar() == owner
    # Objects made by later runs belong to the role, and default privileges
    # declared FOR that role apply to them.
    table = f"owned_{uuid.uuid4().hex[:6]}"
    db.run_sql(
        "ALTER DEFAULT PRIVILEGES FOR ROLE {role} IN SCHEMA public "
        "GRANT SELECT ON TABLES TO PUBLIC",
        {"role": Identifier(owner)},
    )
    db.run_sql("CREATE TABLE {t} (id int)", {"t": Identifier(table)})
    tableowner, acl = db.run_query(
        "SELECT tableowner, has_table_privilege('public', :t, 'SELECT') "
        "FROM pg_tables WHERE tablename = :t",
        {"t": table},
    ).one()
    assert tableowner == owner
    assert acl is True
    db.session.commit()
    # None of it leaks to the pool's other connections.
    assert login_role(db) == login
    db.run_sql("DROP TABLE {t}", {"t": Identifier(table)})


def test_search_path_temp_tables_and_prepared_statements_stay(fresh: Database) -> None:
    db = fresh
    db.run_sql(
        "CREATE SCHEMA IF NOT EXISTS session_s; SET search_path TO session_s, public;"
        "CREATE TEMPORARY TABLE scratch (v int); INSERT INTO scratch VALUES (7);"
        "PREPARE seven AS SELECT v FROM scratch"
    )
    assert db.run_query("SHOW search_path").scalar() == "session_s, public"
    assert db.run_query("EXECUTE seven").scalar() == 7
    db.session.commit()
    assert db.session.execute(text("SELECT v FROM scratch")).scalar() == 7
    db.session.commit()
    db.run_sql("CREATE TABLE in_path (id int)")
    assert (
        db.run_query(
            "SELECT schemaname FROM pg_tables WHERE tablename = 'in_path'"
        ).scalar()
        == "session_s"
    )
    db.session.commit()
    db.reset_session()
    # A new session: none of it is there any more.
    assert db.run_query("SHOW search_path").scalar() != "session_s, public"
    db.session.commit()
    assert (
        db.run_query("SELECT to_regclass('pg_temp.scratch') IS NULL").scalar() is True
    )
    db.session.commit()
    db.run_sql("DROP SCHEMA session_s CASCADE")


def test_session_locks_are_held_until_the_session_ends(fresh: Database) -> None:
    db = fresh
    key = 424242
    db.run_sql("SELECT pg_advisory_lock(:k)", {"k": key})
    other = create_engine(db.engine.url, poolclass=NullPool)
    try:
        with other.connect() as conn:
            got = conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": key})
            assert got.scalar() is False  # held by the session
        db.reset_session()
        with other.connect() as conn:
            got = conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": key})
            assert got.scalar() is True
    finally:
        other.dispose()


def test_each_thread_has_its_own_session(fresh: Database) -> None:
    db = fresh
    db.run_sql("SET application_name = 'main_thread'")
    seen: list[str] = []

    def work() -> None:
        seen.append(db.run_query("SHOW application_name").scalar())
        db.run_sql("SET application_name = 'other_thread'")
        seen.append(db.run_query("SHOW application_name").scalar())
        db.reset_session()

    thread = threading.Thread(target=work)
    thread.start()
    thread.join()
    assert seen[0] != "main_thread"
    assert seen[1] == "other_thread"
    assert db.run_query("SHOW application_name").scalar() == "main_thread"
    db.session.commit()


def test_a_finished_threads_session_is_released_at_once_and_stays_private(
    db: Database, owner: str
) -> None:
    app = Database(db.engine.url, pool_size=2, max_overflow=0)
    login = login_role(app)
    pool = app.engine.pool

    def work() -> None:
        app.run_sql("SET ROLE {role}", {"role": Identifier(owner)})
        assert app.run_query("SELECT current_user").scalar() == owner
        # The thread ends without cleanup().

    try:
        for _ in range(4):  # more threads than the pool has connections
            thread = threading.Thread(target=work)
            thread.start()
            thread.join()
            assert pool.checkedout() == 0  # released when the thread ended
        for _ in range(3):  # and no connection the pool hands out has the role
            with app.engine.connect() as conn:
                assert conn.execute(text("SELECT current_user")).scalar() == login
    finally:
        app.cleanup()


def test_a_dropped_database_releases_its_session_connections(db: Database) -> None:
    engine = create_engine(db.engine.url, pool_size=2, max_overflow=0)
    try:
        for _ in range(5):  # more Database objects than the pool has connections
            Database(engine).run_sql("SET application_name = 'short_lived'")
            assert engine.pool.checkedout() == 0
    finally:
        engine.dispose()


def test_many_open_files_do_not_reset_the_session(fresh: Database) -> None:
    """Descriptors above 1023 (select()'s limit) are watched like any other."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 1400
    if hard != resource.RLIM_INFINITY and hard < want:
        pytest.skip(f"requires a file-descriptor limit of {want} (hard limit {hard})")
    if soft != resource.RLIM_INFINITY and soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    spare = [os.open(os.devnull, os.O_RDONLY) for _ in range(1100)]
    try:
        fresh.reset_session()
        fresh.run_sql("SET search_path = pg_catalog")
        assert fresh.session_connection().connection.dbapi_connection.fileno() > 1023
        with warnings.catch_warnings():
            warnings.simplefilter("error", SessionResetWarning)
            assert fresh.run_query("SHOW search_path").scalar() == "pg_catalog"
            fresh.session.commit()
    finally:
        for fd in spare:
            os.close(fd)
        fresh.reset_session()
        if soft != resource.RLIM_INFINITY and soft < want:
            resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_a_lost_session_is_reset_and_the_next_call_says_so(
    database_url: str, owner: str
) -> None:
    db = Database(database_url)
    admin = create_engine(database_url, poolclass=NullPool)
    try:
        db.run_sql("SET ROLE {role}", {"role": Identifier(owner)})
        pid = db.run_query("SELECT pg_backend_pid()").scalar()
        db.session.commit()
        with admin.connect() as conn:
            conn.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid})
            conn.commit()
        wait_until_gone(admin, pid)
        with pytest.warns(SessionResetWarning, match="SET ROLE"):
            who = db.run_query("SELECT current_user").scalar()
        assert who != owner  # the new session does not have the old role
    finally:
        db.cleanup()
        admin.dispose()


def test_a_connection_lost_mid_call_fails_that_call_then_resets(
    database_url: str,
) -> None:
    db = Database(database_url)
    try:
        db.run_sql("SET application_name = 'doomed'")
        with pytest.raises(Exception, match="terminat"):
            db.run_sql("SELECT pg_terminate_backend(pg_backend_pid())")
        with pytest.warns(SessionResetWarning):
            name = db.run_query("SHOW application_name").scalar()
        assert name != "doomed"
    finally:
        db.cleanup()
