"""Enum values added, removed and reordered; domains moved to a new base type.

Each plan is built by diffing two real databases, applied, and checked for
convergence (a new diff is empty); the rows are read back to show they are
unchanged.
"""

from __future__ import annotations

import psycopg
import pytest

from macrostrat.dinosaur import (
    Hazard,
    MigrationError,
    MigrationStatementError,
    UnsafeMigrationError,
    apply_plan,
    classify_statements,
    create_migration,
)
from macrostrat.dinosaur.diff import conninfo, format_plan


def run(url: str, script: str) -> None:
    with psycopg.connect(conninfo(url), autocommit=True) as conn:
        conn.execute(script)  # type: ignore[arg-type]


def rows(url: str, query: str) -> list[tuple[object, ...]]:
    with psycopg.connect(conninfo(url)) as conn:
        return conn.execute(query).fetchall()  # type: ignore[arg-type]


def labels(url: str, enum: str = "mood") -> list[str]:
    """The enum's values in their sort order."""
    return [
        r[0]
        for r in rows(
            url,
            "SELECT enumlabel FROM pg_enum WHERE enumtypid = "
            f"'{enum}'::regtype ORDER BY enumsortorder",
        )
    ]


TABLE = (
    "CREATE TABLE t (id int PRIMARY KEY, m mood);"
    "INSERT INTO t VALUES (1, 'ok'), (2, 'sad');"
)


# -- adding values --------------------------------------------------------------


@pytest.mark.parametrize(
    ("before", "after"),
    [
        (["ok", "sad"], ["ok", "sad", "happy"]),  # appended
        (["ok", "sad"], ["ok", "meh", "sad"]),  # in the middle
        (["ok", "sad"], ["zero", "ok", "a", "b", "sad", "z"]),  # several, one first
    ],
    ids=["appended", "middle", "several"],
)
def test_added_values_are_add_value_in_the_target_order(pair, before, after):
    live, target = pair
    quoted = ", ".join(f"'{v}'" for v in before)
    run(live, f"CREATE TYPE mood AS ENUM ({quoted});" + TABLE)
    quoted = ", ".join(f"'{v}'" for v in after)
    run(target, f"CREATE TYPE mood AS ENUM ({quoted});" + TABLE)
    m = create_migration(live, target)
    added = [v for v in after if v not in before]
    assert len(m.plan) == len(added), format_plan(m.plan)
    for p in m.plan:
        assert p.sql.startswith('alter type "public"."mood" add value if not exists')
        assert p.before_transaction
        assert not p.transactional
        assert p.hazards == ()
    assert m.is_safe
    m.apply(check_convergence=True)
    assert labels(live) == after
    assert rows(live, "SELECT id, m::text FROM t ORDER BY id") == [
        (1, "ok"),
        (2, "sad"),
    ]


def test_a_value_added_and_used_in_the_same_plan(pair):
    """A default, a check, a view, a function body and a partition bound use it."""
    live, target = pair
    run(
        live,
        "CREATE TYPE mood AS ENUM ('ok', 'sad');"
        + TABLE
        + "CREATE VIEW v AS SELECT id FROM t;"
        "CREATE TABLE p (m mood, n int) PARTITION BY LIST (m);"
        "CREATE TABLE p_ok PARTITION OF p FOR VALUES IN ('ok');",
    )
    run(
        target,
        "CREATE TYPE mood AS ENUM ('ok', 'new', 'sad');"
        "CREATE TABLE t (id int PRIMARY KEY, m mood DEFAULT 'new'"
        "  CONSTRAINT t_m_check CHECK (m IN ('ok', 'new', 'sad')));"
        "INSERT INTO t VALUES (1, 'ok'), (2, 'sad');"
        "CREATE VIEW v AS SELECT id FROM t WHERE m <> 'new'::mood;"
        "CREATE FUNCTION newest() RETURNS mood LANGUAGE sql AS $$ SELECT 'new'::mood $$;"
        "CREATE TABLE p (m mood, n int) PARTITION BY LIST (m);"
        "CREATE TABLE p_ok PARTITION OF p FOR VALUES IN ('ok');"
        "CREATE TABLE p_new PARTITION OF p FOR VALUES IN ('new');",
    )
    m = create_migration(live, target)
    first = [p for p in m.plan if p.before_transaction]
    assert [p.sql for p in first] == [
        "alter type \"public\".\"mood\" add value if not exists 'new' after 'ok';"
    ]
    # no recreation of the enum (nor conversion of its columns)
    assert not any("__old_version_to_be_dropped" in p.sql for p in m.plan)
    assert not any(Hazard.REWRITES_DATA in p.hazards for p in m.plan)
    m.apply(allow_hazards=["MAY_FAIL_ON_EXISTING_DATA"], check_convergence=True)
    run(live, "INSERT INTO t (id) VALUES (3); INSERT INTO p VALUES ('new', 1);")
    assert rows(live, "SELECT id, m::text FROM t ORDER BY id") == [
        (1, "ok"),
        (2, "sad"),
        (3, "new"),
    ]
    assert rows(live, "SELECT newest()::text, count(*) FROM p_new") == [("new", 1)]
    assert rows(live, "SELECT id FROM v ORDER BY id") == [(1,), (2,)]


