"""Exact-boundary tests for the PostgreSQL statement splitter and placeholder finder."""

from __future__ import annotations

import pickle
import time

import pytest

from macrostrat.database._sql import (
    Placeholder,
    SQLSyntaxError,
    Statement,
    find_placeholders,
    iter_statements,
    split_statements,
)


def texts(sql: str) -> list[str]:
    """The statements' texts."""
    return [s.text for s in split_statements(sql)]


def assert_lossless(source: str, stmts: list[Statement]) -> None:
    """Each text/data is its source slice, in order, and every gap is only trivia."""
    pos = 0
    for s in stmts:
        assert pos <= s.start < s.end <= len(source)
        assert source[s.start : s.end] == s.text
        gap = source[pos : s.start]
        assert split_statements(gap.removeprefix("\ufeff") if pos == 0 else gap) == []
        pos = s.end
        if s.data is not None:
            assert s.data_start is not None
            assert s.data_end is not None
            assert source[s.data_start : s.data_end] == s.data
            assert pos < s.data_start <= s.data_end
            assert split_statements(source[pos : s.data_start]) == []
            terminator = source[s.data_end :].split("\n", 1)[0]
            assert terminator in ("\\.", "\\.\r")
            pos = s.data_end + len(terminator)
    gap = source[pos:]
    assert split_statements(gap.removeprefix("\ufeff") if pos == 0 else gap) == []


def split_checked(sql: str) -> list[Statement]:
    """split_statements plus the lossless and line-number invariants."""
    stmts = split_statements(sql)
    assert_lossless(sql, stmts)
    for s in stmts:
        assert s.line == sql.count("\n", 0, s.start) + 1
    return stmts


# -- basics --------------------------------------------------------------------------


def test_two_statements_exact_text_offsets_and_lines() -> None:
    sql = "SELECT 1;\n  SELECT 2 ;\n"
    stmts = split_checked(sql)
    assert stmts == [
        Statement("SELECT 1", 1, "sql", 0, 8),
        Statement("SELECT 2", 2, "sql", 12, 20),
    ]


def test_final_statement_without_semicolon() -> None:
    assert texts("SELECT 1; SELECT 2") == ["SELECT 1", "SELECT 2"]
    assert texts("SELECT 1 -- done") == ["SELECT 1"]


@pytest.mark.parametrize(
    "sql", ["", "   \n\t", ";", " ;; ;\n;", "-- only a comment", "/* a */ -- b\n;"]
)
def test_no_statements(sql: str) -> None:
    assert split_checked(sql) == []


def test_leading_block_comment_is_not_a_statement() -> None:
    sql = (
        "/*\n * Test schema; three statements.\n */\n\n"
        "CREATE TABLE sample (id serial PRIMARY KEY, name text);\n"
        "CREATE SCHEMA geology;\n"
        "CREATE TABLE geology.formation (id int, name text);\n"
    )
    stmts = split_checked(sql)
    assert [s.line for s in stmts] == [5, 6, 7]
    assert stmts[1].text == "CREATE SCHEMA geology"


def test_leading_and_trailing_comments_are_trivia_inner_ones_kept() -> None:
    sql = "-- lead;\n/* lead */ SELECT 1 /* mid; */ + -- mid;\n 2 /* trail */ -- t\n; x"
    stmts = split_checked(sql)
    assert [s.text for s in stmts] == ["SELECT 1 /* mid; */ + -- mid;\n 2", "x"]
    assert stmts[0].line == 2


def test_iter_statements_is_lazy_and_origin_is_copied() -> None:
    it = iter_statements("SELECT 1; SELECT 'oops", origin="f.sql")
    first = next(it)
    assert first.text == "SELECT 1"
    assert first.origin == "f.sql"
    with pytest.raises(SQLSyntaxError):
        next(it)


