"""`OrcidAPI`: the ``/orcid/login`` and ``/orcid/callback`` routes."""

from __future__ import annotations

import logging
from urllib.parse import urlencode

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route, Router

from ..errors import (
    AuthConfigurationError,
    AuthNotConfiguredError,
    AuthSystemError,
    OrcidLoginError,
    RevocationStoreError,
)
from ..legacy.backend import JWTBackend
from ..legacy.context import get_backend, get_identity_provider
from ..legacy.identity import BaseUser, IdentityProvider
from ..legacy.validation import text_problem
from ._exchange import exchange_code
from ._settings import OrcidSettings
from ._state import STATE_COOKIE, new_state, read_state_cookie, sign_state

__all__ = ["OrcidAPI"]

log = logging.getLogger(__name__)


def _delete_state(response: Response, backend: JWTBackend) -> Response:
    response.delete_cookie(
        STATE_COOKIE,
        path="/",
        secure=backend.secure_cookies,
        httponly=True,
        samesite="lax",
    )
    return response


def _failure(err: OrcidLoginError, backend: JWTBackend) -> Response:
    body = {"login": False, "username": None, "message": str(err)}
    return _delete_state(JSONResponse(body, status_code=err.status_code), backend)


_REFUSED = "This ORCID account may not log in here"

# Generous bounds: states are 43 characters, ORCID's codes six.
_PARAM_LENGTHS = {"state": 256, "code": 512, "error": 256}


def _param(request: Request, name: str) -> str | None:
    """The callback's query parameter ``name``, or None if absent.

    Raises:
        OrcidLoginError: (400) the value is over-long or holds NUL characters.
    """
    value = request.query_params.get(name)
    if value is None:
        return None
    problem = text_problem(value, max_length=_PARAM_LENGTHS[name])
    if problem is not None:
        raise OrcidLoginError(f"ORCID callback parameter {name!r} {problem}")
    return value


def _admit(
    users: IdentityProvider, settings: OrcidSettings, orcid: str, name: str | None
) -> BaseUser:
    """The user for ``orcid`` if the allow-list admits it, deciding before creating.

    Listed iDs (or everyone, without an allow-list) are found or created. With
    ``allowed_groups``, only an existing user in an allowed group is admitted
    (a new account cannot be in a group yet), so a refused iD leaves no row.

    Raises:
        OrcidLoginError: (403) the account is refused.
    """
    admitted = not settings.restricted or (
        settings.allowed_orcids is not None and orcid in settings.allowed_orcids
    )
    if not admitted and settings.allowed_groups is not None:
        existing = users.find_orcid_user(orcid)
        admitted = existing is not None and bool(
            set(existing.roles) & settings.allowed_groups
        )
    if not admitted:
        raise OrcidLoginError(_REFUSED, 403)
    user = users.find_or_create_orcid_user(orcid, name)
    if user is None:
        raise OrcidLoginError(_REFUSED, 403)
    return user


def _implements(provider: IdentityProvider, method: str) -> bool:
    return getattr(type(provider), method) is not getattr(IdentityProvider, method)


def _check_configuration(
    settings: OrcidSettings, provider: IdentityProvider | None
) -> None:
    """Raise `AuthConfigurationError` unless ORCID login can work."""
    try:
        get_backend()
    except AuthNotConfiguredError as err:
        raise AuthConfigurationError(
            "OrcidAPI needs the JWT backend; call create_backend(secret_key) "
            "before OrcidAPI(...)"
        ) from err
    if provider is None:
        try:
            provider = get_identity_provider()
        except AuthNotConfiguredError as err:
            raise AuthConfigurationError(
                "OrcidAPI needs an identity provider; pass provider= or call "
                "set_identity_provider(...) before OrcidAPI(...)"
            ) from err
    methods = ["find_or_create_orcid_user"]
    if settings.allowed_groups is not None:
        methods.append("find_orcid_user")
    for method in methods:
        if not _implements(provider, method):
            raise AuthConfigurationError(
                f"{type(provider).__name__} does not implement {method}, "
                "which ORCID login needs"
            )


