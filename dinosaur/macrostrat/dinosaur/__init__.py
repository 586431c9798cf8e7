"""macrostrat.dinosaur: diff-based PostgreSQL migrations and throwaway clusters.

Migrations: `create_migration` diffs a live database against the schema an
initializer builds (in a throwaway database on the same server); every
statement carries named hazards (`macrostrat.dinosaur.hazards`); `apply_plan`
applies a plan in one transaction under ``lock_timeout``, refusing unsafe
hazards unless allowed by name; `MigrationManager` adds hand-written
`SchemaMigration` steps and checks convergence.

Every public name is imported lazily, on first use, so that importing the
package (or its pytest plugin) stays cheap.
"""

from __future__ import annotations

from importlib.metadata import version as _version
from typing import Any

_LAZY: dict[str, str] = {
    "AutoMigration": "diff",
    "Condition": "manager",
    "ConvergenceError": "errors",
    "DatabaseInitializer": "diff",
    "Hazard": "hazards",
    "MigrationError": "errors",
    "MigrationManager": "manager",
    "MigrationStatementError": "errors",
    "MigrationStatus": "manager",
    "PlannedStatement": "hazards",
    "SchemaMigration": "manager",
    "SchemaMigrationError": "errors",
    "UNSAFE_HAZARDS": "hazards",
    "UnsafeMigrationError": "errors",
    "_create_migration": "diff",
    "_target_db": "legacy",
    "apply_plan": "apply",
    "check_convergence": "diff",
    "classify_statements": "hazards",
    "column_exists": "manager",
    "column_type_is": "manager",
    "create_migration": "diff",
    "create_schema_clone": "legacy",
    "database_cluster": "cluster",
    "db_migration": "legacy",
    "dump_schema": "legacy",
    "dump_schema_containerized": "legacy",
    "format_plan": "diff",
    "has_column": "legacy",
    "has_table": "legacy",
    "inspect_schema": "diff",
    "needs_migration": "diff",
    "order_migrations": "manager",
    "parse_hazards": "hazards",
    "refused_statements": "apply",
    "strip_psql_meta_commands": "legacy",
    "table_exists": "manager",
    "target_database": "diff",
    "temp_database": "legacy",
    "update_schema": "manager",
    "use_concurrent_indexes": "apply",
    "wait_for_cluster": "upgrade_cluster",
    "wait_for_ready": "upgrade_cluster",
}
"""Public name -> the submodule that defines it (imported on first use)."""

_INCIDENTAL: dict[str, tuple[str, str]] = {
    "Database": ("macrostrat.database", "Database"),
    "Migration": ("results.dbdiff", "Migration"),
    "check_for_drop": ("results.dbdiff.statements", "check_for_drop"),
    "cmd": ("macrostrat.utils", "cmd"),
    "connection_args": ("macrostrat.database.utils", "connection_args"),
    "get_inspector": ("results.schemainspect", "get_inspector"),
    "run_sql": ("macrostrat.database", "run_sql"),
}
"""Names upstream's module happened to import and callers reach through it
(not in ``__all__``): name -> (module, attribute), imported on first use."""

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


def __getattr__(name: str) -> Any:
    # Lazy, so that importing the package (e.g. for the pytest plugin
    # macrostrat.dinosaur.testing) loads neither SQLAlchemy nor psycopg nor
    # results until a migration or cluster name is used.
    from importlib import import_module

    module = _LAZY.get(name)
    if module is not None:
        value = getattr(import_module(f".{module}", __name__), name)
    elif name in _INCIDENTAL:
        path, attr = _INCIDENTAL[name]
        value = getattr(import_module(path), attr)
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY) | set(_INCIDENTAL))
