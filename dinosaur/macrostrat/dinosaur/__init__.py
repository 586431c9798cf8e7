"""macrostrat.dinosaur: diff-based PostgreSQL migrations and throwaway clusters.

Migrations: `create_migration` diffs a live database against the schema an
initializer builds (in a throwaway database on the same server); every
statement carries named hazards (`macrostrat.dinosaur.hazards`); `apply_plan`
applies a plan in one transaction under ``lock_timeout``, refusing unsafe
hazards unless allowed by name; `MigrationManager` adds hand-written
`SchemaMigration` steps and checks convergence.

Every public name is imported explicitly below, where type checkers see it.
The errors and hazards (standard library only) are imported with the package.
The names of the modules that load the database stack (SQLAlchemy, psycopg,
``results``, `macrostrat.database`) are imported for type checkers under
``TYPE_CHECKING`` and at run time on first use, from `_DEFERRED`: importing the
package, or its pytest plugin `macrostrat.dinosaur.testing` (loaded by every
pytest run of an application), loads none of that stack. Docker and
testcontainers (the ``docker`` extra) are imported only inside the functions
that need them.
"""

from __future__ import annotations

from importlib.metadata import version as _version
from typing import TYPE_CHECKING

from .errors import (
    ConvergenceError,
    MigrationError,
    MigrationStatementError,
    SchemaMigrationError,
    UnsafeMigrationError,
)
from .hazards import (
    UNSAFE_HAZARDS,
    Hazard,
    PlannedStatement,
    classify_statements,
    parse_hazards,
)

if TYPE_CHECKING:
    # Not in __all__ (so ``X as X`` re-exports them): the names upstream's
    # module happened to import, which callers reach through it, and
    # upstream's private helpers `_create_migration` and `_target_db`.
    from results.dbdiff import Migration as Migration
    from results.dbdiff.statements import check_for_drop as check_for_drop
    from results.schemainspect import get_inspector as get_inspector

    from macrostrat.database import Database as Database
    from macrostrat.database import run_sql as run_sql
    from macrostrat.database.utils import connection_args as connection_args
    from macrostrat.utils import cmd as cmd

    from .apply import apply_plan, refused_statements, use_concurrent_indexes
    from .cluster import database_cluster
    from .diff import (
        AutoMigration,
        DatabaseInitializer,
        check_convergence,
        create_migration,
        format_plan,
        inspect_schema,
        needs_migration,
        target_database,
    )
    from .diff import _create_migration as _create_migration
    from .legacy import _target_db as _target_db
    from .legacy import (
        create_schema_clone,
        db_migration,
        dump_schema,
        dump_schema_containerized,
        has_column,
        has_table,
        strip_psql_meta_commands,
        temp_database,
    )
    from .manager import (
        Condition,
        MigrationManager,
        MigrationStatus,
        SchemaMigration,
        column_exists,
        column_type_is,
        order_migrations,
        table_exists,
        update_schema,
    )
    from .upgrade_cluster import wait_for_cluster, wait_for_ready

_DEFERRED: dict[str, tuple[str, ...]] = {
    # the imports under TYPE_CHECKING above, module by module (a test checks
    # that the two agree)
    ".apply": ("apply_plan", "refused_statements", "use_concurrent_indexes"),
    ".cluster": ("database_cluster",),
    ".diff": (
        "AutoMigration",
        "DatabaseInitializer",
        "_create_migration",
        "check_convergence",
        "create_migration",
        "format_plan",
        "inspect_schema",
        "needs_migration",
        "target_database",
    ),
    ".legacy": (
        "_target_db",
        "create_schema_clone",
        "db_migration",
        "dump_schema",
        "dump_schema_containerized",
        "has_column",
        "has_table",
        "strip_psql_meta_commands",
        "temp_database",
    ),
    ".manager": (
        "Condition",
        "MigrationManager",
        "MigrationStatus",
        "SchemaMigration",
        "column_exists",
        "column_type_is",
        "order_migrations",
        "table_exists",
        "update_schema",
    ),
    ".upgrade_cluster": ("wait_for_cluster", "wait_for_ready"),
    "macrostrat.database": ("Database", "run_sql"),
    "macrostrat.database.utils": ("connection_args",),
    "macrostrat.utils": ("cmd",),
    "results.dbdiff": ("Migration",),
    "results.dbdiff.statements": ("check_for_drop",),
    "results.schemainspect": ("get_inspector",),
}
"""Module -> the names imported from it on first use (relative: ours)."""

__version__ = _version("macrostrat.dinosaur")

__all__ = [
    "UNSAFE_HAZARDS",
    "AutoMigration",
    "Condition",
    "ConvergenceError",
    "DatabaseInitializer",
    "Hazard",
    "MigrationError",
    "MigrationManager",
    "MigrationStatementError",
    "MigrationStatus",
    "PlannedStatement",
    "SchemaMigration",
    "SchemaMigrationError",
    "UnsafeMigrationError",
    "__version__",
    "apply_plan",
    "check_convergence",
    "classify_statements",
    "column_exists",
    "column_type_is",
    "create_migration",
    "create_schema_clone",
    "database_cluster",
    "db_migration",
    "dump_schema",
    "dump_schema_containerized",
    "format_plan",
    "has_column",
    "has_table",
    "inspect_schema",
    "needs_migration",
    "order_migrations",
    "parse_hazards",
    "refused_statements",
    "strip_psql_meta_commands",
    "table_exists",
    "target_database",
    "temp_database",
    "update_schema",
    "use_concurrent_indexes",
    "wait_for_cluster",
    "wait_for_ready",
]

if not TYPE_CHECKING:
    # Run time only: type checkers see the imports above, and an unknown name
    # stays an error for them.
    _MODULE_OF = {name: mod for mod, names in _DEFERRED.items() for name in names}

    def __getattr__(name: str) -> object:
        from importlib import import_module

        module = _MODULE_OF.get(name)
        if module is None:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        value = getattr(import_module(module, __name__), name)
        globals()[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(set(globals()) | set(_MODULE_OF))
