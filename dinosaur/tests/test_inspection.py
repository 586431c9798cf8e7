"""How both sides of a diff are read: one snapshot each, settings pinned."""

from __future__ import annotations

import psycopg
from psycopg import sql

from macrostrat.dinosaur import create_migration
from macrostrat.dinosaur.diff import conninfo

SCHEMA = """
CREATE SCHEMA app;
CREATE DOMAIN app.depth AS numeric CHECK (VALUE >= 0);
CREATE TYPE app.span AS (top app.depth, bottom app.depth);
CREATE TABLE app.core (id int PRIMARY KEY, s app.span, d app.depth);
CREATE VIEW app.deep AS SELECT id, (s).bottom FROM app.core;
"""


def test_a_database_search_path_makes_no_difference(pair) -> None:
    """The live database sets ``search_path = app, public`` (so ``format_type``
    would spell its types unqualified there); the same schema diffs empty."""
    live, target = pair
    for url in (live, target):
        with psycopg.connect(conninfo(url), autocommit=True) as conn:
            conn.execute(SCHEMA)  # type: ignore[arg-type]
    name = live.rsplit("/", 1)[1]
    with psycopg.connect(conninfo(live), autocommit=True) as conn:
        conn.execute(
            sql.SQL("ALTER DATABASE {} SET search_path = app, public").format(
                sql.Identifier(name)
            )
        )
    assert create_migration(live, target).statements == []
    assert create_migration(live, target, privileges=True).statements == []


def test_a_plan_applies_whatever_search_path_the_database_sets(pair) -> None:
    """Plans are written relative to ``public``: they apply under it too."""
    live, target = pair
    table = "CREATE SCHEMA app; CREATE TABLE t (id int);"
    with psycopg.connect(conninfo(live), autocommit=True) as conn:
        conn.execute(table)
        conn.execute(
            sql.SQL("ALTER DATABASE {} SET search_path = app").format(
                sql.Identifier(live.rsplit("/", 1)[1])
            )
        )
    with psycopg.connect(conninfo(target), autocommit=True) as conn:
        conn.execute(table + "CREATE VIEW v AS SELECT id FROM t;")
    m = create_migration(live, target)
    m.apply(check_convergence=True)
    with psycopg.connect(conninfo(live)) as conn:
        found = conn.execute("SELECT to_regclass('public.v') IS NOT NULL").fetchone()
    assert found == (True,)
