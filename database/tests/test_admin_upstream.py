"""`temporary_database` and friends used the way upstream test suites use them.

Upstream suites open a session fixture on the cluster's ``postgres`` database
with ``temporary_database(database_url, drop=False, force_drop=True)`` and make
their module databases inside it with ``temporary_database(url, drop=True,
force_drop=True)``.  Issue 16, items 1 and 2.
"""

from __future__ import annotations

import secrets
import warnings
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql
from sqlalchemy import URL, Engine, make_url, text

from macrostrat.database import admin
from macrostrat.database.admin import (
    ExistingDatabaseWarning,
    create_database,
    database_exists,
    drop_database,
    template_database,
    temporary_database,
)
from macrostrat.database.errors import DatabaseInUseError, InvalidOptionError

PREFIX = "macrostrat_test_adm_"
MAINTENANCE_CANDIDATES = ("postgres", "template1", "template0")


def _connect(url: str | URL, dbname: str | None = None) -> psycopg.Connection:
    parsed = make_url(url)
    kwargs = parsed.translate_connect_args(username="user", database="dbname")
    if dbname is not None:
        kwargs["dbname"] = dbname
    return psycopg.connect(**kwargs, autocommit=True)


def _exists(server_url: str | URL, name: str) -> bool:
    with _connect(server_url, "postgres") as conn:
        row = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (name,)
        ).fetchone()
        return row is not None


def _force_drop(server_url: str, name: str) -> None:
    with _connect(server_url, "postgres") as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                sql.Identifier(name)
            )
        )


def _sessions_on_maintenance_databases(
    server_url: str | URL, *, besides: set[int]
) -> list[tuple[str, int]]:
    """Client sessions on postgres/template1/template0, except ``besides`` and the checker."""
    with _connect(server_url, "postgres") as conn:
        rows = conn.execute(
            "SELECT datname, pid FROM pg_stat_activity "
            "WHERE datname = ANY(%s) AND backend_type = 'client backend' "
            "AND pid <> pg_backend_pid()",
            (list(MAINTENANCE_CANDIDATES),),
        ).fetchall()
    return [(datname, pid) for datname, pid in rows if pid not in besides]


def _pid(conn) -> int:
    return int(conn.execute(text("SELECT pg_backend_pid()")).scalar())


@pytest.fixture(autouse=True)
def _fast(short_settle: None) -> None:
    """Every test here calls a database busy sooner (see `short_settle`)."""


# -- item 1: a session fixture on ``postgres`` -----------------------------------


@pytest.fixture(scope="module")
def upstream_session_engine(database_url: str) -> Iterator[Engine]:
    """Upstream's session fixture, verbatim (module scope here, so that a failure
    cannot leak into other modules)."""
    assert make_url(database_url).database == "postgres"
    with temporary_database(database_url, drop=False, force_drop=True) as engine:
        yield engine


@pytest.fixture(scope="module")
def upstream_module_engine(
    upstream_session_engine: Engine, database_url: str
) -> Iterator[Engine]:
    """Upstream's module fixture, made inside the session fixture."""
    url = make_url(database_url).set(database=f"{PREFIX}mod_{secrets.token_hex(4)}")
    with temporary_database(url, drop=True, force_drop=True) as engine:
        yield engine
    assert not _exists(database_url, url.database)


def test_creations_work_inside_an_upstream_session_fixture(
    upstream_session_engine: Engine, upstream_module_engine: Engine, new_url
) -> None:
    with upstream_session_engine.connect() as conn:
        assert conn.execute(text("SELECT current_database()")).scalar() == "postgres"
    with upstream_module_engine.connect() as conn:
        conn.execute(text("CREATE TABLE rock (name text)"))
        conn.commit()

    plain = new_url()
    assert create_database(plain) is True
    assert drop_database(plain) is True

    outer, inner = new_url(), new_url()
    with temporary_database(outer, drop=True, force_drop=True) as engine:
        with engine.connect() as conn:
            conn.execute(text("CREATE TABLE t (id int)"))
            conn.commit()
        with (
            temporary_database(inner, drop=True, force_drop=True) as nested,
            nested.connect() as conn,
        ):
            assert conn.execute(text("SELECT 1")).scalar() == 1
        engine.dispose()  # a template cannot be copied while it has sessions
        with template_database(outer) as copy, copy.connect() as conn:
            assert conn.execute(text("SELECT to_regclass('t')::text")).scalar() == "t"
    assert not database_exists(outer)
    assert not database_exists(inner)


def test_no_maintenance_session_is_left_open_during_the_block(
    upstream_session_engine: Engine, database_url: str, new_url
) -> None:
    """Only the caller's own connections sit on postgres/template1/template0."""
    upstream_session_engine.dispose()  # its pool now holds only ``held``
    with upstream_session_engine.connect() as held:  # the caller's own session
        mine = {_pid(held)}
        assert _sessions_on_maintenance_databases(database_url, besides=mine) == []

        with temporary_database(new_url(), drop=True, force_drop=True) as engine:
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            assert _sessions_on_maintenance_databases(database_url, besides=mine) == []
        assert _sessions_on_maintenance_databases(database_url, besides=mine) == []
        create_database(made := new_url())
        drop_database(made)
        assert _sessions_on_maintenance_databases(database_url, besides=mine) == []

    # A fresh block on postgres leaves nothing open either.
    upstream_session_engine.dispose()
    with temporary_database(database_url, drop=False, force_drop=True) as engine:
        assert _sessions_on_maintenance_databases(database_url, besides=set()) == []
        with engine.connect() as conn:
            mine = {_pid(conn)}
            assert _sessions_on_maintenance_databases(database_url, besides=mine) == []