def test_added_values_stay_when_the_transaction_fails_and_a_rerun_is_harmless(pair):
    live, target = pair
    run(live, "CREATE TYPE mood AS ENUM ('ok');" + "CREATE TABLE t (id int);")
    run(live, "INSERT INTO t VALUES (1)")
    run(
        target,
        "CREATE TYPE mood AS ENUM ('ok', 'new');"
        "CREATE TABLE t (id int, m mood NOT NULL);",
    )
    m = create_migration(live, target)
    with pytest.raises(MigrationStatementError, match="contains null values"):
        m.apply(allow_hazards=["MAY_FAIL_ON_EXISTING_DATA"])
    # the value was committed before the transaction; the column was not added
    assert labels(live) == ["ok", "new"]
    assert rows(
        live,
        "SELECT count(*) FROM information_schema.columns "
        "WHERE table_name = 't' AND column_name = 'm'",
    ) == [(0,)]
    # the same plan again: ADD VALUE IF NOT EXISTS does nothing
    run(live, "DELETE FROM t")
    m.apply(allow_hazards=["MAY_FAIL_ON_EXISTING_DATA"], check_convergence=True)
    assert labels(live) == ["ok", "new"]


def test_apply_plan_commits_add_value_before_the_statements_using_it(pair):
    live, _ = pair
    run(live, "CREATE TYPE mood AS ENUM ('ok');")
    ran = apply_plan(
        live,
        [
            "CREATE TABLE t (m mood DEFAULT 'new')",
            "ALTER TYPE mood ADD VALUE 'new'",
        ],
    )
    assert [p.before_transaction for p in ran] == [True, False]
    run(live, "INSERT INTO t DEFAULT VALUES")
    assert rows(live, "SELECT m::text FROM t") == [("new",)]


# -- removing, renaming, reordering values --------------------------------------


def test_removed_value_recreates_the_enum_with_its_default_check_and_view(pair):
    live, target = pair
    schema = (
        "CREATE TABLE t (id int PRIMARY KEY, m mood DEFAULT 'ok'"
        "  CONSTRAINT t_m_check CHECK (m <> 'sad'));"
        "INSERT INTO t VALUES (1, 'ok'), (2, 'meh');"
        "CREATE VIEW v AS SELECT id, m FROM t WHERE m <> 'meh';"
        "CREATE VIEW vv AS SELECT id FROM v;"
    )
    run(live, "CREATE TYPE mood AS ENUM ('ok', 'sad', 'meh', 'gone');" + schema)
    run(target, "CREATE TYPE mood AS ENUM ('ok', 'sad', 'meh');" + schema)
    m = create_migration(live, target)
    with pytest.raises(UnsafeMigrationError, match="REWRITES_DATA"):
        m.apply()
    converts = [p for p in m.plan if Hazard.REWRITES_DATA in p.hazards]
    assert len(converts) == 1
    assert "recreated enum public.mood" in converts[0].reasons[0]
    assert "no longer has" in converts[0].reasons[0]
    m.apply(
        allow_hazards=["REWRITES_DATA", "MAY_FAIL_ON_EXISTING_DATA"],
        check_convergence=True,
    )
    assert labels(live) == ["ok", "sad", "meh"]
    assert rows(live, "SELECT id, m::text FROM t ORDER BY id") == [
        (1, "ok"),
        (2, "meh"),
    ]
    assert rows(live, "SELECT id FROM vv") == [(1,)]
    run(live, "INSERT INTO t (id) VALUES (3)")  # the default came back
    assert rows(live, "SELECT m::text FROM t WHERE id = 3") == [("ok",)]
    with pytest.raises(psycopg.errors.CheckViolation):
        run(live, "INSERT INTO t VALUES (4, 'sad')")  # so did the check


