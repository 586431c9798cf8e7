"""Errors raised by macrostrat.auth_system.

Every error derives from `AuthSystemError`. Where a builtin (or the class a
caller of upstream's API already catches) fits, the error also derives from
it, so ``except ValueError``, ``except AuthenticationError`` or ``except
HTTPException`` keep working::

    AuthSystemError
    ├── AuthConfigurationError (ValueError)   unusable settings, raised when the
    │                                         backend, store, throttle or ORCID
    │                                         settings are built (at startup)
    ├── AuthNotConfiguredError (RuntimeError) no backend, identity provider or
    │                                         auth database is configured
    ├── InvalidArgumentError (ValueError)     an argument a function cannot use
    │                                         (an unknown token type, a lifetime
    │                                         that is not positive)
    ├── InvalidCallError (TypeError)          arguments that fit no form of a call
    ├── MissingDependencyError (ImportError)  an optional dependency (FastAPI) is
    │                                         not installed
    ├── InvalidRequestError (ValueError)      malformed input to an auth route;
    │                                         ``status_code`` (422, 413, 400)
    ├── InvalidCredentialsError (starlette.authentication.AuthenticationError)
    │                                         a request has no usable token:
    │                                         missing, malformed, expired,
    │                                         revoked or of the wrong type
    ├── TokenClaimError (jwt.InvalidTokenError)
    │                                         a signed token's ``iat``/``nbf``/
    │                                         ``exp`` is not an integer
    ├── RequestRefusedError (starlette.exceptions.HTTPException)
    │                                         a request dependency answers 401
    │                                         or 403 (``status_code``, ``detail``)
    ├── TooManyLoginAttemptsError             a locked login (429, ``retry_after``)
    ├── OrcidLoginError                       an ORCID login could not be
    │                                         completed (``status_code``)
    └── AuthDatabaseError                     the auth tables could not be used
        ├── LoginThrottleStoreError           the ``login_throttle`` table
        └── RevocationStoreError              the revocation store (the
                                              ``revoked_token`` table)

`core.main`'s upstream FastAPI cookie scheme (`oauth2_scheme`) raises a
`RequestRefusedError` that is also ``fastapi.HTTPException``, as upstream's did.

The error that caused one (the driver's, PyJWT's, a failed parse) is always its
``__cause__``. Messages of errors that reach an HTTP client never repeat the
client's input, the SQL parameters or the cause's text.
"""

from __future__ import annotations

from collections.abc import Mapping

import jwt
from starlette.authentication import AuthenticationError
from starlette.exceptions import HTTPException

__all__ = [
    "AuthConfigurationError",
    "AuthDatabaseError",
    "AuthNotConfiguredError",
    "AuthSystemError",
    "InvalidArgumentError",
    "InvalidCallError",
    "InvalidCredentialsError",
    "InvalidRequestError",
    "LoginThrottleStoreError",
    "MissingDependencyError",
    "OrcidLoginError",
    "RequestRefusedError",
    "RevocationStoreError",
    "TokenClaimError",
    "TooManyLoginAttemptsError",
]


class AuthSystemError(Exception):
    """Base class of every error raised by macrostrat.auth_system."""


class AuthConfigurationError(AuthSystemError, ValueError):
    """The authentication system was configured with an unusable value.

    Raised at construction time (for example a missing or short secret key, or an
    unsupported algorithm) so that a misconfigured application fails at startup
    rather than at the first request.
    """


class AuthNotConfiguredError(AuthSystemError, RuntimeError):
    """A backend, identity provider or auth database was requested before one was configured."""


class InvalidArgumentError(AuthSystemError, ValueError):
    """An argument has a value the function cannot use.

    For example `JWTBackend.create_token` with a token type other than
    ``access`` or ``refresh``, or `AuthDatabase.create_api_token` with a
    lifetime that is not positive.
    """


class InvalidCallError(AuthSystemError, TypeError):
    """A function was called with arguments that fit none of its call forms.

    For example `JWTBackend.authenticate` with both ``conn`` and upstream's
    ``request``, or a request dependency of `macrostrat.auth_system.core`
    called with neither the request nor upstream's arguments.
    """


class MissingDependencyError(AuthSystemError, ImportError):
    """A feature needs an optional dependency that is not installed.

    Upstream's FastAPI security objects in ``core.main`` need FastAPI, which
    is not a dependency of this package. The failed import is the
    ``__cause__``.
    """


