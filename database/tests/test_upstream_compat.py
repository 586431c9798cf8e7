"""Upstream ``macrostrat.database`` 4.5.0 code keeps working: names, paths, signatures.

`UPSTREAM` is generated from ``../shared/reference/api-database-dinosaur.md``
(§1 to §9 and §11, §12): every public name it lists, at the import path
upstream code uses, with upstream's parameter names. Where the reference
paraphrases a parameter name (``col_dict``), the name is the one in the
published 4.5.0 wheel (``col``). Private helpers are listed only where code is
known to import them (``_create_command``, ``_print_error``, ...); the others
(``_run_sql``, ``_force_drop_postgresql_database``, ...) are not provided (see
"Compatibility with upstream" in ``docs/database.md``).

Each row is checked twice: the name imports from its path, and its signature
accepts upstream's positional, keyword and required-only forms
(``inspect.signature(...).bind``), by the root conftest's ``upstream_api``
fixture. Real calls below cover the renamed parameters (which warn) and the
names added back for upstream code.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import make_url, text

from macrostrat.database import Database, make_test_database_name, run_sql

CLASS = "class"  # a class whose constructor is not checked (enum, exception, ...)
ATTR = "attribute"  # a module or class attribute, not called

# (import path, name, upstream's parameters: "a, b=, *args, *, c=, **kw")
UPSTREAM: list[tuple[str, str, str]] = [
    # §1 package root
    ("macrostrat.database", "Database", "db_conn, *, echo_sql=, **kwargs"),
    ("macrostrat.database", "DatabaseMapper", "db, **kwargs"),
    ("macrostrat.database", "on_conflict", "action="),
    ("macrostrat.database", "prefix_inserts", "insert, compiler, **kw"),
    ("macrostrat.database", "run_fixtures", "connectable, fixtures, params=, **kwargs"),
    ("macrostrat.database", "run_query", "connectable, query, params=, **kwargs"),
    ("macrostrat.database", "run_sql", "connectable, sql, params=, **kwargs"),
    ("macrostrat.database", "execute", "connectable, sql, params=, stop_on_error=, **kwargs"),
    ("macrostrat.database", "reset_sequence", "db, table, column=, *, schema=, start_val="),
    ("macrostrat.database", "serial_to_identity", "db, table, column=, *, schema=, always="),
    ("macrostrat.database", "create_database", "_input, **kwargs"),
    ("macrostrat.database", "create_engine", "_input, **kwargs"),
    ("macrostrat.database", "database_exists", "url"),
    ("macrostrat.database", "drop_database", "_input, force=, allow_missing="),
    ("macrostrat.database", "get_dataframe", "connectable, filename_or_query, **kwargs"),
    ("macrostrat.database", "get_or_create", "session, model, defaults=, **kwargs"),
    ("macrostrat.database", "reflect_table", "engine, tablename, *column_args, **kwargs"),
    ("macrostrat.database", "get_database_url", "_input"),
    # §2 core
    ("macrostrat.database.core", "metadata", ATTR),
    ("macrostrat.database.core", "Database", "db_conn, *, echo_sql=, **kwargs"),
    ("macrostrat.database.core", "Database.create_tables", ""),
    ("macrostrat.database.core", "Database.automap", "**kwargs"),
    ("macrostrat.database.core", "Database.get_server_version", ""),
    ("macrostrat.database.core", "Database.session_scope", "commit="),
    ("macrostrat.database.core", "Database.run_sql", "fn, params=, **kwargs"),
    ("macrostrat.database.core", "Database.run_query", "sql, params=, **kwargs"),
    ("macrostrat.database.core", "Database.run_fixtures", "fixtures, params=, **kwargs"),
    ("macrostrat.database.core", "Database.exec_sql", "sql, params=, **kwargs"),
    ("macrostrat.database.core", "Database.get_dataframe", "*args"),
    ("macrostrat.database.core", "Database.inspector", ATTR),
    ("macrostrat.database.core", "Database.refresh_schema", "*, automap="),
    ("macrostrat.database.core", "Database.entity_names", "**kwargs"),
    ("macrostrat.database.core", "Database.get", "model, *args, **kwargs"),
    ("macrostrat.database.core", "Database.get_or_create", "model, **kwargs"),
    ("macrostrat.database.core", "Database.reflect_table", "*args, **kwargs"),
    ("macrostrat.database.core", "Database.table", ATTR),
    ("macrostrat.database.core", "Database.model", ATTR),
    ("macrostrat.database.core", "Database.mapped_classes", ATTR),
    ("macrostrat.database.core", "Database.transaction", "*, rollback=, connection=, raise_errors="),
    ("macrostrat.database.core", "Database.savepoint", "name=, rollback=, connection="),
    ("macrostrat.database.core", "Database.get_table", "name, *, schema="),
    ("macrostrat.database.core", "Database.get_model", "name, *, schema=, automap="),
    ("macrostrat.database.core", "Database.__getitem__", "name"),
    ("macrostrat.database.core", "Database.cleanup", ""),
    # §3 query
    ("macrostrat.database.query", "run_sql", "connectable, sql, params=, **kwargs"),
    ("macrostrat.database.query", "run_query", "connectable, query, params=, **kwargs"),
    ("macrostrat.database.query", "run_sql_file", "connectable, filename, params=, **kwargs"),
    ("macrostrat.database.query", "run_fixtures", "connectable, fixtures, params=, **kwargs"),
    ("macrostrat.database.query", "get_sql_files", "fixtures, recursive=, order_by_name="),
    ("macrostrat.database.query", "execute", "connectable, sql, params=, stop_on_error=, **kwargs"),
    ("macrostrat.database.query", "infer_is_sql_text", "_string"),
    ("macrostrat.database.query", "canonicalize_query", "file_or_text"),
    ("macrostrat.database.query", "get_sql_text", "sql, interpret_as_file=, echo_file_name="),
    ("macrostrat.database.query", "summarize_statement", "sql"),
    ("macrostrat.database.query", "pretty_print", "sql, **kwargs"),
    ("macrostrat.database.query", "infer_has_server_binds", "sql"),
    ("macrostrat.database.query", "escape_postgresql_cast_parameters", "sql_text"),
    ("macrostrat.database.query", "_print_error", "sql_text, err, **kwargs"),
    ("macrostrat.database.query", "OutputMode", CLASS),
    ("macrostrat.database.query", "StatementDirective", "query, params=, skip=, label="),
    ("macrostrat.database.query", "StatementDirective.skipped", "query=, params="),
    ("macrostrat.database.query", "StatementResult", "query, params=, skip=, label="),
    ("macrostrat.database.query", "StatementContext", "index, query, params, sql_text"),
    ("macrostrat.database.query", "TransformFn", ATTR),
    ("macrostrat.database.query", "RecoveryFn", ATTR),
    ("macrostrat.database.query", "Connectable", ATTR),
    # §4 utils (and the query names it re-exports "for the old import layout")
    ("macrostrat.database.utils", "DatabaseInput", ATTR),
    ("macrostrat.database.utils", "run_sql", "connectable, sql, params=, **kwargs"),
    ("macrostrat.database.utils", "run_query", "connectable, query, params=, **kwargs"),
    ("macrostrat.database.utils", "run_sql_file", "connectable, filename, params=, **kwargs"),
    ("macrostrat.database.utils", "run_fixtures", "connectable, fixtures, params=, **kwargs"),
    ("macrostrat.database.utils", "get_sql_text", "sql, interpret_as_file=, echo_file_name="),
    ("macrostrat.database.utils", "execute", "connectable, sql, params=, stop_on_error=, **kwargs"),
    ("macrostrat.database.utils", "get_database_url", "_input"),
    ("macrostrat.database.utils", "create_engine", "_input, **kwargs"),
    ("macrostrat.database.utils", "create_database", "_input, **kwargs"),
    ("macrostrat.database.utils", "database_exists", "url"),
    ("macrostrat.database.utils", "drop_database", "_input, force=, allow_missing="),
    ("macrostrat.database.utils", "allow_shutdown", "engine"),
    ("macrostrat.database.utils", "close_all_connections", "engine, database="),
    ("macrostrat.database.utils", "temporary_database", "_input, *, drop=, ensure_empty=, exists_ok=, template=, force_drop="),
    ("macrostrat.database.utils", "temp_database", "*args, **kwargs"),
    ("macrostrat.database.utils", "template_database", "_input, *, name=, force_drop=, close_source_connections="),
    ("macrostrat.database.utils", "connection_args", "_input, with_password="),
    ("macrostrat.database.utils", "db_isready", "_input, use_shell_command="),
    ("macrostrat.database.utils", "wait_for_database", "_input, *, quiet=, use_shell_command="),
    ("macrostrat.database.utils", "reflect_table", "engine, tablename, *column_args, **kwargs"),
    ("macrostrat.database.utils", "get_or_create", "session, model, defaults=, **kwargs"),
    ("macrostrat.database.utils", "get_dataframe", "connectable, filename_or_query, **kwargs"),
    ("macrostrat.database.utils", "db_session", "engine"),
    ("macrostrat.database.utils", "get_db_model", "db, model_name"),
    # §5 postgresql
    ("macrostrat.database.postgresql", "OnConflictAction", CLASS),
    ("macrostrat.database.postgresql", "on_conflict", "action="),
    ("macrostrat.database.postgresql", "prefix_inserts", "insert, compiler, **kw"),
    ("macrostrat.database.postgresql", "upsert", "table, values, *, index_elements=, on_conflict="),
    ("macrostrat.database.postgresql", "table_exists", "db, table_name, schema="),
    # §6 sequences
    ("macrostrat.database.sequences", "ResetSequenceResult", "table, column, sequence, new_value"),
    ("macrostrat.database.sequences", "ConvertToIdentityResult", "table, column, old_sequence, restart_value"),
    ("macrostrat.database.sequences", "reset_sequence", "db, table, column=, *, schema=, start_val="),
    ("macrostrat.database.sequences", "serial_to_identity", "db, table, column=, *, schema=, always="),
    ("macrostrat.database.sequences", "is_autoincrementing_column", "col"),
    ("macrostrat.database.sequences", "sequence_name_for_column", "col"),
    # §7 compat
    ("macrostrat.database.compat", "update_legacy_identifier", "identifier"),
    # §8 mapper
    ("macrostrat.database.mapper", "AutomapError", CLASS),
    ("macrostrat.database.mapper", "model_builder", ATTR),
    ("macrostrat.database.mapper", "BaseModel", ATTR),
    ("macrostrat.database.mapper", "DatabaseMapper", "db, **kwargs"),
    ("macrostrat.database.mapper", "DatabaseMapper.automap_base", ATTR),
    ("macrostrat.database.mapper", "DatabaseMapper.automap_error", ATTR),
    ("macrostrat.database.mapper", "DatabaseMapper.reflect_database", "schemas=, use_cache="),
    ("macrostrat.database.mapper", "DatabaseMapper.reflect_schema", "schema, use_cache="),
    ("macrostrat.database.mapper", "DatabaseMapper.reflect_table", "tablename, *column_args, **kwargs"),
    ("macrostrat.database.mapper", "DatabaseMapper.reflect_view", "tablename, *column_args, **kwargs"),
    ("macrostrat.database.mapper", "DatabaseMapper.register_models", "*models"),
    ("macrostrat.database.mapper", "DatabaseMapper.automap_view", "table_name, *column_args, **kwargs"),
    ("macrostrat.database.mapper.utils", "classname_for_table", "table"),
    ("macrostrat.database.mapper.utils", "_classname_for_table", "cls, table_name, table"),
    ("macrostrat.database.mapper.utils", "name_for_scalar_relationship", "base, local_cls, referred_cls, constraint"),
    ("macrostrat.database.mapper.utils", "name_for_collection_relationship", "base, local_cls, referred_cls, constraint"),
    ("macrostrat.database.mapper.utils", "trim_postfix", "target, postfix="),
    ("macrostrat.database.mapper.utils", "primary_key", "instance"),
    ("macrostrat.database.mapper.utils", "BaseCollection", CLASS),
    ("macrostrat.database.mapper.utils", "ModelCollection", "models="),
    ("macrostrat.database.mapper.utils", "ModelCollection.register", "*classes"),
    ("macrostrat.database.mapper.utils", "ModelCollection.add", "key, value"),
    ("macrostrat.database.mapper.utils", "ModelCollection.keys", ""),
    ("macrostrat.database.mapper.utils", "TableCollection", "models"),
    ("macrostrat.database.mapper.utils", "TableCollection.keys", ""),
    ("macrostrat.database.mapper.base", "ModelHelperMixins", CLASS),
    ("macrostrat.database.mapper.base", "ModelHelperMixins.to_dict", ""),
    ("macrostrat.database.mapper.base", "ModelHelperMixins.loaded_from_cache", ATTR),
    ("macrostrat.database.mapper.cache", "AutomapError", CLASS),
    ("macrostrat.database.mapper.cache", "DatabaseModelCache", "cache_file="),
    ("macrostrat.database.mapper.cache", "DatabaseModelCache.cache_file", ATTR),
    ("macrostrat.database.mapper.cache", "DatabaseModelCache._metadata_cache_filename", ATTR),
    ("macrostrat.database.mapper.cache", "DatabaseModelCache.automap_base", ""),
    # §9 transfer
    ("macrostrat.database.transfer", "pg_dump", "engine, *, command_prefix=, args=, postgres_container=, user=, stdout=, custom_format="),
    ("macrostrat.database.transfer", "pg_dump_to_file", "engine, dumpfile, **kwargs"),
    ("macrostrat.database.transfer", "pg_restore", "engine, *, create=, command_prefix=, args=, postgres_container="),
    ("macrostrat.database.transfer", "pg_restore_from_file", "dumpfile, engine, **kwargs"),
    ("macrostrat.database.transfer", "move_tables", "from_database, to_database, *, tables=, schemas=, dump_args=, restore_args=, **kwargs"),
    ("macrostrat.database.transfer.utils", "console", ATTR),
    ("macrostrat.database.transfer.utils", "_docker_local_run_args", "postgres_container="),
    ("macrostrat.database.transfer.utils", "_create_command", "engine, *command, args=, prefix=, container="),
    ("macrostrat.database.transfer.utils", "raw_database_url", "url"),
    ("macrostrat.database.transfer.utils", "_create_database_if_not_exists", "_url, *, create=, allow_exists=, overwrite="),
    ("macrostrat.database.transfer.stream_utils", "print_stream_progress", "input, out_stream=, *, verbose=, chunk_size=, prefix="),
    ("macrostrat.database.transfer.stream_utils", "print_stdout", "stream"),
    ("macrostrat.database.transfer.stream_utils", "DecodingStreamReader", "stream, encoding=, errors="),
    ("macrostrat.database.transfer.stream_utils", "DecodingStreamReader.read", "n="),
    ("macrostrat.database.transfer.stream_utils", "DecodingStreamReader.readline", ""),
    # §8/§12: errors upstream callers catch
    ("macrostrat.database.errors", "BindParameterError", CLASS),
]  # fmt: skip

Row = tuple[str, str, str]


def _ids(row: Row) -> str:
    return f"{row[0]}:{row[1]}"


# The rows are checked by the root conftest's `upstream_api` fixture.


@pytest.mark.parametrize("row", UPSTREAM, ids=_ids)
def test_name_imports_from_its_upstream_path(upstream_api: Any, row: Row) -> None:
    upstream_api.check_import(*row, silent=True)  # importing never warns


CALLABLE_ROWS = [r for r in UPSTREAM if r[2] not in (CLASS, ATTR)]


@pytest.mark.parametrize("row", CALLABLE_ROWS, ids=_ids)
def test_signature_accepts_upstream_calls(upstream_api: Any, row: Row) -> None:
    # All three forms in one test. Upstream's **kwargs were passed on (to
    # SQLAlchemy, ...), not a promise to take any name: no extra values for them.
    upstream_api.check_call_form(*row, variadic=False)


def test_table_covers_the_reference_lists() -> None:
    """The §1 root names, §3.1 query names and §11 deprecated names are all rows."""
    names = {(p, n) for p, n, _ in UPSTREAM}
    for name in [
        "Database",
        "DatabaseMapper",
        "on_conflict",
        "prefix_inserts",
        "run_fixtures",
        "run_query",
        "run_sql",
        "execute",
        "reset_sequence",
        "serial_to_identity",
        "create_database",
        "create_engine",
        "database_exists",
        "drop_database",
        "get_dataframe",
        "get_or_create",
        "reflect_table",
        "get_database_url",
    ]:
        assert ("macrostrat.database", name) in names, name
    for name in [
        "run_sql",
        "run_query",
        "run_fixtures",
        "run_sql_file",
        "StatementDirective",
        "StatementResult",
        "StatementContext",
        "OutputMode",
        "infer_is_sql_text",
        "_print_error",
        "get_sql_text",
        "canonicalize_query",
        "summarize_statement",
        "pretty_print",
        "infer_has_server_binds",
        "escape_postgresql_cast_parameters",
        "get_sql_files",
    ]:
        assert ("macrostrat.database.query", name) in names, name


# -- renamed parameters: the upstream keyword works and warns ----------------


def _new_url(database_url: str, label: str) -> str:
    url = make_url(database_url).set(database=make_test_database_name(label))
    return url.render_as_string(hide_password=False)


def test_lifecycle_functions_take_input_keyword(database_url: str) -> None:
    from macrostrat.database import utils

    url = _new_url(database_url, "compat_input")
    with pytest.warns(DeprecationWarning, match="_input"):
        assert utils.create_database(_input=url)
    try:
        with pytest.warns(DeprecationWarning, match="url="):
            assert utils.database_exists(url=url)
        with pytest.warns(DeprecationWarning, match="_input"):
            assert utils.get_database_url(_input=url).database == make_url(url).database
        with pytest.warns(DeprecationWarning, match="_input"):
            assert utils.db_isready(_input=url)
        with pytest.warns(DeprecationWarning, match="_input"):
            utils.wait_for_database(_input=url, quiet=True)
        with pytest.warns(DeprecationWarning, match="_input"):
            flags, dbname = utils.connection_args(_input=url)
        assert dbname == make_url(url).database
        assert "-h" in flags
        with pytest.warns(DeprecationWarning, match="engine="):
            utils.close_all_connections(engine=url)
    finally:
        # upstream's positional form: drop_database(url, force, allow_missing)
        with warnings.catch_warnings():
            warnings.simplefilter("error", DeprecationWarning)
            assert utils.drop_database(url, True, False)
    assert not utils.database_exists(url)
    assert utils.drop_database(url, False, True) is False  # allow_missing


def test_temporary_and_template_database_take_input_keyword(database_url: str) -> None:
    import macrostrat.database as root

    url = _new_url(database_url, "compat_temp")
    with pytest.warns(DeprecationWarning, match="_input"):
        temporary = root.temporary_database(_input=url)
    with temporary as engine:
        with engine.connect() as conn:
            assert conn.execute(text("SELECT 1")).scalar() == 1
        engine.dispose()  # a template cannot have sessions
        with pytest.warns(DeprecationWarning, match="_input"):
            template = root.template_database(_input=engine)
        with template as copy:
            assert copy.url.database != engine.url.database
    assert not root.database_exists(url)


def test_both_names_at_once_is_a_type_error(database_url: str) -> None:
    from macrostrat.database import create_engine, drop_database

    with pytest.raises(TypeError, match="both 'target' and its old name '_input'"):
        drop_database(database_url, _input=database_url)
    with pytest.raises(TypeError, match="multiple values for argument 'force'"):
        drop_database(database_url, True, force=True)
    with pytest.raises(TypeError, match="at most 3 positional"):
        drop_database(database_url, True, False, None)
    with pytest.warns(DeprecationWarning, match="create_engine"):
        engine = create_engine(_input=database_url)
    engine.dispose()


def test_database_run_sql_takes_fn_keyword(db: Database) -> None:
    with pytest.warns(DeprecationWarning, match="fn="):
        results = db.run_sql(fn="SELECT 41 + 1 AS answer")
    assert results[0].scalar() == 42


def test_small_helpers_take_upstream_keywords(db: Database) -> None:
    from psycopg import sql

    from macrostrat.database.compat import update_legacy_identifier
    from macrostrat.database.sequences import (
        is_autoincrementing_column,
        sequence_name_for_column,
    )
    from macrostrat.database.utils import get_db_model

    serial = {"name": "id", "default": "nextval('t_id_seq'::regclass)"}
    with pytest.warns(DeprecationWarning, match="col="):
        assert is_autoincrementing_column(col=serial)
    with pytest.warns(DeprecationWarning, match="col="):
        assert sequence_name_for_column(col=serial) == "t_id_seq"
    ident = sql.Identifier("x")
    assert update_legacy_identifier(identifier=ident) is ident

    db.run_sql("CREATE TABLE compat_thing (id serial PRIMARY KEY, name text)")
    db.refresh_schema()
    with pytest.warns(DeprecationWarning, match="model_name="):
        model = get_db_model(db, model_name="compat_thing")
    assert model.__table__.name == "compat_thing"


# -- names added back -------------------------------------------------------


def test_core_metadata_tables_are_created(empty_db: Database) -> None:
    from macrostrat.database import core

    table = sa.Table("compat_core_table", core.metadata, sa.Column("id", sa.Integer))
    try:
        empty_db.create_tables()
    finally:
        core.metadata.remove(table)
    assert "compat_core_table" in set(empty_db.entity_names())
    assert empty_db.metadata is not core.metadata


def test_allow_shutdown_swallows_own_termination(db: Database) -> None:
    from macrostrat.database.utils import allow_shutdown

    with allow_shutdown(db.engine) as conn:
        conn.execute(text("SELECT pg_terminate_backend(pg_backend_pid())"))
        pytest.fail("the session was not terminated")  # pragma: no cover
    # ...also through our SQL runner, as upstream used it
    with allow_shutdown(db) as conn:
        run_sql(
            conn, "SELECT pg_terminate_backend(pg_backend_pid())", raise_errors=True
        )
    with pytest.raises(sa.exc.ProgrammingError), allow_shutdown(db.engine) as conn:
        conn.execute(text("SELECT * FROM no_such_table_here"))
    assert db.run_query("SELECT 1").scalar() == 1


def test_database_input_alias() -> None:
    from macrostrat.database import engine, utils

    assert utils.DatabaseInput is engine.DatabaseInput


def test_automap_error_is_the_mapper_errors_base(db: Database) -> None:
    from macrostrat.database.errors import ModelCacheError, ModelNotFoundError
    from macrostrat.database.mapper import AutomapError
    from macrostrat.database.mapper.cache import AutomapError as FromCache

    assert FromCache is AutomapError
    assert issubclass(ModelNotFoundError, AutomapError)
    assert issubclass(ModelCacheError, AutomapError)
    with pytest.raises(AutomapError):
        db.get_model("no_such_table_anywhere")


def test_shared_base_names_and_mapper_class_attributes(db: Database) -> None:
    from sqlalchemy.ext.automap import AutomapBase

    from macrostrat.database.mapper import (
        BaseModel,
        DatabaseMapper,
        DatabaseModelCache,
        model_builder,
    )
    from macrostrat.database.mapper.base import ModelHelperMixins

    assert isinstance(model_builder, DatabaseModelCache)
    assert model_builder.cache_file is None
    assert DatabaseModelCache.cache_file is None
    assert issubclass(BaseModel, AutomapBase)
    assert issubclass(BaseModel, ModelHelperMixins)
    assert BaseModel.builder is model_builder
    assert DatabaseMapper.automap_base is BaseModel
    assert DatabaseMapper.automap_error is None
    db.run_sql("CREATE TABLE compat_base (id int PRIMARY KEY)")
    mapper = DatabaseMapper(db)
    mapper.reflect_database(["public"], False)  # upstream's positional form
    assert "compat_base" in mapper.models
    # Models never land on the shared base.
    assert mapper.automap_base is not BaseModel
    assert not list(BaseModel.metadata.tables)
    with pytest.warns(DeprecationWarning, match="reflect_view"):
        assert mapper.reflect_view("compat_base") is None


def test_assigning_a_cache_base_enables_the_cache(
    db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from macrostrat.database.mapper import DatabaseMapper, DatabaseModelCache

    cache = DatabaseModelCache(tmp_path / "cache" / "models.pickle")
    with pytest.warns(DeprecationWarning, match="automap_base"):
        base = cache.automap_base()
    assert base.builder is cache
    assert base.loaded_from_cache is False
    assert cache._metadata_cache_filename == cache.cache_file
    # Upstream's documented way to turn the cache on.
    monkeypatch.setattr(DatabaseMapper, "automap_base", base)
    db.run_sql("CREATE TABLE compat_cached (id int PRIMARY KEY)")
    db.automap()
    assert db.mapper is not None
    assert db.mapper.cache is cache
    assert cache.cache_file is not None
    assert cache.cache_file.is_file()
    assert db.model.compat_cached.__table__.name == "compat_cached"
    db.automap()  # a warm start from the file
    assert db.mapper.loaded_from_cache


def test_collections_share_upstream_base(db: Database) -> None:
    from macrostrat.database.mapper.utils import (
        BaseCollection,
        ModelCollection,
        TableCollection,
    )

    assert isinstance(db.model, BaseCollection)
    assert isinstance(db.table, BaseCollection)
    assert issubclass(ModelCollection, BaseCollection)
    assert issubclass(TableCollection, BaseCollection)

    class Listing(BaseCollection):
        def keys(self) -> list[str]:
            return ["a", "b"]

    assert repr(Listing()) == "Listing: [\n  a,\n  b\n]"


def test_bind_parameter_error_is_a_programming_error(db: Database) -> None:
    """§12 / issue item 8: upstream callers catch ``ProgrammingError`` and read ``.orig``."""
    from macrostrat.database.errors import BindParameterError

    with pytest.raises(sa.exc.ProgrammingError) as info:
        db.run_query("SELECT :missing")
    assert isinstance(info.value, BindParameterError)
    assert hasattr(info.value, "orig")


# -- transfer.utils: upstream's private command builders ----------------------


def test_docker_local_run_args() -> None:
    from macrostrat.database.transfer.utils import _docker_local_run_args

    args = _docker_local_run_args()
    assert args[:2] == ["docker", "run"]
    assert args[-1] == "postgres:15"
    assert {"-i", "--rm", "--network", "host"} <= set(args)
    assert _docker_local_run_args("mariadb:10.10")[-1] == "mariadb:10.10"


def test_create_command_shapes() -> None:
    from macrostrat.database.transfer.utils import (
        _create_command,
        _docker_local_run_args,
    )

    engine = sa.create_engine("postgresql+psycopg://me:s%40cret@db.example:5433/geo")
    cmd = _create_command(engine, "pg_dump", "-Fc", args=["--schema-only"])
    assert cmd == [
        *_docker_local_run_args("postgres:16"),
        "pg_dump",
        "-Fc",
        "postgresql://me:s%40cret@db.example:5433/geo",
        "--schema-only",
    ]
    engine.dispose()
    assert _create_command(
        "mysql+pymysql://root:pw@h:3306/d", "mysqldump", prefix=["env"]
    ) == ["env", "mysqldump", "mysql://root:pw@h:3306/d"]
    assert _create_command("postgresql://u@h/d", "psql", prefix=[])[0] == "psql"


def test_create_command_runs_local_psql(
    db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    import logging
    import shutil
    import subprocess

    from macrostrat.database.transfer.utils import _create_command

    if shutil.which("psql") is None:
        pytest.skip("requires the psql client program")
    with caplog.at_level(logging.DEBUG, logger="macrostrat.database.transfer"):
        cmd = _create_command(
            db.engine, "psql", args=["-XAtc", "SELECT 6 * 7"], prefix=[]
        )
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "42"
    password = db.engine.url.password
    if password:
        assert password not in caplog.text


def test_create_database_if_not_exists_takes_url_keyword(database_url: str) -> None:
    from macrostrat.database import drop_database
    from macrostrat.database.transfer.utils import _create_database_if_not_exists

    url = _new_url(database_url, "compat_transfer")
    with pytest.warns(DeprecationWarning, match="_url="):
        _create_database_if_not_exists(_url=url, create=True)
    drop_database(url, force=True)
