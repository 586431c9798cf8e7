"""Moving data in and out of PostgreSQL: COPY bulk loads, dumps, restores and moves.

Bulk loads (`copy_rows`, `copy_to`, `bulk_upsert`) use psycopg's COPY.  Dumps,
restores, whole-database copies (`copy_database`) and moves run
PostgreSQL's client programs (`pg_dump`,
`pg_restore`, `psql`), chosen by `select_tools`: local programs at least as
new as the server, else a container, else a clear error before anything
runs.  The async functions keep upstream's names and keywords; each has a
``*_sync`` form for scripts.  See ``docs/transfer.md``.
"""

from __future__ import annotations

from typing import Any

from .copy import BulkLoadError, bulk_upsert, copy_rows, copy_to
from .copy_database import copy_database, copy_database_sync
from .dump_database import pg_dump, pg_dump_sync, pg_dump_to_file, pg_dump_to_file_sync
from .move_tables import move_tables, move_tables_sync
from .restore_database import (
    pg_restore,
    pg_restore_from_file,
    pg_restore_from_file_sync,
    pg_restore_sync,
)
from .stream_utils import DecodingStreamReader, print_stdout, print_stream_progress
from .tools import ClientTools, select_tools

__all__ = [
    "BulkLoadError",
    "ClientTools",
    "DecodingStreamReader",
    "bulk_upsert",
    "copy_database",
    "copy_database_sync",
    "copy_rows",
    "copy_to",
    "create_cli",
    "move_tables",
    "move_tables_sync",
    "pg_dump",
    "pg_dump_sync",
    "pg_dump_to_file",
    "pg_dump_to_file_sync",
    "pg_restore",
    "pg_restore_from_file",
    "pg_restore_from_file_sync",
    "pg_restore_sync",
    "print_stdout",
    "print_stream_progress",
    "select_tools",
]


def __getattr__(name: str) -> Any:
    if name == "create_cli":  # the Typer CLI needs the `cli` extra
        from .cli import create_cli

        return create_cli
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
