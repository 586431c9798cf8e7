"""Sequences behind serial and identity columns: reset them, or convert serial to identity.

Tables, columns and sequences are found in the system catalogs by their exact
names (no case folding, no parsing of SQL text), and every name sent back to
the server is a quoted identifier, so mixed-case and unusual names work.

Both functions accept a `Database` or an ``Engine`` (they then run on a
connection of their own and commit), or a ``Connection`` (they then run in its
transaction, inside a savepoint if one is open, and leave the commit to the
caller).  A table that another open transaction has written to (for example
the `Database`'s own session) is locked until that transaction ends: commit it
first.

Longer than 400 lines because both operations read the same catalog facts
(columns, sequences, other users of a sequence) and share their checks.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql
from sqlalchemy import Connection, CursorResult, Engine, text

from ._connectable import HasEngine, require_engine
from ._renamed import renamed_parameters

__all__ = [
    "ConvertToIdentityResult",
    "ResetSequenceResult",
    "is_autoincrementing_column",
    "reset_sequence",
    "sequence_name_for_column",
    "serial_to_identity",
]

log = logging.getLogger(__name__)


@dataclass
class ResetSequenceResult:
    """What `reset_sequence` did.

    Attributes:
        table: ``schema.table``.
        column: the column the sequence feeds.
        sequence: the sequence, schema-qualified (quoted where needed).
        new_value: the value the sequence hands out next.
    """

    table: str
    column: str
    sequence: str
    new_value: int


@dataclass
class ConvertToIdentityResult:
    """What `serial_to_identity` did.

    Attributes:
        table: ``schema.table``.
        column: the converted column.
        old_sequence: the serial sequence, schema-qualified (quoted where needed).
        restart_value: the first value the identity hands out.
        identity_sequence: the identity's new sequence, schema-qualified.
        old_sequence_dropped: False when the old sequence was kept because
            another column's default still uses it.
    """

    table: str
    column: str
    old_sequence: str
    restart_value: int
    identity_sequence: str | None = None
    old_sequence_dropped: bool = True


@dataclass
class _ColumnInfo:
    name: str
    identity: str  # '' (none), 'a' (always) or 'd' (by default)
    not_null: bool
    default_oid: int | None
    default_sequence: int | None  # the sequence the default's nextval() uses
    owned_sequence: int | None  # the sequence owned by the column (serial/identity)

    @property
    def sequence(self) -> int | None:
        return self.default_sequence or self.owned_sequence


_NEXTVAL = re.compile(r"nextval\('((?:[^']|'')+)'(?:::regclass)?\)")


@renamed_parameters({"col": "column"})  # upstream's name
def is_autoincrementing_column(column: Mapping[str, Any]) -> bool:
    """Whether a column, as described by SQLAlchemy's inspector, is serial or identity.

    Parameters:
        column: one entry of ``Inspector.get_columns()``.
    """
    if column.get("identity"):
        return True
    if column.get("autoincrement") is True:
        return True
    default = column.get("default")
    return isinstance(default, str) and "nextval(" in default


@renamed_parameters({"col": "column"})  # upstream's name
def sequence_name_for_column(column: Mapping[str, Any]) -> str | None:
    """The sequence named in a column's ``nextval('...')`` default, as written there.

    Parameters:
        column: one entry of ``Inspector.get_columns()``.

    Returns:
        The name as PostgreSQL renders it in the default (possibly
        schema-qualified and quoted, e.g. ``"Mixed"."T_id_seq"``), or None.
    """
    default = column.get("default")
    if not isinstance(default, str):
        return None
    match = _NEXTVAL.search(default)
    return match.group(1).replace("''", "'") if match else None


def _resolve_schema_table(schema: str | None, table: str) -> tuple[str, str]:
    """``(schema, table)`` from a possibly dotted table name and a schema keyword."""
    if "." in table:
        prefix, _, name = table.partition(".")
        if schema is not None and schema != prefix:
            raise ValueError(
                f"Conflicting schema: keyword argument {schema!r} vs table prefix "
                f"{prefix!r} (in {table!r})"
            )
        return prefix, name
    return (schema if schema is not None else "public"), table


@contextlib.contextmanager
def _transaction(db: Any) -> Iterator[Connection]:
    """A connection in a transaction that commits (or releases its savepoint) on success."""
    if isinstance(db, Connection):
        ctx = db.begin_nested() if db.in_transaction() else db.begin()
        with ctx:
            yield db
        return
    engine = require_engine(db, "a Database, Engine or Connection")
    with engine.begin() as conn:
        yield conn


def _run(conn: Connection, query: sql.Composable) -> CursorResult[Any]:
    """Run a statement composed with `psycopg.sql` (no parameters) on ``conn``.

    Errors come out as SQLAlchemy ``DBAPIError`` subclasses, the driver's
    error as ``.orig``.
    """
    raw = conn.connection.driver_connection
    context = raw if isinstance(raw, psycopg.Connection) else None
    return conn.exec_driver_sql(
        query.as_string(context), execution_options={"no_parameters": True}
    )


def _qualified(schema: str, name: str) -> sql.Composed:
    return sql.SQL("{}.{}").format(sql.Identifier(schema), sql.Identifier(name))


_TABLE_QUERY = text(
    "SELECT c.oid, c.relkind FROM pg_catalog.pg_class c "
    "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
    "WHERE n.nspname = :schema AND c.relname = :table"
)


def _table_oid(conn: Connection, schema: str, table: str) -> int:
    row = conn.execute(_TABLE_QUERY, {"schema": schema, "table": table}).first()
    if row is None:
        raise ValueError(f"Table {table} does not exist in schema {schema}")
    oid, relkind = row
    if relkind not in ("r", "p"):
        raise ValueError(f"{schema}.{table} is not a table (relkind {relkind!r})")
    return int(oid)


_COLUMNS_QUERY = text("""
SELECT a.attname, a.attidentity, a.attnotnull, d.oid,
  (SELECT dep.refobjid FROM pg_catalog.pg_depend dep
     JOIN pg_catalog.pg_class s ON s.oid = dep.refobjid AND s.relkind = 'S'
    WHERE dep.classid = 'pg_catalog.pg_attrdef'::regclass AND dep.objid = d.oid
      AND dep.refclassid = 'pg_catalog.pg_class'::regclass
    LIMIT 1),
  (SELECT dep.objid FROM pg_catalog.pg_depend dep
     JOIN pg_catalog.pg_class s ON s.oid = dep.objid AND s.relkind = 'S'
    WHERE dep.classid = 'pg_catalog.pg_class'::regclass
      AND dep.refclassid = 'pg_catalog.pg_class'::regclass
      AND dep.refobjid = a.attrelid AND dep.refobjsubid = a.attnum
      AND dep.deptype IN ('a', 'i')
    LIMIT 1)
