"""Property-based tests for the PostgreSQL statement splitter (hypothesis).

Statements are generated from a grammar of atoms that are hard for splitters
(quoted text, comments and dollar bodies holding ``;``, parentheses holding ``;``,
BEGIN ATOMIC bodies, COPY data, psql meta-commands), joined with ``;`` and random
trivia.  Properties: lossless offsets, exact texts (so the count too), stability
under re-splitting and re-joining, no top-level ``;`` inside a statement, and that
placeholders are found only in code.
"""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from macrostrat.database._sql import (
    SQLSyntaxError,
    Statement,
    find_placeholders,
    split_statements,
)

# Modest by default so the file runs in a few seconds; raise max_examples locally
# (or with a hypothesis profile) for a deeper search.
SETTINGS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)

# Words that steer the splitter (or psql) are kept out of generated identifiers.
_RESERVED = {
    "begin",
    "atomic",
    "case",
    "end",
    "as",
    "from",
    "stdin",
    "copy",
    "create",
    "e",
}

# Text that must be inert inside literals and comments (no comment or quote closers:
# each strategy adds only what its construct tolerates).
_HOSTILE = [";", " ", "x", "--", "$$", "$a$", ":p", "%s", "{b}", "(", ")", "\\", "é"]


def _pieces(extra: list[str], max_size: int = 6) -> st.SearchStrategy[str]:
    return st.lists(st.sampled_from(_HOSTILE + extra), max_size=max_size).map("".join)


identifiers = (
    st.tuples(
        st.sampled_from("abcEeUuXz_"),
        st.text(alphabet="abxyz019_$É", max_size=5),
    )
    .map("".join)
    .filter(lambda s: s.lower() not in _RESERVED)
)
quoted_identifiers = _pieces(["'", '""', "/*", "*/"]).map(lambda s: f'"{s}"')
strings = _pieces(['"', "''", "/*", "*/"]).map(lambda s: f"'{s}'")
prefixed_strings = st.tuples(
    st.sampled_from(["U&", "N", "B", "X", "u&"]), _pieces(['"', "''"])
).map(lambda t: f"{t[0]}'{t[1]}'")


@st.composite
def e_strings_exact(draw: st.DrawFn) -> str:
    """E'…' whose backslashes always come in complete escape pairs."""
    body = draw(
        st.lists(
            st.sampled_from(["\\'", "\\\\", "''", ";", "x", '"', "/*", "--", "$$"])
        )
    )
    return f"{draw(st.sampled_from(['E', 'e']))}'{''.join(body)}'"


@st.composite
def dollar_quotes(draw: st.DrawFn) -> str:
    """$tag$…$tag$ with other tags, quotes and comment openers inside."""
    tag = draw(st.sampled_from(["", "a", "fn", "_x1", "é", "A"]))
    delim = f"${tag}$"
    others = [d for d in ("$$", "$a$", "$fn$", "$b$", "$A$") if d != delim]
    body = draw(
        st.lists(st.sampled_from([*others, ";", "'", '"', "--", "/*", "x", "\n"]))
    )
    # "x" between pieces keeps two tags from forming the delimiter ("$a$" "$$")
    return f"{delim}{'x'.join(body)}{delim}"


@st.composite
def block_comments(draw: st.DrawFn, depth: int = 0) -> str:
    """Nested /* … */ holding ; quotes and dollars."""
    parts = draw(st.lists(st.sampled_from([";", "'", '"', "$$", "--", "x", "\n"])))
    inner = "".join(parts)
    if depth < 2 and draw(st.booleans()):
        inner += draw(block_comments(depth + 1)) + "y"
    return f"/* {inner} */"


line_comments = _pieces(["'", '"', "/*", "*/"]).map(lambda s: f"-- {s}\n")

plain_atoms = st.one_of(
    identifiers,
    quoted_identifiers,
    strings,
    prefixed_strings,
    e_strings_exact(),
    dollar_quotes(),
    st.sampled_from(
        ["1", "2.5", "$1", "::int", "+", "-", "*", "/", "<>", "a[1:2]", "%%"]
    ),
)


@st.composite
def parenthesised(draw: st.DrawFn) -> str:
    """( atoms ; atoms ) as in CREATE RULE … DO ALSO (…; …)."""
    groups = draw(st.lists(st.lists(plain_atoms, min_size=1, max_size=3), max_size=3))
    return "(" + " ; ".join(" ".join(g) for g in groups) + ")"


