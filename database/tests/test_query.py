"""macrostrat.database.query: the public API, parameters, output and hooks.

Tests named ``test_weakness_<n>_…`` pin a fix of the numbered weakness in the
upstream review; each would fail on upstream's behaviour.
"""

from __future__ import annotations

import io
import logging
import warnings
from pathlib import Path

import pytest
import sqlalchemy.exc as sa_exc
from psycopg import errors as pg_errors
from psycopg import sql
from sqlalchemy import text

from macrostrat.database import Database
from macrostrat.database.errors import (
    BindParameterError,
    InvalidOptionError,
    NoResultError,
    StatementError,
)
from macrostrat.database.query import (
    OutputMode,
    QueryResult,
    SQLResults,
    StatementContext,
    StatementDirective,
    StatementResult,
    _print_error,
    canonicalize_query,
    escape_postgresql_cast_parameters,
    execute,
    get_sql_text,
    infer_has_server_binds,
    infer_is_sql_text,
    run_query,
    run_sql,
    run_sql_file,
    summarize_statement,
)

FIXTURES = Path(__file__).parent / "fixtures" / "run_sql"


@pytest.fixture(scope="module")
def qdb(db: Database) -> Database:
    """The module database with a small table ``sample``."""
    run_sql(
        db.engine,
        "CREATE TABLE sample (id serial PRIMARY KEY, name text UNIQUE, n int)",
        raise_errors=True,
    )
    return db


def count(db: Database, table: str, where: str = "true") -> int:
    """Rows committed in ``table`` (seen from a new connection)."""
    with db.engine.connect() as conn:
        return conn.execute(
            text(f"SELECT count(*) FROM {table} WHERE {where}")
        ).scalar_one()


# -- options ---------------------------------------------------------------


def test_unknown_option_is_a_type_error(qdb: Database) -> None:
    with pytest.raises(InvalidOptionError, match="did you mean 'raise_errors'") as info:
        run_sql(qdb.engine, "SELECT 1", raise_error=True)
    assert isinstance(info.value, TypeError)
    with pytest.raises(TypeError, match="output_mod"):
        run_query(qdb.engine, "SELECT 1", output_mod="all")


def test_deprecated_options_warn(qdb: Database) -> None:
    with (
        pytest.warns(DeprecationWarning, match="stop_on_error"),
        pytest.raises(sa_exc.ProgrammingError),
    ):
        run_sql(qdb.engine, "SELECT * FROM no_such_table", stop_on_error=True)
    with pytest.warns(DeprecationWarning, match="statement_filter"):
        res = run_sql(
            qdb.engine,
            "SELECT 1; SELECT 2",
            statement_filter=lambda sql_text, params: sql_text != "SELECT 2",
        )
    assert [r.scalar() for r in res] == [1]
    assert [o.status for o in res.outcomes] == ["committed", "skipped"]
    with (
        pytest.warns(DeprecationWarning, match="statement_filter"),
        pytest.raises(ValueError, match="both"),
    ):
        run_sql(
            qdb.engine,
            "SELECT 1",
            statement_filter=lambda s, p: True,
            transform_statement=lambda ctx: None,
        )
    with pytest.raises(ValueError):
        run_sql(qdb.engine, "SELECT 1", output_mode="loud")
    assert StatementResult is StatementDirective


def test_weakness_13_execute_alias_runs(qdb: Database) -> None:
    """Upstream's execute() crashed on a built-in format() call."""
    with pytest.warns(DeprecationWarning, match="run_sql"):
        res = execute(qdb.engine, "SELECT 41 + 1")
    assert res[0].scalar() == 42


# -- input -----------------------------------------------------------------


def test_split_quotes_bodies_comments(qdb: Database) -> None:
    res = run_sql(qdb.engine, FIXTURES / "tricky.sql", raise_errors=True)
    assert len(res) == 5  # the leading comment is not a statement
    assert [o.line for o in res.outcomes] == [5, 7, 8, 9, 16]
    assert all(o.source == str(FIXTURES / "tricky.sql") for o in res.outcomes)
    rows = run_query(qdb.engine, 'SELECT "semi;colon", note FROM tricky').all()
    assert [tuple(r) for r in rows] == [
        ("a;b", "it's; fine"),
        ("back\\slash ' quote;", "dollar; 'quoted'"),
        ("7; inner;", "last"),
    ]