def test_a_default_on_a_removed_value_is_replaced_by_the_targets(pair):
    live, target = pair
    run(
        live,
        "CREATE TYPE mood AS ENUM ('ok', 'gone');"
        "CREATE TABLE t (id int, m mood DEFAULT 'gone', n mood);",
    )
    run(
        target,
        "CREATE TYPE mood AS ENUM ('ok');"
        "CREATE TABLE t (id int, m mood DEFAULT 'ok', n mood DEFAULT 'ok');",
    )
    m = create_migration(live, target)
    assert not any("default None" in p.sql for p in m.plan)
    m.apply(allow_hazards=["REWRITES_DATA"], check_convergence=True)
    run(live, "INSERT INTO t (id) VALUES (1)")
    assert rows(live, "SELECT m::text, n::text FROM t") == [("ok", "ok")]


def test_reordered_and_renamed_values_converge(pair):
    live, target = pair
    run(live, "CREATE TYPE mood AS ENUM ('ok', 'sad', 'meh');" + TABLE)
    run(target, "CREATE TYPE mood AS ENUM ('sad', 'ok', 'blue');" + TABLE)
    m = create_migration(live, target)
    m.apply(allow_hazards=["REWRITES_DATA"], check_convergence=True)
    assert labels(live) == ["sad", "ok", "blue"]
    assert rows(live, "SELECT id, m::text FROM t ORDER BY id") == [
        (1, "ok"),
        (2, "sad"),
    ]


def test_a_partitioned_tables_enum_columns_and_check_are_converted_once(pair):
    live, target = pair
    schema = (
        "CREATE TABLE p (id int, m mood, n mood,"
        "  CONSTRAINT p_m CHECK (m <> 'sad' AND n <> 'sad')) PARTITION BY LIST (id);"
        "CREATE TABLE p1 PARTITION OF p FOR VALUES IN (1);"
        "INSERT INTO p VALUES (1, 'ok', 'ok');"
    )
    run(live, "CREATE TYPE mood AS ENUM ('ok', 'sad', 'gone');" + schema)
    run(target, "CREATE TYPE mood AS ENUM ('ok', 'sad');" + schema)
    m = create_migration(live, target)
    statements = [p.sql for p in m.plan]
    converts = [p.sql for p in m.plan if Hazard.REWRITES_DATA in p.hazards]
    assert converts == [
        f'alter table "public"."p" alter column "{c}" type "public"."mood" '
        f'using "{c}"::text::"public"."mood";'
        for c in ("m", "n")
    ]
    # the check goes before the first conversion and comes back after the last
    drop = statements.index('alter table "public"."p" drop constraint "p_m";')
    add = next(i for i, s in enumerate(statements) if 'add constraint "p_m"' in s)
    assert drop < statements.index(converts[0])
    assert add > statements.index(converts[1])
    m.apply(
        allow_hazards=["REWRITES_DATA", "MAY_FAIL_ON_EXISTING_DATA"],
        check_convergence=True,
    )
    assert rows(live, "SELECT id, m::text, n::text FROM p1") == [(1, "ok", "ok")]
    with pytest.raises(psycopg.errors.CheckViolation):
        run(live, "INSERT INTO p VALUES (1, 'sad', 'ok')")


