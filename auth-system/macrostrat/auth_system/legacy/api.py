"""`AuthAPI`: login, logout, refresh and status routes for Starlette apps."""

from __future__ import annotations

import logging
from typing import Any

from starlette.authentication import AuthenticationError, requires
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route, Router

from ..errors import (
    InvalidRequestError,
    RevocationStoreError,
    TooManyLoginAttemptsError,
)
from ._passwords import DUMMY_HASH, verify_password
from ._throttle import LoginThrottle, ThrottleAttempt
from .backend import JWTBackend
from .context import get_backend, get_identity_provider
from .identity import BaseUser, IdentityProvider
from .validation import (
    MAX_LOGIN_BODY_BYTES,
    MAX_PASSWORD_LENGTH,
    MAX_USERNAME_LENGTH,
    check_text,
    read_json_object,
)

__all__ = ["AuthAPI", "UnauthorizedResponse"]

log = logging.getLogger(__name__)


def UnauthorizedResponse(status_code: int = 401, **kwargs: Any) -> JSONResponse:
    """The JSON answer for a request that is not authenticated."""
    body = {"login": False, "username": None, "message": "user is not authenticated"}
    body.update(kwargs)
    return JSONResponse(body, status_code=status_code)


def _refused(request: Request, backend: JWTBackend, action: str) -> JSONResponse | None:
    """The 403 answer if ``request`` is cross-site, else None (go on).

    The same policy for every cookie-authenticated route that changes state
    (``/login``, ``/logout``, ``/refresh``); see `JWTBackend.cross_site_reason`.
    """
    reason = backend.cross_site_reason(request)
    if reason is None:
        return None
    log.warning(
        "Refused %s from %s: %s", action, backend.client_address(request), reason
    )
    body: dict[str, Any] = {"message": f"{action} refused: {reason}"}
    if action == "login":
        body = {"login": False, **body}
    return JSONResponse(body, status_code=403)


_CREDENTIALS = "expected JSON with string username and password"


async def _credentials(request: Request) -> tuple[str, str]:
    """The ``username`` and ``password`` of a login body, checked.

    Raises:
        InvalidRequestError: 413 for a body over `MAX_LOGIN_BODY_BYTES`; 422
            for a body that is not a UTF-8 JSON object, fields that are
            missing or not strings, over-long fields, NUL characters or lone
            surrogates.
    """
    try:
        body = await read_json_object(request, max_bytes=MAX_LOGIN_BODY_BYTES)
    except InvalidRequestError as err:
        if err.status_code == 422:
            raise InvalidRequestError(f"{_CREDENTIALS} ({err})") from err
        raise
    username, password = body.get("username"), body.get("password")
    if not isinstance(username, str) or not isinstance(password, str):
        raise InvalidRequestError(_CREDENTIALS)
    check_text(username, "username", max_length=MAX_USERNAME_LENGTH)
    check_text(password, "password", max_length=MAX_PASSWORD_LENGTH)
    return username, password


def _legacy_pepper(backend: JWTBackend) -> str:
    """What upstream prepended to passwords before hashing: its JWT secret (a str)."""
    return backend.encode_key if isinstance(backend.encode_key, str) else ""


def _check_password(
    provider: IdentityProvider, username: str, password: str, legacy_pepper: str = ""
) -> BaseUser | None:
    """The user if ``password`` is right (upgrading an old hash), else None.

    ``legacy_pepper`` goes to `BaseUser.is_correct_password`; a subclass that
    overrides that method is called in upstream's form, ``(plaintext)``.
    """
    user = provider.get_user(username) if username else None
    if user is None:
        verify_password(password, DUMMY_HASH)
        return None
    if type(user).is_correct_password is BaseUser.is_correct_password:
        correct = user.is_correct_password(password, legacy_pepper=legacy_pepper)
    else:
        correct = user.is_correct_password(password)
    if not correct:
        return None
    if user.password_needs_upgrade:
        user.set_password(password)
        provider.save_user(user)
    return user


async def _take_back(
    throttle: LoginThrottle, attempt: ThrottleAttempt | None, username: str, client: str
) -> None:
    """Uncount a login whose password could not be checked (the provider raised).

    A failure to uncount is logged, never raised: the provider's error is the
    one the request fails with.
    """
    log.warning(
        "Login for %r from %s could not be checked; the attempt is not counted",
        username[:200],
        client,
    )
    try:
        await run_in_threadpool(throttle.abandoned, attempt)
    except Exception:
        log.error(
            "Login throttle could not take back the attempt for %r from %s",
            username[:200],
            client,
            exc_info=True,
        )


def _locked_kinds(attempt: ThrottleAttempt | None) -> list[str]:
    """The counters (``account``, ``address``) that ``attempt`` locked."""
    if attempt is None:
        return []
    return [
        kind
        for (kind, _key), marker in zip(attempt.keys, attempt.markers, strict=True)
        if marker is not None
    ]


