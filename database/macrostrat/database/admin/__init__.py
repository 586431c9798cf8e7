"""Database lifecycle: create, drop, test for, copy and wait for PostgreSQL databases.

Every operation here runs on a *maintenance connection*: a psycopg 3 connection
in autocommit mode to the same server, opened explicitly on the ``postgres``
database (or ``template1`` when ``postgres`` cannot be reached, or the database
named by ``maintenance_database=``).  The database name is always given to
libpq, so ``PGDATABASE`` and the other libpq defaults for the database name are
never consulted, and the maintenance connection is never opened on the database
being created, dropped or copied.  Each operation opens its own maintenance
connection and closes it when done: none is held while a `temporary_database`
block runs (a session left on ``template1`` would make every ``CREATE
DATABASE`` from the default template fail meanwhile).

`temporary_database` drops on exit only a database it created; one that
existed before is used and kept (with an `ExistingDatabaseWarning`) unless
``drop_existing=True``.

Database names are always sent as quoted identifiers (`psycopg.sql.Identifier`),
and names longer than PostgreSQL's 63-byte limit are refused rather than
silently truncated by the server.  Error messages name the database; they never
contain a password.

Other users' sessions are ended only when the caller asks for it:
``force=True`` / ``force_drop=True`` (``DROP DATABASE ... WITH (FORCE)``),
`close_all_connections`, or ``template_database(close_source_connections=True)``.
Without that, dropping (or copying) a database that others are connected to
fails after about a second with a message that counts the sessions, instead of
PostgreSQL's own five-second wait.
"""

from ._connection import DatabaseTarget, get_database_url
from .lifecycle import (
    close_all_connections,
    create_database,
    database_exists,
    drop_database,
)
from .readiness import connection_args, db_isready, wait_for_database
from .temporary import (
    ExistingDatabaseWarning,
    template_database,
    temporary_database,
)

__all__ = [
    "DatabaseTarget",
    "ExistingDatabaseWarning",
    "close_all_connections",
    "connection_args",
    "create_database",
    "database_exists",
    "db_isready",
    "drop_database",
    "get_database_url",
    "template_database",
    "temporary_database",
    "wait_for_database",
]
