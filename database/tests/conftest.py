"""Fixtures for the database tests: SQL fixture loading, a sample schema, fresh database names."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from sqlalchemy import URL, Engine, make_url

from macrostrat.database import Database, admin

FIXTURES = Path(__file__).parent / "fixtures"


def load_sql(engine: Engine, name: str) -> None:
    """Run fixture file ``name`` in one transaction (psycopg, several statements)."""
    sql = (FIXTURES / name).read_text()
    raw = engine.raw_connection()
    try:
        raw.driver_connection.execute(sql)  # type: ignore[union-attr]
        raw.commit()
    finally:
        raw.close()


@pytest.fixture(scope="module")
def sample_db(db: Database) -> Database:
    """The module's database with ``sample-schema.sql`` loaded."""
    load_sql(db.engine, "sample-schema.sql")
    return db


ADMIN_PREFIX = "macrostrat_test_adm_"
"""Names of the databases the admin tests make (all dropped after each test)."""


def _drop_now(server_url: str, name: str) -> None:
    kwargs = make_url(server_url).translate_connect_args(
        username="user", database="dbname"
    )
    with psycopg.connect(**kwargs, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                sql.Identifier(name)
            )
        )


@pytest.fixture
def short_settle(monkeypatch: pytest.MonkeyPatch) -> None:
    """Call a database busy after 0.2 s instead of 1 s, to keep the tests fast."""
    monkeypatch.setattr(admin._connection, "_SETTLE_SECONDS", 0.2)


@pytest.fixture
def new_url(database_url: str) -> Iterator[Callable[..., URL]]:
    """A factory of URLs naming fresh, not yet created databases; all dropped after."""
    created: list[str] = []

    def make(name: str | None = None) -> URL:
        name = name or f"{ADMIN_PREFIX}{secrets.token_hex(4)}"
        created.append(name)
        return make_url(database_url).set(database=name)

    yield make
    for name in created:
        _drop_now(database_url, name)