# -- strings -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("SELECT 'a;b'; SELECT 2", ["SELECT 'a;b'", "SELECT 2"]),
        ("SELECT 'it''s; ok'; SELECT 2", ["SELECT 'it''s; ok'", "SELECT 2"]),
        ("SELECT ''';'''; SELECT 2", ["SELECT ''';'''", "SELECT 2"]),
        # standard_conforming_strings: a backslash does not escape the quote
        ("SELECT 'C:\\'; SELECT 2", ["SELECT 'C:\\'", "SELECT 2"]),
        ("SELECT E'it\\'s; x'; SELECT 2", ["SELECT E'it\\'s; x'", "SELECT 2"]),
        ("SELECT e'\\\\'; SELECT 2", ["SELECT e'\\\\'", "SELECT 2"]),
        ("SELECT E'a''b;\\\\'; SELECT 2", ["SELECT E'a''b;\\\\'", "SELECT 2"]),
        ("SELECT (E'\\';'); SELECT 2", ["SELECT (E'\\';')", "SELECT 2"]),
        ("SELECT 1, E'\\';'; SELECT 2", ["SELECT 1, E'\\';'", "SELECT 2"]),
        # "somee" is an identifier, so the quote opens a plain string
        ("SELECT somee'x\\'; SELECT 2", ["SELECT somee'x\\'", "SELECT 2"]),
        ("SELECT (somee'x\\'); SELECT 2", ["SELECT (somee'x\\')", "SELECT 2"]),
        ("SELECT 1e'\\';'; SELECT 2", ["SELECT 1e'\\';'", "SELECT 2"]),
        ("SELECT U&'d\\0061t;a'; SELECT 2", ["SELECT U&'d\\0061t;a'", "SELECT 2"]),
        (
            "SELECT B'01;', X'1F;', N'n\\'; SELECT 2",
            ["SELECT B'01;', X'1F;', N'n\\'", "SELECT 2"],
        ),
        ("SELECT 'a'\n'b;c'; SELECT 2", ["SELECT 'a'\n'b;c'", "SELECT 2"]),
        (
            "SELECT '(;'; SELECT ')'; SELECT 3",
            ["SELECT '(;'", "SELECT ')'", "SELECT 3"],
        ),
    ],
)
def test_strings(sql: str, expected: list[str]) -> None:
    assert [s.text for s in split_checked(sql)] == expected


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ('SELECT "a;b"; SELECT 2', ['SELECT "a;b"', "SELECT 2"]),
        ('SELECT "a"";b"; SELECT 2', ['SELECT "a"";b"', "SELECT 2"]),
        ('SELECT U&"d;\\0061"; SELECT 2', ['SELECT U&"d;\\0061"', "SELECT 2"]),
        ("SELECT \"it's\"; SELECT '\"'", ['SELECT "it\'s"', "SELECT '\"'"]),
    ],
)
def test_quoted_identifiers(sql: str, expected: list[str]) -> None:
    assert [s.text for s in split_checked(sql)] == expected


# -- dollar quotes -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("SELECT $$a;b$$; SELECT 2", ["SELECT $$a;b$$", "SELECT 2"]),
        (
            "DO $fn$ BEGIN PERFORM $$;$$; PERFORM $x$;$x$; END $fn$; SELECT 2",
            ["DO $fn$ BEGIN PERFORM $$;$$; PERFORM $x$;$x$; END $fn$", "SELECT 2"],
        ),
        ("SELECT $A$ ; $a$ ; $A$; SELECT 2", ["SELECT $A$ ; $a$ ; $A$", "SELECT 2"]),
        ("SELECT $_1$'$_1$; SELECT 2", ["SELECT $_1$'$_1$", "SELECT 2"]),
        ("SELECT $é$;$é$; SELECT 2", ["SELECT $é$;$é$", "SELECT 2"]),
        ("SELECT $$$$; SELECT 2", ["SELECT $$$$", "SELECT 2"]),
        ("SELECT $$a$$$$b;$$; SELECT 2", ["SELECT $$a$$$$b;$$", "SELECT 2"]),
        # parameters are not dollar quotes
        ("SELECT $1; SELECT $2", ["SELECT $1", "SELECT $2"]),
        ("SELECT $1$a$;$a$; SELECT 2", ["SELECT $1$a$;$a$", "SELECT 2"]),
        # "$" inside an identifier continues it
        ("SELECT a$b$c; SELECT $b$ x $b$", ["SELECT a$b$c", "SELECT $b$ x $b$"]),
        ("SELECT foo$$; SELECT 2", ["SELECT foo$$", "SELECT 2"]),
        ("SELECT x1$q$; SELECT $q$;$q$", ["SELECT x1$q$", "SELECT $q$;$q$"]),
        # a number does not absorb it
        ("SELECT 1$$;$$; SELECT 2", ["SELECT 1$$;$$", "SELECT 2"]),
        ("SELECT 1.5$a$;$a$; SELECT 2", ["SELECT 1.5$a$;$a$", "SELECT 2"]),
        # as in PostgreSQL, AS$$ is one word: no dollar quote (a syntax error there)
        ("SELECT x AS$$a; SELECT 2", ["SELECT x AS$$a", "SELECT 2"]),
        # not a delimiter: "$" then an identifier
        ("SELECT $a b$; SELECT 2", ["SELECT $a b$", "SELECT 2"]),
    ],
)
def test_dollar_quotes(sql: str, expected: list[str]) -> None:
    assert [s.text for s in split_checked(sql)] == expected


