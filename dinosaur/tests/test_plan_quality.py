"""Hazards that match what happens, safe-only plans that apply, readable plans."""

from __future__ import annotations

import re
from collections.abc import Callable

import psycopg

from macrostrat.dinosaur import Hazard, create_migration
from macrostrat.dinosaur.diff import conninfo, format_plan, hazard_summary

Runner = Callable[[str, str], None]


def run(url: str, script: str) -> None:
    with psycopg.connect(conninfo(url), autocommit=True) as conn:
        conn.execute(script)  # type: ignore[arg-type]


def scalar(url: str, query: str) -> object:
    with psycopg.connect(conninfo(url)) as conn:
        return conn.execute(query).fetchone()[0]  # type: ignore[index,arg-type]


SITE = """
CREATE TABLE site (
  id serial PRIMARY KEY,
  code text NOT NULL CONSTRAINT site_code_key UNIQUE,
  name text
);
CREATE INDEX site_name_idx ON site (name);
"""


def test_dropping_a_table_is_one_deletes_data_hazard_with_its_rows(pair) -> None:
    live, target = pair
    run(
        live,
        SITE + "INSERT INTO site (code) SELECT 'c' || i FROM generate_series(1, 50) i;",
    )
    run(live, "ANALYZE site")
    run(target, "CREATE TABLE other (id int)")
    m = create_migration(live, target)
    hazards = [
        (h, r) for p in m.plan for h, r in zip(p.hazards, p.reasons, strict=True)
    ]
    unsafe = [(h, r) for h, r in hazards if h.unsafe]
    assert [h for h, _ in unsafe] == [Hazard.DELETES_DATA], m.plan
    assert "public.site" in unsafe[0][1]
    assert "about 50 rows" in unsafe[0][1]
    # its key, unique constraint, index and serial sequence go with it quietly
    assert not any(
        h in (Hazard.REMOVES_CONSTRAINT, Hazard.IMPACTS_DATABASE_PERFORMANCE)
        for h, _ in hazards
    )
    m.apply(allow_hazards=["DELETES_DATA"], check_convergence=True)


def test_unanalysed_table_says_its_row_count_is_unknown(pair) -> None:
    live, target = pair
    run(live, "CREATE TABLE gone (id int)")
    m = create_migration(live, target)
    (p,) = m.plan
    assert p.hazards == (Hazard.DELETES_DATA,)
    assert "never analysed" in p.reasons[0]


def test_safe_only_keeps_a_constraint_and_its_index_together(pair) -> None:
    live, target = pair
    run(live, SITE + "CREATE TABLE keep (id int);")
    run(
        target,
        SITE.replace("CONSTRAINT site_code_key UNIQUE", "")
        + "CREATE TABLE extra (id int);",
    )
    m = create_migration(live, target)
    statements = "\n".join(m.statements).lower()
    assert "drop constraint" in statements
    assert "drop index" in statements  # results drops the index on its own
    safe = "\n".join(m.safe_changes()).lower()
    assert "drop constraint" not in safe
    assert "site_code_key" not in safe  # not its index either
    assert "extra" in safe
    m.apply(safe_only=True)
    assert (
        scalar(
            live, "SELECT count(*) FROM pg_constraint WHERE conname = 'site_code_key'"
        )
        == 1
    )
    assert scalar(live, "SELECT to_regclass('public.extra') IS NOT NULL") is True


def test_safe_only_adds_a_check_not_valid_and_leaves_its_validation(pair) -> None:
    live, target = pair
    run(live, "CREATE TABLE t (id int, n int); INSERT INTO t VALUES (1, -1);")
    run(target, "CREATE TABLE t (id int, n int CONSTRAINT n_positive CHECK (n > 0));")
    m = create_migration(live, target)
    validate = [p for p in m.plan if "validate constraint" in p.sql]
    assert [p.hazards for p in validate] == [(Hazard.MAY_FAIL_ON_EXISTING_DATA,)]
    safe = list(m.safe_changes())
    assert len(safe) == 1
    assert safe[0].endswith("not valid;")
    m.apply(safe_only=True)
    assert (
        scalar(
            live, "SELECT convalidated FROM pg_constraint WHERE conname = 'n_positive'"
        )
        is False
    )
    assert scalar(live, "SELECT count(*) FROM t") == 1


