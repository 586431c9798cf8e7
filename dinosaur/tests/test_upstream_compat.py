"""Upstream ``macrostrat.dinosaur`` 4.2.0 code keeps working: names, paths, signatures.

`UPSTREAM` is generated from ``../shared/reference/api-database-dinosaur.md``
(§10 and §11): every name it lists, at the import path upstream code uses,
with upstream's parameter names (checked against the published 4.2.0 wheel).
Names the reference calls "importable but incidental" (``Database``,
``run_sql``, ``Migration``, ...) are rows too; rich's ``print`` is not
provided (see "Compatibility with upstream" in ``docs/dinosaur.md``).

Each row is checked twice: the name imports from its path, and its signature
accepts upstream's positional, keyword and required-only forms
(``inspect.signature(...).bind``), by the root conftest's ``upstream_api``
fixture. Real calls below cover renamed parameters and the names added back.
"""

from __future__ import annotations

import secrets
from typing import Any

import pytest

CLASS = "class"  # a class whose constructor is not checked
ATTR = "attribute"  # a module or class attribute, not called

# (import path, name, upstream's parameters: "a, b=, *args, *, c=, **kw")
UPSTREAM: list[tuple[str, str, str]] = [
    # §10.1 macrostrat.dinosaur
    ("macrostrat.dinosaur", "DatabaseInitializer", ATTR),
    ("macrostrat.dinosaur", "AutoMigration", "x_from, x_target, schema=, exclude_schema=, ignore_extension_versions="),
    ("macrostrat.dinosaur", "AutoMigration.changes_omitting_views", ""),
    ("macrostrat.dinosaur", "AutoMigration.apply", "quiet=, safe_only="),
    ("macrostrat.dinosaur", "AutoMigration.is_safe", ATTR),
    ("macrostrat.dinosaur", "AutoMigration.unsafe_changes", ""),
    ("macrostrat.dinosaur", "AutoMigration.safe_changes", ""),
    ("macrostrat.dinosaur", "AutoMigration.print_changes", ""),
    ("macrostrat.dinosaur", "AutoMigration.add_all_changes", "privileges="),
    ("macrostrat.dinosaur", "AutoMigration.set_safety", "safety_on"),
    ("macrostrat.dinosaur", "AutoMigration.clear", ""),
    ("macrostrat.dinosaur", "_create_migration", "db_engine, target, safe=, **kwargs"),
    ("macrostrat.dinosaur", "_target_db", "url, initializer, quiet=, redirect="),
    ("macrostrat.dinosaur", "create_migration", "database, initializer, target_url=, safe=, redirect=, **kwargs"),
    ("macrostrat.dinosaur", "needs_migration", "database, initializer"),
    ("macrostrat.dinosaur", "db_migration", "database, initializer, safe=, apply=, hide_view_changes="),
    ("macrostrat.dinosaur", "dump_schema", "engine, image_name="),
    ("macrostrat.dinosaur", "dump_schema_containerized", "container, dbname"),
    ("macrostrat.dinosaur", "create_schema_clone", "engine, db_url=, image_name="),
    ("macrostrat.dinosaur", "has_table", "engine, table"),
    ("macrostrat.dinosaur", "has_column", "engine, table, column"),
    ("macrostrat.dinosaur", "SchemaMigrationError", CLASS),
    ("macrostrat.dinosaur", "SchemaMigration", ""),
    ("macrostrat.dinosaur", "SchemaMigration.name", ATTR),
    ("macrostrat.dinosaur", "SchemaMigration.should_apply", "source, target, migrator"),
    ("macrostrat.dinosaur", "SchemaMigration.apply", "engine"),
    ("macrostrat.dinosaur", "MigrationManager", "database, _init_function, migrations=, schema="),
    ("macrostrat.dinosaur", "MigrationManager.target_url", ATTR),
    ("macrostrat.dinosaur", "MigrationManager.dry_run_url", ATTR),
    ("macrostrat.dinosaur", "MigrationManager.postgres_image_name", ATTR),
    ("macrostrat.dinosaur", "MigrationManager.schema", ATTR),
    ("macrostrat.dinosaur", "MigrationManager.add_migration", "migration"),
    ("macrostrat.dinosaur", "MigrationManager.add_module", "module"),
    ("macrostrat.dinosaur", "MigrationManager.apply_migrations", "engine, target"),
    ("macrostrat.dinosaur", "MigrationManager._pre_auto_migration", "engine, target"),
    ("macrostrat.dinosaur", "MigrationManager._run_migration", "engine, target, check="),
    ("macrostrat.dinosaur", "MigrationManager.dry_run_migration", "target"),
    ("macrostrat.dinosaur", "MigrationManager.run_migration", "dry_run=, apply="),
    ("macrostrat.dinosaur", "update_schema", "db, initializer, migrations=, **kwargs"),
    ("macrostrat.dinosaur", "database_cluster", "image_tag, *, build=, context=, optimize_for_testing=, data_volume=, user=, database=, driver=, environment=, config=, in_memory=, docker_client=, **kwargs"),
    ("macrostrat.dinosaur", "wait_for_cluster", "container, url"),
    ("macrostrat.dinosaur", "wait_for_ready", "engine, timeout="),
    ("macrostrat.dinosaur", "temp_database", "*args, **kwargs"),
    # §10.1 "also importable but incidental"
    ("macrostrat.dinosaur", "Database", "db_conn, *, echo_sql=, **kwargs"),
    ("macrostrat.dinosaur", "run_sql", "connectable, sql, params=, **kwargs"),
    ("macrostrat.dinosaur", "connection_args", "_input, with_password="),
    ("macrostrat.dinosaur", "cmd", "*args, **kwargs"),
    ("macrostrat.dinosaur", "get_inspector", "x, schema=, exclude_schema="),
    ("macrostrat.dinosaur", "Migration", "x_from, x_target, schema=, exclude_schema=, ignore_extension_versions="),
    ("macrostrat.dinosaur", "check_for_drop", "s"),
    # §10.5 cluster
    ("macrostrat.dinosaur.cluster", "database_cluster", "image_tag, *, build=, context=, optimize_for_testing=, data_volume=, user=, database=, driver=, environment=, config=, in_memory=, docker_client=, **kwargs"),
    ("macrostrat.dinosaur.cluster", "build_postgres_command", "pg_config"),
    # §10.6 upgrade_cluster
    ("macrostrat.dinosaur.upgrade_cluster", "upgrade_database_cluster", "client, cluster_volume_name, target_version, databases, version_images="),
    ("macrostrat.dinosaur.upgrade_cluster", "DatabaseUpgradeError", CLASS),
    ("macrostrat.dinosaur.upgrade_cluster", "default_version_images", ATTR),
    ("macrostrat.dinosaur.upgrade_cluster", "console", ATTR),
    ("macrostrat.dinosaur.upgrade_cluster.describe", "check_database_cluster_version", "client, volume_name"),
    ("macrostrat.dinosaur.upgrade_cluster.describe", "check_database_exists", "container, db_name"),
    ("macrostrat.dinosaur.upgrade_cluster.describe", "count_database_tables", "db"),
    ("macrostrat.dinosaur.upgrade_cluster.utils", "wait_for_ready", "engine, timeout="),
    ("macrostrat.dinosaur.upgrade_cluster.utils", "wait_for_cluster", "container, url"),
    ("macrostrat.dinosaur.upgrade_cluster.utils", "replace_docker_volume", "client, from_volume, to_volume"),
    ("macrostrat.dinosaur.upgrade_cluster.utils", "ensure_empty_docker_volume", "client, volume_name"),
    ("macrostrat.dinosaur.upgrade_cluster.utils", "get_unused_port", ""),
]  # fmt: skip

