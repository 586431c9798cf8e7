"""Schema diffs between a live database and a target, on ``results.dbdiff``.

Inspection always runs on a short-lived psycopg connection of its own, inside a
transaction that is rolled back and closed as soon as the catalog has been
read: no connection is leaked and no lock outlives the inspection.

Longer than 400 lines because `AutoMigration` is upstream's class (about 250
lines: ``results``' ``Migration`` with re-inspection by URL, corrected and
ordered statements, hazards and safe plans) and the functions that build it
(`create_migration`, `target_database`, `check_convergence`) belong with it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import logging
import re
import secrets
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, TextIO

import psycopg
from results.dbdiff import Migration
from results.schemainspect import PostgreSQL
from sqlalchemy import URL
from sqlalchemy.engine import make_url

from . import _targets
from ._acls import PrivilegeState, read_privileges
from ._composites import composite_statements, without_typed_column_changes
from ._depends import Catalog, read_catalog
from ._domains import domain_statements
from ._enums import enum_additions, fix_enum_recreations
from ._fixes import (
    comment_only_changes,
    fix_partitioned,
    order_added_columns,
    prune_inherited,
    readded_column_dependents,
    readded_columns,
    recreated_view_comments,
    recreated_view_indexes,
    synced_identities,
)
from ._functions import fix_function_recreations
from ._order import describe, order_statements
from ._privileges import PrivilegeChanges, privilege_statements
from ._recreations import kept_together
from ._targets import conninfo, pin_search_path
from .apply import apply_plan
from .errors import ConvergenceError
from .hazards import Hazard, PlannedStatement, _norm_name, classify_statements

if TYPE_CHECKING:
    from macrostrat.database import Database

__all__ = [
    "AutoMigration",
    "DatabaseInitializer",
    "check_convergence",
    "conninfo",
    "create_migration",
    "format_plan",
    "hazard_summary",
    "inspect_schema",
    "needs_migration",
    "target_database",
]

log = logging.getLogger(__name__)

DatabaseInitializer = Callable[["Database"], None]
"""A function that builds the ideal schema in the (empty) `Database` it is given."""


def inspect_schema(
    target: Any, *, schema: str | None = None, exclude_schema: str | None = None
) -> PostgreSQL:
    """Read the schema of ``target`` with ``results.schemainspect``.

    The catalog is read on a new connection in one transaction, which is rolled
    back and closed before returning.

    Parameters:
        target: a URL, ``Engine``, ``Connection`` or `Database`; or an existing
            ``PostgreSQL`` inspection, returned as is.
        schema: only this schema.
        exclude_schema: every schema but this one.
    """
    if isinstance(target, PostgreSQL):
        return target
    if schema and exclude_schema:
        raise ValueError("give schema or exclude_schema, not both")
    with psycopg.connect(conninfo(target)) as conn:
        try:
            return _inspect_on(conn, schema, exclude_schema)
        finally:
            conn.rollback()


def _inspect_on(
    conn: psycopg.Connection[Any], schema: str | None, exclude_schema: str | None
) -> PostgreSQL:
    # names are spelled relative to the search path: the same one everywhere
    pin_search_path(conn)
    with conn.cursor() as cur:
        inspected = PostgreSQL(cur)  # type: ignore[no-untyped-call]  # results is untyped
    if schema:
        inspected.one_schema(schema)  # type: ignore[no-untyped-call]  # results is untyped
    elif exclude_schema:
        inspected.exclude_schema(exclude_schema)  # type: ignore[no-untyped-call]  # results is untyped
    return inspected


@dataclasses.dataclass
class _Side:
    """What is read of one side of a diff up front, from one snapshot."""

    inspection: PostgreSQL
    catalog: Catalog


def _read_side(target: Any, schema: str | None, exclude_schema: str | None) -> _Side:
    """Inspect ``target`` and read its catalog on one connection.

    One ``REPEATABLE READ`` transaction (one snapshot) with ``search_path``
    set to ``public`` (as a new database has it), rolled back and closed before
    returning.  An inspection (no database) has no catalog.
    """
    if isinstance(target, PostgreSQL):
        return _Side(target, Catalog())
    with psycopg.connect(conninfo(target)) as conn:
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        try:
            return _Side(_inspect_on(conn, schema, exclude_schema), read_catalog(conn))
        finally:
            conn.rollback()


def _privileges_of(target: Any) -> PrivilegeState:
    """Owners and privileges of ``target``; none for an inspection (no database)."""
    if isinstance(target, PostgreSQL):
        return PrivilegeState()
    with psycopg.connect(conninfo(target)) as conn:
        try:
            pin_search_path(conn)
            return read_privileges(conn)
        finally:
            conn.rollback()


def _read_sides(
    source: Any, target: Any, schema: str | None, exclude_schema: str | None
) -> tuple[_Side, _Side]:
    """`_read_side` of both databases at once (each on its own connection)."""
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="dinosaur-diff") as pool:
        theirs = pool.submit(_read_side, target, schema, exclude_schema)
        ours = _read_side(source, schema, exclude_schema)
        return ours, theirs.result()


class AutoMigration(Migration):
    """The statements that bring a live database (``x_from``) to a target schema.

    A ``results.dbdiff.Migration`` whose two sides are inspected on their own
    short-lived connections (see `inspect_schema`), so building one holds no
    connection and no lock.  The source is remembered so that `apply` and
    `converged` can reach it again.

    Parameters:
        x_from: the live database (URL, ``Engine``, ``Connection``, `Database`).
        x_target: the database with the ideal schema (same kinds).
        schema: limit the diff to this schema.
        exclude_schema: leave this schema out.
        ignore_extension_versions: do not diff extension versions.
    """

    def __init__(
        self,
        x_from: Any,
        x_target: Any,
        schema: str | None = None,
        exclude_schema: str | None = None,
        ignore_extension_versions: bool = False,
    ) -> None:
        if schema and exclude_schema:
            raise ValueError("give schema or exclude_schema, not both")
        source, target = _read_sides(x_from, x_target, schema, exclude_schema)
        super().__init__(  # type: ignore[no-untyped-call]  # results is untyped
            source.inspection,
            target.inspection,
            schema=schema,
            exclude_schema=exclude_schema,
            ignore_extension_versions=ignore_extension_versions,
        )
        self.s_from = x_from
        self.s_target = x_target
        self._plan: list[PlannedStatement] | None = None
        self._restoring: set[str] = set()
        self.privileges = False
        self.source_catalog = source.catalog
        self.target_catalog = target.catalog
        # read when a plan needs them (see add_all_changes)
        self._source_privileges: PrivilegeState | None = None
        self._target_privileges: PrivilegeState | None = None
        prune_inherited(self.changes.i_from, self.source_catalog)
        prune_inherited(self.changes.i_target, self.target_catalog)

    # results' own refresh methods assume a connection; ours re-inspect by URL.
    def inspect_from(self) -> None:
        """Inspect the live database again."""
        side = _read_side(self.s_from, self.schema, self.exclude_schema)
        self.changes.i_from = side.inspection
        self.source_catalog = side.catalog
        self._source_privileges = None
        prune_inherited(self.changes.i_from, self.source_catalog)
        self._plan = None

    def inspect_target(self) -> None:
        """Inspect the target again."""
        side = _read_side(self.s_target, self.schema, self.exclude_schema)
        self.changes.i_target = side.inspection
        if not isinstance(self.s_target, PostgreSQL):
            self.target_catalog = side.catalog
            self._target_privileges = None
        prune_inherited(self.changes.i_target, self.target_catalog)
        self._plan = None

    def clear(self) -> None:
        """Forget the statements collected so far."""
        super().clear()  # type: ignore[no-untyped-call]  # results is untyped
        self._plan = None
        self._restoring = set()

    def add(self, statements: Any) -> None:
        """Append statements."""
        super().add(statements)  # type: ignore[no-untyped-call]  # results is untyped
        self._plan = None

    def add_all_changes(self, privileges: bool = False) -> None:
        """Collect every change, corrected and in dependency order.

        ``results``' statements are collected, then: domains in every schema
        are added (`macrostrat.dinosaur._domains.domain_statements`), the
        statements ``results`` gets wrong on partitioned tables are replaced
        (`fix_partitioned`), repeated statements are kept once, and the
        whole plan is sorted by the catalogs' dependencies
        (`macrostrat.dinosaur._order.order_statements`).  Objects the plan
        drops and creates again are given back their owner and privileges
        (`macrostrat.dinosaur._privileges`).

        Parameters:
            privileges: also plan every difference in privileges (``GRANT``,
                ``REVOKE``, column privileges), default privileges and the
                owners the target states (anything but the role that built
                it); remembered for `apply`'s convergence check.
        """
        self.privileges = privileges
        comments = comment_only_changes(self.changes.i_from, self.changes.i_target)
        # enums that only gain values: ADD VALUE, not results' recreation
        # composite types are ours too (_composites): results sees only those
        # on the search path and never alters their attributes
        with (
            enum_additions(self.changes.i_from, self.changes.i_target) as added,
            _without_composite_types(self.changes),
        ):
            # results' own privilege diff sees table grants only: ours replaces it
            super().add_all_changes(privileges=False)  # type: ignore[no-untyped-call]  # results is untyped
        self.statements += recreated_view_indexes(
            list(self.statements), self.changes.i_target
        )
        self.statements += recreated_view_comments(
            list(self.statements), self.changes.i_target
        )
        self.statements += readded_column_dependents(
            list(self.statements), self.changes.i_target
        )
        self.statements += comments
        creates, drops = domain_statements(
            self.source_catalog,
            self.target_catalog,
            schema=self.schema,
            exclude_schema=self.exclude_schema,
            live=self.s_from,
            i_target=self.changes.i_target,
            plan=list(self.statements),
        )
        more_creates, more_drops = composite_statements(
            self.source_catalog,
            self.target_catalog,
            schema=self.schema,
            exclude_schema=self.exclude_schema,
            plan=list(self.statements),
        )
        creates, drops = [*more_creates, *creates], [*drops, *more_drops]
        fixed = fix_partitioned(list(self.statements), self.target_catalog)
        fixed = without_typed_column_changes(
            fixed,
            self.source_catalog,
            self.target_catalog,
            schema=self.schema,
            exclude_schema=self.exclude_schema,
        )
        fixed = order_added_columns(fixed, self.changes.i_target)
        fixed = synced_identities(fixed)
        fixed = fix_enum_recreations(
            fixed, self.changes.i_from, self.changes.i_target, live=self.s_from
        )
        fixed = fix_function_recreations(
            fixed, self.changes.i_from, self.changes.i_target, live=self.s_from
        )
        items = [*added, *creates, *fixed, *drops]
        seen: set[str] = set()
        unique = []
        for st in items:
            if st not in seen:
                seen.add(st)
                unique.append(st)
        ordered = order_statements(
            unique,
            target=self.target_catalog,
            source=self.source_catalog,
            function_keys=self._function_keys(),
        )
        keys = self._function_keys()
        dropped = _dropped_by(ordered, keys, self.source_catalog)
        if privileges or dropped:
            # privileges are read only for a plan that needs them: one that
            # manages them, or may re-create objects that must get theirs back
            changes = self._privilege_changes(dropped, privileges)
            self.statements[:] = ordered + [
                st for st in changes.statements if st not in seen
            ]
            self._restoring = changes.restoring
        else:
            self.statements[:] = ordered
            self._restoring = set()
        self._plan = None

    @property
    def source_privileges(self) -> PrivilegeState:
        """Owners, privileges and default privileges of the live database."""
        if self._source_privileges is None:
            self._source_privileges = _privileges_of(self.s_from)
        return self._source_privileges

    @property
    def target_privileges(self) -> PrivilegeState:
        """Owners, privileges and default privileges of the target."""
        if self._target_privileges is None:
            self._target_privileges = _privileges_of(self.s_target)
        return self._target_privileges

    def _privilege_changes(self, dropped: set[str], manage: bool) -> PrivilegeChanges:
        return privilege_statements(
            self.source_privileges,
            self.target_privileges,
            dropped=dropped,
            manage=manage,
            schema=self.schema,
            exclude_schema=self.exclude_schema,
        )

    def _function_keys(self) -> dict[str, str]:
        """Function keys by the exact text of their create and drop statements."""
        out: dict[str, str] = {}
        for inspection in (self.changes.i_from, self.changes.i_target):
            for f in getattr(inspection, "functions", {}).values():
                key = f"function:{f.schema}.{f.name}({f.identity_arguments})"
                out[f.create_statement.strip()] = key
                out[f.drop_statement.strip()] = key
        return out

    @property
    def plan(self) -> list[PlannedStatement]:
        """The statements with their hazards (computed once per statement list)."""
        if self._plan is None:
            cat = self.source_catalog
            self._plan = classify_statements(
                self.statements,
                row_estimates={
                    k.split(":", 1)[1]: v for k, v in cat.row_estimates.items()
                },
                owners=cat.owners,
            )
            if self._restoring:
                # giving a re-created object back what it had changes nothing
                self._plan = [
                    dataclasses.replace(p, hazards=(), reasons=())
                    if p.sql in self._restoring
                    else p
                    for p in self._plan
                ]
        return self._plan

    def _view_or_function(self) -> set[str]:
        drops = list(self.changes.non_table_selectable_drops())
        creations = list(self.changes.non_table_selectable_creations())
        return set(drops) | set(creations)

    def changes_omitting_views(self) -> Iterator[str]:
        """The statements that are not drops or creations of views and functions."""
        skip = self._view_or_function()
        for statement in self.statements:
            if statement not in skip:
                yield statement

    @property
    def is_safe(self) -> bool:
        """True when no statement carries an unsafe hazard (see `macrostrat.dinosaur.hazards`)."""
        return not any(p.unsafe for p in self.plan)

    def unsafe_changes(self) -> Iterator[str]:
        """The statements that carry an unsafe hazard."""
        for p in self.plan:
            if p.unsafe:
                yield p.sql

    def safe_changes(self) -> Iterator[str]:
        """The statements of `safe_plan`, in plan order."""
        for p in self.safe_plan():
            yield p.sql

    def safe_plan(self) -> list[PlannedStatement]:
        """The plan without its unsafe statements, and without what needs them.

        Leaving out an unsafe statement also leaves out the statements that
        cannot run without it, so the rest applies on its own: the ``DROP
        INDEX`` of an index behind a constraint whose ``DROP CONSTRAINT`` is
        left out (and the other way round), and statements that touch an
        object whose creation is left out (``VALIDATE CONSTRAINT`` after an
        ``ADD CONSTRAINT``, ``USING INDEX`` after a ``CREATE INDEX``), and
        the statements creating objects that use, in the target, an object
        a left-out statement creates or changes (a new view on a table whose
        column change is left out).  A
        recreation is kept or left out as a whole
        (`macrostrat.dinosaur._recreations.kept_together`): an object's drop
        and its creation again; an enum's or domain's rename, creation,
        column conversions (with their defaults) and the drop of its old
        copy; and the views dropped and created again around them.
        """
        plan = self.plan
        keys = self._function_keys()
        infos = [describe(p.sql, keys) for p in plan]
        backing = self.source_catalog.backing
        together = kept_together(
            [p.sql for p in plan],
            [info.creates for info in infos],
            [info.drops for info in infos],
            self.source_catalog.depends,
        )
        # what each statement's new objects use in the target
        uses = [
            {
                dep
                for key in info.creates
                for dep in self.target_catalog.depends.get(key, ())
            }
            for info in infos
        ]
        # a column dropped and added again (a generated column's new
        # expression) is kept or left out with its drop
        # (with the indexes and constraints created on it again)
        redone = readded_columns([p.sql for p in plan])
        column_of = [_column_change(p.sql) for p in plan]
        rebuilt = set(
            readded_column_dependents([p.sql for p in plan], self.changes.i_target)
        )
        for i, ci in enumerate(column_of):
            if ci is not None and ci in redone:
                together[i] = set(together[i]) | {
                    j
                    for j, cj in enumerate(column_of)
                    if j != i and (cj == ci or plan[j].sql in rebuilt)
                }
        excluded = {i for i, p in enumerate(plan) if p.unsafe}
        pending = list(excluded)
        while pending:
            i = pending.pop()
            partners = {backing[k] for k in infos[i].drops if k in backing}
            left_out = infos[i].creates | (
                infos[i].touches if _CHANGES_COLUMNS.search(plan[i].sql) else set()
            )
            for j, info in enumerate(infos):
                if j in excluded:
                    continue
                needs_it = bool(infos[i].creates & (info.touches | info.creates))
                # a new object on one whose change is left out (a view on a
                # column whose type change is left out)
                builds_on_it = bool(left_out & uses[j])
                if (
                    needs_it
                    or builds_on_it
                    or partners & info.drops
                    or j in together[i]
                ):
                    excluded.add(j)
                    pending.append(j)
        return [p for i, p in enumerate(plan) if i not in excluded]

    def print_changes(self, file: TextIO | None = None) -> None:
        """Write every statement, with its hazards as a comment, to ``file`` (stderr)."""
        out = file if file is not None else sys.stderr
        out.write(format_plan(self.plan))

    def apply(
        self,
        quiet: bool = False,
        safe_only: bool = False,
        *,
        allow_hazards: Any = (),
        lock_timeout: str | None = "5s",
        check_convergence: bool = False,
        concurrent_indexes: bool = False,
    ) -> list[PlannedStatement]:
        """Apply the statements to the live database in one transaction.

        See `macrostrat.dinosaur.apply.apply_plan`.  With ``safe_only`` the
        unsafe statements are left out instead of refused.  The source is
        inspected again afterwards; with ``check_convergence`` it is diffed
        against the target again and `ConvergenceError` lists what is left.

        Returns:
            the statements that ran.
        """
        plan = self.safe_plan() if safe_only else self.plan
        ran = apply_plan(
            self.s_from,
            plan,
            allow_hazards=allow_hazards,
            lock_timeout=lock_timeout,
            concurrent_indexes=concurrent_indexes,
        )
        if not quiet:
            log.info("applied %d statement(s)", len(ran))
        self.inspect_from()
        self.clear()
        if check_convergence:
            # The target does not change: diff the fresh source against the
            # target's existing inspection.
            self.add_all_changes(privileges=self.privileges)
            remaining = list(self.statements)
            self.clear()
            if remaining:
                raise ConvergenceError(remaining)
        return ran


# statements that change which columns a relation has, or their types
_CHANGES_COLUMNS = re.compile(
    r"\b(?:add|drop)\s+column\b|\balter\s+column\b.*\btype\b|\battribute\b",
    re.IGNORECASE | re.DOTALL,
)

_COLUMN_CHANGE = re.compile(
    r'^\s*alter\s+table\s+(?:only\s+)?((?:"(?:[^"]|"")*"|[^\s."]+)'
    r'(?:\.(?:"(?:[^"]|"")*"|[^\s."]+))?)\s+(?:add|drop)\s+column\s+'
    r'(?:if\s+(?:not\s+)?exists\s+)?("(?:[^"]|"")*"|[^\s;,]+)',
    re.IGNORECASE,
)


def _column_change(statement: str) -> tuple[str, str] | None:
    """``(schema.table, column)`` a statement adds or drops, or None."""
    m = _COLUMN_CHANGE.match(statement)
    if m is None:
        return None
    return _norm_name(m.group(1)), _norm_name(m.group(2)).split(".")[-1]


_RENAME = re.compile(
    r"^\s*alter\s+(type|domain|table|view|materialized\s+view|sequence)\s+"
    r"(?:if\s+exists\s+)?(.+?)\s+rename\s+to\s+",
    re.IGNORECASE | re.DOTALL,
)


_DROP_COLUMN = re.compile(
    r"^\s*alter\s+table\s+(?:if\s+exists\s+)?(?:only\s+)?"
    r'((?:"(?:[^"]|"")*"|[^\s."]+)(?:\.(?:"(?:[^"]|"")*"|[^\s."]+))?)'
    r'\s+drop\s+column\s+(?:if\s+exists\s+)?("(?:[^"]|"")*"|[^\s;,]+)',
    re.IGNORECASE,
)


def _dropped_by(
    statements: list[str], function_keys: dict[str, str], catalog: Catalog
) -> set[str]:
    """The keys of the live objects a plan drops, renames away or drops implicitly.

    Besides ``DROP`` statements: an object renamed away (an enum or domain
    recreated under its name), the sequences a dropped table owns, and the
    columns dropped (``column:schema.table.name``; added again, they start
    without privileges).
    """
    dropped: set[str] = set()
    for st in statements:
        dropped |= describe(st, function_keys).drops
        m = _RENAME.match(st)
        if m:
            kind = "type" if m.group(1).lower() in ("type", "domain") else "rel"
            name = _norm_name(m.group(2))
            dropped.add(f"{kind}:{name}")
        m = _DROP_COLUMN.match(st)
        if m:
            column = _norm_name(m.group(2)).split(".")[-1]
            dropped.add(f"column:{_norm_name(m.group(1))}.{column}")
    for owned, table in catalog.owners.items():
        if f"rel:{table}" in dropped:
            dropped.add(f"rel:{owned}")
    return dropped


@contextlib.contextmanager
def _without_composite_types(changes: Any) -> Iterator[None]:
    """Hide both inspections' composite types from ``results`` for the block."""
    kept = (changes.i_from.types, changes.i_target.types)
    changes.i_from.types, changes.i_target.types = type(kept[0])(), type(kept[1])()
    try:
        yield
    finally:
        changes.i_from.types, changes.i_target.types = kept


