"""`DatabaseModelCache`: reflected table definitions kept on disk, safely.

The cache file holds a small header (format, library versions, schemas,
mapped views and a fingerprint of the database catalog), then a summary of
every table and one pickle per table (`macrostrat.database.mapper.tablefile`),
so a warm start unpickles only the tables its models need. It is read only
when it is safe to unpickle: the file
and its directory must belong to the current user (root may own the
directory) and be writable by nobody else, and the file must be a regular
file, not a symlink. Otherwise `ModelCacheError` names the file and the
reason. A header that does not match (another schema set, other library
versions, a changed catalog) means the cache is ignored and rewritten.

Longer than 400 lines because the safety checks (ownership, permissions,
fingerprint, versions) and the file format must be read together.
"""

from __future__ import annotations

import gc
import logging
import os
import pickle
import stat
import sys
import tempfile
import warnings
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from importlib.metadata import version
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, MetaData, bindparam, text
from sqlalchemy.dialects.postgresql import ARRAY, TEXT

from ..errors import AutomapError, ModelCacheError
from .base import ModelHelperMixins
from .catalog import TableIndex
from .tablefile import CachedTables, TablePickleError, dump_tables

__all__ = [
    "CACHE_FORMAT",
    "AutomapError",
    "DatabaseModelCache",
    "catalog_fingerprint",
    "check_private",
    "paused_gc",
]

log = logging.getLogger(__name__)

CACHE_FORMAT = 2
"""Version of the cache file layout; files of another version are rebuilt."""

_MAGIC = b"macrostrat.database model cache\n"

# What unpickling a damaged (but trusted) file can raise.
_UNREADABLE = (
    OSError,
    EOFError,
    pickle.UnpicklingError,
    AttributeError,
    ImportError,
    ValueError,
    TypeError,
    IndexError,
    KeyError,
)

Header = dict[str, Any]

_FINGERPRINT_SQL = text(
    """
WITH RECURSIVE reach(oid) AS (
    SELECT n.oid FROM pg_namespace n WHERE n.nspname = ANY(:schemas)
  UNION
    SELECT rc.relnamespace
    FROM pg_constraint con
    JOIN pg_class rc ON rc.oid = con.confrelid
    JOIN reach r ON r.oid = con.connamespace
    WHERE con.contype = 'f'
),
rels AS MATERIALIZED (
    SELECT c.oid, c.relnamespace, c.relname, c.relkind
    FROM pg_class c
    WHERE c.relnamespace IN (SELECT oid FROM reach)
      AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
),
ids(a) AS MATERIALIZED (SELECT array_agg(oid) FROM rels),
parts(line) AS (
    SELECT concat_ws(' ', 'R', oid, relnamespace, relname, relkind) FROM rels
  UNION ALL
    SELECT concat_ws(' ', 'C', a.attrelid, a.attnum, a.attname, a.atttypid, a.atttypmod,
                     a.attnotnull, a.attidentity, a.attgenerated, a.attcollation)
    FROM pg_attribute a, ids
    WHERE a.attrelid = ANY(ids.a) AND a.attnum > 0 AND NOT a.attisdropped
  UNION ALL
    SELECT concat_ws(' ', 'D', d.adrelid, d.adnum, d.adbin::text)
    FROM pg_attrdef d, ids WHERE d.adrelid = ANY(ids.a)
  UNION ALL
    SELECT concat_ws(' ', 'K', con.conrelid, con.conname, con.contype, con.conkey,
                     con.confrelid, con.confkey, con.confupdtype, con.confdeltype,
                     con.confmatchtype, con.condeferrable, con.condeferred,
                     con.conbin::text)
    FROM pg_constraint con, ids WHERE con.conrelid = ANY(ids.a)
  UNION ALL
    SELECT concat_ws(' ', 'I', i.indrelid, i.indexrelid, i.indexrelid::regclass::text, i.indkey,
                     i.indisunique, i.indisprimary, i.indclass, i.indoption,
                     i.indexprs::text, i.indpred::text)
    FROM pg_index i, ids WHERE i.indrelid = ANY(ids.a)
  UNION ALL
    SELECT concat_ws(' ', 'M', d.objoid, d.objsubid, d.description)
    FROM pg_description d, ids
    WHERE d.objoid = ANY(ids.a) AND d.classoid = 'pg_class'::regclass
  UNION ALL
    SELECT concat_ws(' ', 'E', e.enumtypid, e.enumsortorder, e.enumlabel)
    FROM pg_enum e JOIN pg_type t ON t.oid = e.enumtypid
    WHERE t.typnamespace IN (SELECT oid FROM reach)
)
SELECT count(*) || '-' || sum(hashtextextended(line, 0)::numeric) FROM parts
"""
).bindparams(bindparam("schemas", type_=ARRAY(TEXT)))


