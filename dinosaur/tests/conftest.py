"""Fixtures for the dinosaur tests."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def no_docker(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Point the Docker client at a socket where no engine listens."""
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-docker.sock")
