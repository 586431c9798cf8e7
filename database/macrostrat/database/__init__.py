"""macrostrat.database: PostgreSQL/PostGIS from Python over SQLAlchemy 2 and psycopg 3.

The main entry point is `Database`. The SQL runner lives in
`macrostrat.database.query`, database lifecycle helpers in
`macrostrat.database.admin`, upserts in `macrostrat.database.postgresql`,
sequence helpers in `macrostrat.database.sequences`, reflection in
`macrostrat.database.mapper` and errors in `macrostrat.database.errors`.
"""

from importlib.metadata import version as _version

from .admin import (
    close_all_connections,
    create_database,
    database_exists,
    db_isready,
    drop_database,
    get_database_url,
    template_database,
    temporary_database,
    wait_for_database,
)
from .core import Database
from .engine import create_engine, normalize_url
from .errors import (
    DatabaseExistsError,
    DatabaseInUseError,
    DatabaseNotFoundError,
    InvalidOptionError,
    MacrostratDatabaseError,
    ModelCacheError,
    ModelNotFoundError,
    SQLSyntaxError,
    StatementError,
    TransactionError,
)
from .mapper import DatabaseMapper, DatabaseModelCache

# Importing .postgresql also registers the execution hook behind on_conflict().
from .postgresql import (
    OnConflictAction,
    on_conflict,
    prefix_inserts,
    table_exists,
    upsert,
)
from .query import OutputMode, execute, run_fixtures, run_query, run_sql, run_sql_file
from .sequences import reset_sequence, serial_to_identity
from .utils import get_dataframe, get_or_create, reflect_table

__version__ = _version("macrostrat.database")

__all__ = [
    "Database",
    "DatabaseExistsError",
    "DatabaseInUseError",
    "DatabaseMapper",
    "DatabaseModelCache",
    "DatabaseNotFoundError",
    "InvalidOptionError",
    "MacrostratDatabaseError",
    "ModelCacheError",
    "ModelNotFoundError",
    "OnConflictAction",
    "OutputMode",
    "SQLSyntaxError",
    "StatementError",
    "TransactionError",
    "__version__",
    "close_all_connections",
    "create_database",
    "create_engine",
    "database_exists",
    "db_isready",
    "drop_database",
    "execute",
    "get_database_url",
    "get_dataframe",
    "get_or_create",
    "normalize_url",
    "on_conflict",
    "prefix_inserts",
    "reflect_table",
    "reset_sequence",
    "run_fixtures",
    "run_query",
    "run_sql",
    "run_sql_file",
    "serial_to_identity",
    "table_exists",
    "template_database",
    "temporary_database",
    "upsert",
    "wait_for_database",
]
