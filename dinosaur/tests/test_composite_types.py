"""Composite types in every schema: create, alter and drop paths converge.

``results`` alone plans none of these: it sees only composite types on the
search path, and a changed type's attributes are never altered.  Attributes
are compared in order: a change PostgreSQL cannot make in place recreates a
type nothing uses, and is refused, naming the users, otherwise.
"""

from __future__ import annotations

import re

import psycopg
import pytest

from macrostrat.dinosaur import check_convergence, create_migration
from macrostrat.dinosaur._composites import (
    composite_statements,
    without_typed_column_changes,
)
from macrostrat.dinosaur._depends import read_catalog
from macrostrat.dinosaur.diff import conninfo
from macrostrat.dinosaur.errors import MigrationError


def run(url: str, script: str) -> None:
    with psycopg.connect(conninfo(url), autocommit=True) as conn:
        conn.execute(script)  # type: ignore[arg-type]


def attributes(url: str, name: str) -> list[tuple[str, str]]:
    """A composite type's (or table's row type's) attributes, in their order."""
    with psycopg.connect(conninfo(url)) as conn:
        return conn.execute(  # type: ignore[return-value]
            "SELECT a.attname, format_type(a.atttypid, a.atttypmod) "
            "FROM pg_attribute a JOIN pg_type t ON t.typrelid = a.attrelid "
            "WHERE t.oid = %s::regtype AND a.attnum > 0 AND NOT a.attisdropped "
            "ORDER BY a.attnum",
            (name,),
        ).fetchall()


def unsafe_hazards(m) -> list[str]:
    return sorted({h.value for p in m.plan for h in p.unsafe_hazards()})


TYPES = """
CREATE SCHEMA geo;
CREATE DOMAIN geo.depth AS numeric(8, 2) CHECK (VALUE >= 0);
CREATE TYPE geo.interval_m AS (top geo.depth, bottom geo.depth, label text COLLATE "C");
COMMENT ON TYPE geo.interval_m IS 'a depth interval';
CREATE TABLE geo.cores (id int PRIMARY KEY, span geo.interval_m);
CREATE FUNCTION geo.thickness(i geo.interval_m) RETURNS numeric
  LANGUAGE sql IMMUTABLE AS 'select (i).bottom - (i).top';
"""


def test_composite_types_outside_the_search_path_are_created(pair) -> None:
    live, target = pair
    run(target, TYPES)
    m = create_migration(live, target)
    creates = [s for s in m.statements if s.startswith("CREATE TYPE")]
    assert len(creates) == 1
    assert '"geo"."interval_m"' in creates[0]
    assert 'COLLATE pg_catalog."C"' in creates[0]
    # the domain before the type, the type before the table and function
    order = [
        next(i for i, s in enumerate(m.statements) if needle in s)
        for needle in (
            'domain "geo"."depth"',
            "CREATE TYPE",
            '"geo"."cores"',
            "thickness",
        )
    ]
    assert order == sorted(order), m.statements
    m.apply(check_convergence=True)
    assert attributes(live, "geo.interval_m") == attributes(target, "geo.interval_m")
    with psycopg.connect(conninfo(live)) as conn:
        comment = conn.execute(
            "SELECT obj_description('geo.interval_m'::regtype, 'pg_type')"
        ).fetchone()
    assert comment == ("a depth interval",)


def test_changed_attributes_are_altered_in_place(pair) -> None:
    live, target = pair
    run(live, TYPES)
    run(live, "INSERT INTO geo.cores VALUES (1, ROW(1.5, 3, 'a'))")
    run(
        target,
        TYPES.replace('label text COLLATE "C"', 'label text COLLATE "C", method text')
        .replace("top geo.depth, ", "")
        .replace("'a depth interval'", "'a measured depth interval'")
        .replace("(i).bottom - (i).top", "(i).bottom"),
    )
    m = create_migration(live, target)
    text = "\n".join(m.statements)
    assert 'ALTER TYPE "geo"."interval_m" DROP ATTRIBUTE "top";' in text
    assert 'ALTER TYPE "geo"."interval_m" ADD ATTRIBUTE "method" text;' in text
    assert "DROP TYPE" not in text.upper().replace("DROP TYPE IF", "")
    assert "label" not in text  # unchanged, kept with its values
    assert unsafe_hazards(m) == ["DELETES_DATA"]  # the values of top go
    m.apply(allow_hazards=["DELETES_DATA"], check_convergence=True)
    check_convergence(live, target)
    assert attributes(live, "geo.interval_m") == attributes(target, "geo.interval_m")
    with psycopg.connect(conninfo(live)) as conn:
        row = conn.execute(
            "SELECT (span).bottom, (span).label, (span).method FROM geo.cores"
        ).fetchone()
    assert row == (3, "a", None)


