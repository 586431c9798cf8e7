"""The configured backend and identity provider (upstream's ``legacy.context``).

Each is one process-wide value (`set_backend`, `create_backend`,
`set_identity_provider`) that every thread, task and event loop sees, so it
reaches requests served from worker threads. `use_backend` and
`use_identity_provider` override it for the current context only (this
thread or task, and the tasks started from it), for tests and background
tasks; the override takes precedence until its ``with`` block ends. See
`macrostrat.auth_system._slots.ContextSlot`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from .._slots import ContextSlot
from .backend import JWTBackend
from .identity import IdentityProvider

__all__ = [
    "create_backend",
    "get_backend",
    "get_identity_provider",
    "get_secret_key",
    "set_backend",
    "set_identity_provider",
    "use_backend",
    "use_identity_provider",
]

_BACKEND: ContextSlot[JWTBackend] = ContextSlot(
    "backend",
    "No authentication backend configured; call create_backend(secret_key)",
)
_PROVIDER: ContextSlot[IdentityProvider] = ContextSlot(
    "identity_provider",
    "No identity provider configured; call set_identity_provider(provider)",
)


def set_backend(backend: JWTBackend) -> None:
    """Make ``backend`` the authentication backend of the whole process."""
    _BACKEND.set(backend)


def get_backend() -> JWTBackend:
    """The current backend; `AuthNotConfiguredError` (a RuntimeError) if none.

    The one `use_backend` set for this context, else the process-wide one.
    """
    return _BACKEND.get()


@contextmanager
def use_backend(backend: JWTBackend) -> Iterator[JWTBackend]:
    """Make ``backend`` current in this context until the ``with`` block ends.

    Takes precedence over the process-wide backend (`set_backend`,
    `create_backend`) in this thread or task and the tasks it starts; other
    threads keep the process-wide one.

    Parameters:
        backend: the backend for this context.
    """
    with _BACKEND.override(backend):
        yield backend


def create_backend(secret_key: str | bytes, **kwargs: Any) -> JWTBackend:
    """Construct a `JWTBackend`, make it the process-wide backend and return it.

    Parameters:
        secret_key: the signing secret (at least 32 bytes).
        kwargs: passed to `JWTBackend`.
    """
    backend = JWTBackend(secret_key, **kwargs)
    set_backend(backend)
    return backend


def get_secret_key() -> str | bytes:
    """The current backend's signing secret."""
    return get_backend().encode_key


def set_identity_provider(provider: IdentityProvider) -> None:
    """Make ``provider`` the identity provider of the whole process."""
    _PROVIDER.set(provider)


def get_identity_provider() -> IdentityProvider:
    """The current identity provider; `AuthNotConfiguredError` if none.

    The one `use_identity_provider` set for this context, else the
    process-wide one.
    """
    return _PROVIDER.get()


@contextmanager
def use_identity_provider(provider: IdentityProvider) -> Iterator[IdentityProvider]:
    """Make ``provider`` current in this context until the ``with`` block ends.

    Takes precedence over the process-wide provider (`set_identity_provider`)
    in this thread or task and the tasks it starts.

    Parameters:
        provider: the identity provider for this context.
    """
    with _PROVIDER.override(provider):
        yield provider


def _reset() -> None:
    """Forget the process-wide backend and provider (for tests)."""
    _BACKEND.set(None)
    _PROVIDER.set(None)
