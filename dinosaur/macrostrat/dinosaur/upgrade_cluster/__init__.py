"""Upgrade a PostgreSQL cluster kept in a Docker volume to a newer major version.

`upgrade_database_cluster` is the entry point (upstream's signature, plus
keyword options); see `macrostrat.dinosaur.upgrade_cluster.upgrade` for the
steps and the data-safety checks. Needs the ``docker`` extra and an engine;
both are imported lazily.
"""

from __future__ import annotations

from typing import Any

from ..errors import DatabaseUpgradeError
from .containers import ClusterContainer, containers_using_volume
from .describe import (
    check_database_cluster_version,
    check_database_exists,
    count_database_tables,
    table_row_counts,
)
from .upgrade import (
    UpgradeResult,
    default_version_images,
    helper_image,
    upgrade_database_cluster,
)
from .utils import (
    ensure_empty_docker_volume,
    get_unused_port,
    replace_docker_volume,
    wait_for_cluster,
    wait_for_ready,
)

__all__ = [
    "ClusterContainer",
    "DatabaseUpgradeError",
    "UpgradeResult",
    "check_database_cluster_version",
    "check_database_exists",
    "containers_using_volume",
    "count_database_tables",
    "default_version_images",
    "ensure_empty_docker_volume",
    "get_unused_port",
    "helper_image",
    "replace_docker_volume",
    "table_row_counts",
    "upgrade_database_cluster",
    "wait_for_cluster",
    "wait_for_ready",
]


def __getattr__(name: str) -> Any:
    if name == "console":  # upstream's module-level Rich console, made lazily
        from rich.console import Console

        value = Console(stderr=True)
        globals()["console"] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
