"""`AuthDatabase`: users, groups and API tokens stored in PostgreSQL.

About 410 lines: `AuthDatabase` is the one owner of the auth tables' SQL for
users, groups and tokens.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from functools import cached_property

from sqlalchemy import Engine, delete, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.sql import func

from macrostrat.database import Database

from ..errors import AuthConfigurationError, AuthDatabaseError, InvalidArgumentError
from ._ddl import check_schema, create_auth_schema
from ._revocations import DatabaseRevocationStore
from ._throttle import DatabaseThrottleStore
from ._tokens import check_token_key, generate_api_token, hash_api_token, token_matches
from .schema import SCHEMA, Group, GroupMembers, Token, User

__all__ = ["TOKEN_KEY_ENV", "AuthDatabase"]

TOKEN_KEY_ENV = "MACROSTRAT_AUTH_TOKEN_KEY"
"""The environment variable read for the API-token key when none is passed."""


def _driver_message(err: SQLAlchemyError) -> str:
    """The driver's primary message for ``err`` (never the SQL parameters)."""
    diag = getattr(getattr(err, "orig", None), "diag", None)
    primary = getattr(diag, "message_primary", None)
    return primary if isinstance(primary, str) and primary else type(err).__name__


def _storable(value: object) -> bool:
    """Whether ``value`` is text PostgreSQL can store: no NUL, valid UTF-8.

    Lookups with other values cannot match a row, so they answer "not found"
    instead of reaching the database (which refuses NUL in text parameters).
    """
    if not isinstance(value, str) or "\x00" in value:
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _check_access_groups(groups: Iterable[str | int]) -> tuple[str | int, ...]:
    result = tuple(groups)
    if not result:
        raise AuthConfigurationError(
            "access_groups is empty: has_access() would deny everyone; name at "
            "least one group (by name or id)"
        )
    for group in result:
        if isinstance(group, bool) or not isinstance(group, (str, int)) or group == "":
            raise AuthConfigurationError(
                f"access_groups entries are group names or ids; got {group!r}"
            )
    return result


_TABLES = ("user", "group", "group_members", "token")
"""The tables every version of the auth schema has."""

_ADDED_TABLES = ("login_throttle", "revoked_token")
"""Tables added since the first version, in order (older schemas lack them)."""


