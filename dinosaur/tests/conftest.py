"""Fixtures for the dinosaur tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture
def no_docker(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Point the Docker client at a socket where no engine listens."""
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-docker.sock")


@pytest.fixture
def pair(database_url: str, database_template: str) -> Iterator[tuple[str, str]]:
    """Two fresh PostGIS databases for a migration test: ``(live, target)`` URLs."""
    from macrostrat.dinosaur.testing import clone_database

    with (
        clone_database(database_url, database_template) as live,
        clone_database(database_url, database_template) as target,
    ):
        yield live, target
