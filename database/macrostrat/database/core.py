"""The `Database` class: one engine, its sessions, reflection and transactions.

Longer than 400 lines because `Database` is the package's documented facade:
about 330 of its lines are the public methods' docstrings (rendered in
``docs/database.md``); each method body is a delegation of a line or two to a
collaborator (`_session_registry`, `mapper.state`, `_sql.session`, `retry`,
`tenancy`, `orm`, `transfer`).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from types import TracebackType
from typing import IO, TYPE_CHECKING, Any, TypeVar

from sqlalchemy import URL, Connection, Engine, MetaData, Table
from sqlalchemy.engine.reflection import Inspector
from sqlalchemy.orm import Session

from . import retry, tenancy
from ._helpers import get_dataframe, reflect_table
from ._renamed import renamed_parameters
from ._session_registry import SessionRegistry
from ._sql.session import merge_instance_params, query_session, runner_session
from .engine import DatabaseInput, create_engine
from .errors import InvalidOptionError
from .mapper import (
    DatabaseMapper,
    DatabaseModelCache,
    ModelCollection,
    TableCollection,
    ViewSpec,
)
from .mapper.state import ReflectionState
from .orm import (
    bulk_delete,
    bulk_insert,
    bulk_update,
    get_or_create,
    get_or_create_instance,
    recreate_all,
    update_instance,
)
from .replicas import ReadReplicas
from .retry import RetryPolicy
from .tenancy import DEFAULT_TENANT_SETTING, TenantValidator
from .transactions import RollbackMode

if TYPE_CHECKING:
    import pandas

__all__ = ["Database"]

metadata = MetaData()
"""Upstream's module-wide ``MetaData``. Each `Database` has its own
``metadata``; `Database.create_tables` also creates tables declared here."""

M = TypeVar("M")
R = TypeVar("R")

Params = Any
"""Bind parameters: a mapping, a list of mappings, or positional values."""


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
        replicas: hot standbys (URLs or engines) for `read_only` work; see
            `macrostrat.database.replicas.ReadReplicas`.
        max_replica_lag: the most replay lag, in seconds, a standby may have
            to take `read_only` work (else the primary takes it).
        **engine_kwargs: passed to `sqlalchemy.create_engine` for a URL (and
            for the standbys' engines).

    Raises:
        InvalidOptionError: engine options with an existing engine.
    """

    def __init__(
        self,
        db_conn: DatabaseInput,
        *,
        echo_sql: bool = False,
        instance_params: Mapping[str, Any] | None = None,
        metadata: MetaData | None = None,
        replicas: Sequence[str | URL | Engine] | None = None,
        max_replica_lag: float = 10.0,
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
        # The collaborators: sessions and transaction blocks, and the schema.
        self._sessions = SessionRegistry(self.engine)
        self._reflection = ReflectionState(self)
        self.replicas: ReadReplicas | None = None
        if replicas:
            self.replicas = ReadReplicas(
                self.engine, replicas, max_lag=max_replica_lag, **engine_kwargs
            )

    def __repr__(self) -> str:
        """``<Database url>``, every secret of the URL masked."""
        from ._redact import redact

        return f"<Database {redact(self.engine)}>"

    def read_only(self) -> AbstractContextManager[Connection]:
        """A connection for read-only work: on a fresh standby if any, else here.

        The block runs in a ``READ ONLY`` transaction (rolled back at the
        end) on a standby given as ``replicas`` whose replay lag is within
        ``max_replica_lag``, or on this database when none is (or none was
        given). See `macrostrat.database.replicas.ReadReplicas`.
        """
        if self.replicas is None:
            return ReadReplicas(self.engine, []).connect()
        return self.replicas.connect()

    @property
    def mapper(self) -> DatabaseMapper | None:
        """The `DatabaseMapper` of the last `automap` (None before, or after `refresh_schema`)."""
        return self._reflection.mapper

    @mapper.setter
    def mapper(self, value: DatabaseMapper | None) -> None:
        self._reflection.mapper = value

    @property
    def model_cache(self) -> DatabaseModelCache | None:
        """The model cache `automap` reads and writes (set by its ``cache=``)."""
        return self._reflection.model_cache

    @model_cache.setter
    def model_cache(self, value: DatabaseModelCache | None) -> None:
        self._reflection.model_cache = value

    # -- sessions ----------------------------------------------------------

    @property
    def session(self) -> Session:
        """This thread's current session.

        Inside a `transaction` or `savepoint` block, that block's session;
        otherwise the thread's default session, bound to its session
        connection. Assigning replaces the default.
        """
        return self._sessions.current()

    @session.setter
    def session(self, value: Session) -> None:
        self._sessions.replace_default(value)

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
        return self._sessions.connections.get()

    def reset_session(self) -> None:
        """End this thread's session: roll back, close its connection.

        The next call starts a new session on a fresh connection, with none
        of the old one's settings (``SET ROLE``…), temporary tables or locks.
        The connection is closed, never returned to the pool with that state.
        """
        self._sessions.reset()

    def connection(self) -> Connection:
        """The connection this thread's work runs on now.

        Inside a `transaction` or `savepoint` block, that block's connection
        (it sees what the block did); otherwise the session connection (see
        `session_connection`).
        """
        return self._sessions.connection()

    def session_scope(self, commit: bool = True) -> AbstractContextManager[Session]:
        """Yield the current session; commit on success, roll back on error, then close.

        Parameters:
            commit: commit when the block succeeds (else leave it to the caller).
        """
        return self._sessions.session_scope(commit)

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
        return self._sessions.transaction(
            self, rollback=rollback, connection=connection, raise_errors=raise_errors
        )

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
        return self._sessions.savepoint(name, rollback, connection)

    def in_transaction_block(self) -> bool:
        """Whether this thread is inside a `transaction` or `savepoint` block."""
        return self._sessions.in_block()

    def block_connection(self) -> Connection:
        """The connection of this thread's innermost `transaction`/`savepoint` block.

        Outside any block, the default session's connection (see `connection`).
        """
        return self._sessions.block_connection()

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
        return retry.run_with_retry(
            self,
            func,
            args,
            isolation_level=isolation_level,
            policy=policy,
            options=options,
        )

    def tenant_scope(
        self,
        tenant_id: Any,
        setting: str = DEFAULT_TENANT_SETTING,
        validator: TenantValidator | None = None,
    ) -> AbstractContextManager[Database]:
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
        return tenancy.tenant_scope(self, tenant_id, setting, validator)

    # -- running SQL -------------------------------------------------------

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

        params = merge_instance_params(self.instance_params, params, kwargs)
        return run_sql(runner_session(self), sql, params, **kwargs)

    def run_query(self, sql: Any, params: Params = None, **kwargs: Any) -> Any:
        """Run one statement in the current session and return its result (see `query.run_query`).

        Inside a `transaction`/`savepoint` block, or when the session has a
        transaction in progress, the statement joins it (and is committed
        with it). Otherwise it is committed on its own, as `run_sql` does,
        and no transaction is left open (upstream left one open until the
        next commit, holding its locks).
        """
        from .query import run_one

        params = merge_instance_params(self.instance_params, params, kwargs)
        # Join a transaction in progress (a block, or the session's ORM work);
        # otherwise commit on its own, leaving no transaction open.
        session, join = query_session(self)
        return run_one(session, sql, params, kwargs, join=join)

    def run_fixtures(self, fixtures: Any, params: Params = None, **kwargs: Any) -> Any:
        """Run SQL fixture files in the current session (see `query.run_fixtures`)."""
        from .query import run_fixtures

        params = merge_instance_params(self.instance_params, params, kwargs)
        return run_fixtures(runner_session(self), fixtures, params, **kwargs)

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
        return self._reflection.get_inspector()

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
        self._reflection.automap(
            schemas, use_cache=use_cache, cache=cache, views=views, lazy=lazy
        )

    @property
    def model(self) -> ModelCollection:
        """The mapped classes (automaps the public schema on first use)."""
        return self._reflection.ensure_mapper().models

    mapped_classes = model

    @property
    def table(self) -> TableCollection:
        """The tables of the mapped classes (automaps on first use)."""
        return self._reflection.ensure_mapper().tables

    def refresh_schema(self, *, automap: bool | None = None) -> None:
        """Forget everything known about the schema after DDL.

        Flushes and closes the default session, drops the cached inspector and
        every table `get_table` cached, and rebuilds the models (new classes,
        so new columns appear) when ``automap`` is True, or None and models
        existed. With ``automap=False`` the models are dropped and rebuilt on
        next use, with the schemas and views of the last `automap`.
        """
        self._sessions.close_default_if_idle(flush=True)
        self._reflection.refresh(automap=automap)

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
        return self._reflection.get_table(name, schema)

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
        return self._reflection.get_model(name, schema, automap)

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
        self._sessions.close_default_if_idle()
        recreate_all(metadata if metadata is not None else self.metadata, self.engine)
        self._reflection.inspector = None

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
        if self.replicas is not None:
            self.replicas.dispose()  # only the standby engines it made

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
        sessions = getattr(self, "_sessions", None)
        if sessions is not None:
            try:
                sessions.connections.release_all()
            except Exception:
                pass
        if getattr(self, "_owns_engine", False):
            try:
                self.engine.dispose(close=True)
            except Exception:
                pass
