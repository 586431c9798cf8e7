"""Choose how to run the PostgreSQL client programs (pg_dump, pg_restore, psql).

pg_dump refuses to dump a server newer than itself, so the programs must be
at least the server's major version.  `select_tools` decides, before anything
runs:

1. an explicit ``command_prefix`` (a non-empty list such as ``["docker",
   "exec", "-i", "db"]``) is used with bare program names; a ``docker`` or
   ``podman`` ``exec``/``run`` prefix gets ``-e PGPASSWORD -e PGAPPNAME``
   inserted after its subcommand so the credentials reach the container;
   ``command_prefix=[]`` means "the local programs" (never Docker);
2. otherwise the newest local client programs found (``$MACROSTRAT_PG_BINDIR``
   alone if it is set; else ``pg_config --bindir``,
   ``/usr/lib/postgresql/<major>/bin`` and ``PATH``) when their major version
   is at least the server's;
3. otherwise a container image (``postgres_container=``, else
   ``$MACROSTRAT_PG_TOOLS_IMAGE``, default ``postgres:{major}``, where
   ``{major}`` is the server's major version) when a Docker engine answers;
4. otherwise `ToolVersionError`, naming both versions.

Credentials never reach a command line: the password travels in the
program's environment as ``PGPASSWORD`` (for Docker, ``-e PGPASSWORD`` passes
the variable by name only).
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import URL

from ..errors import ToolNotFoundError, ToolVersionError, TransferError

__all__ = [
    "BINDIR_ENV",
    "DEFAULT_IMAGE",
    "IMAGE_ENV",
    "ClientTools",
    "conninfo",
    "container_prefix",
    "docker_available",
    "find_client_tools",
    "pg_config_bindir",
    "select_tools",
    "server_major_version",
    "tool_environment",
]

log = logging.getLogger(__name__)

BINDIR_ENV = "MACROSTRAT_PG_BINDIR"
"""Environment variable naming the directory of the client programs to use."""

IMAGE_ENV = "MACROSTRAT_PG_TOOLS_IMAGE"
"""Environment variable naming the image to run the tools from (``{major}`` is filled in)."""

DEFAULT_IMAGE = "postgres:{major}"

PROGRAMS = ("pg_dump", "pg_restore", "psql")
_VERSION_RE = re.compile(r"\(PostgreSQL\)\s+(\d+)")
_DEBIAN_ROOT = Path("/usr/lib/postgresql")


@dataclass(frozen=True)
class ClientTools:
    """How to start the client programs.

    Attributes:
        kind: ``"local"``, ``"docker"`` or ``"prefix"`` (a caller's prefix).
        prefix: argv placed before the program (``docker run ... image``).
        bindir: the directory of local programs (``kind == "local"``).
        version: the programs' major version, when known.
        image: the container image (``kind == "docker"``).
    """

    kind: str
    prefix: tuple[str, ...] = ()
    bindir: Path | None = None
    version: int | None = None
    image: str | None = None

    def argv(self, program: str, *args: str) -> list[str]:
        """The full command line for ``program`` with ``args``."""
        name = str(self.bindir / program) if self.bindir is not None else program
        return [*self.prefix, name, *args]

    def describe(self) -> str:
        """A short description for logs and messages."""
        if self.kind == "local":
            return f"local PostgreSQL {self.version} client ({self.bindir})"
        if self.kind == "docker":
            return f"docker image {self.image}"
        return f"command prefix {list(self.prefix)!r}"


def conninfo(url: URL) -> str:
    """A libpq URI for ``url`` without its password (safe on a command line)."""
    bare = URL.create(
        "postgresql",
        username=url.username,
        host=url.host,
        port=url.port,
        database=url.database,
        query=url.query,
    )
    return bare.render_as_string(hide_password=False)


def tool_environment(url: URL, application_name: str) -> dict[str, str]:
    """The environment for a client program: ours plus ``PGPASSWORD`` and ``PGAPPNAME``."""
    env = dict(os.environ)
    if url.password is not None:
        env["PGPASSWORD"] = str(url.password)
    env["PGAPPNAME"] = application_name
    return env


def server_major_version(url: URL) -> int:
    """The major version of the server ``url`` points to (connects once)."""
    kwargs: dict[str, Any] = url.translate_connect_args(
        username="user", database="dbname"
    )
    for key, value in url.query.items():
        kwargs[key] = ",".join(value) if isinstance(value, tuple) else value
    kwargs.setdefault("dbname", "postgres")
    kwargs.setdefault("connect_timeout", 10)
    try:
        with psycopg.connect(**kwargs) as conn:
            return conn.info.server_version // 10000
    except psycopg.OperationalError as exc:
        shown = url.render_as_string(hide_password=True)
        raise TransferError(
            f"cannot connect to {shown} to check its version: {str(exc).strip()}",
            step="connect",
        ) from exc


def _program_version(path: Path) -> int | None:
    try:
        out = subprocess.run(
            [str(path), "--version"],
            capture_output=True,
            text=True,
            check=False,
            timeout=30,
        )
    except OSError:
        return None
    match = _VERSION_RE.search(out.stdout)
    if out.returncode != 0 or match is None:
        return None
    return int(match.group(1))


def pg_config_bindir() -> Path | None:
    """The directory ``pg_config --bindir`` names, or None (no pg_config, or it failed).

    Shared with `macrostrat.dinosaur.cluster`, which looks for the server
    programs in the same places.
    """
    pg_config = shutil.which("pg_config")
    if not pg_config:
        return None
    try:
        out = subprocess.run(
            [pg_config, "--bindir"],
            capture_output=True,
            text=True,
            check=False,
            timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    text = out.stdout.strip()
    return Path(text) if out.returncode == 0 and text else None


def _candidate_dirs() -> list[Path]:
    found: list[Path] = []
    bindir = pg_config_bindir()
    if bindir is not None:
        found.append(bindir)
    if _DEBIAN_ROOT.is_dir():
        found.extend(
            p / "bin"
            for p in sorted(_DEBIAN_ROOT.iterdir(), key=lambda p: p.name)
            if p.name.isdigit()
        )
    on_path = shutil.which("pg_dump")
    if on_path:
        found.append(Path(on_path).parent)
    unique: list[Path] = []
    for p in found:
        if p not in unique:
            unique.append(p)
    return unique


def _has_programs(bindir: Path) -> bool:
    return all(os.access(bindir / name, os.X_OK) for name in PROGRAMS)


def find_client_tools() -> ClientTools | None:
    """The newest local client programs, or None when there are none.

    ``$MACROSTRAT_PG_BINDIR``, when set, is the only place looked at (and
    must hold ``pg_dump``, ``pg_restore`` and ``psql``).

    Raises:
        ToolNotFoundError: ``$MACROSTRAT_PG_BINDIR`` lacks the programs.
    """
    env = os.environ.get(BINDIR_ENV)
    if env:
        bindir = Path(env)
        version = (
            _program_version(bindir / "pg_dump") if _has_programs(bindir) else None
        )
        if version is None:
            raise ToolNotFoundError(
                f"{BINDIR_ENV}={bindir} does not hold working "
                f"{', '.join(PROGRAMS)} programs"
            )
        return ClientTools("local", bindir=bindir, version=version)
    best: ClientTools | None = None
    for bindir in _candidate_dirs():
        if not _has_programs(bindir):
            continue
        version = _program_version(bindir / "pg_dump")
        if version is not None and (best is None or version > (best.version or 0)):
            best = ClientTools("local", bindir=bindir, version=version)
    return best


def docker_available() -> bool:
    """Whether a ``docker`` program is on PATH and its engine answers."""
    docker = shutil.which("docker")
    if docker is None:
        return False
    try:
        out = subprocess.run(
            [docker, "version", "--format", "{{.Server.Version}}"],
            capture_output=True,
            text=True,
            check=False,
            timeout=20,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return out.returncode == 0 and bool(out.stdout.strip())


def _docker_tools(image: str, version: int) -> ClientTools:
    prefix = (
        "docker", "run", "--rm", "-i", "--network", "host", "--log-driver", "none",
        "-e", "PGPASSWORD", "-e", "PGAPPNAME", image,
    )  # fmt: skip
    return ClientTools("docker", prefix=prefix, version=version, image=image)


_CONTAINER_ENGINES = ("docker", "podman")
_CONTAINER_SUBCOMMANDS = ("exec", "run")
_FORWARDED = ("-e", "PGPASSWORD", "-e", "PGAPPNAME")


def container_prefix(command_prefix: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """``command_prefix`` with the credentials forwarded into a container.

    A prefix that starts with ``docker`` or ``podman`` (a bare name or a path
    to it) followed by ``exec`` or ``run`` starts the program inside a
    container, where the local process's environment does not reach.  So
    ``-e PGPASSWORD -e PGAPPNAME`` is inserted right after the subcommand: the
    engine copies the variables by name from its own environment, so the
    password never appears on a command line.  Any other prefix is returned
    unchanged.

    Parameters:
        command_prefix: the caller's argv placed before the program.
    """
    argv = tuple(command_prefix)
    if (
        len(argv) >= 2
        and Path(argv[0]).name in _CONTAINER_ENGINES
        and argv[1] in _CONTAINER_SUBCOMMANDS
    ):
        return (*argv[:2], *_FORWARDED, *argv[2:])
    return argv


def select_tools(
    url: URL,
    *,
    command_prefix: list[str] | tuple[str, ...] | None = None,
    postgres_container: str | None = None,
    step: str | None = None,
) -> ClientTools:
    """Decide how to run the client programs for the server at ``url``.

    See the module documentation for the order of preference.

    Parameters:
        url: the database the programs will talk to.
        command_prefix: None to choose automatically; ``[]`` for the local
            programs only; a non-empty list to run bare program names after it
            (a ``docker``/``podman`` ``exec`` or ``run`` prefix gets
            ``-e PGPASSWORD -e PGAPPNAME`` after its subcommand, see
            `container_prefix`).
        postgres_container: the image to use if Docker is needed (``{major}``
            is replaced by the server's major version).
        step: named in errors.

    Raises:
        ToolVersionError: the local programs are too old and Docker cannot
            be used (or ``command_prefix=[]`` forbids it).
        ToolNotFoundError: no local programs and no Docker.
    """
    if command_prefix:
        return ClientTools("prefix", prefix=container_prefix(command_prefix))
    server = server_major_version(url)
    local = find_client_tools()
    if local is not None and (local.version or 0) >= server:
        log.debug("using %s for PostgreSQL %s", local.describe(), server)
        return local
    local_only = command_prefix is not None
    if not local_only and docker_available():
        template = postgres_container or os.environ.get(IMAGE_ENV) or DEFAULT_IMAGE
        image = template.format(major=server)
        log.info(
            "local client tools %s; running them from %s",
            f"are PostgreSQL {local.version}" if local else "not found",
            image,
        )
        return _docker_tools(image, server)
    if local is None:
        raise ToolNotFoundError(
            "No PostgreSQL client programs (pg_dump, pg_restore, psql) found "
            f"and {'command_prefix=[] forbids Docker' if local_only else 'no Docker engine answers'}. "
            f"Install the PostgreSQL {server} client or set {BINDIR_ENV}."
        )
    why = (
        "command_prefix=[] asks for local tools only"
        if local_only
        else "no Docker engine answers to run them from a container"
    )
    raise ToolVersionError(
        f"The local PostgreSQL client tools are version {local.version} "
        f"({local.bindir}) but the server is PostgreSQL {server}; pg_dump refuses "
        f"to dump a newer server, and {why}. Install the PostgreSQL {server} "
        f"client, point {BINDIR_ENV} at it, or start Docker (image "
        f"{IMAGE_ENV}, default {DEFAULT_IMAGE}).",
        tool_version=local.version,
        server_version=server,
        step=step,
    )
