"""Fixtures: throwaway uv workspaces under git, and a loopback package index.

Every test runs the real `uv` and `git`. Nothing reaches an outside network:
workspaces have no third-party dependencies and build with uv's bundled
`uv_build`, `UV_OFFLINE=1` is set (publish tests clear it, since `uv publish`
refuses to run offline, and point it at the loopback index instead), and
`MONO_NO_INDEX_CHECK=1` keeps `mono status`/`publish` from asking PyPI about
released versions; the `index` fixture clears it and sets `MONO_INDEX_URL`
to the loopback index's JSON API.
"""

from __future__ import annotations

import email.parser
import email.policy
import hashlib
import http.server
import json
import os
import re
import subprocess
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from textwrap import dedent

import pytest
from typer.testing import CliRunner, Result

from macrostrat.package_tools import mono

CLASSIFIERS = ["Programming Language :: Python :: 3", "Typing :: Typed"]

# name, folder, version, dependencies
DEFAULT_PACKAGES: list[tuple[str, str, str, list[str]]] = [
    ("acme.core", "core", "1.0.0", []),
    ("acme.db", "db", "2.1.0", ["acme.core>=1.0.0,<2"]),
    ("acme.app", "app", "0.3.0", ["acme.db>=2.1.0", "acme.core>=1.0.0,<2"]),
]


