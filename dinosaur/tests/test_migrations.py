"""Diff, apply and convergence against real PostgreSQL/PostGIS."""

from __future__ import annotations

import threading
import warnings
from collections.abc import Callable

import psycopg
import pytest
from sqlalchemy import create_engine as sa_create_engine
from sqlalchemy import text

from macrostrat.database import Database
from macrostrat.dinosaur import (
    AutoMigration,
    ConvergenceError,
    Hazard,
    MigrationStatementError,
    UnsafeMigrationError,
    apply_plan,
    check_convergence,
    create_migration,
    create_schema_clone,
    db_migration,
    dump_schema,
    has_column,
    has_table,
    needs_migration,
    strip_psql_meta_commands,
    temp_database,
    use_concurrent_indexes,
)
from macrostrat.dinosaur.diff import conninfo
from macrostrat.dinosaur.testing import clone_database

BEFORE = """
CREATE TABLE sample (id serial PRIMARY KEY, name text NOT NULL, depth numeric);
CREATE VIEW sample_names AS SELECT name FROM sample;
"""

AFTER = """
CREATE TABLE sample (
  id serial PRIMARY KEY,
  name text NOT NULL,
  depth numeric,
  note text,
  collected date DEFAULT now()
);
CREATE INDEX sample_name_idx ON sample (name);
CREATE TABLE site (id serial PRIMARY KEY, label text);
CREATE VIEW sample_names AS SELECT name, note FROM sample;
CREATE FUNCTION sample_count() RETURNS bigint LANGUAGE sql AS $$ SELECT count(*) FROM sample $$;
"""


def run(url_or_db, script: str) -> None:
    """Run a script in one go on its own autocommit connection."""
    with psycopg.connect(conninfo(url_or_db), autocommit=True) as conn:
        conn.execute(script)


def initializer(script: str) -> Callable[[Database], None]:
    def init(db: Database) -> None:
        run(db, script)

    return init


def count(url_or_db, table: str) -> int:
    with psycopg.connect(conninfo(url_or_db)) as conn:
        return conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


def leftovers(database_url: str, prefix: str) -> list[str]:
    with psycopg.connect(conninfo(database_url)) as conn:
        rows = conn.execute(
            "SELECT datname FROM pg_database WHERE datname LIKE %s", (prefix + "%",)
        ).fetchall()
    return [r[0] for r in rows]


def sessions(db: Database) -> int:
    """Sessions on ``db``'s database other than the asking one."""
    with psycopg.connect(conninfo(db)) as conn:
        return conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid()"
        ).fetchone()[0]


@pytest.fixture
def live(empty_db: Database) -> Database:
    run(empty_db, BEFORE)
    run(
        empty_db,
        "INSERT INTO sample (name, depth) SELECT 's' || i, i FROM generate_series(1, 50) i",
    )
    empty_db.engine.dispose()
    return empty_db


def test_create_migration_finishes_and_cleans_up(live, database_url, database_template):
    """Weakness 25: it returned from inside the target's block and could not drop it."""
    m = create_migration(live, initializer(AFTER), template=database_template)
    assert isinstance(m, AutoMigration)
    sql = "\n".join(m.statements)
    assert 'add column "note" text' in sql
    assert "sample_name_idx" in sql
    assert leftovers(database_url, "dinosaur_target_") == []
    # weakness 28: no session (and so no lock) is left on the live database
    assert sessions(live) == 0


def test_create_migration_drops_target_when_initializer_fails(live, database_url):
    def broken(db: Database) -> None:
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        create_migration(live, broken)
    assert leftovers(database_url, "dinosaur_target_") == []


def test_needs_migration_means_what_it_says(live, database_template):
    """Weakness 26: upstream returned True when *no* migration was needed."""
    assert needs_migration(live, initializer(AFTER), template=database_template) is True
    assert (
        needs_migration(live, initializer(BEFORE), template=database_template) is False
    )