def test_default_template_in_use_names_it_and_counts_sessions(
    database_url: str, new_url
) -> None:
    url = new_url()
    with (
        _connect(database_url, "template1"),
        _connect(database_url, "template1"),
        pytest.raises(DatabaseInUseError) as info,
    ):
        create_database(url)
    message = str(info.value)
    assert "'template1'" in message
    assert "None" not in message
    assert "in use by 2 other session(s)" in message
    assert info.value.database == "template1"
    assert info.value.sessions == 2
    assert not _exists(database_url, url.database)
    # Once they are gone, the same call works.
    assert create_database(url) is True


def test_an_existing_database_is_used_while_template1_is_busy(
    database_url: str,
) -> None:
    """Using ``postgres`` as it is copies nothing, so a session on ``template1``
    (another process's maintenance connection, say) is no obstacle."""
    with (
        _connect(database_url, "template1"),
        temporary_database(database_url, drop=False, force_drop=True) as engine,
        engine.connect() as conn,
    ):
        assert conn.execute(text("SELECT current_database()")).scalar() == "postgres"


@pytest.mark.slow
def test_session_count_comes_from_the_server_when_it_refuses(
    database_url: str, new_url, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When the server itself refuses (a session arrived after our check), the
    message still names the template and the server's count."""
    monkeypatch.setattr(admin.lifecycle, "_settle", lambda conn, name, grace: 0)
    source = new_url()
    create_database(source)
    with _connect(source), pytest.raises(DatabaseInUseError) as info:
        create_database(new_url(), template=source.database)
    assert f"from template {source.database!r}" in str(info.value)
    assert "in use by 1 other session(s)" in str(info.value)
    assert info.value.sessions == 1


# -- item 2: never drop a database the call did not create -------------------------


def _make_precious(url: URL) -> None:
    create_database(url)
    with _connect(url) as conn:
        conn.execute("CREATE TABLE gem (name text); INSERT INTO gem VALUES ('opal')")


def _gems(url: URL) -> list[str]:
    with _connect(url) as conn:
        return [name for (name,) in conn.execute("SELECT name FROM gem").fetchall()]


def test_an_existing_database_is_used_but_not_dropped(
    database_url: str, new_url
) -> None:
    url = new_url(f"{PREFIX}precious_{secrets.token_hex(3)}")
    _make_precious(url)
    with (
        pytest.warns(ExistingDatabaseWarning, match=url.database) as record,
        temporary_database(url) as engine,
        engine.connect() as conn,
    ):
        assert conn.execute(text("SELECT name FROM gem")).scalar() == "opal"
    assert issubclass(record[0].category, UserWarning)
    assert record[0].filename == __file__  # points at the caller's ``with``
    assert "drop_existing=True" in str(record[0].message)
    assert _exists(database_url, url.database)
    assert _gems(url) == ["opal"]

    # Nor with upstream's module-fixture options: force_drop forces only what is
    # dropped, and other sessions on the kept database are left alone.
    with _connect(url) as other:
        with (
            pytest.warns(ExistingDatabaseWarning),
            temporary_database(url, drop=True, force_drop=True) as engine,
            engine.connect() as conn,
        ):
            conn.execute(text("SELECT 1"))
        other.execute("SELECT 1")  # not terminated
    assert _gems(url) == ["opal"]


def test_drop_existing_drops_a_database_the_call_did_not_create(
    database_url: str, new_url
) -> None:
    url = new_url(f"{PREFIX}precious_{secrets.token_hex(3)}")
    _make_precious(url)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ExistingDatabaseWarning)
        with (
            temporary_database(url, drop_existing=True) as engine,
            engine.connect() as conn,
        ):
            assert conn.execute(text("SELECT name FROM gem")).scalar() == "opal"
    assert not _exists(database_url, url.database)


def test_drop_existing_needs_drop(new_url) -> None:
    url = new_url()
    with (
        pytest.raises(InvalidOptionError, match="drop_existing"),
        temporary_database(url, drop=False, drop_existing=True),
    ):
        pass  # pragma: no cover
    assert not database_exists(url)


def test_keeping_an_existing_database_on_purpose_does_not_warn(
    database_url: str, new_url
) -> None:
    """``drop=False`` (upstream's session fixture) asks to keep it: nothing to warn of."""
    url = new_url()
    _make_precious(url)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ExistingDatabaseWarning)
        with temporary_database(url, drop=False) as engine, engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM gem")).scalar() == 1
    assert _gems(url) == ["opal"]


def test_a_database_this_call_made_is_still_dropped(database_url: str, new_url) -> None:
    """Created (or recreated by ``ensure_empty``) here, so dropped on exit."""
    url = new_url()
    with temporary_database(url, drop=True, force_drop=True) as engine:
        leaked = engine.connect()
        leaked.execute(text("SELECT 1"))
    assert not _exists(database_url, url.database)
    leaked.invalidate()

    _make_precious(url)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ExistingDatabaseWarning)
        with (
            temporary_database(url, ensure_empty=True) as engine,
            engine.connect() as conn,
        ):
            assert (
                conn.execute(text("SELECT to_regclass('gem')::text")).scalar() is None
            )
    assert not _exists(database_url, url.database)


def test_exists_ok_false_still_refuses(new_url) -> None:
    from macrostrat.database.errors import DatabaseExistsError

    url = new_url()
    _make_precious(url)
    with (
        pytest.raises(DatabaseExistsError, match=url.database),
        temporary_database(url, exists_ok=False),
    ):
        pass  # pragma: no cover
    assert _gems(url) == ["opal"]
