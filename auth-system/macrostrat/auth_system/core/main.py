"""Request dependencies: who is calling, their groups, scopes and access.

Each function takes the Starlette/FastAPI ``Request``, so it works as a FastAPI
dependency (``Depends(has_access)``) without importing FastAPI, and can be
called directly from Starlette endpoints. They are synchronous: FastAPI runs
them in its thread pool, and they query the database.

- The user comes from the access cookie of the configured `JWTBackend`
  (``access_token_cookie``) or from an ``Authorization: Bearer`` header that
  holds a JWT signed by that backend (an access token); their groups are read
  from the database on each request, so removing a membership takes effect at
  once.
- Any other ``Authorization: Bearer <API token>`` header is looked up as an
  API token and adds the token's group; an unknown, expired or malformed token
  answers 401. A backend-signed JWT that is not a valid access token (expired,
  revoked, a refresh token) answers 401 too.
- A cookie-authenticated state-changing request (POST, PUT, PATCH, DELETE)
  from another site answers 403 (the same ``Origin``/``Sec-Fetch-Site``
  policy as ``/login``); requests without those headers pass.
- There is no development bypass: ``ENVIRONMENT=development`` changes nothing.

Upstream declared these dependencies with FastAPI sub-dependencies
(``get_groups(user_token_data, header_token)``, ``has_access(groups)``, ...).
FastAPI reads a dependency's signature to decide what to take from the request,
so the signature it sees here is ``(request)`` only: showing upstream's
parameters would make them query parameters a client could set. Direct calls
with upstream's arguments (positional or keyword) still work and warn with
`DeprecationWarning`. Upstream's FastAPI security objects (`oauth2_scheme`,
`http_bearer`, `OAuth2AuthorizationCodeBearerWithCookie`) are importable from
here when FastAPI is installed; they are built on first use.

About 420 lines: upstream's module of request dependencies, kept at its path
and whole.
"""

from __future__ import annotations

import functools
import inspect
import warnings
from collections.abc import Callable
from typing import Any, TypeVar, cast

import jwt
from starlette.authentication import AuthenticationError
from starlette.requests import HTTPConnection

from ..errors import (
    AuthConfigurationError,
    InvalidCallError,
    MissingDependencyError,
    RequestRefusedError,
)
from ..legacy.context import get_backend
from .database import get_access_token, get_auth_database
from .model import TokenData

__all__ = [
    "get_groups",
    "get_groups_from_header_token",
    "get_scopes",
    "get_user_id",
    "get_user_token_from_cookie",
    "has_access",
    "require_scopes",
]

_F = TypeVar("_F", bound=Callable[..., Any])
_T = TypeVar("_T")


def _is_request_call(args: tuple[Any, ...], kwargs: dict[str, Any]) -> bool:
    """Whether a dependency was called as ``f(request)`` or ``f(request=request)``."""
    if len(args) == 1 and not kwargs:
        return isinstance(args[0], HTTPConnection)
    if not args and set(kwargs) == {"request"}:
        return isinstance(kwargs["request"], HTTPConnection)
    return False


def _also_upstream(
    upstream: Callable[..., Any], *names: str, required: tuple[str, ...] = ()
) -> Callable[[_F], _F]:
    """Let a request dependency also take upstream's direct-call arguments.

    Called with the request (as FastAPI and Starlette endpoints do) the
    decorated function runs. Called with upstream's parameters ``names``
    (positionally or by keyword), ``upstream`` runs with them after a
    `DeprecationWarning`. The signature FastAPI sees stays ``(request)``.
    """
    parameters = [
        inspect.Parameter(
            name,
            inspect.Parameter.POSITIONAL_OR_KEYWORD,
            default=inspect.Parameter.empty if name in required else None,
        )
        for name in names
    ]
    legacy = inspect.Signature(parameters)

    def decorate(func: _F) -> _F:
        name = func.__name__

        @functools.wraps(func)
        def dependency(*args: Any, **kwargs: Any) -> Any:
            if _is_request_call(args, kwargs):
                return func(*args, **kwargs)
            try:
                bound = legacy.bind(*args, **kwargs)
            except TypeError as exc:
                raise InvalidCallError(
                    f"{name}() takes the request, or upstream's arguments "
                    f"({', '.join(names)}): {exc}"
                ) from exc
            bound.apply_defaults()
            warnings.warn(
                f"calling {name}() with upstream's arguments ({', '.join(names)}) "
                f"is deprecated; use Depends({name}) or {name}(request)",
                DeprecationWarning,
                stacklevel=2,
            )
            return upstream(**bound.arguments)

        # The wrapper takes more call forms than ``func``; FastAPI and type
        # checkers see ``func``'s signature (``functools.wraps``).
        return cast(_F, dependency)

    return decorate


def _cached(request: HTTPConnection, key: str, compute: Callable[[], _T]) -> _T:
    """``compute()``, computed once per request (kept in the request's state)."""
    state = request.scope.setdefault("state", {})
    name = f"macrostrat_auth_{key}"
    if name not in state:
        state[name] = compute()
    value: _T = state[name]
    return value


