"""The hazard classifier, statement by statement (no database needed)."""

from __future__ import annotations

import pytest

from macrostrat.dinosaur import (
    UNSAFE_HAZARDS,
    Hazard,
    classify_statements,
    parse_hazards,
    refused_statements,
)
from macrostrat.dinosaur.hazards import is_transactional

H = Hazard


def hazards_of(*statements: str) -> list[set[Hazard]]:
    return [set(p.hazards) for p in classify_statements(statements)]


def one(statement: str) -> set[Hazard]:
    return hazards_of(statement)[0]


@pytest.mark.parametrize(
    ("statement", "expected"),
    [
        ('drop table "public"."sample";', {H.DELETES_DATA}),
        ("DROP TABLE IF EXISTS sample CASCADE", {H.DELETES_DATA}),
        ('alter table "public"."t" drop column "g";', {H.DELETES_DATA}),
        ("ALTER TABLE t DROP g", {H.DELETES_DATA}),
        ('drop schema if exists "s2";', {H.DELETES_DATA}),
        ('drop sequence if exists "public"."t_id_seq";', {H.DELETES_DATA}),
        ('drop extension if exists "postgis";', {H.DELETES_DATA}),
        ("drop type t_kind cascade", {H.DELETES_DATA, H.HAS_UNTRACKABLE_DEPENDENCIES}),
        ("TRUNCATE sample", {H.DELETES_DATA}),
        ("delete from sample", {H.DELETES_DATA}),
        (
            'alter table "public"."t" alter column "x" set data type bigint using "x"::bigint;',
            {H.REWRITES_DATA},
        ),
        ("ALTER TABLE t ALTER x TYPE varchar(3)", {H.REWRITES_DATA}),
        (
            'alter table "public"."t" alter column "x" set not null;',
            {H.MAY_FAIL_ON_EXISTING_DATA},
        ),
        (
            'alter table "public"."n" add constraint "n_a_check" CHECK ((a > 0)) not valid;',
            set(),
        ),
        (
            'alter table "public"."n" validate constraint "n_a_check";',
            {H.MAY_FAIL_ON_EXISTING_DATA},
        ),
        ("ALTER TABLE n ADD CONSTRAINT u UNIQUE (a)", {H.MAY_FAIL_ON_EXISTING_DATA}),
        ("ALTER TABLE n ADD CHECK (a > 0)", {H.MAY_FAIL_ON_EXISTING_DATA}),
        ("ALTER TABLE n ADD COLUMN b int NOT NULL", {H.MAY_FAIL_ON_EXISTING_DATA}),
        (
            "CREATE UNIQUE INDEX n_a ON n (a)",
            {H.MAY_FAIL_ON_EXISTING_DATA, H.IMPACTS_DATABASE_PERFORMANCE},
        ),
        (
            'alter table "public"."t" drop constraint "t_x_check";',
            {H.REMOVES_CONSTRAINT},
        ),
        ("grant select on t to reader", {H.AUTHZ_UPDATE}),
        ("REVOKE ALL ON t FROM public", {H.AUTHZ_UPDATE}),
        (
            'create policy "own" on "public"."t" as permissive for all to public using (true);',
            {H.AUTHZ_UPDATE},
        ),
        ('drop policy "own" on "public"."t";', {H.AUTHZ_UPDATE}),
        ('alter table "public"."t" enable row level security;', {H.AUTHZ_UPDATE}),
        ('drop view if exists "public"."v";', {H.HAS_UNTRACKABLE_DEPENDENCIES}),
        ('drop function if exists "public"."f"();', {H.HAS_UNTRACKABLE_DEPENDENCIES}),
        (
            'drop trigger if exists "trg" on "public"."t";',
            {H.HAS_UNTRACKABLE_DEPENDENCIES},
        ),
        ('drop index if exists "public"."t_x_idx";', {H.IMPACTS_DATABASE_PERFORMANCE}),
        (
            "CREATE INDEX t_x_idx ON public.t USING btree (x);",
            {H.IMPACTS_DATABASE_PERFORMANCE},
        ),
        ("CREATE INDEX CONCURRENTLY t_x_idx ON public.t (x)", set()),
    ],
)
def test_single_statement_hazards(statement, expected):
    assert one(statement) == expected


