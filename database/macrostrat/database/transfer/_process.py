"""Run one client program: start it, collect its stderr, check or kill it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import URL

from ..errors import ToolError
from .stream_utils import CHUNK_SIZE
from .tools import ClientTools, tool_environment

__all__ = ["Tool", "finish_upstream", "kill_all", "start_tool"]

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
    _stderr: bytearray = field(default_factory=bytearray)

    @property
    def stderr(self) -> str:
        """The end of the program's standard error so far."""
        return self._stderr.decode("utf-8", errors="replace")

    async def _collect(self, stream: asyncio.StreamReader) -> str:
        while True:
            line = await stream.readline()
            if not line:
                break
            self._stderr += line
            if len(self._stderr) > _STDERR_KEEP:
                del self._stderr[: len(self._stderr) - _STDERR_KEEP]
            log.info("%s: %s", self.name, line.decode("utf-8", "replace").rstrip())
        return self.stderr

    async def finish(self) -> None:
        """Wait for the program; raise `ToolError` with its stderr if it failed."""
        code = await self.process.wait()
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
        if proc.stdin is not None and not proc.stdin.is_closing():
            proc.stdin.close()
        if self.stderr_task is not None and not self.stderr_task.done():
            self.stderr_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.stderr_task


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
    """Start ``program`` with ``args``; the password goes in its environment.

    The command line is logged at DEBUG; it never holds the password.
    """
    argv = tools.argv(program, *args)
    log.debug("running %s", " ".join(argv))
    env = tool_environment(url, f"macrostrat-{step}")
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=stdin,
            stdout=stdout,
            stderr=subprocess.PIPE,
            env=env,
            limit=2 * CHUNK_SIZE,
        )
    except FileNotFoundError as exc:
        from ..errors import ToolNotFoundError

        raise ToolNotFoundError(
            f"cannot run {argv[0]} ({tools.describe()}): {exc.strerror}"
        ) from exc
    tool = Tool(program, step, proc)
    if collect_stderr:
        assert proc.stderr is not None
        tool.stderr_task = asyncio.ensure_future(tool._collect(proc.stderr))
    return tool


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
        raise ToolError(
            exc.tool, exc.returncode, exc.stderr, step=exc.step, state=state
        ) from None
