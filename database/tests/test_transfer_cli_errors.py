"""The transfer command line's mistakes: a short message and an exit status, no traceback.

Usage errors (a missing dump file or output directory, a URL that cannot be
parsed, a binary dump to a terminal) exit with status 2 before anything
runs; failures (an unreachable server) print ``Error: …`` and exit with
status 1; ``--verbose`` adds the traceback.
"""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from macrostrat.database.transfer.cli import PROGRAM, create_cli, main

runner = CliRunner()
UNREACHABLE = "postgresql://nobody:secret@127.0.0.1:1/nothing"


def flat(text: str) -> str:
    """Text with Rich's boxes and line wrapping removed."""
    for box in "│╭╮╰╯─":
        text = text.replace(box, " ")
    return " ".join(text.split())


def no_traceback(result) -> None:
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_restore_of_a_missing_dump_file(in_tmp):
    result = runner.invoke(create_cli(), ["restore", "missing.dump", "-d", UNREACHABLE])
    assert result.exit_code == 2
    assert "DUMPFILE: missing.dump does not exist" in flat(result.stderr)
    no_traceback(result)


def test_restore_to_an_unreachable_server(in_tmp):
    (in_tmp / "data.sql").write_text("SELECT 1;\n")
    result = runner.invoke(create_cli(), ["restore", "data.sql", "-d", UNREACHABLE])
    assert result.exit_code == 1, result.output
    assert result.stderr.startswith("Error: connection failed")
    assert "Connection refused" in result.stderr
    assert "secret" not in result.output
    no_traceback(result)


def test_move_from_an_unreachable_server():
    result = runner.invoke(
        create_cli(),
        ["move", "-d", UNREACHABLE, "-n", "public", "postgresql://u@127.0.0.1:1/to"],
    )
    assert result.exit_code == 1, result.output
    assert result.stderr.startswith("Error: ")
    assert "Connection refused" in result.stderr
    assert "secret" not in result.output
    no_traceback(result)


def test_dump_into_a_missing_directory_touches_no_server(in_tmp):
    result = runner.invoke(
        create_cli(), ["dump", "no/such/dir/out.dump", "-d", UNREACHABLE]
    )
    assert result.exit_code == 2, result.output  # not 1: the server was not asked
    assert "DUMPFILE: directory no/such/dir does not exist" in flat(result.stderr)
    no_traceback(result)


def test_dump_onto_a_directory(in_tmp):
    (in_tmp / "dumps").mkdir()
    result = runner.invoke(create_cli(), ["dump", "dumps", "-d", UNREACHABLE])
    assert result.exit_code == 2, result.output
    assert "DUMPFILE: dumps is a directory; give a file name" in flat(result.stderr)
    assert list((in_tmp / "dumps").iterdir()) == []
    assert [p.name for p in in_tmp.iterdir()] == ["dumps"]  # no partial file
    no_traceback(result)


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["dump", "out.dump", "-d", "not a url"], "--database"),
        (["restore", "in.sql", "-d", "not a url"], "--database"),
        (["move", "-d", UNREACHABLE, "-n", "public", "not a url"], "TARGET"),
    ],
    ids=["dump", "restore", "move"],
)
def test_a_url_that_cannot_be_parsed(in_tmp, args, option):
    (in_tmp / "in.sql").write_text("SELECT 1;\n")
    result = runner.invoke(create_cli(), args)
    assert result.exit_code == 2, result.output
    assert f"Invalid value for {option}: not a database URL" in flat(result.stderr)
    no_traceback(result)


def test_verbose_shows_the_traceback(in_tmp, capsys):
    (in_tmp / "data.sql").write_text("SELECT 1;\n")
    with pytest.raises(SystemExit) as quiet:
        main(["restore", "data.sql", "-d", UNREACHABLE])
    assert quiet.value.code == 1
    assert "Traceback" not in capsys.readouterr().err
    with pytest.raises(SystemExit) as verbose:
        main(["--verbose", "restore", "data.sql", "-d", UNREACHABLE])
    assert verbose.value.code == 1
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err
    assert "Error: connection failed" in err


def _run_on_a_terminal(
    argv: list[str], *, stderr_on_terminal: bool, cwd: Path
) -> tuple[int, bytes, bytes]:
    """Run ``argv`` with standard output on a pseudo-terminal.

    Returns the exit status, what reached the terminal, and standard error
    (empty when it goes to the terminal too).
    """
    controller, terminal = pty.openpty()
    process = subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=terminal,
        stderr=terminal if stderr_on_terminal else subprocess.PIPE,
        env={**os.environ, "COLUMNS": "200", "NO_COLOR": "1"},
        cwd=cwd,
    )
    os.close(terminal)
    screen, errors = bytearray(), bytearray()
    streams = [controller] + ([] if stderr_on_terminal else [process.stderr.fileno()])
    deadline = time.monotonic() + 120
    while streams and time.monotonic() < deadline:
        ready, _, _ = select.select(streams, [], [], 0.5)
        for fd in ready:
            try:
                data = os.read(fd, 65536)
            except OSError:  # the terminal closed (EIO)
                data = b""
            if not data:
                streams.remove(fd)
            elif fd == controller:
                screen += data
            else:
                errors += data
    os.close(controller)
    return process.wait(timeout=60), bytes(screen), bytes(errors)


def test_a_binary_dump_is_not_written_to_a_terminal(empty_database_url, tmp_path):
    program = str(Path(sys.executable).parent / PROGRAM)
    status, screen, errors = _run_on_a_terminal(
        [program, "dump", "-d", empty_database_url],
        stderr_on_terminal=False,
        cwd=tmp_path,
    )
    assert status == 2, errors.decode()
    assert screen == b""
    message = flat(errors.decode())
    assert "refusing to write a custom-format (binary) dump to the terminal" in message
    assert "Traceback" not in message


def test_a_plain_dump_on_a_terminal_carries_no_progress_bar(
    empty_database_url, tmp_path
):
    program = str(Path(sys.executable).parent / PROGRAM)
    status, screen, _ = _run_on_a_terminal(
        [program, "dump", "--plain", "-d", empty_database_url],
        stderr_on_terminal=True,
        cwd=tmp_path,
    )
    assert status == 0, screen[-2000:].decode(errors="replace")
    assert b"PostgreSQL database dump complete" in screen
    assert b"pg_dump to stdout" not in screen  # the progress bar's label


def test_a_dump_sharing_its_stream_with_stderr_carries_no_progress(
    empty_database_url, tmp_path
):
    """`&> file`: progress logged on standard error would land in the dump."""
    logging_on = (
        "import logging, sys; logging.basicConfig(level=logging.INFO); "
        "from macrostrat.database.transfer.cli import main; main(sys.argv[1:])"
    )
    out = tmp_path / "both.sql"
    argv = [sys.executable, "-c", logging_on, "dump", "--plain"]
    with out.open("wb") as both:
        done = subprocess.run(
            [*argv, "-d", empty_database_url],
            stdout=both,
            stderr=both,
            timeout=120,
            check=False,
        )
    assert done.returncode == 0
    text = out.read_text()
    assert "PostgreSQL database dump complete" in text
    assert "pg_dump to stdout" not in text  # the progress report's label
