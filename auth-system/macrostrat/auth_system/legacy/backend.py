"""The JWT authentication backend for Starlette's AuthenticationMiddleware.

About 570 lines: the `JWTBackend` is upstream's one class (tokens, cookies, the
middleware hook and the revocation and cross-site checks it owns), kept whole
so upstream's subclasses keep working.
"""

from __future__ import annotations

import logging
import time
import uuid
import warnings
from collections.abc import Iterable
from typing import Any, Literal, TypeVar

import jwt
from jwt.types import Options
from starlette.authentication import (
    AuthCredentials,
    AuthenticationBackend,
    AuthenticationError,
    SimpleUser,
    UnauthenticatedUser,
)
from starlette.concurrency import run_in_threadpool
from starlette.requests import HTTPConnection
from starlette.responses import Response

from ..errors import (
    AuthConfigurationError,
    InvalidArgumentError,
    InvalidCallError,
    InvalidCredentialsError,
    RevocationStoreError,
    TokenClaimError,
)
from ._request_checks import (
    client_address,
    cross_site_reason,
    is_state_changing,
    parse_trusted_proxies,
)
from ._revocations import (
    DEFAULT_REVOCATION_STORE,
    BaseRevocationStore,
    RevocationStore,
)
from ._throttle import LoginThrottle

__all__ = [
    "BaseRevocationStore",
    "JWTBackend",
    "RevocationStore",
    "day",
    "hour",
    "month",
]

log = logging.getLogger(__name__)

hour = 3600
day = 24 * hour
month = 30 * day

MIN_KEY_BYTES = 32
ALGORITHMS = ("HS256", "HS384", "HS512")
TokenType = Literal["access", "refresh"]
REQUIRED_CLAIMS = ("iat", "nbf", "exp", "type", "identity", "jti")

_R = TypeVar("_R", bound=Response)


def _as_key(encode_key: str | bytes | None) -> str | bytes:
    if encode_key is None or not isinstance(encode_key, (str, bytes)):
        raise AuthConfigurationError(
            "JWTBackend needs a secret key (str or bytes); got "
            f"{type(encode_key).__name__}. Generate one with "
            "`python -c 'import secrets; print(secrets.token_urlsafe(48))'`."
        )
    size = len(
        encode_key.encode("utf-8") if isinstance(encode_key, str) else encode_key
    )
    if size < MIN_KEY_BYTES:
        raise AuthConfigurationError(
            f"JWTBackend secret key is {size} bytes long; at least {MIN_KEY_BYTES} "
            "bytes are required. Generate one with "
            "`python -c 'import secrets; print(secrets.token_urlsafe(48))'`."
        )
    return encode_key


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _describe(err: BaseException) -> str:
    """``err``'s message, with its cause's (for logs only, never for clients)."""
    cause = err.__cause__
    return f"{err}: {cause}" if cause is not None else str(err)