def _git(root: Path, *args: str) -> str:
    """Run git in `root`; fail the test if it fails."""
    result = subprocess.run(
        ["git", *args], cwd=root, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, f"git {' '.join(args)}: {result.stderr}"
    return result.stdout


def _uv(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["uv", *args], cwd=root, capture_output=True, text=True, check=False
    )


def package_pyproject(
    name: str,
    version: str,
    dependencies: list[str],
    classifiers: list[str] | None = None,
    extra: str = "",
) -> str:
    deps = "".join(f'\n  "{dep}",' for dep in dependencies)
    deps = f"[{deps}\n]" if deps else "[]"
    if classifiers is None:
        classifiers = CLASSIFIERS
    classes = "".join(f'\n  "{c}",' for c in classifiers)
    classifier_line = f"classifiers = [{classes}\n]\n" if classifiers else ""
    return (
        dedent(
            f"""\
            [project]
            name = "{name}"
            # the version is managed by mono
            version = "{version}"
            description = "A test package."
            requires-python = ">=3.10"
            """
        )
        + classifier_line
        + f"dependencies = {deps}\n"
        + extra
        + dedent(
            f"""
            [build-system]
            requires = ["uv_build>=0.9,<0.14"]
            build-backend = "uv_build"

            [tool.uv.build-backend]
            module-name = "{name}"
            module-root = ""
            namespace = true
            """
        )
    )


def changelog(name: str, version: str, label: str = "2025-01-01") -> str:
    return dedent(
        f"""\
        # Changelog

        All notable changes to `{name}` are documented here.

        ## [{version}] - {label}

        ### Added

        - The first release.
        """
    )


@dataclass
class WorkspaceFactory:
    """Builds a workspace: `make()` writes it, locks it and commits it."""

    base: Path

    def make(
        self,
        packages: list[tuple[str, str, str, list[str]]] | None = None,
        *,
        name: str = "ws",
        root_extra: str = "",
        lock: bool = True,
        commit: bool = True,
        tag: bool = False,
        changelog_label: str = "2025-01-01",
    ) -> Path:
        root = self.base / name
        root.mkdir()
        packages = DEFAULT_PACKAGES if packages is None else packages
        sources = "".join(f'"{p[0]}" = {{ workspace = true }}\n' for p in packages)
        (root / "pyproject.toml").write_text(
            dedent(
                """\
                [project]
                name = "ws-root"
                version = "0"
                requires-python = ">=3.10"
                dependencies = []

                [tool.uv]
                package = false

                [tool.uv.workspace]
                members = ["packages/*"]

                [tool.uv.sources]
                """
            )
            + sources
            + root_extra
        )
        (root / ".gitignore").write_text("dist/\n.venv/\n")
        for pkg_name, folder, version, deps in packages:
            self.add_package(root, pkg_name, folder, version, deps, changelog_label)
        if lock:
            result = _uv(root, "lock")
            assert result.returncode == 0, result.stderr
        if commit:
            _git(root, "init", "-q", "-b", "main")
            _git(root, "add", "-A")
            _git(root, "commit", "-q", "-m", "initial")
            if tag:
                for pkg_name, _, version, _ in packages:
                    _git(root, "tag", "-a", f"{pkg_name}-v{version}", "-m", "release")
        return root

    @staticmethod
    def add_package(
        root: Path,
        name: str,
        folder: str,
        version: str,
        deps: list[str],
        changelog_label: str = "2025-01-01",
        **kwargs: object,
    ) -> Path:
        directory = root / "packages" / folder
        module = directory / Path(*name.split("."))
        module.mkdir(parents=True)
        (module / "__init__.py").write_text(f'"""{name}."""\n')
        (directory / "pyproject.toml").write_text(
            package_pyproject(name, version, deps, **kwargs)  # type: ignore[arg-type]
        )
        (directory / "CHANGELOG.md").write_text(
            changelog(name, version, changelog_label)
        )
        return directory


@pytest.fixture(autouse=True)
def isolated_tools(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep uv offline and git away from the user's configuration."""
    monkeypatch.setenv("UV_OFFLINE", "1")
    monkeypatch.setenv("MONO_NO_INDEX_CHECK", "1")
    monkeypatch.delenv("MONO_INDEX_URL", raising=False)
    monkeypatch.setenv("UV_PYTHON_DOWNLOADS", "never")
    monkeypatch.setenv("UV_NO_PROGRESS", "1")
    for variable in (
        "VIRTUAL_ENV",
        "UV_PROJECT_ENVIRONMENT",
        "UV_PUBLISH_URL",
        "UV_PUBLISH_TOKEN",
        "UV_PUBLISH_USERNAME",
        "UV_PUBLISH_PASSWORD",
        "UV_PUBLISH_CHECK_URL",
    ):
        monkeypatch.delenv(variable, raising=False)
    gitconfig = tmp_path / "gitconfig"
    gitconfig.write_text("[init]\n\tdefaultBranch = main\n[tag]\n\tgpgSign = false\n")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(gitconfig))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    for role in ("AUTHOR", "COMMITTER"):
        monkeypatch.setenv(f"GIT_{role}_NAME", "Mono Test")
        monkeypatch.setenv(f"GIT_{role}_EMAIL", "mono@example.invalid")


@pytest.fixture
def workspaces(tmp_path: Path) -> WorkspaceFactory:
    """A factory of throwaway workspaces under `tmp_path`."""
    return WorkspaceFactory(tmp_path)


@pytest.fixture
def workspace(workspaces: WorkspaceFactory) -> Path:
    """The default workspace: acme.core <- acme.db <- acme.app, locked and committed."""
    return workspaces.make()


@dataclass
class Index:
    """A tiny package index on 127.0.0.1: legacy upload API and simple pages."""

    url: str = ""
    files: dict[str, dict[str, bytes]] = field(default_factory=dict)
    uploads: list[str] = field(default_factory=list)
    queries: list[str] = field(default_factory=list)
    auth: list[str | None] = field(default_factory=list)
    reject_uploads_of: set[str] = field(default_factory=set)
    fail_queries: bool = False
    json: bool = False
    json_queries: list[str] = field(default_factory=list)

    @property
    def publish_url(self) -> str:
        return f"{self.url}/legacy/"

    @property
    def check_url(self) -> str:
        return f"{self.url}/simple/"

    @property
    def json_url(self) -> str:
        """The JSON API root, like `https://pypi.org/pypi/`."""
        return f"{self.url}/pypi/"

    def add_release(
        self, name: str, *versions: str, content: bytes = b"not ours"
    ) -> None:
        """Put a wheel and an sdist of each version on the index (someone else's)."""
        project = _normalize(name)
        stem = re.sub(r"[-_.]+", "_", name).lower()
        files = self.files.setdefault(project, {})
        for version in versions:
            files[f"{stem}-{version}-py3-none-any.whl"] = content + version.encode()
            files[f"{stem}-{version}.tar.gz"] = content + version.encode() + b".tar"


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _json_project(project: str, files: dict[str, bytes]) -> bytes:
    """PyPI's JSON API page of a project: `releases` maps versions to files."""
    releases: dict[str, list[dict[str, object]]] = {}
    for name, content in files.items():
        if name.endswith(".whl"):
            version = name.split("-")[1]
        else:
            version = name[: -len(".tar.gz")].rsplit("-", 1)[1]
        releases.setdefault(version, []).append(
            {
                "filename": name,
                "digests": {"sha256": hashlib.sha256(content).hexdigest()},
                "yanked": False,
            }
        )
    return json.dumps({"info": {"name": project}, "releases": releases}).encode()


def _handler(index: Index) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def _send(
            self, status: int, body: bytes = b"", kind: str = "text/plain"
        ) -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            parts = self.path.strip("/").split("/")
            if parts[0] == "pypi" and parts[-1] == "json":  # the JSON API
                index.json_queries.append(parts[1])
                if index.fail_queries:
                    return self._send(503, b"down for maintenance")
                if parts[1] not in index.files:
                    return self._send(404, b"not found")
                body = _json_project(parts[1], index.files[parts[1]])
                return self._send(200, body, "application/json")
            project = parts[-1]
            index.queries.append(project)
            if index.fail_queries:
                return self._send(503, b"down for maintenance")
            files = index.files.get(project)
            if files is None:
                return self._send(404, b"not found")
            if index.json:
                listing = {
                    "files": [
                        {
                            "filename": name,
                            "url": f"/files/{name}",
                            "hashes": {"sha256": hashlib.sha256(content).hexdigest()},
                        }
                        for name, content in files.items()
                    ]
                }
                kind = "application/vnd.pypi.simple.v1+json"
                return self._send(200, json.dumps(listing).encode(), kind)
            links = "".join(
                f'<a href="/files/{name}#sha256={hashlib.sha256(content).hexdigest()}">{name}</a>\n'
                for name, content in files.items()
            )
            self._send(
                200, f"<html><body>\n{links}</body></html>".encode(), "text/html"
            )

        def do_POST(self) -> None:
            length = int(self.headers["Content-Length"])
            head = f"Content-Type: {self.headers['Content-Type']}\r\n\r\n".encode()
            message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
                head + self.rfile.read(length)
            )
            fields: dict[str, tuple[str | None, bytes]] = {}
            for part in message.iter_parts():
                name = part.get_param("name", header="content-disposition")
                fields[str(name)] = (part.get_filename(), part.get_payload(decode=True))
            project = _normalize(fields["name"][1].decode())
            filename = str(fields["content"][0])
            index.auth.append(self.headers.get("Authorization"))
            if project in index.reject_uploads_of:
                return self._send(500, b"upload rejected by the test")
            index.files.setdefault(project, {})[filename] = fields["content"][1]
            index.uploads.append(filename)
            self._send(200, b"OK")

    return Handler