@pytest.mark.parametrize(
    "statement",
    [
        'create table "public"."n" ("a" integer);',
        'create schema if not exists "s2";',
        'alter table "public"."t" add column "z" integer default 3;',
        'alter table "public"."t" add column "w" character varying(10);',
        "ALTER TABLE t ADD COLUMN b int NOT NULL DEFAULT 0",
        'alter table "public"."t" alter column "y" drop default;',
        'alter table "public"."t" alter column "y" drop not null;',
        'alter table "public"."t" alter column "y" set default \'a\'::text;',
        "CREATE OR REPLACE FUNCTION public.f() RETURNS integer LANGUAGE sql AS $function$select 1$function$;",
        'create or replace view "public"."v" as SELECT 1;',
        "set check_function_bodies = off;",
        "comment on table t is 'drop table t;'",
        'create sequence "public"."s";',
        "create type \"public\".\"e\" as enum ('a', 'b');",
        'create extension if not exists "postgis" with schema "public";',
        "-- drop table t\nCREATE TABLE x (id int)",
    ],
)
def test_harmless_statements(statement):
    assert one(statement) == set()


def test_drop_and_recreate_of_views_and_functions_is_harmless():
    plan = hazards_of(
        'drop view if exists "public"."v";',
        'drop function if exists "public"."f"();',
        "CREATE OR REPLACE FUNCTION public.f() RETURNS integer LANGUAGE sql AS $$select 1$$;",
        'create or replace view "public"."v" as SELECT 1;',
    )
    assert plan == [set(), set(), set(), set()]


def test_enum_change_old_copy_is_harmless():
    plan = hazards_of(
        'alter type "public"."e" rename to "e__old_version_to_be_dropped";',
        "create type \"public\".\"e\" as enum ('a', 'b', 'c');",
        'drop type "public"."e__old_version_to_be_dropped";',
    )
    assert plan == [set(), set(), set()]


def test_constraints_and_indexes_on_new_tables_are_harmless():
    plan = hazards_of(
        'create table "public"."n" ("a" integer);',
        'alter table "public"."n" add constraint "n_a_check" CHECK ((a > 0)) not valid;',
        'alter table "public"."n" validate constraint "n_a_check";',
        'alter table "public"."n" alter column "a" set not null;',
        "CREATE UNIQUE INDEX n_a_key ON public.n USING btree (a);",
    )
    assert plan == [set()] * 5


def test_replaced_constraint_is_not_a_removal():
    plan = hazards_of(
        'alter table "public"."t" drop constraint "t_x_check";',
        'alter table "public"."t" add constraint "t_x_check" CHECK ((x > 1)) not valid;',
        'alter table "public"."t" validate constraint "t_x_check";',
    )
    assert plan == [set(), set(), {H.MAY_FAIL_ON_EXISTING_DATA}]


def test_replaced_index_only_costs_performance():
    plan = hazards_of(
        'drop index if exists "public"."t_x_idx";',
        "CREATE INDEX t_x_idx ON public.t USING btree (x, y);",
    )
    assert plan == [set(), {H.IMPACTS_DATABASE_PERFORMANCE}]


def test_several_actions_in_one_alter_table():
    assert one("ALTER TABLE t ADD COLUMN a int, DROP COLUMN b, ALTER c TYPE text") == {
        H.DELETES_DATA,
        H.REWRITES_DATA,
    }


def test_reasons_name_the_object():
    (p,) = classify_statements(['alter table "public"."t" drop column "g";'])
    assert p.reasons == ('drops column "g" of public.t',)
    assert p.unsafe
    assert p.unsafe_hazards() == (H.DELETES_DATA,)


