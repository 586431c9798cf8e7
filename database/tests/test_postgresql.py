"""ON CONFLICT modes, upserts and table lookups (`macrostrat.database.postgresql`)."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from sqlalchemy import event, insert, select, text
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from macrostrat.database import Database
from macrostrat.database.errors import InvalidOptionError
from macrostrat.database.postgresql import (
    OnConflictAction,
    current_on_conflict,
    on_conflict,
    prefix_inserts,
    table_exists,
    upsert,
)

metadata = sa.MetaData()
item = sa.Table(
    "item",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("name", sa.Text),
    sa.Column("qty", sa.Integer),
    sa.Column("code", sa.Text, unique=True),
)
nokey = sa.Table("nokey", metadata, sa.Column("v", sa.Integer, unique=True))


class Base(DeclarativeBase):
    pass


class Rock(Base):
    __tablename__ = "rock"
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    name: Mapped[str | None]


@pytest.fixture(scope="module")
def engine(db: Database) -> sa.Engine:
    metadata.create_all(db.engine)
    Base.metadata.create_all(db.engine)
    return db.engine


@pytest.fixture
def conn(engine: sa.Engine) -> Iterator[sa.Connection]:
    with engine.connect() as connection:
        connection.execute(text("TRUNCATE item, nokey, rock"))
        connection.commit()
        yield connection
        connection.rollback()


def _rows(conn: sa.Connection) -> list[tuple]:
    return [tuple(r) for r in conn.execute(select(item).order_by(item.c.id))]


@contextlib.contextmanager
def _sql_seen(engine: sa.Engine) -> Iterator[list[str]]:
    """Collect the SQL text the engine sends while the block runs."""
    seen: list[str] = []

    def record(conn, cursor, statement, *args) -> None:
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


# -- on_conflict -----------------------------------------------------------------


def test_unknown_mode_is_refused() -> None:
    """Weakness 14: unknown modes used to pass silently (acting like restrict)."""
    with pytest.raises(InvalidOptionError) as info, on_conflict("do_nothing"):
        pass  # pragma: no cover
    message = str(info.value)
    for allowed in ("'do-nothing'", "'do-update'", "'restrict'"):
        assert allowed in message
    assert isinstance(info.value, TypeError)


def test_mode_is_scoped_and_nests() -> None:
    assert current_on_conflict() is OnConflictAction.RESTRICT
    with on_conflict("do-nothing") as mode:
        assert mode is OnConflictAction.DO_NOTHING
        with on_conflict(OnConflictAction.DO_UPDATE):
            assert current_on_conflict() is OnConflictAction.DO_UPDATE
        assert current_on_conflict() is OnConflictAction.DO_NOTHING
        with pytest.raises(ZeroDivisionError), on_conflict("restrict"):
            _ = 1 / 0
        assert current_on_conflict() is OnConflictAction.DO_NOTHING
    assert current_on_conflict() is OnConflictAction.RESTRICT


def test_mode_is_per_thread(conn: sa.Connection, engine: sa.Engine) -> None:
    conn.execute(insert(item).values(id=1, name="a"))
    conn.commit()
    errors: list[BaseException] = []

    def other_thread() -> None:
        try:
            with engine.connect() as other:
                other.execute(insert(item).values(id=1, name="b"))
        except BaseException as exc:
            errors.append(exc)

    with on_conflict("do-nothing"):
        worker = threading.Thread(target=other_thread)
        worker.start()
        worker.join()
    assert len(errors) == 1
    assert isinstance(errors[0], IntegrityError)


def test_cached_restrict_statement_is_not_reused_in_do_nothing(
    conn: sa.Connection,
) -> None:
    """Weakness 14: a statement cached in restrict mode must not be reused inside
    ``on_conflict("do-nothing")`` (upstream: IntegrityError), and the reverse."""
    stmt = insert(item).values(id=1, name="first")
    conn.execute(stmt)  # compiled and cached without ON CONFLICT
    conn.commit()
    with on_conflict("do-nothing"):
        conn.execute(insert(item).values(id=1, name="again"))
        conn.execute(stmt)  # the very same object, now cached with the clause
    conn.commit()
    assert _rows(conn) == [(1, "first", None, None)]
    # ... and back in restrict mode the cached do-nothing form is not reused.
    with pytest.raises(IntegrityError):
        conn.execute(stmt)
    conn.rollback()
    with pytest.raises(IntegrityError):
        conn.execute(insert(item).values(id=1, name="third"))


def test_caller_statement_is_not_mutated(conn: sa.Connection) -> None:
    """Weakness 14: upstream set ``_post_values_clause`` on the caller's Insert."""
    stmt = insert(item).values(id=1, name="x")
    before = str(stmt.compile(dialect=pg_dialect.dialect()))
    with on_conflict("do-update"):
        conn.execute(stmt)
        conn.execute(stmt)
    after = str(stmt.compile(dialect=pg_dialect.dialect()))
    assert before == after
    assert "ON CONFLICT" not in after
    assert stmt._post_values_clause is None