def test_attribute_type_changes_in_place_when_nothing_pins_the_type(pair) -> None:
    live, target = pair
    # a function taking the type does not stop ALTER ATTRIBUTE ... TYPE
    users = "CREATE FUNCTION geo.f(p geo.p) RETURNS int LANGUAGE sql AS 'select 1';"
    run(live, "CREATE SCHEMA geo; CREATE TYPE geo.p AS (x int, y text);" + users)
    run(target, "CREATE SCHEMA geo; CREATE TYPE geo.p AS (x bigint, y text);" + users)
    m = create_migration(live, target)
    assert m.statements == ['ALTER TYPE "geo"."p" ALTER ATTRIBUTE "x" TYPE bigint;']
    assert [h.value for h in m.plan[0].hazards] == ["REWRITES_DATA"]
    m.apply(allow_hazards=["REWRITES_DATA"], check_convergence=True)


def test_removed_composite_type_is_dropped_after_its_users(pair) -> None:
    live, target = pair
    run(live, TYPES)
    run(
        target,
        "CREATE SCHEMA geo; CREATE DOMAIN geo.depth AS numeric(8, 2) CHECK (VALUE >= 0);",
    )
    m = create_migration(live, target)
    statements = m.statements
    drop_type = next(i for i, s in enumerate(statements) if s.startswith("DROP TYPE"))
    drop_table = next(i for i, s in enumerate(statements) if '"geo"."cores"' in s)
    assert drop_table < drop_type
    m.apply(allow_hazards=unsafe_hazards(m), check_convergence=True)
    with psycopg.connect(conninfo(live)) as conn:
        assert conn.execute("SELECT to_regtype('geo.interval_m')").fetchone() == (None,)


# -- in use: values held in a column, at any depth ---------------------------


@pytest.mark.parametrize(
    ("holder", "user"),
    [
        # a column of a composite type with an attribute of the type
        (
            "CREATE TYPE s.outer AS (i s.inner, n int); "
            "CREATE TABLE s.t (id int, o s.outer);",
            "type s.outer",
        ),
        # an array of such a type, in a materialized view
        (
            "CREATE TYPE s.outer AS (i s.inner, n int); "
            "CREATE MATERIALIZED VIEW s.t AS SELECT ARRAY[]::s.outer[] AS o;",
            "type s.outer",
        ),
        # a domain over the type
        (
            "CREATE DOMAIN s.d AS s.inner; CREATE TABLE s.t (id int, o s.d);",
            "domain s.d",
        ),
    ],
    ids=["composite", "array-in-matview", "domain"],
)
def test_attribute_type_change_of_a_type_held_in_a_column_is_refused(
    pair, holder: str, user: str
) -> None:
    live, target = pair
    run(live, "CREATE SCHEMA s; CREATE TYPE s.inner AS (a int, b text);" + holder)
    run(target, "CREATE SCHEMA s; CREATE TYPE s.inner AS (a bigint, b text);" + holder)
    # PostgreSQL refuses ALTER ATTRIBUTE ... TYPE ("column t.o uses it"), and
    # the type cannot be dropped while the other type or domain uses it
    with pytest.raises(MigrationError) as err:
        create_migration(live, target)
    message = str(err.value)
    assert "composite type s.inner" in message
    assert "attribute a changes from integer to bigint" in message
    assert re.search(r"column o of (table|materialized view) s\.t", message)
    assert f"use it: {user}." in message


def test_in_use_type_is_never_changed_by_dropping_and_adding_an_attribute(
    pair,
) -> None:
    live, target = pair
    run(live, TYPES)
    run(target, TYPES.replace('label text COLLATE "C"', "label varchar(40)"))
    with pytest.raises(MigrationError) as err:
        create_migration(live, target)
    message = str(err.value)
    assert "composite type geo.interval_m" in message
    assert (
        'attribute label changes from text COLLATE pg_catalog."C" to '
        "character varying(40)" in message
    )
    assert "column span of table geo.cores" in message
    assert "function geo.thickness(i geo.interval_m)" in message


