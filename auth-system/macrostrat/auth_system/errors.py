"""Errors raised by macrostrat.auth_system."""

from __future__ import annotations

__all__ = [
    "AuthConfigurationError",
    "AuthNotConfiguredError",
    "AuthSystemError",
    "InvalidRequestError",
    "LoginThrottleStoreError",
    "OrcidLoginError",
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
    """A backend or identity provider was requested before one was configured."""


class OrcidLoginError(AuthSystemError):
    """An ORCID login could not be completed.

    ``status_code`` is the HTTP status the callback answers with (400 for a bad
    or missing ``state``, 401 when ORCID refuses, 403 for users not on the
    allow-list, 409 when the iD clashes with an existing account, 502 when the token endpoint cannot be used).
    """

    def __init__(self, message: str, status_code: int = 400) -> None:
        super().__init__(message)
        self.status_code = status_code


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


class LoginThrottleStoreError(AuthSystemError):
    """The login throttle's store could not be read or updated.

    The database error (never with its SQL parameters in the message) is the
    ``__cause__``. Logins fail closed: the route answers 500 rather than skip
    the throttle.
    """