def test_function_body_with_nested_tags_and_comments() -> None:
    sql = (
        "CREATE FUNCTION f() RETURNS trigger LANGUAGE plpgsql AS $body$\n"
        "BEGIN\n  -- $$ ; not the end\n  RAISE NOTICE '%; $x$', 1; /* ; */\n"
        "  RETURN NEW;\nEND;\n$body$;\nSELECT 2;\n"
    )
    stmts = split_checked(sql)
    assert len(stmts) == 2
    assert stmts[0].text.endswith("END;\n$body$")
    assert (stmts[1].text, stmts[1].line) == ("SELECT 2", 8)


# -- comments ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("SELECT 1 -- a; b\n, 2; SELECT 3", ["SELECT 1 -- a; b\n, 2", "SELECT 3"]),
        ("SELECT 1 /* ; */ , 2; SELECT 3", ["SELECT 1 /* ; */ , 2", "SELECT 3"]),
        (
            "SELECT 1 /* a /* b; */ c; */ , 2; x",
            ["SELECT 1 /* a /* b; */ c; */ , 2", "x"],
        ),
        ("SELECT 1 /*/ ; */ , 2; x", ["SELECT 1 /*/ ; */ , 2", "x"]),
        ("SELECT 1 /**/; x", ["SELECT 1", "x"]),
        ("SELECT 1 /* ** / ; **/; x", ["SELECT 1", "x"]),
        ("SELECT 1 /* -- */; x", ["SELECT 1", "x"]),
        ("SELECT 1 -- /* \n; x", ["SELECT 1", "x"]),
        ("SELECT 1 --;\r; x", ["SELECT 1", "x"]),  # "--" ends at \r too
        ("SELECT 2 ---; x\n- 1; y", ["SELECT 2 ---; x\n- 1", "y"]),
        ("SELECT 2 +--; x\n1; y", ["SELECT 2 +--; x\n1", "y"]),
        ("SELECT 4 / 2; SELECT 3 - 1", ["SELECT 4 / 2", "SELECT 3 - 1"]),
        ("SELECT '--', '/*'; x", ["SELECT '--', '/*'", "x"]),
    ],
)
def test_comments(sql: str, expected: list[str]) -> None:
    assert [s.text for s in split_checked(sql)] == expected


# -- parentheses ---------------------------------------------------------------------


def test_create_rule_with_parenthesised_actions() -> None:
    sql = (
        "CREATE RULE r AS ON INSERT TO t DO ALSO (\n"
        "  INSERT INTO a VALUES (1, ';');\n  INSERT INTO b VALUES ((2));\n);\nSELECT 1;"
    )
    stmts = split_checked(sql)
    assert len(stmts) == 2
    assert stmts[0].text.endswith("VALUES ((2));\n)")
    assert stmts[1].line == 5