def hazard_summary(plan: list[PlannedStatement]) -> list[tuple[Hazard, int]]:
    """Each hazard of a plan with the number of statements that carry it.

    Unsafe hazards come first, then by name; a plan without hazards gives an
    empty list.
    """
    counts: dict[Hazard, int] = {}
    for p in plan:
        for h in set(p.hazards):
            counts[h] = counts.get(h, 0) + 1
    return sorted(counts.items(), key=lambda item: (not item[0].unsafe, item[0].value))


def format_plan(plan: list[PlannedStatement]) -> str:
    """Plain text of a plan: a summary of its hazards, then each statement.

    The summary groups the hazards with the number of statements carrying
    each, and is left out when there are none.  Each statement is preceded by
    its own hazards as comments; statements are separated by one blank line
    and never contain blank lines themselves.
    """
    buf = io.StringIO()
    summary = hazard_summary(plan)
    if summary:
        buf.write("-- hazards:\n")
        for hazard, n in summary:
            flag = "UNSAFE" if hazard.unsafe else "note"
            noun = "statement" if n == 1 else "statements"
            buf.write(f"--   {flag} {hazard.value}: {n} {noun}\n")
        buf.write("\n")
    for p in plan:
        for hazard, reason in zip(p.hazards, p.reasons, strict=True):
            flag = "UNSAFE" if hazard.unsafe else "note"
            buf.write(f"-- {flag} {hazard.value}: {reason}\n")
        if p.before_transaction:
            buf.write("-- runs before the transaction, committed on its own\n")
        elif not p.transactional:
            buf.write("-- runs after the transaction, on its own\n")
        text = re.sub(r"[ \t]+\n", "\n", p.sql.strip())
        buf.write(re.sub(r"\n{2,}", "\n", text) + "\n\n")
    return buf.getvalue()


