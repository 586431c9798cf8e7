"""Restore a dump (custom, directory or plain SQL, optionally gzipped) into a database."""

from __future__ import annotations

import asyncio
import subprocess
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

from ..errors import TransferError
from ._process import Tool, popen_tool, start_tool
from .progress import Progress, make_progress
from .stream_utils import CHUNK_SIZE
from .tools import ClientTools, conninfo, select_tools
from .utils import _create_database_if_not_exists, check_options, database_url, run_sync

__all__ = [
    "pg_restore",
    "pg_restore_from_file",
    "pg_restore_from_file_sync",
    "pg_restore_sync",
    "psql_args",
]

_PIPE = asyncio.subprocess.PIPE
_CUSTOM_MAGIC = b"PGDMP"
_GZIP_MAGIC = b"\x1f\x8b"
_PLAIN_HEADER = b"--\n-- PostgreSQL database dump"
_PLAIN_TRAILER = b"-- PostgreSQL database dump complete"

NOTHING_COMMITTED = (
    "Nothing was committed to the target (the restore runs in one transaction)."
)


def psql_args(url: Any, *, single_transaction: bool = True) -> list[str]:
    """psql arguments to run a script from standard input, stopping at the first error.

    The connection is `conninfo` (a URI without any secret): pass the
    password in the environment (`tool_environment`).

    Parameters:
        url: the database.
        single_transaction: run the script in one transaction.
    """
    return ["--dbname", conninfo(url), *_psql_options(single_transaction)]


def _psql_options(single_transaction: bool = True) -> list[str]:
    """`psql_args` without ``--dbname`` (which `start_tool` adds)."""
    out = ["-X", "-q", "-v", "ON_ERROR_STOP=1"]
    if single_transaction:
        out.append("--single-transaction")
    return [*out, "-f", "-"]


async def _tools_for(
    url: Any,
    command_prefix: Sequence[str] | None,
    postgres_container: str | None,
    step: str,
) -> ClientTools:
    return await asyncio.to_thread(
        select_tools,
        url,
        command_prefix=command_prefix,
        postgres_container=postgres_container,
        step=step,
    )


async def pg_restore(
    engine: Any,
    *,
    create: bool = False,
    command_prefix: Sequence[str] | None = None,
    args: Sequence[str] | None = None,
    postgres_container: str | None = None,
) -> asyncio.subprocess.Process:
    """Start ``pg_restore`` into a database, reading the archive from its stdin.

    The caller writes the archive to ``process.stdin``, closes it, reads
    ``process.stderr`` and must check ``await process.wait()``;
    `pg_restore_from_file` does all that.

    Parameters:
        engine: the target database.
        create: create the database first if it does not exist.
        command_prefix: see `pg_dump` (a ``docker``/``podman`` ``exec`` or
            ``run`` prefix gets ``-e PGPASSWORD -e PGAPPNAME`` after its
            subcommand, so the password reaches the container by environment).
        args: extra pg_restore arguments (the list is not modified).
        postgres_container: the image to run pg_restore from if Docker is needed.

    Raises:
        DatabaseNotFoundError: the database does not exist and not ``create``.
    """
    url = database_url(engine)
    await asyncio.to_thread(_create_database_if_not_exists, url, create=create)
    tools = await _tools_for(url, command_prefix, postgres_container, "restore")
    tool = await start_tool(
        tools,
        "pg_restore",
        list(args or ()),
        url,
        step="restore",
        stdin=_PIPE,
        collect_stderr=False,
    )
    tool.release_on_exit()
    return tool.process


def pg_restore_sync(
    engine: Any,
    *,
    create: bool = False,
    command_prefix: Sequence[str] | None = None,
    args: Sequence[str] | None = None,
    postgres_container: str | None = None,
) -> subprocess.Popen[bytes]:
    """`pg_restore` for synchronous code: returns a ``subprocess.Popen`` reading stdin.

    Same handling of secrets as `pg_restore`; a temporary service file is
    removed once ``wait()``, ``communicate()`` or ``poll()`` sees it exit.
    """
    url = database_url(engine)
    _create_database_if_not_exists(url, create=create)
    tools = select_tools(
        url, command_prefix=command_prefix, postgres_container=postgres_container
    )
    return popen_tool(
        tools,
        "pg_restore",
        list(args or ()),
        url,
        step="restore",
        stdin=subprocess.PIPE,
    )


class _Source:
    """Read a dump file in chunks, gunzipping (every member) if it is gzip."""

    def __init__(self, fh: IO[bytes]) -> None:
        self.fh = fh
        first = fh.read(CHUNK_SIZE)
        self.gzip = first[:2] == _GZIP_MAGIC
        self._z = zlib.decompressobj(wbits=31) if self.gzip else None
        self._started = False
        self.raw_bytes = 0
        self.pending = self._decode(first)

    def _decode(self, data: bytes) -> bytes:
        self.raw_bytes += len(data)
        if self._z is None:
            return data
        out = bytearray()
        while data:
            self._started = True
            out += self._z.decompress(data)
            if self._z.eof:
                data = self._z.unused_data
                self._z = zlib.decompressobj(wbits=31)
                self._started = False
            else:
                data = b""
        return bytes(out)

    def read(self) -> bytes:
        if self.pending:
            out, self.pending = self.pending, b""
            return out
        while True:
            data = self.fh.read(CHUNK_SIZE)
            if not data:
                if self._started:
                    raise TransferError(
                        "the gzip dump file ends in the middle of a member (truncated)",
                        step="restore",
                    )
                return b""
            out = self._decode(data)
            if out:
                return out


