"""One pickle per table: the body of a model cache file, loadable table by table.

Each reflected ``Table`` is pickled on its own, so a warm start unpickles only
the tables its models need. A table's pickle refers to its ``MetaData`` by a
marker that loading replaces with the live one; references to *other* tables
are not allowed (a foreign key keeps its target as the ``"schema.table.col"``
spec and resolves it again once the target is loaded), so each pickle stands
alone. Event dispatchers are left out too: they never carry listeners through
pickling and are rebuilt on first access.
"""

from __future__ import annotations

import hashlib
import io
import pickle
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from sqlalchemy import Column, MetaData, Table
from sqlalchemy.sql.schema import ForeignKey

from .catalog import TableIndex, TableInfo

__all__ = ["CachedTables", "TablePickleError", "dump_tables"]

_LIVE: ContextVar[MetaData] = ContextVar("macrostrat_live_metadata")


class TablePickleError(pickle.PicklingError):
    """A table cannot be pickled on its own (it holds another table)."""


def _live_metadata() -> MetaData:
    """Stands for the ``MetaData`` in a table pickle: the one being loaded into."""
    return _LIVE.get()


class _TablePickler(pickle.Pickler):
    """Pickles one ``Table`` without its ``MetaData``, its neighbours or dispatchers."""

    def __init__(self, file: Any, metadata: MetaData, table: Table) -> None:
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self._metadata = metadata
        self._table = table

    def reducer_override(self, obj: Any) -> Any:
        if obj is self._metadata:
            return (_live_metadata, ())
        if isinstance(obj, type):
            return NotImplemented
        if isinstance(obj, Table) and obj is not self._table:
            raise TablePickleError(
                f"table {self._table.key} refers to table {obj.key} directly"
            )
        owner = obj.table if isinstance(obj, Column) else None
        if owner is not None and owner is not self._table:
            raise TablePickleError(
                f"table {self._table.key} refers to column {obj} directly"
            )
        state = getattr(obj, "__dict__", None)
        if not isinstance(state, dict):
            return NotImplemented
        drop_column = isinstance(obj, ForeignKey) and "column" in state
        if "dispatch" not in state and not drop_column:
            return NotImplemented
        try:
            reduced = obj.__reduce_ex__(pickle.HIGHEST_PROTOCOL)
        except Exception:
            return NotImplemented
        if (
            not isinstance(reduced, tuple)
            or len(reduced) < 3
            or not isinstance(reduced[2], dict)
        ):
            return NotImplemented
        slim = dict(reduced[2])
        slim.pop("dispatch", None)
        if drop_column:
            # The resolved target column (memoized): resolved again on access.
            slim.pop("column", None)
        return (reduced[0], reduced[1], slim, *reduced[3:])


def dump_tables(metadata: MetaData, index: TableIndex) -> bytes:
    """Serialise the table index and every table of ``metadata``, one pickle each.

    Returns the bytes `CachedTables.parse` reads: a pickled directory (the
    index rows, each table's offset and length, and the size and digest of
    what follows) followed by the pickles.

    Raises:
        TablePickleError: a table holds a direct reference to another one.
    """
    body = io.BytesIO()
    offsets: dict[str, tuple[int, int]] = {}
    for key, table in metadata.tables.items():
        start = body.tell()
        _TablePickler(body, metadata, table).dump(table)
        offsets[key] = (start, body.tell() - start)
    data = body.getvalue()
    directory = pickle.dumps(
        {
            "index": index.tuples(),
            "offsets": offsets,
            "size": len(data),
            "digest": _digest(data),
        },
        protocol=pickle.HIGHEST_PROTOCOL,
    )
    return directory + data


def _digest(data: bytes | memoryview) -> str:
    """Checks the table pickles are whole before any is used (they load later)."""
    return hashlib.blake2b(data, digest_size=16).hexdigest()