atoms = st.one_of(plain_atoms, parenthesised())
inner_separators = st.one_of(
    st.sampled_from([" ", "\n", "\t", " \r\n "]),
    block_comments().map(lambda c: f" {c} "),
    line_comments.map(lambda c: f" {c}"),
)


@st.composite
def token_run(draw: st.DrawFn, head: str) -> str:
    """``head`` then atoms, separated by blanks or comments; ends with a token."""
    out = head
    for atom in draw(st.lists(atoms, max_size=5)):
        out += draw(inner_separators) + atom
    return out


@dataclass
class Gen:
    """A generated statement: how it is written and what the splitter must return."""

    kind: str
    text: str
    data: str | None = None

    def render(self, terminate: bool) -> str:
        """The statement as written in a file (meta and COPY always terminated)."""
        if self.kind == "meta":
            return self.text + "\n"
        if self.kind == "copy_in":
            return f"{self.text};\n{self.data}\\.\n"
        return self.text + (";" if terminate else "")


heads = st.sampled_from(["SELECT", "insert", "UPDATE", "ALTER", "DO", "VALUES", "WITH"])


@st.composite
def plain_statements(draw: st.DrawFn) -> Gen:
    return Gen("sql", draw(token_run(draw(heads))))


@st.composite
def atomic_routines(draw: st.DrawFn) -> Gen:
    """CREATE FUNCTION … BEGIN ATOMIC body; …; END with CASE … END inside."""
    head = draw(
        st.sampled_from(
            [
                "CREATE FUNCTION f() RETURNS int LANGUAGE sql",
                "create or replace procedure p()",
                "CREATE OR REPLACE FUNCTION s.f(a int) RETURNS SETOF t",
            ]
        )
    )
    case = "CASE WHEN a THEN 'x;' ELSE CASE WHEN b THEN 1 END END"
    body = [
        draw(token_run(draw(st.sampled_from(["SELECT", "INSERT INTO t VALUES"]))))
        + draw(
            st.sampled_from(
                ["", " " + case, " AS end", " t.end", " (CASE WHEN c THEN 2 END)"]
            )
        )
        for _ in range(draw(st.integers(0, 3)))
    ]
    sep = draw(inner_separators)
    text = f"{head}{sep}BEGIN{sep}ATOMIC" + "".join(f" {b};" for b in body) + " END"
    return Gen("sql", text)


copy_rows = st.lists(
    st.text(alphabet=st.sampled_from(list("ab1\t;'\"$-/*\\. ")), max_size=12).filter(
        lambda r: r not in ("\\.", "\\.\r")
    ),
    max_size=4,
)


@st.composite
def copy_statements(draw: st.DrawFn) -> Gen:
    head = draw(st.sampled_from(["COPY t", "copy s.t (a, b)", 'COPY "x;y"']))
    tail = draw(
        st.sampled_from(
            ["FROM stdin", "FROM STDIN WITH (FORMAT csv)", "from /* c */ Stdin"]
        )
    )
    rows = draw(copy_rows)
    return Gen("copy_in", f"{head} {tail}", "".join(r + "\n" for r in rows))


meta_statements = st.sampled_from(
    ["\\restrict Zx9", "\\unrestrict Zx9", "\\connect db", "\\set ON_ERROR_STOP on"]
).map(lambda t: Gen("meta", t))

statements = st.one_of(
    plain_statements(),
    plain_statements(),
    atomic_routines(),
    copy_statements(),
    meta_statements,
)
trivia = st.lists(
    st.one_of(
        st.sampled_from([" ", "\n", "\t", "\r\n", ";", " ; "]),
        block_comments(),
        line_comments,
    ),
    max_size=3,
).map("".join)


@st.composite
def scripts(draw: st.DrawFn) -> tuple[str, list[Gen]]:
    """A whole script and the statements it holds."""
    gens = draw(st.lists(statements, max_size=6))
    out = draw(st.sampled_from(["", "\ufeff"])) + draw(trivia)
    for i, g in enumerate(gens):
        terminate = i < len(gens) - 1 or draw(st.booleans())
        out += g.render(terminate)
        if not terminate:  # keep "-" + "--" from becoming one comment
            out += "\n"
        out += draw(trivia)
    return out, gens