def test_stray_closing_parenthesis_does_not_go_negative() -> None:
    assert texts("SELECT 1); SELECT (2;3)") == ["SELECT 1)", "SELECT (2;3)"]


def test_unclosed_parenthesis_runs_to_the_end() -> None:
    assert texts("SELECT (1; SELECT 2") == ["SELECT (1; SELECT 2"]


# -- BEGIN ATOMIC --------------------------------------------------------------------


def test_begin_atomic_function_with_case() -> None:
    sql = (
        "CREATE FUNCTION f(a int) RETURNS text LANGUAGE sql\nBEGIN ATOMIC\n"
        "  SELECT CASE WHEN a > 1 THEN 'x;' ELSE CASE a WHEN 0 THEN 'z' END END;\n"
        "  SELECT 2;\nEND;\nSELECT 3;"
    )
    stmts = split_checked(sql)
    assert [s.text for s in stmts] == [sql[: sql.index("END;\nSELECT") + 3], "SELECT 3"]
    assert stmts[1].line == 6


@pytest.mark.parametrize(
    "routine",
    [
        "CREATE OR REPLACE PROCEDURE p() BEGIN ATOMIC INSERT INTO t VALUES (1); END",
        "create or replace function f() returns int begin atomic select 1; end",
        "CREATE FUNCTION f() RETURNS int BEGIN /* c; */ -- c;\n ATOMIC SELECT 1; END",
        "CREATE FUNCTION f() RETURNS SETOF t BEGIN ATOMIC SELECT t.end FROM t; END",
        "CREATE FUNCTION f() RETURNS int BEGIN ATOMIC SELECT 1 AS end; SELECT 2 AS case; END",
        "CREATE FUNCTION f() RETURNS int BEGIN ATOMIC SELECT (CASE WHEN true THEN 1 END); END",
        "CREATE FUNCTION f() RETURNS text BEGIN ATOMIC SELECT 'end;'; SELECT \"end\"; END",
        "CREATE FUNCTION f() RETURNS int BEGIN ATOMIC SELECT $$end;$$; END",
        "CREATE FUNCTION f() RETURNS int BEGIN ATOMIC END",
        "CREATE FUNCTION f() RETURNS int BEGIN ATOMIC SELECT x.case FROM x; END",
    ],
)
def test_begin_atomic_variants(routine: str) -> None:
    assert texts(f"{routine};\nSELECT 9;") == [routine, "SELECT 9"]


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("BEGIN; SELECT 1; END;", ["BEGIN", "SELECT 1", "END"]),
        (
            "BEGIN ISOLATION LEVEL SERIALIZABLE; SELECT 1; COMMIT;",
            ["BEGIN ISOLATION LEVEL SERIALIZABLE", "SELECT 1", "COMMIT"],
        ),
        (
            "START TRANSACTION; END TRANSACTION;",
            ["START TRANSACTION", "END TRANSACTION"],
        ),
        # BEGIN ATOMIC only counts in CREATE FUNCTION/PROCEDURE
        (
            "SELECT begin atomic FROM t; SELECT 2",
            ["SELECT begin atomic FROM t", "SELECT 2"],
        ),
        # "atomic" only in a string: an ordinary function
        (
            "CREATE FUNCTION f() RETURNS text LANGUAGE sql AS 'SELECT ''atomic'''; SELECT 2",
            [
                "CREATE FUNCTION f() RETURNS text LANGUAGE sql AS 'SELECT ''atomic'''",
                "SELECT 2",
            ],
        ),
        (
            "CREATE FUNCTION f(int) RETURNS int RETURN $1 + 1; SELECT 2",
            ["CREATE FUNCTION f(int) RETURNS int RETURN $1 + 1", "SELECT 2"],
        ),
        (
            "CREATE TABLE atomic (begin int); SELECT 2",
            ["CREATE TABLE atomic (begin int)", "SELECT 2"],
        ),
        (
            "SELECT CASE WHEN x THEN 1 END; SELECT 2",
            ["SELECT CASE WHEN x THEN 1 END", "SELECT 2"],
        ),
    ],
)
def test_transaction_keywords_are_ordinary_statements(
    sql: str, expected: list[str]
) -> None:
    assert [s.text for s in split_checked(sql)] == expected