def test_pg_dump_file_with_bom_restrict_and_copy(qdb: Database) -> None:
    path = FIXTURES / "dump.sql"
    assert path.read_bytes().startswith(b"\xef\xbb\xbf")
    res = run_sql(qdb.engine, str(path), raise_errors=True)
    statuses = [(o.statement.split()[0], o.status) for o in res.outcomes]
    assert statuses[0] == ("\\restrict", "skipped")
    assert statuses[-1] == ("\\unrestrict", "skipped")
    assert ("COPY", "committed") in statuses
    rows = run_query(qdb.engine, "SELECT id, body FROM public.dumped ORDER BY id").all()
    assert [tuple(r) for r in rows] == [
        (1, "semi; colon"),
        (2, None),
        (3, "line with \t tab; and 'quotes'"),
    ]


def test_meta_commands_other_than_restrict_are_refused(qdb: Database) -> None:
    with pytest.raises(StatementError, match=r"\\connect is not supported"):
        run_sql(qdb.engine, "CREATE TABLE meta_t (id int);\n\\connect other\n")
    assert run_query(qdb.engine, "SELECT to_regclass('meta_t')").scalar() is None


def test_weakness_8_psycopg_objects_as_sql(qdb: Database) -> None:
    """Upstream crashed on a Composed object given as the SQL."""
    composed = sql.SQL("SELECT {} AS v, {}::text AS w").format(
        sql.Literal(5), sql.Literal("a'b")
    )
    assert tuple(run_query(qdb.engine, composed).one()) == (5, "a'b")
    template = sql.SQL("SELECT count(*) FROM {table} WHERE name = :name")
    got = run_query(
        qdb.engine, template, {"table": sql.Identifier("sample"), "name": "x"}
    )
    assert got.scalar() == 0
    clause = text("SELECT :a + :b AS total").bindparams(a=1)
    assert run_query(qdb.engine, clause, {"b": 2}).scalar() == 3
    assert run_query(qdb.engine, b"SELECT 'bytes'").scalar() == "bytes"
    assert (
        run_query(qdb.engine, io.StringIO("SELECT 'file-like'")).scalar() == "file-like"
    )


def test_empty_input_runs_nothing(qdb: Database) -> None:
    assert run_sql(qdb.engine, "") == []
    assert run_sql(qdb.engine, None) == []
    assert run_sql(qdb.engine, "-- only a comment\n/* and another */") == []


def test_text_or_path_inference(tmp_path: Path) -> None:
    assert infer_is_sql_text("SELECT * FROM sample")
    assert infer_is_sql_text(b"SELECT * FROM sample")
    assert infer_is_sql_text("VACUUM")
    assert not infer_is_sql_text("sample.sql")
    assert not infer_is_sql_text("SELECT.sql")
    assert infer_is_sql_text("INSERT INTO sample (name) VALUES (:name)")
    path = tmp_path / "q.sql"
    path.write_text("SELECT 1")
    assert canonicalize_query(str(path)) == path
    assert canonicalize_query("SELECT 1") == "SELECT 1"
    with pytest.raises(FileNotFoundError, match=r"missing\.sql"):
        canonicalize_query(str(tmp_path / "missing.sql"))
    assert get_sql_text([path, "SELECT 2"]) == "SELECT 1\n\nSELECT 2"


# -- parameters --------------------------------------------------------------


def test_named_parameters_and_casts(qdb: Database) -> None:
    assert run_query(qdb.engine, "SELECT :v::int + 1", {"v": "41"}).scalar() == 42
    assert run_query(qdb.engine, 'SELECT :v::"text"', {"v": 5}).scalar() == "5"
    assert run_query(qdb.engine, "SELECT %(v)s::int * 2", {"v": 21}).scalar() == 42
    # the ':word' in a string literal is not a parameter; '%' needs no doubling
    got = run_query(qdb.engine, "SELECT ':x 100%' || :y", {"y": "!"}).scalar()
    assert got == ":x 100%!"
    assert run_query(qdb.engine, "SELECT '100%'").scalar() == "100%"
    # array slices are not binds
    assert run_query(qdb.engine, "SELECT (ARRAY[1,2,3])[2:3]").scalar() == [2, 3]


