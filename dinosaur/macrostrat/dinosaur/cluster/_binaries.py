"""Find PostgreSQL server binaries on this machine."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from ..errors import PostgresNotFoundError

__all__ = ["BINDIR_ENV", "PostgresBinaries", "find_postgres_binaries"]

BINDIR_ENV = "MACROSTRAT_POSTGRES_BINDIR"
"""Environment variable naming the directory that holds ``initdb`` and ``postgres``."""

DEBIAN_ROOT = Path("/usr/lib/postgresql")
"""Where Debian and Ubuntu install one directory per server major version."""

_REQUIRED = ("initdb", "postgres")
_VERSION_RE = re.compile(r"\(PostgreSQL\)\s+(\d+)(?:\.(\d+))?")


@dataclass(frozen=True)
class PostgresBinaries:
    """A directory of PostgreSQL server programs and the major version they run.

    Attributes:
        bindir: the directory holding ``initdb``, ``postgres``, ``pg_ctl``, ...
        version: the server's major version (e.g. ``15``).
        version_string: the full version reported by ``postgres --version``.
    """

    bindir: Path
    version: int
    version_string: str

    def path(self, program: str) -> Path:
        """Return the path of ``program`` in `bindir`."""
        return self.bindir / program


def _has_server(bindir: Path) -> bool:
    return all(os.access(bindir / name, os.X_OK) for name in _REQUIRED)


def _version_of(bindir: Path) -> tuple[int, str]:
    out = subprocess.run(
        [str(bindir / "postgres"), "--version"],
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )
    match = _VERSION_RE.search(out.stdout)
    if out.returncode != 0 or match is None:
        raise PostgresNotFoundError(
            f"{bindir / 'postgres'} --version failed: {out.stdout or out.stderr}".strip()
        )
    return int(match.group(1)), out.stdout.strip()


def _candidates() -> list[tuple[str, Path]]:
    """Candidate binary directories, in the order we prefer them."""
    found: list[tuple[str, Path]] = []
    env = os.environ.get(BINDIR_ENV)
    if env:
        found.append((f"${BINDIR_ENV}", Path(env)))
    # Imported here: the pytest plugin imports this module and must stay light.
    from macrostrat.database.transfer.tools import pg_config_bindir

    bindir = pg_config_bindir()
    if bindir is not None:
        found.append(("pg_config --bindir", bindir))
    debian = DEBIAN_ROOT
    if debian.is_dir():
        majors = sorted(
            (p for p in debian.iterdir() if p.name.isdigit()),
            key=lambda p: int(p.name),
            reverse=True,
        )
        found.extend(("/usr/lib/postgresql", p / "bin") for p in majors)
    postgres = shutil.which("postgres")
    if postgres:
        found.append(("PATH", Path(postgres).resolve().parent))
    return found


def find_postgres_binaries(version: int | None = None) -> PostgresBinaries:
    """Find a directory holding PostgreSQL's ``initdb`` and ``postgres`` programs.

    Looks, in order, at the directory named by ``$MACROSTRAT_POSTGRES_BINDIR``,
    ``pg_config --bindir``, ``/usr/lib/postgresql/<major>/bin`` (highest major
    first) and the directory of ``postgres`` on ``PATH``.  A directory named by
    the environment variable must hold the programs, or this raises.

    Parameters:
        version: only accept servers of this major version.

    Raises:
        PostgresNotFoundError: no suitable directory was found; the message lists
            the places searched.
    """
    searched: list[str] = []
    for origin, bindir in _candidates():
        searched.append(f"{bindir} ({origin})")
        if not _has_server(bindir):
            if origin.startswith("$"):
                raise PostgresNotFoundError(
                    f"{BINDIR_ENV}={bindir} does not contain executable "
                    f"{' and '.join(_REQUIRED)}"
                )
            continue
        major, full = _version_of(bindir)
        if version is not None and major != version:
            continue
        return PostgresBinaries(bindir=bindir, version=major, version_string=full)
    wanted = f"PostgreSQL {version} " if version is not None else "PostgreSQL "
    where = (
        "; ".join(searched)
        or "nowhere: no pg_config, /usr/lib/postgresql or postgres on PATH"
    )
    raise PostgresNotFoundError(
        f"No {wanted}server binaries (initdb, postgres) found. Searched: {where}. "
        f"Install the server (e.g. apt-get install postgresql-15 postgresql-15-postgis-3) "
        f"or set {BINDIR_ENV}."
    )