def test_not_a_regex_on_drop():
    """Weakness 29: `drop\\s+` anywhere was unsafe, type changes were not."""
    assert one("alter table t alter column y drop not null") == set()
    assert one("alter table t alter column y drop default") == set()
    assert one("alter table t alter column y type bigint") == {H.REWRITES_DATA}


def test_unsafe_set():
    assert {
        H.DELETES_DATA,
        H.REWRITES_DATA,
        H.MAY_FAIL_ON_EXISTING_DATA,
        H.REMOVES_CONSTRAINT,
        H.AUTHZ_UPDATE,
    } == UNSAFE_HAZARDS
    assert not H.IMPACTS_DATABASE_PERFORMANCE.unsafe
    assert not H.HAS_UNTRACKABLE_DEPENDENCIES.unsafe


def test_parse_hazards():
    assert parse_hazards(["deletes_data", H.AUTHZ_UPDATE]) == {
        H.DELETES_DATA,
        H.AUTHZ_UPDATE,
    }
    with pytest.raises(ValueError, match="valid names: DELETES_DATA"):
        parse_hazards(["DROP_EVERYTHING"])


def test_refused_statements_lists_missing_allowances():
    plan = classify_statements(
        ["ALTER TABLE t DROP COLUMN a, ALTER b TYPE text", "CREATE TABLE x (id int)"]
    )
    refused = refused_statements(plan, ["DELETES_DATA"])
    assert [(p.sql, hs) for p, hs in refused] == [(plan[0].sql, (H.REWRITES_DATA,))]
    assert refused_statements(plan, ["DELETES_DATA", "REWRITES_DATA"]) == []


@pytest.mark.parametrize(
    ("statement", "transactional"),
    [
        ("CREATE INDEX CONCURRENTLY i ON t (x)", False),
        ("create unique index concurrently i on t (x)", False),
        ("DROP INDEX CONCURRENTLY i", False),
        ("VACUUM t", False),
        ("CREATE INDEX i ON t (x)", True),
        ("ALTER TABLE t ADD COLUMN x int", True),
    ],
)
def test_transactional(statement, transactional):
    assert is_transactional(statement) is transactional
    assert classify_statements([statement])[0].transactional is transactional


def test_recreated_trigger_is_harmless():
    plan = hazards_of(
        'drop trigger if exists "sample_touch" on "geo"."sample";',
        "CREATE TRIGGER sample_touch BEFORE UPDATE ON geo.sample FOR EACH ROW "
        "EXECUTE FUNCTION geo.touch();",
    )
    assert plan == [set(), set()]


def test_dropped_trigger_not_recreated_is_noted():
    plan = hazards_of(
        'drop trigger if exists "old_trigger" on "public"."sample";',
        "CREATE TRIGGER other BEFORE UPDATE ON public.sample FOR EACH ROW "
        "EXECUTE FUNCTION touch();",
    )
    assert plan == [{H.HAS_UNTRACKABLE_DEPENDENCIES}, set()]


@pytest.mark.parametrize(
    ("plan", "expected"),
    [
        (
            [
                'alter domain "s"."d" drop constraint "d_check";',
                'alter domain "s"."d" add constraint "d_check" CHECK ((VALUE > 5));',
            ],
            [[], ["MAY_FAIL_ON_EXISTING_DATA"]],
        ),
        (['alter domain "s"."d" set not null;'], [["MAY_FAIL_ON_EXISTING_DATA"]]),
        (['alter domain "s"."d" drop constraint "d_check";'], [["REMOVES_CONSTRAINT"]]),
        (
            ['alter domain "s"."d" add constraint "c" CHECK ((VALUE > 5)) NOT VALID;'],
            [[]],
        ),
        (
            [
                'create domain "s"."d" as integer;',
                'alter domain "s"."d" add constraint "c" CHECK ((VALUE > 5));',
            ],
            [[], []],
        ),
    ],
)
def test_domain_rules_on_live_values_are_hazards(
    plan: list[str], expected: list[list[str]]
) -> None:
    """A new domain rule checks every value of every column of the domain."""
    planned = classify_statements(plan)
    assert [[h.value for h in p.hazards] for p in planned] == expected