@contextlib.contextmanager
def throwaway_database(
    url: URL | str,
    *,
    replace: bool,
    option: str,
    template: str | None = None,
) -> Iterator[Any]:
    """Create a database at ``url`` for the block; yield its engine; drop it.

    A database that already exists there is refused (it would be used, then
    dropped) unless ``replace`` is True: then it is emptied, used and dropped.

    Parameters:
        url: where to create it.
        replace: allow an existing database to be replaced.
        option: the caller's name for ``replace``, for the error message.
        template: the database to create it from.

    Raises:
        DatabaseExistsError: the database exists and ``replace`` is False.
    """
    from macrostrat.database import temporary_database
    from macrostrat.database.errors import DatabaseExistsError

    scope = temporary_database(
        url,
        force_drop=True,
        ensure_empty=replace,
        exists_ok=replace,
        template=template,
    )
    try:
        engine = scope.__enter__()
    except DatabaseExistsError as err:
        name = make_url(str(url)).database if isinstance(url, str) else url.database
        raise DatabaseExistsError(
            f"database {name!r} already exists; it would be built from scratch "
            f"and dropped afterwards, so name a new database (or pass {option}=True "
            "to replace and drop it)"
        ) from err
    with contextlib.ExitStack() as stack:
        stack.push(scope)
        yield engine


