"""``{name}`` Composables inside literals, and binds stranded in dollar-quoted bodies.

Upstream formatted whole statements with ``psycopg.sql.SQL(text).format(...)``,
so a ``{schema}`` inside a function body was substituted; with psycopg2's
client-side binding, so was a ``:name`` there.  Here Composables are spliced
wherever they stand (escaped for strings and quoted identifiers), and a plain
bind placeholder that stands only inside a body is an error rather than being
dropped silently.  See the docstring of ``macrostrat.database._sql.params``.
"""

from __future__ import annotations

import pytest
from psycopg.sql import SQL, Identifier, Literal

from macrostrat.database import Database
from macrostrat.database._sql.params_scan import (
    Region,
    body_placeholders,
    find_regions,
)
from macrostrat.database.errors import BindParameterError
from macrostrat.database.query import run_query, run_sql

FUNCTION = (
    "CREATE FUNCTION {schema}.f() RETURNS int LANGUAGE sql "
    "AS $$ SELECT count(*)::int FROM {schema}.t $$;"
)


def make_schema(db: Database, name: str, rows: int) -> None:
    """A schema ``name`` holding a table ``t`` of ``rows`` rows."""
    run_sql(
        db.engine,
        "CREATE SCHEMA {s}; CREATE TABLE {s}.t (id int);"
        "INSERT INTO {s}.t SELECT generate_series(1, :n)",
        [
            {"s": Identifier(name)},
            {"s": Identifier(name)},
            {"s": Identifier(name), "n": rows},
        ],
        raise_errors=True,
    )


def scalar(db: Database, sql: str, params: object = None) -> object:
    return run_query(db.engine, sql, params).scalar()


def functiondef(db: Database, signature: str) -> str:
    return str(
        scalar(db, "SELECT pg_get_functiondef(:f::regprocedure)", {"f": signature})
    )


@pytest.fixture(scope="module")
def geo(db: Database) -> Database:
    """The module database with ``geo.t`` (3 rows) and ``"my schema".t`` (2 rows)."""
    make_schema(db, "geo", 3)
    make_schema(db, "my schema", 2)
    return db


# -- the scanner ---------------------------------------------------------------------


def test_find_regions_follows_the_lexer() -> None:
    sql = "SELECT 'a', E'\\'', \"id\", $f$ x $f$, foo$bar$, $1 -- c\n/* b /* n */ */"
    got = [
        (r.kind, sql[r.start : r.end], sql[r.inner_start : r.inner_end], r.tag)
        for r in find_regions(sql)
    ]
    assert got == [
        ("string", "'a'", "a", ""),
        ("estring", "'\\''", "\\'", ""),
        ("identifier", '"id"', "id", ""),
        ("dollar", "$f$ x $f$", " x ", "$f$"),
        ("line_comment", "-- c", " c", ""),
        ("block_comment", "/* b /* n */ */", " b /* n */ ", ""),
    ]
    assert isinstance(find_regions("SELECT $$x$$")[0], Region)


def test_body_placeholders_read_the_body_as_sql() -> None:
    sql = (
        "DO $o$ BEGIN x := :a::int; RAISE ':b'; -- :c\n EXECUTE $i$ %(d)s $i$; END $o$"
    )
    (outer,) = find_regions(sql)
    got = [
        (p.kind, p.name, sql[p.start : p.end])
        for p in body_placeholders(sql, outer.inner_start, outer.inner_end)
    ]
    assert got == [("colon", "a", ":a"), ("pyformat", "d", "%(d)s")]


# -- Composables inside bodies, strings, comments ---------------------------------------


def test_identifier_inside_a_function_body(geo: Database) -> None:
    run_sql(geo.engine, FUNCTION, {"schema": Identifier("geo")}, raise_errors=True)
    definition = functiondef(geo, "geo.f()")
    assert 'FROM "geo".t' in definition
    assert "{schema}" not in definition
    assert scalar(geo, "SELECT geo.f()") == 3


def test_identifier_that_needs_quoting_inside_a_body(geo: Database) -> None:
    run_sql(
        geo.engine, FUNCTION, {"schema": Identifier("my schema")}, raise_errors=True
    )
    assert 'FROM "my schema".t' in functiondef(geo, '"my schema".f()')
    assert scalar(geo, 'SELECT "my schema".f()') == 2


