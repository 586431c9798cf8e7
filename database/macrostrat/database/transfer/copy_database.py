"""Copy a whole database: ``pg_dump -Fc`` streamed straight into ``pg_restore``."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Sequence
from typing import Any

from ..errors import InvalidOptionError
from ._process import Tool, finish_upstream, kill_all, start_tool
from .dump_database import _start_dump
from .progress import Progress, make_progress
from .restore_database import NOTHING_COMMITTED, _finish, feed
from .stream_utils import CHUNK_SIZE
from .tools import select_tools
from .utils import _create_database_if_not_exists, check_options, database_url, run_sync

__all__ = ["copy_database", "copy_database_sync"]


async def copy_database(
    from_database: Any,
    to_database: Any,
    *,
    create: bool = False,
    dump_args: Sequence[str] | None = None,
    restore_args: Sequence[str] | None = None,
    quiet: bool = False,
    **kwargs: Any,
) -> int:
    """Copy a database (or part of it) into another, with no file in between.

    ``pg_dump`` writes a custom-format archive that is streamed, in 1 MiB
    chunks, into ``pg_restore --exit-on-error --single-transaction`` on the
    target, with a progress report. ``pg_restore`` sees the end of its input
    only after ``pg_dump`` has exited successfully: when the dump fails (or
    the connection to the source is lost) the restore is killed first, so
    nothing is committed to the target. Any tool failure raises `ToolError`
    with that tool's stderr and the state the target was left in.

    Parameters:
        from_database: the source (URL, ``Engine``, ``Connection`` or `Database`).
        to_database: the target database.
        create: create the target database first if it does not exist.
        dump_args: extra pg_dump arguments (``--schema=...``, ``--table=...``);
            the list is not modified.
        restore_args: extra pg_restore arguments (``--no-owner``, ...).
        quiet: no progress report.
        **kwargs: ``command_prefix`` and ``postgres_container`` (for both tools).

    Returns:
        The number of archive bytes streamed.

    Raises:
        InvalidOptionError: source and target are the same database, or an
            unknown option was given.
        ToolError: pg_dump or pg_restore failed; nothing was committed.
        DatabaseNotFoundError: the target does not exist and not ``create``.
    """
    check_options(kwargs, {"command_prefix", "postgres_container"}, "copy_database")
    src, dst = database_url(from_database), database_url(to_database)
    if (src.host, src.port, src.database) == (dst.host, dst.port, dst.database):
        raise InvalidOptionError(
            "copy_database: source and target are the same database"
        )
    await asyncio.to_thread(_create_database_if_not_exists, dst, create=create)
    target_tools = await asyncio.to_thread(select_tools, dst, step="restore", **kwargs)
    progress = make_progress(f"copy {src.database} to {dst.database}", quiet=quiet)
    running: list[Tool] = []
    try:
        dump = await _start_dump(
            src, args=dump_args, custom_format=True, step="copy: pg_dump", **kwargs
        )
        running.append(dump)
        restore = await start_tool(
            target_tools,
            "pg_restore",
            [
                "--exit-on-error",
                "--single-transaction",
                *(restore_args or ()),
            ],
            dst,
            step="copy: pg_restore",
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
        )
        running.append(restore)
        streamed = await _pump(dump, restore, progress)
    except BaseException:
        # The target first: it must not see the end of its input and commit.
        await asyncio.shield(kill_all(running[::-1]))
        raise
    finally:
        progress.close()
    return streamed


async def _pump(dump: Tool, restore: Tool, progress: Progress) -> int:
    """Stream the archive; let pg_restore see EOF only after pg_dump succeeded."""
    reader = dump.process.stdout
    assert reader is not None
    total = 0

    async def read() -> bytes:
        nonlocal total
        data = await reader.read(CHUNK_SIZE)
        if data:
            total += len(data)
            return data
        await finish_upstream(dump, restore, NOTHING_COMMITTED)
        return b""

    await _finish(restore, NOTHING_COMMITTED, feed(restore, read, progress))
    return total


def copy_database_sync(from_database: Any, to_database: Any, **kwargs: Any) -> int:
    """`copy_database` for synchronous code (no asyncio needed by the caller)."""
    return run_sync(copy_database, from_database, to_database, **kwargs)