@contextlib.contextmanager
def target_database(
    database: Any,
    initializer: DatabaseInitializer,
    *,
    target_url: str | URL | None = None,
    redirect: TextIO | None = None,
    template: str | None = None,
    replace_target: bool = False,
) -> Iterator[URL]:
    """Build the ideal schema in a throwaway database; yield its URL; drop it.

    The throwaway database is created on the live database's server with a
    random name (or at ``target_url``), ``initializer`` runs on a `Database`
    on it, and the database is always dropped afterwards (``WITH (FORCE)``, so
    a connection the initializer left open cannot block the drop).  A
    ``target_url`` that names an existing database is refused (it would be
    replaced, then dropped) unless ``replace_target=True``.

    Parameters:
        database: the live database (its server is used).
        initializer: builds the schema.
        target_url: where to build it instead.
        redirect: where the initializer's stdout goes (default: left alone).
        template: the database to create it from (default: the server's
            ``template1``); e.g. a template that already has PostGIS.
        replace_target: allow ``target_url`` to name an existing database,
            which is then emptied, used and dropped.

    Raises:
        DatabaseExistsError: ``target_url`` names an existing database and
            ``replace_target`` is False.
    """
    from macrostrat.database import Database

    if target_url is None:
        base = _targets.target_url(database)
        url = base.set(database=f"dinosaur_target_{secrets.token_hex(6)}")
    else:
        url = make_url(str(target_url)) if isinstance(target_url, str) else target_url
    with throwaway_database(
        url, replace=replace_target, option="replace_target", template=template
    ) as engine:
        target = Database(engine)
        try:
            if redirect is not None:
                with contextlib.redirect_stdout(redirect):
                    initializer(target)
            else:
                initializer(target)
        finally:
            target.cleanup()
        yield engine.url


