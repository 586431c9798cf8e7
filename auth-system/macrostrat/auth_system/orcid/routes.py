"""`OrcidAPI`: the ``/orcid/login`` and ``/orcid/callback`` routes."""

from __future__ import annotations

import logging
from urllib.parse import urlencode

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route, Router

from ..errors import AuthConfigurationError, OrcidLoginError
from ..legacy.backend import JWTBackend
from ..legacy.context import get_backend, get_identity_provider
from ..legacy.identity import BaseUser, IdentityProvider
from .exchange import exchange_code
from .settings import OrcidSettings
from .state import STATE_COOKIE, new_state, read_state_cookie, sign_state

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


def _check_allowed(settings: OrcidSettings, orcid: str, user: BaseUser | None) -> None:
    if user is None:
        raise OrcidLoginError("This ORCID account may not log in here", 403)
    if not settings.restricted:
        return
    if settings.allowed_orcids is not None and orcid in settings.allowed_orcids:
        return
    if (
        settings.allowed_groups is not None
        and set(user.roles) & settings.allowed_groups
    ):
        return
    raise OrcidLoginError("This ORCID account may not log in here", 403)


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
      missing, forged, expired or different), exchanges ``code`` at
      ``<base>/oauth/token``, applies the allow-list (403), finds or creates the
      user through the identity provider's ``find_or_create_orcid_user`` and
      sets the login cookies of the configured `JWTBackend`, then redirects
      (303) to ``settings.success_redirect``. Failures answer JSON
      ``{login: false, username: null, message}``.

    A ``state`` is accepted once: it is revoked in the backend's
    `RevocationStore` when its callback is handled.

    Parameters:
        settings: the ORCID client configuration.
        provider: the identity provider to use (default: the configured one,
            read per request). It must implement ``find_or_create_orcid_user``.

    Raises:
        AuthConfigurationError: ``settings`` is not an `OrcidSettings`, or
            ``provider`` cannot create ORCID users.
    """
    if not isinstance(settings, OrcidSettings):
        raise AuthConfigurationError(
            "OrcidAPI needs OrcidSettings (e.g. OrcidSettings.from_env()), got "
            f"{type(settings).__name__}"
        )
    if provider is not None and (
        type(provider).find_or_create_orcid_user
        is IdentityProvider.find_or_create_orcid_user
    ):
        raise AuthConfigurationError(
            f"{type(provider).__name__} does not implement find_or_create_orcid_user, "
            "which ORCID login needs"
        )

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
        params = request.query_params
        try:
            state, expires = read_state_cookie(
                backend.encode_key,
                request.cookies.get(STATE_COOKIE),
                params.get("state"),
            )
            jti = f"orcid-state:{state}"
            if backend.revocation_store.is_revoked(jti):
                raise OrcidLoginError("ORCID login state was already used")
            backend.revocation_store.revoke(jti, expires)
            if params.get("error"):
                raise OrcidLoginError(
                    f"ORCID login was not completed: {params.get('error')}", 401
                )
            code = params.get("code")
            if not code:
                raise OrcidLoginError("ORCID callback has no code parameter")
            identity = await run_in_threadpool(exchange_code, settings, code)
            if (
                settings.allowed_groups is None
                and settings.allowed_orcids is not None
                and identity.orcid not in settings.allowed_orcids
            ):
                raise OrcidLoginError("This ORCID account may not log in here", 403)
            users = provider if provider is not None else get_identity_provider()
            user = await run_in_threadpool(
                users.find_or_create_orcid_user, identity.orcid, identity.name
            )
            _check_allowed(settings, identity.orcid, user)
        except OrcidLoginError as err:
            log.info("ORCID login failed: %s", err)
            return _failure(err, backend)
        assert user is not None
        log.info("ORCID login for %s", identity.orcid)
        response = RedirectResponse(settings.success_redirect, 303)
        backend.set_login_cookies(
            response, identity=user.username, roles=list(user.roles)
        )
        return _delete_state(response, backend)

    return Router(
        routes=[
            Route("/orcid/login", login, methods=["GET"]),
            Route("/orcid/callback", callback, methods=["GET"]),
        ]
    )
