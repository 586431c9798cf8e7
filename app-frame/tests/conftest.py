"""Fixtures for the app-frame tests: a recording `docker` stand-in, a clean environment.

Most tests of compose-driving commands must not depend on a Docker engine
(they also run where none answers, and must not start real containers), so
they put a recording stand-in `docker` executable first on PATH (see
`fake_docker`) and check the exact command lines. The real path is covered by
`test_docker_engine.py`, which runs only where an engine answers.
"""

from __future__ import annotations

import importlib.util
import json
import os
import stat
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import pytest

from macrostrat.app_frame.compose import forget_compose_command

REPO = Path(__file__).resolve().parents[2]
DEMO_DIR = REPO / "examples" / "app-frame-demo"

_STAND_IN = r'''#!{python}
"""Recording stand-in for `{name}` (app-frame tests that must not need an engine)."""
import json, os, sys, time

HAS_COMPOSE = {has_compose}
prog = os.path.basename(sys.argv[0])
argv = sys.argv[1:]
prefixes = ("COMPOSE_", "DOCKER_", "DRY_RUN") + tuple(
    p for p in os.environ.get("FAKE_DOCKER_ENV_PREFIXES", "").split(",") if p
)
entry = {{
    "prog": prog,
    "argv": argv,
    "cwd": os.getcwd(),
    "pid": os.getpid(),
    "env": {{k: v for k, v in os.environ.items() if k.startswith(prefixes)}},
}}
with open(os.environ["FAKE_DOCKER_LOG"], "a") as log:
    log.write(json.dumps(entry) + "\n")
if prog == "docker":
    if argv[:1] != ["compose"] or not HAS_COMPOSE:
        sys.stderr.write("docker: unknown command: docker " + " ".join(argv) + "\n")
        sys.exit(1)
    argv = argv[1:]
sub = argv[0] if argv else ""
if prog == "docker-compose" and sub == "logs" and any(
    a.startswith("--since") for a in argv
):
    # Like docker-compose 1.x: an unknown option prints the usage, exits 0.
    print("View output from containers.\n\nUsage: logs [options] [--] [SERVICE...]")
    sys.exit(0)
if sub == "version":
    print("Docker Compose version v2.99.0-stand-in")
    sys.exit(0)
if sub == "ps" and os.environ.get("FAKE_DOCKER_RUNNING"):
    print("\n".join(os.environ["FAKE_DOCKER_RUNNING"].split(",")))
if sub == "logs" and "-f" in argv:
    print("stand-in: following logs", flush=True)
    while True:
        time.sleep(0.2)
codes = json.loads(os.environ.get("FAKE_DOCKER_EXIT_CODES", "{{}}"))
sys.exit(int(codes.get(sub, codes.get("*", 0))))
'''


def write_stand_in(
    directory: Path, name: str = "docker", has_compose: bool = True
) -> Path:
    """Write a recording stand-in for `docker` or `docker-compose` into `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(
        _STAND_IN.format(python=sys.executable, name=name, has_compose=has_compose)
    )
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


@dataclass
class FakeDocker:
    """The recording stand-in: where it is and what it was asked to do."""

    bin_dir: Path
    log: Path
    monkeypatch: pytest.MonkeyPatch

    def entries(self) -> list[dict]:
        """Every recorded call, including `compose version` probes."""
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines()]

    def calls(self) -> list[list[str]]:
        """The compose arguments of each call (after `docker compose`), probes excluded."""
        result = []
        for entry in self.entries():
            argv = entry["argv"][1:] if entry["prog"] == "docker" else entry["argv"]
            if argv[:1] != ["version"]:
                result.append(argv)
        return result

    def compose_entries(self) -> list[dict]:
        """Recorded calls other than `compose version` probes."""
        return [
            e
            for e in self.entries()
            if (e["argv"][1:] if e["prog"] == "docker" else e["argv"])[:1]
            != ["version"]
        ]

    def exit_codes(self, **codes: int) -> None:
        """Make subcommands exit with these codes (`ps=3`, or `_all=1` for any)."""
        if "_all" in codes:
            codes["*"] = codes.pop("_all")
        self.monkeypatch.setenv("FAKE_DOCKER_EXIT_CODES", json.dumps(codes))

    def running(self, *services: str) -> None:
        """Make `compose ps` report these services as running."""
        self.monkeypatch.setenv("FAKE_DOCKER_RUNNING", ",".join(services))


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Restore os.environ and the cwd after each test; forget the detected Compose."""
    saved = dict(os.environ)
    cwd = os.getcwd()
    for key in (
        "DRY_RUN",
        "COMPOSE_FILE",
        "COMPOSE_PROJECT_NAME",
        "COMPOSE_PATH_SEPARATOR",
    ):
        monkeypatch.delenv(key, raising=False)
    forget_compose_command()
    yield
    os.chdir(cwd)
    os.environ.clear()
    os.environ.update(saved)
    forget_compose_command()


@pytest.fixture
def fake_docker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeDocker:
    """A recording stand-in `docker` (with a `compose` subcommand) first on PATH.

    It stands in for Docker Compose because no compose engine runs on the test
    machines. Each call appends its argv, cwd, pid and the COMPOSE_*, DOCKER_*,
    DRY_RUN and `FAKE_DOCKER_ENV_PREFIXES` variables to a JSON-lines log, and
    exits with the code chosen by `exit_codes` (0 by default). `compose logs -f`
    runs until it is killed, like the real one.
    """
    bin_dir = tmp_path / "fake-bin"
    write_stand_in(bin_dir, "docker")
    log = tmp_path / "docker-calls.jsonl"
    monkeypatch.setenv("FAKE_DOCKER_LOG", str(log))
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    return FakeDocker(bin_dir, log, monkeypatch)


@pytest.fixture
def stand_in_writer():
    """`write_stand_in(directory, name="docker", has_compose=True)`: make a stand-in.

    For tests that control PATH themselves (compose flavour detection); the
    stand-ins record their calls like `fake_docker` does.
    """
    return write_stand_in


@pytest.fixture
def demo_module() -> ModuleType:
    """A fresh import of the example app (examples/app-frame-demo/demo_app.py)."""
    spec = importlib.util.spec_from_file_location(
        "app_frame_demo_under_test", DEMO_DIR / "demo_app.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def repo_root() -> Path:
    """The repository's root folder."""
    return REPO


@pytest.fixture
def demo_dir() -> Path:
    """The example app's folder."""
    return DEMO_DIR