def test_a_row_holding_a_removed_value_fails_and_nothing_is_kept(pair):
    live, target = pair
    run(live, "CREATE TYPE mood AS ENUM ('ok', 'gone');" + TABLE.replace("sad", "gone"))
    run(target, "CREATE TYPE mood AS ENUM ('ok');" + TABLE.replace(", (2, 'sad')", ""))
    m = create_migration(live, target)
    with pytest.raises(MigrationStatementError, match="gone"):
        m.apply(allow_hazards=["REWRITES_DATA"])
    assert labels(live) == ["ok", "gone"]
    assert rows(live, "SELECT count(*) FROM t") == [(2,)]


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        (
            "CREATE FUNCTION f(x mood) RETURNS int LANGUAGE sql AS $$ SELECT 1 $$;",
            "function f(mood)",
        ),
        ("CREATE TABLE a (ms mood[]);", "column ms of table a (an array of it)"),
        ("CREATE DOMAIN dm AS mood;", "type dm"),
        (
            "CREATE TABLE p (m mood) PARTITION BY LIST (m);"
            "CREATE TABLE p_ok PARTITION OF p FOR VALUES IN ('ok');",
            "column m of table p (in the partition key)",
        ),
    ],
    ids=["function", "array", "domain", "partition-key"],
)
def test_a_recreation_the_plan_cannot_carry_is_refused_naming_the_enum(
    pair, extra, named
):
    live, target = pair
    run(live, "CREATE TYPE mood AS ENUM ('ok', 'gone');" + extra)
    run(target, "CREATE TYPE mood AS ENUM ('ok');" + extra)
    with pytest.raises(MigrationError) as err:
        create_migration(live, target)
    assert "enum public.mood" in str(err.value)
    assert named in str(err.value)


def test_the_command_line_reports_the_refusal(pair):
    from typer.testing import CliRunner

    from macrostrat.dinosaur.cli import create_cli

    live, target = pair
    extra = "CREATE TABLE u (id int CHECK ('ok'::mood <> 'sad'));"
    run(live, "CREATE TYPE mood AS ENUM ('ok', 'sad', 'gone');" + extra)
    run(target, "CREATE TYPE mood AS ENUM ('ok', 'sad');" + extra)
    result = CliRunner().invoke(
        create_cli(), ["plan", "--database", live, "--target", target]
    )
    assert result.exit_code == 1, result.output
    assert "Error: cannot plan the change of enum public.mood" in result.stderr
    assert "constraint u_check on table u" in result.stderr
    assert "Traceback" not in result.output


def test_a_dependent_the_target_drops_is_no_obstacle(pair):
    live, target = pair
    run(
        live,
        "CREATE TYPE mood AS ENUM ('ok', 'gone');"
        + TABLE.replace("sad", "ok")
        + "CREATE FUNCTION f(x mood) RETURNS int LANGUAGE sql AS $$ SELECT 1 $$;",
    )
    run(target, "CREATE TYPE mood AS ENUM ('ok');" + TABLE.replace("sad", "ok"))
    m = create_migration(live, target)
    m.apply(allow_hazards=["REWRITES_DATA"], check_convergence=True)
    assert labels(live) == ["ok"]


# -- a domain's base type -------------------------------------------------------


