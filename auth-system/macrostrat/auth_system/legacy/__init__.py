"""Sparrow-style JWT authentication (cookies or Bearer header) for Starlette.

Typical use::

    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.routing import Mount
    from macrostrat.auth_system.legacy import (
        AuthAPI, AuthenticationMiddleware, create_backend, set_identity_provider,
    )

    backend = create_backend(os.environ["SECRET_KEY"])
    set_identity_provider(MyProvider())
    app = Starlette(
        routes=[Mount("/auth", app=AuthAPI)],
        middleware=[Middleware(AuthenticationMiddleware, backend=backend)],
    )
"""

from __future__ import annotations

from typing import Any

from starlette.authentication import AuthCredentials, AuthenticationError
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.requests import HTTPConnection

from ._passwords import hash_password, needs_rehash, verify_password
from ._throttle import (
    LoginThrottle,
    MemoryThrottleStore,
    ThrottleAttempt,
    ThrottlePolicy,
    ThrottleStore,
)
from .api import AuthAPI, UnauthorizedResponse
from .backend import BaseRevocationStore, JWTBackend, RevocationStore
from .context import (
    create_backend,
    get_backend,
    get_identity_provider,
    get_secret_key,
    set_backend,
    set_identity_provider,
    use_backend,
    use_identity_provider,
)
from .identity import BaseUser, IdentityProvider

__all__ = [
    "AuthAPI",
    "AuthenticationError",
    "AuthenticationMiddleware",
    "BaseRevocationStore",
    "BaseUser",
    "IdentityProvider",
    "JWTBackend",
    "LoginThrottle",
    "MemoryThrottleStore",
    "RevocationStore",
    "ThrottleAttempt",
    "ThrottlePolicy",
    "ThrottleStore",
    "UnauthorizedResponse",
    "authenticate_request",
    "create_backend",
    "get_backend",
    "get_identity_provider",
    "get_scopes",
    "get_secret_key",
    "hash_password",
    "needs_rehash",
    "set_backend",
    "set_identity_provider",
    "use_backend",
    "use_identity_provider",
    "verify_password",
]


async def authenticate_request(request: HTTPConnection) -> tuple[AuthCredentials, Any]:
    """Authenticate ``request`` with the current backend (never raises on bad tokens)."""
    return await get_backend().authenticate(request)


async def get_scopes(request: HTTPConnection) -> list[str]:
    """The scopes of ``request``: ``["public"]`` or ``["authenticated", *roles]``."""
    creds, _user = await authenticate_request(request)
    return list(creds.scopes)