def test_unterminated_atomic_body_is_one_statement_to_the_end() -> None:
    sql = "CREATE FUNCTION f() RETURNS int BEGIN ATOMIC SELECT 1; SELECT 2;"
    assert texts(sql) == [sql]


# -- COPY ... FROM STDIN -------------------------------------------------------------


def test_copy_from_stdin_with_data() -> None:
    sql = (
        "SET x = 1;\n"
        "COPY public.t (a, b) FROM stdin;\n"
        "1\ta;b\n2\t'it''s\n3\t/* -- $$ \"\n"
        "\\.\n"
        "SELECT 2;\n"
    )
    stmts = split_checked(sql)
    assert [(s.kind, s.text, s.line) for s in stmts] == [
        ("sql", "SET x = 1", 1),
        ("copy_in", "COPY public.t (a, b) FROM stdin", 2),
        ("sql", "SELECT 2", 7),
    ]
    assert stmts[1].data == "1\ta;b\n2\t'it''s\n3\t/* -- $$ \"\n"


@pytest.mark.parametrize(
    "copy",
    [
        "copy t from STDIN",
        "COPY t (a) FROM stdin WITH (FORMAT csv, DELIMITER ';')",
        "COPY t FROM /* c */ -- c\n STDIN",
        'COPY "T;" FROM STDIN',
        "COPY t FROM STDIN (FORMAT text)",
        "COPY BINARY t FROM STDIN",
    ],
)
def test_copy_from_stdin_variants(copy: str) -> None:
    sql = f"-- data\n/* more */ {copy};\nx;y\n\\.\nSELECT 2"
    stmts = split_checked(sql)
    assert [(s.kind, s.text) for s in stmts] == [("copy_in", copy), ("sql", "SELECT 2")]
    assert stmts[0].data == "x;y\n"


@pytest.mark.parametrize(
    "sql",
    [
        "COPY t TO STDOUT; SELECT 2",
        "COPY (SELECT 'from stdin') TO STDOUT; SELECT 2",
        "COPY t FROM '/tmp/stdin.csv'; SELECT 2",
        "COPY t FROM PROGRAM 'cat stdin'; SELECT 2",
        "SELECT stdin FROM t; SELECT 2",
        "COPY t FROM x.stdin; SELECT 2",
    ],
)
def test_copy_without_inline_data(sql: str) -> None:
    stmts = split_checked(sql)
    assert [s.kind for s in stmts] == ["sql", "sql"]
    assert stmts[1].text == "SELECT 2"


def test_copy_data_edge_cases() -> None:
    sql = "COPY t FROM stdin; -- same line\n\\.x\n \\.\n\\.\\.\n\\.\r\nSELECT 2\r\n"
    stmts = split_checked(sql)
    assert stmts[0].data == "\\.x\n \\.\n\\.\\.\n"
    assert (stmts[1].text, stmts[1].line) == ("SELECT 2", 6)


def test_copy_empty_data_and_terminator_at_end_of_text() -> None:
    stmts = split_checked("COPY t FROM stdin;\n\\.")
    assert [(s.kind, s.data) for s in stmts] == [("copy_in", "")]
    stmts = split_checked("COPY t FROM stdin; /* c */ ;\n1\n\\.")
    assert stmts[0].data == "1\n"


def test_two_consecutive_copy_blocks() -> None:
    sql = "COPY a FROM stdin;\n1\n\\.\nCOPY b FROM stdin;\n2\n\\.\n"
    stmts = split_checked(sql)
    assert [(s.text, s.data, s.line) for s in stmts] == [
        ("COPY a FROM stdin", "1\n", 1),
        ("COPY b FROM stdin", "2\n", 4),
    ]