class _OnDemandMetaData(MetaData):
    """A ``MetaData`` that loads cached tables when they are looked for.

    Resolving a foreign key asks ``key in metadata`` before reading
    ``metadata.tables[key]``; answering that by loading the table means a
    foreign key of any loaded table resolves, whatever has been loaded so far.
    The whole-schema operations (``sorted_tables``, ``create_all``,
    ``drop_all``) load every table first. ``tables`` itself holds the tables
    loaded so far (``DatabaseMapper.metadata`` loads the rest).
    """

    _loader: Callable[[str], object] | None = None
    _load_all: Callable[[], None] | None = None

    def _everything(self) -> None:
        if self._load_all is not None:
            self._load_all()

    @property
    def sorted_tables(self) -> list[Table]:
        """Every table, dependencies first (loads the tables still cached)."""
        self._everything()
        return super().sorted_tables

    def create_all(self, *args: Any, **kwargs: Any) -> None:
        """``MetaData.create_all`` over every table (loads the ones still cached)."""
        self._everything()
        super().create_all(*args, **kwargs)

    def drop_all(self, *args: Any, **kwargs: Any) -> None:
        """``MetaData.drop_all`` over every table (loads the ones still cached)."""
        self._everything()
        super().drop_all(*args, **kwargs)

    def __contains__(self, table_or_key: object) -> bool:
        key = table_or_key if isinstance(table_or_key, str) else table_or_key.key  # type: ignore[attr-defined]
        if key not in self.tables and self._loader is not None:
            try:
                self._loader(key)
            except KeyError:
                return False
        return key in self.tables


@contextmanager
def _loading_into(metadata: MetaData) -> Iterator[None]:
    token = _LIVE.set(metadata)
    try:
        yield
    finally:
        _LIVE.reset(token)


class CachedTables:
    """A `TableSource` that unpickles tables from a cache file's bytes on demand.

    Parameters:
        index: the table summaries stored in the file.
        offsets: each table's ``(start, length)`` in ``body``.
        body: the table pickles (the file was checked before it was read).
    """

    def __init__(
        self,
        index: TableIndex,
        offsets: dict[str, tuple[int, int]],
        body: bytes | memoryview,
    ) -> None:
        self.index = index
        self.metadata: MetaData = _OnDemandMetaData()
        self.metadata._loader = self.table
        self.metadata._load_all = self.load_all
        self._offsets = offsets
        self._body: memoryview | None = memoryview(body)
        self._lock = threading.RLock()

    @classmethod
    def parse(cls, data: bytes) -> CachedTables:
        """Read the directory `dump_tables` wrote; tables stay in ``data`` until used.

        Raises:
            pickle.UnpicklingError, TypeError, ValueError, KeyError, EOFError:
                the bytes are not a table directory, or the tables after it
                are truncated or damaged (checked by size and digest).
        """
        stream = io.BytesIO(data)
        directory = pickle.load(stream)
        if not isinstance(directory, dict):
            raise TypeError("the cache holds no table directory")
        index = TableIndex(TableInfo.from_tuple(row) for row in directory["index"])
        offsets = directory["offsets"]
        if not isinstance(offsets, dict) or set(offsets) != set(index.infos):
            raise ValueError("the table directory does not match the index")
        body = memoryview(data)[stream.tell() :]
        if len(body) != directory["size"] or _digest(body) != directory["digest"]:
            raise ValueError("the table pickles are truncated or damaged")
        return cls(index, offsets, body)

    def table(self, key: str) -> Table:
        """The table under ``key``, unpickled into `metadata` on first use.

        Raises:
            KeyError: no such table in the cache.
        """
        found = self.metadata.tables.get(key)
        if found is not None:
            return found
        with self._lock:  # foreign keys resolve (and load) from any thread
            found = self.metadata.tables.get(key)
            if found is not None:
                return found
            start, length = self._offsets[key]
            assert self._body is not None  # released once every table is loaded
            with _loading_into(self.metadata):
                table = pickle.loads(self._body[start : start + length])
            if not isinstance(table, Table) or table.key != key:
                raise TypeError(f"the cache entry for {key} is not that table")
            # Register it as Table() would have; the pickle carried no registration.
            self.metadata._add_table(table.name, table.schema, table)
            if len(self.metadata.tables) == len(self._offsets):
                self._body = None  # everything is loaded: free the file's bytes
            return table

    def load_all(self) -> None:
        """Load every table (in the order they were reflected)."""
        for key in self._offsets:
            self.table(key)
