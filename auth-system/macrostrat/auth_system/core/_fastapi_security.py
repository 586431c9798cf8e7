"""Upstream's FastAPI security objects, for apps that import them.

``from macrostrat.auth_system.core.main import oauth2_scheme`` and friends
load this module on first use; it needs FastAPI. The package's own
dependencies (`get_groups`, `has_access`, ...) do not use these objects: they
read the access cookie of the configured `JWTBackend` and the
``Authorization`` header themselves.
"""

from __future__ import annotations

from typing import Any

from fastapi import HTTPException
from fastapi.security import HTTPBearer, OAuth2AuthorizationCodeBearer
from fastapi.security.utils import get_authorization_scheme_param
from starlette.requests import HTTPConnection

from ..errors import RequestRefusedError

__all__ = [
    "CookieSchemeRefusedError",
    "OAuth2AuthorizationCodeBearerWithCookie",
    "http_bearer",
    "oauth2_scheme",
]


class CookieSchemeRefusedError(RequestRefusedError, HTTPException):
    """The 401 of `OAuth2AuthorizationCodeBearerWithCookie`.

    A `RequestRefusedError` that is also ``fastapi.HTTPException``, the class
    upstream's scheme raised (defined here because FastAPI is optional).
    """


class OAuth2AuthorizationCodeBearerWithCookie(OAuth2AuthorizationCodeBearer):
    """FastAPI's `OAuth2AuthorizationCodeBearer`, reading the token from a cookie.

    The cookie (named ``Authorization``, as upstream) holds ``Bearer <token>``;
    the dependency returns the token. A missing cookie, another scheme or an
    empty token gives 401 with ``WWW-Authenticate: Bearer`` when
    ``auto_error`` is true, else None. The token is not verified here.

    Parameters:
        *args: passed to `OAuth2AuthorizationCodeBearer` (``authorizationUrl``,
            ``tokenUrl``, ...); the URLs are OpenAPI metadata only.
        cookie_name: the cookie to read (upstream: ``Authorization``).
        **kwargs: passed to `OAuth2AuthorizationCodeBearer` (``auto_error``, ...).
    """

    def __init__(
        self, *args: Any, cookie_name: str = "Authorization", **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.cookie_name = cookie_name

    async def __call__(self, request: HTTPConnection) -> str | None:
        """The token of the ``Bearer`` cookie, or None (401 with ``auto_error``)."""
        authorization = request.cookies.get(self.cookie_name)
        scheme, token = get_authorization_scheme_param(authorization)
        if not authorization or scheme.lower() != "bearer" or not token:
            if self.auto_error:
                raise CookieSchemeRefusedError(
                    status_code=401,
                    detail="Not authenticated",
                    headers={"WWW-Authenticate": "Bearer"},
                )
            return None
        return token


oauth2_scheme = OAuth2AuthorizationCodeBearerWithCookie(
    authorizationUrl="/security/login",
    tokenUrl="/security/callback",
    auto_error=False,
)
"""Upstream's cookie scheme: reads ``Authorization: Bearer <token>`` from a cookie."""

http_bearer = HTTPBearer(auto_error=False)
"""FastAPI's ``HTTPBearer(auto_error=False)``: the credentials of a Bearer header, or None."""