@pytest.mark.parametrize(
    ("sql", "line", "fragment"),
    [
        ("SELECT 1;\nCOPY t FROM stdin;\n1\n2\n", 2, "terminating \\. line"),
        ("COPY t FROM stdin;", 1, "terminating \\. line"),
        ("SELECT 1;\n\nCOPY t FROM stdin", 3, "without ';'"),
        ("COPY t FROM stdin; SELECT 2;\n\\.\n", 1, "same line"),
        ("COPY t FROM stdin; /* spans\n */\n\\.\n", 1, "same line"),
    ],
)
def test_copy_errors(sql: str, line: int, fragment: str) -> None:
    with pytest.raises(SQLSyntaxError, match="COPY") as err:
        split_statements(sql)
    assert err.value.line == line
    assert fragment in str(err.value)


# -- psql meta-commands --------------------------------------------------------------


def test_pg_dump_restrict_lines() -> None:
    sql = (
        "--\n-- PostgreSQL database dump\n--\n\n"
        "\\restrict 3CnLBWe8fJbUuGf0\n\n"
        "SET statement_timeout = 0;\n"
        "\\connect macrostrat\n"
        "  \\set ON_ERROR_STOP on\r\n"
        "SELECT 1; \\echo done\n"
        "\\unrestrict 3CnLBWe8fJbUuGf0"
    )
    stmts = split_checked(sql)
    assert [(s.kind, s.text, s.line) for s in stmts] == [
        ("meta", "\\restrict 3CnLBWe8fJbUuGf0", 5),
        ("sql", "SET statement_timeout = 0", 7),
        ("meta", "\\connect macrostrat", 8),
        ("meta", "\\set ON_ERROR_STOP on", 9),
        ("sql", "SELECT 1", 10),
        ("meta", "\\echo done", 10),
        ("meta", "\\unrestrict 3CnLBWe8fJbUuGf0", 11),
    ]


def test_backslash_inside_a_statement_is_an_ordinary_character() -> None:
    stmts = split_checked("SELECT 1\n\\gset\n; SELECT E'\\\\'")
    assert [(s.kind, s.text) for s in stmts] == [
        ("sql", "SELECT 1\n\\gset"),
        ("sql", "SELECT E'\\\\'"),
    ]


# -- encoding details ----------------------------------------------------------------


def test_bom_is_skipped() -> None:
    stmts = split_checked("\ufeffSELECT 1;\nSELECT 2")
    assert [(s.text, s.start, s.line) for s in stmts] == [
        ("SELECT 1", 1, 1),
        ("SELECT 2", 11, 2),
    ]
    assert split_checked("\ufeff\\restrict k\n")[0].text == "\\restrict k"


def test_crlf_line_numbers() -> None:
    sql = "SELECT 1;\r\n\r\n-- c\r\nSELECT\r\n 2;\r\n/* x\r\n */ SELECT 3"
    stmts = split_checked(sql)
    assert [(s.text, s.line) for s in stmts] == [
        ("SELECT 1", 1),
        ("SELECT\r\n 2", 4),
        ("SELECT 3", 7),
    ]


def test_non_ascii_identifiers_and_text() -> None:
    sql = "SELECT été$x, '→;' FROM ŝ; SELECT 2"
    assert texts(sql) == ["SELECT été$x, '→;' FROM ŝ", "SELECT 2"]


# -- errors --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sql", "line", "column", "reason"),
    [
        ("SELECT 1;\nSELECT 'abc;\nSELECT 2;", 2, 8, "unterminated quoted string"),
        ("SELECT 1;\n\n  SELECT E'abc\\';", 3, 10, "unterminated quoted string"),
        ("SELECT ('a''", 1, 9, "unterminated quoted string"),
        ('SELECT 1;\nSELECT "abc;', 2, 8, "unterminated quoted identifier"),
        (
            "SELECT 1;\nSELECT $fn$ body; $f$",
            2,
            8,
            "unterminated dollar-quoted string $fn$",
        ),
        ("SELECT 1;\n/* a /* b */\nSELECT 2;", 2, 1, "unterminated /* comment"),
        ("SELECT 1 /* a /* b */ c", 1, 10, "unterminated /* comment"),
        ("\ufeffSELECT 'x", 1, 8, "unterminated quoted string"),
        (
            "CREATE FUNCTION f() RETURNS int\nBEGIN ATOMIC SELECT 'x; END;",
            2,
            21,
            "unterminated quoted string",
        ),
    ],
)
def test_unterminated_constructs(sql: str, line: int, column: int, reason: str) -> None:
    with pytest.raises(SQLSyntaxError) as err:
        split_statements(sql, origin="schema.sql")
    e = err.value
    assert isinstance(e, ValueError)
    assert (e.line, e.column, e.source) == (line, column, "schema.sql")
    assert str(e) == f"{reason} starting at line {line}, column {column} of schema.sql"