class JWTBackend(AuthenticationBackend):
    """Authenticate requests from JWTs in cookies or a ``Bearer`` header.

    Access and refresh tokens carry the claims ``iat``, ``nbf``, ``exp``
    (integers), ``type`` (``access`` or ``refresh``), ``identity``, ``role``,
    ``roles`` and ``jti``. Cookies are named ``access_token_cookie`` and
    ``refresh_token_cookie``.

    Parameters:
        encode_key: the signing secret, at least 32 bytes.
        algorithm: the only algorithm accepted when signing and verifying
            (``HS256``, ``HS384`` or ``HS512``).
        secure_cookies: set the ``Secure`` flag on cookies (turn off only for
            local development over plain HTTP).
        samesite: the ``SameSite`` cookie attribute (``lax`` or ``strict``, or
            ``none``, which requires ``secure_cookies``).
        access_max_age: access token lifetime in seconds (default one day).
        refresh_max_age: refresh token lifetime in seconds (default 30 days).
        cookie_path: the ``Path`` of the access cookie.
        refresh_cookie_path: the ``Path`` of the refresh cookie. By default it
            is the folder of the route that sets it (where `AuthAPI` is
            mounted, e.g. ``/auth``), so browsers send the refresh token only
            to ``/login``, ``/logout``, ``/refresh`` and their siblings.
        cookie_domain: the cookie ``Domain``, or None for host-only cookies.
        revocation_store: where revoked token ids are kept. By default (None)
            the ``revoked_token`` table of the current auth database when one
            is configured (`macrostrat.auth_system.core.connect_engine`;
            shared by every process on it), else this backend's own
            `RevocationStore` (per process). A store given here always wins.
        trusted_origins: other origins (``https://app.example.org``) allowed
            to make cookie-authenticated state-changing requests (``/login``,
            ``/logout``, ``/refresh``, ``POST``/``PUT``/``DELETE`` routes);
            the request's own origin always is.
        trusted_proxies: addresses or networks (``10.0.0.0/8``) of reverse
            proxies whose ``X-Forwarded-For`` names the client (see
            `client_address`). Empty by default: the client is the ASGI
            peer, and the header is ignored.
        login_throttle: a `LoginThrottle` (its limits and store), True for
            the defaults, or False to turn login throttling off.
    """

    def __init__(
        self,
        encode_key: str | bytes,
        *,
        algorithm: str = "HS256",
        secure_cookies: bool = True,
        samesite: Literal["lax", "strict", "none"] = "lax",
        access_max_age: int = day,
        refresh_max_age: int = month,
        cookie_path: str = "/",
        refresh_cookie_path: str | None = None,
        cookie_domain: str | None = None,
        revocation_store: BaseRevocationStore | None = None,
        trusted_origins: Iterable[str] = (),
        trusted_proxies: Iterable[str] = (),
        login_throttle: LoginThrottle | bool = True,
    ) -> None:
        self.encode_key = _as_key(encode_key)
        if algorithm not in ALGORITHMS:
            raise AuthConfigurationError(
                f"Unsupported JWT algorithm {algorithm!r}; use one of {ALGORITHMS}."
            )
        if samesite not in ("lax", "strict", "none"):
            raise AuthConfigurationError(f"Invalid SameSite value {samesite!r}.")
        if samesite == "none" and not secure_cookies:
            raise AuthConfigurationError("SameSite=none requires secure_cookies=True.")
        for name, value in (
            ("access_max_age", access_max_age),
            ("refresh_max_age", refresh_max_age),
        ):
            if not _is_int(value) or value <= 0:
                raise AuthConfigurationError(f"{name} must be a positive integer.")
        self.algorithm = algorithm
        self.secure_cookies = secure_cookies
        self.samesite = samesite
        self.access_max_age = access_max_age
        self.refresh_max_age = refresh_max_age
        for name, path in (
            ("cookie_path", cookie_path),
            ("refresh_cookie_path", refresh_cookie_path),
        ):
            if path is not None and (
                not isinstance(path, str) or not path.startswith("/")
            ):
                raise AuthConfigurationError(f"{name} must start with '/'.")
        if isinstance(trusted_origins, str):
            trusted_origins = [trusted_origins]
        origins = frozenset(str(o).rstrip("/").lower() for o in trusted_origins)
        self.cookie_path = cookie_path
        self.refresh_cookie_path = refresh_cookie_path
        self.trusted_origins = origins
        self.cookie_domain = cookie_domain
        self._local_revocations = RevocationStore()
        self.revocation_store = revocation_store  # None: the default
        self.trusted_proxies = parse_trusted_proxies(trusted_proxies)
        if isinstance(login_throttle, bool):
            login_throttle = LoginThrottle(enabled=login_throttle)
        if not isinstance(login_throttle, LoginThrottle):
            raise AuthConfigurationError(
                "login_throttle must be a LoginThrottle, True or False; got "
                f"{type(login_throttle).__name__}"
            )
        self.login_throttle = login_throttle

    @property
    def revocation_store(self) -> BaseRevocationStore:
        """The revocation store in use now.

        The store given to the backend, else `DEFAULT_REVOCATION_STORE` (the
        current auth database's ``revoked_token`` table, when one is
        configured), else the backend's own in-process `RevocationStore`.
        Assigning a store makes it the backend's own choice; assigning None
        returns to the default.
        """
        if self._revocation_store is not None:
            return self._revocation_store
        default = DEFAULT_REVOCATION_STORE.current()
        if default is not None:
            return default
        return self._local_revocations

    @revocation_store.setter
    def revocation_store(self, store: BaseRevocationStore | None) -> None:
        if store is not None and not isinstance(store, BaseRevocationStore):
            raise AuthConfigurationError(
                "revocation_store must be a BaseRevocationStore (such as "
                f"RevocationStore) or None; got {type(store).__name__}"
            )
        self._revocation_store = store

    # Encoding and decoding

    def _encode(self, payload: dict[str, Any], **kwargs: Any) -> str:
        return jwt.encode(payload, self.encode_key, algorithm=self.algorithm, **kwargs)

    def _decode(self, token: str, **kwargs: Any) -> dict[str, Any]:
        """Verify ``token`` and return its claims; raise `jwt.PyJWTError` if invalid.

        Only the configured algorithm is accepted, ``exp`` is required and
        ``iat``, ``nbf`` and ``exp`` must be integers (`TokenClaimError`, a
        `jwt.InvalidTokenError`, otherwise).
        """
        options: Options = {"require": ["exp", "iat", "nbf"]}
        options.update(kwargs.pop("options", {}))
        payload = jwt.decode(
            token,
            key=self.encode_key,
            algorithms=[self.algorithm],
            options=options,
            **kwargs,
        )
        for claim in ("iat", "nbf", "exp"):
            if not _is_int(payload.get(claim)):
                raise TokenClaimError(f"Claim {claim!r} must be an integer")
        return payload

    def create_token(
        self, type: TokenType, identity: str, roles: Iterable[str] = (), **data: Any
    ) -> str:
        """Return a signed token of ``type`` for ``identity`` with ``roles``."""
        if type not in ("access", "refresh"):
            raise InvalidArgumentError(f"Unknown token type {type!r}")
        max_age = int(data.pop("max_age", self._max_age(type)))
        now = int(time.time())
        roles = [str(r) for r in roles]
        payload = {
            **data,
            "iat": now,
            "nbf": now,
            "exp": now + max_age,
            "type": type,
            "identity": str(identity),
            "role": roles[0] if roles else None,
            "roles": roles,
            "jti": uuid.uuid4().hex,
        }
        return self._encode(payload)

    def _max_age(self, type: str) -> int:
        return self.refresh_max_age if type == "refresh" else self.access_max_age

    def decode_token(self, token: str, type: TokenType = "access") -> dict[str, Any]:
        """Validate ``token`` as a token of ``type``.

        Raises:
            InvalidCredentialsError: (Starlette's `AuthenticationError`) the
                token is malformed, badly signed, expired, revoked, of another
                type or lacks a claim. PyJWT's error is the ``__cause__``; the
                message does not repeat it. Also when the revocation store
                cannot be used (fail closed): its `RevocationStoreError` is
                the ``__cause__``, and the refusal is logged as an error.
        """
        payload = self._verify(token, type)
        jti = str(payload["jti"])
        try:
            revoked = self.revocation_store.is_revoked(jti)
        except RevocationStoreError as err:
            log.error("Refused a %s token: %s", type, err)
            raise InvalidCredentialsError(
                "Token revocation could not be checked"
            ) from err
        if revoked:
            raise InvalidCredentialsError("Token has been revoked")
        return payload

    def _verify(self, token: str, type: TokenType) -> dict[str, Any]:
        """`decode_token` without the revocation check."""
        try:
            payload = self._decode(token)
        except jwt.PyJWTError as err:
            raise InvalidCredentialsError(
                f"Invalid token ({err.__class__.__name__})"
            ) from err
        for claim in REQUIRED_CLAIMS:
            if claim not in payload:
                raise InvalidCredentialsError(f"Token has no {claim!r} claim")
        if payload["type"] != type:
            raise InvalidCredentialsError(f"Expected a {type} token")
        identity = payload["identity"]
        if not isinstance(identity, str) or not identity or "\x00" in identity:
            raise InvalidCredentialsError("Token identity is invalid")
        roles = payload.get("roles", [])
        if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
            raise InvalidCredentialsError("Token roles are invalid")
        return payload

    # Requests and responses

    def cross_site_reason(self, conn: HTTPConnection) -> str | None:
        """Why ``conn`` looks cross-site (refuse it), or None.

        A cross-site ``Origin`` (not the request's own host nor one of
        ``trusted_origins``) or ``Sec-Fetch-Site: cross-site`` (from an
        untrusted origin) is a reason; requests without those headers
        (non-browser clients) pass. ``/login``, ``/logout`` and ``/refresh``
        answer 403 for a reason; so do the core dependencies for
        cookie-authenticated state-changing requests.
        """
        return cross_site_reason(conn, self.trusted_origins)

    def client_address(self, conn: HTTPConnection) -> str:
        """The client's address: the ASGI peer, or per ``trusted_proxies``.

        ``X-Forwarded-For`` is read only when the peer is a trusted proxy: its
        entries are walked from the right, skipping trusted proxies, and the
        first other address is the client.
        """
        return client_address(conn, self.trusted_proxies)

    def refuses_cookie(self, conn: HTTPConnection) -> str | None:
        """Why the access cookie of ``conn`` must not be used, or None.

        A cookie is not used for a state-changing request (a method other
        than GET, HEAD, OPTIONS or TRACE) that `cross_site_reason` finds
        cross-site: browsers attach cookies to such requests whatever page
        sent them.
        """
        if not conn.cookies.get(self.cookie_name("access")):
            return None
        if not is_state_changing(conn):
            return None
        return self.cross_site_reason(conn)

    @staticmethod
    def cookie_name(type: str) -> str:
        """The cookie that holds tokens of ``type``."""
        return f"{type}_token_cookie"

    def get_token(self, request: HTTPConnection, type: TokenType = "access") -> str:
        """Find the raw token of ``type``: its cookie first, then a Bearer header."""
        token = request.cookies.get(self.cookie_name(type))
        if token:
            return token
        header = request.headers.get("Authorization")
        if header:
            scheme, _, value = header.partition(" ")
            if scheme.lower() == "bearer" and value.strip():
                return value.strip()
            raise InvalidCredentialsError(
                "Authorization header must use the Bearer scheme"
            )
        raise InvalidCredentialsError(f"Could not find {type} token on request")

    def get_payload(
        self, request: HTTPConnection, type: TokenType = "access"
    ) -> dict[str, Any]:
        """The validated claims of the request's token of ``type``.

        Raises:
            InvalidCredentialsError: no usable token (see `decode_token`).
        """
        return self.decode_token(self.get_token(request, type), type)

    def get_identity(self, request: HTTPConnection, type: TokenType = "access") -> str:
        """The ``identity`` claim of the request's valid token of ``type``.

        Raises:
            InvalidCredentialsError: no usable token (see `decode_token`).
        """
        identity: str = self.get_payload(request, type)["identity"]
        return identity

    async def authenticate(
        self,
        conn: HTTPConnection | None = None,
        *,
        request: HTTPConnection | None = None,
    ) -> tuple[AuthCredentials, SimpleUser | UnauthenticatedUser]:
        """Return credentials for a valid access token, else public credentials.

        Authenticated requests get the scope ``authenticated`` plus the roles
        stored in the token at login or refresh; nobody gets ``admin`` unless
        the identity provider gave them that role. A state-changing request
        from another site (see `refuses_cookie`) that carries the access cookie
        gets public credentials, so ``@requires(...)`` routes refuse it. So
        does a token whose revocation cannot be checked (see `decode_token`).
        A revocation store that waits on I/O (``blocking``) is asked from a
        worker thread, off the event loop.

        Parameters:
            conn: the request (Starlette's name for it).
            request: upstream's name for ``conn`` (deprecated; warns).
        """
        if request is not None:
            if conn is not None:
                raise InvalidCallError("authenticate() got both 'conn' and 'request'")
            warnings.warn(
                "JWTBackend.authenticate(request=...) is deprecated; pass the "
                "request positionally or as conn=...",
                DeprecationWarning,
                stacklevel=2,
            )
            conn = request
        if conn is None:
            raise InvalidCallError("authenticate() missing the request (conn)")
        reason = self.refuses_cookie(conn)
        if reason is not None:
            log.info(
                "Ignored the access cookie of a %s request from %s: %s",
                conn.scope.get("method"),
                self.client_address(conn),
                reason,
            )
            return AuthCredentials(["public"]), UnauthenticatedUser()
        has_token = bool(
            conn.cookies.get(self.cookie_name("access"))
            or conn.headers.get("Authorization")
        )
        try:
            if has_token and self.revocation_store.blocking:
                # The store waits on I/O (a database): off the event loop.
                payload = await run_in_threadpool(self.get_payload, conn, "access")
            else:
                payload = self.get_payload(conn, "access")
        except AuthenticationError as err:
            log.debug("Request is not authenticated: %s", _describe(err))
            return AuthCredentials(["public"]), UnauthenticatedUser()
        scopes = [
            "authenticated",
            *(r for r in payload["roles"] if r != "authenticated"),
        ]
        return AuthCredentials(scopes), SimpleUser(payload["identity"])

    def set_cookie(
        self, response: Response | None, type: TokenType, **data: Any
    ) -> str | None:
        """Create a token of ``type`` and set it as an HttpOnly cookie.

        With ``response=None`` the token is returned instead (upstream behaviour).
        ``data`` holds ``identity``, ``roles`` and optionally ``max_age``.
        """
        path = data.pop("path", None) or self.cookie_path
        max_age = int(data.get("max_age", self._max_age(type)))
        data["max_age"] = max_age
        identity = data.pop("identity")
        roles = data.pop("roles", None)
        if roles is None:
            role = data.pop("role", None)
            roles = [role] if role else []
        data.pop("role", None)
        token = self.create_token(type, identity, roles, **data)
        if response is None:
            return token
        response.set_cookie(
            self.cookie_name(type),
            token,
            max_age=max_age,
            path=path,
            domain=self.cookie_domain,
            secure=self.secure_cookies,
            httponly=True,
            samesite=self.samesite,
        )
        return None

    def refresh_path_for(self, request: HTTPConnection, suffix: str) -> str:
        """The refresh cookie ``Path`` for a response to ``request``.

        ``refresh_cookie_path`` if configured, else the request path without
        ``suffix`` (the route's own path inside the `AuthAPI` mount, such as
        ``/login``), e.g. ``/auth`` for ``/auth/login``.
        """
        if self.refresh_cookie_path is not None:
            return self.refresh_cookie_path
        path = request.url.path
        if suffix and path.endswith(suffix):
            path = path[: -len(suffix)]
        return path if path.startswith("/") and path != "" else "/"

    def set_login_cookies(
        self, response: _R, *, refresh_path: str | None = None, **data: Any
    ) -> _R:
        """Set access and refresh cookies on ``response`` and return it.

        Parameters:
            response: the response to add the cookies to.
            refresh_path: the refresh cookie ``Path`` (default
                ``refresh_cookie_path`` or ``cookie_path``).
            data: ``identity`` and ``roles``.
        """
        data.pop("max_age", None)
        data.pop("path", None)
        self.set_cookie(response, "access", **data)
        path = refresh_path or self.refresh_cookie_path or self.cookie_path
        self.set_cookie(response, "refresh", path=path, **data)
        return response

    def set_access_cookie(self, response: _R, **data: Any) -> _R:
        """Set an access cookie on ``response`` and return it."""
        data.pop("max_age", None)
        self.set_cookie(response, "access", **data)
        return response

    def revoke_request_tokens(self, request: HTTPConnection) -> None:
        """Revoke the request's valid access and refresh tokens server-side.

        Tokens that are missing, malformed, badly signed or expired are
        skipped; one already revoked is revoked again (harmless).

        Raises:
            RevocationStoreError: the revocation store could not be used (the
                tokens may not be revoked).
        """
        store = self.revocation_store
        for type in ("access", "refresh"):
            token = request.cookies.get(self.cookie_name(type))
            if not token and type == "refresh":
                continue
            try:
                payload = self._verify(self.get_token(request, type), type)
            except AuthenticationError:
                continue
            store.revoke(str(payload["jti"]), int(payload["exp"]))

    def logout(self, response: _R, *, refresh_path: str | None = None) -> _R:
        """Delete both cookies on ``response`` and return it.

        The refresh cookie is deleted at ``refresh_path`` (when given) and at
        ``cookie_path`` (where older versions set it).
        """
        cookies = [("access", self.cookie_path), ("refresh", self.cookie_path)]
        for path in {refresh_path, self.refresh_cookie_path} - {None, self.cookie_path}:
            cookies.append(("refresh", str(path)))
        for type, path in cookies:
            response.delete_cookie(
                self.cookie_name(type),
                path=path,
                domain=self.cookie_domain,
                secure=self.secure_cookies,
                httponly=True,
                samesite=self.samesite,
            )
        return response