def test_safe_migration_keeps_every_row(live, database_template):
    m = create_migration(live, initializer(AFTER), template=database_template)
    assert m.is_safe, [p for p in m.plan if p.unsafe]
    m.apply(check_convergence=True)
    assert count(live, "sample") == 50
    assert count(live, "sample_names") == 50
    assert has_column(live.engine, "sample", "note")
    assert has_table(live, "site")
    assert not needs_migration(live, initializer(AFTER), template=database_template)
    live.engine.dispose()  # has_table/has_column used the caller's own pool
    assert sessions(live) == 0


def test_view_creation_is_planned_once(live, database_template):
    """Weakness 27: safe_changes yielded view creations twice."""
    m = create_migration(live, initializer(AFTER), template=database_template)
    creations = [
        s for s in m.safe_changes() if "view" in s.lower() and "create" in s.lower()
    ]
    assert len(creations) == 1
    assert len(list(m.safe_changes())) == len(m.statements)


def test_unsafe_plan_is_refused_and_lists_hazards(live, database_template):
    target = "CREATE TABLE sample (id serial PRIMARY KEY, name varchar(3) NOT NULL);"
    m = create_migration(live, initializer(target), template=database_template)
    assert not m.is_safe
    with pytest.raises(UnsafeMigrationError) as info:
        m.apply()
    assert {"DELETES_DATA", "REWRITES_DATA"} <= set(info.value.hazards)
    assert 'drop column "depth"' in str(info.value)
    assert count(live, "sample") == 50
    assert has_column(live, "sample", "depth")


def test_unsafe_plan_applies_when_hazards_are_allowed(live, database_template):
    target = "CREATE TABLE sample (id serial PRIMARY KEY, name text NOT NULL);"
    m = create_migration(live, initializer(target), template=database_template)
    assert {h for p in m.plan for h in p.unsafe_hazards()} == {Hazard.DELETES_DATA}
    with pytest.raises(UnsafeMigrationError):
        m.apply(allow_hazards=["REWRITES_DATA"])
    m.apply(allow_hazards=["deletes_data"], check_convergence=True)
    assert not has_column(live, "sample", "depth")
    assert count(live, "sample") == 50


def test_safe_only_skips_unsafe_statements(live, database_template):
    target = BEFORE.replace("depth numeric", "extra int")
    m = create_migration(live, initializer(target), template=database_template)
    m.apply(safe_only=True)
    assert has_column(live, "sample", "extra")
    assert has_column(live, "sample", "depth")


def test_failing_statement_rolls_back_everything_and_is_named(live):
    """Weakness 27: statement errors were swallowed and migrations half-applied."""
    statements = [
        "ALTER TABLE sample ADD COLUMN a int",
        "CREATE TABLE other (id int)",
        "ALTER TABLE sample ADD COLUMN b int REFERENCES nowhere (id)",
    ]
    with pytest.raises(MigrationStatementError) as info:
        apply_plan(live, statements)
    assert info.value.index == 2
    assert "nowhere" in str(info.value)
    assert isinstance(info.value.__cause__, psycopg.errors.UndefinedTable)
    assert not has_column(live, "sample", "a")
    assert not has_table(live, "other")


def test_lock_timeout_fails_instead_of_hanging(live):
    holder = psycopg.connect(conninfo(live))
    try:
        holder.execute("LOCK TABLE sample IN ACCESS EXCLUSIVE MODE")
        with pytest.raises(MigrationStatementError) as info:
            apply_plan(
                live, ["ALTER TABLE sample ADD COLUMN c int"], lock_timeout="200ms"
            )
        assert isinstance(info.value.__cause__, psycopg.errors.LockNotAvailable)
    finally:
        holder.rollback()
        holder.close()