def _unauthorized(message: str) -> RequestRefusedError:
    return RequestRefusedError(
        401, detail=message, headers={"WWW-Authenticate": "Bearer"}
    )


def _bearer(request: HTTPConnection) -> str | None:
    """The value of a ``Bearer`` Authorization header; 401 for another scheme."""
    header = request.headers.get("authorization")
    if header is None:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise _unauthorized("Authorization header must be 'Bearer <token>'")
    return value.strip()


def _is_backend_jwt(value: str) -> bool:
    """Whether ``value`` is a JWT whose signature the configured backend made.

    Only the signature is checked here (not expiry or revocation), to tell
    the backend's tokens from API tokens.
    """
    if value.count(".") != 2:
        return False
    backend = get_backend()
    try:
        jwt.decode(
            value,
            key=backend.encode_key,
            algorithms=[backend.algorithm],
            options={"verify_exp": False, "verify_nbf": False, "verify_iat": False},
        )
    except jwt.PyJWTError:
        return False
    return True


def _token_data(token: str | None) -> TokenData | None:
    """Upstream's ``get_user_token_from_cookie(token)``: the access token's user."""
    if token is None:
        return None
    try:
        payload = get_backend().decode_token(token, "access")
    except AuthenticationError:
        return None
    sub = payload["identity"]
    return TokenData(sub=sub, groups=get_auth_database().group_ids_for(sub))


def _header_group(header_token: Any) -> int | None:
    """Upstream's ``get_groups_from_header_token(header_token)``.

    ``header_token`` is FastAPI's ``HTTPAuthorizationCredentials`` (what
    `http_bearer` returns), the bare token string, or None.
    """
    if header_token is None:
        return None
    scheme = getattr(header_token, "scheme", "Bearer")
    value = getattr(header_token, "credentials", header_token)
    if (
        not isinstance(scheme, str)
        or scheme.lower() != "bearer"
        or not isinstance(value, str)
        or not value.strip()
    ):
        raise _unauthorized("Authorization header must be 'Bearer <token>'")
    value = value.strip()
    if _is_backend_jwt(value):
        return None
    token = get_access_token(value)
    if token is None:
        raise _unauthorized("Unknown or expired API token")
    return token.group


def _merge_groups(
    user_token_data: TokenData | None = None, header_token: int | None = None
) -> list[int]:
    """Upstream's ``get_groups(user_token_data, header_token)``."""
    groups = list(user_token_data.groups) if user_token_data is not None else []
    if header_token is not None and header_token not in groups:
        groups.append(header_token)
    return groups


def _sub_of(user_token_data: TokenData | None = None) -> str | None:
    """Upstream's ``get_user_id(user_token_data)``."""
    return user_token_data.sub if user_token_data is not None else None


def _groups_have_access(groups: list[int]) -> bool:
    """Upstream's ``has_access(groups)``, with the configured access groups."""
    return bool(set(groups) & get_auth_database().access_group_ids())


@_also_upstream(_token_data, "token", required=("token",))
def get_user_token_from_cookie(request: HTTPConnection) -> TokenData | None:
    """The user named by a valid access token, with their group ids, or None.

    The token is the access cookie, else a ``Bearer`` header holding a JWT
    signed by the backend. An invalid, expired, revoked or refresh cookie
    counts as no token; such a Bearer JWT answers 401. A state-changing
    request (not GET, HEAD, OPTIONS or TRACE) that carries the access cookie
    and comes from another site (``Origin`` or ``Sec-Fetch-Site``; see
    `JWTBackend.cross_site_reason`) answers 403, so every dependency built
    on this one (`get_groups`, `has_access`, `get_scopes`,
    `require_scopes`, ...) refuses cross-site form posts.
    """

    def compute() -> TokenData | None:
        backend = get_backend()
        token = request.cookies.get(backend.cookie_name("access"))
        from_header = False
        reason = backend.refuses_cookie(request)
        if reason is not None:
            raise RequestRefusedError(
                403, detail=f"Cross-site request refused: {reason}"
            )
        if not token:
            value = _bearer(request)
            if value is None or not _is_backend_jwt(value):
                return None
            token, from_header = value, True
        try:
            payload = backend.decode_token(token, "access")
        except AuthenticationError as err:
            if from_header:
                raise _unauthorized("Invalid or expired access token") from err
            return None
        sub = payload["identity"]
        return TokenData(sub=sub, groups=get_auth_database().group_ids_for(sub))

    return _cached(request, "token_data", compute)


@_also_upstream(_header_group, "header_token", required=("header_token",))
def get_groups_from_header_token(request: HTTPConnection) -> int | None:
    """The group of the request's ``Bearer`` API token, or None.

    None without a header, or when the header holds a JWT signed by the
    backend (an access token, handled by `get_user_token_from_cookie`).

    Raises:
        RequestRefusedError: (an ``HTTPException``) 401 for an unknown or
            expired token or a non-Bearer header.
    """

    def compute() -> int | None:
        value = _bearer(request)
        if value is None or _is_backend_jwt(value):
            return None
        token = get_access_token(value)
        if token is None:
            raise _unauthorized("Unknown or expired API token")
        return token.group

    return _cached(request, "header_group", compute)


