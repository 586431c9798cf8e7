"""Move tables or whole schemas between databases: pg_dump piped into psql."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg import sql
from sqlalchemy import URL

from ..errors import InvalidOptionError, TransferError
from ._plain import SchemaIfNotExists
from ._process import Tool, finish_upstream, start_tool
from .dump_database import _start_dump
from .progress import make_progress
from .restore_database import NOTHING_COMMITTED, _finish, _psql_options, feed
from .stream_utils import CHUNK_SIZE
from .tools import select_tools
from .utils import check_options, database_url, run_sync

__all__ = ["move_tables", "move_tables_sync"]

# pg_restore options that pg_dump applies identically to plain output.
_RESTORE_TO_DUMP = {
    "-O": "--no-owner",
    "--no-owner": "--no-owner",
    "-x": "--no-privileges",
    "--no-privileges": "--no-privileges",
    "--no-acl": "--no-privileges",
    "--no-comments": "--no-comments",
    "--no-tablespaces": "--no-tablespaces",
    "--no-security-labels": "--no-security-labels",
    "--no-publications": "--no-publications",
    "--no-subscriptions": "--no-subscriptions",
    "--disable-triggers": "--disable-triggers",
    "--use-set-session-authorization": "--use-set-session-authorization",
}


def _connect(url: URL) -> psycopg.Connection[Any]:
    kwargs: dict[str, Any] = url.translate_connect_args(
        username="user", database="dbname"
    )
    for key, value in url.query.items():
        kwargs[key] = ",".join(value) if isinstance(value, tuple) else value
    return psycopg.connect(**kwargs, autocommit=True)


def _pattern(*parts: str) -> str:
    """A pg_dump name pattern matching exactly these names (no wildcards)."""
    return ".".join('"' + p.replace('"', '""') + '"' for p in parts)


def _split(name: str) -> tuple[str, str]:
    schema, dot, table = name.partition(".")
    return (schema, table) if dot else ("public", name)


_TABLES_IN = """
SELECT n.nspname, c.relname FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND n.nspname = ANY(%s)
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
                  AND d.objid = c.oid AND d.deptype = 'e')
