from __future__ import annotations

import io
import logging
import re
import sys
from pathlib import Path

import pytest

from macrostrat.utils import get_logger, setup_stderr_logs, suppress_loggers
from macrostrat.utils.logs import SparrowLogFormatter, console_handler

ANSI = re.compile(r"\x1b\[[0-9;]*m")


def plain(text: str) -> str:
    return ANSI.sub("", text)


def record(name: str, level: int, message: str) -> logging.LogRecord:
    return logging.LogRecord(name, level, __file__, 1, message, None, None)


# get_logger


def test_get_logger_returns_the_standard_logger(logger_name: str):
    assert get_logger(logger_name) is logging.getLogger(logger_name)
    assert get_logger() is logging.getLogger()


def test_get_logger_does_not_set_a_level_by_default(logger_name: str):
    assert get_logger(logger_name).level == logging.NOTSET


def test_get_logger_leaves_the_root_level_alone(root_logger: logging.Logger):
    root_logger.setLevel(logging.WARNING)
    get_logger()
    assert root_logger.level == logging.WARNING


def test_get_logger_keeps_an_existing_level(logger_name: str):
    logging.getLogger(logger_name).setLevel(logging.ERROR)
    assert get_logger(logger_name).level == logging.ERROR


@pytest.mark.parametrize("level", [logging.INFO, "INFO"])
def test_get_logger_sets_an_explicit_level(logger_name: str, level):
    assert get_logger(logger_name, level=level).level == logging.INFO


def test_get_logger_does_not_add_the_same_handler_twice(logger_name: str):
    handler = logging.NullHandler()
    get_logger(logger_name, handler=handler)
    logger = get_logger(logger_name, handler=handler)
    assert logger.handlers == [handler]


def test_get_logger_skips_an_equivalent_stream_handler(logger_name: str):
    stream = io.StringIO()
    first = logging.StreamHandler(stream)
    get_logger(logger_name, handler=first)
    logger = get_logger(logger_name, handler=logging.StreamHandler(stream))
    assert logger.handlers == [first]
    logger.warning("once")
    assert stream.getvalue() == "once\n"


def test_get_logger_skips_an_equivalent_file_handler(logger_name: str, tmp_path: Path):
    path = tmp_path / "log.txt"
    handlers = [logging.FileHandler(path, delay=True) for _ in range(2)]
    for handler in handlers:
        get_logger(logger_name, handler=handler)
    assert logging.getLogger(logger_name).handlers == handlers[:1]


def test_get_logger_adds_handlers_with_different_targets(logger_name: str):
    first = logging.StreamHandler(io.StringIO())
    second = logging.StreamHandler(io.StringIO())
    third = logging.StreamHandler(first.stream)
    third.setLevel(logging.ERROR)
    for handler in (first, second, third):
        get_logger(logger_name, handler=handler)
    assert logging.getLogger(logger_name).handlers == [first, second, third]


def test_library_loggers_are_quiet_by_default(capsys: pytest.CaptureFixture[str]):
    logging.getLogger("macrostrat.utils.shell").warning("should not print")
    assert capsys.readouterr() == ("", "")


# SparrowLogFormatter and console_handler


