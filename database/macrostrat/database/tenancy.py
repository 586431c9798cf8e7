"""Row-level-security tenancy: a transaction-local setting naming the current tenant.

PostgreSQL row-level-security policies can read a custom setting::

    CREATE POLICY tenant_rows ON documents
        USING (tenant_id = nullif(current_setting('app.current_tenant', true), '')::uuid);

`Database.tenant_scope` sets it with ``set_config(setting, value, true)`` (the
function form of ``SET LOCAL``, which takes bind parameters), so the value
belongs to the transaction and disappears at its commit or rollback: a pooled
connection never carries one tenant's identity into another's work.

Policies do not apply to superusers or to the owner of a table (unless it is
``FORCE ROW LEVEL SECURITY``): connect as an ordinary role.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from sqlalchemy import Connection, text
from sqlalchemy.orm import Session

from ._connectable import DatabaseLike
from .errors import InvalidOptionError, InvalidTenantError
from .transactions import connection_aborted

__all__ = [
    "DEFAULT_TENANT_SETTING",
    "TenantValidator",
    "current_tenant",
    "set_tenant",
    "tenant_scope",
    "uuid_tenant",
    "validate_tenant",
]

DEFAULT_TENANT_SETTING = "app.current_tenant"
"""The setting `Database.tenant_scope` writes unless told otherwise."""

TenantValidator = Callable[[Any], str]
"""Turns a tenant id into the text stored in the setting, or raises ``ValueError``."""

# A custom (dotted) setting name: PostgreSQL accepts a prefix and a name made
# of identifier characters.
_SETTING = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]*(\.[A-Za-z_][A-Za-z0-9_$]*)+$")


def uuid_tenant(value: Any) -> str:
    """The default validator: ``value`` must be a UUID (or its text); returns its canonical text.

    Parameters:
        value: a ``uuid.UUID`` or a string holding one.

    Raises:
        ValueError: ``value`` is not a UUID.
    """
    if isinstance(value, uuid.UUID):
        return str(value)
    if not isinstance(value, str):
        raise ValueError(f"a tenant id must be a UUID, not {type(value).__name__}")
    return str(uuid.UUID(value))


def validate_tenant(
    tenant_id: Any,
    setting: str = DEFAULT_TENANT_SETTING,
    validator: TenantValidator | None = None,
) -> str:
    """Check ``setting`` and ``tenant_id``; return the text to store. No SQL runs.

    Parameters:
        tenant_id: the tenant's id.
        setting: a custom setting name with a dot (``"app.current_tenant"``).
        validator: turns the id into text or raises ``ValueError``/``TypeError``
            (default `uuid_tenant`).

    Raises:
        InvalidOptionError: ``setting`` is not a dotted custom setting name.
        InvalidTenantError: the validator refused ``tenant_id`` (or returned
            something other than non-empty text).
    """
    if not isinstance(setting, str) or not _SETTING.match(setting):
        raise InvalidOptionError(
            f"{setting!r} is not a custom setting name such as 'app.current_tenant'"
        )
    check = validator if validator is not None else uuid_tenant
    try:
        value = check(tenant_id)
    except (ValueError, TypeError) as exc:
        raise InvalidTenantError(f"invalid tenant id {tenant_id!r}: {exc}") from exc
    if not isinstance(value, str) or not value:
        raise InvalidTenantError(
            f"the tenant validator returned {value!r} for {tenant_id!r}; "
            "it must return non-empty text"
        )
    return value


def set_tenant(bind: Session | Connection, value: str, setting: str) -> None:
    """Run ``set_config(setting, value, true)`` on ``bind``'s current transaction.

    ``value`` must already be validated (see `validate_tenant`).
    """
    bind.execute(
        text("SELECT set_config(:setting, :value, true)"),
        {"setting": setting, "value": value},
    )


def current_tenant(
    bind: Session | Connection, setting: str = DEFAULT_TENANT_SETTING
) -> str | None:
    """The setting's value in ``bind``'s session, or None when unset or empty."""
    value = bind.execute(
        text("SELECT current_setting(:setting, true)"), {"setting": setting}
    ).scalar()
    return value or None


D = TypeVar("D", bound=DatabaseLike)


@contextmanager
def tenant_scope(
    db: D,
    tenant_id: Any,
    setting: str = DEFAULT_TENANT_SETTING,
    validator: TenantValidator | None = None,
) -> Iterator[D]:
    """The scope behind `Database.tenant_scope`: ``setting`` names the tenant in ``db``'s transaction.

    The value is validated first. Inside a transaction block of ``db`` it is
    set in the block's transaction and the previous value restored at the
    end; otherwise the scope runs in a ``db.transaction()`` of its own. The
    block gets ``db``.

    Raises:
        InvalidTenantError: the validator refused ``tenant_id``.
        InvalidOptionError: ``setting`` is not a dotted custom setting name.
    """
    value = validate_tenant(tenant_id, setting, validator)
    if not db.in_transaction_block():
        with db.transaction():
            # On the block's connection, outside the session's savepoints,
            # so that session.rollback() in the block keeps the tenant.
            set_tenant(db.block_connection(), value, setting)
            yield db
        return
    conn = db.block_connection()
    previous = current_tenant(conn, setting) or ""
    set_tenant(conn, value, setting)
    try:
        yield db
    finally:
        if not connection_aborted(conn):
            set_tenant(conn, previous, setting)
