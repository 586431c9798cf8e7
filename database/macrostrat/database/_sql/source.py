"""First stage of the SQL data path: turn what the caller gave into source texts.

`read_sources` accepts a string (SQL or the path of a ``.sql`` file), a
``Path``, a file object, ``bytes``, a psycopg ``sql.SQL``/``sql.Composed``
object, a SQLAlchemy ``text()`` clause, or a list or tuple of these, and
returns one `SQLSource` (text plus the file name it came from) per item.  It
also holds the helpers that decide whether a string is SQL or a path, and
`get_sql_files`, which lists fixture files.
"""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from psycopg import sql as pgsql
from sqlalchemy.sql.elements import TextClause

__all__ = [
    "SQLSource",
    "canonicalize_query",
    "from_psycopg2",
    "get_sql_files",
    "get_sql_text",
    "infer_is_sql_text",
    "read_sources",
]

Render = Callable[[pgsql.Composable], str]
"""Renders a psycopg ``Composable`` to SQL text (``obj.as_string(connection)``)."""

# One-line strings that start with one of these words (then a blank, "(",
# ";" or the end) are SQL, not file names.
_SQL_START = re.compile(
    r"(?i)\s*(?:abort|alter|analyze|begin|call|checkpoint|close|cluster|comment|"
    r"commit|copy|create|deallocate|declare|delete|discard|do|drop|end|execute|"
    r"explain|fetch|grant|import|insert|listen|load|lock|merge|move|notify|"
    r"prepare|refresh|reindex|release|reset|revoke|rollback|savepoint|security|"
    r"select|set|show|start|table|truncate|unlisten|update|vacuum|values|with)"
    r"(?:[\s(;]|$)"
)


@dataclass(frozen=True, slots=True)
class SQLSource:
    """One piece of SQL source text.

    Attributes:
        text: the SQL (possibly many statements).
        origin: the file it was read from, or None.
        defaults: bind values carried by a SQLAlchemy ``text().bindparams()``
            clause; explicit parameters override them.
    """

    text: str
    origin: str | None = None
    defaults: Mapping[str, Any] | None = None


def from_psycopg2(obj: object) -> pgsql.Composable | None:
    """Convert a psycopg2 ``sql`` object to its psycopg 3 equivalent (deprecated).

    Returns None when ``obj`` is not a psycopg2 ``sql`` object.  Emits a
    ``DeprecationWarning`` when it converts.
    """
    if not type(obj).__module__.startswith("psycopg2"):
        return None
    warnings.warn(
        "psycopg2 sql objects are deprecated in macrostrat.database; "
        "use psycopg (3) sql objects",
        DeprecationWarning,
        stacklevel=4,
    )
    return _convert2(obj)


def _convert2(obj: Any) -> pgsql.Composable:
    """Rebuild a psycopg2 sql object with psycopg 3 classes."""
    name = type(obj).__name__
    if name == "SQL":
        return pgsql.SQL(obj.string)
    if name == "Identifier":
        return pgsql.Identifier(*obj.strings)
    if name == "Literal":
        return pgsql.Literal(obj.wrapped)
    if name == "Placeholder":
        return pgsql.Placeholder(obj.name) if obj.name else pgsql.Placeholder()
    if name == "Composed":
        return pgsql.Composed([_convert2(part) for part in obj.seq])
    raise TypeError(f"unsupported psycopg2 sql object: {type(obj).__name__}")


def infer_is_sql_text(_string: str | bytes) -> bool:
    """Guess whether a string is SQL text (True) or a file name (False).

    Text of more than one line, holding a ``;``, or starting with a SQL
    keyword followed by a blank, ``(``, ``;`` or nothing is SQL; anything else
    (``"schema.sql"``, ``"select.sql"``) is taken for a file name.

    Parameters:
        _string: the string (``bytes`` are decoded as UTF-8).
    """
    text = _string.decode() if isinstance(_string, bytes) else _string
    text = text.strip()
    if "\n" in text or ";" in text:
        return True
    return _SQL_START.match(text) is not None


def canonicalize_query(file_or_text: str | os.PathLike[str]) -> str | Path:
    """Return a ``Path`` for a file name, or the string itself for SQL text.

    A one-line string that does not look like SQL (see `infer_is_sql_text`)
    is a ``Path`` if that file exists.

    Raises:
        FileNotFoundError: the string looks like a file name ending in ``.sql``
            but there is no such file (it used to be sent to the server as SQL).
    """
    if isinstance(file_or_text, os.PathLike):
        return Path(file_or_text)
    if infer_is_sql_text(file_or_text):
        return file_or_text
    path = Path(file_or_text.strip())
    if path.is_file():
        return path
    if path.suffix.lower() == ".sql":
        raise FileNotFoundError(f"SQL file {str(path)!r} does not exist")
    return file_or_text