async def feed(
    tool: Tool, read: Any, progress: Progress, *, tail_check: bytes | None = None
) -> int:
    """Write chunks from ``read()`` (sync or async) to the tool's stdin; return bytes.

    Stops early if the tool closes its input (its exit code tells why).  With
    ``tail_check``, the stream must end with a line containing it, or the
    tool is killed before its input is closed (so nothing is committed) and
    `TransferError` is raised.
    """
    stdin = tool.process.stdin
    assert stdin is not None
    total = 0
    tail = b""
    while True:
        data = read()
        if asyncio.iscoroutine(data):
            data = await data
        if not data:
            break
        total += len(data)
        progress.advance(len(data))
        if tail_check is not None:
            tail = (tail + data)[-256:]
        try:
            stdin.write(data)
            await stdin.drain()
        except (BrokenPipeError, ConnectionResetError) as exc:
            await tool.finish()  # raises ToolError with the tool's stderr
            raise TransferError(
                f"{tool.name} stopped reading its input after {total} bytes "
                "but exited successfully; the restore is incomplete",
                step=tool.step,
            ) from exc
    if tail_check is not None and tail_check not in tail:
        await tool.kill()
        raise TransferError(
            f"the plain-format dump ends without {tail_check.decode()!r}: it looks "
            f"truncated. {NOTHING_COMMITTED}",
            step=tool.step,
        )
    stdin.close()
    try:
        await stdin.wait_closed()
    except (BrokenPipeError, ConnectionResetError):
        pass
    return total


async def pg_restore_from_file(
    dumpfile: Path | str,
    engine: Any,
    *,
    create: bool = False,
    single_transaction: bool = True,
    quiet: bool = False,
    **kwargs: Any,
) -> int:
    """Restore ``dumpfile`` into a database; return the bytes read from the dump.

    The format is recognised from the content: custom-format archives
    (``PGDMP``) and directory dumps go through ``pg_restore --exit-on-error``;
    plain SQL dumps (``\\restrict`` lines, ``COPY ... FROM stdin`` blocks)
    through ``psql -v ON_ERROR_STOP=1``.  Gzipped files (every member of a
    concatenated gzip stream) are decompressed on the way.  By default the
    whole restore is one transaction: on failure nothing is committed.  A
    plain dump that starts with pg_dump's header but lacks its closing line
    is refused as truncated, before anything is committed.

    Parameters:
        dumpfile: the dump (a file or a directory-format dump).
        engine: the target database.
        create: create the target database if it does not exist.
        single_transaction: restore in one transaction (``--single-transaction``).
        quiet: no progress report.
        **kwargs: ``command_prefix``, ``args`` (extra pg_restore or psql
            arguments), ``postgres_container``.

    Raises:
        ToolError: the tool failed (with its stderr, exit code and what state
            the target was left in).
        TransferError: the dump is truncated or unreadable.
        DatabaseNotFoundError: the target does not exist and not ``create``.
    """
    check_options(
        kwargs, {"command_prefix", "args", "postgres_container"}, "pg_restore_from_file"
    )
    path = Path(dumpfile)
    url = database_url(engine)
    extra = list(kwargs.get("args") or ())
    await asyncio.to_thread(_create_database_if_not_exists, url, create=create)
    tools = await _tools_for(
        url, kwargs.get("command_prefix"), kwargs.get("postgres_container"), "restore"
    )
    state = NOTHING_COMMITTED if single_transaction else None
    restore_flags = [
        "--exit-on-error",
        *(["--single-transaction"] if single_transaction else []),
    ]
    if path.is_dir():
        restore = await start_tool(
            tools,
            "pg_restore",
            [*restore_flags, *extra, str(path)],
            url,
            step="restore",
        )
        try:
            await _finish(restore, state)
        except BaseException:
            await asyncio.shield(restore.kill())
            raise
        return 0
    progress = make_progress(f"restore {path.name}", quiet=quiet)
    tool: Tool | None = None
    with path.open("rb") as fh:
        source = _Source(fh)
        head = source.pending[:64]
        try:
            if head.startswith(_CUSTOM_MAGIC):
                tool = await start_tool(
                    tools,
                    "pg_restore",
                    [*restore_flags, *extra],
                    url,
                    step="restore",
                    stdin=_PIPE,
                    stdout=subprocess.DEVNULL,
                )
                tail = None
            else:
                tool = await start_tool(
                    tools,
                    "psql",
                    [*_psql_options(single_transaction), *extra],
                    url,
                    step="restore",
                    stdin=_PIPE,
                    stdout=subprocess.DEVNULL,
                )
                tail = _PLAIN_TRAILER if head.startswith(_PLAIN_HEADER) else None
            await _finish(
                tool, state, feed(tool, source.read, progress, tail_check=tail)
            )
            return source.raw_bytes
        except BaseException:
            if tool is not None:
                await asyncio.shield(tool.kill())
            raise
        finally:
            progress.close()


async def _finish(tool: Tool, state: str | None, feeding: Any = None) -> None:
    """Feed the tool (if ``feeding``), wait for it; add ``state`` to its errors."""
    from ..errors import ToolError

    try:
        if feeding is not None:
            await feeding
        await tool.finish()
    except ToolError as exc:
        # The same error with ``state`` added: chained to what caused it.
        raise ToolError(
            exc.tool, exc.returncode, exc.stderr, step=exc.step, state=state
        ) from exc.__cause__


def pg_restore_from_file_sync(dumpfile: Path | str, engine: Any, **kwargs: Any) -> int:
    """`pg_restore_from_file` for synchronous code (no asyncio needed by the caller)."""
    return run_sync(pg_restore_from_file, dumpfile, engine, **kwargs)
