"""What a type or function recreation cannot carry is carried over or refused.

An enum recreation, a domain swap and a function dropped and created again
drop and recreate the views on the affected columns; the views' triggers and
column comments come back from the target, and what PostgreSQL would refuse
mid-migration (a function using a view's row type, a generated column
computed from a converted column, a foreign key between converted enum
columns, a view on a typed table whose type changes) refuses the plan when it
is made, naming the objects in the way.  Each plan is built by diffing two
real databases.
"""

from __future__ import annotations

import psycopg
import pytest

from macrostrat.dinosaur import MigrationError, create_migration
from macrostrat.dinosaur.diff import conninfo


def run(url: str, script: str) -> None:
    with psycopg.connect(conninfo(url), autocommit=True) as conn:
        conn.execute(script)  # type: ignore[arg-type]


def rows(url: str, query: str) -> list[tuple[object, ...]]:
    with psycopg.connect(conninfo(url)) as conn:
        return conn.execute(query).fetchall()  # type: ignore[arg-type]


TRIGGER = (
    "CREATE FUNCTION vins() RETURNS trigger LANGUAGE plpgsql"
    " AS $$ BEGIN RETURN NEW; END $$;"
    "CREATE TRIGGER vt INSTEAD OF INSERT ON v"
    " FOR EACH ROW EXECUTE FUNCTION vins();"
    "COMMENT ON COLUMN v.id IS 'x';"
)

VIEW_CHECKS = (
    "SELECT (SELECT count(*) FROM pg_trigger WHERE tgname = 'vt'"
    " AND tgrelid = 'v'::regclass),"
    " col_description('v'::regclass, 1)"
)


def test_a_recreated_view_keeps_its_triggers_and_column_comments(pair):
    live, target = pair
    rest = (
        "CREATE TABLE t (id int);"
        "CREATE VIEW v AS SELECT id FROM t WHERE g() > 0;" + TRIGGER
    )
    run(live, "CREATE FUNCTION g() RETURNS int LANGUAGE sql AS 'SELECT 1';" + rest)
    run(
        target,
        "CREATE FUNCTION g() RETURNS bigint LANGUAGE sql AS 'SELECT 1::bigint';" + rest,
    )
    create_migration(live, target).apply(check_convergence=True)
    assert rows(live, VIEW_CHECKS) == [(1, "x")]


def test_a_domain_swap_keeps_the_views_triggers_and_column_comments(pair):
    live, target = pair
    rest = (
        "CREATE TABLE t (id int, x d);CREATE VIEW v AS SELECT id, x FROM t;" + TRIGGER
    )
    run(live, "CREATE DOMAIN d AS numeric;" + rest)
    run(target, "CREATE DOMAIN d AS numeric(8,2);" + rest)
    create_migration(live, target).apply(
        allow_hazards=["REWRITES_DATA", "DELETES_DATA"], check_convergence=True
    )
    assert rows(live, VIEW_CHECKS) == [(1, "x")]


def test_a_rule_on_a_recreated_view_is_refused(pair):
    live, target = pair
    rest = (
        "CREATE TABLE t (id int);"
        "CREATE VIEW v AS SELECT id FROM t WHERE g() > 0;"
        "CREATE RULE vr AS ON DELETE TO v DO INSTEAD NOTHING;"
    )
    run(live, "CREATE FUNCTION g() RETURNS int LANGUAGE sql AS 'SELECT 1';" + rest)
    run(
        target,
        "CREATE FUNCTION g() RETURNS bigint LANGUAGE sql AS 'SELECT 1::bigint';" + rest,
    )
    with pytest.raises(MigrationError, match=r"public\.g\(\).*rule vr"):
        create_migration(live, target)


ROW_TYPE_USER = "CREATE FUNCTION f() RETURNS SETOF v LANGUAGE sql AS 'SELECT * FROM v';"


def test_a_domain_swap_under_a_view_whose_row_type_a_function_uses_is_refused(pair):
    live, target = pair
    rest = (
        "CREATE TABLE t (id int, x d);"
        "CREATE VIEW v AS SELECT id, x FROM t;" + ROW_TYPE_USER
    )
    run(live, "CREATE DOMAIN d AS numeric;" + rest)
    run(target, "CREATE DOMAIN d AS numeric(8,2);" + rest)
    with pytest.raises(
        MigrationError,
        match=r"domain public\.d.*function f\(\) \(uses the row type of view public\.v",
    ):
        create_migration(live, target)