FROM pg_catalog.pg_attribute a
LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
WHERE a.attrelid = :oid AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attnum
""")


def _columns(conn: Connection, table_oid: int) -> list[_ColumnInfo]:
    return [
        _ColumnInfo(
            name=name,
            identity=identity,
            not_null=not_null,
            default_oid=default_oid,
            default_sequence=default_seq,
            owned_sequence=owned_seq,
        )
        for name, identity, not_null, default_oid, default_seq, owned_seq in (
            conn.execute(_COLUMNS_QUERY, {"oid": table_oid})
        )
    ]


_SEQUENCE_QUERY = text(
    "SELECT n.nspname, c.relname, format('%I.%I', n.nspname, c.relname) "
    "FROM pg_catalog.pg_class c "
    "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = :oid"
)


def _sequence_names(conn: Connection, oid: int) -> tuple[sql.Composed, str]:
    """The sequence ``oid`` as SQL, and as text (``schema.name``, quoted where needed)."""
    row = conn.execute(_SEQUENCE_QUERY, {"oid": oid}).one()
    return _qualified(row[0], row[1]), str(row[2])


def _pick(
    candidates: list[_ColumnInfo], column: str | None, what: str, where: str
) -> _ColumnInfo:
    if column is not None:
        for info in candidates:
            if info.name == column:
                return info
        raise ValueError(f"No {what} column named {column!r} found in table {where}")
    if len(candidates) > 1:
        names = ", ".join(info.name for info in candidates)
        raise ValueError(
            f"Multiple {what} columns found in table {where}: {names}. "
            "Please specify a column."
        )
    return candidates[0]


_OTHER_USERS_QUERY = text(
    "SELECT count(*) FROM pg_catalog.pg_depend "
    "WHERE refclassid = 'pg_catalog.pg_class'::regclass AND refobjid = :seq "
    "AND classid = 'pg_catalog.pg_attrdef'::regclass AND objid <> :default"
)

_SERIAL_SEQUENCE_QUERY = text(
    "SELECT pg_catalog.pg_get_serial_sequence("
    "format('%I.%I', CAST(:schema AS text), CAST(:table AS text)), :column)"
)


def reset_sequence(
    db: HasEngine | Engine | Connection,
    table: str,
    column: str | None = None,
    *,
    schema: str | None = None,
    start_val: int | None = None,
) -> ResetSequenceResult:
    """Set the sequence behind a serial or identity column to follow the stored data.

    After rows were loaded with explicit ids, the sequence still starts where it
    was; this sets it so that the next value is ``MAX(column) + 1`` (1 for an
    empty table), or ``start_val``.

    Parameters:
        db: a `Database`, ``Engine`` or ``Connection`` (see the module notes).
        table: the table's name; ``"schema.table"`` is accepted.
        column: the column (needed only when the table has several serial or
            identity columns).
        schema: the table's schema (default: the prefix of ``table``, else
            ``public``).
        start_val: the next value to hand out, instead of ``MAX + 1``.

    Raises:
        ValueError: no such table; no serial or identity column (or none named
            ``column``); several and no ``column``; conflicting schemas.
    """
    schema, table = _resolve_schema_table(schema, table)
    where = f"{schema}.{table}"
    with _transaction(db) as conn:
        candidates = [
            info
            for info in _columns(conn, _table_oid(conn, schema, table))
            if info.identity or info.default_sequence is not None
        ]
        if not candidates:
            raise ValueError(
                f"No autoincrement or identity columns found in table {where}"
            )
        info = _pick(candidates, column, "autoincrement or identity", where)
        seq_oid = info.sequence
        if seq_oid is None:
            raise ValueError(
                f"No sequence found for column {info.name!r} of table {where}"
            )
        query = sql.SQL(
            "SELECT pg_catalog.setval({seq}::pg_catalog.regclass,"
            " COALESCE({start}, (SELECT MAX({col}) + 1 FROM {table}), 1), false)"
        ).format(
            seq=sql.Literal(seq_oid),
            start=sql.Literal(start_val),
            col=sql.Identifier(info.name),
            table=_qualified(schema, table),
        )
        new_value = _run(conn, query).scalar_one()
        result = ResetSequenceResult(
            table=where,
            column=info.name,
            sequence=_sequence_names(conn, seq_oid)[1],
            new_value=int(new_value),
        )
    log.info("reset sequence %s: next value %d", result.sequence, result.new_value)
    return result


def serial_to_identity(
    db: HasEngine | Engine | Connection,
    table: str,
    column: str | None = None,
    *,
    schema: str | None = None,
    always: bool = True,
) -> ConvertToIdentityResult:
    """Convert a serial (``nextval()``-backed) column into an identity column.

    In one transaction: lock the table, drop the column's default, drop the old
    sequence (unless another column's default still uses it), make the column
    ``NOT NULL`` if needed, and add ``GENERATED ... AS IDENTITY`` starting after
    both the largest stored value and the old sequence's position (so no value
    handed out before is handed out again).  Any failure rolls everything back.
    The identity's sequence takes the usual ``<table>_<column>_seq`` name.

    Parameters:
        db: a `Database`, ``Engine`` or ``Connection`` (see the module notes).
        table: the table's name; ``"schema.table"`` is accepted.
        column: the column (needed only when the table has several serial
            columns).
        schema: the table's schema (default: the prefix of ``table``, else
            ``public``).
        always: ``GENERATED ALWAYS`` (True) or ``GENERATED BY DEFAULT``.

    Raises:
        ValueError: no such table; no serial column (or none named ``column``),
            including when the table already uses identity columns; several and
            no ``column``; conflicting schemas.
    """
    schema, table = _resolve_schema_table(schema, table)
    where = f"{schema}.{table}"
    table_sql = _qualified(schema, table)
    with _transaction(db) as conn:
        columns = _columns(conn, _table_oid(conn, schema, table))
        serial = [info for info in columns if info.default_sequence is not None]
        if not serial:
            identities = [info.name for info in columns if info.identity]
            if identities:
                raise ValueError(
                    f"Table {where} already has identity column(s): {', '.join(identities)}"
                )
            raise ValueError(
                f"No serial (nextval-backed) columns found in table {where}"
            )
        info = _pick(serial, column, "serial", where)
        seq_oid = info.default_sequence
        assert seq_oid is not None
        assert info.default_oid is not None
        col = sql.Identifier(info.name)
        sequence_sql, old_sequence = _sequence_names(conn, seq_oid)

        _run(conn, sql.SQL("LOCK TABLE {} IN ACCESS EXCLUSIVE MODE").format(table_sql))
        restart = int(
            _run(
                conn,
                sql.SQL("SELECT COALESCE(MAX({}), 0) + 1 FROM {}").format(
                    col, table_sql
                ),
            ).scalar_one()
        )
        last_value, is_called, increment = tuple(
            _run(
                conn,
                sql.SQL(
                    "SELECT s.last_value, s.is_called, p.seqincrement FROM {} s, "
                    "pg_catalog.pg_sequence p WHERE p.seqrelid = {}"
                ).format(sequence_sql, sql.Literal(seq_oid)),
            ).one()
        )
        following = last_value + increment if is_called else last_value
        restart = max(restart, int(following))

        keep_sequence = bool(
            conn.execute(
                _OTHER_USERS_QUERY, {"seq": seq_oid, "default": info.default_oid}
            ).scalar_one()
        )
        alter = sql.SQL("ALTER TABLE {} ALTER COLUMN {} ").format(table_sql, col)
        _run(conn, alter + sql.SQL("DROP DEFAULT"))
        if keep_sequence:
            log.warning(
                "sequence %s is still used by other columns' defaults; not dropping it",
                old_sequence,
            )
        else:
            _run(conn, sql.SQL("DROP SEQUENCE {}").format(sequence_sql))
        if not info.not_null:
            _run(conn, alter + sql.SQL("SET NOT NULL"))
        _run(
            conn,
            alter
            + sql.SQL("ADD GENERATED {} AS IDENTITY (START WITH {})").format(
                sql.SQL("ALWAYS" if always else "BY DEFAULT"), sql.Literal(restart)
            ),
        )
        identity_sequence = conn.execute(
            _SERIAL_SEQUENCE_QUERY,
            {"schema": schema, "table": table, "column": info.name},
        ).scalar_one()
        result = ConvertToIdentityResult(
            table=where,
            column=info.name,
            old_sequence=old_sequence,
            restart_value=restart,
            identity_sequence=identity_sequence,
            old_sequence_dropped=not keep_sequence,
        )
    log.info(
        "converted %s.%s from serial (%s) to identity starting at %d",
        where,
        info.name,
        old_sequence,
        restart,
    )
    return result