def create_migration(
    database: Any,
    initializer: DatabaseInitializer | Any,
    target_url: str | URL | None = None,
    safe: bool = True,
    redirect: TextIO | None = None,
    template: str | None = None,
    replace_target: bool = False,
    *,
    privileges: bool = False,
    **kwargs: Any,
) -> AutoMigration:
    """Diff ``database`` against the schema ``initializer`` builds.

    The target is built in a throwaway database on the same server (see
    `target_database`), inspected, and dropped before this returns; the
    returned migration holds no connection.

    Parameters:
        database: the live database (URL, ``Engine``, ``Connection``, `Database`).
        initializer: a function that builds the ideal schema in an empty
            `Database`, or a database that already has it (URL, ``Engine``,
            ``Connection``, `Database`).
        target_url: where to build the target (default: a database with a
            random name on the live database's server).
        safe: kept for compatibility (``results`` ignores it); use
            `AutoMigration.is_safe` and the hazards instead.
        redirect: where the initializer's stdout goes.
        template: the database the target is created from (see
            `target_database`).
        replace_target: allow ``target_url`` to name an existing database
            (it is replaced, then dropped; refused otherwise).
        privileges: also plan privileges, default privileges and stated
            owners (see `AutoMigration.add_all_changes`).
        **kwargs: ``schema``, ``exclude_schema``, ``ignore_extension_versions``.
    """
    if not callable(initializer):
        migration = AutoMigration(database, initializer, **kwargs)
        migration.set_safety(safe)  # type: ignore[no-untyped-call]  # results is untyped
        migration.add_all_changes(privileges=privileges)
        return migration
    with target_database(
        database,
        initializer,
        target_url=target_url,
        redirect=redirect,
        template=template,
        replace_target=replace_target,
    ) as url:
        migration = AutoMigration(database, url, **kwargs)
        migration.set_safety(safe)  # type: ignore[no-untyped-call]  # results is untyped
        migration.add_all_changes(privileges=privileges)
        # The target is about to be dropped: keep its inspection only.
        migration.s_target = migration.changes.i_target
    return migration


