"""Errors raised by `macrostrat.app_frame`.

Every error is an [`ApplicationError`][macrostrat.utils.exc.ApplicationError]
(from `macrostrat.utils`), so a control CLI built with
[`ControlCommand`][macrostrat.app_frame.ControlCommand] prints it as a short
red message with its details and exits with status 1 instead of showing a
traceback (`--verbose` shows the traceback too). Where a builtin fits, the
error also subclasses it, so existing `except` clauses keep working.
"""

from __future__ import annotations

from macrostrat.utils.exc import ApplicationError, BaseError

__all__ = [
    "ApplicationError",
    "BaseError",
    "ComposeManagerNotFoundError",
    "ComposeNotFoundError",
    "MissingExtraError",
    "SubsystemError",
]


class SubsystemError(ApplicationError):
    """A subsystem could not be added, ordered, checked or loaded.

    The message names the subsystem(s) concerned.
    """


class ComposeNotFoundError(ApplicationError, FileNotFoundError):
    """Neither the `docker compose` plugin nor a standalone `docker-compose` exists.

    Also a `FileNotFoundError`, which is what running a missing program raises.
    """


class ComposeManagerNotFoundError(ApplicationError, ValueError):
    """A compose command ran on a command line that has no `DockerComposeManager`.

    Also a `ValueError`, which is what upstream raised.
    """


class MissingExtraError(ApplicationError, ImportError):
    """An optional feature needs packages that are not installed.

    The message names the missing module and the details say what to install
    (for the `db` command group: `macrostrat.app_frame[db]`). Also an
    `ImportError`; the original import error is its `__cause__`.
    """