@pytest.fixture
def index(monkeypatch: pytest.MonkeyPatch) -> Iterator[Index]:
    """A loopback index; `uv publish` may talk to it (UV_OFFLINE is cleared).

    `mono status` and `mono publish` ask its JSON API for released versions
    (`MONO_INDEX_URL`; `MONO_NO_INDEX_CHECK` is cleared).
    """
    monkeypatch.delenv("UV_OFFLINE", raising=False)
    monkeypatch.delenv("MONO_NO_INDEX_CHECK", raising=False)
    monkeypatch.setenv("UV_PUBLISH_USERNAME", "tester")
    monkeypatch.setenv("UV_PUBLISH_PASSWORD", "secret")
    state = Index()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    # A client that gives up between select() and accept() must not leave
    # serve_forever blocked in accept(), where shutdown() would wait forever.
    server.socket.setblocking(False)
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    monkeypatch.setenv("MONO_INDEX_URL", state.json_url)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture
def bare_remote(tmp_path: Path) -> Callable[[Path], Path]:
    """Add a bare repository as `origin` of a workspace; return its path."""

    def add(root: Path) -> Path:
        remote = tmp_path / f"{root.name}-remote.git"
        _git(tmp_path, "init", "-q", "--bare", str(remote))
        _git(root, "remote", "add", "origin", str(remote))
        return remote

    return add


@pytest.fixture
def git() -> Callable[..., str]:
    """`git(root, *args)`: run git, fail the test if it fails, return its output."""
    return _git


@pytest.fixture
def make_pyproject() -> Callable[..., str]:
    """`make_pyproject(name, version, dependencies, classifiers=None, extra="")`."""
    return package_pyproject


@pytest.fixture
def cli() -> Callable[..., Result]:
    """`cli(*args)`: run `mono` in-process with typer's CliRunner."""
    runner = CliRunner()

    def invoke(*args: str | os.PathLike[str]) -> Result:
        return runner.invoke(mono, [os.fspath(a) for a in args])

    return invoke
