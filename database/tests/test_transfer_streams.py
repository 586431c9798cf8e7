"""The stream helpers: chunk size, awaited closes, cancellation, gzip, progress modes."""

from __future__ import annotations

import asyncio
import gzip
import io
import logging
import re
import sys
import time

import pytest

from macrostrat.database.transfer import DecodingStreamReader, print_stream_progress
from macrostrat.database.transfer.progress import (
    LogProgress,
    NullProgress,
    RichProgress,
    make_progress,
)
from macrostrat.database.transfer.stream_utils import CHUNK_SIZE


class AsyncFile:
    """An aiofiles-like output: coroutine write and close."""

    def __init__(self) -> None:
        self.writes: list[int] = []
        self.closed = False
        self.flushes = 0

    async def write(self, data: bytes) -> None:
        self.writes.append(len(data))

    async def flush(self) -> None:
        self.flushes += 1

    async def close(self) -> None:
        self.closed = True


def _reader(data: bytes, eof: bool = True) -> asyncio.StreamReader:
    r = asyncio.StreamReader(limit=4 * CHUNK_SIZE)
    r.feed_data(data)
    if eof:
        r.feed_eof()
    return r


def test_large_chunks_no_flush_and_awaited_close() -> None:
    out = AsyncFile()

    async def run() -> int:
        return await print_stream_progress(
            _reader(b"x" * (3 * CHUNK_SIZE + 10)), out, progress=NullProgress()
        )

    assert asyncio.run(run()) == 3 * CHUNK_SIZE + 10
    assert out.writes == [CHUNK_SIZE] * 3 + [10]
    assert CHUNK_SIZE >= 1024 * 1024
    assert out.flushes == 0
    assert out.closed  # upstream never awaited the close coroutine


def test_cancellation_propagates() -> None:
    out = AsyncFile()

    async def run() -> None:
        task = asyncio.ensure_future(
            print_stream_progress(
                _reader(b"abc", eof=False), out, progress=NullProgress()
            )
        )
        await asyncio.sleep(0.05)
        task.cancel()
        await task

    with pytest.raises(asyncio.CancelledError):
        asyncio.run(run())
    assert out.closed


def test_decoding_reader_three_gzip_members() -> None:
    parts = ["première ligne\n", "second\n" * 1000, "troisième\nfin"]
    data = b"".join(gzip.compress(p.encode()) for p in parts)

    async def run() -> tuple[str, str]:
        r = DecodingStreamReader(_reader(data))
        first = await r.readline()
        return first, await r.read()

    first, rest = asyncio.run(run())
    assert first == "première ligne\n"
    assert first + rest == "".join(parts)


def test_decoding_reader_plain_and_truncated_gzip() -> None:
    async def read(data: bytes) -> str:
        return await DecodingStreamReader(_reader(data)).read()

    assert asyncio.run(read(b"plain text")) == "plain text"
    whole = gzip.compress(b"y" * 100_000)
    with pytest.raises(EOFError):
        asyncio.run(read(whole[: len(whole) // 2]))


def test_progress_modes(caplog: pytest.LogCaptureFixture) -> None:
    assert isinstance(make_progress("x", quiet=True), NullProgress)
    p = make_progress("dump mydb")  # stderr is not a terminal under pytest
    assert isinstance(p, LogProgress)
    p.interval = 0.0
    with caplog.at_level(logging.INFO, logger="macrostrat.database.transfer"):
        p.advance(3 * 1024 * 1024)
        p.close()
    assert "dump mydb: 3.0 MiB" in caplog.text
    assert "/s)" in caplog.text


class _Terminal(io.StringIO):
    """Standard error that says it is a terminal (pytest's capture is not one)."""

    def isatty(self) -> bool:
        return True


def test_rich_progress_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    """On a terminal, make_progress draws a Rich bar showing the bytes and the rate."""
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    monkeypatch.delenv("TERM", raising=False)
    p = make_progress("pg_dump mydb")
    assert isinstance(p, RichProgress)
    for _ in range(6):
        p.advance(512 * 1024)
        time.sleep(0.05)
    p.close()
    assert p.total == 3 * 1024 * 1024
    out = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", terminal.getvalue())
    assert "pg_dump mydb" in out
    assert "3.0/? MiB" in out  # the bytes moved, in binary units
    assert re.search(r"\d+(\.\d+)? [kMG]?B/s", out), out  # the transfer rate
