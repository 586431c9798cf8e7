"""What a cluster holds: its major version, databases, user tables and row counts."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from ..cluster.docker import DATA_DIR, _import_docker
from ._images import helper_image
from .containers import ClusterContainer, volume_exists

if TYPE_CHECKING:
    from docker import DockerClient

    from macrostrat.database import Database

__all__ = [
    "USER_TABLES_SQL",
    "check_database_cluster_version",
    "check_database_exists",
    "count_database_tables",
    "list_databases",
    "list_extensions",
    "table_row_counts",
]

log = logging.getLogger(__name__)

_USER_TABLES_WHERE = """
    c.relkind IN ('r', 'p', 'm')
    AND (c.relkind <> 'm' OR c.relispopulated)
    AND n.nspname NOT IN ('pg_catalog', 'information_schema')
    AND n.nspname NOT LIKE 'pg\\_toast%'
    AND n.nspname NOT LIKE 'pg\\_temp\\_%'
    AND NOT EXISTS (
        SELECT 1 FROM pg_depend d
        WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e'
    )
"""

USER_TABLES_SQL = f"""
SELECT n.nspname, c.relname
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE {_USER_TABLES_WHERE}
ORDER BY 1, 2
"""
"""User tables (and populated materialized views): no catalogs, no extension members."""

_ROW_COUNTS_SQL = f"""
SELECT n.nspname, c.relname,
       (xpath('/row/n/text()', query_to_xml(
           format('SELECT count(*) AS n FROM %I.%I', n.nspname, c.relname),
           false, true, '')))[1]::text
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE {_USER_TABLES_WHERE}
ORDER BY 1, 2
"""

_DATABASES_SQL = (
    "SELECT datname FROM pg_database WHERE datallowconn AND NOT datistemplate "
    "ORDER BY datname"
)


def check_database_cluster_version(
    client: DockerClient, volume_name: str, *, image: str | None = None
) -> int | None:
    """The PostgreSQL major version of the cluster in volume ``volume_name``.

    Reads ``PG_VERSION`` with a throwaway container of ``image`` (which needs
    ``cat``; default: any PostgreSQL image of `default_version_images` present
    locally). Returns None when the volume does not exist (it is not created)
    or holds no cluster.
    """
    docker = _import_docker()
    if not volume_exists(client, volume_name):
        return None
    image = image or helper_image(client)
    try:
        output = client.containers.run(
            image,
            command=[f"{DATA_DIR}/PG_VERSION"],
            entrypoint=["cat"],
            volumes={volume_name: {"bind": DATA_DIR, "mode": "ro"}},
            remove=True,
            user="0",
        )
    except docker.errors.ContainerError:
        return None
    text = output.decode().strip()
    return int(text) if text.isdigit() else None


def list_databases(cluster: ClusterContainer, *, host: str | None = None) -> list[str]:
    """Names of the databases one can connect to, templates excluded."""
    return [row[0] for row in cluster.query(_DATABASES_SQL, host=host)]


def check_database_exists(container: Any, db_name: str) -> bool:
    """Whether database ``db_name`` exists in the server running in ``container``.

    ``container`` is a `ClusterContainer` or a Docker container of a postgres
    image (queried as user ``postgres`` over its local socket).
    """
    cluster = (
        container
        if isinstance(container, ClusterContainer)
        else ClusterContainer(container, "postgres")
    )
    return db_name in {
        row[0] for row in cluster.query("SELECT datname FROM pg_database")
    }


def table_row_counts(
    cluster: ClusterContainer, database: str, *, host: str | None = None
) -> dict[tuple[str, str], int]:
    """``{(schema, table): rows}`` for every user table of ``database`` (exact counts)."""
    rows = cluster.query(_ROW_COUNTS_SQL, database=database, host=host)
    return {(schema, table): int(count) for schema, table, count in rows}


def list_extensions(
    cluster: ClusterContainer, database: str, *, host: str | None = None
) -> set[str]:
    """Names of the extensions installed in ``database``."""
    rows = cluster.query(
        "SELECT extname FROM pg_extension", database=database, host=host
    )
    return {row[0] for row in rows}


def count_database_tables(db: Database) -> int:
    """The number of user tables in ``db`` (upstream counted catalog views too)."""
    from sqlalchemy import text

    with db.engine.connect() as conn:
        return int(
            conn.execute(
                text(f"SELECT count(*) FROM ({USER_TABLES_SQL}) AS t")
            ).scalar_one()
        )
