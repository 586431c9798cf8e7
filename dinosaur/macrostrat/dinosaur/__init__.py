"""macrostrat.dinosaur: diff-based PostgreSQL migrations and throwaway clusters.

Migrations: `create_migration` diffs a live database against the schema an
initializer builds (in a throwaway database on the same server); every
statement carries named hazards (`macrostrat.dinosaur.hazards`); `apply_plan`
applies a plan in one transaction under ``lock_timeout``, refusing unsafe
hazards unless allowed by name; `MigrationManager` adds hand-written
`SchemaMigration` steps and checks convergence.

Clusters live in `macrostrat.dinosaur.cluster` (imported lazily from here).
"""

from __future__ import annotations

from importlib.metadata import version as _version
from typing import Any

from .apply import (
    apply_plan,
    check_convergence,
    refused_statements,
    use_concurrent_indexes,
)
from .diff import (
    AutoMigration,
    DatabaseInitializer,
    create_migration,
    format_plan,
    inspect_schema,
    needs_migration,
    target_database,
)
from .diff import (
    _create_migration as _create_migration,
)
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
]


def __getattr__(name: str) -> Any:
    # Upstream callers import database_cluster from here; keep the cluster
    # machinery lazy.
    if name == "database_cluster":
        from .cluster import database_cluster

        return database_cluster
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
