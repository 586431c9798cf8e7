"""Database.tenant_scope against a real row-level-security policy."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import event, text

from macrostrat.database import Database
from macrostrat.database.errors import InvalidOptionError, InvalidTenantError
from macrostrat.database.tenancy import current_tenant

A = "00000000-0000-0000-0000-00000000000a"
B = "00000000-0000-0000-0000-00000000000b"


@pytest.fixture(scope="module")
def app_db(db: Database) -> Iterator[Database]:
    """A `Database` whose connections act as an ordinary role under an RLS policy.

    Superusers and table owners bypass row-level security, so every pooled
    connection runs ``SET ROLE`` to a fresh non-superuser role on connect.
    Scopes run on the session connection, so successive scopes share a backend.
    """
    role = f"tenant_app_{uuid.uuid4().hex[:8]}"
    with db.engine.begin() as conn:
        conn.execute(text(f'CREATE ROLE "{role}" NOLOGIN NOSUPERUSER'))
        conn.execute(
            text(
                "CREATE TABLE docs (id serial PRIMARY KEY, tenant uuid NOT NULL, "
                "body text NOT NULL);"
                "ALTER TABLE docs ENABLE ROW LEVEL SECURITY;"
                "CREATE POLICY docs_tenant ON docs USING "
                "(tenant = nullif(current_setting('app.current_tenant', true), '')::uuid)"
                " WITH CHECK "
                "(tenant = nullif(current_setting('app.current_tenant', true), '')::uuid)"
            )
        )
        conn.execute(text(f'GRANT SELECT, INSERT, DELETE ON docs TO "{role}"'))
        conn.execute(text(f'GRANT USAGE ON SEQUENCE docs_id_seq TO "{role}"'))
    app = Database(db.engine.url, pool_size=2, max_overflow=0)

    @event.listens_for(app.engine, "connect")
    def _as_role(dbapi_connection: object, _record: object) -> None:
        with dbapi_connection.cursor() as cur:  # type: ignore[attr-defined]
            cur.execute(f'SET ROLE "{role}"')
        dbapi_connection.commit()  # type: ignore[attr-defined]

    yield app
    app.cleanup()
    with db.engine.begin() as conn:
        conn.execute(text("DROP TABLE docs"))
        conn.execute(text(f'DROP OWNED BY "{role}"; DROP ROLE "{role}"'))


@pytest.fixture
def tdb(app_db: Database, db: Database) -> Iterator[Database]:
    """``docs`` holding two rows of tenant A and one of tenant B."""
    with db.engine.begin() as conn:
        conn.execute(text("TRUNCATE docs"))
    with app_db.tenant_scope(A):
        app_db.session.execute(
            text("INSERT INTO docs (tenant, body) VALUES (:t, 'a1')"), {"t": A}
        )
        app_db.session.execute(
            text("INSERT INTO docs (tenant, body) VALUES (:t, 'a2')"), {"t": A}
        )
    with app_db.tenant_scope(uuid.UUID(B)):
        app_db.session.execute(
            text("INSERT INTO docs (tenant, body) VALUES (:t, 'b1')"), {"t": B}
        )
    yield app_db
    app_db.cleanup(dispose_engine=False)


def bodies(db: Database) -> list[str]:
    return list(
        db.session.execute(text("SELECT body FROM docs ORDER BY body")).scalars()
    )


def visible_without_scope(db: Database) -> tuple[list[str], str | None]:
    """What the session connection, which ran the scopes, sees outside any scope."""
    conn = db.session_connection()
    try:
        rows = list(conn.execute(text("SELECT body FROM docs")).scalars())
        return rows, current_tenant(conn)
    finally:
        conn.rollback()


def test_tenants_see_only_their_rows(tdb: Database) -> None:
    with tdb.tenant_scope(A):
        assert bodies(tdb) == ["a1", "a2"]
    with tdb.tenant_scope(B):
        assert bodies(tdb) == ["b1"]
        # Writing another tenant's row is refused by the policy's WITH CHECK.
        with pytest.raises(Exception, match="row-level security"), tdb.savepoint():
            tdb.session.execute(
                text("INSERT INTO docs (tenant, body) VALUES (:t, 'x')"), {"t": A}
            )
        assert bodies(tdb) == ["b1"]


def test_setting_ends_with_commit_and_rollback(tdb: Database) -> None:
    with tdb.tenant_scope(A):
        pid = tdb.session.execute(text("SELECT pg_backend_pid()")).scalar()
    rows, setting = visible_without_scope(tdb)
    assert (rows, setting) == ([], None)

    def fail_in_scope() -> None:
        with tdb.tenant_scope(B):
            assert bodies(tdb) == ["b1"]
            raise RuntimeError("roll back")

    with pytest.raises(RuntimeError):
        fail_in_scope()
    conn = tdb.session_connection()
    # The same backend (the session's), and no tenant left on it.
    assert conn.execute(text("SELECT pg_backend_pid()")).scalar() == pid
    conn.rollback()
    assert visible_without_scope(tdb) == ([], None)


def test_pooled_connection_switches_tenants(tdb: Database) -> None:
    pids = set()
    for tenant, expected in [(A, ["a1", "a2"]), (B, ["b1"]), (A, ["a1", "a2"])]:
        with tdb.tenant_scope(tenant):
            pids.add(tdb.session.execute(text("SELECT pg_backend_pid()")).scalar())
            assert bodies(tdb) == expected
    assert len(pids) == 1


def test_concurrent_threads_keep_their_tenants(tdb: Database) -> None:
    app = Database(tdb.engine.url, pool_size=2, max_overflow=0)
    role = tdb.session.execute(text("SELECT current_user")).scalar()
    tdb.session.close()

    @event.listens_for(app.engine, "connect")
    def _as_role(dbapi_connection: object, _record: object) -> None:
        with dbapi_connection.cursor() as cur:  # type: ignore[attr-defined]
            cur.execute(f'SET ROLE "{role}"')
        dbapi_connection.commit()  # type: ignore[attr-defined]

    barrier = threading.Barrier(2, timeout=10)
    seen: dict[str, list[str]] = {}

    def work(tenant: str) -> None:
        try:
            with app.tenant_scope(tenant):
                barrier.wait()
                seen[tenant] = bodies(app)
                barrier.wait()
        finally:
            app.cleanup(dispose_engine=False)

    threads = [threading.Thread(target=work, args=(t,)) for t in (A, B)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    app.cleanup()
    assert seen == {A: ["a1", "a2"], B: ["b1"]}


def test_nested_scope_restores_the_outer_tenant(tdb: Database) -> None:
    with tdb.transaction():
        with tdb.tenant_scope(A):
            with tdb.tenant_scope(B):
                assert bodies(tdb) == ["b1"]
            assert bodies(tdb) == ["a1", "a2"]
        assert bodies(tdb) == []


def test_rollback_inside_the_scope_keeps_the_tenant(tdb: Database) -> None:
    with tdb.tenant_scope(A):
        with pytest.raises(Exception, match="syntax"):
            tdb.session.execute(text("SELEC 1"))
        tdb.session.rollback()
        assert bodies(tdb) == ["a1", "a2"]


def test_validation_happens_before_any_sql(tdb: Database) -> None:
    statements: list[str] = []

    def count(conn: object, cursor: object, statement: str, *args: object) -> None:
        statements.append(statement)

    event.listen(tdb.engine, "before_cursor_execute", count)
    try:
        with pytest.raises(InvalidTenantError), tdb.tenant_scope("not-a-uuid"):
            pass  # pragma: no cover
        with pytest.raises(InvalidTenantError), tdb.tenant_scope(42):
            pass  # pragma: no cover
        with pytest.raises(InvalidOptionError), tdb.tenant_scope(A, setting="x; DROP"):
            pass  # pragma: no cover
    finally:
        event.remove(tdb.engine, "before_cursor_execute", count)
    assert statements == []
    assert issubclass(InvalidTenantError, ValueError)


def test_custom_validator_and_setting(tdb: Database) -> None:
    def positive_int(value: object) -> str:
        number = int(value)  # type: ignore[call-overload]
        if number <= 0:
            raise ValueError("must be positive")
        return str(number)

    with tdb.tenant_scope(7, setting="app.org_id", validator=positive_int):
        setting = tdb.session.execute(text("SELECT current_setting('app.org_id')"))
        assert setting.scalar() == "7"
    with (
        pytest.raises(InvalidTenantError),
        tdb.tenant_scope(-1, validator=positive_int),
    ):
        pass  # pragma: no cover
