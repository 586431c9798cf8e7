"""Following container logs, and the single-key controls of `up`."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
from collections.abc import Generator, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from enum import Enum
from typing import Any

from ..errors import TerminalRequiredError
from ..subsystems.defs import ApplicationBase
from .base import compose_base_command

__all__ = [
    "Result",
    "command_stream",
    "follow_logs",
    "logs_command",
    "stdin_is_terminal",
    "stop_process",
    "wait_for_keys",
]


class Result(Enum):
    """What a key pressed while following logs asks for."""

    CONTINUE = 1
    """`q`: stop following logs; the app keeps running."""
    RESTART = 2
    """`r`: restart the app."""
    EXIT = 3
    """`x`: stop the app."""


_KEYS = {"q": Result.CONTINUE, "r": Result.RESTART, "x": Result.EXIT}


def _info(app: ApplicationBase, text: str) -> None:
    info = getattr(app, "info", None)
    if callable(info):
        info(text)


def logs_command(container: str | None = None) -> list[str]:
    """The command line that follows container logs from now on.

    With the `docker compose` plugin: `docker compose logs -f --since=<now,
    UTC>`. The standalone `docker-compose` (version 1) has no `--since`
    option, so there it is `docker-compose logs -f --tail=0` (no earlier
    lines). In dry-run mode a missing Compose gives the plugin's form.

    Raises:
        ComposeNotFoundError: Compose is not installed (not in dry-run mode).
    """
    base = compose_base_command()
    if base == ["docker-compose"]:
        argv = [*base, "logs", "-f", "--tail=0"]
    else:
        since = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        argv = [*base, "logs", "-f", f"--since={since}"]
    if container:
        argv.append(container)
    return argv


def follow_logs(
    app: ApplicationBase,
    container: str | None = None,
    *,
    show_help: bool = True,
    **kwargs: Any,
) -> subprocess.Popen[Any]:
    """Start following container logs in the background; return the process.

    Runs `docker compose logs -f` from now on (for one `container`, or all)
    in its own process group, with standard input closed, writing to this
    process's output. Stop it with [`stop_process`][macrostrat.app_frame.compose.stop_process],
    which ends the whole group.

    Args:
        app: The application (for the help lines).
        container: A service name, or `None` for all services.
        show_help: Print which keys do what first.
        **kwargs: Passed to `subprocess.Popen` (`cwd`, `env`, ...).
    """
    if show_help:
        _info(app, "[bold]Following container logs[/]")
        _info(
            app,
            "Press [bold]q[/] or Ctrl+C to stop following (:app_name: keeps running).",
        )
        _info(
            app,
            "Press [bold]r[/] to restart :app_name: (or run `:command_name: restart`).",
        )
        _info(
            app, "Press [bold]x[/] to stop :app_name: (or run `:command_name: down`)."
        )
    kwargs.setdefault("stdin", subprocess.DEVNULL)
    return subprocess.Popen(logs_command(container), start_new_session=True, **kwargs)


def stop_process(process: subprocess.Popen[Any] | None, timeout: float = 5.0) -> None:
    """Stop a process started by `follow_logs` and its children, and reap it.

    Sends SIGTERM to its process group, then SIGKILL if it has not exited
    after `timeout` seconds. Does nothing if it has already exited (beyond
    reaping it).
    """
    if process is None:
        return
    if process.poll() is None:
        _signal_group(process, signal.SIGTERM)
        try:
            process.wait(timeout)
            return
        except subprocess.TimeoutExpired:
            _signal_group(process, getattr(signal, "SIGKILL", signal.SIGTERM))
    process.wait()


def _signal_group(process: subprocess.Popen[Any], sig: int) -> None:
    killpg = getattr(os, "killpg", None)
    try:
        if killpg is None:  # Windows: no process groups to signal
            raise ProcessLookupError
        killpg(process.pid, sig)
    except (ProcessLookupError, PermissionError):
        try:
            process.send_signal(sig)
        except ProcessLookupError:
            pass


def stdin_is_terminal() -> bool:
    """Whether standard input is a terminal that single-key controls can read."""
    try:
        import termios  # noqa: F401
    except ImportError:  # not POSIX
        return False
    try:
        return os.isatty(sys.stdin.fileno())
    except (AttributeError, OSError, ValueError):
        return False


@contextmanager
def wait_for_keys(fd: int | None = None) -> Iterator[int]:
    """Put a terminal in single-key mode (no line buffering, no echo) for a block.

    Ctrl+C still interrupts. The terminal settings are restored when the
    block ends, also on an exception or Ctrl+C.

    Args:
        fd: The terminal's file descriptor (default: standard input).

    Yields:
        The file descriptor.

    Raises:
        TerminalRequiredError: not on a POSIX system, or `fd` is not a terminal
            (an `ApplicationError`).
    """
    try:
        import termios
    except ImportError as exc:
        raise TerminalRequiredError(
            "Key controls need a POSIX terminal (termios is not available)"
        ) from exc
    if fd is None:
        fd = sys.stdin.fileno()
    try:
        saved = termios.tcgetattr(fd)
    except termios.error as exc:
        raise TerminalRequiredError(
            "Key controls need a terminal on standard input"
        ) from exc
    changed = list(saved)
    changed[3] = saved[3] & ~(termios.ICANON | termios.ECHO)
    changed[6] = list(saved[6])
    changed[6][termios.VMIN] = 1
    changed[6][termios.VTIME] = 0
    termios.tcsetattr(fd, termios.TCSANOW, changed)
    try:
        yield fd
    finally:
        try:
            termios.tcsetattr(fd, termios.TCSANOW, saved)
        except termios.error:  # the terminal hung up; nothing left to restore
            pass


def command_stream(
    refresh_rate: float = 1.0, *, fd: int | None = None
) -> Generator[Result, None, None]:
    """Yield a `Result` for each control key pressed on the terminal.

    `q` gives `Result.CONTINUE`, `r` `Result.RESTART` and `x` `Result.EXIT`
    (either case); other keys are ignored. Keys are read as soon as they are
    pressed. The generator ends when the terminal closes or hangs up. The terminal is in
    single-key mode while the generator runs and is restored when it is
    closed (use it in a `with contextlib.closing(...)` block or exhaust it).

    Args:
        refresh_rate: How often, in seconds, to wake up while waiting.
        fd: The terminal's file descriptor (default: standard input).
    """
    with wait_for_keys(fd) as terminal:
        while True:
            ready, _, _ = select.select([terminal], [], [], refresh_rate)
            if not ready:
                continue
            try:
                data = os.read(terminal, 1)
            except OSError:  # the terminal hung up (EIO on a closed pty)
                return
            if not data:
                return
            result = _KEYS.get(data.decode("utf-8", "ignore").lower())
            if result is not None:
                yield result