def test_concurrent_index_runs_outside_the_transaction(live):
    plan = apply_plan(
        live,
        [
            "CREATE INDEX CONCURRENTLY sample_depth_idx ON sample (depth)",
            "ALTER TABLE sample ADD COLUMN d int",
        ],
    )
    assert [p.transactional for p in plan] == [True, False]
    assert has_column(live, "sample", "d")
    with psycopg.connect(conninfo(live)) as conn:
        valid = conn.execute(
            "SELECT indisvalid FROM pg_index WHERE indexrelid = 'sample_depth_idx'::regclass"
        ).fetchone()[0]
    assert valid


def test_convergence_error_says_what_is_left(live, database_template):
    m = create_migration(live, initializer(AFTER), template=database_template)
    with pytest.raises(ConvergenceError) as info:
        check_convergence(live, m.s_target)
    assert "note" in str(info.value)
    assert info.value.remaining


def test_target_may_be_a_database(live, database_url, database_template):
    with clone_database(database_url, database_template) as other:
        run(other, BEFORE.replace("depth numeric", "depth numeric, x int"))
        m = create_migration(live, other)
    assert any('add column "x"' in s for s in m.statements)


@pytest.mark.parametrize("kind", ["engine", "connection", "database", "url"])
def test_has_table_and_column_accept_every_connectable(live, kind):
    """Weakness 30: an Engine raised AttributeError."""
    engine = sa_create_engine(
        conninfo(live).replace("postgresql://", "postgresql+psycopg://", 1)
    )
    try:
        if kind == "engine":
            target = engine
        elif kind == "database":
            target = live
        elif kind == "url":
            target = engine.url
        else:
            target = engine.connect()
        assert has_table(target, "sample")
        assert has_table(target, "public.sample")
        assert has_table(target, '"public"."sample"')
        assert has_table(target, "sample_names")
        assert not has_table(target, "missing")
        assert not has_table(target, "missing_schema.sample")
        assert has_column(target, "sample", "depth")
        assert not has_column(target, "sample", "missing")
        assert not has_column(target, "missing", "depth")
        if kind == "connection":
            target.close()
    finally:
        engine.dispose()


def test_has_table_sees_a_connections_own_transaction(live):
    engine = sa_create_engine(
        conninfo(live).replace("postgresql://", "postgresql+psycopg://", 1)
    )
    try:
        with engine.connect() as conn:
            conn.execute(text("CREATE TABLE pending (id int)"))
            assert has_table(conn, "pending")
            conn.rollback()
            assert not has_table(conn, "pending")
    finally:
        engine.dispose()


def test_dump_schema_without_password(live, monkeypatch):
    """Weakness 30: a URL without a password raised TypeError; the env was replaced."""
    monkeypatch.setenv("MACROSTRAT_MARKER", "1")
    url = live.engine.url
    if url.password:
        monkeypatch.setenv("PGPASSWORD", url.password)
    text_ = dump_schema(url.set(password=None))
    assert "CREATE TABLE public.sample" in text_


def test_strip_psql_meta_commands():
    script = "\\restrict abc\nCREATE TABLE a (id int);\n\\unrestrict abc\n"
    assert strip_psql_meta_commands(script).strip() == "CREATE TABLE a (id int);"


def test_create_schema_clone_copies_schema_not_data(live, database_url):
    with create_schema_clone(live.engine) as clone:
        assert has_table(clone, "sample")
        assert count(clone, "sample") == 0
        assert not needs_migration(clone, live)
        clone_name = clone.url.database
    assert clone_name not in leftovers(database_url, "dinosaur_clone_")


def test_temp_database_alias_warns(database_url):
    from sqlalchemy.engine import make_url

    url = make_url(database_url).set(database="dinosaur_temp_alias_test")
    with pytest.warns(DeprecationWarning, match="temporary_database"):
        ctx = temp_database(url, force_drop=True)
    with ctx as engine:
        assert engine.url.database == "dinosaur_temp_alias_test"
    assert leftovers(database_url, "dinosaur_temp_alias") == []