def test_literal_and_sql_inside_bodies(geo: Database) -> None:
    run_sql(
        geo.engine,
        """
        CREATE FUNCTION geo.lit() RETURNS text LANGUAGE sql AS $$ SELECT {v} $$;
        CREATE FUNCTION geo.frag() RETURNS int LANGUAGE plpgsql AS $body$
        BEGIN
          RETURN (SELECT {agg} FROM {schema}.t);  -- {schema} in a comment too
        END
        $body$;
        DO $do$ BEGIN EXECUTE $q$ CREATE TABLE {schema}.nested (v text) $q$; END $do$;
        """,
        {
            "v": Literal("x'y"),
            "agg": SQL("max(id)"),
            "schema": Identifier("geo"),
        },
        raise_errors=True,
    )
    assert scalar(geo, "SELECT geo.lit()") == "x'y"
    assert scalar(geo, "SELECT geo.frag()") == 3
    assert '-- "geo" in a comment too' in functiondef(geo, "geo.frag()")
    assert scalar(geo, "SELECT to_regclass('geo.nested')::text") == "geo.nested"


def test_composables_inside_strings_and_quoted_identifiers(geo: Database) -> None:
    params = {
        "frag": SQL("geo"),
        "schema": Identifier("geo"),
        "lit": Literal("x'y"),
        "odd": Identifier("it's"),
    }
    got = run_query(
        geo.engine,
        "SELECT 'table {frag}_t', 'in {schema}', 'v={lit}', 'i={odd}', E'\\\\{lit}'",
        params,
    ).one()
    # the literal's value is the rendered SQL: quotes inside it are escaped
    assert tuple(got) == (
        "table geo_t",
        'in "geo"',
        "v='x''y'",
        'i="it\'s"',
        "\\'x''y'",
    )
    run_sql(
        geo.engine,
        'CREATE TABLE geo."{frag}_x" (id int); COMMENT ON TABLE geo."{frag}_x" IS \'in {schema}\'',
        params,
        raise_errors=True,
    )
    assert scalar(geo, "SELECT obj_description('geo.geo_x'::regclass)") == 'in "geo"'
    # an Identifier inside a quoted identifier keeps its quotes, doubled
    assert run_query(geo.engine, 'SELECT 1 AS "{schema}_c"', params).keys() == [
        '"geo"_c'
    ]


def test_percent_in_a_spliced_string(geo: Database) -> None:
    pct = {"p": SQL("50%"), "v": 1}
    assert tuple(run_query(geo.engine, "SELECT '{p}', :v", pct).one()) == ("50%", 1)
    assert scalar(geo, "SELECT '{p} %'", {"p": SQL("50%")}) == "50% %"
    assert tuple(run_query(geo.engine, "SELECT '{p}%%', %(v)s", pct).one()) == (
        "50%%",
        1,
    )


def test_braces_without_a_composable_are_untouched(geo: Database) -> None:
    sql = (
        "SELECT '{\"a\": 1}'::jsonb ->> 'a', '{1,2}'::int[], '{a}'::text[], "
        "'{b}', $$ {b} {c} $$, '{{schema}}' -- {b}\n AS z"
    )
    params = {"schema": Identifier("geo"), "b": 5}
    got = run_query(geo.engine, sql, params).one()
    assert tuple(got) == ("1", [1, 2], ["a"], "{b}", " {b} {c} ", "{{schema}}")


def test_plain_values_never_bind_inside_literals(geo: Database) -> None:
    sql = "SELECT :a, ':a', $$ :a $$, '%(a)s' /* :a */ -- :a\n AS z"
    assert tuple(run_query(geo.engine, sql, {"a": 1}).one()) == (
        1,
        ":a",
        " :a ",
        "%(a)s",
    )
    body = "DO $$ BEGIN RAISE NOTICE ':a {a}'; END $$"
    run_sql(geo.engine, body, {"a": 1}, raise_errors=True)


def test_a_rendering_may_not_end_its_literal(geo: Database) -> None:
    body = "CREATE FUNCTION geo.bad() RETURNS text LANGUAGE sql AS $$ SELECT {v} $$"
    with pytest.raises(
        BindParameterError, match=r"\{v\} inside a dollar-quoted body.*\$body\$"
    ) as info:
        run_sql(geo.engine, body, {"v": Literal("$$; DROP TABLE geo.t; --")})
    assert info.value.parameter == "v"
    with pytest.raises(BindParameterError, match="inside a comment"):
        run_sql(
            geo.engine, "SELECT 1 -- {v}\n, 2", {"v": Literal("x\nDROP TABLE geo.t")}
        )
    with pytest.raises(BindParameterError, match="inside a comment"):
        run_sql(
            geo.engine, "SELECT 1 /* {v} */, 2", {"v": SQL("*/ DROP TABLE geo.t /*")}
        )
    assert scalar(geo, "SELECT to_regprocedure('geo.bad()')") is None
    assert scalar(geo, "SELECT count(*) FROM geo.t") == 3
    # with another tag the same value is fine
    ok = body.replace("$$", "$body$")
    run_sql(geo.engine, ok, {"v": Literal("$$")}, raise_errors=True)
    assert scalar(geo, "SELECT geo.bad()") == "$$"