def test_type_used_by_a_kept_expression_is_not_changed_in_place(pair) -> None:
    live, target = pair
    script = (
        "CREATE SCHEMA s; CREATE TYPE s.p AS (a {}, b text); "
        "CREATE TABLE s.t (id int, v text DEFAULT (NULL::s.p).b);"
    )
    run(live, script.format("int"))
    run(target, script.format("bigint"))
    # the default is the same in the target: the plan keeps it, and PostgreSQL
    # refuses to change the type under it (or to drop the type)
    with pytest.raises(MigrationError) as err:
        create_migration(live, target)
    message = str(err.value)
    assert "in use (by default value for column v of table s.t)" in message
    assert "use it: table s.t." in message


# -- attribute order ----------------------------------------------------------


@pytest.mark.parametrize(
    ("before", "after"),
    [
        ("a int, b text", "b text, a int"),
        ("a int, c text", "a int, b int, c text"),
        ("a int, b text", "b text"),  # not a change of order: in place
    ],
    ids=["reordered", "inserted", "dropped"],
)
def test_attribute_order_is_the_targets(pair, before: str, after: str) -> None:
    live, target = pair
    run(live, f"CREATE SCHEMA s; CREATE TYPE s.p AS ({before});")
    run(target, f"CREATE SCHEMA s; CREATE TYPE s.p AS ({after});")
    m = create_migration(live, target)
    recreated = any(s.startswith('DROP TYPE "s"."p"') for s in m.statements)
    assert recreated == (after != "b text"), m.statements
    m.apply(allow_hazards=unsafe_hazards(m), check_convergence=True)
    assert attributes(live, "s.p") == attributes(target, "s.p")


def test_new_attributes_are_appended_after_the_kept_ones(pair) -> None:
    live, target = pair
    run(
        live,
        "CREATE SCHEMA s; CREATE TYPE s.p AS (x int, a int); "
        "CREATE TABLE s.t (p s.p); INSERT INTO s.t VALUES (ROW(1, 2));",
    )
    run(
        target,
        "CREATE SCHEMA s; CREATE TYPE s.p AS (a int, b text); CREATE TABLE s.t (p s.p);",
    )
    m = create_migration(live, target)
    assert m.statements == [
        'ALTER TYPE "s"."p" ADD ATTRIBUTE "b" text;',
        'ALTER TYPE "s"."p" DROP ATTRIBUTE "x";',
    ]
    m.apply(allow_hazards=["DELETES_DATA"], check_convergence=True)
    assert attributes(live, "s.p") == [("a", "integer"), ("b", "text")]
    with psycopg.connect(conninfo(live)) as conn:
        assert conn.execute("SELECT (p).a, (p).b FROM s.t").fetchone() == (2, None)


def test_reordered_attributes_of_a_used_type_are_refused(pair) -> None:
    live, target = pair
    script = (
        "CREATE SCHEMA s; CREATE TYPE s.p AS ({}); "
        "CREATE FUNCTION s.f(x s.p) RETURNS int LANGUAGE sql AS 'select 1';"
        "CREATE TABLE s.t (id int, p s.p[]);"
    )
    run(live, script.format("a int, b text"))
    run(target, script.format("b text, a int"))
    with pytest.raises(MigrationError) as err:
        create_migration(live, target)
    message = str(err.value)
    assert "composite type s.p" in message
    assert "(a, b) in the live database and (b, a) in the target" in message
    assert "column p of table s.t; function s.f(x s.p)" in message


def test_a_type_whose_users_the_plan_drops_is_recreated(pair) -> None:
    live, target = pair
    run(
        live,
        "CREATE SCHEMA s; CREATE TYPE s.p AS (a int, b text); "
        "CREATE TABLE s.t (id int, p s.p);",
    )
    run(target, "CREATE SCHEMA s; CREATE TYPE s.p AS (b text, a int);")
    source, goal = read_catalog(conninfo(live)), read_catalog(conninfo(target))
    with pytest.raises(MigrationError, match=r"use it: column p of table s\.t\."):
        composite_statements(source, goal)
    for plan in (['drop table "s"."t";'], ['alter table "s"."t" drop column "p";']):
        creates, drops = composite_statements(source, goal, plan=plan)
        assert creates[0] == 'DROP TYPE "s"."p";'
        assert creates[1].startswith('CREATE TYPE "s"."p" AS (\n    "b" text,')
        assert drops == []