def catalog_fingerprint(connection: Connection, schemas: Iterable[str]) -> str:
    """A hash of everything reflection reads for ``schemas``.

    Covers relations, columns (type, nullability, default, identity,
    collation), constraints, indexes, comments and enum labels of ``schemas``
    and of every schema their foreign keys reach (reflection follows those
    too), read from the raw catalog rows (OIDs included, so a dropped and
    recreated object counts as a change). Any DDL that could change a reflected
    ``Table`` changes the fingerprint. An order-independent sum of a 64-bit
    hash per catalog row keeps it cheap (one query, no sorting or deparsing).

    Parameters:
        connection: a connection to the database.
        schemas: schema names (``"public"`` for the default schema).
    """
    names = sorted({s or "public" for s in schemas})
    return str(connection.execute(_FINGERPRINT_SQL, {"schemas": names}).scalar_one())


def _library_versions() -> dict[str, str]:
    """The versions a pickled MetaData depends on (part of the cache header)."""
    out = {"python": f"{sys.version_info[0]}.{sys.version_info[1]}"}
    for dist in ("sqlalchemy", "geoalchemy2"):
        try:
            out[dist] = version(dist)
        except Exception:
            out[dist] = "?"
    return out


def _why_untrusted(st: os.stat_result, *, directory: bool) -> str | None:
    """The reason a file or directory could be written by another user, or None."""
    uid = os.getuid() if hasattr(os, "getuid") else None
    allowed = {uid, 0} if directory else {uid}
    if uid is not None and st.st_uid not in allowed:
        return f"it is owned by uid {st.st_uid}, not by the current user (uid {uid})"
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return f"it is writable by group or others (mode {stat.filemode(st.st_mode)})"
    if not directory and not stat.S_ISREG(st.st_mode):
        return "it is not a regular file"
    return None


def check_private(path: str | os.PathLike[str]) -> None:
    """Raise `ModelCacheError` unless ``path`` and its directory are safe to trust.

    Safe means: not a symlink, a regular file owned by the current user, a
    directory owned by the current user or root, neither writable by group or
    others. A missing file is fine (nothing will be read).

    Parameters:
        path: the cache file.
    """
    p = Path(path)
    _check_directory(p)
    try:
        st = os.lstat(p)
    except FileNotFoundError:
        return
    if stat.S_ISLNK(st.st_mode):
        raise ModelCacheError(f"refusing to use model cache {p}: it is a symlink")
    reason = _why_untrusted(st, directory=False)
    if reason:
        raise ModelCacheError(f"refusing to use model cache {p}: {reason}")


def _check_directory(path: Path) -> None:
    parent = path.parent
    try:
        st = os.stat(parent)
    except FileNotFoundError:
        return
    reason = _why_untrusted(st, directory=True)
    if reason:
        raise ModelCacheError(
            f"refusing to use model cache {path}: its directory {parent} is unsafe: "
            f"{reason}"
        )