@_also_upstream(_merge_groups, "user_token_data", "header_token")
def get_groups(request: HTTPConnection) -> list[int]:
    """Group ids of the request: the cookie user's groups plus the API token's."""
    data = get_user_token_from_cookie(request)
    groups = list(data.groups) if data else []
    header_group = get_groups_from_header_token(request)
    if header_group is not None and header_group not in groups:
        groups.append(header_group)
    return groups


@_also_upstream(_sub_of, "user_token_data")
def get_user_id(request: HTTPConnection) -> str | None:
    """The identity (``sub``; the ORCID iD for ORCID users) of the cookie user."""
    data = get_user_token_from_cookie(request)
    return data.sub if data else None


@_also_upstream(_groups_have_access, "groups", required=("groups",))
def has_access(request: HTTPConnection) -> bool:
    """Whether the request belongs to one of the configured ``access_groups``."""
    groups = set(get_groups(request))
    return bool(groups & get_auth_database().access_group_ids())


def get_scopes(request: HTTPConnection) -> list[str]:
    """The request's scopes: ``authenticated`` for a user, plus its group names.

    ``["public"]`` when there is neither a user nor an API token.
    """
    user = get_user_token_from_cookie(request)
    groups = get_groups(request)
    if user is None and not groups:
        return ["public"]
    scopes = ["authenticated"] if user is not None else []
    scopes += get_auth_database().group_names(groups)
    return scopes


def require_scopes(*scopes: str) -> Callable[[HTTPConnection], list[str]]:
    """A dependency that answers 401/403 unless the request has every scope.

    Usage: ``@app.get("/x", dependencies=[Depends(require_scopes("admin"))])``.
    Anonymous requests get 401, authenticated ones lacking a scope 403.

    Parameters:
        scopes: the scopes (group names, or ``authenticated``) required.

    Raises:
        AuthConfigurationError: (a ValueError) no scopes, or a scope that is
            not a non-empty string.
    """
    if not scopes or not all(isinstance(s, str) and s for s in scopes):
        raise AuthConfigurationError("require_scopes() needs one or more scope names")

    def dependency(request: HTTPConnection) -> list[str]:
        have = get_scopes(request)
        if have == ["public"]:
            raise _unauthorized("Authentication required")
        missing = [s for s in scopes if s not in have]
        if missing:
            raise RequestRefusedError(
                403, detail=f"Missing scope(s): {', '.join(missing)}"
            )
        return have

    dependency.__name__ = f"require_scopes({', '.join(scopes)})"
    return dependency


# Upstream constants, kept as deprecated aliases (all were unused upstream
# except GROUP_TOKEN_SALT, whose bcrypt hashes nothing here looks up).
_DEPRECATED: dict[str, tuple[object, str]] = {
    "ALGORITHM": ("HS256", "the algorithm is the JWTBackend's `algorithm`"),
    "ACCESS_TOKEN_EXPIRE_MINUTES": (
        1440,
        "the lifetime is the JWTBackend's `access_max_age` (seconds)",
    ),
    "GROUP_TOKEN_LENGTH": (32, "generate_api_token() makes 256-bit tokens"),
    "GROUP_TOKEN_SALT": (
        b"$2b$12$yQrslvQGWDFjwmDBMURAUe",
        "API tokens are stored as HMAC-SHA256 under a server key "
        "(MACROSTRAT_AUTH_TOKEN_KEY), so bcrypt hashes made with this public "
        "salt are never looked up; reissue such tokens with create_api_token()",
    ),
}
# Upstream's FastAPI security objects, built on first access (they need FastAPI,
# which is not a dependency of this package).
_FASTAPI_NAMES = (
    "oauth2_scheme",
    "http_bearer",
    "OAuth2AuthorizationCodeBearerWithCookie",
)


def __getattr__(name: str) -> Any:
    """Upstream names: deprecated constants warn; FastAPI objects load on demand."""
    if name in _DEPRECATED:
        value, hint = _DEPRECATED[name]
        warnings.warn(
            f"macrostrat.auth_system.core.main.{name} is deprecated and unused; {hint}",
            DeprecationWarning,
            stacklevel=2,
        )
        return value
    if name in _FASTAPI_NAMES:
        try:
            from . import _fastapi_security
        except ModuleNotFoundError as exc:
            if exc.name is None or exc.name.partition(".")[0] != "fastapi":
                raise
            raise MissingDependencyError(
                f"macrostrat.auth_system.core.main.{name} is a FastAPI object; "
                "install fastapi to use it (the dependencies in this module do "
                "not need it)",
                name=f"{__name__}.{name}",
            ) from exc
        return getattr(_fastapi_security, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
