"""Hand-written migrations and the manager that runs them with the automatic diff.

Longer than 400 lines because `MigrationManager`, `SchemaMigration` and their
conditions are upstream's API at upstream's path, documented method by method,
and the manager's run (safe automatic changes, the hand-written steps, the rest
of the diff, convergence) reads best in one place.
"""

from __future__ import annotations

import enum
import inspect
import logging
from collections.abc import Callable, Iterable, Sequence
from types import ModuleType
from typing import Any

from sqlalchemy import Engine

from .diff import AutoMigration, DatabaseInitializer, check_convergence, target_database
from .errors import SchemaMigrationError
from .hazards import Hazard
from .legacy import create_schema_clone, has_column, has_table

__all__ = [
    "Condition",
    "MigrationManager",
    "MigrationStatus",
    "SchemaMigration",
    "column_exists",
    "column_type_is",
    "table_exists",
    "update_schema",
]

log = logging.getLogger(__name__)


class Condition:
    """A named check on a database, used as a pre- or postcondition.

    ``~condition`` is its negation.

    Parameters:
        description: shown in errors and statuses.
        check: called with an ``Engine``; returns whether the condition holds.
    """

    def __init__(self, description: str, check: Callable[[Any], bool]) -> None:
        self.description = description
        self._check = check

    def __call__(self, engine: Any) -> bool:
        return bool(self._check(engine))

    def __invert__(self) -> Condition:
        return Condition(f"not ({self.description})", lambda e: not self._check(e))

    def __repr__(self) -> str:
        return f"Condition({self.description!r})"


def table_exists(table: str) -> Condition:
    """The condition that ``table`` exists (see `has_table`)."""
    return Condition(f"table {table} exists", lambda e: has_table(e, table))


def column_exists(table: str, column: str) -> Condition:
    """The condition that ``table`` has ``column``."""
    return Condition(
        f"column {table}.{column} exists", lambda e: has_column(e, table, column)
    )


def column_type_is(table: str, column: str, type_name: str) -> Condition:
    """The condition that ``table.column`` has type ``type_name`` (as ``format_type`` spells it)."""
    from sqlalchemy import text

    def check(engine: Any) -> bool:
        from .legacy import _sa_connection

        with _sa_connection(engine) as conn:
            row = conn.execute(
                text(
                    "SELECT format_type(atttypid, atttypmod) FROM pg_attribute "
                    "WHERE attrelid = to_regclass(:t) AND attname = :c "
                    "AND attnum > 0 AND NOT attisdropped"
                ),
                {"t": table, "c": column},
            ).first()
        return row is not None and row[0] == type_name

    return Condition(f"column {table}.{column} has type {type_name}", check)


class MigrationStatus(str, enum.Enum):
    """Where a hand-written migration stands against a database."""

    CAN_APPLY = "can apply"
    CANNOT_APPLY = "cannot apply"
    APPLIED = "applied"

    def __str__(self) -> str:
        return self.value


class SchemaMigration:
    """A hand-written migration, for changes a schema diff cannot make safely.

    Subclasses set ``name`` and override `should_apply` and `apply`, or declare
    ``preconditions``/``postconditions`` (`Condition` objects) and only
    override `apply`.

    Attributes:
        name: unique name (default: the class name).
        depends_on: names (or classes) of migrations that must run first.
        destructive: True when `apply` can destroy data; such a migration runs
            only with the caller's explicit allowance.
        preconditions: must all hold for the migration to run.
        postconditions: must all hold after it ran; when they already hold,
            the migration counts as applied.
    """

    name: str | None = None
    depends_on: Sequence[str | type[SchemaMigration]] = ()
    destructive: bool = False
    preconditions: Sequence[Condition] = ()
    postconditions: Sequence[Condition] = ()

    @property
    def key(self) -> str:
        """The migration's name, or its class name."""
        return self.name or type(self).__name__

    def should_apply(self, source: Any, target: Any, migrator: Any) -> bool:
        """Whether to run this migration against ``source``.

        The default: with declared conditions, when every precondition holds
        and not every postcondition does; without, never (as upstream).
        """
        if not self.preconditions and not self.postconditions:
            return False
        return self.status(source) is MigrationStatus.CAN_APPLY

    def status(self, engine: Any) -> MigrationStatus:
        """`MigrationStatus` of this migration from its declared conditions."""
        if self.postconditions and all(c(engine) for c in self.postconditions):
            return MigrationStatus.APPLIED
        if all(c(engine) for c in self.preconditions):
            return MigrationStatus.CAN_APPLY
        return MigrationStatus.CANNOT_APPLY

    def apply(self, engine: Any) -> None:
        """Make the change on ``engine`` (default: nothing)."""


