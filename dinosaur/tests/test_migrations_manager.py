"""Hand-written migrations, their ordering and the MigrationManager flow."""

from __future__ import annotations

import sys
import types

import psycopg
import pytest
from sqlalchemy import text

from macrostrat.database import Database
from macrostrat.dinosaur import (
    ConvergenceError,
    MigrationManager,
    MigrationStatus,
    SchemaMigration,
    SchemaMigrationError,
    UnsafeMigrationError,
    check_convergence,
    column_exists,
    column_type_is,
    create_migration,
    has_column,
    order_migrations,
    table_exists,
    update_schema,
)
from macrostrat.dinosaur.diff import conninfo

BEFORE = """
CREATE TABLE sample (id serial PRIMARY KEY, name text NOT NULL, depth numeric);
CREATE VIEW deep_samples AS SELECT id, name, depth FROM sample WHERE depth > 10;
"""

AFTER = """
CREATE TABLE sample (id serial PRIMARY KEY, name text NOT NULL, depth_m numeric, note text);
CREATE VIEW deep_samples AS SELECT id, name, depth_m FROM sample WHERE depth_m > 10;
CREATE TABLE site (id serial PRIMARY KEY, label text);
"""


def run(target, script: str) -> None:
    with psycopg.connect(conninfo(target), autocommit=True) as conn:
        conn.execute(script)


def init(db: Database) -> None:
    run(db, AFTER)


class RenameDepth(SchemaMigration):
    name = "rename-depth"
    preconditions = (column_exists("sample", "depth"),)
    postconditions = (
        column_exists("sample", "depth_m"),
        ~column_exists("sample", "depth"),
    )

    def apply(self, engine) -> None:
        with engine.begin() as conn:
            conn.execute(text("ALTER TABLE sample RENAME COLUMN depth TO depth_m"))


class A(SchemaMigration):
    pass


class B(SchemaMigration):
    depends_on = (A,)


class C(SchemaMigration):
    depends_on = ("B", "A")


def test_order_follows_dependencies():
    assert [m.key for m in order_migrations([C(), B(), A()])] == ["A", "B", "C"]
    assert [m.key for m in order_migrations([A(), B(), C()])] == ["A", "B", "C"]


def test_cycle_is_an_error_that_names_it():
    class X(SchemaMigration):
        depends_on = ("Y",)

    class Y(SchemaMigration):
        depends_on = ("X",)

    with pytest.raises(SchemaMigrationError, match="cycle: X -> Y -> X"):
        order_migrations([X(), Y()])


def test_unknown_dependency_and_duplicate_names():
    with pytest.raises(SchemaMigrationError, match="unknown migration 'A'"):
        order_migrations([B()])
    with pytest.raises(SchemaMigrationError, match="two migrations are named 'A'"):
        order_migrations([A(), A()])


def test_default_should_apply_is_false_without_conditions():
    assert A().should_apply(None, None, None) is False


def test_add_migration_and_module():
    manager = MigrationManager(None, init, migrations=[A, B()])
    manager.add_migration(C)
    with pytest.raises(TypeError):
        manager.add_migration(int)
    assert [m.key for m in manager.migrations] == ["A", "B", "C"]
    module = types.ModuleType("app_migrations")
    exec(
        "from macrostrat.dinosaur import SchemaMigration\n"
        "class M1(SchemaMigration):\n    pass\n",
        module.__dict__,
    )
    sys.modules["app_migrations"] = module
    try:
        other = MigrationManager(None, init)
        other.add_module(module)
        assert [m.key for m in other.migrations] == ["M1"]
    finally:
        del sys.modules["app_migrations"]


@pytest.fixture
def live(empty_db: Database) -> Database:
    run(empty_db, BEFORE)
    run(
        empty_db,
        "INSERT INTO sample (name, depth) SELECT 's' || i, i FROM generate_series(1, 40) i",
    )
    return empty_db


def test_statuses_and_conditions(live):
    m = RenameDepth()
    assert m.status(live.engine) is MigrationStatus.CAN_APPLY
    assert str(m.status(live.engine)) == "can apply"
    assert table_exists("sample")(live.engine)
    assert column_type_is("sample", "depth", "numeric")(live.engine)
    assert not column_type_is("sample", "name", "integer")(live.engine)
    m.apply(live.engine)
    assert m.status(live.engine) is MigrationStatus.APPLIED
    assert MigrationManager(live, init, migrations=[m]).statuses() == {
        "rename-depth": MigrationStatus.APPLIED
    }

    class NeedsSite(SchemaMigration):
        preconditions = (table_exists("site"),)

    assert NeedsSite().status(live.engine) is MigrationStatus.CANNOT_APPLY