def test_error_without_origin_and_pickling() -> None:
    with pytest.raises(SQLSyntaxError) as err:
        split_statements("\n\nSELECT 'x")
    assert str(err.value) == "unterminated quoted string starting at line 3, column 8"
    assert err.value.source is None
    copy = pickle.loads(pickle.dumps(err.value))
    assert (copy.line, copy.column, copy.source, str(copy)) == (
        3,
        8,
        None,
        str(err.value),
    )


# -- placeholders --------------------------------------------------------------------


def found(sql: str) -> list[tuple[str, str | None, str]]:
    """(kind, name, source slice) of every placeholder found."""
    return [(p.kind, p.name, sql[p.start : p.end]) for p in find_placeholders(sql)]


def test_placeholder_offsets() -> None:
    sql = "SELECT :a, {b}, %s, %(c)s"
    assert find_placeholders(sql) == [
        Placeholder("colon", "a", 7, 9),
        Placeholder("brace", "b", 11, 14),
        Placeholder("percent", None, 16, 18),
        Placeholder("pyformat", "c", 20, 25),
    ]


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("WHERE id=:id AND x IN (:a,:b_2)", [("a", "id"), ("a", "a"), ("a", "b_2")]),
        ('SELECT :v::int, x::text, :w::"T"', [("a", "v"), ("a", "w")]),
        ("SELECT f(x := 1), f(:y)", [("a", "y")]),
        ("SELECT a[1:2], a[lo:hi], a[:n], a[n:], a[b[1]:c]", []),
        ("SELECT a[1 : n], m[1:2][3:4]", []),
        ("SELECT a[(:lo):(:hi)], a[f(:k)]", [("a", "lo"), ("a", "hi"), ("a", "k")]),
        ("SELECT :1, :'quoted', :\"ident\", \\:escaped, x:::y", []),
        ("SELECT :café", [("a", "café")]),
    ],
)
def test_colon_placeholders(sql: str, expected: list[tuple[str, str]]) -> None:
    assert [("a", name) for kind, name, _ in found(sql) if kind == "colon"] == expected
    assert all(kind == "colon" for kind, _, _ in found(sql))


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT ':a {b} %s %(c)s'",
        "SELECT E'\\' :a {b} %s'",
        'SELECT ":a {b} %s"',
        "SELECT $$ :a {b} %s $$, $t$ :a $$ $t$",
        "SELECT 1 -- :a {b} %s\n",
        "SELECT 1 /* :a /* {b} */ %s */",
        "SELECT '{\"k\": 1}'::jsonb, ARRAY['{a}']",
        "SELECT 100 %% 7, '%', x %% y",
        "SELECT {{a}}, {}, {0}, { a }",
    ],
)
def test_no_placeholders(sql: str) -> None:
    assert find_placeholders(sql) == []


def test_brace_and_percent_placeholders() -> None:
    sql = "SELECT {col} FROM {tbl} WHERE a = %s AND b = %(b)s AND c = %b AND d = %(d)t"
    assert found(sql) == [
        ("brace", "col", "{col}"),
        ("brace", "tbl", "{tbl}"),
        ("percent", None, "%s"),
        ("pyformat", "b", "%(b)s"),
        ("percent", None, "%b"),
        ("pyformat", "d", "%(d)t"),
    ]
    assert found("SELECT %%s, %%%s, %(bad name)s, %(x)q") == [("percent", None, "%s")]