def test_db_migration_prints_plan_with_hazards(live, database_template, capsys):
    target = "CREATE TABLE sample (id serial PRIMARY KEY, name text NOT NULL);"
    db_migration(live, initializer(target), template=database_template)
    out = capsys.readouterr()
    assert "===MIGRATION BELOW THIS LINE===" in out.err
    assert "-- UNSAFE DELETES_DATA" in out.out
    assert 'drop column "depth"' in out.out
    assert has_column(live, "sample", "depth")


def test_db_migration_apply_refuses_unsafe_unless_not_safe(live, database_template):
    target = "CREATE TABLE sample (id serial PRIMARY KEY, name text NOT NULL);"
    with pytest.raises(UnsafeMigrationError):
        db_migration(live, initializer(target), apply=True, template=database_template)
    db_migration(
        live, initializer(target), apply=True, safe=False, template=database_template
    )
    assert not has_column(live, "sample", "depth")


def test_inspection_leaves_no_locks_for_other_ddl(live, database_template):
    """Weakness 28: the inspection connection held AccessShareLocks on views."""
    m = create_migration(live, initializer(AFTER), template=database_template)
    done = threading.Event()

    def ddl() -> None:
        run(
            live,
            "SET lock_timeout = '2s'; DROP VIEW sample_names; ALTER TABLE sample ADD COLUMN z int",
        )
        done.set()

    t = threading.Thread(target=ddl)
    t.start()
    t.join(10)
    assert done.is_set()
    assert m.statements
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert sessions(live) == 0


def test_apply_reports_what_did_not_converge(live, database_template):
    target = BEFORE.replace("depth numeric", "extra int")
    m = create_migration(live, initializer(target), template=database_template)
    with pytest.raises(ConvergenceError) as info:
        m.apply(safe_only=True, check_convergence=True)
    assert any('drop column "depth"' in s for s in info.value.remaining)
    assert has_column(live, "sample", "extra")


def test_private_create_migration_on_two_databases(
    live, database_url, database_template
):
    from macrostrat.dinosaur import _create_migration

    with clone_database(database_url, database_template) as other:
        run(other, AFTER)
        m = _create_migration(live.engine, other)
        assert m.statements
        assert leftovers(database_url, "dinosaur_target_") == []


class FakeContainer:
    """Stands in for a docker-py Container: records the command, returns canned output."""

    def __init__(self, code: int, stdout: bytes, stderr: bytes) -> None:
        self.result = (code, (stdout, stderr))
        self.calls: list[tuple] = []

    def exec_run(self, cmd, **kwargs):
        self.calls.append((cmd, kwargs))
        return self.result


def test_dump_schema_containerized():
    """Weakness 30: upstream passed dbname as exec_run's stdout argument."""
    from macrostrat.dinosaur import MigrationError, dump_schema_containerized

    ok = FakeContainer(0, b"CREATE TABLE a ();\n", b"")
    assert dump_schema_containerized(ok, "app") == "CREATE TABLE a ();\n"
    cmd, kwargs = ok.calls[0]
    assert cmd[0] == "pg_dump"
    assert cmd[-1] == "app"
    assert "--schema-only" in cmd
    assert kwargs == {"demux": True}
    bad = FakeContainer(1, b"", b'database "app" does not exist')
    with pytest.raises(MigrationError, match='database "app" does not exist'):
        dump_schema_containerized(bad, "app")


def test_dump_schema_failure_is_an_error(live):
    from macrostrat.dinosaur import MigrationError

    with pytest.raises(MigrationError, match="pg_dump failed"):
        dump_schema(live.engine.url.set(database="no_such_database_here"))