class DatabaseModelCache:
    """Reflected table definitions stored in ``cache_file`` (disabled when None).

    `DatabaseMapper` loads it before reflecting and writes it after. A load
    reads the header first, lets the mapper compare it with the live catalog,
    and reads the tables only on a match (each is unpickled when the mapper
    first needs it). See the module docstring
    for the safety rules; files are written atomically with mode 0600 in a
    directory created with mode 0700.

    Parameters:
        cache_file: where to keep the cache; ``~`` is expanded.
    """

    cache_file: Path | None = None
    """The cache file, or None when the cache is disabled (also on the class, as upstream)."""

    def __init__(self, cache_file: str | os.PathLike[str] | None = None) -> None:
        self.cache_file = Path(cache_file).expanduser() if cache_file else None

    @property
    def enabled(self) -> bool:
        """True when a cache file is configured."""
        return self.cache_file is not None

    @property
    def _metadata_cache_filename(self) -> Path | None:
        """The cache file (upstream's name for it)."""
        return self.cache_file

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.cache_file)!r})"

    def new_header(
        self, *, schemas: Iterable[str], views: dict[str, list[str]], fingerprint: str
    ) -> Header:
        """Build the header `save` writes (and `load` compares).

        Parameters:
            schemas: the reflected schemas.
            views: mapped views as ``{"schema.view": [primary key columns]}``.
            fingerprint: `catalog_fingerprint` of ``schemas``, taken before reflecting.
        """
        return {
            "format": CACHE_FORMAT,
            "versions": _library_versions(),
            "schemas": sorted(set(schemas)),
            "views": dict(views),
            "fingerprint": fingerprint,
        }

    def header_is_current(self, header: Header) -> bool:
        """True when ``header`` was written by this format and these library versions."""
        return (
            header.get("format") == CACHE_FORMAT
            and header.get("versions") == _library_versions()
        )

    def load(
        self,
        accept: Callable[[Header], bool],
        verify: Callable[[Header], bool] | None = None,
    ) -> tuple[Header, CachedTables] | None:
        """Return ``(header, tables)`` when the file exists and fits.

        ``accept(header)`` runs first and should be cheap, then
        ``verify(header)`` (typically the catalog fingerprint query); only when
        both agree is the rest read: the table summaries, with each table
        unpickled when it is first asked for (`CachedTables`). Returns None for a missing
        file, a header from another format or library version, a header
        ``accept`` or ``verify`` rejects, or an unreadable file (logged; it will
        be rewritten).

        Parameters:
            accept: called with the header; say whether the cache fits.
            verify: a slower check of the header (e.g. against the database).

        Raises:
            ModelCacheError: the file or its directory is not safe (see module).
        """
        path = self.cache_file
        if path is None:
            return None
        _check_directory(path)
        try:
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        except FileNotFoundError:
            return None
        except OSError as exc:
            if os.path.islink(path):
                raise ModelCacheError(
                    f"refusing to use model cache {path}: it is a symlink"
                ) from exc
            raise ModelCacheError(f"cannot open model cache {path}: {exc}") from exc
        with os.fdopen(fd, "rb") as f:
            reason = _why_untrusted(os.fstat(f.fileno()), directory=False)
            if reason:
                raise ModelCacheError(f"refusing to use model cache {path}: {reason}")
            try:
                magic_ok = f.read(len(_MAGIC)) == _MAGIC
                header = pickle.load(f) if magic_ok else None
            except _UNREADABLE as exc:
                log.warning("model cache %s is unreadable (%s); rebuilding", path, exc)
                return None
            if not isinstance(header, dict):
                log.warning("model cache %s is not a cache file; rebuilding", path)
                return None
            if not self.header_is_current(header):
                log.info("model cache %s is from another version; rebuilding", path)
                return None
            if not accept(header):
                log.info("model cache %s does not cover this request", path)
                return None
            if verify is not None and not verify(header):
                log.info("model cache %s is out of date; rebuilding", path)
                return None
            try:
                tables = CachedTables.parse(f.read())
            except _UNREADABLE as exc:
                log.warning("model cache %s is unreadable (%s); rebuilding", path, exc)
                return None
        return header, tables

    def save(
        self, header: Header, metadata: MetaData, index: TableIndex | None = None
    ) -> None:
        """Write ``header`` and the tables of ``metadata`` to the cache file (atomically).

        Does nothing when the cache is disabled. An I/O failure (or a table
        that cannot be pickled on its own) is logged, not raised: the next
        start simply reflects again.

        Parameters:
            header: from `new_header`.
            metadata: every reflected table.
            index: their summaries (computed from ``metadata`` when omitted).

        Raises:
            ModelCacheError: the directory exists and is not safe.
        """
        path = self.cache_file
        if path is None:
            return
        try:
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:
            log.warning(
                "cannot create the model cache directory %s: %s", path.parent, exc
            )
            return
        _check_directory(path)
        tmp: str | None = None
        try:
            body = dump_tables(
                metadata,
                index if index is not None else TableIndex.from_metadata(metadata),
            )
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
            with os.fdopen(fd, "wb") as f:
                f.write(_MAGIC)
                pickle.dump(header, f, protocol=pickle.HIGHEST_PROTOCOL)
                f.write(body)
            os.replace(tmp, path)
            tmp = None
            log.debug("wrote model cache %s", path)
        except TablePickleError as exc:
            log.warning("not writing the model cache %s: %s", path, exc)
        except (OSError, pickle.PicklingError, TypeError, AttributeError) as exc:
            log.warning("cannot write the model cache %s: %s", path, exc)
        finally:
            if tmp is not None:
                with suppress(OSError):
                    os.unlink(tmp)

    def clear(self) -> None:
        """Delete the cache file if there is one."""
        if self.cache_file is not None:
            with suppress(FileNotFoundError):
                self.cache_file.unlink()

    def automap_base(self) -> type[Any]:
        """Deprecated (upstream's way to turn the cache on): an automap base using it.

        Upstream had callers assign the result to ``DatabaseMapper.automap_base``;
        that still works: every `DatabaseMapper` created afterwards without a
        ``cache=`` uses this cache, loaded and checked as described above, and
        still maps its models on a base of its own. The returned base is a
        plain SQLAlchemy automap base with `ModelHelperMixins`, an empty
        ``MetaData``, ``loaded_from_cache = False`` and ``builder`` set to this
        cache. Use ``DatabaseMapper(db, cache=...)`` or
        ``Database.automap(cache=...)`` instead.
        """
        warnings.warn(
            "DatabaseModelCache.automap_base() is deprecated; pass the cache to "
            "DatabaseMapper(db, cache=...) or Database.automap(cache=...)",
            DeprecationWarning,
            stacklevel=2,
        )
        return _automap_base(self)


def _automap_base(builder: DatabaseModelCache) -> type[Any]:
    """A new automap base (with `ModelHelperMixins`) whose ``builder`` is ``builder``."""
    from sqlalchemy.ext.automap import automap_base

    base: type[Any] = automap_base(
        cls=ModelHelperMixins, metadata=MetaData(), name="AutomapModel"
    )
    base.loaded_from_cache = False
    base.builder = builder
    return base


@contextmanager
def paused_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector for the duration of the block.

    Reflection, unpickling and mapping allocate tens of thousands of
    long-lived objects; each allocation burst triggers full collections that
    walk every object already built, which roughly doubles the time spent
    (measured in ``bench/bench_automap.py``). Nothing is leaked: cycles made in
    the block are collected after it. Nested use is fine; the collector is
    re-enabled only if it was enabled on entry.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