async def login(request: Request) -> JSONResponse:
    """Check ``{username, password}`` and set the login cookies.

    Unknown users and wrong passwords get the same 401 answer after the same
    amount of hashing work. The token is never echoed in the body. Only
    ``application/json`` bodies are read (415 otherwise), and requests whose
    ``Origin`` or ``Sec-Fetch-Site`` shows another site are refused (403), so
    a cross-site form cannot log the browser into another account. Malformed
    bodies answer 422 (413 over `MAX_LOGIN_BODY_BYTES`) before anything is
    looked up. The backend's `LoginThrottle` answers 429 with ``Retry-After``
    while the account or the client address is locked, before any password
    hashing and whether or not the account exists. When the identity
    provider raises (its database is down, or saving an upgraded hash
    fails), the attempt is taken back from the throttle's counters and the
    error propagates (the server answers 500).
    """
    backend = get_backend()
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "application/json":
        return JSONResponse(
            {"login": False, "message": "login expects Content-Type: application/json"},
            status_code=415,
        )
    refused = _refused(request, backend, "login")
    if refused is not None:
        return refused
    try:
        username, password = await _credentials(request)
    except InvalidRequestError as err:
        return JSONResponse(
            {"login": False, "message": str(err)}, status_code=err.status_code
        )
    client = backend.client_address(request)
    throttle = backend.login_throttle
    try:
        attempt = await run_in_threadpool(throttle.begin, username, client)
    except TooManyLoginAttemptsError as err:
        log.info(
            "Refused login for %r from %s: too many failures (%s locked, %d s)",
            username[:200],
            client,
            "/".join(err.kinds) or "key",
            err.retry_after,
        )
        response = UnauthorizedResponse(
            status_code=429, message="too many failed login attempts; try again later"
        )
        response.headers["Retry-After"] = str(err.retry_after)
        return response
    try:
        provider = get_identity_provider()
        # The provider may query a database and hashing takes tens of
        # milliseconds: both run in a worker thread, off the event loop.
        user = await run_in_threadpool(
            _check_password, provider, username, password, _legacy_pepper(backend)
        )
    except Exception:
        # Not a wrong password: an outage must not lock accounts. The error
        # then answers as it always did (the server's 500, no details).
        await _take_back(throttle, attempt, username, client)
        raise
    if user is None:
        log.info("Failed login for %r from %s", username[:200], client)
        locked = _locked_kinds(attempt)
        if locked:
            log.warning(
                "Login throttle locked %s after failures (last: %r from %s)",
                " and ".join(locked),
                username[:200],
                client,
            )
        return backend.logout(
            UnauthorizedResponse(),
            refresh_path=backend.refresh_path_for(request, "/login"),
        )
    await run_in_threadpool(throttle.succeeded, attempt)
    response = JSONResponse({"login": True, "username": user.username})
    return backend.set_login_cookies(
        response,
        identity=user.username,
        roles=list(user.roles),
        refresh_path=backend.refresh_path_for(request, "/login"),
    )


_STORE_DOWN = "the session store is unavailable; try again later"


async def logout(request: Request) -> JSONResponse:
    """Revoke the request's tokens server-side and delete the login cookies.

    A cross-site request (see `JWTBackend.cross_site_reason`) is refused with
    403 and changes nothing, so another site cannot log the browser out. If
    the revocation store cannot be used, the cookies are deleted all the same
    but the answer is 503 (the tokens could not be revoked server-side).
    """
    backend = get_backend()
    refused = _refused(request, backend, "logout")
    if refused is not None:
        return refused
    answer = UnauthorizedResponse(status_code=200)
    try:
        await run_in_threadpool(backend.revoke_request_tokens, request)
    except RevocationStoreError as err:
        log.error(
            "Logout from %s could not revoke its tokens: %s",
            backend.client_address(request),
            err,
        )
        answer = UnauthorizedResponse(status_code=503, message=_STORE_DOWN)
    return backend.logout(
        answer, refresh_path=backend.refresh_path_for(request, "/logout")
    )


async def refresh(request: Request) -> JSONResponse:
    """Issue new access and refresh cookies from a valid refresh token, or 401.

    The refresh token is rotated: the presented one is revoked, so using it
    again answers 401. The user is looked up again, so role changes apply and
    deleted users cannot refresh. A cross-site request (see
    `JWTBackend.cross_site_reason`) is refused with 403 before the token is
    read, so it neither rotates nor revokes anything. A refresh token whose
    revocation cannot be checked answers 401; one that cannot be revoked
    (the revocation store fails) answers 503 and no new tokens are issued.
    When the same token is presented twice at once (two processes both
    checked it before either revoked it), the store says which revocation was
    first, and only that request gets new tokens; the other answers 401.
    """
    backend = get_backend()
    refused = _refused(request, backend, "refresh")
    if refused is not None:
        return refused
    try:
        payload = await run_in_threadpool(backend.get_payload, request, "refresh")
    except AuthenticationError:
        return UnauthorizedResponse()
    store = backend.revocation_store
    try:
        first = await run_in_threadpool(
            store.revoke, str(payload["jti"]), int(payload["exp"])
        )
    except RevocationStoreError as err:
        log.error(
            "Refresh from %s refused: the old token could not be revoked: %s",
            backend.client_address(request),
            err,
        )
        return UnauthorizedResponse(status_code=503, message=_STORE_DOWN)
    if first is False:
        # Presented twice at once (two processes both checked it before either
        # revoked it): only the first rotation issues new tokens.
        log.warning(
            "Refresh from %s refused: the refresh token was already used",
            backend.client_address(request),
        )
        return UnauthorizedResponse()
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
        identity = await run_in_threadpool(get_backend().get_identity, request)
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