Row = tuple[str, str, str]
CALLABLE_ROWS = [r for r in UPSTREAM if r[2] not in (CLASS, ATTR)]


def _ids(row: Row) -> str:
    return f"{row[0]}:{row[1]}"


# The rows are checked by the root conftest's `upstream_api` fixture.


@pytest.mark.parametrize("row", UPSTREAM, ids=_ids)
def test_name_imports_from_its_upstream_path(upstream_api: Any, row: Row) -> None:
    upstream_api.check_import(*row, silent=True)  # importing never warns


@pytest.mark.parametrize("row", CALLABLE_ROWS, ids=_ids)
def test_signature_accepts_upstream_calls(upstream_api: Any, row: Row) -> None:
    # All three forms in one test; *args/**kwargs get no extra values, as in
    # database's table (whose `Database`, `run_sql`, ... are rows here too).
    upstream_api.check_call_form(*row, variadic=False)


def test_incidental_names_are_the_real_objects() -> None:
    import results.dbdiff
    import results.dbdiff.statements
    import results.schemainspect

    import macrostrat.database
    import macrostrat.database.utils
    import macrostrat.dinosaur as dino
    import macrostrat.utils

    assert dino.Database is macrostrat.database.Database
    assert dino.run_sql is macrostrat.database.run_sql
    assert dino.connection_args is macrostrat.database.utils.connection_args
    assert dino.cmd is macrostrat.utils.cmd
    assert dino.get_inspector is results.schemainspect.get_inspector
    assert dino.Migration is results.dbdiff.Migration
    assert dino.check_for_drop is results.dbdiff.statements.check_for_drop
    assert issubclass(dino.AutoMigration, dino.Migration)
    assert "Database" not in dino.__all__  # incidental, not advertised
    with pytest.raises(AttributeError):
        dino.print  # noqa: B018  (rich's print is not re-exported)


