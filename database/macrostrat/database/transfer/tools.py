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

Secrets never reach a command line (see `tool_target`).  Local programs
get every connection parameter from a temporary service file (mode 0600,
``PGSERVICEFILE``) and only ``--dbname service=macrostrat`` on their command
line, so not even ``sslpassword`` or an ``options`` setting shows in ``ps``.
Programs behind a prefix or in a container get a URI without secrets; the
password travels in their environment as ``PGPASSWORD`` (and secret
``options`` as ``PGOPTIONS``); for Docker, ``-e PGPASSWORD`` passes the
variable by name only, so the value is on no command line either.

Longer than 400 lines because the choice of programs is one decision (local
versions, a prefix, a container) that also fixes how credentials reach them
(service file, environment), and both are defined here.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import tempfile
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import URL

from .._redact import (
    is_secret_parameter,
    options_have_secret,
    redact,
    scrub,
    url_secrets,
)
from ..dsn import DSN, parse_dsn
from ..errors import (
    InvalidOptionError,
    ToolNotFoundError,
    ToolVersionError,
    TransferError,
)

__all__ = [
    "BINDIR_ENV",
    "DEFAULT_IMAGE",
    "IMAGE_ENV",
    "ClientTools",
    "ToolTarget",
    "conninfo",
    "container_prefix",
    "docker_available",
    "find_client_tools",
    "libpq_parameters",
    "pg_config_bindir",
    "select_tools",
    "server_major_version",
    "tool_environment",
    "tool_target",
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

    def argv(
        self, program: str, *args: str, forward: tuple[str, ...] = ()
    ) -> list[str]:
        """The full command line for ``program`` with ``args``.

        Parameters:
            program: ``pg_dump``, ``pg_restore`` or ``psql``.
            *args: its arguments.
            forward: more environment variables (by name) for a ``docker``
                or ``podman`` ``exec``/``run`` prefix to pass into the
                container, as ``-e NAME`` after its subcommand.
        """
        name = str(self.bindir / program) if self.bindir is not None else program
        prefix = self.prefix
        if forward and _is_container_prefix(prefix):
            names = tuple(x for n in forward for x in ("-e", n))
            prefix = (*prefix[:2], *names, *prefix[2:])
        return [*prefix, name, *args]

    def describe(self) -> str:
        """A short description for logs and messages."""
        if self.kind == "local":
            return f"local PostgreSQL {self.version} client ({self.bindir})"
        if self.kind == "docker":
            return f"docker image {self.image}"
        return f"command prefix {list(self.prefix)!r}"


def conninfo(url: URL) -> str:
    """A libpq URI for ``url`` without any secret (safe on a command line).

    The password (user information or ``?password=``) and every secret
    parameter (``sslpassword``, ``options`` that set a password-like
    setting; see `macrostrat.database._redact.is_secret_parameter`) are left
    out; several hosts are written in libpq's ``h1:p1,h2:p2`` form.

    Parameters:
        url: the database.
    """
    dsn = parse_dsn(url)
    query = {k: v for k, v in dsn.query.items() if not is_secret_parameter(k, v)}
    return DSN(
        "postgresql", dsn.username, None, dsn.hosts, dsn.database, query
    ).to_libpq()


def libpq_parameters(url: URL) -> dict[str, str]:
    """Every libpq connection parameter of ``url``, as keyword and value.

    ``host`` and ``port`` list every host (``h1,h2`` and ``5432,5433``);
    ``user``, ``password`` and ``dbname`` come from the URL's parts, and the
    query parameters follow (a ``?password=`` overrides the user
    information's, as in libpq; a repeated parameter gives its last value).
    The result holds secrets: never log it.

    Parameters:
        url: the database.
    """
    dsn = parse_dsn(url)
    out: dict[str, str] = {}
    if dsn.hosts:
        out["host"] = ",".join(host for host, _ in dsn.hosts)
        if any(port is not None for _, port in dsn.hosts):
            out["port"] = ",".join("" if p is None else str(p) for _, p in dsn.hosts)
    if dsn.database:
        out["dbname"] = dsn.database
    if dsn.username is not None:
        out["user"] = dsn.username
    if dsn.password is not None:
        out["password"] = dsn.password
    for key, value in dsn.query.items():
        out[key] = str(value[-1] if isinstance(value, tuple) else value)
    return out


def tool_environment(url: URL, application_name: str) -> dict[str, str]:
    """The environment for a client program that gets `conninfo` on its command line.

    Ours, plus ``PGPASSWORD`` (the URL's password, a ``?password=``
    included), ``PGOPTIONS`` (the URL's ``options`` when they set a secret
    setting, which `conninfo` leaves out) and ``PGAPPNAME``.

    Parameters:
        url: the database.
        application_name: the session's ``application_name`` unless the URL
            sets one.
    """
    params = libpq_parameters(url)
    env = dict(os.environ)
    if "password" in params:
        env["PGPASSWORD"] = params["password"]
    options = params.get("options")
    if options is not None and options_have_secret(options):
        env["PGOPTIONS"] = options
    env["PGAPPNAME"] = application_name
    return env


SERVICE_NAME = "macrostrat"
"""The service the temporary service file of `tool_target` defines."""

_KEYWORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# The parameters that have an environment variable, for values a service
# file cannot hold (libpq strips trailing blanks and reads line by line).
_ENVIRONMENT_FALLBACK = {"password": "PGPASSWORD", "options": "PGOPTIONS"}


@dataclass
class ToolTarget:
    """How one run of a client program reaches its database, secrets off its argv.

    Made by `tool_target`; call `cleanup` (or use it as a context manager)
    once the program has exited, to remove the service file. It is also
    removed when the object is garbage-collected or the interpreter exits.

    Attributes:
        dbname: the value for the program's ``--dbname``: ``service=macrostrat``
            or a URI without secrets (`conninfo`).
        env: the program's whole environment (may hold secrets: never log it).
        shown: the target for logs and messages, every secret masked.
        forward: variables a container prefix must pass in by name, besides
            ``PGPASSWORD`` and ``PGAPPNAME``.
        service_file: the temporary service file, or None.
    """

    dbname: str
    env: dict[str, str] = field(repr=False)
    shown: str
    forward: tuple[str, ...] = ()
    service_file: Path | None = None
    _finalizer: weakref.finalize[..., Any] | None = field(default=None, repr=False)

    def cleanup(self) -> None:
        """Remove the service file and its directory (at most once)."""
        if self._finalizer is not None:
            self._finalizer()

    def __enter__(self) -> ToolTarget:
        """Use as ``with tool_target(...) as target:``; `cleanup` on exit."""
        return self

    def __exit__(self, *exc: object) -> None:
        """Call `cleanup`."""
        self.cleanup()


def _write_service_file(params: dict[str, str]) -> tuple[Path, dict[str, str]]:
    """Write ``params`` to a new 0600 service file in a new 0700 directory.

    Returns the file and the parameters that a service file cannot hold but
    an environment variable can (see ``_ENVIRONMENT_FALLBACK``), by variable.

    Raises:
        InvalidOptionError: a parameter's name is not a keyword, or its value
            (a line break, trailing blanks) fits neither a service file nor
            an environment variable.
    """
    lines = [f"[{SERVICE_NAME}]\n"]
    fallback: dict[str, str] = {}
    for key, value in params.items():
        if not _KEYWORD.fullmatch(key):
            raise InvalidOptionError(
                f"{key!r} is not a libpq connection parameter name"
            )
        if any(c in value for c in "\r\n\0") or value != value.rstrip():
            variable = _ENVIRONMENT_FALLBACK.get(key)
            if variable is None or "\0" in value:
                raise InvalidOptionError(
                    f"the value of the connection parameter {key!r} has a line "
                    "break or trailing blanks, which the client programs "
                    "cannot be given without a command line"
                )
            fallback[variable] = value
            continue
        lines.append(f"{key}={value}\n")
    directory = Path(tempfile.mkdtemp(prefix="macrostrat-pgservice-"))
    path = directory / "pg_service.conf"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.writelines(lines)
    except BaseException:
        shutil.rmtree(directory, ignore_errors=True)
        raise
    return path, fallback


def tool_target(tools: ClientTools, url: URL, application_name: str) -> ToolTarget:
    """Decide how a client program run by ``tools`` gets ``url``, secrets included.

    Local programs (``tools.kind == "local"``) get a temporary service file
    (mode 0600, in a new 0700 directory, named by ``PGSERVICEFILE`` in their
    environment) that holds every connection parameter (`libpq_parameters`),
    and ``--dbname service=macrostrat``: nothing about the connection is on
    their command line. (A password or ``options`` that a service file cannot
    hold, with a line break or trailing blanks, goes in ``PGPASSWORD`` or
    ``PGOPTIONS`` instead.) A URL that names its own ``service`` keeps it.

    Programs run behind a prefix or in a container, which cannot read a local
    file, get `conninfo` (a URI without secrets) and `tool_environment`
    (``PGPASSWORD``, ``PGOPTIONS`` for secret ``options``), passed into a
    container by name (``forward``). A secret parameter without an
    environment variable (``sslpassword``...) cannot reach them that way, so
    it raises rather than going on a command line.

    Parameters:
        tools: how the program runs (`select_tools`).
        url: the database.
        application_name: ``PGAPPNAME`` (the URL's ``application_name`` wins).

    Raises:
        InvalidOptionError: a secret cannot be passed without a command line.
    """
    shown = redact(url)
    params = libpq_parameters(url)
    if tools.kind == "local" and not {"service", "servicefile"} & set(params):
        path, fallback = _write_service_file(params)
        env = {**os.environ, "PGSERVICEFILE": str(path), "PGAPPNAME": application_name}
        env.update(fallback)
        target = ToolTarget(f"service={SERVICE_NAME}", env, shown, service_file=path)
        target._finalizer = weakref.finalize(
            target, shutil.rmtree, str(path.parent), True
        )
        return target
    stranded = [
        key
        for key, value in params.items()
        if key not in _ENVIRONMENT_FALLBACK and is_secret_parameter(key, value)
    ]
    if stranded:
        raise InvalidOptionError(
            f"the connection parameter(s) {', '.join(sorted(stranded))} cannot be "
            f"passed to programs run by {tools.describe()} without putting them "
            "on a command line; use local client programs (see "
            "MACROSTRAT_PG_BINDIR) or a URL without them"
        )
    env = tool_environment(url, application_name)
    secret_options = options_have_secret(params.get("options", ""))
    forward = ("PGOPTIONS",) if secret_options else ()
    return ToolTarget(conninfo(url), env, shown, forward=forward)


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
        reason = scrub(str(exc).strip(), url_secrets(url))
        raise TransferError(
            f"cannot connect to {redact(url)} to check its version: {reason}",
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


def _is_container_prefix(argv: tuple[str, ...] | list[str]) -> bool:
    """Whether ``argv`` starts ``docker``/``podman`` ``exec``/``run``."""
    return (
        len(argv) >= 2
        and Path(argv[0]).name in _CONTAINER_ENGINES
        and argv[1] in _CONTAINER_SUBCOMMANDS
    )


def container_prefix(command_prefix: Sequence[str]) -> tuple[str, ...]:
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
    if _is_container_prefix(argv):
        return (*argv[:2], *_FORWARDED, *argv[2:])
    return argv


def select_tools(
    url: URL,
    *,
    command_prefix: Sequence[str] | None = None,
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