def test_formatter_format(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    text = SparrowLogFormatter().format(record("my.app", logging.DEBUG, "hello"))
    assert plain(text) == "my.app:    hello"
    assert text.startswith("\x1b[36m")  # cyan for DEBUG


@pytest.mark.parametrize(
    ("level", "code"),
    [
        (logging.INFO, "\x1b[32m"),
        (logging.WARNING, "\x1b[33m"),
        (logging.ERROR, "\x1b[31m"),
        (logging.CRITICAL, "\x1b[31m\x1b[47m"),
    ],
)
def test_formatter_level_colours(monkeypatch: pytest.MonkeyPatch, level, code):
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    assert SparrowLogFormatter().format(record("x", level, "m")).startswith(code)


def test_formatter_honours_no_color(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("NO_COLOR", "1")
    text = SparrowLogFormatter().format(record("x", logging.INFO, "m"))
    assert text == "x:    m"


def test_formatter_accepts_a_format(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("NO_COLOR", "1")
    formatter = SparrowLogFormatter("%(levelname)s %(message)s")
    assert formatter.format(record("x", logging.INFO, "m")) == "INFO m"


def test_console_handler_writes_to_current_stderr(
    logger_name: str, capsys: pytest.CaptureFixture[str]
):
    assert isinstance(console_handler, logging.StreamHandler)
    assert isinstance(console_handler.formatter, SparrowLogFormatter)
    logger = get_logger(logger_name, level=logging.INFO, handler=console_handler)
    logger.info("to stderr")
    out, err = capsys.readouterr()
    assert out == ""
    assert plain(err) == f"{logger_name}:    to stderr\n"


def test_console_handler_stream_cannot_be_replaced():
    with pytest.raises(AttributeError):
        console_handler.setStream(io.StringIO())  # type: ignore[attr-defined]


# setup_stderr_logs


def test_setup_stderr_logs_prints_to_stderr(
    logger_name: str, capsys: pytest.CaptureFixture[str]
):
    setup_stderr_logs(logger_name)
    logging.getLogger(logger_name).debug("details")
    out, err = capsys.readouterr()
    assert out == ""
    assert plain(err) == f"{logger_name}:    details\n"


def test_setup_stderr_logs_lowers_the_level_only_when_needed(logger_name: str):
    logger = logging.getLogger(logger_name)
    setup_stderr_logs(logger_name, level=logging.INFO)
    assert logger.getEffectiveLevel() == logging.INFO
    logger.setLevel(logging.DEBUG)
    setup_stderr_logs(logger_name, level=logging.WARNING)
    assert logger.level == logging.DEBUG


def test_setup_stderr_logs_handler_level_filters(
    logger_name: str, capsys: pytest.CaptureFixture[str]
):
    setup_stderr_logs(logger_name, level="WARNING")
    logger = logging.getLogger(logger_name)
    logger.setLevel(logging.DEBUG)
    logger.info("hidden")
    logger.warning("shown")
    assert plain(capsys.readouterr().err) == f"{logger_name}:    shown\n"


def test_setup_stderr_logs_does_not_stack_handlers(
    logger_name: str, capsys: pytest.CaptureFixture[str]
):
    for _ in range(3):
        setup_stderr_logs(logger_name)
    logger = logging.getLogger(logger_name)
    assert len(logger.handlers) == 1
    logger.info("once")
    assert plain(capsys.readouterr().err) == f"{logger_name}:    once\n"


def test_setup_stderr_logs_replaces_other_stderr_handlers(logger_name: str):
    logger = logging.getLogger(logger_name)
    logger.addHandler(logging.StreamHandler(sys.stderr))
    logger.addHandler(logging.StreamHandler(sys.__stderr__))
    setup_stderr_logs(logger_name)
    assert len(logger.handlers) == 1
    assert logger.handlers[0] is not console_handler


def test_setup_stderr_logs_keeps_other_handlers(logger_name: str, tmp_path: Path):
    logger = logging.getLogger(logger_name)
    captured = logging.StreamHandler(io.StringIO())
    to_file = logging.FileHandler(tmp_path / "log.txt", delay=True)
    logger.addHandler(captured)
    logger.addHandler(to_file)
    setup_stderr_logs(logger_name)
    setup_stderr_logs(logger_name)
    assert logger.handlers[:2] == [captured, to_file]
    assert len(logger.handlers) == 3


def test_setup_stderr_logs_several_names(logger_name: str):
    other = f"{logger_name}_other"
    try:
        setup_stderr_logs(logger_name, other)
        first = logging.getLogger(logger_name).handlers
        second = logging.getLogger(other).handlers
        assert len(first) == len(second) == 1
    finally:
        logging.getLogger(other).handlers.clear()
        logging.getLogger(other).setLevel(logging.NOTSET)


def test_setup_stderr_logs_without_names_does_nothing(root_logger: logging.Logger):
    handlers, level = list(root_logger.handlers), root_logger.level
    setup_stderr_logs()
    assert root_logger.handlers == handlers
    assert root_logger.level == level


def test_setup_stderr_logs_root_keeps_caplog(
    root_logger: logging.Logger, caplog: pytest.LogCaptureFixture
):
    setup_stderr_logs("", level=logging.INFO)
    logging.getLogger("some.library").info("captured")
    assert caplog.handler in root_logger.handlers
    assert "captured" in caplog.messages


# suppress_loggers


def test_suppress_loggers_hides_and_restores(
    logger_name: str, caplog: pytest.LogCaptureFixture
):
    logger = logging.getLogger(logger_name)
    caplog.set_level(logging.DEBUG)
    with suppress_loggers(logger_name):
        assert logger.level == logging.ERROR
        logger.warning("hidden")
        logger.error("shown")
    logger.warning("after")
    assert caplog.messages == ["shown", "after"]


def test_suppress_loggers_keeps_notset(logger_name: str):
    logger = logging.getLogger(logger_name)
    with suppress_loggers(logger_name, level=logging.CRITICAL):
        assert logger.level == logging.CRITICAL
    assert logger.level == logging.NOTSET


def test_suppress_loggers_restores_after_an_exception(logger_name: str):
    logger = logging.getLogger(logger_name)
    logger.setLevel(logging.INFO)
    with pytest.raises(RuntimeError), suppress_loggers(logger_name):
        raise RuntimeError
    assert logger.level == logging.INFO
