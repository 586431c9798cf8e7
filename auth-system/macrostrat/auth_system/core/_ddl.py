"""The DDL of the auth schema, with the schema name quoted by psycopg.sql."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

import psycopg
from psycopg import sql

from ..errors import AuthConfigurationError
from .schema import SCHEMA

if TYPE_CHECKING:
    from macrostrat.database import Database

__all__ = ["auth_schema_sql", "check_schema", "create_auth_schema"]

_DDL = """
CREATE SCHEMA IF NOT EXISTS {schema};

CREATE TABLE IF NOT EXISTS {schema}."user" (
    id serial PRIMARY KEY,
    username text UNIQUE,
    sub varchar(255) UNIQUE,
    name varchar(255),
    email varchar(255),
    hashed_password text,
    created_on timestamptz NOT NULL DEFAULT now(),
    updated_on timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS {schema}."group" (
    id serial PRIMARY KEY,
    name varchar(255) NOT NULL UNIQUE
);

CREATE TABLE IF NOT EXISTS {schema}.group_members (
    id serial PRIMARY KEY,
    group_id integer NOT NULL REFERENCES {schema}."group" (id) ON DELETE CASCADE,
    user_id integer NOT NULL REFERENCES {schema}."user" (id) ON DELETE CASCADE,
    UNIQUE (group_id, user_id)
);

CREATE TABLE IF NOT EXISTS {schema}.token (
    id serial PRIMARY KEY,
    token varchar(255) NOT NULL UNIQUE,
    "group" integer NOT NULL REFERENCES {schema}."group" (id) ON DELETE CASCADE,
    used_on timestamptz,
    expires_on timestamptz NOT NULL,
    created_on timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS {schema}.login_throttle (
    kind text NOT NULL CHECK (kind IN ('account', 'address')),
    key text NOT NULL,
    failures integer NOT NULL DEFAULT 0 CHECK (failures >= 0),
    first_failure timestamptz NOT NULL DEFAULT now(),
    locked_until timestamptz,
    PRIMARY KEY (kind, key)
);

CREATE TABLE IF NOT EXISTS {schema}.revoked_token (
    jti text PRIMARY KEY,
    expires_at timestamptz NOT NULL
);

CREATE INDEX IF NOT EXISTS revoked_token_expires_at
    ON {schema}.revoked_token (expires_at);
"""


def check_schema(schema: str) -> str:
    """Return ``schema``, or raise `AuthConfigurationError` unless it is a usable name."""
    if not isinstance(schema, str) or not schema or len(schema.encode()) > 63:
        raise AuthConfigurationError(
            f"Invalid auth schema name {schema!r}: a non-empty name of at most 63 bytes"
        )
    return schema


def auth_schema_sql(schema: str = SCHEMA) -> sql.Composed:
    """The statements that create the auth schema and its tables (idempotent).

    Parameters:
        schema: the schema to create the tables in (quoted as an identifier).
    """
    return sql.SQL(_DDL).format(schema=sql.Identifier(check_schema(schema)))


def create_auth_schema(db: Database, schema: str = SCHEMA) -> None:
    """Create the auth schema and tables in ``db`` in one transaction (idempotent).

    Parameters:
        db: the database.
        schema: the schema name.
    """
    statement = auth_schema_sql(schema)
    with db.engine.begin() as conn:
        # SQLAlchemy types the DBAPI connection as Any | None; with the
        # psycopg dialect it is a psycopg connection.
        raw = cast(psycopg.Connection[Any], conn.connection.driver_connection)
        raw.execute(statement)