def test_schema_limits_the_diff(live, database_template):
    run(
        live,
        "CREATE SCHEMA other; CREATE TABLE other.keep (id int); INSERT INTO other.keep VALUES (1)",
    )
    everything = create_migration(live, initializer(AFTER), template=database_template)
    assert any('"other"' in s for s in everything.statements)
    public = create_migration(
        live, initializer(AFTER), template=database_template, schema="public"
    )
    assert public.statements
    assert not any('"other"' in s for s in public.statements)
    public.apply(check_convergence=True)
    assert count(live, "other.keep") == 1
    excluded = create_migration(
        live, initializer(AFTER), template=database_template, exclude_schema="other"
    )
    assert list(excluded.statements) == []


def test_domains_are_created_before_use_and_dropped_last(live, database_template):
    target = "CREATE DOMAIN depth_m AS numeric CHECK (VALUE >= 0);\n" + BEFORE.replace(
        "depth numeric", "depth numeric, depth2 depth_m"
    )
    m = create_migration(live, initializer(target), template=database_template)
    text_ = "\n".join(m.statements)
    assert text_.index("depth_m") < text_.index('add column "depth2"')
    m.apply(check_convergence=True)
    back = create_migration(live, initializer(BEFORE), template=database_template)
    assert "drop domain" in back.statements[-1].lower()
    back.apply(allow_hazards=["DELETES_DATA"], check_convergence=True)


def index_valid(db, name: str) -> bool | None:
    with psycopg.connect(conninfo(db)) as conn:
        row = conn.execute(
            "SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
            "WHERE c.relname = %s",
            (name,),
        ).fetchone()
    return None if row is None else row[0]


def test_concurrent_indexes_build_outside_the_transaction(live, database_template):
    m = create_migration(live, initializer(AFTER), template=database_template)
    plan = use_concurrent_indexes(m.plan)
    (index,) = [p for p in plan if "sample_name_idx" in p.sql]
    assert "CONCURRENTLY" in index.sql
    assert not index.transactional
    assert Hazard.IMPACTS_DATABASE_PERFORMANCE not in index.hazards
    m.apply(concurrent_indexes=True, check_convergence=True)
    assert index_valid(live, "sample_name_idx") is True
    assert count(live, "sample") == 50


def test_failed_concurrent_build_leaves_no_invalid_index(live):
    run(live, "INSERT INTO sample (name) VALUES ('s1')")  # a duplicate name
    with pytest.raises(MigrationStatementError) as info:
        apply_plan(
            live,
            ["CREATE UNIQUE INDEX sample_name_key ON public.sample (name)"],
            allow_hazards=["MAY_FAIL_ON_EXISTING_DATA"],
            concurrent_indexes=True,
        )
    assert "CONCURRENTLY" in info.value.statement
    assert index_valid(live, "sample_name_key") is None


def test_an_existing_target_or_clone_database_is_never_replaced_unasked(
    database_url: str,
) -> None:
    """Issue 16: no path of ours drops a database it did not create unasked."""
    from sqlalchemy import make_url as _make_url

    from macrostrat.database import (
        create_database,
        create_engine,
        database_exists,
        drop_database,
    )
    from macrostrat.database.errors import DatabaseExistsError
    from macrostrat.dinosaur.diff import create_migration
    from macrostrat.dinosaur.legacy import create_schema_clone

    url = _make_url(database_url).set(database="dinosaur_precious")
    create_database(url)
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(
                text("CREATE TABLE keep (id int); INSERT INTO keep VALUES (1)")
            )
        with pytest.raises(DatabaseExistsError, match="replace_target=True"):
            create_migration(database_url, lambda db: None, target_url=url)
        clone = create_schema_clone(database_url, db_url=url)
        with pytest.raises(DatabaseExistsError, match="replace_existing=True"):
            clone.__enter__()
        with engine.connect() as conn:  # still there, data and all
            assert conn.execute(text("SELECT id FROM keep")).scalar() == 1
        engine.dispose()
        create_migration(
            database_url, lambda db: None, target_url=url, replace_target=True
        )  # asked for: replaced, then dropped
        assert not database_exists(url)
    finally:
        engine.dispose()
        drop_database(url, allow_missing=True, force=True)