def test_manager_runs_hand_written_then_automatic_and_keeps_data(
    live, database_template
):
    """Weakness 28: DDL in a hand-written migration hung on the diff's locks (views)."""
    manager = MigrationManager(live, init, migrations=[RenameDepth])
    manager.target_template = database_template
    manager.run_migration(dry_run=True, lock_timeout="2s")
    assert has_column(live, "sample", "depth_m")
    assert has_column(live, "sample", "note")
    assert not has_column(live, "sample", "depth")
    with psycopg.connect(conninfo(live)) as conn:
        assert conn.execute("SELECT count(*), sum(depth_m) FROM sample").fetchone() == (
            40,
            820,
        )
        assert conn.execute("SELECT count(*) FROM deep_samples").fetchone()[0] == 30
    assert manager.statuses(live.engine) == {"rename-depth": MigrationStatus.APPLIED}


def test_manager_refuses_unsafe_automatic_changes(live, database_template):
    manager = MigrationManager(live, init)  # no hand-written rename: drop + add
    manager.target_template = database_template
    with pytest.raises(UnsafeMigrationError) as info:
        manager.run_migration(dry_run=False)
    assert "DELETES_DATA" in info.value.hazards
    assert has_column(live, "sample", "depth")
    with psycopg.connect(conninfo(live)) as conn:
        assert conn.execute("SELECT count(*) FROM sample").fetchone()[0] == 40


def test_destructive_migration_needs_allowance(live, database_template):
    class DropDepth(SchemaMigration):
        destructive = True
        preconditions = (column_exists("sample", "depth"),)
        postconditions = (~column_exists("sample", "depth"),)

        def apply(self, engine) -> None:
            with engine.begin() as conn:
                conn.execute(text("ALTER TABLE sample DROP COLUMN depth CASCADE"))

    manager = MigrationManager(live, init, migrations=[DropDepth])
    manager.target_template = database_template
    with pytest.raises(SchemaMigrationError, match="destructive"):
        manager.run_migration(dry_run=False)
    assert has_column(live, "sample", "depth")
    manager.run_migration(dry_run=False, allow_destructive=True)
    assert not has_column(live, "sample", "depth")
    assert has_column(live, "sample", "depth_m")


def test_failing_migration_and_unmet_postconditions(live, database_template):
    class Broken(SchemaMigration):
        preconditions = (table_exists("sample"),)
        postconditions = (table_exists("never"),)

        def apply(self, engine) -> None:
            pass

    class Raises(SchemaMigration):
        def should_apply(self, source, target, migrator) -> bool:
            return True

        def apply(self, engine) -> None:
            raise RuntimeError("nope")

    manager = MigrationManager(live, init, migrations=[Broken])
    manager.target_template = database_template
    with pytest.raises(
        SchemaMigrationError, match="postconditions do not hold: table never exists"
    ):
        manager.run_migration(dry_run=False)
    manager = MigrationManager(live, init, migrations=[Raises])
    manager.target_template = database_template
    with pytest.raises(SchemaMigrationError, match="'Raises' failed: nope") as info:
        manager.run_migration(dry_run=False)
    assert isinstance(info.value.__cause__, RuntimeError)


def test_update_schema(live, database_template, monkeypatch):
    monkeypatch.setattr(MigrationManager, "target_template", database_template)
    update_schema(live, init, migrations=[RenameDepth], dry_run=False)
    assert has_column(live, "sample", "note")


def test_drift_after_migrating_is_reported(live, database_template):
    manager = MigrationManager(live, init, migrations=[RenameDepth])
    manager.target_template = database_template
    manager.run_migration(dry_run=False)
    run(live, "ALTER TABLE sample ADD COLUMN stray int")
    m = create_migration(live, init, template=database_template)
    with pytest.raises(ConvergenceError, match="stray"):
        check_convergence(live, m.s_target)


@pytest.fixture
def local_binaries() -> None:
    from macrostrat.dinosaur.cluster import find_postgres_binaries
    from macrostrat.dinosaur.errors import PostgresNotFoundError

    try:
        find_postgres_binaries()
    except PostgresNotFoundError:
        pytest.skip("requires local PostgreSQL server binaries")


def test_dry_run_on_a_throwaway_cluster(live, database_template, local_binaries):
    from macrostrat.dinosaur import create_schema_clone

    with create_schema_clone(live.engine, cluster="local") as clone:
        assert clone.url.port != live.engine.url.port
        assert has_column(clone, "sample", "depth")
        with psycopg.connect(conninfo(clone)) as conn:
            assert conn.execute("SELECT count(*) FROM sample").fetchone()[0] == 0

    manager = MigrationManager(live, init, migrations=[RenameDepth])
    manager.target_template = database_template
    manager.dry_run_cluster = "local"
    manager.run_migration(dry_run=True)
    assert has_column(live, "sample", "depth_m")