def OrcidAPI(
    settings: OrcidSettings, provider: IdentityProvider | None = None
) -> Router:
    """Routes for ORCID login, to mount beside `AuthAPI` (e.g. under ``/auth``).

    - ``GET /orcid/login`` redirects to ``<base>/oauth/authorize`` with
      ``client_id``, ``response_type=code``, ``scope``, ``redirect_uri`` and a
      random ``state``, which is also kept in a signed, HttpOnly cookie
      (``orcid_state``, ``SameSite=lax`` so it survives the redirect back)
      that expires after ``settings.state_max_age`` seconds.
    - ``GET /orcid/callback`` checks ``state`` against that cookie (400 if it is
      missing, forged, expired or different; 400 too for a ``state``,
      ``code`` or ``error`` parameter that is over-long or holds NUL
      characters), exchanges ``code`` at
      ``<base>/oauth/token``, applies the allow-list (403), finds or creates the
      user through the identity provider's ``find_or_create_orcid_user`` and
      sets the login cookies of the configured `JWTBackend`, then redirects
      (303) to ``settings.success_redirect``. Failures answer JSON
      ``{login: false, username: null, message}``.

    A ``state`` is accepted once: it is revoked in the backend's revocation
    store (shared by every process when an auth database is configured) once
    its signature, expiry and the callback's ``code`` check out; if that
    store cannot be used the callback answers 503. With ``allowed_groups``,
    access is decided before any user is created (an unknown iD cannot be in
    a group yet, so it is refused). An iD that clashes with an existing
    account (``AuthSystemError`` from the provider) answers 409.

    Parameters:
        settings: the ORCID client configuration.
        provider: the identity provider to use (default: the configured one,
            read per request). It must implement ``find_or_create_orcid_user``.

    Raises:
        AuthConfigurationError: ``settings`` is not an `OrcidSettings`, no
            backend is configured, or the provider (``provider`` or the
            configured one) cannot find or create ORCID users.
    """
    if not isinstance(settings, OrcidSettings):
        raise AuthConfigurationError(
            "OrcidAPI needs OrcidSettings (e.g. OrcidSettings.from_env()), got "
            f"{type(settings).__name__}"
        )
    _check_configuration(settings, provider)

    async def login(request: Request) -> Response:
        backend = get_backend()
        state = new_state()
        query = urlencode(
            {
                "client_id": settings.client_id,
                "response_type": "code",
                "scope": settings.scope,
                "redirect_uri": settings.redirect_uri,
                "state": state,
            }
        )
        response = RedirectResponse(f"{settings.authorize_url}?{query}", 302)
        response.set_cookie(
            STATE_COOKIE,
            sign_state(backend.encode_key, state, settings.state_max_age),
            max_age=int(settings.state_max_age),
            path="/",
            secure=backend.secure_cookies,
            httponly=True,
            samesite="lax",
        )
        return response

    async def callback(request: Request) -> Response:
        backend = get_backend()
        try:
            state, expires = read_state_cookie(
                backend.encode_key,
                request.cookies.get(STATE_COOKIE),
                _param(request, "state"),
            )
            jti = f"orcid-state:{state}"
            store = backend.revocation_store
            if await run_in_threadpool(store.is_revoked, jti):
                raise OrcidLoginError("ORCID login state was already used")
            error = _param(request, "error")
            if error:
                raise OrcidLoginError(
                    f"ORCID login was not completed: {error[:100]!r}", 401
                )
            code = _param(request, "code")
            if not code:
                raise OrcidLoginError("ORCID callback has no code parameter")
            # Spent only once its signature, freshness and parameters check out.
            await run_in_threadpool(store.revoke, jti, expires)
            identity = await run_in_threadpool(exchange_code, settings, code)
            users = provider if provider is not None else get_identity_provider()
            user = await run_in_threadpool(
                _admit, users, settings, identity.orcid, identity.name
            )
        except OrcidLoginError as err:
            log.info("ORCID login failed: %s", err)
            return _failure(err, backend)
        except AuthConfigurationError:
            raise
        except RevocationStoreError as err:
            # Fail closed: a state that cannot be checked or spent is refused.
            log.error("ORCID login refused: %s", err)
            return _failure(
                OrcidLoginError("ORCID login is unavailable; try again later", 503),
                backend,
            )
        except AuthSystemError as err:
            # E.g. the iD is already some local account's username.
            log.warning("ORCID login conflict: %s", err)
            return _failure(
                OrcidLoginError(
                    "This ORCID iD conflicts with an existing account; "
                    "ask an administrator",
                    409,
                ),
                backend,
            )
        log.info("ORCID login for %s", identity.orcid)
        response = RedirectResponse(settings.success_redirect, 303)
        backend.set_login_cookies(
            response,
            identity=user.username,
            roles=list(user.roles),
            refresh_path=backend.refresh_path_for(request, "/orcid/callback"),
        )
        return _delete_state(response, backend)

    return Router(
        routes=[
            Route("/orcid/login", login, methods=["GET"]),
            Route("/orcid/callback", callback, methods=["GET"]),
        ]
    )
