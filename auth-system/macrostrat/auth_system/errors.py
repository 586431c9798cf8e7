"""Errors raised by macrostrat.auth_system."""

from __future__ import annotations

__all__ = [
    "AuthConfigurationError",
    "AuthNotConfiguredError",
    "AuthSystemError",
    "OrcidLoginError",
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
