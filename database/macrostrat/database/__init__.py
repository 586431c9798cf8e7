"""macrostrat.database: PostgreSQL/PostGIS from Python over SQLAlchemy 2 and psycopg 3.

The main entry point is `Database`. The SQL runner lives in
`macrostrat.database.query`, database lifecycle helpers in
`macrostrat.database.admin`, upserts in `macrostrat.database.postgresql`,
sequence helpers in `macrostrat.database.sequences`, reflection in
`macrostrat.database.mapper` and errors in `macrostrat.database.errors`.
"""

from importlib.metadata import version as _version

from ._redact import redact
from ._session import SessionResetWarning
from .core import Database
from .dsn import (
    DSN,
    build_dsn,
    is_multi_host,
    parse_dsn,
    replace_database,
    with_target_session_attrs,
)
from .engine import create_engine, normalize_url
from .errors import (
    BulkLoadError,
    CommitOutcomeUnknown,
    DatabaseExistsError,
    DatabaseInUseError,
    DatabaseNotFoundError,
    InvalidOptionError,
    InvalidTenantError,
    MacrostratDatabaseError,
    ModelCacheError,
    ModelNotFoundError,
    SQLSyntaxError,
    StatementError,
    TransactionError,
    UnsafeRetryError,
)
from .mapper import DatabaseMapper, DatabaseModelCache
from .orm import (
    bulk_delete,
    bulk_insert,
    bulk_update,
    get_or_create_instance,
    is_test_database_name,
    make_test_database_name,
    recreate_all,
    update_instance,
)

# Importing .postgresql also registers the execution hook behind on_conflict().
from .postgresql import (
    OnConflictAction,
    on_conflict,
    prefix_inserts,
    table_exists,
    upsert,
)
from .query import OutputMode, execute, run_fixtures, run_query, run_sql, run_sql_file
from .retry import (
    RetryEvent,
    RetryPolicy,
    is_transient_error,
    postgres_retry,
    retrying,
)
from .sequences import reset_sequence, serial_to_identity
from .transfer import bulk_upsert, copy_rows, copy_to

# The lifecycle functions from .utils also take upstream's parameter names.
from .utils import (
    close_all_connections,
    create_database,
    database_exists,
    db_isready,
    drop_database,
    get_database_url,
    get_dataframe,
    get_or_create,
    reflect_table,
    template_database,
    temporary_database,
    wait_for_database,
)

__version__ = _version("macrostrat.database")

__all__ = [
    "DSN",
    "BulkLoadError",
    "CommitOutcomeUnknown",
    "Database",
    "DatabaseExistsError",
    "DatabaseInUseError",
    "DatabaseMapper",
    "DatabaseModelCache",
    "DatabaseNotFoundError",
    "InvalidOptionError",
    "InvalidTenantError",
    "MacrostratDatabaseError",
    "ModelCacheError",
    "ModelNotFoundError",
    "OnConflictAction",
    "OutputMode",
    "RetryEvent",
    "RetryPolicy",
    "SQLSyntaxError",
    "SessionResetWarning",
    "StatementError",
    "TransactionError",
    "UnsafeRetryError",
    "__version__",
    "build_dsn",
    "bulk_delete",
    "bulk_insert",
    "bulk_update",
    "bulk_upsert",
    "close_all_connections",
    "copy_rows",
    "copy_to",
    "create_database",
    "create_engine",
    "database_exists",
    "db_isready",
    "drop_database",
    "execute",
    "get_database_url",
    "get_dataframe",
    "get_or_create",
    "get_or_create_instance",
    "is_multi_host",
    "is_test_database_name",
    "is_transient_error",
    "make_test_database_name",
    "normalize_url",
    "on_conflict",
    "parse_dsn",
    "postgres_retry",
    "prefix_inserts",
    "recreate_all",
    "redact",
    "reflect_table",
    "replace_database",
    "reset_sequence",
    "retrying",
    "run_fixtures",
    "run_query",
    "run_sql",
    "run_sql_file",
    "serial_to_identity",
    "table_exists",
    "template_database",
    "temporary_database",
    "update_instance",
    "upsert",
    "wait_for_database",
    "with_target_session_attrs",
]
