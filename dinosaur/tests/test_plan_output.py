"""How ``dinosaur plan`` prints a plan: plain when piped, highlighted on a terminal.

Piped or redirected output (and ``NO_COLOR``) is `format_plan`'s text byte for
byte; on a terminal (a real pty, or Rich forced to one) the same characters
come with ANSI styles.
"""

from __future__ import annotations

import os
import pty
import re
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
from typer.testing import CliRunner

from macrostrat.dinosaur import AutoMigration
from macrostrat.dinosaur.cli import EXIT_UNSAFE, create_cli, highlighted_plan
from macrostrat.dinosaur.diff import conninfo, format_plan

ANSI = re.compile(r"\x1b\[[0-9;]*m")

LIVE = (
    "CREATE TYPE mood AS ENUM ('ok');"
    "CREATE TABLE t (id int PRIMARY KEY, x int, gone int, m mood);"
)
TARGET = (
    "CREATE TYPE mood AS ENUM ('ok', 'new');"
    "CREATE TABLE t (id int PRIMARY KEY, x int, m mood DEFAULT 'new');"
    "CREATE INDEX t_x_idx ON t (x);"
)


@pytest.fixture
def databases(database_url: str, database_template: str):
    """(live URL, target URL, the plan's plain text) for a plan with every style."""
    from macrostrat.dinosaur.testing import clone_database

    with (
        clone_database(database_url, database_template) as live,
        clone_database(database_url, database_template) as target,
    ):
        for url, script in ((live, LIVE), (target, TARGET)):
            with psycopg.connect(conninfo(url), autocommit=True) as conn:
                conn.execute(script)  # type: ignore[arg-type]
        m = AutoMigration(live, target)
        m.add_all_changes()
        yield live, target, format_plan(m.plan)


def clean_env(**extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("NO_COLOR", "FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE")
    }
    env.update(extra)
    return env


def test_the_plan_has_every_kind_of_line(databases):
    _, _, plain = databases
    assert "-- UNSAFE DELETES_DATA" in plain
    assert "-- note IMPACTS_DATABASE_PERFORMANCE" in plain
    assert "-- runs before the transaction, committed on its own\nalter type" in plain


def test_piped_output_is_format_plan_byte_for_byte(databases, monkeypatch):
    live, target, plain = databases
    for name in ("NO_COLOR", "FORCE_COLOR", "TTY_COMPATIBLE"):
        monkeypatch.delenv(name, raising=False)
    result = CliRunner().invoke(
        create_cli(), ["plan", "--database", live, "--target", target]
    )
    assert result.exit_code == EXIT_UNSAFE, result.output
    assert result.stdout == plain
    assert "\x1b[" not in result.stdout


def test_no_color_wins_over_a_forced_terminal(databases):
    live, target, plain = databases
    result = CliRunner().invoke(
        create_cli(),
        ["plan", "--database", live, "--target", target],
        env={"FORCE_COLOR": "1", "TTY_COMPATIBLE": "1", "NO_COLOR": "1"},
    )
    assert result.exit_code == EXIT_UNSAFE, result.output
    assert result.stdout == plain


def test_a_forced_terminal_highlights_the_same_text(databases):
    live, target, plain = databases
    result = CliRunner().invoke(
        create_cli(),
        ["plan", "--database", live, "--target", target],
        env={"FORCE_COLOR": "1", "TTY_COMPATIBLE": "1", "NO_COLOR": ""},
    )
    assert result.exit_code == EXIT_UNSAFE, result.output
    assert "\x1b[" in result.stdout
    assert ANSI.sub("", result.stdout) == plain
    # an unsafe hazard's line is red as a whole
    assert re.search(r"\x1b\[[0-9;]*31[0-9;]*m-- UNSAFE DELETES_DATA", result.stdout)


def test_a_real_terminal_gets_highlighted_sql(databases):
    live, target, plain = databases
    program = Path(sys.executable).parent / "dinosaur"
    leader, follower = pty.openpty()
    try:
        proc = subprocess.Popen(
            [str(program), "plan", "--database", live, "--target", target],
            stdin=subprocess.DEVNULL,
            stdout=follower,
            stderr=subprocess.PIPE,
            env=clean_env(TERM="xterm-256color", COLUMNS="200"),
        )
    finally:
        os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # EIO: the program closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == EXIT_UNSAFE, err.decode()
    out = b"".join(chunks).decode().replace("\r\n", "\n")
    assert "\x1b[" in out
    assert ANSI.sub("", out) == plain


ODD_TEXT = [
    pytest.param(["CREATE TABLE t (\tid int,\n\tx text\t)"], id="tabs"),
    pytest.param(["SELECT 'a\tb',\t1;"], id="tab-in-a-literal"),
    pytest.param(
        [
            "CREATE FUNCTION f() RETURNS int LANGUAGE plpgsql AS $$\nBEGIN\n"
            "\tRETURN 1;   \n  \nEND $$;   "
        ],
        id="dollar-body-trailing-spaces",
    ),
    pytest.param(
        ["COMMENT ON TABLE t IS 'épaisseur 漢字 \u00a0 🦕';", "SELECT '\u200b'"],
        id="unicode",
    ),
    pytest.param(
        ["CREATE FUNCTION g() RETURNS text LANGUAGE sql AS $f$\r\nSELECT 'a'\r\n$f$"],
        id="carriage-returns",
    ),
    pytest.param(["\ufeffSELECT 'x\x0by\x0cz\x07'"], id="bom-and-control"),
]


@pytest.mark.parametrize("statements", ODD_TEXT)
def test_highlighted_plan_keeps_the_text_of_any_plan(statements):
    from macrostrat.dinosaur import classify_statements

    plan = classify_statements(
        [
            "CREATE FUNCTION f() RETURNS int LANGUAGE sql AS $$ SELECT 1 -- x\n$$;",
            "CREATE INDEX CONCURRENTLY i ON t (x)",
            *statements,
            "alter table t add constraint c check (y ~ '^a') not valid;",
        ]
    )
    text = highlighted_plan(plan)
    assert text.plain == format_plan(plan)
    assert text.spans  # styled
    # the last statement keeps its end (a tab expanded by the highlighter
    # used to push it off)
    assert text.plain.endswith("not valid;\n\n")


@pytest.mark.parametrize("statements", ODD_TEXT)
def test_a_terminal_gets_the_same_characters(statements, monkeypatch, capsys):
    """Printed on a terminal, tabs are not expanded nor anything stripped."""
    from macrostrat.dinosaur import classify_statements
    from macrostrat.dinosaur.cli import _print_plan

    monkeypatch.setenv("FORCE_COLOR", "1")
    monkeypatch.setenv("TTY_COMPATIBLE", "1")
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("COLUMNS", "20")  # narrower than the lines: no wrapping
    plan = classify_statements([*statements, "DROP TABLE gone"])
    _print_plan(plan)
    out = capsys.readouterr().out
    assert "\x1b[" in out
    assert ANSI.sub("", out) == format_plan(plan)
