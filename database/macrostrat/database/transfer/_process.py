"""Run one client program: start it, collect its stderr, check or kill it.

Every program reaches its database through a `ToolTarget` (see
`macrostrat.database.transfer.tools.tool_target`): ``--dbname`` is the only
connection argument on its command line and holds no secret. The target's
temporary service file is removed once the program has exited.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import URL

from .._redact import redact_text
from ..errors import ToolError
from .stream_utils import CHUNK_SIZE
from .tools import ClientTools, ToolTarget, tool_target

__all__ = ["Tool", "finish_upstream", "kill_all", "popen_tool", "start_tool"]

log = logging.getLogger("macrostrat.database.transfer")

_STDERR_KEEP = 64 * 1024
_KILL_GRACE = 5.0


@dataclass
class Tool:
    """A running client program and the task that collects its stderr."""

    name: str
    step: str
    process: asyncio.subprocess.Process
    stderr_task: asyncio.Task[str] | None = None
    target: ToolTarget | None = None
    _stderr: bytearray = field(default_factory=bytearray)

    @property
    def stderr(self) -> str:
        """The end of the program's standard error so far, connection strings masked."""
        return redact_text(self._stderr.decode("utf-8", errors="replace"))

    async def _collect(self, stream: asyncio.StreamReader) -> str:
        while True:
            line = await stream.readline()
            if not line:
                break
            self._stderr += line
            if len(self._stderr) > _STDERR_KEEP:
                del self._stderr[: len(self._stderr) - _STDERR_KEEP]
            log.info(
                "%s: %s",
                self.name,
                redact_text(line.decode("utf-8", "replace").rstrip()),
            )
        return self.stderr

    def _release(self) -> None:
        """Remove the target's service file (the program has exited)."""
        if self.target is not None:
            self.target.cleanup()

    def release_on_exit(self) -> None:
        """Remove the target's service file once the program exits.

        For processes handed to a caller (`pg_dump`, `pg_restore`), who waits
        for them: a task waits too and cleans up.
        """
        if self.target is None:
            return
        task = asyncio.ensure_future(self._wait_and_release())
        _WATCHERS.add(task)
        task.add_done_callback(_WATCHERS.discard)

    async def _wait_and_release(self) -> None:
        try:
            await self.process.wait()
        finally:
            self._release()

    async def finish(self) -> None:
        """Wait for the program; raise `ToolError` with its stderr if it failed."""
        code = await self.process.wait()
        self._release()
        if self.stderr_task is not None:
            await self.stderr_task
        if code != 0:
            raise ToolError(self.name, code, self.stderr, step=self.step)

    async def kill(self) -> None:
        """Stop the program (SIGTERM, then SIGKILL) and reap it."""
        proc = self.process
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.terminate()
            try:
                await asyncio.wait_for(asyncio.shield(proc.wait()), _KILL_GRACE)
            except asyncio.TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
        self._release()
        if proc.stdin is not None and not proc.stdin.is_closing():
            proc.stdin.close()
        if self.stderr_task is not None and not self.stderr_task.done():
            self.stderr_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.stderr_task


# Tasks that clean up after processes handed to callers (kept from the GC).
_WATCHERS: set[asyncio.Future[None]] = set()


def _command(
    tools: ClientTools, program: str, args: Sequence[str], url: URL, step: str
) -> tuple[list[str], ToolTarget]:
    """The command line and target for ``program``; the command logged at DEBUG.

    ``--dbname`` and the target's connection string come first, then
    ``args``. The logged line has every connection string in it masked too
    (in case ``args`` hold one).
    """
    target = tool_target(tools, url, f"macrostrat-{step}")
    argv = tools.argv(program, "--dbname", target.dbname, *args, forward=target.forward)
    log.debug(
        "running %s (connecting to %s)",
        " ".join(redact_text(a) for a in argv),
        target.shown,
    )
    return argv, target


def _not_found(tools: ClientTools, argv: Sequence[str], exc: OSError) -> Exception:
    from ..errors import ToolNotFoundError

    return ToolNotFoundError(
        f"cannot run {argv[0]} ({tools.describe()}): {exc.strerror}"
    )