def test_plan_text_groups_hazards_and_has_no_double_blank_lines(pair) -> None:
    live, target = pair
    run(live, SITE + "CREATE TABLE a (id int); CREATE TABLE b (id int);")
    run(
        target,
        SITE + "CREATE FUNCTION f() RETURNS int LANGUAGE sql AS $$\n\nSELECT 1\n\n$$;",
    )
    m = create_migration(live, target)
    text = format_plan(m.plan)
    assert "\n\n\n" not in text
    assert text.startswith("-- hazards:\n")
    assert "--   UNSAFE DELETES_DATA: 2 statements\n" in text
    assert dict(hazard_summary(m.plan))[Hazard.DELETES_DATA] == 2
    # a plan without hazards has no hazards heading
    safe = [p for p in m.plan if not p.hazards]
    assert safe
    assert "hazards" not in format_plan(safe)


def test_added_columns_come_in_declared_order(pair) -> None:
    live, target = pair
    run(live, "CREATE TABLE t (id int);")
    run(target, "CREATE TABLE t (id int, zeta int, alpha text, mid date);")
    m = create_migration(live, target)
    added = [
        re.search(r'add column "(\w+)"', s).group(1)  # type: ignore[union-attr]
        for s in m.statements
        if "add column" in s
    ]
    assert added == ["zeta", "alpha", "mid"]
    m.apply(check_convergence=True)
    assert (
        scalar(
            live,
            "SELECT string_agg(attname, ',' ORDER BY attnum) FROM pg_attribute "
            "WHERE attrelid = 't'::regclass AND attnum > 0",
        )
        == "id,zeta,alpha,mid"
    )


def test_comment_on_a_materialized_view_keeps_its_rows_and_indexes(pair) -> None:
    live, target = pair
    base = (
        "CREATE TABLE t (id int); INSERT INTO t SELECT generate_series(1, 10);"
        "CREATE MATERIALIZED VIEW mv AS SELECT id FROM t;"
        "CREATE UNIQUE INDEX mv_id ON mv (id);"
    )
    run(live, base)
    run(target, base + "COMMENT ON MATERIALIZED VIEW mv IS 'refreshed nightly';")
    m = create_migration(live, target)
    assert [s.split(" IS ")[0] for s in m.statements] == [
        'COMMENT ON MATERIALIZED VIEW "public"."mv"'
    ]
    m.apply(check_convergence=True)
    assert scalar(live, "SELECT count(*) FROM mv") == 10
    assert scalar(live, "SELECT obj_description('mv'::regclass)") == "refreshed nightly"


def test_functions_come_before_the_checks_and_defaults_that_call_them(pair) -> None:
    live, target = pair
    run(
        target,
        "CREATE SCHEMA zz;"
        "CREATE FUNCTION zz.ok(v int) RETURNS boolean LANGUAGE sql IMMUTABLE AS 'SELECT v > 0';"
        "CREATE FUNCTION zz.next_code() RETURNS text LANGUAGE sql AS $$SELECT 'x'$$;"
        "CREATE TABLE aa (v int CHECK (zz.ok(v)), code text DEFAULT zz.next_code());",
    )
    m = create_migration(live, target)
    order = [s.lower() for s in m.statements]
    first_function = min(i for i, s in enumerate(order) if "function zz." in s)
    table = next(
        i for i, s in enumerate(order) if s.startswith('create table "public"."aa"')
    )
    check = next(i for i, s in enumerate(order) if "check (zz.ok" in s)
    assert first_function < table < check
    m.apply(check_convergence=True)


def test_domains_outside_the_search_path_are_planned(pair) -> None:
    live, target = pair
    run(
        target,
        "CREATE SCHEMA geo; CREATE DOMAIN geo.depth AS numeric CHECK (VALUE >= 0);"
        "CREATE TABLE geo.cores (d geo.depth);",
    )
    m = create_migration(live, target)
    assert any(s.startswith('create domain "geo"."depth"') for s in m.statements)
    m.apply(check_convergence=True)
    run(live, "ALTER DOMAIN geo.depth ADD CONSTRAINT small CHECK (VALUE < 100)")
    back = create_migration(live, target)
    assert back.statements == ['alter domain "geo"."depth" drop constraint "small";']
    # the data may rely on a constraint: dropping one is a hazard, as on tables
    assert [h.value for h in back.plan[0].hazards] == ["REMOVES_CONSTRAINT"]
    back.apply(allow_hazards=["REMOVES_CONSTRAINT"], check_convergence=True)