def _dep_key(dep: str | type[SchemaMigration]) -> str:
    if isinstance(dep, str):
        return dep
    return dep.name or dep.__name__


def order_migrations(migrations: Iterable[SchemaMigration]) -> list[SchemaMigration]:
    """Sort migrations so that each comes after its ``depends_on``.

    Declaration order is kept where dependencies allow.

    Raises:
        SchemaMigrationError: a dependency is unknown, a name is repeated, or
            the dependencies form a cycle (the cycle is named).
    """
    items = list(migrations)
    by_key: dict[str, SchemaMigration] = {}
    for m in items:
        if m.key in by_key:
            raise SchemaMigrationError(f"two migrations are named {m.key!r}")
        by_key[m.key] = m
    for m in items:
        for dep in m.depends_on:
            if _dep_key(dep) not in by_key:
                raise SchemaMigrationError(
                    f"migration {m.key!r} depends on unknown migration {_dep_key(dep)!r}"
                )
    done: list[SchemaMigration] = []
    state: dict[str, int] = {}

    def visit(m: SchemaMigration, path: list[str]) -> None:
        if state.get(m.key) == 2:
            return
        if state.get(m.key) == 1:
            cycle = [*path[path.index(m.key) :], m.key]
            raise SchemaMigrationError(
                "migration dependencies form a cycle: " + " -> ".join(cycle)
            )
        state[m.key] = 1
        for dep in m.depends_on:
            visit(by_key[_dep_key(dep)], [*path, m.key])
        state[m.key] = 2
        done.append(m)

    for m in items:
        visit(m, [])
    return done