def test_domain_base_type_change_converts_its_columns_and_keeps_the_rows(pair):
    live, target = pair
    table = (
        "CREATE TABLE t (id int PRIMARY KEY, c code DEFAULT 'x', k n, c2 code);"
        "INSERT INTO t VALUES (1, 'abc', 5, 'q'), (2, 'defghij', 2147483647, NULL);"
    )
    run(
        live,
        "CREATE DOMAIN code AS varchar(20) CHECK (VALUE <> '');"
        "CREATE DOMAIN n AS int DEFAULT 7;" + table,
    )
    run(
        target,
        "CREATE DOMAIN code AS text CHECK (VALUE <> '');"
        "CREATE DOMAIN n AS bigint DEFAULT 7;" + table,
    )
    before = rows(live, "SELECT * FROM t ORDER BY id")
    m = create_migration(live, target)
    assert not any(p.sql.startswith('drop domain "public"."code";') for p in m.plan)
    converts = [p for p in m.plan if Hazard.REWRITES_DATA in p.hazards]
    assert len(converts) == 3  # c, c2 and k
    for p in converts:
        assert "the table is rewritten" in p.reasons[0]
        assert "domain public." in p.reasons[0]
    with pytest.raises(UnsafeMigrationError):
        m.apply()
    m.apply(allow_hazards=["REWRITES_DATA"], check_convergence=True)
    assert rows(live, "SELECT * FROM t ORDER BY id") == before
    assert rows(
        live,
        "SELECT typname, format_type(typbasetype, typtypmod) FROM pg_type "
        "WHERE typtype = 'd' AND typnamespace = 'public'::regnamespace ORDER BY 1",
    ) == [("code", "text"), ("n", "bigint")]
    run(live, "INSERT INTO t (id, k) VALUES (3, 9223372036854775807)")
    assert rows(live, "SELECT c FROM t WHERE id = 3") == [("x",)]


def test_domain_base_type_change_recreates_the_views_on_its_columns(pair):
    live, target = pair
    views = (
        "CREATE TABLE t (id int, c code); INSERT INTO t VALUES (1, 'abc');"
        "CREATE VIEW v1 AS SELECT id, c FROM t;"
        "CREATE VIEW v2 AS SELECT c::text AS s FROM v1;"
        "CREATE MATERIALIZED VIEW mv AS SELECT c FROM t;"
        "CREATE INDEX mv_c ON mv (c);"
        "COMMENT ON VIEW v1 IS 'first';"
    )
    run(live, "CREATE DOMAIN code AS varchar(20);" + views)
    run(target, "CREATE DOMAIN code AS text;" + views)
    m = create_migration(live, target)
    text = [p.sql for p in m.plan]
    convert = next(i for i, s in enumerate(text) if "alter column" in s)
    for view in ('view if exists "public"."v1"', 'view if exists "public"."v2"'):
        assert text.index(f"drop {view};") < convert
    assert any(s.startswith('create or replace view "public"."v2"') for s in text)
    m.apply(allow_hazards=["REWRITES_DATA"], check_convergence=True)
    assert rows(live, "SELECT s FROM v2") == [("abc",)]
    assert rows(live, "SELECT c FROM mv") == [("abc",)]
    assert rows(live, "SELECT to_regclass('public.mv_c') IS NOT NULL") == [(True,)]
    assert rows(live, "SELECT obj_description('v1'::regclass)") == [("first",)]


def test_domain_base_type_change_is_refused_naming_a_function_using_it(pair):
    live, target = pair
    extra = (
        "CREATE TABLE t (c code);"
        "CREATE FUNCTION f(x code) RETURNS int LANGUAGE sql AS $$ SELECT 1 $$;"
    )
    run(live, "CREATE DOMAIN code AS varchar(20);" + extra)
    run(target, "CREATE DOMAIN code AS text;" + extra)
    with pytest.raises(MigrationError) as err:
        create_migration(live, target)
    message = str(err.value)
    assert "domain public.code" in message
    assert "character varying(20) to text" in message
    assert "function f(code)" in message


# -- the classifier, without a database -----------------------------------------


def test_add_value_runs_before_the_transaction_without_hazard():
    (add, create) = classify_statements(
        [
            "alter type \"public\".\"mood\" add value if not exists 'x' after 'y';",
            'create table "public"."t" ("m" mood);',
        ]
    )
    assert (add.before_transaction, add.transactional, add.hazards) == (
        True,
        False,
        (),
    )
    assert (create.before_transaction, create.transactional) == (False, True)