def test_a_type_whose_users_the_plan_drops_is_recreated_after_them(pair) -> None:
    live, target = pair
    run(
        live,
        "CREATE SCHEMA s; CREATE TYPE s.p AS (a int, b text); "
        "CREATE TABLE s.t (id int, p s.p); "
        "CREATE VIEW s.v AS SELECT (ROW(1, 'x')::s.p).a AS a;",
    )
    run(
        target,
        "CREATE SCHEMA s; CREATE TYPE s.p AS (a bigint, b text); "
        "CREATE TABLE s.t (id int); "
        "CREATE VIEW s.v AS SELECT (ROW(1, 'x')::s.p).a AS a;",
    )
    m = create_migration(live, target)
    statements = m.statements
    at = {
        what: next(i for i, s in enumerate(statements) if s.startswith(what))
        for what in (
            'alter table "s"."t" drop column "p"',
            'drop view if exists "s"."v"',
            'DROP TYPE "s"."p"',
            'CREATE TYPE "s"."p"',
            'create or replace view "s"."v"',
        )
    }
    assert list(at.values())[2:] == sorted(list(at.values())[2:]), statements
    assert max(list(at.values())[:2]) < at['DROP TYPE "s"."p"'], statements
    m.apply(allow_hazards=unsafe_hazards(m), check_convergence=True)
    assert attributes(live, "s.p") == [("a", "bigint"), ("b", "text")]


# -- order against the rest of the plan ---------------------------------------


def test_attribute_drop_runs_after_the_views_using_it_are_dropped(pair) -> None:
    live, target = pair
    script = (
        "CREATE SCHEMA s; CREATE TYPE s.p AS ({}); CREATE TABLE s.t (p s.p); "
        "CREATE VIEW s.v AS SELECT (p).{} FROM s.t; "
        "CREATE VIEW s.w AS SELECT * FROM s.v;"
    )
    run(live, script.format("x int, c text", "c"))
    run(live, "INSERT INTO s.t VALUES (ROW(1, 'one'))")
    run(target, script.format("x int", "x"))
    m = create_migration(live, target)
    statements = m.statements
    drop_attribute = statements.index('ALTER TYPE "s"."p" DROP ATTRIBUTE "c";')
    drop_view = statements.index('drop view if exists "s"."v";')
    assert drop_view < drop_attribute, statements
    m.apply(allow_hazards=unsafe_hazards(m), check_convergence=True)
    with psycopg.connect(conninfo(live)) as conn:
        assert conn.execute("SELECT x FROM s.w").fetchall() == [(1,)]


# -- typed tables -------------------------------------------------------------


def test_typed_tables_follow_their_type_with_cascade(pair) -> None:
    live, target = pair
    run(
        live,
        "CREATE SCHEMA s; CREATE TYPE s.pair AS (a int, b int); "
        "CREATE TABLE s.tt OF s.pair; INSERT INTO s.tt VALUES (1, 2);",
    )
    run(
        target,
        "CREATE SCHEMA s; CREATE TYPE s.pair AS (a bigint, c int); "
        "CREATE TABLE s.tt OF s.pair;",
    )
    m = create_migration(live, target)
    assert m.statements == [
        'ALTER TYPE "s"."pair" ALTER ATTRIBUTE "a" TYPE bigint CASCADE;',
        'ALTER TYPE "s"."pair" ADD ATTRIBUTE "c" integer CASCADE;',
        'ALTER TYPE "s"."pair" DROP ATTRIBUTE "b" CASCADE;',
    ]
    m.apply(allow_hazards=unsafe_hazards(m), check_convergence=True)
    with psycopg.connect(conninfo(live)) as conn:
        assert conn.execute("SELECT * FROM s.tt").fetchall() == [(1, None)]
    assert attributes(live, "s.tt") == [("a", "bigint"), ("c", "integer")]


def test_typed_tables_lose_only_their_column_changes(pair) -> None:
    live, target = pair
    run(
        live,
        "CREATE SCHEMA s; CREATE TYPE s.pair AS (a int); CREATE TABLE s.tt OF s.pair;",
    )
    run(target, "CREATE SCHEMA s; CREATE TYPE s.pair AS (a int, b int);")
    source, goal = read_catalog(conninfo(live)), read_catalog(conninfo(target))
    assert source.composites["type:s.pair"].typed_tables == ("s.tt",)
    plan = [
        'alter table "s"."tt" add column "b" integer;',
        'alter table "s"."tt" alter column "a" set data type bigint using "a"::bigint;',
        'alter table "s"."tt" drop column "c", add constraint "k" check (a > 0);',
        'alter table "s"."other" add column "b" integer;',
    ]
    assert without_typed_column_changes(plan, source, goal) == [
        'alter table "s"."tt" add constraint "k" check (a > 0);',
        'alter table "s"."other" add column "b" integer;',
    ]
    assert without_typed_column_changes(plan, source, goal, schema="t") == plan