class AuthDatabase:
    """The auth tables of one PostgreSQL database.

    Parameters:
        database: a `macrostrat.database.Database` or a database URL.
        schema: the schema holding the tables (see `create_auth_schema`).
        token_key: the server key API tokens are hashed with (HMAC-SHA256), at
            least 32 bytes; default ``$MACROSTRAT_AUTH_TOKEN_KEY``.
        access_groups: the groups (names or ids) that `has_access` accepts.

    Raises:
        AuthConfigurationError: a missing or short token key, a bad schema name
            or empty ``access_groups``.
    """

    def __init__(
        self,
        database: Database | str,
        *,
        schema: str = SCHEMA,
        token_key: str | bytes | None = None,
        access_groups: Iterable[str | int] = ("admin",),
    ) -> None:
        if token_key is None:
            token_key = os.environ.get(TOKEN_KEY_ENV)
        self.token_key = check_token_key(token_key)
        self.schema = check_schema(schema)
        self.access_groups = _check_access_groups(access_groups)
        # SQL parameters (password hashes among them) stay out of error text.
        self.database = (
            database
            if isinstance(database, Database)
            else Database(database, hide_parameters=True)
        )
        engine = self.database.engine
        if schema != SCHEMA:
            engine = engine.execution_options(schema_translate_map={SCHEMA: schema})
        self.engine: Engine = engine
        self.session_maker = sessionmaker(bind=engine, expire_on_commit=False)

    def __repr__(self) -> str:
        return f"<AuthDatabase {self.schema!r} on {self.database!r}>"

    # Schema

    def create_schema(self) -> None:
        """Create the schema and tables if they do not exist."""
        create_auth_schema(self.database, self.schema)

    def check_schema(self) -> None:
        """Raise `AuthConfigurationError` unless the auth tables exist.

        The message names the missing tables and what to run. A schema that
        has the original tables but lacks ones added since (``login_throttle``,
        ``revoked_token``) was created by an earlier version: re-running
        `create_auth_schema` adds just those. Nothing is created here.
        """
        with self.database.engine.connect() as conn:
            missing = [
                name
                for name in (*_TABLES, *_ADDED_TABLES)
                if conn.execute(
                    text(
                        "SELECT to_regclass(format('%I.%I', CAST(:s AS text), CAST(:t AS text)))"
                    ),
                    {"s": self.schema, "t": name},
                ).scalar()
                is None
            ]
        if not missing:
            return
        fix = (
            f"run create_auth_schema(db, {self.schema!r}) once (from "
            "macrostrat.auth_system.core; it only adds missing tables and is "
            "safe to re-run) or connect with connect_engine(..., "
            "create_schema=True)"
        )
        if not set(missing) & set(_TABLES):
            raise AuthConfigurationError(
                f"Auth schema {self.schema!r} was created by an earlier version "
                f"and lacks the newer table(s) {', '.join(missing)}: {fix}"
            )
        raise AuthConfigurationError(
            f"Auth schema {self.schema!r} lacks table(s) {', '.join(missing)}: {fix}"
        )

    @cached_property
    def throttle_store(self) -> DatabaseThrottleStore:
        """The login throttle's counters in this database's ``login_throttle`` table."""
        return DatabaseThrottleStore(self)

    @cached_property
    def revocation_store(self) -> DatabaseRevocationStore:
        """Revoked token ids in this database's ``revoked_token`` table."""
        return DatabaseRevocationStore(self)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session in one transaction, committed when the block succeeds."""
        with self.session_maker() as session, session.begin():
            yield session

    # Groups

    def create_group(self, name: str) -> int:
        """Return the id of group ``name``, creating it if needed."""
        with self.session() as session:
            session.execute(insert(Group).values(name=name).on_conflict_do_nothing())
            return session.scalars(select(Group.id).where(Group.name == name)).one()

    def add_member(self, user_id: int, group: str | int) -> None:
        """Put user ``user_id`` in ``group`` (a name, created if needed, or an id)."""
        group_id = self.create_group(group) if isinstance(group, str) else group
        with self.session() as session:
            session.execute(
                insert(GroupMembers)
                .values(group_id=group_id, user_id=user_id)
                .on_conflict_do_nothing()
            )

    def group_ids_for(self, username: str) -> list[int]:
        """The ids of the groups of user ``username`` (empty if unknown)."""
        if not _storable(username):
            return []
        with self.session() as session:
            rows = session.scalars(
                select(GroupMembers.group_id)
                .join(User, User.id == GroupMembers.user_id)
                .where(User.username == username)
                .order_by(GroupMembers.group_id)
            )
            return list(rows)

    def group_names(self, ids: Iterable[int]) -> list[str]:
        """The names of groups ``ids``, in id order."""
        ids = list(ids)
        if not ids:
            return []
        with self.session() as session:
            rows = session.scalars(
                select(Group.name).where(Group.id.in_(ids)).order_by(Group.id)
            )
            return list(rows)

    def access_group_ids(self) -> set[int]:
        """The ids of the configured ``access_groups`` that exist."""
        names = [g for g in self.access_groups if isinstance(g, str)]
        ids = {g for g in self.access_groups if isinstance(g, int)}
        if names:
            with self.session() as session:
                ids.update(
                    session.scalars(select(Group.id).where(Group.name.in_(names)))
                )
        return ids

    # Users

    def get_user(self, username: str) -> User | None:
        """The user called ``username`` (with its groups loaded), or None.

        None too for names no row can have (NUL characters, lone surrogates),
        without a query.
        """
        if not _storable(username):
            return None
        with self.session() as session:
            return session.scalars(
                select(User).where(User.username == username)
            ).one_or_none()

    def get_user_by_sub(self, sub: str) -> User | None:
        """The user whose ``sub`` (ORCID iD) is ``sub``, or None; never creates."""
        if not _storable(sub):
            return None
        with self.session() as session:
            return session.scalars(select(User).where(User.sub == sub)).one_or_none()

    def create_user(
        self,
        username: str,
        hashed_password: str | None = None,
        *,
        groups: Iterable[str] = (),
        name: str | None = None,
        email: str | None = None,
        sub: str | None = None,
    ) -> User:
        """Insert a user, add it to ``groups`` (created if needed) and return it.

        Raises:
            AuthDatabaseError: the username or ``sub`` is taken. The message
                holds only the driver's primary message (never the SQL
                parameters, such as the hash); the driver error is the
                ``__cause__``.
        """
        try:
            with self.session() as session:
                user = User(
                    username=username,
                    hashed_password=hashed_password,
                    name=name,
                    email=email,
                    sub=sub,
                )
                session.add(user)
                session.flush()
                user_id = user.id
        except SQLAlchemyError as err:
            raise AuthDatabaseError(
                f"Could not create user {username!r}: {_driver_message(err)}"
            ) from err
        for group in groups:
            self.add_member(user_id, group)
        created = self.get_user(username)
        assert created is not None
        return created

    def set_password_hash(self, username: str, hashed_password: str) -> None:
        """Store a new password hash for ``username``."""
        with self.session() as session:
            session.execute(
                update(User)
                .where(User.username == username)
                .values(hashed_password=hashed_password, updated_on=func.now())
            )

    def upsert_orcid_user(self, orcid: str, name: str | None) -> User:
        """The user with ORCID iD ``orcid``, created (username = the iD) if new.

        A known user's name is updated when ORCID returns one.

        Raises:
            AuthDatabaseError: the iD is already some other user's username,
                or its user has no username.
        """
        values = insert(User).values(sub=orcid, username=orcid, name=name)
        stmt = values.on_conflict_do_update(
            index_elements=[User.sub],
            set_={
                "name": func.coalesce(values.excluded.name, User.name),
                "updated_on": func.now(),
            },
        ).returning(User.username)
        try:
            with self.session() as session:
                username = session.execute(stmt).scalar_one()
        except SQLAlchemyError as err:
            raise AuthDatabaseError(
                f"Could not find or create the user for ORCID iD {orcid}: "
                f"{_driver_message(err)}"
            ) from err
        user = self.get_user(username) if username is not None else None
        if user is None:  # a row written outside this package, without a username
            raise AuthDatabaseError(
                f"The user with ORCID iD {orcid} has no username; give it one"
            )
        return user

    # API tokens

    def create_api_token(
        self,
        group: str | int,
        expires_in: timedelta | int,
        *,
        token: str | None = None,
    ) -> str:
        """Create an API token for ``group``; return the plaintext (shown once).

        Only its keyed hash is stored.

        Parameters:
            group: a group name (created if needed) or id.
            expires_in: lifetime (a ``timedelta`` or seconds, positive).
            token: the token text to register (default: a random 256-bit token).

        Raises:
            InvalidArgumentError: (a ValueError) ``expires_in`` is not
                positive, or ``token`` is shorter than 16 characters.
        """
        if isinstance(expires_in, int) and not isinstance(expires_in, bool):
            expires_in = timedelta(seconds=expires_in)
        if not isinstance(expires_in, timedelta) or expires_in <= timedelta(0):
            raise InvalidArgumentError(
                "expires_in must be a positive timedelta or seconds"
            )
        if token is not None and (not isinstance(token, str) or len(token) < 16):
            raise InvalidArgumentError(
                "An API token must be a string of at least 16 characters"
            )
        group_id = self.create_group(group) if isinstance(group, str) else group
        plaintext = token if token is not None else generate_api_token()
        expires_on = datetime.now(timezone.utc) + expires_in
        with self.session() as session:
            session.add(
                Token(
                    token=hash_api_token(plaintext, self.token_key),
                    group=group_id,
                    expires_on=expires_on,
                )
            )
        return plaintext

    def get_access_token(self, token: str) -> Token | None:
        """The valid API token row for plaintext ``token``, or None.

        Unknown and expired tokens give None. A valid token's ``used_on`` is set
        to the database's ``now()`` in the same statement that finds it.
        """
        if not _storable(token) or not token:
            return None
        digest = hash_api_token(token, self.token_key)
        with self.session() as session:
            row = session.scalars(
                update(Token)
                .where(Token.token == digest, Token.expires_on > func.now())
                .values(used_on=func.now())
                .returning(Token)
            ).one_or_none()
        if row is None or not token_matches(token, row.token, self.token_key):
            return None
        return row

    def revoke_api_token(self, token: str) -> bool:
        """Delete the API token ``token``; return whether it existed."""
        digest = hash_api_token(token, self.token_key)
        with self.session() as session:
            deleted = session.scalars(
                delete(Token).where(Token.token == digest).returning(Token.id)
            ).first()
        return deleted is not None
