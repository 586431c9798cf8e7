"""Fixtures for the database tests: SQL fixture loading and a sample schema."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine

from macrostrat.database import Database

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