def test_an_enum_recreation_under_a_view_whose_row_type_a_function_uses_is_refused(
    pair,
):
    live, target = pair
    rest = (
        "CREATE TABLE t (id int, s e);"
        "CREATE VIEW v AS SELECT id, s FROM t;" + ROW_TYPE_USER
    )
    run(live, "CREATE TYPE e AS ENUM ('a', 'b', 'c');" + rest)
    run(target, "CREATE TYPE e AS ENUM ('a', 'b');" + rest)
    with pytest.raises(
        MigrationError,
        match=r"enum public\.e.*function f\(\) \(uses the row type of view public\.v",
    ):
        create_migration(live, target)


def test_a_function_recreation_under_a_view_whose_row_type_a_function_uses_is_refused(
    pair,
):
    live, target = pair
    rest = (
        "CREATE TABLE t (id int);"
        "CREATE VIEW v AS SELECT id FROM t WHERE g() > 0;"
        "CREATE FUNCTION f(r v) RETURNS int LANGUAGE sql AS 'SELECT 1';"
    )
    run(live, "CREATE FUNCTION g() RETURNS int LANGUAGE sql AS 'SELECT 1';" + rest)
    run(
        target,
        "CREATE FUNCTION g() RETURNS bigint LANGUAGE sql AS 'SELECT 1::bigint';" + rest,
    )
    with pytest.raises(
        MigrationError, match=r"public\.g\(\).*function f\(v\) \(uses the row type"
    ):
        create_migration(live, target)


def test_a_row_type_user_the_plan_drops_is_no_obstacle(pair):
    live, target = pair
    rest = "CREATE TABLE t (id int, x d); CREATE VIEW v AS SELECT id, x FROM t;"
    run(live, "CREATE DOMAIN d AS numeric;" + rest + ROW_TYPE_USER)
    run(target, "CREATE DOMAIN d AS numeric(8,2);" + rest)
    create_migration(live, target).apply(
        allow_hazards=["REWRITES_DATA", "DELETES_DATA"],
        check_convergence=True,
    )


def test_a_domain_swap_under_a_generated_column_is_refused(pair):
    live, target = pair
    rest = "CREATE TABLE t (id int, c d, u text GENERATED ALWAYS AS (upper(c)) STORED);"
    run(live, "CREATE DOMAIN d AS varchar(20);" + rest)
    run(target, "CREATE DOMAIN d AS varchar(30);" + rest)
    with pytest.raises(MigrationError, match=r"domain public\.d.*column u of table"):
        create_migration(live, target)


def test_an_enum_recreation_under_a_generated_column_is_refused(pair):
    live, target = pair
    rest = (
        "CREATE TABLE t (id int, s e, u boolean GENERATED ALWAYS AS (s = 'a') STORED);"
    )
    run(live, "CREATE TYPE e AS ENUM ('a', 'b', 'c');" + rest)
    run(target, "CREATE TYPE e AS ENUM ('a', 'b');" + rest)
    with pytest.raises(MigrationError, match=r"enum public\.e.*column u of table"):
        create_migration(live, target)


def test_an_enum_recreation_with_a_foreign_key_between_its_columns_is_refused(pair):
    live, target = pair
    rest = (
        "CREATE TABLE states (s e PRIMARY KEY);"
        "CREATE TABLE jobs (id int, s e REFERENCES states (s));"
    )
    run(live, "CREATE TYPE e AS ENUM ('a', 'b', 'c');" + rest)
    run(target, "CREATE TYPE e AS ENUM ('a', 'b');" + rest)
    with pytest.raises(MigrationError, match=r"enum public\.e.*jobs_s_fkey"):
        create_migration(live, target)


def test_a_typed_tables_attribute_change_under_a_view_is_refused(pair):
    live, target = pair
    rest = "CREATE TABLE tt OF pair; CREATE VIEW tv AS SELECT a FROM tt;"
    run(live, "CREATE TYPE pair AS (a int, b int);" + rest)
    run(target, "CREATE TYPE pair AS (a bigint, b int);" + rest)
    with pytest.raises(MigrationError, match=r"composite type public\.pair.*tv"):
        create_migration(live, target)


def test_a_typed_tables_attribute_change_without_views_is_planned(pair):
    live, target = pair
    run(live, "CREATE TYPE pair AS (a int, b int); CREATE TABLE tt OF pair;")
    run(target, "CREATE TYPE pair AS (a bigint, b int); CREATE TABLE tt OF pair;")
    create_migration(live, target).apply(
        allow_hazards=["REWRITES_DATA"], check_convergence=True
    )
