"""Functions PostgreSQL cannot replace in place are dropped and created again.

``CREATE OR REPLACE FUNCTION`` is refused when the return type changes
("cannot change return type of existing function") or the kind (a function
to a procedure); the plan drops the function first, with the views using it,
which come back from the target.  What else uses it makes the plan refused,
naming it.  Each plan is built by diffing two real databases and applied.
"""

from __future__ import annotations

import psycopg
import pytest

from macrostrat.dinosaur import MigrationError, create_migration
from macrostrat.dinosaur.diff import conninfo, format_plan


def run(url: str, script: str) -> None:
    with psycopg.connect(conninfo(url), autocommit=True) as conn:
        conn.execute(script)  # type: ignore[arg-type]


def rows(url: str, query: str) -> list[tuple[object, ...]]:
    with psycopg.connect(conninfo(url)) as conn:
        return conn.execute(query).fetchall()  # type: ignore[arg-type]


F = "CREATE FUNCTION f() RETURNS int LANGUAGE sql AS $$ SELECT 1 $$;"
F_BIGINT = F.replace("RETURNS int", "RETURNS bigint")


def test_a_return_type_change_drops_and_creates_the_function_and_its_views(pair):
    live, target = pair
    rest = (
        "CREATE TABLE t (id int); INSERT INTO t VALUES (1);"
        "CREATE VIEW v AS SELECT id FROM t WHERE f() > 0;"
        "CREATE VIEW vv AS SELECT id FROM v;"
        "COMMENT ON VIEW vv IS 'on v';"
        "CREATE MATERIALIZED VIEW mv AS SELECT id FROM t WHERE f() > 0;"
        "CREATE INDEX mv_id ON mv (id);"
        "CREATE FUNCTION k() RETURNS SETOF int LANGUAGE sql AS $$ SELECT 1 $$;"
    )
    run(live, F + rest)
    run(target, F_BIGINT + rest.replace("RETURNS SETOF int", "RETURNS int"))
    m = create_migration(live, target)
    text = [p.sql for p in m.plan]
    for name in ("f", "k"):
        drop = text.index(f'drop function if exists "public"."{name}"();')
        create = next(
            i
            for i, s in enumerate(text)
            if s.startswith(f"CREATE OR REPLACE FUNCTION public.{name}()")
        )
        assert drop < create, format_plan(m.plan)
    assert text.index('drop view if exists "public"."vv";') < text.index(
        'drop function if exists "public"."f"();'
    )
    m.apply(check_convergence=True)
    assert rows(live, "SELECT pg_typeof(f())::text, pg_typeof(k())::text") == [
        ("bigint", "integer")
    ]
    assert rows(live, "SELECT id FROM vv") == [(1,)]
    assert rows(live, "SELECT id FROM mv") == [(1,)]
    assert rows(live, "SELECT obj_description('vv'::regclass)") == [("on v",)]
    assert rows(live, "SELECT to_regclass('public.mv_id') IS NOT NULL") == [(True,)]


def test_a_function_that_becomes_a_procedure_is_dropped_first(pair):
    live, target = pair
    run(live, "CREATE FUNCTION g(x int) RETURNS int LANGUAGE sql AS $$ SELECT x $$;")
    run(target, "CREATE PROCEDURE g(x int) LANGUAGE sql AS $$ SELECT x $$;")
    m = create_migration(live, target)
    m.apply(check_convergence=True)
    assert rows(live, "SELECT prokind FROM pg_proc WHERE proname = 'g'") == [("p",)]


def test_a_safe_plan_keeps_the_drop_with_the_creation(pair):
    live, target = pair
    rest = "CREATE TABLE t (id int); CREATE VIEW v AS SELECT id FROM t WHERE f() > 0;"
    run(live, F + rest)
    run(target, F_BIGINT + rest)
    m = create_migration(live, target)
    assert [p.sql for p in m.safe_plan()] == [p.sql for p in m.plan]
    m.apply(safe_only=True, check_convergence=True)
    assert rows(live, "SELECT pg_typeof(f())::text") == [("bigint",)]


@pytest.mark.parametrize(
    ("rest", "named"),
    [
        (
            "CREATE TABLE t (id int DEFAULT f());",
            "default value for column id of table t",
        ),
        (
            "CREATE TABLE t (id int CONSTRAINT t_f CHECK (id < f()));",
            "constraint t_f on table t",
        ),
        ("CREATE TABLE t (id int); CREATE INDEX t_f ON t ((id + f()));", "index t_f"),
    ],
    ids=["default", "check", "index"],
)
def test_a_function_in_use_is_refused_naming_its_users(pair, rest, named):
    live, target = pair
    run(live, F.replace("LANGUAGE sql", "LANGUAGE sql IMMUTABLE") + rest)
    run(target, F_BIGINT.replace("LANGUAGE sql", "LANGUAGE sql IMMUTABLE") + rest)
    with pytest.raises(MigrationError) as err:
        create_migration(live, target)
    message = str(err.value)
    assert "function public.f()" in message
    assert "return type changes from integer to bigint" in message
    assert named in message


def test_a_view_outside_the_plans_schemas_is_refused(pair):
    live, target = pair
    rest = "CREATE SCHEMA r; CREATE VIEW r.v AS SELECT 1 AS x WHERE f() > 0;"
    run(live, F + rest)
    run(target, F_BIGINT + rest)
    with pytest.raises(MigrationError) as err:
        create_migration(live, target, schema="public")
    assert "outside the schemas the plan covers use it: view r.v" in str(err.value)
