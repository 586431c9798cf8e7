"""Configured values: one process-wide value per slot, with a scoped override.

The package keeps a few pieces of configuration that request handlers read
without being handed them: the JWT backend and the identity provider
(`macrostrat.auth_system.legacy.context`), the auth database
(`macrostrat.auth_system.core.database`), and the login throttle's default
store (set with the auth database). Each lives in a `ContextSlot`, which has
exactly two layers:

1. The configured value, process-wide: `ContextSlot.set` (behind
   `set_backend`, `create_backend`, `set_identity_provider`,
   `connect_engine`, `set_auth_database`). Every thread, task and event loop
   sees it, which is what servers need: requests are served from worker
   threads and tasks that never saw the call.
2. An override, scoped to the current context: `ContextSlot.override` (behind
   `use_backend`, `use_identity_provider`, `use_auth_database`), a context
   manager backed by a `ContextVar`. Inside the block it takes precedence over
   the configured value, in this thread or asyncio task and in the tasks and
   `contextvars.copy_context` copies started from it (Starlette's
   `TestClient` runs requests in such a copy); other threads and tasks keep
   seeing the configured value. It ends with the block, whatever
   `set` did meanwhile. For tests and background tasks that need another
   configuration without changing the process's.

`ContextSlot.get` returns the override if one is active, else the configured
value, else raises `AuthNotConfiguredError`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Generic, TypeVar

from .errors import AuthNotConfiguredError

__all__ = ["ContextSlot"]

T = TypeVar("T")


class ContextSlot(Generic[T]):
    """A process-wide configured value with a context-scoped override.

    Parameters:
        name: what the slot holds (for the ContextVar's name and ``repr``).
        missing: the message of the `AuthNotConfiguredError` that `get`
            raises when there is no value (say how to configure one).
    """

    def __init__(self, name: str, missing: str) -> None:
        self.name = name
        self._missing = missing
        self._configured: T | None = None
        # A one-element tuple, so that overriding with None ("nothing in this
        # context") differs from no override at all (the default None).
        self._override: ContextVar[tuple[T | None] | None] = ContextVar(
            f"macrostrat.auth_system.{name}", default=None
        )

    def __repr__(self) -> str:
        return f"<ContextSlot {self.name}: {self.current()!r}>"

    def set(self, value: T | None) -> None:
        """Make ``value`` the process-wide value (None forgets it).

        An active `override` still takes precedence in its own context.
        """
        self._configured = value

    @property
    def configured(self) -> T | None:
        """The process-wide value, ignoring any override."""
        return self._configured

    def current(self) -> T | None:
        """The override active in this context, else the process-wide value, or None."""
        override = self._override.get()
        if override is not None:
            return override[0]
        return self._configured

    def get(self) -> T:
        """Like `current`, but raise `AuthNotConfiguredError` instead of returning None."""
        value = self.current()
        if value is None:
            raise AuthNotConfiguredError(self._missing)
        return value

    @contextmanager
    def override(self, value: T | None) -> Iterator[T | None]:
        """Make ``value`` current in this context until the block ends.

        None overrides too: inside the block the slot is empty in this
        context. Blocks nest; each restores what was current before it.

        Parameters:
            value: the value for this context.
        """
        token = self._override.set((value,))
        try:
            yield value
        finally:
            self._override.reset(token)