def _read_path(path: Path) -> SQLSource:
    """Read a UTF-8 SQL file (a byte-order mark is left to the lexer)."""
    return SQLSource(path.read_text(encoding="utf-8"), str(path))


def _read_one(
    item: Any, interpret_as_file: bool | None, render: Render | None
) -> SQLSource | None:
    """Turn one input item into a source (None when it holds nothing)."""
    if item is None:
        return None
    if isinstance(item, bytes):
        item = item.decode("utf-8")
    if isinstance(item, str):
        if not item.strip():
            return None
        if interpret_as_file:
            return _read_path(Path(item))
        if interpret_as_file is None:
            found = canonicalize_query(item)
            if isinstance(found, Path):
                return _read_path(found)
        return SQLSource(item)
    if isinstance(item, os.PathLike):
        return _read_path(Path(item))
    converted = from_psycopg2(item)
    if converted is not None:
        item = converted
    if isinstance(item, pgsql.Composable):
        text = render(item) if render is not None else item.as_string(None)
        return SQLSource(text)
    if isinstance(item, TextClause):
        values = {
            key: bind.value
            for key, bind in item._bindparams.items()
            if bind.value is not None
        }
        return SQLSource(item.text, None, values or None)
    if hasattr(item, "read"):
        data = item.read()
        if isinstance(data, bytes):
            data = data.decode("utf-8")
        name = getattr(item, "name", None)
        return SQLSource(data, name if isinstance(name, str) else None)
    raise TypeError(
        "run_sql() takes SQL text, a path, a file object, a psycopg sql object, "
        f"a SQLAlchemy text() clause or a list of them, not {type(item).__name__}"
    )


def read_sources(
    sql: Any, *, interpret_as_file: bool | None = None, render: Render | None = None
) -> list[SQLSource]:
    """Resolve ``sql`` into source texts, in order.

    Parameters:
        sql: a string (SQL text or a file name, see `canonicalize_query`), a
            ``Path``, ``bytes``, a file object, a psycopg ``Composable``
            (rendered with ``render``), a SQLAlchemy ``TextClause``, or a list
            or tuple of these.  None and blank strings give nothing.
        interpret_as_file: True: every string is a file name; False: every
            string is SQL; None: decide per string.
        render: renders psycopg objects (default: without a connection).

    Raises:
        FileNotFoundError: a named file does not exist.
        TypeError: an item of an unsupported type.
    """
    items: Iterable[Any] = sql if isinstance(sql, (list, tuple)) else (sql,)
    sources: list[SQLSource] = []
    for item in items:
        if isinstance(item, (list, tuple)):
            sources.extend(
                read_sources(item, interpret_as_file=interpret_as_file, render=render)
            )
            continue
        source = _read_one(item, interpret_as_file, render)
        if source is not None:
            sources.append(source)
    return sources


def get_sql_text(
    sql: Any, interpret_as_file: bool | None = None, echo_file_name: bool = False
) -> str:
    """Return the SQL text of ``sql`` (several sources joined by blank lines).

    Parameters:
        sql: anything `read_sources` accepts.
        interpret_as_file: see `read_sources`.
        echo_file_name: print the name of each file read to standard error
            (upstream printed it to standard output by default).
    """
    sources = read_sources(sql, interpret_as_file=interpret_as_file)
    if echo_file_name:
        from .report import echo

        for source in sources:
            if source.origin is not None:
                echo(source.origin, style="cyan")
    return "\n\n".join(source.text for source in sources)


def get_sql_files(
    fixtures: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
    recursive: bool = False,
    order_by_name: bool = True,
) -> list[Path]:
    """List the ``.sql`` files named by ``fixtures``.

    Parameters:
        fixtures: a path (``str`` or ``Path``: a ``.sql`` file or a directory)
            or a list of them.  A directory contributes its ``*.sql`` files.
        recursive: search directories recursively.
        order_by_name: sort the combined list by full path (else keep the
            given order, and each directory's files sorted).

    Raises:
        FileNotFoundError: a path does not exist, or no ``.sql`` file was found.
        ValueError: a file that does not end in ``.sql`` was named explicitly.
    """
    if isinstance(fixtures, (str, os.PathLike)):
        fixtures = [fixtures]
    given = [Path(item) for item in fixtures]
    files: list[Path] = []
    for path in given:
        if not path.exists():
            raise FileNotFoundError(f"Fixture {str(path)!r} does not exist")
        if path.is_dir():
            pattern = path.rglob if recursive else path.glob
            files.extend(sorted(p for p in pattern("*.sql") if p.is_file()))
        elif path.suffix.lower() == ".sql":
            files.append(path)
        else:
            raise ValueError(f"Fixture {str(path)!r} is not a .sql file")
    if not files:
        names = ", ".join(repr(str(p)) for p in given) or "(nothing given)"
        raise FileNotFoundError(f"No .sql files found in {names}")
    if order_by_name:
        files.sort()
    return files