async def start_tool(
    tools: ClientTools,
    program: str,
    args: Sequence[str],
    url: URL,
    *,
    step: str,
    stdin: Any = None,
    stdout: Any = None,
    collect_stderr: bool = True,
) -> Tool:
    """Start ``program --dbname <target> *args``; no secret on its command line.

    The connection comes from `tool_target` (a temporary service file for
    local programs, else a URI without secrets and ``PGPASSWORD`` in the
    environment); the service file is removed when `Tool.finish` or
    `Tool.kill` sees the program exit (or by `Tool.release_on_exit`). The
    command line is logged at DEBUG, secrets masked.

    Parameters:
        tools: how to run the program (`select_tools`).
        program: ``pg_dump``, ``pg_restore`` or ``psql``.
        args: the arguments after ``--dbname``.
        url: the database.
        step: names the run in errors and in ``application_name``.
        stdin: the program's standard input (``asyncio.subprocess.PIPE``...).
        stdout: its standard output.
        collect_stderr: keep its standard error for `ToolError` (and log it).

    Raises:
        ToolNotFoundError: the program cannot be started.
        InvalidOptionError: a secret cannot be passed without a command line.
    """
    argv, target = _command(tools, program, args, url, step)
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=stdin,
            stdout=stdout,
            stderr=subprocess.PIPE,
            env=target.env,
            limit=2 * CHUNK_SIZE,
        )
    except FileNotFoundError as exc:
        target.cleanup()
        raise _not_found(tools, argv, exc) from exc
    except BaseException:
        target.cleanup()
        raise
    tool = Tool(program, step, proc, target=target)
    if collect_stderr:
        assert proc.stderr is not None
        tool.stderr_task = asyncio.ensure_future(tool._collect(proc.stderr))
    return tool


class _ToolPopen(subprocess.Popen[Any]):
    """A ``Popen`` that removes its `ToolTarget`'s service file once it has exited.

    The file goes when `wait` (``communicate`` and ``with`` call it) or `poll`
    sees the exit, or when the object is garbage-collected.
    """

    _target: ToolTarget | None = None

    def poll(self) -> int | None:
        """``Popen.poll``; cleans up once the program has exited."""
        code = super().poll()
        if code is not None and self._target is not None:
            self._target.cleanup()
        return code

    def wait(self, timeout: float | None = None) -> int:
        """``Popen.wait``; cleans up once the program has exited."""
        code = super().wait(timeout)
        if self._target is not None:
            self._target.cleanup()
        return code


def popen_tool(
    tools: ClientTools,
    program: str,
    args: Sequence[str],
    url: URL,
    *,
    step: str,
    **popen_kwargs: Any,
) -> subprocess.Popen[bytes]:
    """`start_tool` for synchronous callers: a ``subprocess.Popen`` they wait for.

    Same command line and target as `start_tool`; standard error is a pipe
    unless ``popen_kwargs`` say otherwise. The service file is removed once
    ``wait``, ``communicate`` or ``poll`` sees the program exit.

    Parameters:
        tools: how to run the program.
        program: ``pg_dump``, ``pg_restore`` or ``psql``.
        args: the arguments after ``--dbname``.
        url: the database.
        step: names the run in ``application_name``.
        **popen_kwargs: passed to ``subprocess.Popen`` (``stdin``, ``stdout``...).

    Raises:
        ToolNotFoundError: the program cannot be started.
    """
    argv, target = _command(tools, program, args, url, step)
    popen_kwargs.setdefault("stderr", subprocess.PIPE)
    try:
        proc = _ToolPopen(argv, env=target.env, **popen_kwargs)
    except FileNotFoundError as exc:
        target.cleanup()
        raise _not_found(tools, argv, exc) from exc
    except BaseException:
        target.cleanup()
        raise
    proc._target = target
    return proc


async def kill_all(tools: Sequence[Tool]) -> None:
    """Kill every program in ``tools`` (used when anything fails or is cancelled)."""
    for t in tools:
        await t.kill()


async def finish_upstream(upstream: Tool, downstream: Tool, state: str) -> None:
    """Wait for ``upstream`` (its output has ended) before ``downstream`` sees EOF.

    When ``upstream`` failed, ``downstream`` is killed first, so that it never
    reads the end of a partial stream and commits it, and the upstream
    `ToolError` is raised again with ``state`` (what the target was left in).
    """
    try:
        await upstream.finish()
    except ToolError as exc:
        await downstream.kill()
        # The same error with ``state`` added: chained to what caused it.
        raise ToolError(
            exc.tool, exc.returncode, exc.stderr, step=exc.step, state=state
        ) from exc.__cause__
