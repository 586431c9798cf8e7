"""Logging helpers.

The macrostrat libraries log through standard `logging` loggers named after
their modules and never configure output themselves. Applications opt in to
output with [`setup_stderr_logs`][macrostrat.utils.logs.setup_stderr_logs] (or
any ordinary `logging` configuration).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Literal, TextIO

import colorlog

__all__ = [
    "SparrowLogFormatter",
    "console_handler",
    "get_logger",
    "setup_stderr_logs",
    "suppress_loggers",
]

_FORMAT = "%(log_color)s%(name)s:%(reset)s    %(message)s"

_LOG_COLORS = {
    "DEBUG": "cyan",
    "INFO": "green",
    "WARNING": "yellow",
    "ERROR": "red",
    "CRITICAL": "red,bg_white",
}


class SparrowLogFormatter(colorlog.ColoredFormatter):
    """A compact, coloured formatter: the logger name, then the message.

    Output looks like `macrostrat.database:    Connected` with the name
    coloured by level (DEBUG cyan, INFO green, WARNING yellow, ERROR red,
    CRITICAL red on white). Colours are dropped when the `NO_COLOR`
    environment variable is set (a `colorlog` feature).

    All arguments are optional and passed on to
    `colorlog.ColoredFormatter`; the defaults give the format above.

    Args:
        fmt: A `%`-style format string. Defaults to the format above.
        datefmt: A `time.strftime` format for `%(asctime)s`.
        style: The format style of `fmt`.
        log_colors: Colour names by level name. Defaults to the colours above.
        reset: Append a colour reset to every message.
        **kwargs: Further `colorlog.ColoredFormatter` options, e.g. `no_color`.
    """

    def __init__(
        self,
        fmt: str | None = None,
        datefmt: str | None = None,
        style: Literal["%", "{", "$"] = "%",
        log_colors: Mapping[str, str] | None = None,
        reset: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            fmt=_FORMAT if fmt is None else fmt,
            datefmt=datefmt,
            style=style,
            log_colors=dict(_LOG_COLORS if log_colors is None else log_colors),
            reset=reset,
            **kwargs,
        )


if TYPE_CHECKING:
    _StreamHandler = logging.StreamHandler[TextIO]
else:  # not subscriptable at run time before Python 3.11
    _StreamHandler = logging.StreamHandler


class _StderrHandler(_StreamHandler):
    """A stream handler that writes to whatever `sys.stderr` is at emit time.

    Unlike `logging.StreamHandler(sys.stderr)` it follows later replacements
    of `sys.stderr` (by `contextlib.redirect_stderr`, pytest's capture, ...).
    """

    def __init__(self, level: int | str = logging.NOTSET) -> None:
        logging.Handler.__init__(self, level)

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, value: TextIO) -> None:
        raise AttributeError("this handler always writes to the current sys.stderr")


def _stderr_handler(level: int | str = logging.NOTSET) -> logging.Handler:
    handler = _StderrHandler(level)
    handler.setFormatter(SparrowLogFormatter())
    return handler


console_handler: logging.Handler = _stderr_handler()
"""A ready-made handler that writes to standard error with
[`SparrowLogFormatter`][macrostrat.utils.logs.SparrowLogFormatter].

It is not attached to any logger; pass it to
[`get_logger`][macrostrat.utils.logs.get_logger] or `Logger.addHandler`.
"""


def _destination(handler: logging.Handler) -> object:
    """What a stream or file handler writes to; `None` for other handlers."""
    if isinstance(handler, _StderrHandler):
        return sys.stderr
    if isinstance(handler, logging.FileHandler):
        return handler.baseFilename
    if isinstance(handler, logging.StreamHandler):
        return handler.stream
    return None


def _is_duplicate(existing: logging.Handler, new: logging.Handler) -> bool:
    """Whether `new` would repeat the output of `existing` (see `get_logger`)."""
    if existing is new:
        return True
    destination = _destination(new)
    return (
        destination is not None
        and type(existing) is type(new)
        and existing.level == new.level
        and _destination(existing) == destination
    )


def get_logger(
    name: str | None = None,
    level: int | str | None = None,
    handler: logging.Handler | None = None,
) -> logging.Logger:
    """Return a logger, optionally setting its level and adding a handler.

    This is `logging.getLogger(name)` with two conveniences. Unlike upstream
    `macrostrat.utils` 1.3 it does not set a level unless one is passed: a
    library's loggers stay quiet until the application configures logging.

    Args:
        name: The logger name, usually `__name__`. `None` means the root logger.
        level: If given, set as the logger's level (a number or a level name
            such as `"INFO"`). If `None`, the level is left alone.
        handler: If given, attached to the logger unless the logger already
            has it, or already has a handler of the same class and level
            writing to the same stream or file (so repeated calls do not
            duplicate output).

    Returns:
        The logger.
    """
    logger = logging.getLogger(name)
    if level is not None:
        logger.setLevel(level)
    if handler is not None and not any(
        _is_duplicate(existing, handler) for existing in logger.handlers
    ):
        logger.addHandler(handler)
    return logger


def _writes_to_stderr(handler: logging.Handler) -> bool:
    destination = _destination(handler)
    return destination is sys.stderr or destination is sys.__stderr__


def setup_stderr_logs(*names: str, level: int | str = logging.DEBUG) -> None:
    """Print the records of the named loggers to standard error, in colour.

    One handler with [`SparrowLogFormatter`][macrostrat.utils.logs.SparrowLogFormatter]
    at `level` is attached to each named logger. Handlers on those loggers
    that already write to standard error (including ones added by an earlier
    call) are removed first, so repeated calls do not duplicate output; other
    handlers, such as file handlers or pytest's capture, are kept.

    If a logger's effective level would filter out records at `level`, its
    level is lowered to `level`; otherwise it is left alone.

    Args:
        *names: Logger names; `""` is the root logger. With no names nothing
            happens.
        level: The lowest level to print.

    Example:
        ```python
        setup_stderr_logs("macrostrat", "myapp", level=logging.INFO)
        ```
    """
    if not names:
        return
    handler = _stderr_handler(level)
    for name in names:
        logger = logging.getLogger(name)
        for existing in list(logger.handlers):
            if _writes_to_stderr(existing):
                logger.removeHandler(existing)
        logger.addHandler(handler)
        if logger.getEffectiveLevel() > handler.level:
            logger.setLevel(handler.level)


@contextmanager
def suppress_loggers(*names: str, level: int | str = logging.ERROR) -> Iterator[None]:
    """Temporarily raise the level of some loggers to hide their noise.

    Each named logger's own level is set to `level` for the duration of the
    block and restored afterwards, also on an exception. A logger whose level
    was unset (`NOTSET`, inheriting from its parent) is unset again.

    Args:
        *names: Logger names; `""` is the root logger.
        level: The level to set while the block runs.

    Example:
        ```python
        with suppress_loggers("urllib3", "docker"):
            ...
        ```
    """
    loggers = [logging.getLogger(name) for name in names]
    saved = [logger.level for logger in loggers]
    try:
        for logger in loggers:
            logger.setLevel(level)
        yield
    finally:
        for logger, old in zip(loggers, saved, strict=True):
            logger.setLevel(old)
