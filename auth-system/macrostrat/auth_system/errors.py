"""Errors raised by macrostrat.auth_system."""

from __future__ import annotations

__all__ = ["AuthConfigurationError", "AuthNotConfiguredError", "AuthSystemError"]


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
