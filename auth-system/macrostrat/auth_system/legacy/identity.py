"""Users and the identity provider interface."""

from __future__ import annotations

from collections.abc import Iterable

from ..errors import AuthConfigurationError
from ._passwords import hash_password, needs_rehash, verify_password

__all__ = ["BaseUser", "IdentityProvider"]


class BaseUser:
    """A user with a username, a password hash and roles.

    Password hashes come from `hash_password` (scrypt, random salt) and do not
    depend on the JWT secret. Legacy werkzeug hashes still verify; upstream
    hashed ``secret_key + password``, so `is_correct_password` also tries a
    ``legacy_pepper`` on those hashes (``/login`` passes the backend's secret).

    Parameters:
        username: the login name.
        password: the plaintext password to hash, if any.
        roles: role names, which become the user's scopes once logged in.
        hashed_password: an existing hash (instead of ``password``).
    """

    username: str
    hashed_password: str | None
    roles: tuple[str, ...]

    def __init__(
        self,
        username: str,
        password: str | None = None,
        *,
        roles: Iterable[str] = (),
        hashed_password: str | None = None,
    ) -> None:
        self.username = username
        self.roles = tuple(roles)
        self.hashed_password = hashed_password
        if password is not None:
            self.set_password(password)

    def set_password(self, plaintext: str) -> None:
        """Replace the stored hash with a fresh hash of ``plaintext``."""
        self.hashed_password = hash_password(str(plaintext))

    def is_correct_password(self, plaintext: str, *, legacy_pepper: str = "") -> bool:
        """Whether ``plaintext`` matches the stored hash (constant-time compare).

        Parameters:
            plaintext: the password to check.
            legacy_pepper: for legacy werkzeug hashes only, the text upstream
                prepended to the password before hashing: its JWT secret.
                ``/login`` passes the current backend's secret (when it is a
                ``str``); without it such hashes verify only if they were
                made without a pepper.
        """
        return verify_password(
            str(plaintext), self.hashed_password, legacy_pepper=legacy_pepper
        )

    @property
    def password_needs_upgrade(self) -> bool:
        """Whether the stored hash is a legacy or weaker hash."""
        return needs_rehash(self.hashed_password)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(username={self.username!r}, roles={self.roles!r})"
        )


class IdentityProvider:
    """Where users come from. Applications subclass this.

    The defaults find nobody: `get_user` returns None.
    """

    def create_user(self, username: str, password: str) -> BaseUser | None:
        """Create and store a user; return it."""
        return None

    def get_user(self, username: str) -> BaseUser | None:
        """Return the user called ``username``, or None."""
        return None

    def save_user(self, user: BaseUser) -> None:
        """Persist changes to ``user`` (called after a password hash upgrade)."""
        return None

    def find_orcid_user(self, orcid: str) -> BaseUser | None:
        """Return the existing user with ORCID iD ``orcid``, or None; never create.

        ORCID login calls it when ``allowed_groups`` restricts who may log in,
        to decide before any user is created. The default raises
        `AuthConfigurationError`.

        Parameters:
            orcid: the ORCID iD.
        """
        raise AuthConfigurationError(
            f"{type(self).__name__} does not implement find_orcid_user(orcid), "
            "which ORCID login with allowed_groups needs"
        )

    def find_or_create_orcid_user(
        self, orcid: str, name: str | None = None
    ) -> BaseUser | None:
        """Return the user with ORCID iD ``orcid``, creating it on first login.

        Needed only for ORCID login; the default raises
        `AuthConfigurationError`. Return None to refuse the login.

        Parameters:
            orcid: the ORCID iD (``0000-0002-1825-0097``).
            name: the name ORCID returned, if any.
        """
        raise AuthConfigurationError(
            f"{type(self).__name__} does not support ORCID login; implement "
            "find_or_create_orcid_user(orcid, name) or use "
            "macrostrat.auth_system.core.DatabaseIdentityProvider"
        )