def render_all(stmts: list[Statement]) -> str:
    """Join split statements back into a script."""
    return "\n".join(Gen(s.kind, s.text, s.data).render(terminate=True) for s in stmts)


def assert_lossless(source: str, stmts: list[Statement]) -> None:
    """Offsets reproduce the input: slices match, are ordered, and gaps are trivia."""
    pos = 0
    pieces: list[str] = []

    def gap_until(offset: int) -> None:
        gap = source[pos:offset]
        assert split_statements(gap.removeprefix("\ufeff") if pos == 0 else gap) == []
        pieces.append(gap)

    for s in stmts:
        assert pos <= s.start < s.end
        assert source[s.start : s.end] == s.text
        assert s.line == source.count("\n", 0, s.start) + 1
        gap_until(s.start)
        pieces.append(s.text)
        pos = s.end
        if s.data is not None:
            assert s.data_start is not None
            assert s.data_end is not None
            assert source[s.data_start : s.data_end] == s.data
            gap_until(s.data_start)
            pieces.append(s.data)
            terminator = source[s.data_end :].split("\n", 1)[0]
            assert terminator in ("\\.", "\\.\r")
            pieces.append(terminator)
            pos = s.data_end + len(terminator)
    gap_until(len(source))
    assert "".join(pieces) == source


@SETTINGS
@given(scripts())
def test_split_is_exact_and_lossless(script: tuple[str, list[Gen]]) -> None:
    source, gens = script
    stmts = split_statements(source)
    assert [(s.kind, s.text, s.data) for s in stmts] == [
        (g.kind, g.text, g.data) for g in gens
    ]
    assert_lossless(source, stmts)


@SETTINGS
@given(scripts())
def test_split_is_stable(script: tuple[str, list[Gen]]) -> None:
    stmts = split_statements(script[0])
    again = split_statements(render_all(stmts))
    assert [(s.kind, s.text, s.data) for s in again] == [
        (s.kind, s.text, s.data) for s in stmts
    ]


@SETTINGS
@given(st.one_of(plain_statements(), atomic_routines()))
def test_no_top_level_semicolon_inside_a_statement(gen: Gen) -> None:
    """Re-splitting one statement's text yields exactly that statement."""
    (only,) = split_statements(gen.text)
    assert (only.text, only.start, only.end) == (gen.text, 0, len(gen.text))
    assert split_statements(gen.text + ";") == [only]


placeholder_atoms = st.sampled_from([":p", "{b}", "%s", "%(n)s", ":q"])


@SETTINGS
@given(st.lists(st.one_of(plain_atoms, placeholder_atoms), max_size=8), st.data())
def test_placeholders_are_found_only_in_code(
    parts: list[str], data: st.DataObject
) -> None:
    text = "SELECT"
    expected: list[str] = []
    for part in parts:
        text += data.draw(inner_separators)
        if part in (":p", "{b}", "%s", "%(n)s", ":q"):
            expected.append(part)
        text += part
    got = find_placeholders(text)
    assert [text[p.start : p.end] for p in got] == expected


sql_alphabet = st.sampled_from(
    [
        *"ab eE$1;'\"()-/*\\\n\r.:[]{}%\tUu&",
        *("$$", "$a$", "--", "/*", "*/", "BEGIN ATOMIC", "END", "CASE"),
        *("COPY x FROM stdin", "CREATE FUNCTION f() ", "\\.\n", "\ufeff"),
    ]
)


@settings(max_examples=200, deadline=None)
@given(st.lists(sql_alphabet, max_size=40).map("".join))
def test_arbitrary_text_splits_or_raises_sqlsyntaxerror(source: str) -> None:
    error: SQLSyntaxError | None = None
    try:
        stmts = split_statements(source, origin="fuzz.sql")
    except SQLSyntaxError as err:
        error = err
    if error is not None:
        assert 1 <= error.line <= source.count("\n") + 1
        assert error.column >= 1
        assert error.source == "fuzz.sql"
        return
    assert_lossless(source, stmts)
    for s in stmts:
        assert s.text == s.text.strip(" \t\n\r\f\v")
        if s.kind == "sql":
            find_placeholders(s.text)  # statements are well formed: never raises
