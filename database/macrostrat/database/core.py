"""The `Database` class: one engine, its sessions, reflection and transactions."""

from __future__ import annotations

import functools
import itertools
import logging
import os
import threading
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from types import TracebackType
from typing import IO, TYPE_CHECKING, Any, TypeVar

from sqlalchemy import URL, Connection, Engine, MetaData, Table, inspect
from sqlalchemy.engine.reflection import Inspector
from sqlalchemy.exc import NoSuchTableError, OperationalError
from sqlalchemy.orm import Session, scoped_session, sessionmaker

from ._renamed import renamed_parameters
from ._session import SessionConnections, SessionOnConnection
from .engine import DatabaseInput, create_engine
from .errors import InvalidOptionError, ModelNotFoundError
from .mapper import (
    DatabaseMapper,
    DatabaseModelCache,
    ModelCollection,
    TableCollection,
    ViewSpec,
    model_key,
    parse_table_name,
)
from .mapper.lookup import table_not_found
from .orm import (
    bulk_delete,
    bulk_insert,
    bulk_update,
    get_or_create_instance,
    recreate_all,
    update_instance,
)
from .retry import RetryPolicy, retrying
from .tenancy import (
    DEFAULT_TENANT_SETTING,
    TenantValidator,
    current_tenant,
    set_tenant,
    validate_tenant,
)
from .transactions import (
    RollbackMode,
    SavepointScope,
    SessionStack,
    TransactionScope,
    _connection_aborted,
    check_rollback_mode,
)
from .utils import get_dataframe, get_or_create, reflect_table

if TYPE_CHECKING:
    import pandas

__all__ = ["Database"]

log = logging.getLogger(__name__)

metadata = MetaData()
"""Upstream's module-wide ``MetaData``. Each `Database` has its own
``metadata``; `Database.create_tables` also creates tables declared here."""

M = TypeVar("M")
R = TypeVar("R")

Params = Any
"""Bind parameters: a mapping, a list of mappings, or positional values."""


def _checked_model(cls: type, schema: str, table: str) -> type:
    """``cls`` if it maps ``schema.table``; model keys of two tables can collide.

    (Public ``geology_formation`` and ``geology.formation`` share a key.)
    """
    mapped: Table | None = getattr(cls, "__table__", None)
    if mapped is not None and ((mapped.schema or "public"), mapped.name) != (
        schema,
        table,
    ):
        raise ModelNotFoundError(
            f"The model for key {model_key(schema, table)!r} maps "
            f"{mapped.schema or 'public'}.{mapped.name}, not {schema}.{table} (their "
            "model keys collide); use get_table() for the other one."
        )
    return cls