def test_a_recreated_view_keeps_its_comment(pair) -> None:
    """A view whose column type changes is dropped and created again."""
    live, target = pair
    view = "CREATE VIEW v AS SELECT id, {} AS code FROM site;"
    comment = "COMMENT ON VIEW v IS 'sites by code';"
    run(live, SITE + view.format("code") + comment)
    run(target, SITE + view.format("code::varchar(20)") + comment)
    m = create_migration(live, target)
    assert any(s.lower().startswith("drop view") for s in m.statements), m.statements
    m.apply(check_convergence=True)
    assert scalar(live, "SELECT obj_description('v'::regclass, 'pg_class')") == (
        "sites by code"
    )


def test_a_unique_key_is_dropped_after_the_foreign_keys_on_it(pair) -> None:
    """A foreign key references a unique constraint (through its index)."""
    live, target = pair
    run(
        live,
        "CREATE SCHEMA c; CREATE TABLE c.models (id serial PRIMARY KEY);"
        "CREATE TABLE c.plates (id serial PRIMARY KEY, model_id int REFERENCES c.models,"
        " plate_id int, UNIQUE (model_id, plate_id));"
        "CREATE TABLE c.rotations (id serial PRIMARY KEY, model_id int, plate_id int,"
        " FOREIGN KEY (model_id, plate_id) REFERENCES c.plates (model_id, plate_id));",
    )
    m = create_migration(live, target)
    m.apply(
        allow_hazards=["DELETES_DATA", "REMOVES_CONSTRAINT"], check_convergence=True
    )


def test_safe_only_leaves_out_new_views_on_what_it_leaves_out(pair) -> None:
    """A new view on a column whose type change is unsafe is left out too."""
    live, target = pair
    run(live, "CREATE TABLE m (id int, depth int);")
    run(
        target,
        "CREATE TABLE m (id int, depth bigint); CREATE TABLE other (id int);"
        "CREATE VIEW deep AS SELECT id, depth + 1 AS below FROM m;",
    )
    m = create_migration(live, target)
    safe = [p.sql for p in m.safe_plan()]
    assert any("other" in s for s in safe)
    assert not any("deep" in s for s in safe)
    m.apply(safe_only=True)  # applies on its own
    assert scalar(live, "SELECT to_regclass('other') IS NOT NULL") is True


def test_a_new_identity_on_a_filled_column_continues_after_its_values(pair) -> None:
    """PostgreSQL starts a new identity at 1; the next insert would collide."""
    live, target = pair
    run(
        live,
        "CREATE TABLE t (id int PRIMARY KEY, a int); INSERT INTO t VALUES (1, 1), (7, 2);",
    )
    run(
        target,
        "CREATE TABLE t (id int GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, a int);",
    )
    m = create_migration(live, target)
    m.apply(check_convergence=True)
    with psycopg.connect(conninfo(live), autocommit=True) as conn:
        row = conn.execute("INSERT INTO t (a) VALUES (3) RETURNING id").fetchone()
    assert row == (8,)


GENERATED = """
CREATE TABLE g (a int, twice int GENERATED ALWAYS AS (a * {}) STORED);
CREATE INDEX g_twice ON g (twice);
ALTER TABLE g ADD CONSTRAINT g_small CHECK (twice < 1000);
INSERT INTO g (a) VALUES (1), (2);
"""


def test_a_generated_column_keeps_its_indexes_and_constraints(pair) -> None:
    """A new expression drops and adds the column again: what was on it comes back."""
    live, target = pair
    run(live, GENERATED.format(2))
    run(target, GENERATED.format(3))
    m = create_migration(live, target)
    text = "\n".join(m.statements)
    assert "g_twice" in text
    assert "g_small" in text
    unsafe = sorted({h.value for p in m.plan for h in p.unsafe_hazards()})
    m.apply(allow_hazards=unsafe, check_convergence=True)
    assert scalar(live, "SELECT sum(twice) FROM g") == 9


def test_safe_only_keeps_a_generated_column_whole(pair) -> None:
    live, target = pair
    run(live, GENERATED.format(2))
    run(target, GENERATED.format(3))
    m = create_migration(live, target)
    assert not any("twice" in p.sql for p in m.safe_plan())
    m.apply(safe_only=True)
    assert scalar(live, "SELECT sum(twice) FROM g") == 6
