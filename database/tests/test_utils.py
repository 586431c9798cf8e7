"""The legacy ``macrostrat.database.utils`` layout and its small helpers."""

from __future__ import annotations

import importlib.util
import inspect
from pathlib import Path
from types import SimpleNamespace

import pytest
import sqlalchemy as sa
from sqlalchemy import text
from sqlalchemy.exc import NoSuchTableError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from macrostrat.database import Database, admin, engine
from macrostrat.database import utils as legacy


class Base(DeclarativeBase):
    pass


class Mineral(Base):
    __tablename__ = "mineral"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str]
    hardness: Mapped[float | None]


@pytest.fixture(scope="module")
def tables(db: Database) -> Database:
    Base.metadata.create_all(db.engine)
    with db.engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO mineral (name, hardness) VALUES ('quartz', 7), ('talc', 1);"
                "CREATE VIEW hard_mineral AS SELECT * FROM mineral WHERE hardness > 5"
            )
        )
    return db


def test_legacy_names_are_the_focused_modules_names() -> None:
    for name in (
        "create_database",
        "drop_database",
        "database_exists",
        "temporary_database",
        "template_database",
        "get_database_url",
        "close_all_connections",
        "db_isready",
        "wait_for_database",
        "connection_args",
    ):
        # The same function, wrapped to also take upstream's parameter names.
        ours = inspect.unwrap(getattr(legacy, name))
        assert ours is inspect.unwrap(getattr(admin, name)), name
    assert legacy.create_engine is engine.create_engine
    assert set(legacy.__all__) <= set(dir(legacy))


def test_query_names_load_lazily() -> None:
    if importlib.util.find_spec("macrostrat.database.query") is None:
        with pytest.raises(ImportError):
            legacy.run_sql  # noqa: B018
        pytest.skip("macrostrat.database.query is not written yet")
    from macrostrat.database import query

    for name in ("run_sql", "run_query", "run_sql_file", "run_fixtures"):
        assert getattr(legacy, name) is getattr(query, name)


def test_unknown_attribute() -> None:
    with pytest.raises(AttributeError, match="no_such_helper"):
        legacy.no_such_helper  # noqa: B018


def test_get_database_url(db: Database) -> None:
    assert legacy.get_database_url(db) is db.engine.url


def test_reflect_table(tables: Database) -> None:
    mineral = legacy.reflect_table(tables, "mineral")
    assert [c.name for c in mineral.columns] == ["id", "name", "hardness"]
    assert mineral.schema == "public"
    with tables.engine.connect() as conn:
        view = legacy.reflect_table(
            conn, "hard_mineral", sa.Column("id", sa.Integer, primary_key=True)
        )
        assert list(view.primary_key.columns.keys()) == ["id"]
        assert conn.execute(sa.select(view.c.name)).scalars().all() == ["quartz"]
    with pytest.raises(NoSuchTableError):
        legacy.reflect_table(tables.engine, "no_such_table")


def test_get_or_create(tables: Database) -> None:
    with legacy.db_session(tables) as session:
        assert isinstance(session, Session)
        found = legacy.get_or_create(session, Mineral, name="quartz")
        assert found._created is False
        assert found.hardness == 7
        new = legacy.get_or_create(
            session, Mineral, defaults={"hardness": 2.5}, name="gypsum"
        )
        assert new._created is True
        assert new in session.new
        assert new.hardness == 2.5
        session.flush()
        again = legacy.get_or_create(session, Mineral, name="gypsum")
        assert again is new
        assert again._created is False
        session.rollback()


def test_get_db_model() -> None:
    fake = SimpleNamespace(model=SimpleNamespace(mineral=Mineral))
    assert legacy.get_db_model(fake, "mineral") is Mineral  # type: ignore[arg-type]
    with pytest.raises(AttributeError):
        legacy.get_db_model(fake, "nothing")  # type: ignore[arg-type]


def test_get_dataframe(tables: Database, tmp_path: Path) -> None:
    pytest.importorskip("pandas")
    frame = legacy.get_dataframe(tables, "SELECT name FROM mineral ORDER BY name")
    assert list(frame["name"]) == ["quartz", "talc"]
    sql_file = tmp_path / "hard.sql"
    sql_file.write_text("SELECT name FROM hard_mineral")
    assert list(legacy.get_dataframe(tables.engine, sql_file)["name"]) == ["quartz"]
    assert list(legacy.get_dataframe(tables, str(sql_file))["name"]) == ["quartz"]


def test_sql_text_resolution(tmp_path: Path) -> None:
    """How `get_dataframe` reads its query (checked without pandas)."""
    from macrostrat.database._helpers import _sql_text

    sql_file = tmp_path / "q.sql"
    sql_file.write_text("SELECT 1")
    assert _sql_text(sql_file) == "SELECT 1"
    assert _sql_text(str(sql_file)) == "SELECT 1"
    assert _sql_text("SELECT 2") == "SELECT 2"
    assert _sql_text("missing.sql") == "missing.sql"