def test_weakness_1_positional_parameters(qdb: Database) -> None:
    """Upstream rejected every tuple or list of scalars."""
    assert tuple(run_query(qdb.engine, "SELECT %s, %s", (1, "a")).one()) == (1, "a")
    assert run_query(qdb.engine, "SELECT %s::int + 1", [1]).scalar() == 2
    assert run_query(qdb.engine, "SELECT %s", 7).scalar() == 7
    via_db = qdb.run_query("SELECT %s || %s", ("x", "y"))
    assert via_db.scalar() == "xy"
    with pytest.raises(BindParameterError, match="2 %s placeholder"):
        run_query(qdb.engine, "SELECT %s, %s", (1,))


def test_executemany_and_per_statement_params(qdb: Database) -> None:
    rows = [{"name": "em1", "n": 1}, {"name": "em2", "n": 2}]
    run_sql(qdb.engine, "INSERT INTO sample (name, n) VALUES (:name, :n)", rows)
    run_sql(
        qdb.engine, "INSERT INTO sample (name, n) VALUES (%s, %s)", [("em3", 3)] * 1
    )
    assert count(qdb, "sample", "name LIKE 'em%'") == 3
    res = run_sql(qdb.engine, "SELECT :a; SELECT %s; SELECT 3", [{"a": 1}, (2,), None])
    assert [r.scalar() for r in res] == [1, 2, 3]


def test_weakness_9_prebinding_leaves_braces_in_strings_alone(qdb: Database) -> None:
    """Upstream str.format-ed whole statements: JSON braces raised ValueError."""
    run_query(qdb.engine, "INSERT INTO sample (name) VALUES ('w9')")
    got = run_query(
        qdb.engine,
        """SELECT {col} FROM {tbl} WHERE '{"k": [1, {"x": 2}]}'::jsonb ? 'k'
           AND {col} = {lit} AND {col} = :name -- a {comment}""",
        {
            "col": sql.Identifier("name"),
            "tbl": sql.Identifier("public", "sample"),
            "lit": sql.Literal("w9"),
            "name": "w9",
        },
    )
    assert got.scalar() == "w9"
    composed = sql.SQL("{} || {}").format(sql.Literal("50%"), sql.Literal("!"))
    assert run_query(qdb.engine, "SELECT {x}, :y", {"x": composed, "y": 1}).first()[
        0
    ] == ("50%!")
    with pytest.raises(BindParameterError, match=r"\{tbl\} needs a psycopg Composable"):
        run_query(
            qdb.engine,
            "SELECT * FROM {tbl} WHERE name = :name",
            {"tbl": "sample", "name": "x"},
        )


def test_weakness_10_binds_are_found_in_sql_tokens_only(qdb: Database) -> None:
    """Upstream saw '%s' in a PL/pgSQL string and switched to driver binds."""
    body = """
    CREATE OR REPLACE FUNCTION raise_it(v text) RETURNS void LANGUAGE plpgsql AS $$
    BEGIN
      RAISE NOTICE 'prop %s, pattern % :notabind', v, v;
    END;
    $$"""
    run_sql(qdb.engine, body, {"unused": 1}, raise_errors=True)
    assert not infer_has_server_binds("SELECT '%s' LIKE $$%s$$ -- %s")
    assert infer_has_server_binds("SELECT %(a)s")
    with pytest.raises(BindParameterError, match="mixes"):
        run_query(qdb.engine, "SELECT :a, %s", {"a": 1})
    assert (
        run_query(qdb.engine, "SELECT :a", {"a": 1}, has_server_binds=False).scalar()
        == 1
    )


