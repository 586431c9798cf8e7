"""Errors raised by `macrostrat.app_frame`, all rooted in `AppFrameError`.

```text
macrostrat.utils.exc.BaseError
└── macrostrat.utils.exc.ApplicationError    (message + details; also re-exported here)
    └── AppFrameError                         every error this package raises
        ├── SubsystemError                    a subsystem cannot be added, ordered, checked or loaded
        ├── EnvironmentFileNotFoundError      also FileNotFoundError: a named `.env` file is missing
        ├── ComposeNotFoundError              also FileNotFoundError: no Docker Compose installed
        ├── ComposeManagerNotFoundError       also ValueError: no DockerComposeManager for the CLI
        ├── TerminalRequiredError             the key controls need a terminal
        ├── MissingExtraError                 also ImportError: the `db` extra is not installed
        └── DatabaseCommandError              a `db` command cannot run or the database refused it
```

Every error is an [`ApplicationError`][macrostrat.utils.exc.ApplicationError]
(from `macrostrat.utils`), so a control CLI built with
[`ControlCommand`][macrostrat.app_frame.ControlCommand] prints it as a short
red message with its details and exits with status 1 instead of showing a
traceback (`--verbose` shows the traceback too). Catch `AppFrameError` for
this package's errors only. Where a builtin fits, the error also subclasses
it, so existing `except` clauses keep working. The error that caused one
(a driver's, an import's, a `KeyError`) is its `__cause__`.

`ApplicationError` and `BaseError` are `macrostrat.utils`' classes, re-exported
here and from the upstream path `macrostrat.app_frame.exc`.
"""

from __future__ import annotations

from macrostrat.utils.exc import ApplicationError, BaseError

__all__ = [
    "AppFrameError",
    "ApplicationError",
    "BaseError",
    "ComposeManagerNotFoundError",
    "ComposeNotFoundError",
    "DatabaseCommandError",
    "EnvironmentFileNotFoundError",
    "MissingExtraError",
    "SubsystemError",
    "TerminalRequiredError",
]


class AppFrameError(ApplicationError):
    """The root of every error `macrostrat.app_frame` raises.

    An `ApplicationError`: a one-line message (`str(error)`) and optional
    `details`, printed by the control CLI without a traceback.

    Args:
        message: A one-line description of what went wrong.
        details: Optional extra explanation, e.g. how to fix the problem.
    """


class SubsystemError(AppFrameError):
    """A subsystem could not be added, ordered, checked or loaded.

    The message names the subsystem(s) concerned.
    """


class EnvironmentFileNotFoundError(AppFrameError, FileNotFoundError):
    """A `.env` file named in `Application(load_dotenv=...)` does not exist.

    Also a `FileNotFoundError`, which is what opening a missing file raises.
    """


class ComposeNotFoundError(AppFrameError, FileNotFoundError):
    """Neither the `docker compose` plugin nor a standalone `docker-compose` exists.

    Also a `FileNotFoundError`, which is what running a missing program raises.
    """


class ComposeManagerNotFoundError(AppFrameError, ValueError):
    """A compose command ran on a command line that has no `DockerComposeManager`.

    Also a `ValueError`, which is what upstream raised.
    """


class TerminalRequiredError(AppFrameError):
    """The single-key controls of `up` need a POSIX terminal on standard input.

    The `termios` error (or the failed import) is the `__cause__`.
    """


class MissingExtraError(AppFrameError, ImportError):
    """An optional feature needs packages that are not installed.

    The message names the missing module and the details say what to install
    (for the `db` command group: `macrostrat.app_frame[db]`). Also an
    `ImportError`; the original import error is its `__cause__`.
    """


class DatabaseCommandError(AppFrameError):
    """A `db` command could not run, or the database refused what it asked.

    Raised when the app's `database_url` function fails, when a command that
    could change the database is run in dry-run mode, when a `--schema` does
    not exist, and for the database's own errors (the first line of the
    driver's message is the message, the rest the details; the driver's error
    is the `__cause__`).
    """