class MigrationManager:
    """Brings a live database to the schema an initializer builds.

    `run_migration` builds the target schema in a throwaway database on the
    same server, optionally rehearses on a schema-only clone (dry run), then:
    applies the automatic diff if it is safe, runs the hand-written migrations
    in dependency order, applies the remaining automatic diff (unsafe hazards
    only when allowed by name), and checks convergence.  Every inspection uses
    its own short-lived connection, so hand-written DDL never waits on locks
    held by the manager.

    Parameters:
        database: the live `Database`.
        _init_function: the `DatabaseInitializer`.
        migrations: `SchemaMigration` instances (or classes).
        schema: limit the automatic diff to this schema.

    Class attributes ``target_url`` (where to build the target; default a
    random name on the live server), ``target_template`` (the database the
    target is created from), ``dry_run_url`` and ``postgres_image_name`` (where
    the clone goes and which image runs ``pg_dump``; default local) and
    ``dry_run_cluster`` (``"local"``/``"docker"``/``"auto"``: rehearse on a
    throwaway cluster instead of the live server) may be overridden by
    subclasses or instances.
    """

    target_url: str | None = None
    dry_run_url: str | None = None
    postgres_image_name: str | None = None
    target_template: str | None = None
    dry_run_cluster: str | None = None
    schema: str | None = None

    def __init__(
        self,
        database: Any,
        _init_function: DatabaseInitializer,
        migrations: Iterable[SchemaMigration | type[SchemaMigration]] | None = None,
        schema: str | None = None,
    ) -> None:
        self.db = database
        self._init_function = _init_function
        self._migrations: list[SchemaMigration] = []
        for m in migrations or ():
            self.add_migration(m)
        if schema is not None:
            self.schema = schema

    @property
    def migrations(self) -> list[SchemaMigration]:
        """The registered migrations, in registration order."""
        return list(self._migrations)

    def add_migration(self, migration: SchemaMigration | type[SchemaMigration]) -> None:
        """Register a `SchemaMigration` class (instantiated here) or instance."""
        if inspect.isclass(migration):
            if not issubclass(migration, SchemaMigration):
                raise TypeError(f"{migration!r} is not a SchemaMigration subclass")
            migration = migration()
        if not isinstance(migration, SchemaMigration):
            raise TypeError(f"{migration!r} is not a SchemaMigration")
        self._migrations.append(migration)

    def add_module(self, module: ModuleType) -> None:
        """Register every `SchemaMigration` subclass defined in ``module``."""
        for obj in vars(module).values():
            if (
                inspect.isclass(obj)
                and issubclass(obj, SchemaMigration)
                and obj is not SchemaMigration
                and obj.__module__ == module.__name__
            ):
                self.add_migration(obj)

    def statuses(self, engine: Any = None) -> dict[str, MigrationStatus]:
        """Each migration's `MigrationStatus` against ``engine`` (the live database)."""
        engine = engine if engine is not None else self.db.engine
        return {m.key: m.status(engine) for m in order_migrations(self._migrations)}

    def apply_migrations(
        self, engine: Any, target: Any, *, allow_destructive: bool = False
    ) -> list[str]:
        """Run the hand-written migrations that should apply, in dependency order.

        Returns:
            the names of the migrations that ran.

        Raises:
            SchemaMigrationError: a destructive migration was not allowed, a
                migration failed, or its postconditions do not hold afterwards.
        """
        ran = []
        for m in order_migrations(self._migrations):
            if not m.should_apply(engine, target, self):
                continue
            if m.destructive and not allow_destructive:
                raise SchemaMigrationError(
                    f"migration {m.key!r} is destructive; pass allow_destructive=True "
                    "to run it"
                )
            log.info("applying migration %s", m.key)
            try:
                m.apply(engine)
            except SchemaMigrationError:
                raise
            except Exception as exc:
                raise SchemaMigrationError(
                    f"migration {m.key!r} failed: {exc}"
                ) from exc
            failed = [c.description for c in m.postconditions if not c(engine)]
            if failed:
                raise SchemaMigrationError(
                    f"migration {m.key!r} ran but its postconditions do not hold: "
                    + "; ".join(failed)
                )
            ran.append(m.key)
        return ran

    def _pre_auto_migration(self, engine: Any, target: Any) -> None:
        """Hook run between the hand-written migrations and the automatic diff."""

    def _run_migration(
        self,
        engine: Any,
        target: Any,
        check: bool = False,
        *,
        allow_hazards: Iterable[str | Hazard] = (),
        allow_destructive: bool = False,
        lock_timeout: str | None = "5s",
    ) -> None:
        """Apply safe automatic changes, the hand-written migrations, then the rest.

        ``check`` is accepted for upstream's signature and ignored, as upstream
        ignored it: convergence is always checked.
        """
        del check
        first = AutoMigration(engine, target, schema=self.schema)
        first.add_all_changes()
        if first.statements and first.is_safe:
            first.apply(quiet=True, lock_timeout=lock_timeout)
        self.apply_migrations(engine, target, allow_destructive=allow_destructive)
        self._pre_auto_migration(engine, target)
        second = AutoMigration(engine, target, schema=self.schema)
        second.add_all_changes()
        if second.statements:
            second.apply(
                quiet=True, allow_hazards=allow_hazards, lock_timeout=lock_timeout
            )
        check_convergence(engine, target, schema=self.schema)

    def dry_run_migration(self, target: Any, **kwargs: Any) -> None:
        """Rehearse on a schema-only clone of the live database.

        The clone is on the live server, or on a throwaway cluster when
        ``dry_run_cluster`` is set.
        """
        with create_schema_clone(
            self.db.engine,
            db_url=self.dry_run_url,
            image_name=self.postgres_image_name,
            cluster=self.dry_run_cluster,
        ) as clone:
            self._run_migration(clone, target, **kwargs)

    def run_migration(
        self,
        dry_run: bool = True,
        apply: bool = True,
        *,
        allow_hazards: Iterable[str | Hazard] = (),
        allow_destructive: bool = False,
        lock_timeout: str | None = "5s",
    ) -> None:
        """Build the target, rehearse (``dry_run``), then migrate (``apply``).

        Parameters:
            dry_run: first run everything on a schema-only clone.
            apply: then migrate the live database.
            allow_hazards: unsafe hazards allowed in the automatic diff.
            allow_destructive: run migrations marked ``destructive``.
            lock_timeout: ``lock_timeout`` of the automatic statements.
        """
        kwargs: dict[str, Any] = {
            "allow_hazards": tuple(allow_hazards),
            "allow_destructive": allow_destructive,
            "lock_timeout": lock_timeout,
        }
        with target_database(
            self.db,
            self._init_function,
            target_url=self.target_url,
            template=self.target_template,
        ) as target_url:
            from macrostrat.database import create_engine

            target: Engine = create_engine(target_url)
            try:
                if dry_run:
                    self.dry_run_migration(target, **kwargs)
                if not apply:
                    return
                self._run_migration(self.db.engine, target, **kwargs)
            finally:
                target.dispose()


def update_schema(
    db: Any,
    initializer: DatabaseInitializer,
    migrations: Iterable[SchemaMigration | type[SchemaMigration]] | None = None,
    **kwargs: Any,
) -> None:
    """Migrate ``db`` to ``initializer``'s schema with `MigrationManager`."""
    MigrationManager(db, initializer, migrations=migrations).run_migration(**kwargs)