def test_old_copy_of_a_recreated_domain_is_harmless():
    plan = classify_statements(
        [
            'alter domain "public"."d" rename to "d__old_version_to_be_dropped";',
            'create domain "public"."d" as text;',
            'alter table "public"."t" alter column "c" type "public"."d" '
            'using "c"::text::"public"."d";',
            'drop domain "public"."d__old_version_to_be_dropped";',
        ]
    )
    assert [p.hazards for p in plan] == [(), (), (Hazard.REWRITES_DATA,), ()]
    assert plan[2].reasons == (
        "changes the type of public.t.c: converts it to domain public.d on its "
        "new base type (the table is rewritten)",
    )


def test_composite_attribute_changes_name_what_they_do_to_the_values():
    (drop, alter, add) = classify_statements(
        [
            'ALTER TYPE "geo"."span" DROP ATTRIBUTE "top";',
            'ALTER TYPE "geo"."span" ALTER ATTRIBUTE "x" TYPE bigint;',
            'ALTER TYPE "geo"."span" ADD ATTRIBUTE "method" text;',
        ]
    )
    assert drop.hazards == (Hazard.DELETES_DATA,)
    assert "attribute top of type geo.span" in drop.reasons[0]
    assert alter.hazards == (Hazard.REWRITES_DATA,)
    assert add.hazards == ()


# -- an empty enum, the plan's schemas, safe plans ------------------------------


def test_an_empty_enum_gains_its_first_values(pair):
    live, target = pair
    run(live, "CREATE SCHEMA s; CREATE TYPE s.e AS ENUM ();")
    run(target, "CREATE SCHEMA s; CREATE TYPE s.e AS ENUM ('a', 'b');")
    m = create_migration(live, target)
    assert [p.sql for p in m.plan] == [
        'alter type "s"."e" add value if not exists \'a\';',
        "alter type \"s\".\"e\" add value if not exists 'b' after 'a';",
    ]
    assert all(p.before_transaction for p in m.plan)
    m.apply(check_convergence=True)
    assert labels(live, "s.e") == ["a", "b"]


SCOPED = "CREATE SCHEMA s; CREATE SCHEMA r;"


@pytest.mark.parametrize(
    "scope", [{"schema": "s"}, {"exclude_schema": "r"}], ids=["schema", "exclude"]
)
def test_a_domain_swap_is_refused_for_a_view_outside_the_plans_schemas(pair, scope):
    """The view could not be created again: the target is read in s only."""
    live, target = pair
    rest = "CREATE TABLE s.t (c s.d); CREATE VIEW r.v AS SELECT c FROM s.t;"
    run(live, SCOPED + "CREATE DOMAIN s.d AS varchar(10);" + rest)
    run(target, SCOPED + "CREATE DOMAIN s.d AS text;" + rest)
    with pytest.raises(MigrationError) as err:
        create_migration(live, target, **scope)
    message = str(err.value)
    assert "domain s.d" in message
    assert "outside the schemas the plan covers use it: view r.v" in message
    # nothing was dropped
    assert rows(live, "SELECT to_regclass('r.v') IS NOT NULL") == [(True,)]
    # planned over every schema, the view is carried over the swap
    m = create_migration(live, target)
    m.apply(allow_hazards=["REWRITES_DATA"], check_convergence=True)
    assert rows(live, "SELECT to_regclass('r.v') IS NOT NULL") == [(True,)]


@pytest.mark.parametrize(
    ("kind", "rest", "named"),
    [
        ("domain", "CREATE TABLE r.t (c s.x);", "column c of table r.t"),
        ("enum", "CREATE TABLE r.t (c s.x);", "column c of table r.t"),
        (
            "enum",
            "CREATE TABLE s.t (c s.x); CREATE VIEW r.v AS SELECT c FROM s.t;",
            "view r.v",
        ),
    ],
    ids=["domain-column", "enum-column", "enum-view"],
)
def test_a_type_recreation_is_refused_for_users_outside_the_plans_schemas(
    pair, kind, rest, named
):
    live, target = pair
    if kind == "domain":
        before, after = "CREATE DOMAIN s.x AS int;", "CREATE DOMAIN s.x AS bigint;"
    else:
        before = "CREATE TYPE s.x AS ENUM ('a', 'b', 'gone');"
        after = "CREATE TYPE s.x AS ENUM ('a', 'b');"
    run(live, SCOPED + before + rest)
    run(target, SCOPED + after + rest)
    with pytest.raises(MigrationError) as err:
        create_migration(live, target, schema="s")
    assert f"{kind} s.x" in str(err.value)
    assert "outside the schemas the plan covers" in str(err.value)
    assert named in str(err.value)


