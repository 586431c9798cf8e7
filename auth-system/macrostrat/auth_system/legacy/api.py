"""`AuthAPI`: login, logout, refresh and status routes for Starlette apps."""

from __future__ import annotations

import json
import logging
from typing import Any

from starlette.authentication import AuthenticationError, requires
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route, Router

from .context import get_backend, get_identity_provider
from .identity import BaseUser, IdentityProvider
from .passwords import DUMMY_HASH, verify_password

__all__ = ["AuthAPI", "UnauthorizedResponse"]

log = logging.getLogger(__name__)


def UnauthorizedResponse(status_code: int = 401, **kwargs: Any) -> JSONResponse:
    """The JSON answer for a request that is not authenticated."""
    body = {"login": False, "username": None, "message": "user is not authenticated"}
    body.update(kwargs)
    return JSONResponse(body, status_code=status_code)


async def _credentials(request: Request) -> tuple[str, str] | None:
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    if not isinstance(body, dict):
        return None
    username, password = body.get("username"), body.get("password")
    if not isinstance(username, str) or not isinstance(password, str):
        return None
    return username, password


def _check_password(
    provider: IdentityProvider, username: str, password: str
) -> BaseUser | None:
    """The user if ``password`` is right (upgrading an old hash), else None."""
    user = provider.get_user(username) if username else None
    if user is None:
        verify_password(password, DUMMY_HASH)
        return None
    if not user.is_correct_password(password):
        return None
    if user.password_needs_upgrade:
        user.set_password(password)
        provider.save_user(user)
    return user


async def login(request: Request) -> JSONResponse:
    """Check ``{username, password}`` and set the login cookies.

    Unknown users and wrong passwords get the same 401 answer after the same
    amount of hashing work. The token is never echoed in the body.
    """
    backend = get_backend()
    creds = await _credentials(request)
    if creds is None:
        return JSONResponse(
            {
                "login": False,
                "message": "expected JSON with string username and password",
            },
            status_code=422,
        )
    username, password = creds
    provider = get_identity_provider()
    # The provider may query a database and hashing takes tens of
    # milliseconds: both run in a worker thread, off the event loop.
    user = await run_in_threadpool(_check_password, provider, username, password)
    if user is None:
        log.info("Failed login attempt")
        return backend.logout(UnauthorizedResponse())
    response = JSONResponse({"login": True, "username": user.username})
    return backend.set_login_cookies(
        response, identity=user.username, roles=list(user.roles)
    )


async def logout(request: Request) -> JSONResponse:
    """Revoke the request's tokens server-side and delete the login cookies."""
    backend = get_backend()
    backend.revoke_request_tokens(request)
    return backend.logout(UnauthorizedResponse(status_code=200))


async def refresh(request: Request) -> JSONResponse:
    """Issue a new access cookie from a valid refresh token, or answer 401.

    The user is looked up again, so role changes apply and deleted users cannot
    refresh.
    """
    backend = get_backend()
    try:
        identity = backend.get_identity(request, "refresh")
    except AuthenticationError:
        return UnauthorizedResponse()
    user = await run_in_threadpool(get_identity_provider().get_user, identity)
    if user is None:
        return UnauthorizedResponse()
    response = JSONResponse({"login": True, "refresh": True, "username": user.username})
    return backend.set_access_cookie(
        response, identity=user.username, roles=list(user.roles)
    )


async def status(request: Request) -> JSONResponse:
    """``{login: true, username}`` for a valid access token, else the 200 unauthorized body."""
    try:
        identity = get_backend().get_identity(request, "access")
    except AuthenticationError:
        return UnauthorizedResponse(status_code=200)
    return JSONResponse({"login": True, "username": identity})


@requires("admin")
async def secret(request: Request) -> JSONResponse:
    """A route for users with the ``admin`` role."""
    return JSONResponse({"answer": 42})


AuthAPI = Router(
    routes=[
        Route("/login", login, methods=["POST"]),
        Route("/logout", logout, methods=["POST"]),
        Route("/refresh", refresh, methods=["POST"]),
        Route("/status", status, methods=["GET"]),
        Route("/secret", secret, methods=["GET"]),
    ]
)