# -- binds stranded inside bodies ---------------------------------------------------


def test_a_bind_only_inside_a_body_raises(geo: Database) -> None:
    sql = "SELECT 1;\nCREATE FUNCTION geo.g() RETURNS int LANGUAGE sql AS $$\n  SELECT :v\n$$"
    with pytest.raises(BindParameterError) as info:
        run_sql(geo.engine, sql, {"v": 1})
    err = info.value
    assert err.parameter == "v"
    assert (err.index, err.line) == (1, 2)
    message = str(err)
    assert "statement 2 (line 2)" in message
    assert "'v'" in message
    assert "dollar-quoted body" in message
    assert "line 3" in message
    assert "Literal" in message
    assert scalar(geo, "SELECT to_regprocedure('geo.g()')") is None
    with pytest.raises(BindParameterError, match=r"%\(v\)s .*dollar-quoted body"):
        run_sql(geo.engine, sql.replace(":v", "%(v)s"), {"v": 1})
    with pytest.raises(BindParameterError, match="dollar-quoted body"):
        run_sql(geo.engine, "DO $$ BEGIN PERFORM :v; END $$", [{"v": 1}, {"v": 2}])
    nested = "DO $o$ BEGIN EXECUTE $i$ SELECT :v $i$; END $o$"
    with pytest.raises(BindParameterError, match="dollar-quoted body"):
        run_query(geo.engine, nested, {"v": 1})
    # what the message suggests works
    run_sql(geo.engine, sql.replace(":v", "{v}"), {"v": Literal(7)}, raise_errors=True)
    assert scalar(geo, "SELECT geo.g()") == 7


def test_what_does_not_raise(geo: Database) -> None:
    params = {"v": 1, "int": 2, "x": 3}
    body = """DO $$
    DECLARE x int; a int[] := ARRAY[1, 2];
    BEGIN
      x := 1::int; x:=2;          -- :v in a comment
      x := a[1:x];                -- a slice
      RAISE NOTICE ':v %', x;     -- :v in a string
    EXCEPTION WHEN OTHERS THEN NULL;
    END $$"""
    run_sql(geo.engine, body, params, raise_errors=True)
    # a name that was not given: sent as written (the server then refuses it)
    res = run_sql(geo.engine, "DO $$ BEGIN PERFORM :w; END $$", params)
    assert res.outcomes[0].status == "failed"
    assert not isinstance(res.outcomes[0].error, BindParameterError)
    assert "syntax error" in str(res.outcomes[0].error)
    # in ordinary strings and comments a name is text
    assert scalar(geo, "SELECT ':v' /* :v */ -- :v\n AS z", params) == ":v"
    # bound as a real placeholder elsewhere in the statement
    assert tuple(run_query(geo.engine, "SELECT :v, $$:v$$", params).one()) == (1, ":v")
    # forced styles: only the style's own placeholders count
    for sql, forced in ((":v", True), ("%(v)s", False)):
        res = run_sql(
            geo.engine,
            f"DO $$ BEGIN PERFORM {sql}; END $$",
            params,
            has_server_binds=forced,
        )
        assert "syntax error" in str(res.outcomes[0].error)  # the server's, not ours
    # a Composable value with :name is left to its own rule; a body that is not SQL
    assert (
        run_sql(geo.engine, "SELECT $$ :v $$", {"v": Literal(1)})[0].scalar() == " :v "
    )
    python = "SELECT $$ f(:v)  # don't $$"
    assert run_sql(geo.engine, python, params)[0].scalar() == " f(:v)  # don't "


# -- upstream-style calls ---------------------------------------------------------


def test_upstream_style_calls_through_database(geo: Database) -> None:
    geo.run_sql(
        "CREATE FUNCTION {schema}.h() RETURNS bigint LANGUAGE sql "
        "AS $$ SELECT count(*) FROM {schema}.t $$",
        {"schema": Identifier("geo")},
        raise_errors=True,
    )
    assert (
        geo.run_query("SELECT {schema}.h()", {"schema": Identifier("geo")}).scalar()
        == 3
    )
    got = geo.run_query(
        "SELECT $$ {schema} $$, '{schema}', count(*) FROM {schema}.t",
        {"schema": Identifier("my schema")},
    ).one()
    assert tuple(got) == (' "my schema" ', '"my schema"', 2)
    geo.session.rollback()