class Database:
    """A PostgreSQL database reached through one SQLAlchemy engine.

    ``db_conn`` may be a URL (``postgresql://`` becomes psycopg 3), an
    ``Engine`` (used as is) or another `Database` (its engine is shared). Engine
    options (``**engine_kwargs``, ``echo_sql``) only apply to a URL; given with
    an engine or a `Database` they raise `InvalidOptionError` rather than being
    ignored. `cleanup` disposes the engine only if this object created it.

    ``db.session`` is the calling thread's default session (from a
    ``scoped_session``), or the session of the innermost `transaction` or
    `savepoint` block the thread is in.

    Like a ``psql`` session, each thread's work runs on one *session
    connection* (kept from the engine's pool until `cleanup` or
    `reset_session`, or until the thread ends): what ``SET ROLE``, ``SET
    search_path``, temporary tables, prepared statements or session locks
    did in one `run_sql`, `run_query`, ``db.session`` or `transaction` call
    is there for the next.  A lost connection ends the session; the next
    call starts a new one and says so (`SessionResetWarning`).

    Parameters:
        db_conn: a URL string, a ``URL``, an ``Engine`` or a `Database`.
        echo_sql: log every statement (the engine's ``echo``).
        instance_params: default bind parameters for `run_sql`, `run_query` and
            `run_fixtures`; explicit parameters override them.
        metadata: the ``MetaData`` `create_tables` creates (default: a new one).
        **engine_kwargs: passed to `sqlalchemy.create_engine` for a URL.

    Raises:
        InvalidOptionError: engine options with an existing engine.
    """

    mapper: DatabaseMapper | None
    model_cache: DatabaseModelCache | None

    def __init__(
        self,
        db_conn: DatabaseInput,
        *,
        echo_sql: bool = False,
        instance_params: Mapping[str, Any] | None = None,
        metadata: MetaData | None = None,
        **engine_kwargs: Any,
    ) -> None:
        self._owns_engine = False
        if echo_sql:
            if not isinstance(db_conn, (str, URL)):
                raise InvalidOptionError(
                    "echo_sql only applies when Database creates the engine from a "
                    "URL; set echo=True when creating the engine instead"
                )
            engine_kwargs["echo"] = True
        self.engine: Engine = create_engine(db_conn, **engine_kwargs)
        self._owns_engine = isinstance(db_conn, (str, URL))
        self.metadata = metadata if metadata is not None else MetaData()
        self.instance_params: dict[str, Any] = dict(instance_params or {})
        self.mapper = None
        self.model_cache = None
        self._session_factory = sessionmaker(bind=self.engine)
        self._connections = SessionConnections(self.engine)
        # No reference back to this object: a dropped Database is freed (and
        # its session connections closed) at once, not at a garbage collection.
        self._scoped = scoped_session(
            functools.partial(SessionOnConnection, self._connections)
        )
        self._sessions = SessionStack()
        self._inspector: Inspector | None = None
        self._table_cache: dict[tuple[str, str], Table] = {}
        self._table_metadata = MetaData()
        self._automap_options: dict[str, Any] = {}
        self._lock = threading.RLock()
        self._savepoint_ids = itertools.count(1)

    def __repr__(self) -> str:
        """``<Database url>``, every secret of the URL masked."""
        from ._redact import redact

        return f"<Database {redact(self.engine)}>"

    # -- sessions ----------------------------------------------------------

    def _default_session(self) -> Session:
        """This thread's default session; its connection checked (see `SessionConnections`)."""
        session = self._scoped()
        connections = self._connections
        if (
            isinstance(session, SessionOnConnection)
            and connections.current() is not None
        ):
            generation = connections.generation
            connections.get()  # notices a lost connection, says so
            if connections.generation != generation and session.in_transaction():
                session.rollback()  # its transaction was lost with the connection
        return session

    @property
    def session(self) -> Session:
        """This thread's current session.

        Inside a `transaction` or `savepoint` block, that block's session;
        otherwise the thread's default session, bound to its session
        connection. Assigning replaces the default.
        """
        return self._sessions.current() or self._default_session()

    def session_connection(self) -> Connection:
        """This thread's session connection (opened on first use).

        Everything ``db.session``, `run_sql`, `run_query` and `transaction`
        do outside an explicit ``connection=`` runs on it, so session state
        (``SET ROLE``, ``search_path``, temporary tables) carries over from
        one call to the next, as in ``psql``.  Statements you execute on it
        begin a transaction, as on any SQLAlchemy ``Connection``: commit or
        roll it back, or later `run_sql` calls join it (and nothing they do
        is committed until you do).
        """
        return self._connections.get()

    def reset_session(self) -> None:
        """End this thread's session: roll back, close its connection.

        The next call starts a new session on a fresh connection, with none
        of the old one's settings (``SET ROLE``…), temporary tables or locks.
        The connection is closed, never returned to the pool with that state.
        """
        self._end_default_session("the session was reset", warn=False)
        try:
            self._scoped.remove()
        except OperationalError as exc:
            log.debug("closing the session failed: %s", exc)
        self._connections.release()

    @session.setter
    def session(self, value: Session) -> None:
        self._end_default_session("it was replaced")
        self._scoped.registry.set(value)

    def _end_default_session(self, why: str, *, warn: bool = True) -> None:
        """Close this thread's default session before it goes away.

        A transaction it still had open (ORM work never committed) would
        otherwise stay open on the session connection, holding its locks,
        with nobody left to end it: it is rolled back, with a warning.
        """
        if not self._scoped.registry.has():
            return
        old = self._scoped()
        if not isinstance(old, SessionOnConnection):
            return
        if warn and old.in_transaction():
            log.warning(
                "the default session had a transaction open when %s; it was "
                "rolled back (commit before replacing db.session to keep it)",
                why,
            )
            warnings.warn(
                f"db.session had uncommitted work when {why}; it was rolled back",
                UserWarning,
                stacklevel=3,
            )
        try:
            old.close()
        except OperationalError as exc:
            log.debug("closing the replaced session failed: %s", exc)

    def connection(self) -> Connection:
        """The connection this thread's work runs on now.

        Inside a `transaction` or `savepoint` block, that block's connection
        (it sees what the block did); otherwise the session connection (see
        `session_connection`).
        """
        if self._sessions.current() is not None:
            return self._block_connection()
        return self._connections.get()

    @contextmanager
    def session_scope(self, commit: bool = True) -> Iterator[Session]:
        """Yield the current session; commit on success, roll back on error, then close.

        Parameters:
            commit: commit when the block succeeds (else leave it to the caller).
        """
        session = self.session
        try:
            yield session
            if commit:
                session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def transaction(
        self,
        *,
        rollback: RollbackMode = "on-error",
        connection: Connection | None = None,
        raise_errors: bool = True,
    ) -> AbstractContextManager[Database]:
        """Run a block in one transaction; ``db.session`` inside is bound to it.

        The block gets this `Database`. Inside, ``session.commit()`` only
        releases a savepoint and ``session.rollback()`` returns to the last one,
        so a failed statement that is rolled back never ends the transaction
        (upstream's rollback killed it and later statements were committed one
        by one). On exit: ``"on-error"`` commits unless the block raised,
        ``"always"`` rolls back, ``"never"`` commits what it can even if the
        block raised. Work that cannot be committed is rolled back entirely
        and `TransactionError` is raised. See `TransactionScope` for details.

        Parameters:
            rollback: ``"on-error"``, ``"always"`` or ``"never"``.
            connection: run on this connection (in a SAVEPOINT if it already
                has a transaction; it is not closed). Default: inside another
                `transaction`/`savepoint` block of this thread, that block's
                connection (so the inner block is a SAVEPOINT of the outer one);
                otherwise this thread's session connection (it sees what the
                session set, and stays open), or, when the default session has
                uncommitted work, a new connection, closed on exit.
            raise_errors: re-raise the block's exception (after rolling back).

        Raises:
            InvalidOptionError: an unknown ``rollback`` value (e.g. ``True``).
        """
        if connection is None:
            current = self._sessions.current()
            if current is not None and isinstance(current.bind, Connection):
                connection = current.bind
            else:
                connection = self._idle_session_connection()
        return TransactionScope(
            self.engine,
            self,
            self._sessions,
            rollback=check_rollback_mode(rollback),
            connection=connection,
            raise_errors=raise_errors,
        )

    def _idle_session_connection(self) -> Connection | None:
        """The session connection, unless the default session has a transaction open.

        (Then a block runs on a new connection, as before: it must not become
        part of work the default session has not committed.)
        """
        session = self._default_session()
        if not isinstance(session, SessionOnConnection) or session.in_transaction():
            return None
        conn = self._connections.get()
        return None if conn.in_transaction() else conn

    def savepoint(
        self,
        name: str | None = None,
        rollback: RollbackMode = "on-error",
        connection: Connection | None = None,
    ) -> AbstractContextManager[str]:
        """Run a block inside ``SAVEPOINT name``; the block gets the name.

        The savepoint is taken on ``connection``, or in the current
        transaction: the innermost `transaction`/`savepoint` block's, or the
        default session's when it has one in progress. Outside any
        transaction the savepoint gets one of its own, committed (or rolled
        back) when the block ends, so no transaction is ever left open
        (upstream left the session's open, holding its locks). On exit the
        savepoint is released, or rolled back to when ``rollback`` is
        ``"always"`` or (``"on-error"``) the block raised; an enclosing
        transaction is never committed here. Exceptions from the block are
        always re-raised. See `SavepointScope`.

        Parameters:
            name: the savepoint's name (default ``sp_<n>``); any text is quoted.
            rollback: ``"on-error"``, ``"always"`` or ``"never"``.
            connection: the connection to use.

        Raises:
            InvalidOptionError: an unknown ``rollback`` value.
        """
        mode = check_rollback_mode(rollback)
        if name is None:
            name = f"sp_{next(self._savepoint_ids)}"
        if connection is None and not self.in_transaction_block():
            session = self._default_session()
            if not session.in_transaction():
                # Nothing to join: a transaction of its own around the
                # savepoint, committed at the end, so none is left open.
                return self._savepoint_in_own_transaction(name, mode)
        conn = connection if connection is not None else self.session.connection()
        return SavepointScope(conn, name, self._sessions, rollback=mode)

    @contextmanager
    def _savepoint_in_own_transaction(
        self, name: str, mode: RollbackMode
    ) -> Iterator[str]:
        """`savepoint` outside any transaction: inside one of its own."""
        with self.transaction():
            scope = SavepointScope(
                self._block_connection(), name, self._sessions, rollback=mode
            )
            with scope as entered:
                yield entered

    def in_transaction_block(self) -> bool:
        """Whether this thread is inside a `transaction` or `savepoint` block."""
        return self._sessions.current() is not None

    def run_with_retry(
        self,
        func: Callable[..., R],
        /,
        *args: Any,
        isolation_level: str | None = None,
        policy: RetryPolicy | None = None,
        **options: Any,
    ) -> R:
        """Run ``func(self, *args)`` in a new transaction, re-running it on transient errors.

        Each attempt opens a fresh connection and a `transaction` block (so
        ``db.session`` inside is bound to it), calls ``func(self, *args)``, and
        commits. A serialization failure, deadlock or connection lost before
        ``COMMIT`` leaves the attempt uncommitted and, after a jittered
        exponential backoff, the whole function runs again (see
        `macrostrat.database.retry`). A connection lost during ``COMMIT`` is
        resolved with the server: committed work returns ``func``'s result,
        and an unknown outcome raises `CommitOutcomeUnknown`. Inside a
        `transaction` or `savepoint` block this `Database` did not open here,
        ``func`` runs once, in that block, and errors propagate. When every
        attempt fails, the last error is raised with ``retry_attempts`` set.

        Parameters:
            func: the unit of work; it gets this `Database` and ``args``.
            *args: more positional arguments for ``func``.
            isolation_level: e.g. ``"SERIALIZABLE"`` for the attempts'
                connections (ignored when running inside an existing block).
            policy: a `RetryPolicy`.
            **options: `RetryPolicy` fields (``attempts``, ``on_retry``...).

        Raises:
            InvalidOptionError: an invalid option or ``MACROSTRAT_DB_RETRY_ATTEMPTS``.
        """
        for attempt in retrying(policy, bind=self, **options):
            with attempt:
                if self.in_transaction_block():
                    return func(self, *args)
                with self.engine.connect() as conn:
                    if isolation_level is not None:
                        conn.execution_options(isolation_level=isolation_level)
                    with self.transaction(connection=conn):
                        result = func(self, *args)
                    return result
        raise AssertionError("unreachable: the last attempt re-raises")

    @contextmanager
    def tenant_scope(
        self,
        tenant_id: Any,
        setting: str = DEFAULT_TENANT_SETTING,
        validator: TenantValidator | None = None,
    ) -> Iterator[Database]:
        """Run a block with ``setting`` naming the current tenant, for row-level security.

        ``tenant_id`` and ``setting`` are validated before any SQL runs
        (a UUID by default; ``validator`` may accept other ids). Then
        ``set_config(setting, value, true)`` (``SET LOCAL``) runs in the
        current transaction: inside a `transaction` or `savepoint` block, that
        block's, and the previous value is restored when the scope ends;
        otherwise the scope opens a `transaction` of its own (committed on
        success, rolled back on error), and the setting ends with it. Either
        way it never outlives the transaction, so pooled connections are
        never left with a tenant. The block gets this `Database`; use
        ``db.session`` inside.

        Parameters:
            tenant_id: the tenant's id.
            setting: the custom setting the policies read.
            validator: turns ``tenant_id`` into text or raises ``ValueError``
                (default: `macrostrat.database.tenancy.uuid_tenant`).

        Raises:
            InvalidTenantError: the validator refused ``tenant_id``.
            InvalidOptionError: ``setting`` is not a dotted custom setting name.
        """
        value = validate_tenant(tenant_id, setting, validator)
        if not self.in_transaction_block():
            with self.transaction():
                # On the block's connection, outside the session's savepoints,
                # so that session.rollback() in the block keeps the tenant.
                set_tenant(self._block_connection(), value, setting)
                yield self
            return
        conn = self._block_connection()
        previous = current_tenant(conn, setting) or ""
        set_tenant(conn, value, setting)
        try:
            yield self
        finally:
            if not _connection_aborted(conn):
                set_tenant(conn, previous, setting)

    def _block_connection(self) -> Connection:
        """The connection of this thread's innermost transaction block."""
        session = self.session
        bind = session.bind
        return bind if isinstance(bind, Connection) else session.connection()

    # -- running SQL -------------------------------------------------------

    def _setup_params(self, params: Params, kwargs: dict[str, Any]) -> Params:
        """Merge the instance parameters into ``params`` (explicit values win).

        Pops ``use_instance_params`` (default True) from ``kwargs``. A mapping
        gives a new dict (the caller's is never changed); a list or tuple of
        mappings is merged mapping by mapping; positional parameters (a tuple
        or list of values) and None without instance parameters pass through
        untouched.
        """
        if not kwargs.pop("use_instance_params", True) or not self.instance_params:
            return params
        if params is None:
            return dict(self.instance_params)
        if isinstance(params, Mapping):
            return {**self.instance_params, **params}
        if (
            isinstance(params, (list, tuple))
            and params
            and all(isinstance(p, Mapping) for p in params)
        ):
            return type(params)({**self.instance_params, **p} for p in params)
        return params

    @renamed_parameters({"fn": "sql"})  # upstream's name
    def run_sql(self, sql: Any, params: Params = None, **kwargs: Any) -> Any:
        """Run every statement of ``sql`` (see `query.run_sql`).

        Inside a `transaction` or `savepoint` block the statements join that
        block's transaction. Outside one, the default session's open
        transaction is committed first and each statement then commits on its
        own (as ``psql`` does), so the results are visible to other sessions.

        Parameters:
            sql: SQL text, a file path, or what `macrostrat.database.query.run_sql` takes.
            params: bind parameters, merged with the instance parameters.
            **kwargs: `run_sql` options; ``use_instance_params=False`` skips the merge.
        """
        from .query import run_sql

        params = self._setup_params(params, kwargs)
        return run_sql(self._runner_session(), sql, params, **kwargs)

    def run_query(self, sql: Any, params: Params = None, **kwargs: Any) -> Any:
        """Run one statement in the current session and return its result (see `query.run_query`).

        Inside a `transaction`/`savepoint` block, or when the session has a
        transaction in progress, the statement joins it (and is committed
        with it). Otherwise it is committed on its own, as `run_sql` does,
        and no transaction is left open (upstream left one open until the
        next commit, holding its locks).
        """
        from .query import run_one

        params = self._setup_params(params, kwargs)
        session = self.session
        # Join a transaction in progress (a block, or the session's ORM work);
        # otherwise commit on its own, leaving no transaction open.
        join = self.in_transaction_block() or session.in_transaction()
        return run_one(session, sql, params, kwargs, join=join)

    def run_fixtures(self, fixtures: Any, params: Params = None, **kwargs: Any) -> Any:
        """Run SQL fixture files in the current session (see `query.run_fixtures`)."""
        from .query import run_fixtures

        params = self._setup_params(params, kwargs)
        return run_fixtures(self._runner_session(), fixtures, params, **kwargs)

    def _runner_session(self) -> Session:
        """The session `run_sql` and `run_fixtures` run in.

        Inside a `transaction` or `savepoint` block that is the block's session,
        and statements join its transaction. Outside one, the default session's
        open transaction (pending ORM work, or an earlier `run_query`) is
        committed first, so that each statement commits on its own as with
        ``psql``; upstream committed the session after every statement.
        """
        scoped = self._sessions.current()
        if scoped is not None:
            return scoped
        session = self._default_session()
        if session.in_transaction():
            session.commit()
        return session

    def exec_sql(self, sql: Any, params: Params = None, **kwargs: Any) -> Any:
        """Deprecated alias of `run_sql`."""
        warnings.warn(
            "Database.exec_sql() is deprecated; use Database.run_sql()",
            DeprecationWarning,
            stacklevel=2,
        )
        return self.run_sql(sql, params, **kwargs)

    def get_dataframe(self, *args: Any, **kwargs: Any) -> pandas.DataFrame:
        """Run a query into a pandas ``DataFrame`` (see `utils.get_dataframe`).

        pandas is imported only here; without it an ``ImportError`` says how to
        install it (``macrostrat.database[pandas]``).
        """
        return get_dataframe(self, *args, **kwargs)

    # -- server, schema and reflection --------------------------------------

    def create_tables(self) -> None:
        """Create the tables of ``self.metadata`` that do not exist yet.

        Tables declared on upstream's module-wide `macrostrat.database.core.metadata`
        are created too.
        """
        self.metadata.create_all(self.engine)
        if metadata.tables and self.metadata is not metadata:
            metadata.create_all(self.engine)

    def get_server_version(self) -> tuple[int | str, ...] | None:
        """The server's version as a tuple, e.g. ``(15, 18)``."""
        with self.engine.connect():
            return self.engine.dialect.server_version_info

    @property
    def inspector(self) -> Inspector:
        """A SQLAlchemy ``Inspector``, cached until `refresh_schema`."""
        if self._inspector is None:
            self._inspector = inspect(self.engine)
        return self._inspector

    def entity_names(self, **kwargs: Any) -> Iterator[str]:
        """Yield table names, then view names (``kwargs`` such as ``schema=``)."""
        yield from self.inspector.get_table_names(**kwargs)
        yield from self.inspector.get_view_names(**kwargs)

    def automap(
        self,
        schemas: Iterable[str] | str | None = None,
        *,
        use_cache: bool = True,
        cache: DatabaseModelCache | str | os.PathLike[str] | None = None,
        views: ViewSpec | None = None,
        lazy: bool = True,
    ) -> None:
        """Reflect ``schemas`` (default ``["public"]``) into new model classes.

        Each call builds a new `DatabaseMapper` (own base, so classes are
        rebuilt from the current schema) and makes it ``db.mapper``. Models
        are mapped when first used (``db.model.sample``), each with all of its
        relationships; ``lazy=False`` maps every table now.

        Parameters:
            schemas: the schemas to map.
            use_cache: read the model cache if one is set.
            cache: a `DatabaseModelCache` or cache file path; kept as
                ``db.model_cache`` for later calls.
            views: views to map with an explicit primary key,
                ``{"schema.view": ["id"]}``.
            lazy: map each model on first use (see `DatabaseMapper`).
        """
        if cache is not None:
            self.model_cache = (
                cache
                if isinstance(cache, DatabaseModelCache)
                else DatabaseModelCache(cache)
            )
        mapper = DatabaseMapper(self, cache=self.model_cache, lazy=lazy)
        mapper.reflect_database(schemas, use_cache=use_cache, views=views)
        with self._lock:
            self.mapper = mapper
            self._automap_options = {"schemas": schemas, "views": views, "lazy": lazy}

    def _ensure_mapper(self) -> DatabaseMapper:
        if self.mapper is None:
            self.automap(**self._automap_options)
        assert self.mapper is not None
        return self.mapper

    @property
    def model(self) -> ModelCollection:
        """The mapped classes (automaps the public schema on first use)."""
        return self._ensure_mapper().models

    mapped_classes = model

    @property
    def table(self) -> TableCollection:
        """The tables of the mapped classes (automaps on first use)."""
        return self._ensure_mapper().tables

    def refresh_schema(self, *, automap: bool | None = None) -> None:
        """Forget everything known about the schema after DDL.

        Flushes and closes the default session, drops the cached inspector and
        every table `get_table` cached, and rebuilds the models (new classes,
        so new columns appear) when ``automap`` is True, or None and models
        existed. With ``automap=False`` the models are dropped and rebuilt on
        next use, with the schemas and views of the last `automap`.
        """
        if self._sessions.current() is None:
            session = self._scoped()
            session.flush()
            session.close()
        with self._lock:
            self._inspector = None
            self._table_cache.clear()
            self._table_metadata = MetaData()
            had_models = self.mapper is not None
            if had_models:
                assert self.mapper is not None
                self._automap_options = {
                    "schemas": sorted(self.mapper.reflected_schemas),
                    "views": self.mapper.views or None,
                    "lazy": self.mapper.lazy,
                }
            self.mapper = None
        if automap or (automap is None and had_models):
            self.automap(**self._automap_options)

    def get_table(
        self, name: str | tuple[str, str], *, schema: str | None = None
    ) -> Table:
        """Return the ``Table`` for ``name``, reflecting only that table if needed.

        A mapped table (or one the mapper reflected) is returned from the
        mapper; otherwise the table or view is reflected alone (its foreign
        keys are kept, their targets are not loaded) and cached, so ``"sample"``
        and ``"public.sample"`` give the identical object until `refresh_schema`.

        Parameters:
            name: ``"table"``, ``"schema.table"`` or ``(schema, table)``.
            schema: the schema, if not in ``name`` (it wins over a dotted prefix).

        Raises:
            TableNotFoundError: (a ``sqlalchemy.exc.NoSuchTableError`` and a
                ``LookupError``) there is no such table or view; the message
                names the schema searched and the closest names.
        """
        sch, tbl = parse_table_name(name, schema)
        mapper = self.mapper
        if mapper is not None:
            key = tbl if sch == "public" else f"{sch}.{tbl}"
            found = mapper.reflected_table(key)
            if found is not None:
                return found
        with self._lock:
            cached = self._table_cache.get((sch, tbl))
            if cached is None:
                try:
                    cached = Table(
                        tbl,
                        self._table_metadata,
                        schema=None if sch == "public" else sch,
                        autoload_with=self.engine,
                        resolve_fks=False,
                    )
                except NoSuchTableError as err:
                    raise table_not_found(self.engine, sch, tbl) from err
                self._table_cache[(sch, tbl)] = cached
            return cached

    def get_model(
        self,
        name: str | tuple[str, str],
        *,
        schema: str | None = None,
        automap: bool = True,
    ) -> type:
        """Return the mapped class for a table, reflecting its schema if needed.

        With no mapper, automaps the default schemas (those of the last
        `automap`, else ``public``) and the table's schema; with one that has
        not reflected it, reflects that schema too. Either way the schemas
        already mapped stay mapped.

        Parameters:
            name: ``"table"``, ``"schema.table"`` or ``(schema, table)``.
            schema: the schema, if not in ``name``.
            automap: reflect when the model is missing (else raise at once).

        Raises:
            ModelNotFoundError: (a ``LookupError``) no model, or none after
                reflecting: the table is missing (the message names the
                closest models), is a view or has no primary key (map those
                with ``db.mapper.map_view``).
        """
        sch, tbl = parse_table_name(name, schema)
        key = model_key(sch, tbl)
        if self.mapper is not None and key in self.mapper.models:
            return _checked_model(self.mapper.models[key], sch, tbl)
        if not automap:
            raise ModelNotFoundError(
                f"No ORM model found for {sch}.{tbl}. Call db.automap() first, or use "
                "get_table() to reflect the table without mapping it."
            )
        if self.mapper is None:
            # Another schema adds to the default ones, never replaces them.
            wanted = self._automap_options.get("schemas") or ["public"]
            wanted = [wanted] if isinstance(wanted, str) else list(wanted)
            schemas = list(dict.fromkeys([*wanted, sch]))
            self.automap(**{**self._automap_options, "schemas": schemas})
        elif sch not in self.mapper.reflected_schemas:
            self.mapper.reflect_schema(sch)
        assert self.mapper is not None
        found = self.mapper.models.get(key)
        if found is None:
            raise self.mapper.model_not_found(sch, tbl)
        return _checked_model(found, sch, tbl)

    def __getitem__(self, name: str) -> Table:
        """``db["schema.table"]`` is `get_table`."""
        return self.get_table(name)

    def reflect_table(self, *args: Any, **kwargs: Any) -> Table:
        """Deprecated: use `get_table`. `utils.reflect_table` on this engine."""
        warnings.warn(
            "Database.reflect_table() is deprecated; use Database.get_table()",
            DeprecationWarning,
            stacklevel=2,
        )
        return reflect_table(self.engine, *args, **kwargs)

    # -- ORM helpers ---------------------------------------------------------

    def _resolve_model(self, model: type[M] | str) -> type[M]:
        return self.model[model] if isinstance(model, str) else model

    def get(self, model: type[M] | str, *args: Any, **kwargs: Any) -> M | None:
        """Return the instance of ``model`` with this primary key, or None.

        Uses ``Session.get`` (no legacy ``Query.get`` warning). Several
        positional values form a composite key.

        Parameters:
            model: a mapped class or model key.
            *args: the primary key value(s) (or one tuple or dict).
            **kwargs: ``Session.get`` options (``options``, ``populate_existing``...).
        """
        if not args:
            raise TypeError("Database.get() needs a primary key value")
        ident = args[0] if len(args) == 1 else args
        return self.session.get(self._resolve_model(model), ident, **kwargs)

    def get_or_create(
        self,
        model: type[M] | str,
        defaults: dict[str, Any] | None = None,
        **filters: Any,
    ) -> M:
        """Return the first match for ``filters`` or a new (added, unflushed) instance.

        The instance's ``_created`` is False when found, True when new; see
        `macrostrat.database.utils.get_or_create`.

        Parameters:
            model: a mapped class or model key.
            defaults: extra attributes for a new instance.
            **filters: ``filter_by`` criteria (also set on a new instance).
        """
        return get_or_create(
            self.session, self._resolve_model(model), defaults, **filters
        )

    def get_or_create_instance(
        self,
        model: type[M] | str,
        defaults: Mapping[str, Any] | None = None,
        **filters: Any,
    ) -> tuple[M, bool]:
        """Return ``(instance, created)``, inserting the row if missing; race-safe.

        Unlike `get_or_create`, the new row is flushed (in a SAVEPOINT) and a
        concurrent insert of the same row is resolved by reading it back; see
        `macrostrat.database.orm.get_or_create_instance`. Nothing is committed.

        Parameters:
            model: a mapped class or model key.
            defaults: extra attributes for a new row.
            **filters: plain column values the row is found by (needs a unique
                constraint over them to be race-safe).
        """
        return get_or_create_instance(
            self.session, self._resolve_model(model), defaults, **filters
        )

    def update(self, instance: M, values: Mapping[str, Any]) -> M:
        """Set ``values`` on ``instance`` and flush it (see `orm.update_instance`)."""
        return update_instance(self.session, instance, values)

    def bulk_insert(self, model: type | str, rows: Iterable[Mapping[str, Any]]) -> int:
        """Insert a list of dicts in the current session; return the count (`orm.bulk_insert`)."""
        return bulk_insert(self.session, self._resolve_model(model), rows)

    def bulk_update(self, model: type | str, rows: Iterable[Mapping[str, Any]]) -> int:
        """Update rows by primary key from dicts; return the count (`orm.bulk_update`)."""
        return bulk_update(self.session, self._resolve_model(model), rows)

    def bulk_delete(self, model: type | str, keys: Sequence[Any]) -> int:
        """Delete rows by primary key; return the count (`orm.bulk_delete`)."""
        return bulk_delete(self.session, self._resolve_model(model), keys)

    def recreate_all(self, metadata: MetaData | None = None) -> None:
        """Drop and create every table of ``metadata`` (default ``self.metadata``): for tests.

        Closes this thread's default session first (its locks would block the
        drop); forgets cached reflection.
        """
        if self._sessions.current() is None:
            self._scoped().close()
        recreate_all(metadata if metadata is not None else self.metadata, self.engine)
        self._inspector = None

    # -- lifetime ------------------------------------------------------------

    def copy_rows(
        self,
        table: str,
        rows: Iterable[Any],
        columns: Sequence[str] | None = None,
        *,
        schema: str | None = None,
    ) -> int:
        """Load rows with COPY, all or nothing; see `transfer.copy_rows`.

        Inside a `transaction` or `savepoint` block the load joins that
        block's transaction (as a SAVEPOINT): it sees tables the block
        created, and the block's rollback removes the rows. Outside one it
        commits on its own.
        """
        from .transfer import copy_rows

        return copy_rows(self, table, rows, columns, schema=schema)

    def copy_to(
        self, table: Any = None, file: IO[Any] | None = None, **kwargs: Any
    ) -> Any:
        """Stream a table (or ``query=``'s rows) out with COPY; see `transfer.copy_to`.

        Inside a `transaction` or `savepoint` block the export reads through
        the block's connection, so it sees the block's uncommitted work (an
        iterator must then be consumed inside the block).
        """
        from .transfer import copy_to

        return copy_to(self, table, file, **kwargs)

    def bulk_upsert(
        self,
        table: str,
        rows: Iterable[Any],
        conflict: Sequence[str],
        update: Sequence[str] | None = None,
        **kwargs: Any,
    ) -> tuple[int, int]:
        """Insert or update rows through a staging table; see `transfer.bulk_upsert`.

        Inside a `transaction` or `savepoint` block the merge joins that
        block's transaction, as `copy_rows` does.
        """
        from .transfer import bulk_upsert

        return bulk_upsert(self, table, rows, conflict, update, **kwargs)

    def cleanup(self, *, dispose_engine: bool | None = None) -> None:
        """End this thread's session (`reset_session`) and, if owned, dispose the engine.

        Safe to call more than once; the object stays usable (connections are
        reopened on demand).

        Parameters:
            dispose_engine: dispose the engine's pool; default: only if this
                `Database` created the engine (never an engine or `Database`
                passed in).
        """
        self.reset_session()
        if dispose_engine is None:
            dispose_engine = self._owns_engine
        if dispose_engine:
            self.engine.dispose()

    def __enter__(self) -> Database:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.cleanup()

    def __del__(self) -> None:
        # Session connections go back to the pool (closed); only an engine
        # this object created is disposed, and never noisily.
        connections = getattr(self, "_connections", None)
        if connections is not None:
            try:
                connections.release_all()
            except Exception:
                pass
        if getattr(self, "_owns_engine", False):
            try:
                self.engine.dispose(close=True)
            except Exception:
                pass