def test_do_update_uses_excluded_and_executemany(
    conn: sa.Connection, engine: sa.Engine
) -> None:
    """Weakness 14: do-update binds ``excluded.<col>`` (not literals), writes NULLs,
    and works for executemany (upstream fell back to DO NOTHING)."""
    conn.execute(
        insert(item),
        [{"id": 1, "name": "a", "qty": 1}, {"id": 2, "name": "b", "qty": 2}],
    )
    conn.commit()
    with _sql_seen(engine) as seen, on_conflict("do-update"):
        conn.execute(
            insert(item),
            [
                {"id": 1, "name": "A", "qty": None},
                {"id": 2, "name": "B", "qty": 20},
                {"id": 3, "name": "C", "qty": 30},
            ],
        )
    conn.commit()
    assert _rows(conn) == [
        (1, "A", None, None),
        (2, "B", 20, None),
        (3, "C", 30, None),
    ]
    inserts = [s for s in seen if s.startswith("INSERT")]
    assert inserts
    assert (
        "ON CONFLICT (id) DO UPDATE SET name = excluded.name, qty = excluded.qty"
        in (inserts[-1])
    )


def test_do_update_touches_only_inserted_columns(conn: sa.Connection) -> None:
    conn.execute(insert(item).values(id=1, name="a", qty=5, code="k1"))
    with on_conflict("do-update"):
        conn.execute(insert(item).values(id=1, name="renamed"))
        conn.execute(insert(item).values(id=1))  # only the key: nothing to update
    assert _rows(conn) == [(1, "renamed", 5, "k1")]


def test_conflict_target_is_the_primary_key(conn: sa.Connection) -> None:
    conn.execute(insert(item).values(id=1, code="same"))
    with on_conflict("do-nothing"), pytest.raises(IntegrityError):
        conn.execute(insert(item).values(id=2, code="same"))


def test_explicit_on_conflict_clause_is_kept(conn: sa.Connection) -> None:
    conn.execute(insert(item).values(id=1, name="a", code="c"))
    stmt = (
        pg_dialect.insert(item)
        .values(id=2, name="b", code="c")
        .on_conflict_do_update(index_elements=[item.c.code], set_={"name": "merged"})
    )
    with on_conflict("do-nothing"):
        conn.execute(stmt)
    assert _rows(conn) == [(1, "merged", None, "c")]


def test_table_without_primary_key(conn: sa.Connection) -> None:
    conn.execute(insert(nokey).values(v=1))
    with on_conflict("do-nothing"):
        conn.execute(insert(nokey).values(v=1))  # bare ON CONFLICT DO NOTHING
    assert conn.execute(select(sa.func.count()).select_from(nokey)).scalar() == 1
    with (
        on_conflict("do-update"),
        pytest.raises(InvalidOptionError, match="primary key"),
    ):
        conn.execute(insert(nokey).values(v=1))


def test_orm_flush_follows_the_mode(engine: sa.Engine, conn: sa.Connection) -> None:
    with Session(engine) as session:
        session.add(Rock(id=1, name="granite"))
        session.commit()
    with Session(engine) as session, on_conflict("do-update"):
        session.add(Rock(id=1, name="basalt"))
        session.commit()
    with Session(engine) as session:
        assert session.get(Rock, 1).name == "basalt"
        session.add(Rock(id=1, name="again"))
        with pytest.raises(IntegrityError):
            session.commit()


def test_insert_from_select_and_text_sql(conn: sa.Connection) -> None:
    conn.execute(insert(item).values(id=1, name="a"))
    source = select(sa.literal(1).label("id"), sa.literal("sel").label("name"))
    with on_conflict("do-update"):
        conn.execute(insert(item).from_select(["id", "name"], source))
        assert _rows(conn) == [(1, "sel", None, None)]
        # Text SQL is not rewritten.
        with pytest.raises(IntegrityError):
            conn.execute(text("INSERT INTO item (id) VALUES (1)"))


def test_prefix_inserts_compiles_with_the_mode() -> None:
    dialect = pg_dialect.dialect()
    stmt = insert(item).values(id=1, name="x")
    compiler = dialect.statement_compiler(dialect, None)
    assert "ON CONFLICT" not in prefix_inserts(stmt, compiler)
    with on_conflict("do-nothing"):
        compiler = dialect.statement_compiler(dialect, None)
        assert "ON CONFLICT (id) DO NOTHING" in prefix_inserts(stmt, compiler)
    assert stmt._post_values_clause is None


# -- upsert ---------------------------------------------------------------------


