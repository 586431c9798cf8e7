"""macrostrat.database.compat keeps the upstream import path."""

from __future__ import annotations

from psycopg import sql

from macrostrat.database.compat import update_legacy_identifier


def test_psycopg3_objects_pass_through_unchanged():
    ident = sql.Identifier("geology", "unit")
    assert update_legacy_identifier(ident) is ident
    assert update_legacy_identifier("plain") == "plain"
    assert update_legacy_identifier(None) is None