def _create_migration(
    db_engine: Any, target: Any, safe: bool = True, **kwargs: Any
) -> AutoMigration:
    """Diff two existing databases (upstream's private helper, kept for callers)."""
    migration = AutoMigration(db_engine, target, **kwargs)
    migration.set_safety(safe)  # type: ignore[no-untyped-call]  # results is untyped
    migration.add_all_changes()
    return migration


def needs_migration(
    database: Any, initializer: DatabaseInitializer | Any, **kwargs: Any
) -> bool:
    """True when ``database`` differs from the schema ``initializer`` builds."""
    return len(create_migration(database, initializer, **kwargs).statements) > 0


def check_convergence(
    database: Any,
    target: Any,
    *,
    schema: str | None = None,
    exclude_schema: str | None = None,
    privileges: bool = False,
) -> None:
    """Diff ``database`` against ``target`` again and require no difference.

    Parameters:
        database: the live database.
        target: the database with the ideal schema.
        schema: only this schema.
        exclude_schema: every schema but this one.
        privileges: compare privileges, default privileges and stated owners
            too.

    Raises:
        ConvergenceError: statements are still needed; they are listed.
    """
    again = AutoMigration(
        database, target, schema=schema, exclude_schema=exclude_schema
    )
    again.add_all_changes(privileges=privileges)
    remaining = list(again.statements)
    if remaining:
        raise ConvergenceError(remaining)
