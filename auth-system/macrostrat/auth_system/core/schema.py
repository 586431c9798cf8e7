"""SQLAlchemy models of the auth schema (users, groups, members, API tokens,
login throttle counters, revoked token ids).

The models name the schema ``macrostrat_auth``; `AuthDatabase` maps that name
to the configured schema with SQLAlchemy's ``schema_translate_map``, so the same
models serve any schema created by `create_auth_schema`.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.sql import func

__all__ = [
    "SCHEMA",
    "Base",
    "Group",
    "GroupMembers",
    "LoginThrottleEntry",
    "RevokedToken",
    "Token",
    "User",
]

SCHEMA = "macrostrat_auth"
"""The schema name the models are declared in (and the default schema)."""


class Base(DeclarativeBase):
    """Declarative base of the auth models."""


class GroupMembers(Base):
    """Membership of a user in a group."""

    __tablename__ = "group_members"
    __table_args__ = (
        UniqueConstraint("group_id", "user_id"),
        {"schema": SCHEMA},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    group_id: Mapped[int] = mapped_column(
        ForeignKey(f"{SCHEMA}.group.id", ondelete="CASCADE")
    )
    user_id: Mapped[int] = mapped_column(
        ForeignKey(f"{SCHEMA}.user.id", ondelete="CASCADE")
    )


class Group(Base):
    """A named group; its name is the scope (role) it grants."""

    __tablename__ = "group"
    __table_args__ = {"schema": SCHEMA}

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    users: Mapped[list[User]] = relationship(
        secondary=GroupMembers.__table__, back_populates="groups"
    )


class User(Base):
    """A user: a local login (``username`` and password) and/or an ORCID iD (``sub``)."""

    __tablename__ = "user"
    __table_args__ = {"schema": SCHEMA}

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str | None] = mapped_column(Text, unique=True)
    sub: Mapped[str | None] = mapped_column(String(255), unique=True)
    name: Mapped[str | None] = mapped_column(String(255))
    email: Mapped[str | None] = mapped_column(String(255))
    hashed_password: Mapped[str | None] = mapped_column(Text)
    groups: Mapped[list[Group]] = relationship(
        secondary=GroupMembers.__table__, back_populates="users", lazy="selectin"
    )
    created_on: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    updated_on: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )


class Token(Base):
    """An API token granting its group's access; only its keyed hash is stored."""

    __tablename__ = "token"
    __table_args__ = {"schema": SCHEMA}

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token: Mapped[str] = mapped_column(String(255), unique=True)
    group: Mapped[int] = mapped_column(
        "group", ForeignKey(f"{SCHEMA}.group.id", ondelete="CASCADE")
    )
    used_on: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    expires_on: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    created_on: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )


class LoginThrottleEntry(Base):
    """A failed-login counter of the login throttle (one account or client address).

    ``kind`` is ``account`` (``key``: the case-folded user name) or
    ``address`` (``key``: the client address, IPv6 per /64). Rows are written
    by `macrostrat.auth_system.core.DatabaseThrottleStore`; delete a row to
    unlock its key.
    """

    __tablename__ = "login_throttle"
    __table_args__ = {"schema": SCHEMA}

    kind: Mapped[str] = mapped_column(Text, primary_key=True)
    key: Mapped[str] = mapped_column(Text, primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    first_failure: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    locked_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class RevokedToken(Base):
    """A revoked JWT id (``jti``), refused until ``expires_at``.

    Written by `macrostrat.auth_system.core.DatabaseRevocationStore` on
    logout, on refresh (the rotated refresh token) and for spent ORCID login
    states (``orcid-state:<state>``). Rows whose ``expires_at`` has passed
    mean nothing and are pruned.
    """

    __tablename__ = "revoked_token"
    __table_args__ = {"schema": SCHEMA}

    jti: Mapped[str] = mapped_column(Text, primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