def test_missing_parameter_names_statement_and_parameter(qdb: Database) -> None:
    sql_text = "SELECT 1;\nSELECT :present, :absent"
    with pytest.raises(BindParameterError) as info:
        run_sql(qdb.engine, sql_text, {"present": 1})
    err = info.value
    assert err.parameter == "absent"
    assert (err.index, err.line) == (1, 2)
    assert "statement 2 (line 2)" in str(err)
    assert "'absent'" in str(err)
    assert isinstance(err, sa_exc.StatementError)  # as SQLAlchemy raised upstream
    with pytest.raises(BindParameterError, match="'x'"):
        run_query(qdb.engine, "SELECT :x")  # no parameters at all
    with pytest.raises(BindParameterError, match="splice"):
        run_query(qdb.engine, "SELECT %(t)s", {"t": sql.Identifier("sample")})
    assert escape_postgresql_cast_parameters("SELECT :a::int, '::b'") == (
        "SELECT :a\\:\\:int, '::b'"
    )
    assert run_query(qdb.engine, "SELECT :a\\:\\:int", {"a": "3"}).scalar() == 3


# -- results and errors ------------------------------------------------------


def test_results_behave_like_sqlalchemy_results(qdb: Database) -> None:
    res = run_sql(
        qdb.engine,
        "SELECT 1 AS a, 'x' AS b UNION ALL SELECT 2, 'y'; SELECT 1 WHERE false",
    )
    assert isinstance(res, SQLResults)
    assert len(res) == 2
    first = res[0]
    assert isinstance(first, QueryResult)
    assert first.returns_rows
    assert first.rowcount == 2
    assert list(first.keys()) == ["a", "b"]
    rows = first.all()
    assert rows[1].b == "y"
    assert rows[0][0] == 1
    assert rows[0]._mapping["b"] == "x"
    assert res[1].one_or_none() is None
    again = run_query(qdb.engine, "SELECT generate_series(1, 3) AS g")
    assert again.scalars().all() == [1, 2, 3]
    assert run_query(qdb.engine, "SELECT 1 AS a").mappings().one() == {"a": 1}
    assert run_query(qdb.engine, "SELECT 5").fetchone()[0] == 5
    assert [r.g for r in run_query(qdb.engine, "SELECT 1 AS g")] == [1]
    insert = run_query(qdb.engine, "INSERT INTO sample (name) VALUES ('r1'), ('r2')")
    assert insert.rowcount == 2
    assert not insert.returns_rows
    assert insert.statusmessage == "INSERT 0 2"
    with pytest.raises(sa_exc.ResourceClosedError):
        insert.scalar()
    assert list(insert.keys()) == []


def test_failed_statement_error_carries_location(qdb: Database) -> None:
    sql_text = (
        "SELECT 1;\n\nSELECT 2;\nCREATE VIEW later AS\n  SELECT * FROM missing_table"
    )
    with pytest.raises(sa_exc.ProgrammingError) as info:
        run_sql(qdb.engine, sql_text, raise_errors=True)
    err = info.value
    assert isinstance(err, StatementError)
    assert isinstance(err.orig, pg_errors.UndefinedTable)
    assert err.__cause__ is err.orig
    assert err.orig.sqlstate == "42P01"
    assert (err.index, err.source, err.line) == (2, None, 4)
    assert str(err).startswith("statement 3 (line 4) failed at line 5: relation")
    assert "  CREATE VIEW later AS\n    SELECT * FROM missing_table" in str(err)
    with pytest.raises(sa_exc.IntegrityError) as info:
        run_sql_file(qdb.engine, FIXTURES / "begin_commit.sql", raise_errors=True)
    assert info.value.source == str(FIXTURES / "begin_commit.sql")  # type: ignore[attr-defined]


def test_weakness_11_errors_continue_or_raise_consistently(qdb: Database) -> None:
    """Upstream raised DataError even with raise_errors=False but swallowed IntegrityError."""
    sql_text = """
        SELECT 1 / 0;
        INSERT INTO sample (name) VALUES ('dup'), ('dup');
        SELECT 'x'::int;
        SELECT 'after'"""
    res = run_sql(qdb.engine, sql_text)
    assert [o.status for o in res.outcomes] == [
        "failed",
        "failed",
        "failed",
        "committed",
    ]
    kinds = (sa_exc.DataError, sa_exc.IntegrityError, sa_exc.DataError)
    assert all(isinstance(e, k) for e, k in zip(res.errors, kinds, strict=True))
    assert res[-1].scalar() == "after"
    with pytest.raises(sa_exc.DataError):
        run_sql(qdb.engine, sql_text, raise_errors=True)


