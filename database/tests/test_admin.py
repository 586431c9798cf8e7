"""Database lifecycle (`macrostrat.database.admin`) against the real test server."""

from __future__ import annotations

import logging
import secrets
import socket
import threading
import warnings

import psycopg
import pytest
import sqlalchemy as sa
from psycopg import sql
from sqlalchemy import URL, make_url, text

from macrostrat.database import Database
from macrostrat.database.admin import (
    close_all_connections,
    connection_args,
    create_database,
    database_exists,
    db_isready,
    drop_database,
    get_database_url,
    template_database,
    temporary_database,
    wait_for_database,
)
from macrostrat.database.errors import (
    DatabaseExistsError,
    DatabaseInUseError,
    DatabaseNotFoundError,
    InvalidOptionError,
)

PREFIX = "macrostrat_test_adm_"


def _connect(url: str | URL, dbname: str | None = None) -> psycopg.Connection:
    parsed = make_url(url)
    kwargs = parsed.translate_connect_args(username="user", database="dbname")
    if dbname is not None:
        kwargs["dbname"] = dbname
    return psycopg.connect(**kwargs, autocommit=True)


def _exists(server_url: str, name: str) -> bool:
    with _connect(server_url) as conn:
        row = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (name,)
        ).fetchone()
        return row is not None


def _force_drop(server_url: str, name: str) -> None:
    with _connect(server_url) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                sql.Identifier(name)
            )
        )


@pytest.fixture(autouse=True)
def _fast(short_settle: None) -> None:
    """Every test here calls a database busy sooner (see `short_settle`)."""


@pytest.fixture
def password(database_url: str) -> str:
    value = make_url(database_url).password
    assert value, "the test server's URL has a password"
    return str(value)


# -- URLs ----------------------------------------------------------------------


def test_get_database_url_accepts_every_input(database_url: str, db: Database) -> None:
    url = make_url(database_url)
    assert get_database_url(database_url) == url
    assert get_database_url(url) is url
    assert get_database_url(db.engine) is db.engine.url
    assert get_database_url(db) is db.engine.url
    with db.engine.connect() as conn:
        assert get_database_url(conn) is db.engine.url
    with pytest.raises(ValueError, match="Invalid input type: int"):
        get_database_url(42)  # type: ignore[arg-type]


# -- create / exists / drop ----------------------------------------------------


def test_create_exists_drop_roundtrip(database_url: str, new_url) -> None:
    url = new_url()
    assert database_exists(url) is False
    assert create_database(url) is True
    assert database_exists(url) is True
    assert _exists(database_url, url.database)
    with _connect(url) as conn:
        assert conn.execute("SHOW server_encoding").fetchone() == ("UTF8",)
    assert drop_database(url) is True
    assert database_exists(url) is False


def test_create_existing_raises_naming_the_database(new_url, password: str) -> None:
    url = new_url()
    create_database(url)
    with pytest.raises(DatabaseExistsError, match=url.database) as info:
        create_database(url)
    assert password not in str(info.value)
    assert isinstance(info.value.__cause__, psycopg.errors.DuplicateDatabase)


def test_create_exists_ok_keeps_the_database(new_url) -> None:
    url = new_url()
    create_database(url)
    with _connect(url) as conn:
        conn.execute("CREATE TABLE kept (id int)")
    assert create_database(url, exists_ok=True) is False
    with _connect(url) as conn:
        assert conn.execute("SELECT to_regclass('kept')").fetchone() == ("kept",)


def test_create_replace_recreates(new_url) -> None:
    url = new_url()
    create_database(url)
    with _connect(url) as conn:
        conn.execute("CREATE TABLE old (id int)")
    assert create_database(url, replace=True) is True
    with _connect(url) as conn:
        assert conn.execute("SELECT to_regclass('old')").fetchone() == (None,)


def test_replace_terminates_sessions_only_when_forced(
    database_url: str, new_url
) -> None:
    """Weakness 20: ``replace`` no longer force-drops unless ``force=True``."""
    url = new_url()
    create_database(url)
    with _connect(url) as other:
        with pytest.raises(DatabaseInUseError, match="force=True") as info:
            create_database(url, replace=True)
        assert isinstance(info.value, RuntimeError)
        assert info.value.database == make_url(url).database
        assert info.value.sessions == 1
        assert not other.closed
        other.execute("SELECT 1")  # untouched
        assert create_database(url, replace=True, force=True) is True
        with pytest.raises(psycopg.OperationalError):
            other.execute("SELECT 1")