def test_build_postgres_command_takes_pg_config() -> None:
    from macrostrat.dinosaur.cluster import build_postgres_command

    settings = {"fsync": False, "work_mem": "8MB"}
    expected = ["postgres", "-c", "fsync=off", "-c", "work_mem=8MB"]
    assert build_postgres_command(settings) == expected
    with pytest.warns(DeprecationWarning, match="pg_config"):
        assert build_postgres_command(pg_config=settings) == expected
    assert build_postgres_command({}) is None
    with pytest.raises(TypeError, match="both"):
        build_postgres_command(settings, pg_config=settings)
    with pytest.raises(TypeError, match="missing"):
        build_postgres_command()


def test_upgrade_console_is_a_rich_console() -> None:
    from rich.console import Console

    from macrostrat.dinosaur import upgrade_cluster

    assert isinstance(upgrade_cluster.console, Console)
    assert upgrade_cluster.console is upgrade_cluster.console
    with pytest.raises(AttributeError):
        upgrade_cluster.no_such_name  # noqa: B018


def test_target_db_builds_yields_and_drops(database_url: str) -> None:
    from sqlalchemy import inspect as sa_inspect
    from sqlalchemy import make_url

    from macrostrat.database import database_exists, make_test_database_name
    from macrostrat.dinosaur import _target_db

    url = make_url(database_url).set(database=make_test_database_name("target_db"))

    def initializer(db: Any) -> None:
        print("building the schema")
        db.run_sql("CREATE TABLE thing (id int PRIMARY KEY)")

    with _target_db(url, initializer, quiet=True) as engine:
        assert sa_inspect(engine).get_table_names() == ["thing"]
    assert not database_exists(url)


def test_run_migration_takes_upstream_check(database_url: str) -> None:
    """``check`` is accepted positionally and ignored, as upstream did."""
    from sqlalchemy import make_url

    from macrostrat.database import (
        Database,
        make_test_database_name,
        temporary_database,
    )
    from macrostrat.dinosaur import MigrationManager, has_table

    def initializer(db: Any) -> None:
        db.run_sql("CREATE TABLE kept (id int PRIMARY KEY)")

    base = make_url(database_url)
    live_url = base.set(database=make_test_database_name("compat_live"))
    ideal_url = base.set(database=make_test_database_name("compat_ideal"))
    with (
        temporary_database(live_url, force_drop=True) as live,
        temporary_database(ideal_url, force_drop=True) as ideal,
        Database(ideal) as ideal_db,
        Database(live) as live_db,
    ):
        initializer(ideal_db)
        MigrationManager(live_db, initializer)._run_migration(live, ideal, True)
        assert has_table(live, "kept")


@pytest.mark.docker
def test_volume_helpers_at_their_upstream_path(
    docker_client: Any, docker_image: str
) -> None:
    from macrostrat.dinosaur.upgrade_cluster.utils import (
        ensure_empty_docker_volume,
        replace_docker_volume,
    )

    src = f"macrostrat-compat-src-{secrets.token_hex(4)}"
    dst = f"macrostrat-compat-dst-{secrets.token_hex(4)}"

    def sh(volume: str, script: str, mode: str = "rw") -> bytes:
        return docker_client.containers.run(
            docker_image,
            entrypoint=["sh", "-c", script],
            volumes={volume: {"bind": "/v", "mode": mode}},
            remove=True,
            user="0",
        )

    try:
        assert ensure_empty_docker_volume(docker_client, src).name == src
        sh(src, "echo new > /v/PG_VERSION")
        ensure_empty_docker_volume(docker_client, dst)
        sh(dst, "echo old > /v/stale")
        # upstream's positional call; the image is ours to choose
        replace_docker_volume(docker_client, src, dst, image=docker_image)
        listing = sh(dst, "cd /v && find . | sort && cat PG_VERSION", mode="ro")
        assert listing.decode().split() == [".", "./PG_VERSION", "new"]
        # the volume is recreated empty
        ensure_empty_docker_volume(docker_client, dst)
        assert sh(dst, "ls -A /v", mode="ro") == b""
    finally:
        for name in (src, dst):
            try:
                docker_client.volumes.get(name).remove(force=True)
            except Exception:
                pass