def test_placeholders_after_tricky_literals() -> None:
    sql = "SELECT E'\\'', :a, 'x''', :b, $q$'$q$, :c, foo$bar, :d"
    assert [name for _, name, _ in found(sql)] == ["a", "b", "c", "d"]


def test_placeholders_follow_the_lexer_after_a_placeholder() -> None:
    """The "$" after "%b" continues the word "b$$", as the splitter reads it."""
    assert split_statements("SELECT %b$$") != []
    assert found("SELECT %b$$, :a$x$, {c}'x'") == [
        ("percent", None, "%b"),
        ("colon", "a", ":a"),
        ("brace", "c", "{c}"),
    ]


def test_placeholders_unterminated_literal_raises() -> None:
    with pytest.raises(SQLSyntaxError, match="line 2"):
        find_placeholders("SELECT :a,\n'oops :b", origin="q.sql")


# -- speed ---------------------------------------------------------------------------


def _mixed_sql(n: int) -> str:
    """About ``n`` KB of mixed SQL, pg_dump-like (INSERTs, DDL, COPY data)."""
    rows = ",\n".join(
        f"  ({i}, 'name; {i}', E'it\\'s', NULL, '{{a,b}}')" for i in range(6)
    )
    data = "".join(f"{i}\tx;y\t'z'\t\\N\n" for i in range(100))
    chunk = (
        f"INSERT INTO t (a, b, c, d, e) VALUES\n{rows};\n"
        "-- a comment; with a semicolon\n"
        "CREATE FUNCTION f() RETURNS int LANGUAGE plpgsql AS $$ BEGIN RETURN 1; END $$;\n"
        "CREATE TABLE \"s;t\" (id int /* c; /* n */ */, x text DEFAULT '(;');\n"
        f"COPY t (a, b, c, d) FROM stdin;\n{data}\\.\n"
        "SELECT a[1:2], $1, x::int FROM t WHERE y IN (SELECT 1);\n"
    )
    return chunk * (n * 1000 // len(chunk))


def _best_time(sql: str, repeat: int) -> tuple[float, int]:
    """Best CPU time of ``repeat`` splits (robust to busy machines), and the count."""
    best = float("inf")
    count = 0
    for _ in range(repeat):
        t0 = time.process_time()
        count = len(split_statements(sql))
        best = min(best, time.process_time() - t0)
    return best, count


def test_split_time_is_linear() -> None:
    """10x the input takes about 10x the time (the absolute figure is in bench/)."""
    small = _mixed_sql(1000)  # ~1 MB
    large = small * 10  # ~10 MB
    small_s, small_n = _best_time(small, 3)
    large_s, large_n = _best_time(large, 2)
    assert large_n == 10 * small_n
    assert large_s / small_s < 15, (
        f"10x the input took {large_s / small_s:.1f}x the time"
    )


@pytest.mark.parametrize(
    "sql",
    [
        "(" * 100_000,
        "SELECT " + "(a 'x' " * 30_000,
        "SELECT " + "$a" * 100_000,
        "SELECT " + "a$" * 100_000,
        "SELECT " + "1$" * 100_000,
        "SELECT " + "e'x' " * 50_000,
        "CREATE FUNCTION f() BEGIN ATOMIC " + "CASE " * 50_000,
        "COPY t FROM stdin;\n" + "\\.x\n" * 100_000 + "\\.\n",
        "SELECT " + "/* " * 50_000 + "*/ " * 50_000,
        "SELECT " + "-- x\n" * 50_000,
    ],
)
def test_pathological_inputs_stay_fast(sql: str) -> None:
    t0 = time.perf_counter()
    try:
        split_statements(sql)
    except SQLSyntaxError:
        pass
    assert time.perf_counter() - t0 < 2.0


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT '" + "''" * 200_000,
        "SELECT E'" + "\\'" * 200_000,
        "SELECT " + "/*" * 200_000,
    ],
)
def test_pathological_unterminated_inputs_fail_fast(sql: str) -> None:
    t0 = time.perf_counter()
    with pytest.raises(SQLSyntaxError, match="line 1, column 8"):
        split_statements(sql)
    assert time.perf_counter() - t0 < 2.0
