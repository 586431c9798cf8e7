"""ORM conveniences against a real server: race-safe get-or-create, updates, bulk ops."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import ForeignKey, Integer, String, UniqueConstraint, make_url, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from macrostrat.database import Database
from macrostrat.database.admin import create_database, database_exists, drop_database
from macrostrat.database.errors import InvalidOptionError
from macrostrat.database.orm import (
    get_or_create_instance,
    is_test_database_name,
    make_test_database_name,
)


class Base(DeclarativeBase):
    pass


class Tag(Base):
    __tablename__ = "orm_tag"
    __table_args__ = (UniqueConstraint("name"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String, nullable=False)
    color: Mapped[str] = mapped_column(String, nullable=False, default="grey")
    note: Mapped[str | None] = mapped_column(String)


class Child(Base):
    __tablename__ = "orm_child"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tag_id: Mapped[int] = mapped_column(ForeignKey("orm_tag.id"))


@pytest.fixture
def odb(db: Database) -> Iterator[Database]:
    db.recreate_all(Base.metadata)
    yield db
    db.cleanup()


def count(db: Database, table: str = "orm_tag") -> int:
    with db.engine.connect() as conn:
        return conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()


def test_recreate_all_empties_and_recreates(odb: Database) -> None:
    with odb.engine.begin() as conn:
        conn.execute(text("INSERT INTO orm_tag (name, color) VALUES ('a', 'red')"))
    assert count(odb) == 1
    odb.recreate_all(Base.metadata)
    assert count(odb) == 0
    assert count(odb, "orm_child") == 0


def test_get_or_create_instance(odb: Database) -> None:
    tag, created = odb.get_or_create_instance(Tag, {"color": "red"}, name="a")
    assert created
    assert tag.id is not None  # flushed
    again, created = odb.get_or_create_instance(Tag, {"color": "blue"}, name="a")
    assert (again, created) == (tag, False)
    assert again.color == "red"
    odb.session.commit()
    assert count(odb) == 1


def test_upstream_get_or_create_is_unchanged(odb: Database) -> None:
    tag = odb.get_or_create(Tag, {"color": "red"}, name="b")
    assert tag._created is True  # type: ignore[attr-defined]
    assert tag.id is None  # not flushed, as upstream
    odb.session.rollback()


def test_racing_sessions_one_creates_the_other_gets(odb: Database) -> None:
    """B inserts while A's identical row is uncommitted: B blocks, fails, reads A's row."""
    first = Session(odb.engine)
    tag_a, created_a = get_or_create_instance(first, Tag, name="race")
    assert created_a
    id_a = tag_a.id
    result: dict[str, object] = {}

    def racer() -> None:
        with Session(odb.engine) as second:
            second.execute(text("SET lock_timeout = '15s'"))
            try:
                tag, created = get_or_create_instance(second, Tag, name="race")
                result["id"], result["created"] = tag.id, created
                second.commit()
            except BaseException as exc:  # pragma: no cover - reported below
                result["error"] = exc

    thread = threading.Thread(target=racer)
    thread.start()
    # Wait until B really waits on A's row lock (no timing assertion).
    deadline = time.monotonic() + 15
    with odb.engine.connect() as watcher:
        while time.monotonic() < deadline:
            waiting = watcher.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = "
                    "'Lock' AND query LIKE 'INSERT INTO orm_tag%' "
                    "AND datname = current_database()"
                )
            ).scalar_one()
            watcher.rollback()
            if waiting:
                break
            time.sleep(0.02)
        else:  # pragma: no cover
            pytest.fail("the second session never blocked on the first one's insert")
    first.commit()
    first.close()
    thread.join(30)
    assert "error" not in result
    assert result == {"id": id_a, "created": False}
    assert count(odb) == 1


def test_other_integrity_errors_are_raised_and_session_survives(odb: Database) -> None:
    with pytest.raises(IntegrityError):
        odb.get_or_create_instance(Child, tag_id=12345)  # no such tag
    # The savepoint was rolled back: the session's transaction is still usable.
    assert odb.session.execute(text("SELECT 1")).scalar() == 1
    with pytest.raises(InvalidOptionError):
        odb.get_or_create_instance(Tag, name=Tag.name)  # an expression
    odb.session.rollback()


def test_update(odb: Database) -> None:
    tag, _ = odb.get_or_create_instance(Tag, name="u")
    assert odb.update(tag, {"color": "green", "note": "n"}) is tag
    odb.session.commit()
    with odb.engine.connect() as conn:
        row = conn.execute(text("SELECT color, note FROM orm_tag")).one()
    assert tuple(row) == ("green", "n")
    with pytest.raises(InvalidOptionError):
        odb.update(tag, {"nope": 1})


def test_bulk_operations_return_counts(odb: Database) -> None:
    rows = [{"id": i, "name": f"t{i}", "color": "red"} for i in range(1, 6)]
    assert odb.bulk_insert(Tag, rows) == 5
    assert odb.bulk_insert(Tag, []) == 0
    updated = odb.bulk_update(
        Tag,
        [
            {"id": 1, "color": "blue"},
            {"id": 2, "color": "blue"},
            {"id": 99, "color": "x"},
        ],
    )
    assert updated == 2
    with pytest.raises(InvalidOptionError):
        odb.bulk_update(Tag, [{"color": "blue"}])
    assert odb.bulk_delete(Tag, [3, {"id": 4}, 100]) == 2
    odb.session.commit()
    with odb.engine.connect() as conn:
        got = conn.execute(text("SELECT id, color FROM orm_tag ORDER BY id")).all()
    assert [tuple(r) for r in got] == [(1, "blue"), (2, "blue"), (5, "red")]


def test_test_database_names(db: Database, database_url: str) -> None:
    # The pytest plugin's clones follow the same convention.
    assert is_test_database_name(db.engine.url.database or "")
    names = {make_test_database_name("Geo Units!") for _ in range(50)}
    assert len(names) == 50
    assert all(is_test_database_name(n) for n in names)
    assert all(n.startswith("macrostrat_test_geo_units_") for n in names)
    assert len(make_test_database_name("x" * 100).encode()) == 63
    for real in ["macrostrat", "postgres", "macrostrat_test", "test_macrostrat_1"]:
        assert not is_test_database_name(real)
    name = make_test_database_name("orm")
    url = make_url(database_url).set(database=name)
    create_database(url)
    try:
        assert database_exists(url)
    finally:
        drop_database(url)
