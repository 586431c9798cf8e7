"""The configured backend and identity provider.

Values are kept in ContextVars, with a process-wide fallback so that they also
reach requests served from other threads or event loops (as Starlette's test
client and most servers do).
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from ..errors import AuthNotConfiguredError
from .backend import JWTBackend

if TYPE_CHECKING:
    from .identity import IdentityProvider

__all__ = [
    "create_backend",
    "get_backend",
    "get_identity_provider",
    "get_secret_key",
    "set_backend",
    "set_identity_provider",
]

_auth_backend: ContextVar[JWTBackend | None] = ContextVar("_auth_backend", default=None)
_identity_provider: ContextVar[IdentityProvider | None] = ContextVar(
    "_identity_provider", default=None
)
_defaults: dict[str, Any] = {}


def set_backend(backend: JWTBackend) -> None:
    """Make ``backend`` the current authentication backend."""
    _auth_backend.set(backend)
    _defaults["backend"] = backend


def get_backend() -> JWTBackend:
    """The current backend; `AuthNotConfiguredError` (a RuntimeError) if none."""
    backend = _auth_backend.get() or _defaults.get("backend")
    if backend is None:
        raise AuthNotConfiguredError(
            "No authentication backend configured; call create_backend(secret_key)"
        )
    return backend


def create_backend(secret_key: str | bytes, **kwargs: Any) -> JWTBackend:
    """Construct a `JWTBackend`, make it current and return it.

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
    """Make ``provider`` the current identity provider."""
    _identity_provider.set(provider)
    _defaults["provider"] = provider


def get_identity_provider() -> IdentityProvider:
    """The current identity provider; `AuthNotConfiguredError` if none."""
    provider = _identity_provider.get() or _defaults.get("provider")
    if provider is None:
        raise AuthNotConfiguredError(
            "No identity provider configured; call set_identity_provider(provider)"
        )
    return provider


def _reset() -> None:
    """Forget the configured backend and provider (for tests)."""
    _auth_backend.set(None)
    _identity_provider.set(None)
    _defaults.clear()
