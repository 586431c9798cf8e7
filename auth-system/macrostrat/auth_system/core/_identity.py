"""`DatabaseIdentityProvider`: users from the auth tables in PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterable

from ..legacy._passwords import hash_password
from ..legacy.identity import BaseUser, IdentityProvider
from ._store import AuthDatabase
from .database import get_auth_database
from .schema import User

__all__ = ["DatabaseIdentityProvider", "DatabaseUser"]


class DatabaseUser(BaseUser):
    """A `BaseUser` loaded from the ``user`` table; roles are its group names.

    Parameters:
        row: the ``User`` row.
    """

    def __init__(self, row: User) -> None:
        super().__init__(
            row.username or "",
            roles=sorted(g.name for g in row.groups),
            hashed_password=row.hashed_password,
        )
        self.id = row.id
        self.sub = row.sub
        self.name = row.name
        self.email = row.email


class DatabaseIdentityProvider(IdentityProvider):
    """Find, create and update users in an `AuthDatabase`.

    Used with `set_identity_provider`, `/login` checks passwords against the
    stored hash (legacy werkzeug hashes are replaced by scrypt on success, via
    `save_user`) and ORCID login finds or creates users by ORCID iD.

    Parameters:
        store: the auth database (default: the current one, read per call).
    """

    def __init__(self, store: AuthDatabase | None = None) -> None:
        self._store = store

    @property
    def store(self) -> AuthDatabase:
        """The auth database in use."""
        return self._store if self._store is not None else get_auth_database()

    def get_user(self, username: str) -> DatabaseUser | None:
        """The user called ``username``, or None."""
        row = self.store.get_user(username)
        return DatabaseUser(row) if row is not None else None

    def create_user(
        self,
        username: str,
        password: str | None,
        *,
        roles: Iterable[str] = (),
        name: str | None = None,
        email: str | None = None,
    ) -> DatabaseUser:
        """Create a user with a scrypt password hash, in groups ``roles``."""
        hashed = hash_password(password) if password is not None else None
        row = self.store.create_user(
            username, hashed, groups=roles, name=name, email=email
        )
        return DatabaseUser(row)

    def save_user(self, user: BaseUser) -> None:
        """Store ``user``'s password hash (after an upgrade on login)."""
        if user.hashed_password:
            self.store.set_password_hash(user.username, user.hashed_password)

    def find_orcid_user(self, orcid: str) -> DatabaseUser | None:
        """The existing user with ORCID iD ``orcid``, or None (nothing is created)."""
        row = self.store.get_user_by_sub(orcid)
        return DatabaseUser(row) if row is not None else None

    def find_or_create_orcid_user(
        self, orcid: str, name: str | None = None
    ) -> DatabaseUser:
        """The user with ORCID iD ``orcid``, created on first login."""
        return DatabaseUser(self.store.upsert_orcid_user(orcid, name))
