from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import pytest

from macrostrat.utils import cmd, run, split_args

PY = sys.executable


# split_args


def test_split_args_splits_strings_like_a_shell():
    assert split_args("docker compose", "ps --services") == [
        "docker",
        "compose",
        "ps",
        "--services",
    ]


def test_split_args_honours_quotes_in_strings():
    assert split_args("echo 'a b'", '"c d"') == ["echo", "a b", "c d"]


def test_split_args_quotes_may_span_strings():
    # upstream joined all strings before splitting; this is kept
    assert split_args("echo 'a", "b'") == ["echo", "a b"]


def test_split_args_keeps_a_path_as_one_argument(tmp_path: Path):
    path = tmp_path / "dir with spaces" / "file name.txt"
    assert split_args("cat -n", path, "--", "x y") == [
        "cat",
        "-n",
        str(path),
        "--",
        "x",
        "y",
    ]


def test_split_args_does_not_interpret_quotes_in_paths():
    assert split_args("ls", Path("it's here")) == ["ls", "it's here"]


def test_split_args_empty():
    assert split_args() == []
    assert split_args("") == []


@pytest.mark.parametrize("bad", [1, None, b"ls"])
def test_split_args_rejects_other_types(bad):
    with pytest.raises(TypeError, match=r"str or os\.PathLike"):
        split_args("ls", bad)


def test_split_args_unbalanced_quotes():
    with pytest.raises(ValueError, match="quotation"):
        split_args("echo 'oops")


# run


def test_run_passes_arguments_unsplit():
    result = run(
        PY,
        "-c",
        "import sys; print(sys.argv[1])",
        "a b",
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0
    assert result.stdout == "a b\n"


def test_run_logs_the_command_at_debug(caplog: pytest.LogCaptureFixture):
    caplog.set_level(logging.DEBUG, logger="macrostrat.utils.shell")
    run(PY, "-c", "pass", Path("a b"))
    [rec] = [r for r in caplog.records if r.name == "macrostrat.utils.shell"]
    assert rec.levelno == logging.DEBUG
    assert rec.getMessage() == f"Running: {PY} -c pass 'a b'"


def test_run_uses_a_given_logger(caplog: pytest.LogCaptureFixture):
    logger = logging.getLogger("macrostrat_utils_tests.run")
    caplog.set_level(logging.DEBUG, logger=logger.name)
    run(PY, "-c", "pass", logger=logger)
    assert [r.name for r in caplog.records] == [logger.name]


def test_run_does_not_check_by_default():
    assert run(PY, "-c", "raise SystemExit(3)").returncode == 3


def test_run_is_quiet(capfd: pytest.CaptureFixture[str]):
    run(PY, "-c", "pass")
    assert capfd.readouterr() == ("", "")


# cmd


def test_cmd_collects_string_fragments(tmp_path: Path):
    script = tmp_path / "argv.py"
    script.write_text("import sys; print(sys.argv[1:])")
    result = cmd(f"{PY} {script}", "ps --services", capture_output=True, text=True)
    assert result.stdout.strip() == "['ps', '--services']"
    assert result.args == (PY, str(script), "ps", "--services")


def test_cmd_keeps_paths_with_spaces_together(tmp_path: Path):
    target = tmp_path / "a dir" / "my file.txt"
    target.parent.mkdir()
    target.write_text("content")
    result = cmd("cat", target, capture_output=True, text=True, check=True)
    assert result.stdout == "content"


def test_cmd_shell_passes_the_command_line_through(tmp_path: Path):
    result = cmd(
        "echo $MU_VALUE | tr a-z A-Z",
        shell=True,
        capture_output=True,
        text=True,
        env={"MU_VALUE": "shout", "PATH": "/usr/bin:/bin"},
    )
    assert result.stdout == "SHOUT\n"


def test_cmd_collect_args_false_passes_arguments_through():
    result = cmd(
        PY,
        "-c",
        "import sys; print(sys.argv[1])",
        "a b",
        collect_args=False,
        capture_output=True,
        text=True,
    )
    assert result.stdout == "a b\n"


def test_cmd_does_not_check_by_default():
    assert cmd(f"{PY} -c 'raise SystemExit(2)'").returncode == 2


def test_cmd_check_raises():
    with pytest.raises(subprocess.CalledProcessError) as info:
        cmd(f"{PY} -c 'raise SystemExit(2)'", check=True)
    assert info.value.returncode == 2


def test_cmd_passes_cwd(tmp_path: Path):
    result = cmd(
        PY,
        "-c 'import os; print(os.getcwd())'",
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert Path(result.stdout.strip()) == tmp_path.resolve()


def test_cmd_logs_the_command_at_debug(caplog: pytest.LogCaptureFixture):
    caplog.set_level(logging.DEBUG, logger="macrostrat.utils.shell")
    cmd(f"{PY} -c pass", Path("a b"))
    assert [r.getMessage() for r in caplog.records] == [f"Running: {PY} -c pass 'a b'"]
    assert caplog.records[0].levelno == logging.DEBUG


def test_cmd_missing_program():
    with pytest.raises(FileNotFoundError):
        cmd("macrostrat-utils-no-such-program --help")
