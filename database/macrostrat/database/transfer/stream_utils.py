"""Async stream helpers: copy a stream with progress, log a tool's output, read gzip.

These keep upstream's names (`print_stream_progress`, `print_stdout`,
`DecodingStreamReader`) without its defects: chunks are `CHUNK_SIZE` (1 MiB)
with no flush per chunk, bytes are never decoded as text on the way,
cancellation propagates, closes are awaited, and every gzip member of a
concatenated stream is read.
"""

from __future__ import annotations

import asyncio
import codecs
import inspect
import logging
import zlib
from typing import Any

from .progress import Progress, make_progress

__all__ = [
    "CHUNK_SIZE",
    "DecodingStreamReader",
    "print_stdout",
    "print_stream_progress",
    "write_chunk",
]

log = logging.getLogger("macrostrat.database.transfer")

CHUNK_SIZE = 1024 * 1024
"""Bytes read per chunk (1 MiB)."""

_GZIP_MAGIC = b"\x1f\x8b"


async def write_chunk(out: Any, data: bytes) -> None:
    """Write ``data`` to a file object, an async file or an ``asyncio.StreamWriter``.

    A ``StreamWriter`` is drained (back pressure); nothing is flushed.
    """
    if isinstance(out, asyncio.StreamWriter):
        out.write(data)
        await out.drain()
        return
    result = out.write(data)
    if inspect.isawaitable(result):
        await result


async def _close(out: Any) -> None:
    if isinstance(out, asyncio.StreamWriter):
        out.close()
        try:
            await out.wait_closed()
        except (BrokenPipeError, ConnectionResetError):
            pass
        return
    close = getattr(out, "close", None)
    if close is not None:
        result = close()
        if inspect.isawaitable(result):
            await result


async def print_stream_progress(
    input: Any,
    out_stream: Any = None,
    *,
    verbose: bool = False,
    chunk_size: int = CHUNK_SIZE,
    prefix: str | None = None,
    progress: Progress | None = None,
    close: bool = True,
) -> int:
    """Copy ``input`` to ``out_stream`` in large chunks, reporting progress.

    ``asyncio.CancelledError`` propagates (the output is still closed).

    Parameters:
        input: an ``asyncio.StreamReader`` or a process (its ``stdout``).
        out_stream: a binary file object, an async file, an
            ``asyncio.StreamWriter``, or None to only count the bytes.
        verbose: log each chunk's size at DEBUG.
        chunk_size: bytes per read (default 1 MiB).
        prefix: the progress description (default ``"Dumped"``).
        progress: a reporter to use instead of `make_progress`'s.
        close: close ``out_stream`` at the end (awaiting async closes).

    Returns:
        The number of bytes copied.
    """
    reader = getattr(input, "stdout", None) or input
    reporter = progress or make_progress(prefix or "Dumped")
    total = 0
    try:
        while True:
            data = await reader.read(chunk_size)
            if not data:
                break
            if out_stream is not None:
                await write_chunk(out_stream, data)
            total += len(data)
            reporter.advance(len(data))
            if verbose:
                log.debug("copied %d bytes", len(data))
        return total
    finally:
        if progress is None:
            reporter.close()
        if close and out_stream is not None:
            await _close(out_stream)


async def print_stdout(
    stream: asyncio.StreamReader, *, level: int = logging.INFO
) -> str:
    """Log each line of a tool's output (no markup is interpreted); return it all.

    Lines are decoded as UTF-8 with replacement, for logging only.
    """
    lines: list[str] = []
    while True:
        line = await stream.readline()
        if not line:
            break
        text = line.decode("utf-8", errors="replace").rstrip("\n")
        lines.append(text)
        log.log(level, "%s", text)
    return "\n".join(lines)


class DecodingStreamReader:
    """Read text from an ``asyncio.StreamReader``, gunzipping it when it is gzip.

    Gzip is recognised by its magic bytes at the start; every member of a
    concatenated gzip stream is decompressed in turn.

    Parameters:
        stream: the source (anything with ``async read(n)`` returning bytes).
        encoding: the text encoding.
        errors: the decoding error handler.
    """

    def __init__(
        self, stream: Any, encoding: str = "utf-8", errors: str = "strict"
    ) -> None:
        self.stream = stream
        self._decoder = codecs.getincrementaldecoder(encoding)(errors=errors)
        self._gzip: bool | None = None
        self._zlib: Any = None
        self._raw_eof = False
        self._member_started = False
        self._bytes = bytearray()
        self._text = ""

    def _new_member(self) -> Any:
        return zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)

    async def _fill(self) -> bool:
        """Decompress more bytes into the buffer; False at the end of the stream."""
        if self._raw_eof:
            return False
        data = await self.stream.read(CHUNK_SIZE)
        if self._gzip is None:
            while data and len(data) < 2:
                more = await self.stream.read(CHUNK_SIZE)
                if not more:
                    break
                data += more
            self._gzip = data[:2] == _GZIP_MAGIC
            if self._gzip:
                self._zlib = self._new_member()
        if not data:
            self._raw_eof = True
            if self._gzip and self._member_started:
                raise EOFError("the gzip stream ends in the middle of a member")
            return bool(self._bytes)
        if not self._gzip:
            self._bytes += data
            return True
        while data:
            self._member_started = True
            self._bytes += self._zlib.decompress(data)
            if self._zlib.eof:
                data = self._zlib.unused_data
                self._zlib = self._new_member()
                self._member_started = False
            else:
                data = b""
        return True

    async def read_bytes(self, n: int = -1) -> bytes:
        """Up to ``n`` decompressed bytes (all remaining ones if ``n < 0``)."""
        while (n < 0 or len(self._bytes) < n) and await self._fill():
            pass
        if n < 0:
            n = len(self._bytes)
        out = bytes(self._bytes[:n])
        del self._bytes[:n]
        return out

    async def read(self, n: int = -1) -> str:
        """Up to ``n`` characters of text (all remaining text if ``n < 0``)."""
        while n < 0 or len(self._text) < n:
            chunk = await self.read_bytes(CHUNK_SIZE)
            self._text += self._decoder.decode(chunk, final=not chunk)
            if not chunk:
                break
        if n < 0:
            n = len(self._text)
        out, self._text = self._text[:n], self._text[n:]
        return out

    async def readline(self) -> str:
        """The next line of text, with its newline ("" at the end)."""
        while "\n" not in self._text:
            chunk = await self.read_bytes(CHUNK_SIZE)
            self._text += self._decoder.decode(chunk, final=not chunk)
            if not chunk:
                break
        idx = self._text.find("\n")
        cut = len(self._text) if idx < 0 else idx + 1
        line, self._text = self._text[:cut], self._text[cut:]
        return line