def domain_base(url: str, name: str = "code") -> str:
    (base,) = rows(
        url,
        "SELECT format_type(typbasetype, typtypmod) FROM pg_type "
        f"WHERE typname = '{name}' AND typtype = 'd'",
    )
    return str(base[0])


def test_safe_only_leaves_a_domain_swap_out_as_a_whole(pair):
    live, target = pair
    schema = (
        "CREATE TABLE t (id int, c code DEFAULT 'x');"
        "INSERT INTO t VALUES (1, 'abc');"
        "CREATE VIEW v1 AS SELECT id, c FROM t;"
        "CREATE VIEW v2 AS SELECT c::text AS s FROM v1;"
    )
    run(
        live, "CREATE DOMAIN code AS varchar(10);" + schema + "CREATE TABLE u (id int);"
    )
    run(
        target,
        "CREATE DOMAIN code AS text;" + schema + "CREATE TABLE u (id int, z int);",
    )
    m = create_migration(live, target)
    assert any(Hazard.REWRITES_DATA in p.hazards for p in m.plan)
    safe = [p.sql for p in m.safe_plan()]
    assert safe == ['alter table "public"."u" add column "z" integer;']
    m.apply(safe_only=True, check_convergence=False)
    assert domain_base(live) == "character varying(10)"
    assert rows(live, "SELECT s FROM v2") == [("abc",)]
    assert rows(
        live, "SELECT count(*) FROM pg_type WHERE typname LIKE '%old_version%'"
    ) == [(0,)]
    run(live, "INSERT INTO u (z) VALUES (1); INSERT INTO t (id) VALUES (2)")
    assert rows(live, "SELECT c FROM t WHERE id = 2") == [("x",)]


def test_safe_only_keeps_a_swap_with_nothing_unsafe(pair):
    live, target = pair
    run(live, "CREATE DOMAIN code AS varchar(10);")
    run(target, "CREATE DOMAIN code AS text;")
    m = create_migration(live, target)
    assert m.is_safe
    assert [p.sql for p in m.safe_plan()] == [p.sql for p in m.plan]
    m.apply(safe_only=True, check_convergence=True)
    assert domain_base(live) == "text"


def test_safe_only_leaves_an_enum_recreation_out_as_a_whole(pair):
    live, target = pair
    schema = (
        "CREATE TABLE t (id int, m mood DEFAULT 'ok' CONSTRAINT t_m CHECK (m <> 'sad'));"
        "INSERT INTO t VALUES (1, 'ok');"
        "CREATE VIEW v1 AS SELECT id, m FROM t;"
        "CREATE VIEW v2 AS SELECT id FROM v1;"
    )
    run(live, "CREATE TYPE mood AS ENUM ('ok', 'sad', 'gone');" + schema)
    run(
        target,
        "CREATE TYPE mood AS ENUM ('ok', 'sad');" + schema + "CREATE TABLE u (id int);",
    )
    m = create_migration(live, target)
    assert any("__old_version_to_be_dropped" in p.sql for p in m.plan)
    safe = [p.sql for p in m.safe_plan()]
    assert safe == ['create table "public"."u" (\n    "id" integer\n);\n']
    m.apply(safe_only=True, check_convergence=False)
    assert labels(live) == ["ok", "sad", "gone"]
    assert rows(live, "SELECT id FROM v2") == [(1,)]
    run(live, "INSERT INTO t (id) VALUES (2)")  # the default is still there
    assert rows(live, "SELECT m::text FROM t WHERE id = 2") == [("ok",)]
    with pytest.raises(psycopg.errors.CheckViolation):  # and the check
        run(live, "INSERT INTO t VALUES (3, 'sad')")
