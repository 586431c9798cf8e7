"""Apply a classified migration plan safely.

- Unsafe statements are refused unless every unsafe hazard they carry is
  allowed by name; the refusal lists the statements and hazards.
- ``ALTER TYPE ... ADD VALUE`` statements (`PlannedStatement.before_transaction`)
  run first, each committed on its own: PostgreSQL refuses to use a new enum
  value in the transaction that adds it.  They are written ``ADD VALUE IF NOT
  EXISTS``, so if the transaction then fails, the values stay and applying the
  plan again is harmless.
- The transactional statements run in one transaction: if one fails, nothing is
  kept, and the error names the statement.
- Statements PostgreSQL refuses inside a transaction (``CREATE INDEX
  CONCURRENTLY``, ...) run afterwards, each on its own, in plan order.
- Every statement runs under ``lock_timeout`` (and, when given,
  ``statement_timeout``), so a migration waits briefly for locks instead of
  blocking an application forever, and under ``search_path = public``
  (`PLAN_SEARCH_PATH`), as plans are read, whatever the database or role sets.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import Any

import psycopg
from psycopg import sql

from ._targets import PLAN_SEARCH_PATH, conninfo, pin_search_path
from .errors import MigrationStatementError, UnsafeMigrationError
from .hazards import Hazard, PlannedStatement, classify_statements, parse_hazards

__all__ = [
    "PLAN_SEARCH_PATH",
    "apply_plan",
    "plan_statements",
    "refused_statements",
    "use_concurrent_indexes",
]

log = logging.getLogger(__name__)


def plan_statements(
    statements: Iterable[str | PlannedStatement],
) -> list[PlannedStatement]:
    """Classify raw statements; already classified ones are kept as they are."""
    items = list(statements)
    if all(isinstance(s, PlannedStatement) for s in items):
        return list(items)  # type: ignore[arg-type]
    return classify_statements(
        str(s) if not isinstance(s, PlannedStatement) else s.sql for s in items
    )


def refused_statements(
    plan: Sequence[PlannedStatement], allow_hazards: Iterable[str | Hazard] = ()
) -> list[tuple[PlannedStatement, tuple[Hazard, ...]]]:
    """The statements that carry unsafe hazards not in ``allow_hazards``."""
    allowed = parse_hazards(allow_hazards)
    out = []
    for p in plan:
        missing = tuple(h for h in p.unsafe_hazards() if h not in allowed)
        if missing:
            out.append((p, missing))
    return out


def _set_timeouts(
    conn: psycopg.Connection[Any],
    lock_timeout: str | None,
    statement_timeout: str | None,
    local: bool,
) -> None:
    scope = "true" if local else "false"
    if lock_timeout is not None:
        conn.execute(
            f"SELECT set_config('lock_timeout', %s, {scope})", (str(lock_timeout),)
        )
    if statement_timeout is not None:
        conn.execute(
            f"SELECT set_config('statement_timeout', %s, {scope})",
            (str(statement_timeout),),
        )


def _run(
    conn: psycopg.Connection[Any], index: int, statement: PlannedStatement
) -> None:
    try:
        # No parameters: the text is sent as is (``%`` needs no escaping).
        conn.execute(statement.sql)
    except psycopg.Error as exc:
        raise MigrationStatementError(statement.sql, index, exc) from exc


def apply_plan(
    target: Any,
    statements: Iterable[str | PlannedStatement],
    *,
    allow_hazards: Iterable[str | Hazard] = (),
    lock_timeout: str | None = "5s",
    statement_timeout: str | None = None,
    concurrent_indexes: bool = False,
) -> list[PlannedStatement]:
    """Apply ``statements`` to ``target`` safely (see the module documentation).

    Parameters:
        target: the database (URL, ``Engine``, ``Connection`` or `Database`).
            A new connection is opened for the migration and closed afterwards.
        statements: SQL text or `PlannedStatement` items, in order.
        allow_hazards: the unsafe hazards the caller accepts, by name.
        lock_timeout: PostgreSQL ``lock_timeout`` for every statement (e.g.
            ``"5s"``); None leaves the server's setting.
        statement_timeout: PostgreSQL ``statement_timeout``; None leaves it.
        concurrent_indexes: build indexes on existing tables with
            ``CREATE INDEX CONCURRENTLY`` after the transaction (see
            `use_concurrent_indexes`), so writes do not wait for the builds.

    Returns:
        the statements that ran: those run before the transaction, then the
        transactional ones, then those run after it.

    Raises:
        UnsafeMigrationError: unsafe hazards were not allowed; nothing ran.
        MigrationStatementError: a statement failed.  Nothing of the
            transaction is kept (enum values added before it stay); the
            driver's error is the ``__cause__``.
    """
    plan = plan_statements(statements)
    if concurrent_indexes:
        plan = use_concurrent_indexes(plan)
    refused = refused_statements(plan, allow_hazards)
    if refused:
        raise UnsafeMigrationError(refused)
    first = [(i, p) for i, p in enumerate(plan) if p.before_transaction]
    in_tx = [(i, p) for i, p in enumerate(plan) if p.transactional]
    outside = [
        (i, p)
        for i, p in enumerate(plan)
        if not p.transactional and not p.before_transaction
    ]
    ran: list[PlannedStatement] = []
    if not plan:
        return ran
    with psycopg.connect(conninfo(target)) as conn:
        # plans are written under the search path they were read with
        # (macrostrat.dinosaur.diff reads both sides with it), whatever the
        # database or role sets
        conn.autocommit = True
        pin_search_path(conn, local=False)
        conn.autocommit = False
        if first:
            ran.extend(_run_first(conn, first, lock_timeout, statement_timeout))
        if in_tx:
            try:
                with conn.transaction():
                    pin_search_path(conn)
                    _set_timeouts(conn, lock_timeout, statement_timeout, local=True)
                    for i, p in in_tx:
                        _run(conn, i, p)
            except MigrationStatementError:
                log.error("migration rolled back; nothing was kept")
                raise
            ran.extend(p for _, p in in_tx)
        if outside:
            conn.autocommit = True
            _set_timeouts(conn, lock_timeout, statement_timeout, local=False)
            for i, p in outside:
                try:
                    _run(conn, i, p)
                except MigrationStatementError:
                    _drop_invalid_index(conn, p)
                    raise
                ran.append(p)
    return ran


def _run_first(
    conn: psycopg.Connection[Any],
    statements: Sequence[tuple[int, PlannedStatement]],
    lock_timeout: str | None,
    statement_timeout: str | None,
) -> list[PlannedStatement]:
    """Run the statements that commit before the transaction, each on its own.

    The connection is left out of autocommit again, with the session's
    timeouts reset, for the transaction that follows.
    """
    ran: list[PlannedStatement] = []
    conn.autocommit = True
    try:
        _set_timeouts(conn, lock_timeout, statement_timeout, local=False)
        for i, p in statements:
            try:
                _run(conn, i, p)
            except MigrationStatementError:
                if ran:
                    log.error(
                        "%d enum value(s) added before the failure stay "
                        "(applying the plan again is harmless)",
                        len(ran),
                    )
                raise
            ran.append(p)
        conn.execute("RESET lock_timeout")
        conn.execute("RESET statement_timeout")
    finally:
        if not conn.closed:
            conn.autocommit = False
    return ran


_PLAIN_INDEX = re.compile(
    r"^(\s*create\s+(?:unique\s+)?index)\s+(?!concurrently\b)", re.I
)


def use_concurrent_indexes(plan: Sequence[PlannedStatement]) -> list[PlannedStatement]:
    """Rewrite index builds on existing tables to ``CREATE INDEX CONCURRENTLY``.

    Only the statements flagged ``IMPACTS_DATABASE_PERFORMANCE`` for an index
    build change; they become non-transactional (run after the transaction).
    If such a build fails, the invalid index it leaves is dropped.
    """
    out = []
    for p in plan:
        builds = (
            Hazard.IMPACTS_DATABASE_PERFORMANCE in p.hazards
            and _PLAIN_INDEX.match(p.sql)
        )
        if not builds:
            out.append(p)
            continue
        sql_text = _PLAIN_INDEX.sub(r"\1 CONCURRENTLY ", p.sql, count=1)
        hazards = tuple(
            h for h in p.hazards if h is not Hazard.IMPACTS_DATABASE_PERFORMANCE
        )
        reasons = tuple(
            r
            for h, r in zip(p.hazards, p.reasons, strict=True)
            if h is not Hazard.IMPACTS_DATABASE_PERFORMANCE
        )
        out.append(
            replace(
                p, sql=sql_text, hazards=hazards, reasons=reasons, transactional=False
            )
        )
    return out


_INDEX_NAME = re.compile(
    r"^\s*create\s+(?:unique\s+)?index\s+concurrently\s+(?:if\s+not\s+exists\s+)?"
    r"(\"(?:[^\"]|\"\")+\"|[A-Za-z_][A-Za-z0-9_$]*)\s+on\s+(?:only\s+)?"
    r"(?:(\"(?:[^\"]|\"\")+\"|[A-Za-z_][A-Za-z0-9_$]*)\s*\.)?",
    re.I,
)


def _drop_invalid_index(conn: psycopg.Connection[Any], p: PlannedStatement) -> None:
    """Drop the INVALID index a failed ``CREATE INDEX CONCURRENTLY`` leaves behind."""
    m = _INDEX_NAME.match(p.sql)
    if not m:
        return
    name = (
        m.group(1).strip('"').replace('""', '"')
        if m.group(1).startswith('"')
        else m.group(1).lower()
    )
    schema = m.group(2)
    if schema:
        schema = (
            schema.strip('"').replace('""', '"')
            if schema.startswith('"')
            else schema.lower()
        )
    row = conn.execute(
        "SELECT n.nspname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
        "JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE c.relname = %s AND NOT i.indisvalid "
        "AND (%s::text IS NULL OR n.nspname = %s)",
        (name, schema, schema),
    ).fetchone()
    if row is None:
        return
    log.warning("dropping invalid index %s.%s left by a failed build", row[0], name)
    conn.execute(
        sql.SQL("DROP INDEX CONCURRENTLY IF EXISTS {}.{}").format(
            sql.Identifier(row[0]), sql.Identifier(name)
        )
    )
