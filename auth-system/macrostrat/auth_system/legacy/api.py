"""`AuthAPI`: login, logout, refresh and status routes for Starlette apps."""

from __future__ import annotations

import json
import logging
from typing import Any
from urllib.parse import urlsplit

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


def _cross_site_reason(request: Request, trusted: frozenset[str]) -> str | None:
    """Why ``request`` looks like a cross-site form post, or None if it does not.

    ``Origin`` (when present) must name the request's own host (``Host``) or
    be a trusted origin; ``Sec-Fetch-Site: cross-site`` is refused unless the origin is
    trusted. Requests with neither header (non-browser clients) pass.
    """
    origin = request.headers.get("origin")
    # Compare hosts, not schemes: behind a TLS-terminating proxy the app may
    # see http while the browser's origin is https.
    own_host = (request.headers.get("host") or request.url.netloc).lower()
    if origin is not None:
        origin = origin.strip().rstrip("/").lower()
        if origin not in trusted and urlsplit(origin).netloc != own_host:
            return f"origin {origin[:100]!r} is not allowed"
    site = (request.headers.get("sec-fetch-site") or "").strip().lower()
    if site == "cross-site" and (origin is None or origin not in trusted):
        return "cross-site request"
    return None


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


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
    amount of hashing work. The token is never echoed in the body. Only
    ``application/json`` bodies are read (415 otherwise), and requests whose
    ``Origin`` or ``Sec-Fetch-Site`` shows another site are refused (403), so
    a cross-site form cannot log the browser into another account.
    """
    backend = get_backend()
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "application/json":
        return JSONResponse(
            {"login": False, "message": "login expects Content-Type: application/json"},
            status_code=415,
        )
    reason = _cross_site_reason(request, backend.trusted_origins)
    if reason is not None:
        log.warning("Refused login from %s: %s", _client(request), reason)
        return JSONResponse(
            {"login": False, "message": f"login refused: {reason}"}, status_code=403
        )
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
        log.info("Failed login for %r from %s", username[:200], _client(request))
        return backend.logout(
            UnauthorizedResponse(),
            refresh_path=backend.refresh_path_for(request, "/login"),
        )
    response = JSONResponse({"login": True, "username": user.username})
    return backend.set_login_cookies(
        response,
        identity=user.username,
        roles=list(user.roles),
        refresh_path=backend.refresh_path_for(request, "/login"),
    )


async def logout(request: Request) -> JSONResponse:
    """Revoke the request's tokens server-side and delete the login cookies."""
    backend = get_backend()
    backend.revoke_request_tokens(request)
    return backend.logout(
        UnauthorizedResponse(status_code=200),
        refresh_path=backend.refresh_path_for(request, "/logout"),
    )


async def refresh(request: Request) -> JSONResponse:
    """Issue new access and refresh cookies from a valid refresh token, or 401.

    The refresh token is rotated: the presented one is revoked, so using it
    again answers 401. The user is looked up again, so role changes apply and
    deleted users cannot refresh.
    """
    backend = get_backend()
    try:
        payload = backend.get_payload(request, "refresh")
    except AuthenticationError:
        return UnauthorizedResponse()
    backend.revocation_store.revoke(str(payload["jti"]), int(payload["exp"]))
    identity = payload["identity"]
    user = await run_in_threadpool(get_identity_provider().get_user, identity)
    if user is None:
        return UnauthorizedResponse()
    response = JSONResponse({"login": True, "refresh": True, "username": user.username})
    return backend.set_login_cookies(
        response,
        identity=user.username,
        roles=list(user.roles),
        refresh_path=backend.refresh_path_for(request, "/refresh"),
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
