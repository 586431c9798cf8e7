"""Database: construction, engines, sessions, parameters, lifetime, ORM helpers."""

from __future__ import annotations

import gc
import sys
import threading
import types
import warnings
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Column, Integer, MetaData, Table, inspect, text
from sqlalchemy.orm import Session

from macrostrat.database import Database
from macrostrat.database.engine import create_engine, normalize_url
from macrostrat.database.errors import InvalidOptionError


def test_url_is_normalised_and_repr_hides_the_password() -> None:
    db = Database("postgresql://user:s3cret@localhost:5999/x")
    try:
        assert db.engine.url.drivername == "postgresql+psycopg"
        assert "s3cret" not in repr(db)
        assert "***" in repr(db)
    finally:
        db.cleanup()
    assert normalize_url("postgres://h/x").drivername == "postgresql+psycopg"
    assert (
        normalize_url("postgresql+psycopg2://h/x").drivername == "postgresql+psycopg2"
    )


def test_engine_identity_is_kept(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        assert create_engine(engine) is engine
        db = Database(engine)
        assert db.engine is engine
        assert Database(db).engine is engine
        assert create_engine(db) is engine
    finally:
        engine.dispose()


def test_engine_options_with_an_engine_are_refused(database_url: str) -> None:
    """Upstream ignored them with a log line; now they raise."""
    engine = create_engine(database_url)
    try:
        with pytest.raises(InvalidOptionError, match="pool_size"):
            Database(engine, pool_size=3)
        with pytest.raises(InvalidOptionError, match="echo_sql"):
            Database(engine, echo_sql=True)
    finally:
        engine.dispose()
    with pytest.raises(TypeError, match="not int"):
        create_engine(42)  # type: ignore[arg-type]
    db = Database(database_url, echo_sql=True, pool_size=2)
    assert db.engine.echo is True
    assert db.engine.pool.size() == 2
    db.cleanup()


def test_metadata_option_and_create_tables(empty_database_url: str) -> None:
    """Weakness 17: Database(metadata=...) crashed; create_tables ignored it."""
    md = MetaData()
    Table("made_here", md, Column("id", Integer, primary_key=True))
    with Database(empty_database_url, metadata=md) as db:
        assert db.metadata is md
        db.create_tables()
        assert inspect(db.engine).has_table("made_here")
    with Database(empty_database_url) as other:
        assert other.metadata is not md
        assert not other.metadata.tables


def test_failed_construction_is_quiet(monkeypatch: pytest.MonkeyPatch) -> None:
    """Weakness 17: upstream's __del__ printed 'Exception ignored ... session'."""
    unraisable: list[Any] = []
    monkeypatch.setattr(sys, "unraisablehook", unraisable.append)
    with pytest.raises(TypeError):
        Database(12345)  # type: ignore[arg-type]
    gc.collect()
    assert unraisable == []


def test_cleanup_leaves_a_callers_engine_alone(database_url: str) -> None:
    """Weakness 17: cleanup()/__del__ disposed an engine the caller passed in."""
    engine = create_engine(database_url)
    try:
        pool = engine.pool
        db = Database(engine)
        with db.session_scope():
            db.session.execute(text("SELECT 1"))
        db.cleanup()
        del db
        gc.collect()
        assert engine.pool is pool
        Database(engine).cleanup(dispose_engine=True)
        assert engine.pool is not pool
    finally:
        engine.dispose()


def test_context_manager_disposes_an_owned_engine(database_url: str) -> None:
    with Database(database_url) as db:
        pool = db.engine.pool
        assert db.session.execute(text("SELECT 1")).scalar() == 1
    assert db.engine.pool is not pool
    db.cleanup()  # idempotent
    db.cleanup()
    assert db.session.execute(text("SELECT 2")).scalar() == 2  # still usable
    db.cleanup()


def test_session_is_a_thread_local_session(db: Database) -> None:
    assert isinstance(db.session, Session)
    assert db.session is db.session
    other: list[Session] = []
    thread = threading.Thread(target=lambda: other.append(db.session))
    thread.start()
    thread.join()
    assert other[0] is not db.session
    replacement = Session(db.engine)
    db.session = replacement
    assert db.session is replacement
    db.cleanup()
    assert db.session is not replacement


def test_session_scope(db: Database) -> None:
    with db.engine.begin() as conn:
        conn.execute(text("CREATE TABLE scoped (id int PRIMARY KEY)"))
    with db.session_scope() as session:
        session.execute(text("INSERT INTO scoped VALUES (1)"))

    def failing() -> None:
        with db.session_scope() as session:
            session.execute(text("INSERT INTO scoped VALUES (2)"))
            raise ZeroDivisionError

    with pytest.raises(ZeroDivisionError):
        failing()
    with db.session_scope(commit=False) as session:
        session.execute(text("INSERT INTO scoped VALUES (3)"))
    with db.engine.connect() as conn:
        assert conn.execute(text("SELECT id FROM scoped")).scalars().all() == [1]


def test_server_version_inspector_and_entity_names(db: Database) -> None:
    version = db.get_server_version()
    assert version is not None
    assert version[0] >= 13
    with db.engine.begin() as conn:
        conn.execute(text("CREATE TABLE ent (id int); CREATE VIEW ent_v AS SELECT 1"))
    inspector = db.inspector
    assert db.inspector is inspector
    names = list(db.entity_names())
    assert names.index("ent") < names.index("ent_v")
    db.refresh_schema()
    assert db.inspector is not inspector


@pytest.fixture
def fake_query(
    monkeypatch: pytest.MonkeyPatch,
) -> list[tuple[str, Any, Any, Any, dict[str, Any]]]:
    """Stand in for macrostrat.database.query (written elsewhere) to see calls."""
    calls: list[tuple[str, Any, Any, Any, dict[str, Any]]] = []
    module = types.ModuleType("macrostrat.database.query")
    for name in ("run_sql", "run_query", "run_fixtures"):

        def func(
            conn: Any, sql: Any, params: Any = None, _n: str = name, **kw: Any
        ) -> str:
            calls.append((_n, conn, sql, params, kw))
            return _n

        setattr(module, name, func)

    def run_one(
        conn: Any, sql: Any, params: Any, kw: dict[str, Any], *, join: bool
    ) -> str:
        calls.append(("run_query", conn, sql, params, kw))
        return "run_query"

    module.run_one = run_one  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "macrostrat.database.query", module)
    return calls