class InvalidRequestError(AuthSystemError, ValueError):
    """A request to an auth route carried malformed input.

    Raised before the input reaches a password check or the database (for
    example a NUL character or an over-long user name, a value of the wrong
    JSON type, a body that is not UTF-8 JSON). The routes answer it with
    ``status_code``: 422 for a body that cannot be used, 413 for one that is
    too large, 400 for other malformed requests.

    Parameters:
        message: what is wrong (safe to show to the client: it never repeats
            the offending value).
        status_code: the HTTP status to answer with.
    """

    def __init__(self, message: str, status_code: int = 422) -> None:
        super().__init__(message)
        self.status_code = status_code


class InvalidCredentialsError(AuthSystemError, AuthenticationError):
    """A request carries no usable token.

    The token is missing, not a ``Bearer`` header, malformed, badly signed,
    expired, revoked, of the wrong type (a refresh token where an access token
    is needed) or lacks a claim. Also Starlette's `AuthenticationError`, which
    `JWTBackend.decode_token` and `JWTBackend.get_identity` raised upstream.
    PyJWT's error, when there is one, is the ``__cause__``; the message does
    not repeat it, and the routes answer 401 without it.
    """


class TokenClaimError(AuthSystemError, jwt.InvalidTokenError):
    """A correctly signed token has an ``iat``, ``nbf`` or ``exp`` that is not an integer.

    Raised by `JWTBackend._decode` beside PyJWT's own errors, so it is also a
    `jwt.InvalidTokenError` (and `jwt.PyJWTError`).
    """


class RequestRefusedError(AuthSystemError, HTTPException):
    """A request dependency refused the request.

    Also Starlette's `HTTPException`, so FastAPI and Starlette answer it with
    ``status_code`` (401 without usable credentials, with ``WWW-Authenticate:
    Bearer``; 403 for a cross-site request or a missing scope), ``detail`` and
    ``headers``.

    Parameters:
        status_code: the HTTP status to answer with.
        detail: the message for the client (never the client's input).
        headers: extra response headers.
    """

    def __init__(
        self,
        status_code: int,
        detail: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(status_code, detail, headers)


class OrcidLoginError(AuthSystemError):
    """An ORCID login could not be completed.

    ``status_code`` is the HTTP status the callback answers with (400 for a bad
    or missing ``state``, 401 when ORCID refuses, 403 for users not on the
    allow-list, 409 when the iD clashes with an existing account, 502 when the
    token endpoint cannot be used, 503 when the revocation store that records
    spent states cannot be used).
    """

    def __init__(self, message: str, status_code: int = 400) -> None:
        super().__init__(message)
        self.status_code = status_code


class TooManyLoginAttemptsError(AuthSystemError):
    """A login was refused because its account or client address is locked.

    Raised by `macrostrat.auth_system.legacy.LoginThrottle.begin` before the
    password is checked; ``/login`` answers it with 429 and a ``Retry-After``
    header of ``retry_after`` seconds. The same error is raised whether or not
    the account exists.

    Parameters:
        retry_after: whole seconds until the lock ends (at least 1).
        kinds: which counters are locked (``"account"``, ``"address"``).
    """

    status_code = 429

    def __init__(self, retry_after: int, kinds: tuple[str, ...] = ()) -> None:
        super().__init__(
            f"Too many failed login attempts; try again in {retry_after} s"
        )
        self.retry_after = max(1, int(retry_after))
        self.kinds = tuple(kinds)


class AuthDatabaseError(AuthSystemError):
    """A statement on the auth tables failed.

    For example creating a user whose username or ORCID iD is taken. The
    message holds the driver's primary message only (never the SQL
    parameters, such as a password hash); the driver's error is the
    ``__cause__``.
    """


class LoginThrottleStoreError(AuthDatabaseError):
    """The login throttle's store could not be read or updated.

    The database error (never with its SQL parameters in the message) is the
    ``__cause__``. Logins fail closed: the route answers 500 rather than skip
    the throttle.
    """


class RevocationStoreError(AuthDatabaseError):
    """The revocation store (revoked token ids) could not be read or updated.

    Raised by `macrostrat.auth_system.core.DatabaseRevocationStore` (the
    ``revoked_token`` table), and by custom stores that cannot be used. The
    database error (never with its SQL parameters in the message) is the
    ``__cause__``. Tokens fail closed: a token whose revocation cannot be
    checked is refused (`InvalidCredentialsError`, 401); a logout or refresh
    that cannot record its revocation answers 503 (a refresh issues no new
    tokens); the ORCID callback answers 503. When the connection was lost
    during ``COMMIT`` and the server could not say what became of it (the
    cause is `macrostrat.database.errors.CommitOutcomeUnknown`), the message
    says the outcome is unknown: the revocation may or may not have been
    kept, and the routes answer as for a failure.
    """
