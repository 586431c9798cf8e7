"""macrostrat.database.compat keeps the upstream import path."""

from __future__ import annotations

from psycopg import sql

from macrostrat.database.compat import update_legacy_identifier


def test_psycopg3_objects_pass_through_unchanged():
    ident = sql.Identifier("geology", "unit")
    assert update_legacy_identifier(ident) is ident
    assert update_legacy_identifier("plain") == "plain"
    assert update_legacy_identifier(None) is None


def test_psycopg2_objects_are_converted_with_a_warning(db) -> None:  # type: ignore[no-untyped-def]
    """Each psycopg2 ``sql`` kind becomes its psycopg 3 twin (same SQL text)."""
    import psycopg2.sql as sql2
    import pytest

    cases = [
        (sql2.SQL("SELECT 1"), sql.SQL("SELECT 1")),
        (sql2.Identifier("geology", "unit"), sql.Identifier("geology", "unit")),
        (sql2.Literal("it's"), sql.Literal("it's")),
        (sql2.Placeholder("name"), sql.Placeholder("name")),
        (sql2.Placeholder(), sql.Placeholder()),
        (
            sql2.SQL("SELECT {} FROM {}").format(
                sql2.Identifier("a b"), sql2.Identifier("s", "t")
            ),
            sql.SQL("SELECT {} FROM {}").format(
                sql.Identifier("a b"), sql.Identifier("s", "t")
            ),
        ),
    ]
    with db.engine.connect() as conn:
        raw = conn.connection.driver_connection
        for old, new in cases:
            with pytest.warns(DeprecationWarning, match="psycopg2"):
                converted = update_legacy_identifier(old)
            assert type(converted) is type(new)
            assert converted.as_string(raw) == new.as_string(raw)


def test_psycopg2_composed_queries_run(db) -> None:  # type: ignore[no-untyped-def]
    """run_sql and run_query accept psycopg2 ``sql`` objects, as upstream code passes them."""
    import psycopg2.sql as sql2
    import pytest

    create = sql2.SQL("CREATE TABLE {} (id int, label text)").format(
        sql2.Identifier("legacy table")
    )
    insert = sql2.SQL("INSERT INTO {} VALUES (1, {})").format(
        sql2.Identifier("legacy table"), sql2.Literal("it's")
    )
    with pytest.warns(DeprecationWarning, match="psycopg2"):
        db.run_sql(create)
    with pytest.warns(DeprecationWarning, match="psycopg2"):
        db.run_sql(insert)
    query = sql2.SQL("SELECT label FROM {} WHERE id = {}").format(
        sql2.Identifier("legacy table"), sql2.Placeholder("id")
    )
    with pytest.warns(DeprecationWarning, match="psycopg2"):
        rows = db.run_query(query, {"id": 1}).all()
    assert [tuple(r) for r in rows] == [("it's",)]