ORDER BY 1, 2
"""


def _plan(
    url: URL, tables: Sequence[str], schemas: Sequence[str]
) -> list[tuple[str, str]]:
    """The (schema, table) pairs to move, checked to exist on the source."""
    wanted = [_split(t) for t in tables]
    with _connect(url) as conn:
        found = {
            r[0]
            for r in conn.execute(
                "SELECT nspname FROM pg_namespace WHERE nspname = ANY(%s)",
                (list(schemas),),
            )
        }
        missing = [s for s in schemas if s not in found]
        if missing:
            raise TransferError(
                f"schema(s) {', '.join(missing)} not found in the source database "
                f"{url.database!r}",
                step="plan",
            )
        for schema, table in wanted:
            row = conn.execute(
                "SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = %s AND c.relname = %s AND c.relkind IN ('r','p')",
                (schema, table),
            ).fetchone()
            if row is None:
                raise TransferError(
                    f"table {schema}.{table} not found in the source database "
                    f"{url.database!r}",
                    step="plan",
                )
        in_schemas = [(r[0], r[1]) for r in conn.execute(_TABLES_IN, (list(schemas),))]
    result = list(dict.fromkeys([*wanted, *in_schemas]))
    return result


def _counts(url: URL, pairs: Sequence[tuple[str, str]]) -> dict[str, int]:
    out: dict[str, int] = {}
    with _connect(url) as conn:
        for schema, table in pairs:
            n = conn.execute(
                sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(schema, table))
            ).fetchone()
            out[f"{schema}.{table}"] = int(n[0]) if n else 0
    return out


def _prelude(schemas: Sequence[str]) -> bytes:
    """``CREATE SCHEMA IF NOT EXISTS`` for ``schemas``, quoted, as psql input."""
    stmts = [
        sql.SQL("CREATE SCHEMA IF NOT EXISTS {};\n").format(sql.Identifier(s))
        for s in schemas
    ]
    return b"".join(s.as_bytes(None) for s in stmts)


def _restore_args_for_dump(restore_args: Sequence[str]) -> list[str]:
    out = []
    for arg in restore_args:
        if arg not in _RESTORE_TO_DUMP:
            raise InvalidOptionError(
                f"move_tables: restore_args option {arg!r} is not supported "
                "(tables move through a plain dump into psql); supported: "
                f"{', '.join(sorted(_RESTORE_TO_DUMP))}"
            )
        out.append(_RESTORE_TO_DUMP[arg])
    return out


async def move_tables(
    from_database: Any,
    to_database: Any,
    *,
    tables: Sequence[str] | None = None,
    schemas: Sequence[str] | None = None,
    dump_args: Sequence[str] | None = None,
    restore_args: Sequence[str] | None = None,
    quiet: bool = False,
    verify: bool = True,
    **kwargs: Any,
) -> dict[str, int]:
    """Copy tables (definitions and data) from one database to another.

    ``pg_dump`` (plain format, only the named tables and schemas) is piped
    into ``psql --single-transaction -v ON_ERROR_STOP=1`` on the target, so
    the move is all or nothing.  Missing schemas are created on the target
    (in the same transaction); existing ones are reused.  Afterwards every
    moved table's row count is compared between source and target.

    Parameters:
        from_database: the source (URL, ``Engine``, ``Connection`` or `Database`).
        to_database: the target database (must exist).
        tables: tables as ``"schema.table"`` or ``"table"`` (``public``).
        schemas: whole schemas to move.
        dump_args: extra pg_dump arguments (the list is not modified).
        restore_args: pg_restore-style options that pg_dump can apply to plain
            output (``--no-owner``, ``--no-privileges``, ...); others raise.
        quiet: no progress report.
        verify: compare per-table row counts after the move.
        **kwargs: ``command_prefix`` and ``postgres_container`` (for both tools).

    Returns:
        The row count of every moved table, keyed ``"schema.table"``.

    Raises:
        ValueError: neither ``tables`` nor ``schemas`` was given.
        TransferError: a table or schema is missing on the source, or the row
            counts differ after the move (``step == "verify"``).
        ToolError: pg_dump or psql failed; its stderr is in the message and
            nothing was committed to the target.
    """
    if not tables and not schemas:
        raise ValueError("Must specify at least one table or schema to transfer")
    check_options(kwargs, {"command_prefix", "postgres_container"}, "move_tables")
    src, dst = database_url(from_database), database_url(to_database)
    if (src.host, src.port, src.database) == (dst.host, dst.port, dst.database):
        raise InvalidOptionError("move_tables: source and target are the same database")
    tables, schemas = list(tables or ()), list(schemas or ())
    pairs = await asyncio.to_thread(_plan, src, tables, schemas)
    args = ["--format=plain", *_restore_args_for_dump(restore_args or ())]
    args += [f"--schema={_pattern(s)}" for s in schemas]
    args += [f"--table={_pattern(*_split(t))}" for t in tables]
    args += list(dump_args or ())
    target_tools = await asyncio.to_thread(select_tools, dst, step="move", **kwargs)
    new_schemas = list(dict.fromkeys(s for s, _ in map(_split, tables)))
    progress = make_progress(f"move to {dst.database}", quiet=quiet)
    running: list[Tool] = []
    try:
        dump = await _start_dump(
            src,
            args=args,
            custom_format=False,
            step="move: pg_dump from source",
            **kwargs,
        )
        running.append(dump)
        restore = await start_tool(
            target_tools,
            "psql",
            _psql_options(),
            dst,
            step="move: psql into target",
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
        )
        running.append(restore)
        await _finish(
            restore,
            NOTHING_COMMITTED,
            _pipe(dump, restore, _prelude(new_schemas), progress),
        )
    except BaseException:
        await asyncio.shield(_kill(running))
        raise
    finally:
        progress.close()
    counts = await asyncio.to_thread(_counts, dst, pairs)
    if verify:
        source_counts = await asyncio.to_thread(_counts, src, pairs)
        diff = {
            k: (source_counts[k], counts[k])
            for k in counts
            if counts[k] != source_counts[k]
        }
        if diff:
            detail = ", ".join(
                f"{k}: source {a}, target {b}" for k, (a, b) in diff.items()
            )
            raise TransferError(
                f"move_tables committed, but row counts differ ({detail}); was the "
                "source written to during the move?",
                step="verify",
            )
    return counts


async def _kill(tools: list[Tool]) -> None:
    # The target first: it must not see the end of its input and commit.
    for t in reversed(tools):
        await t.kill()


async def _pipe(dump: Tool, restore: Tool, prelude: bytes, progress: Any) -> None:
    """Copy pg_dump's output into psql; close psql's input only if pg_dump succeeded."""
    reader = dump.process.stdout
    assert reader is not None
    filt = SchemaIfNotExists()
    chunks: list[bytes] = [prelude] if prelude else []
    finished = False

    async def read() -> bytes:
        nonlocal finished
        if chunks:
            return chunks.pop(0)
        if finished:
            return b""
        while True:
            data = await reader.read(CHUNK_SIZE)
            if not data:
                break
            out = filt.feed(data)
            if out:
                return out
        finished = True
        # pg_dump ended: it must have succeeded before psql may commit.
        await finish_upstream(dump, restore, NOTHING_COMMITTED)
        return filt.finish()

    await feed(restore, read, progress)


def move_tables_sync(
    from_database: Any, to_database: Any, **kwargs: Any
) -> dict[str, int]:
    """`move_tables` for synchronous code (no asyncio needed by the caller)."""
    return run_sync(move_tables, from_database, to_database, **kwargs)
