"""A streaming filter over plain-format pg_dump output.

It rewrites pg_dump's ``CREATE SCHEMA name;`` lines to ``CREATE SCHEMA IF
NOT EXISTS name;`` so that a schema moved into a database that already has
it (``public``, or one created earlier) does not abort the restore.  Lines
inside ``COPY ... FROM stdin;`` data blocks are passed through untouched,
found with ``bytes.find`` (the data is never split into lines in Python).
"""

from __future__ import annotations

import re

__all__ = ["SchemaIfNotExists"]

_CREATE_SCHEMA = re.compile(
    rb"^CREATE SCHEMA ((?:\"(?:[^\"]|\"\")+\"|[a-z_][a-z0-9_$]*));\n$"
)
_COPY_START = re.compile(rb"^COPY .* FROM stdin;\n$")
_END_OF_DATA = b"\\.\n"


class SchemaIfNotExists:
    """Feed chunks of a plain dump in, get the filtered chunks out."""

    def __init__(self) -> None:
        self._pending = b""
        self._in_copy = False

    def feed(self, data: bytes) -> bytes:
        """Filter the next chunk (a partial last line is held back)."""
        buf = self._pending + data if self._pending else data
        out: list[bytes] = []
        pos = 0
        n = len(buf)
        while pos < n:
            if self._in_copy:
                if buf.startswith(_END_OF_DATA, pos):
                    end = pos + len(_END_OF_DATA)
                else:
                    idx = buf.find(b"\n" + _END_OF_DATA, pos)
                    if idx < 0:
                        last = buf.rfind(b"\n", pos)
                        if last < 0:
                            break
                        out.append(buf[pos : last + 1])
                        pos = last + 1
                        break
                    end = idx + 1 + len(_END_OF_DATA)
                out.append(buf[pos:end])
                pos = end
                self._in_copy = False
                continue
            nl = buf.find(b"\n", pos)
            if nl < 0:
                break
            line = buf[pos : nl + 1]
            if line.startswith(b"COPY ") and _COPY_START.match(line):
                self._in_copy = True
            elif line.startswith(b"CREATE SCHEMA "):
                m = _CREATE_SCHEMA.match(line)
                if m:
                    line = b"CREATE SCHEMA IF NOT EXISTS " + m.group(1) + b";\n"
            out.append(line)
            pos = nl + 1
        self._pending = buf[pos:]
        return b"".join(out)

    def finish(self) -> bytes:
        """The held-back rest of the stream."""
        rest, self._pending = self._pending, b""
        return rest