def test_run_methods_delegate_with_merged_params(
    db: Database, fake_query: list[Any]
) -> None:
    """Weaknesses 1 and 2: instance params are defaults; the caller's dict is untouched."""
    local = Database(db, instance_params={"a": 1, "b": 2})
    mine = {"b": 20}
    assert local.run_sql("SELECT :a, :b", mine, raise_errors=True) == "run_sql"
    _name, conn, sql, params, kw = fake_query[-1]
    assert conn is local.session
    assert sql == "SELECT :a, :b"
    assert params == {"a": 1, "b": 20}
    assert kw == {"raise_errors": True}
    assert mine == {"b": 20}  # not mutated (weakness 2)
    local.run_query("SELECT %s", (5,))
    assert fake_query[-1][3] == (5,)  # positional params pass through (weakness 1)
    local.run_query("SELECT %s", [5, 6])
    assert fake_query[-1][3] == [5, 6]
    local.run_fixtures(Path("x.sql"), [{"a": 9}, {"c": 3}])
    assert fake_query[-1][0] == "run_fixtures"
    assert fake_query[-1][3] == [{"a": 9, "b": 2}, {"a": 1, "b": 2, "c": 3}]
    local.run_sql("SELECT 1")
    assert fake_query[-1][3] == {"a": 1, "b": 2}
    local.run_sql("SELECT 1", {"x": 1}, use_instance_params=False)
    assert fake_query[-1][3] == {"x": 1}
    assert fake_query[-1][4] == {}
    Database(db).run_sql("SELECT 1")
    assert fake_query[-1][3] is None
    with pytest.warns(DeprecationWarning, match="run_sql"):
        assert local.exec_sql("SELECT 1", {"a": 5}) == "run_sql"
    assert fake_query[-1][3] == {"a": 5, "b": 2}
    with local.transaction():
        local.run_sql("SELECT 1")
        assert fake_query[-1][1] is local.session
        assert fake_query[-1][1].bind is not local.engine


def test_get_dataframe_without_pandas(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A missing pandas gives an ImportError that says how to install it."""
    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(ImportError, match=r"macrostrat\.database\[pandas\]"):
        db.get_dataframe("SELECT 1")


def test_get_dataframe_with_a_stand_in_pandas(
    db: Database, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Database.get_dataframe hands pandas.read_sql the SQL and a connectable."""
    fake = types.ModuleType("pandas")

    def read_sql(query: Any, conn: Any, **kw: Any) -> list[Any]:
        with conn.connect() as c:
            return c.execute(query, kw.get("params")).all()

    fake.read_sql = read_sql  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "pandas", fake)
    assert db.get_dataframe("SELECT 1 AS x") == [(1,)]
    sql = tmp_path / "q.sql"
    sql.write_text("SELECT :v AS v")
    assert db.get_dataframe(sql, params={"v": 7}) == [(7,)]


def test_get_and_get_or_create(sample_db: Database) -> None:
    """`get` uses Session.get (no LegacyAPIWarning); get_or_create sets `_created`."""
    sample = sample_db.model.sample
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = sample_db.get(sample, 1)
        assert got is not None
        assert got.name == "a"
        assert sample_db.get("sample", 1) is got
        assert sample_db.get(sample, 999) is None
    with pytest.raises(TypeError):
        sample_db.get(sample)
    found = sample_db.get_or_create("sample", name="b")
    assert found._created is False
    assert found.id == 2
    new = sample_db.get_or_create(sample, defaults={"formation_id": 2}, name="zz")
    assert new._created is True
    assert new.formation_id == 2
    assert new in sample_db.session
    assert new.id is None  # not flushed
    sample_db.session.rollback()


def test_reflect_table_is_deprecated(sample_db: Database) -> None:
    with pytest.warns(DeprecationWarning, match="get_table"):
        table = sample_db.reflect_table("sample")
    assert table.name == "sample"
    assert table.schema == "public"


def test_run_sql_after_run_query_is_committed(empty_db):
    """run_query leaves the default session in a transaction; a later run_sql
    must still commit its statements (they are visible to other connections)."""
    empty_db.run_sql("CREATE TABLE after_query (i int)")
    assert empty_db.run_query("SELECT count(*) FROM after_query").scalar() == 0
    empty_db.run_sql("INSERT INTO after_query VALUES (:i)", {"i": 1})
    with empty_db.engine.connect() as other:
        count = other.exec_driver_sql("SELECT count(*) FROM after_query").scalar()
    assert count == 1


def test_run_sql_inside_transaction_joins_it(empty_db):
    """Inside db.transaction(), run_sql joins the block's transaction."""
    empty_db.run_sql("CREATE TABLE joined_tx (i int)")
    with empty_db.transaction(rollback="always"):
        empty_db.run_sql(
            "INSERT INTO joined_tx VALUES (1); INSERT INTO joined_tx VALUES (2)"
        )
        assert empty_db.run_query("SELECT count(*) FROM joined_tx").scalar() == 2
    assert empty_db.run_query("SELECT count(*) FROM joined_tx").scalar() == 0