def test_upsert_updates_only_supplied_columns(conn: sa.Connection) -> None:
    """Weakness 15: upstream set every non-key column, so ``qty`` became NULL."""
    conn.execute(insert(item).values(id=1, name="a", qty=5, code="k"))
    conn.execute(upsert(item, {"id": 1, "name": "b"}))
    assert _rows(conn) == [(1, "b", 5, "k")]
    conn.execute(upsert(item, {"id": 2, "name": "new"}))
    assert _rows(conn)[1] == (2, "new", None, None)


def test_upsert_modes(conn: sa.Connection) -> None:
    conn.execute(insert(item).values(id=1, name="a", code="k"))
    conn.execute(upsert(item, {"id": 1, "name": "z"}, on_conflict="do-nothing"))
    conn.execute(upsert(item, {"id": 1}))  # only the key: nothing to update
    assert _rows(conn) == [(1, "a", None, "k")]
    conn.execute(
        upsert(
            item,
            {"id": 9, "code": "k", "qty": 3},
            index_elements=["code"],
            on_conflict=OnConflictAction.DO_UPDATE,
        )
    )
    assert _rows(conn) == [(9, "a", 3, "k")]  # the key column is updated too
    with pytest.raises(IntegrityError):
        conn.execute(upsert(item, {"id": 9, "name": "x"}, on_conflict="restrict"))


def test_upsert_many_rows(conn: sa.Connection) -> None:
    conn.execute(insert(item).values(id=1, name="a", qty=1))
    conn.execute(
        upsert(item, [{"id": 1, "qty": 10}, {"id": 2, "qty": 20}]),
    )
    assert _rows(conn) == [(1, "a", 10, None), (2, None, 20, None)]


def test_upsert_orm_class(engine: sa.Engine, conn: sa.Connection) -> None:
    conn.execute(upsert(Rock, {"id": 1, "name": "gneiss"}))
    conn.execute(upsert(Rock, {"id": 1, "name": "schist"}))
    assert conn.execute(text("SELECT name FROM rock")).scalar() == "schist"


def test_upsert_errors() -> None:
    with pytest.raises(InvalidOptionError, match="'do-update'"):
        upsert(item, {"id": 1}, on_conflict="update")
    with pytest.raises(InvalidOptionError, match="no primary key"):
        upsert(nokey, {"v": 1})
    with pytest.raises(InvalidOptionError, match="'nope'"):
        upsert(item, {"id": 1, "nope": 2})
    # do-nothing on a key-less table needs no key.
    assert "ON CONFLICT DO NOTHING" in str(
        upsert(nokey, {"v": 1}, on_conflict="do-nothing").compile(
            dialect=pg_dialect.dialect()
        )
    )


def test_upsert_keeps_its_clause_inside_on_conflict(conn: sa.Connection) -> None:
    conn.execute(insert(item).values(id=1, name="a"))
    with on_conflict("do-nothing"):
        conn.execute(upsert(item, {"id": 1, "name": "b"}))
    assert _rows(conn) == [(1, "b", None, None)]


# -- table_exists ----------------------------------------------------------------


def test_table_exists_inputs(db: Database, engine: sa.Engine) -> None:
    assert table_exists(db, "item")
    assert table_exists(engine, "item", schema="public")
    with engine.connect() as conn:
        assert table_exists(conn, "item")
    with Session(engine) as session:
        assert table_exists(session, "item")
    assert not table_exists(db, "no_such_table")
    assert not table_exists(db, "item", schema="no_such_schema")
    assert not db.session.in_transaction()  # no transaction left open
    with pytest.raises(TypeError):
        table_exists("postgresql://x/y", "item")  # type: ignore[arg-type]


def test_table_exists_kinds_and_names(db: Database) -> None:
    with db.engine.begin() as conn:
        conn.execute(text('CREATE SCHEMA IF NOT EXISTS "Other Schema"'))
        conn.execute(
            text('CREATE TABLE IF NOT EXISTS "Other Schema"."Mixed.Case" (id int)')
        )
        conn.execute(text("CREATE OR REPLACE VIEW item_view AS SELECT * FROM item"))
        conn.execute(text("CREATE MATERIALIZED VIEW IF NOT EXISTS item_mv AS SELECT 1"))
        conn.execute(text("CREATE SEQUENCE IF NOT EXISTS not_a_table"))
    assert table_exists(db, "Mixed.Case", schema="Other Schema")
    assert not table_exists(db, "mixed.case", schema="Other Schema")
    assert table_exists(db, "item_view")
    assert table_exists(db, "item_mv")
    assert not table_exists(db, "not_a_table")


def test_table_exists_sees_the_session_transaction(db: Database) -> None:
    db.session.execute(text("CREATE TABLE uncommitted (id int)"))
    try:
        assert table_exists(db, "uncommitted")
        assert not table_exists(db.engine, "uncommitted")
    finally:
        db.session.rollback()
    assert not table_exists(db, "uncommitted")
