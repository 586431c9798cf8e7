"""Dump a database with pg_dump, streamed to a file or standard output."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import os
import secrets
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

from ._process import Tool, popen_tool, start_tool
from .progress import make_progress
from .stream_utils import CHUNK_SIZE
from .tools import select_tools
from .utils import check_options, database_url, run_sync

__all__ = ["pg_dump", "pg_dump_sync", "pg_dump_to_file", "pg_dump_to_file_sync"]

_PIPE = asyncio.subprocess.PIPE


def _dump_args(
    args: Sequence[str] | None, user: str | None, custom_format: bool
) -> list[str]:
    """pg_dump's arguments after ``--dbname`` (which `start_tool` adds)."""
    out: list[str] = []
    if custom_format:
        out.append("-Fc")
    if user:
        out += ["-U", user]
    return [*out, *(args or ())]


async def _start_dump(
    engine: Any,
    *,
    command_prefix: Sequence[str] | None = None,
    args: Sequence[str] | None = None,
    postgres_container: str | None = None,
    user: str | None = None,
    stdout: Any = _PIPE,
    custom_format: bool = True,
    collect_stderr: bool = True,
    step: str = "dump",
) -> Tool:
    url = database_url(engine)
    tools = await asyncio.to_thread(
        select_tools,
        url,
        command_prefix=command_prefix,
        postgres_container=postgres_container,
        step=step,
    )
    return await start_tool(
        tools,
        "pg_dump",
        _dump_args(args, user, custom_format),
        url,
        step=step,
        stdout=stdout,
        collect_stderr=collect_stderr,
    )


async def pg_dump(
    engine: Any,
    *,
    command_prefix: Sequence[str] | None = None,
    args: Sequence[str] | None = None,
    postgres_container: str | None = None,
    user: str | None = None,
    stdout: Any = _PIPE,
    custom_format: bool = True,
) -> asyncio.subprocess.Process:
    """Start ``pg_dump`` on a database and return the running process.

    The caller reads ``process.stdout`` (binary) and ``process.stderr`` and
    must check ``await process.wait()``; `pg_dump_to_file` does all that.
    No secret is on pg_dump's command line: local programs read the whole
    connection from a temporary 0600 service file (removed when pg_dump
    exits), others get the password as ``PGPASSWORD`` in the environment
    (see `macrostrat.database.transfer.tools.tool_target`).

    Parameters:
        engine: the database (URL, ``Engine``, ``Connection`` or `Database`).
        command_prefix: None to choose the tools automatically (local, else
            Docker); ``[]`` for local tools only; a non-empty list to run
            ``pg_dump`` after it (for example ``["docker", "exec", "-i", "db"]``).
            A ``docker``/``podman`` ``exec`` or ``run`` prefix gets
            ``-e PGPASSWORD -e PGAPPNAME`` inserted after its subcommand, so
            the password reaches the program in the container by environment,
            never by argv; the URL's host and port must then work from inside
            the container.
        args: extra pg_dump arguments (the list is not modified).
        postgres_container: the image to run pg_dump from if Docker is needed.
        user: connect as this role instead of the URL's user.
        stdout: where pg_dump writes (default: a pipe).
        custom_format: dump in the custom (``-Fc``) format.
    """
    tool = await _start_dump(
        engine,
        command_prefix=command_prefix,
        args=args,
        postgres_container=postgres_container,
        user=user,
        stdout=stdout,
        custom_format=custom_format,
        collect_stderr=False,
    )
    tool.release_on_exit()
    return tool.process


def _is_stdout(dumpfile: Any) -> bool:
    return dumpfile is None or dumpfile is sys.stdout or str(dumpfile) == "-"


async def pg_dump_to_file(
    engine: Any,
    dumpfile: Path | str | IO[Any] | None,
    *,
    quiet: bool = False,
    **kwargs: Any,
) -> int:
    """Dump a database into ``dumpfile``; return the number of bytes written.

    The dump is written to a temporary name beside ``dumpfile`` and renamed
    only when pg_dump exits successfully, so a failed dump leaves no file
    that looks complete.  ``None``, ``"-"`` or ``sys.stdout`` write the raw
    (binary) dump to standard output.  A plain-format (``custom_format=False``)
    dump to a name ending in ``.gz`` is gzip-compressed.

    On cancellation (or Ctrl-C) pg_dump is killed and the temporary file removed.

    Parameters:
        engine: the database to dump.
        dumpfile: the output file, or None/"-" for standard output.
        quiet: no progress report.
        **kwargs: `pg_dump`'s options except ``stdout``.

    Raises:
        ToolError: pg_dump failed (its stderr and exit code are in the error).
        ToolVersionError: no client tools recent enough (raised before running).
    """
    check_options(
        kwargs,
        {"command_prefix", "args", "postgres_container", "user", "custom_format"},
        "pg_dump_to_file",
    )
    custom = kwargs.get("custom_format", True)
    if _is_stdout(dumpfile):
        out: Any = getattr(sys.stdout, "buffer", sys.stdout)
        target, temp = None, None
        label = "pg_dump to stdout"
    else:
        target = Path(dumpfile)  # type: ignore[arg-type]
        temp = target.with_name(f".{target.name}.{secrets.token_hex(4)}.partial")
        raw = temp.open("wb")
        out = raw
        if target.suffix == ".gz" and not custom:
            out = gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=6)
        label = f"pg_dump to {target.name}"
    tool: Tool | None = None
    total = 0
    progress = make_progress(label, quiet=quiet)
    try:
        tool = await _start_dump(engine, **kwargs)
        reader = tool.process.stdout
        assert reader is not None
        while True:
            data = await reader.read(CHUNK_SIZE)
            if not data:
                break
            out.write(data)
            total += len(data)
            progress.advance(len(data))
        await tool.finish()
        if target is not None:
            out.close()
            raw.close()
            os.replace(temp, target)  # type: ignore[arg-type]
        else:
            out.flush()
        return total
    except BaseException:
        if tool is not None:
            await asyncio.shield(tool.kill())
        if temp is not None:
            with contextlib.suppress(OSError):
                raw.close()
            with contextlib.suppress(OSError):
                temp.unlink()
        raise
    finally:
        progress.close()


def pg_dump_sync(
    engine: Any,
    *,
    command_prefix: Sequence[str] | None = None,
    args: Sequence[str] | None = None,
    postgres_container: str | None = None,
    user: str | None = None,
    stdout: Any = subprocess.PIPE,
    custom_format: bool = True,
) -> subprocess.Popen[bytes]:
    """`pg_dump` for synchronous code: start pg_dump and return a ``subprocess.Popen``.

    Same options, tool choice and handling of secrets as `pg_dump`; the
    caller reads its output and must check its exit code
    (`pg_dump_to_file_sync` does that). A temporary service file is removed
    once ``wait()``, ``communicate()`` or ``poll()`` sees pg_dump exit.
    """
    url = database_url(engine)
    tools = select_tools(
        url, command_prefix=command_prefix, postgres_container=postgres_container
    )
    return popen_tool(
        tools,
        "pg_dump",
        _dump_args(args, user, custom_format),
        url,
        step="dump",
        stdout=stdout,
    )


def pg_dump_to_file_sync(
    engine: Any, dumpfile: Path | str | IO[Any] | None, **kwargs: Any
) -> int:
    """`pg_dump_to_file` for synchronous code (no asyncio needed by the caller)."""
    return run_sync(pg_dump_to_file, engine, dumpfile, **kwargs)