# -- output ----------------------------------------------------------------


def test_weakness_6_output_modes(
    qdb: Database, capsys: pytest.CaptureFixture[str]
) -> None:
    """Upstream printed everything in ERRORS mode and leaked a /dev/null handle in NONE."""
    sql_text = "SELECT 1; SELECT * FROM nowhere; SELECT\n  2"
    with warnings.catch_warnings():
        warnings.simplefilter("error", ResourceWarning)
        run_sql(qdb.engine, sql_text)
    assert capsys.readouterr() == ("", "")  # quiet by default
    out = io.StringIO()
    run_sql(qdb.engine, "SELECT 1", output_mode=OutputMode.SUMMARY, output_file=out)
    assert out.getvalue() == "SELECT 1\n"
    out = io.StringIO()
    run_sql(qdb.engine, "SELECT 1", output_file=out)  # a file asks for the summary
    assert out.getvalue() == "SELECT 1\n"
    out = io.StringIO()
    run_sql(qdb.engine, sql_text, output_mode="errors", output_file=out)
    assert out.getvalue().splitlines() == [
        "SELECT * FROM nowhere",
        '  relation "nowhere" does not exist',
    ]
    out = io.StringIO()
    run_sql(qdb.engine, sql_text, output_mode="all", output_file=out)
    assert "SELECT\n  2\n" in out.getvalue()
    run_sql(qdb.engine, "SELECT 3", output_mode="summary")  # sys.stderr at call time
    assert capsys.readouterr().err == "SELECT 3\n"
    out = io.StringIO()
    run_sql(
        qdb.engine,
        "SELECT 1; SELECT 2",
        output_mode="summary",
        output_file=out,
        transform_statement=lambda ctx: (
            [StatementDirective.skipped()] if ctx.index else None
        ),
        print_skipped=False,
    )
    assert out.getvalue() == "SELECT 1\n"


def test_errors_not_raised_are_logged(
    qdb: Database, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="macrostrat.database.query"):
        run_sql(qdb.engine, "SELECT 1;\nSELECT * FROM nowhere")
    assert any(
        "statement 2 (line 2) failed" in r.getMessage() and r.levelno == logging.WARNING
        for r in caplog.records
    )


def test_print_helpers(capsys: pytest.CaptureFixture[str]) -> None:
    _print_error("SELECT * FROM test", Exception("Test error"))
    assert capsys.readouterr().err == "SELECT * FROM test\n  Test error\n"
    assert (
        summarize_statement("-- c\n/* d */ CREATE TABLE t (\n id int)")
        == "CREATE TABLE t"
    )
    assert summarize_statement("SELECT a AS b;") == "SELECT a AS b"


# -- hooks -----------------------------------------------------------------


def test_transform_statement(qdb: Database) -> None:
    seen: list[StatementContext] = []

    def transform(ctx: StatementContext) -> list[StatementDirective] | None:
        seen.append(ctx)
        if ctx.index == 0:
            return [StatementDirective(label="first", params={"v": 10})]
        if ctx.index == 1:
            return [StatementDirective.skipped()]
        return [StatementDirective("SELECT 'a'"), StatementDirective("SELECT 'b'")]

    out = io.StringIO()
    res = run_sql(
        qdb.engine,
        "SELECT :v; SELECT 2; SELECT 3",
        {"v": 1},
        transform_statement=transform,
        output_file=out,
    )
    assert [r.scalar() for r in res] == [10, "a", "b"]
    assert [c.sql_text for c in seen] == ["SELECT :v", "SELECT 2", "SELECT 3"]
    assert out.getvalue().splitlines() == [
        "first",
        "SELECT 2",
        "SELECT 'a'",
        "SELECT 'b'",
    ]
    assert [o.index for o in res.outcomes] == [0, 1, 2, 2]