def test_drop_missing(new_url, password: str) -> None:
    url = new_url()
    with pytest.raises(DatabaseNotFoundError, match=url.database) as info:
        drop_database(url)
    assert isinstance(info.value, LookupError)
    assert password not in str(info.value)
    assert drop_database(url, allow_missing=True) is False


def test_drop_does_not_force_by_default(database_url: str, new_url) -> None:
    """Weakness 20: ``drop_database`` terminates other sessions only when asked.

    Upstream's default ``force=None`` meant force: this drop would have
    succeeded by killing the other session.
    """
    url = new_url()
    create_database(url)
    with _connect(url) as other:
        with pytest.raises(
            DatabaseInUseError, match=r"in use by 1 other session.*force=True"
        ):
            drop_database(url)
        assert _exists(database_url, url.database)
        other.execute("SELECT 1")  # still alive
        assert drop_database(url, force=True) is True
        assert not _exists(database_url, url.database)
        with pytest.raises(psycopg.OperationalError):
            other.execute("SELECT 1")


def test_maintenance_connection_ignores_pgdatabase(
    new_url, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Weakness 20: the maintenance connection names its database explicitly.

    Upstream's forced drop connected with no database name, so libpq used
    ``PGDATABASE`` (or the user's name), which may not exist.
    """
    monkeypatch.setenv("PGDATABASE", "no_such_database_for_maintenance")
    url = new_url()
    create_database(url)
    assert database_exists(url)
    assert close_all_connections(url) == 0
    assert drop_database(url, force=True)


@pytest.mark.parametrize("driver", ["postgresql", "postgresql+psycopg2", "postgres"])
def test_lifecycle_uses_psycopg3_whatever_the_url_driver(new_url, driver: str) -> None:
    """Weakness 22: the lifecycle functions always use psycopg 3 (upstream's
    sqlalchemy-utils path used the URL's driver: psycopg2 for bare URLs, which is
    not installed here)."""
    url = new_url().set(drivername=driver)
    assert create_database(url)
    assert database_exists(url)
    assert drop_database(url)


def test_password_stays_out_of_logs(
    database_url: str, new_url, password: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="macrostrat.database")
    url = new_url()
    with temporary_database(url, ensure_empty=True):
        pass
    wait_for_database(database_url)
    dead = make_url(database_url).set(port=_closed_port())
    with pytest.raises(TimeoutError):
        wait_for_database(dead, timeout=0.3, interval=0.1)
    assert "created database" in caplog.text
    assert "waiting for database" in caplog.text
    assert password not in caplog.text


def test_maintenance_falls_back_to_template1(database_url: str, new_url) -> None:
    """A role that may not connect to ``postgres`` works through ``template1``."""
    role = f"{PREFIX}role_{secrets.token_hex(3)}"
    role_password = secrets.token_hex(8)
    with _connect(database_url) as admin:
        admin.execute(
            sql.SQL("CREATE ROLE {} LOGIN CREATEDB PASSWORD {}").format(
                sql.Identifier(role), sql.Literal(role_password)
            )
        )
        admin.execute("REVOKE CONNECT ON DATABASE postgres FROM PUBLIC")
    try:
        url = new_url().set(username=role, password=role_password)
        with pytest.raises(psycopg.OperationalError):
            _connect(url, "postgres").close()
        assert create_database(url) is True
        assert database_exists(url)
        assert drop_database(url) is True
        # An explicit maintenance database is used as given, with no fallback.
        with pytest.raises(psycopg.OperationalError):
            database_exists(url, maintenance_database="postgres")
    finally:
        with _connect(database_url) as admin:
            admin.execute("GRANT CONNECT ON DATABASE postgres TO PUBLIC")
            admin.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


def test_names_are_quoted(database_url: str, new_url) -> None:
    name = 'Odd "Name"; DROP DATABASE postgres; --'
    url = new_url(name)
    assert create_database(url)
    assert _exists(database_url, name)
    assert database_exists(url)
    with _connect(url) as conn:
        assert conn.execute("SELECT current_database()").fetchone() == (name,)
    assert drop_database(url)
    assert _exists(database_url, "postgres")


def test_overlong_names_are_refused(database_url: str, new_url) -> None:
    name = PREFIX + "x" * 60
    url = new_url(name)
    with pytest.raises(InvalidOptionError, match="63 bytes"):
        create_database(url)
    with pytest.raises(InvalidOptionError, match="63 bytes"):
        drop_database(url)
    with _connect(database_url) as conn:
        truncated = name.encode()[:63].decode()
        row = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (truncated,)
        ).fetchone()
        assert row is None


def test_url_without_database_is_refused(database_url: str) -> None:
    parsed = make_url(database_url)
    url = URL.create(
        parsed.drivername, parsed.username, parsed.password, parsed.host, parsed.port
    )
    with pytest.raises(InvalidOptionError, match="names no database"):
        create_database(url)
    with pytest.raises(InvalidOptionError, match="names no database"):
        database_exists(url)


# -- templates and settings ----------------------------------------------------


def _settings(server_url: str, name: str) -> dict[str | None, list[str]]:
    with _connect(server_url) as conn:
        rows = conn.execute(
            "SELECT r.rolname, s.setconfig FROM pg_db_role_setting s "
            "JOIN pg_database d ON d.oid = s.setdatabase "
            "LEFT JOIN pg_roles r ON r.oid = s.setrole WHERE d.datname = %s",
            (name,),
        ).fetchall()
    return {role: sorted(config) for role, config in rows}


def test_create_from_template_copies_settings_when_asked(
    database_url: str, new_url
) -> None:
    source = new_url()
    create_database(source)
    ident = sql.Identifier(source.database)
    with _connect(database_url) as admin:
        for setting in (
            "search_path TO '$user', public, 'My Schema', 'a,b'",
            "work_mem TO '64MB'",
            "\"app.greeting\" TO 'it''s, fine'",
            "DateStyle TO 'ISO, DMY'",
        ):
            admin.execute(
                sql.SQL("ALTER DATABASE {} SET ").format(ident) + sql.SQL(setting)
            )
        admin.execute(
            sql.SQL(
                "ALTER ROLE CURRENT_USER IN DATABASE {} SET work_mem TO '8MB'"
            ).format(ident)
        )
    with _connect(source) as conn:
        conn.execute("CREATE TABLE copied (id int); INSERT INTO copied VALUES (7)")

    plain = new_url()
    create_database(plain, template=source.database)
    assert _settings(database_url, plain.database) == {}

    copy = new_url()
    assert create_database(copy, template=source.database, copy_settings=True)
    assert _settings(database_url, copy.database) == _settings(
        database_url, source.database
    )
    with _connect(copy) as conn:
        assert conn.execute("SELECT id FROM copied").fetchall() == [(7,)]
        assert conn.execute("SHOW search_path").fetchone() == (
            '"$user", public, "My Schema", "a,b"',
        )
        assert conn.execute("SHOW app.greeting").fetchone() == ("it's, fine",)


def test_copy_settings_needs_a_template(new_url) -> None:
    with pytest.raises(InvalidOptionError, match="template"):
        create_database(new_url(), copy_settings=True)


def test_missing_or_busy_template(new_url) -> None:
    missing = f"{PREFIX}missing_{secrets.token_hex(3)}"
    with pytest.raises(DatabaseNotFoundError, match=missing):
        create_database(new_url(), template=missing)
    source = new_url()
    create_database(source)
    with (
        _connect(source),
        pytest.raises(DatabaseInUseError, match="in use by 1 other session"),
    ):
        create_database(new_url(), template=source.database)


# -- temporary_database --------------------------------------------------------


def test_temporary_database_creates_yields_and_drops(
    database_url: str, new_url
) -> None:
    url = new_url()
    with temporary_database(url) as engine:
        assert engine.url.database == url.database
        with engine.connect() as conn:  # returned to the pool, not closed
            conn.execute(text("CREATE TABLE t (id int)"))
            conn.commit()
        assert _exists(database_url, url.database)
    assert not _exists(database_url, url.database)
    assert engine.pool.checkedin() == 0  # disposed


def test_temporary_database_disposes_and_drops_when_the_block_raises(
    database_url: str, new_url
) -> None:
    """The engine is disposed before the drop also on errors (upstream left the
    pool open, so the non-forced drop failed with ObjectInUse and hid the error)."""
    url = new_url()

    def block() -> None:
        with temporary_database(url) as engine:
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            raise KeyError("from the block")

    with pytest.raises(KeyError, match="from the block"):
        block()
    assert not _exists(database_url, url.database)


def test_temporary_database_leaked_connection(
    database_url: str, new_url, caplog: pytest.LogCaptureFixture
) -> None:
    url = new_url()
    leaked: list[sa.Connection] = []

    def block(fail: bool = False, **options: bool) -> None:
        with temporary_database(url, **options) as engine:
            leaked.append(engine.connect())  # never closed by the block
            leaked[-1].execute(text("SELECT 1"))
            if fail:
                raise ZeroDivisionError

    with pytest.raises(DatabaseInUseError, match="force=True"):
        block()
    assert _exists(database_url, url.database)
    leaked.pop().invalidate()  # its engine was disposed: close() would not disconnect
    drop_database(url)

    block(force_drop=True)
    assert not _exists(database_url, url.database)
    leaked.pop().invalidate()

    # When the block failed too, the block's error wins; the drop's is logged.
    with pytest.raises(ZeroDivisionError):
        block(fail=True)
    assert "could not drop temporary database" in caplog.text
    leaked.pop().invalidate()
    drop_database(url)


def test_temporary_database_existing(database_url: str, new_url) -> None:
    url = new_url()
    create_database(url)
    with _connect(url) as conn:
        conn.execute("CREATE TABLE present (id int)")
    with pytest.raises(DatabaseExistsError), temporary_database(url, exists_ok=False):
        pass  # pragma: no cover
    with temporary_database(url, drop=False) as engine, engine.connect() as conn:
        assert conn.execute(text("SELECT to_regclass('present')::text")).scalar()
    assert _exists(database_url, url.database)
    with temporary_database(url, ensure_empty=True) as engine, engine.connect() as conn:
        assert (
            conn.execute(text("SELECT to_regclass('present')::text")).scalar() is None
        )
    assert not _exists(database_url, url.database)


def test_temporary_database_from_an_engine(database_url: str, new_url) -> None:
    """An ``Engine`` target names the database; a new engine is yielded for it."""
    from macrostrat.database import create_engine

    given = create_engine(new_url())
    try:
        with temporary_database(given) as engine:
            assert engine is not given
            with given.connect() as conn:  # the caller's engine works meanwhile
                assert conn.execute(text("SELECT 1")).scalar() == 1
            given.dispose()
        assert not _exists(database_url, given.url.database)
    finally:
        given.dispose()


def test_temp_database_alias_warns(database_url: str, new_url) -> None:
    from macrostrat.database.utils import temp_database

    url = new_url()
    with pytest.warns(DeprecationWarning, match="temporary_database"):
        manager = temp_database(url)
    with manager as engine, engine.connect() as conn:
        assert conn.execute(text("SELECT current_database()")).scalar() == url.database
    assert not _exists(database_url, url.database)


# -- template_database ---------------------------------------------------------


def test_template_database_copies_and_drops(database_url: str, new_url) -> None:
    source = new_url()
    create_database(source)
    with _connect(source) as conn:
        conn.execute(
            "CREATE TABLE rock (name text); INSERT INTO rock VALUES ('basalt')"
        )
    with template_database(source) as engine:
        name = engine.url.database
        assert name.startswith(f"{source.database}_template_")
        with engine.connect() as conn:
            assert conn.execute(text("SELECT name FROM rock")).scalar() == "basalt"
            conn.execute(text("DELETE FROM rock"))
            conn.commit()
    assert not _exists(database_url, name)
    with _connect(source) as conn:
        assert conn.execute("SELECT count(*) FROM rock").fetchone() == (1,)


def test_template_database_named_and_long_source(database_url: str, new_url) -> None:
    source = new_url(PREFIX + "s" * (63 - len(PREFIX)))
    create_database(source)
    with template_database(source) as engine:
        assert len(engine.url.database.encode()) <= 63
        assert _exists(database_url, engine.url.database)
    chosen = new_url()
    with template_database(source, name=chosen.database) as engine:
        assert engine.url.database == chosen.database
    assert not _exists(database_url, chosen.database)


def test_template_database_busy_source(database_url: str, new_url) -> None:
    from macrostrat.database import create_engine

    source = new_url()
    create_database(source)
    source_engine = create_engine(source)
    other = _connect(source)
    try:
        with source_engine.connect() as conn:  # a pooled connection stays open
            conn.execute(text("SELECT 1"))
        with (
            pytest.raises(DatabaseInUseError, match="in use by 2 other session"),
            template_database(source_engine),
        ):
            pass  # pragma: no cover
        with (
            template_database(source_engine, close_source_connections=True) as copy,
            copy.connect() as conn,
        ):
            assert conn.execute(text("SELECT 1")).scalar() == 1
        assert _is_dead(other)
        # The caller's engine was reset, not broken.
        with source_engine.connect() as conn:
            assert conn.execute(text("SELECT 2")).scalar() == 2
    finally:
        other.close()
        source_engine.dispose()


def _is_dead(conn: psycopg.Connection) -> bool:
    try:
        conn.execute("SELECT 1")
    except psycopg.OperationalError:
        return True
    return False


# -- sessions and readiness ----------------------------------------------------


def test_close_all_connections(new_url) -> None:
    url = new_url()
    create_database(url)
    first, second = _connect(url), _connect(url)
    try:
        assert close_all_connections(url) == 2
        assert _is_dead(first)
        assert _is_dead(second)
        assert close_all_connections(url, url.database) == 0
    finally:
        first.close()
        second.close()


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_db_isready(database_url: str, password: str) -> None:
    assert db_isready(database_url)
    wrong = make_url(database_url).set(password="wrong-" + password)
    assert not db_isready(wrong)
    assert not db_isready(make_url(database_url).set(port=_closed_port()), timeout=1)


def test_db_isready_shell_with_password(database_url: str) -> None:
    """Weakness 21: ``pg_isready`` gets no ``-P`` flag, so a password is fine."""
    assert make_url(database_url).password
    assert db_isready(database_url, use_shell_command=True)
    dead = make_url(database_url).set(port=_closed_port())
    assert not db_isready(dead, use_shell_command=True, timeout=1)


def test_connection_args_never_carry_the_password(
    database_url: str, password: str
) -> None:
    """Weakness 21: no ``-P <password>``; the password goes in PGPASSWORD."""
    flags, dbname = connection_args(database_url)
    url = make_url(database_url)
    assert flags == f" -U {url.username} -h {url.host} -p {url.port}"
    assert dbname == url.database
    with pytest.warns(DeprecationWarning, match="PGPASSWORD"):
        flags2, _ = connection_args(database_url, with_password=True)
    assert "-P" not in flags2
    assert password not in flags2


def test_wait_for_database(database_url: str, password: str) -> None:
    """Weakness 21: waiting has a timeout and says why it gave up."""
    wait_for_database(database_url, timeout=5)
    dead = make_url(database_url).set(port=_closed_port())
    with pytest.raises(TimeoutError, match="not ready after") as info:
        wait_for_database(dead, timeout=0.6, interval=0.2, quiet=True)
    assert password not in str(info.value)


def test_wait_for_database_waits_until_ready(database_url: str, password: str) -> None:
    """A server that starts answering later is waited for."""
    url = make_url(database_url)
    port = _closed_port()
    listener = socket.socket()
    listener.bind(("127.0.0.1", port))

    def proxy() -> None:
        listener.listen(4)
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            upstream = socket.create_connection((url.host, url.port))
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=_pump, args=(a, b), daemon=True).start()

    timer = threading.Timer(
        0.5, lambda: threading.Thread(target=proxy, daemon=True).start()
    )
    timer.start()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            wait_for_database(url.set(port=port), timeout=10, interval=0.1)
    finally:
        timer.cancel()
        listener.close()


def _pump(src: socket.socket, dst: socket.socket) -> None:
    try:
        while data := src.recv(65536):
            dst.sendall(data)
    except OSError:
        pass
    finally:
        for sock in (src, dst):
            try:
                sock.close()
            except OSError:  # pragma: no cover
                pass