def test_on_error_recovers_once(qdb: Database) -> None:
    run_sql(
        qdb.engine,
        "CREATE TABLE vt (a int, b int); CREATE VIEW vv AS SELECT a, b FROM vt",
    )
    calls: list[str | None] = []

    def recover(
        ctx: StatementContext, err: BaseException, conn: object
    ) -> list[StatementDirective]:
        calls.append(getattr(getattr(err, "orig", None), "sqlstate", None))
        return [
            StatementDirective("DROP VIEW vv"),
            StatementDirective(ctx.query),  # retry
        ]

    res = run_sql(
        qdb.engine,
        "CREATE OR REPLACE VIEW vv AS SELECT a FROM vt",
        on_error=recover,
        raise_errors=True,
    )
    assert calls == ["42P16"]
    assert [o.status for o in res.outcomes] == ["failed", "committed", "committed"]
    assert res.outcomes[0].recovered
    cols = "SELECT count(*) FROM information_schema.columns WHERE table_name = 'vv'"
    assert run_query(qdb.engine, cols).scalar() == 1

    def fail_again(
        ctx: StatementContext, err: BaseException, conn: object
    ) -> list[StatementDirective]:
        calls.append("again")
        return [StatementDirective("INSERT INTO still_missing VALUES (1)")]

    with pytest.raises(sa_exc.ProgrammingError, match="still_missing"):
        run_sql(
            qdb.engine,
            "INSERT INTO missing VALUES (1)",
            on_error=fail_again,
            raise_errors=True,
        )
    assert calls[-1] == "again"
    assert calls.count("again") == 1
    with pytest.raises(sa_exc.ProgrammingError):
        run_sql(
            qdb.engine,
            "INSERT INTO missing VALUES (1)",
            on_error=lambda c, e, x: None,
            raise_errors=True,
        )


# -- run_query -------------------------------------------------------------


def test_weakness_3_run_query_commits_with_an_engine(qdb: Database) -> None:
    """Upstream's run_query(engine, INSERT) was silently rolled back."""
    run_query(qdb.engine, "INSERT INTO sample (name) VALUES ('w3')")
    assert count(qdb, "sample", "name = 'w3'") == 1


def test_run_query_joins_a_session_without_committing(qdb: Database) -> None:
    session = qdb.session
    run_query(session, "INSERT INTO sample (name) VALUES ('joined')")
    assert count(qdb, "sample", "name = 'joined'") == 0
    assert (
        run_query(session, "SELECT count(*) FROM sample WHERE name = 'joined'").scalar()
        == 1
    )
    with pytest.raises(sa_exc.IntegrityError):
        run_query(session, "INSERT INTO sample (name) VALUES ('joined')")
    session.commit()
    assert count(qdb, "sample", "name = 'joined'") == 1


def test_weakness_12_run_query_without_a_result_is_a_clear_error(qdb: Database) -> None:
    """Upstream leaked a bare StopIteration."""
    with pytest.raises(NoResultError, match="no statement"):
        run_query(qdb.engine, "-- nothing")
    with pytest.raises(NoResultError, match="skipped"):
        run_query(
            qdb.engine,
            "SELECT 1",
            transform_statement=lambda c: [StatementDirective.skipped()],
        )
    with pytest.raises(NoResultError, match="swallowed") as info:
        run_query(qdb.engine, "SELECT * FROM nowhere", raise_errors=False)
    assert isinstance(info.value.__cause__, sa_exc.ProgrammingError)
    with pytest.raises(ValueError, match="Multiple queries"):
        run_query(qdb.engine, "SELECT 1; SELECT 2")


def test_yield_results_is_lazy(qdb: Database) -> None:
    gen = run_sql(qdb.engine, "SELECT 1; SELECT 2", yield_results=True)
    assert not isinstance(gen, list)
    assert [r.scalar() for r in gen] == [1, 2]


def test_weakness_7_engine_keeps_every_option(qdb: Database) -> None:
    """Upstream dropped use_transaction and print_skipped for engines."""
    script = "SELECT current_query(), txid_current(); SELECT 2"
    batched = run_sql(qdb.engine, script)[0].one()
    assert "SELECT 2" in batched[0]  # one message for both
    alone = run_sql(qdb.engine, script, use_transaction=False)
    assert "SELECT 2" not in alone[0].one()[0]  # each statement sent on its own
    # Either way each statement is its own transaction, as under psql.
    for options in ({}, {"use_transaction": False}):
        first, second = run_sql(
            qdb.engine, "SELECT txid_current(); SELECT txid_current()", **options
        )
        assert first.scalar() != second.scalar()
