"""A pytest plugin with PostgreSQL/PostGIS fixtures.

Opt in from a ``conftest.py``::

    pytest_plugins = ["macrostrat.dinosaur.testing"]

Importing this module imports nothing but pytest; the database packages (and
Docker) are imported only when a fixture that needs them runs.

Fixtures:
    database_url (session): a ``str`` URL of a PostGIS-enabled database. It is
        ``$TESTING_DATABASE`` when that server answers (a warning is issued and
        a throwaway cluster is used when it is set but unreachable); otherwise a
        throwaway cluster from `database_cluster`. Its backend is
        ``$MACROSTRAT_TEST_BACKEND`` (``auto``, ``local`` or ``docker``) when
        set, else ``docker`` when ``$POSTGRES_IMAGE`` names an image, else
        ``auto`` (Docker only when its image is already present; see
        `macrostrat.dinosaur.cluster.choose_backend`).
    database_template (session): the name of a template database with PostGIS
        on that server (``macrostrat_test_template``, or ``$MACROSTRAT_TEST_TEMPLATE``),
        created once and reused across runs on a persistent ``$TESTING_DATABASE``
        server unless ``--teardown`` is given.
    module_database_url / empty_database_url: the URL of a fresh database cloned
        from the template, per module / per test, dropped afterwards.
    db / empty_db: a `macrostrat.database.Database` on those databases.
    docker_client (session): a Docker client; skips the test, naming the
        reason, when no engine answers.
    docker_image (session): the name of a local PostGIS image for Docker tests
        (``$MACROSTRAT_TEST_IMAGE``, default ``macrostrat-test/postgis:15``, as
        built by ``scripts/build-test-images``); skips, naming the image and
        how to build it, when the engine does not have it. Never pulls.

    replicated_topology (module): a `Topology` (`local_topology`) of a primary
        and one synchronous hot standby from local binaries, PostGIS created.
    pgbouncer_topology (module): a `Topology` of a primary with a real
        PgBouncer in front in transaction pooling mode, PostGIS created.
        Both skip, naming what is missing, without local server binaries or
        ``pgbouncer``.
    docker_replicated_topology / docker_pgbouncer_topology (module): the same
        two as a `DockerTopology` (`docker_topology`): containers from the
        ``docker_image`` on a network of their own. They skip (or fail) as
        ``docker_client`` and ``docker_image`` do, and when the image has no
        ``pgbouncer`` (``scripts/build-test-images`` installs it).

    With ``$MACROSTRAT_REQUIRE_DOCKER=1`` (CI sets it once the engine answers
    and the images were built), ``docker_client``, ``docker_image`` and the
    Docker topologies fail the test with the same reason instead of skipping
    it, so a Docker tier that silently stopped working cannot pass.

Options:
    --teardown: also drop the template database at the end of the session.

Longer than 400 lines because a plugin is the one module named in
``pytest_plugins``: its fixtures and the helpers they share (template
creation, clones, the Docker checks) live together, documented above.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import warnings
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, NoReturn

import pytest

if TYPE_CHECKING:
    from docker import DockerClient

    from macrostrat.database import Database
    from macrostrat.dinosaur.cluster import DockerTopology
    from macrostrat.dinosaur.cluster.topology import Topology

__all__ = [
    "BACKEND_ENV",
    "DEFAULT_TEST_IMAGE",
    "REQUIRE_DOCKER_ENV",
    "TEMPLATE_ENV",
    "TEMPLATE_NAME",
    "TEST_DATABASE_PREFIX",
    "TEST_IMAGE_ENV",
    "clone_database",
    "create_template_database",
    "database_template",
    "database_url",
    "database_url_backend",
    "db",
    "docker_client",
    "docker_image",
    "docker_pgbouncer_topology",
    "docker_replicated_topology",
    "drop_database_if_exists",
    "empty_database_url",
    "empty_db",
    "module_database_url",
    "pgbouncer_topology",
    "pytest_addoption",
    "replicated_topology",
    "require_docker_image",
]

TEMPLATE_NAME = "macrostrat_test_template"
"""The template database the fixtures clone, unless ``$MACROSTRAT_TEST_TEMPLATE`` names another."""

TEMPLATE_ENV = "MACROSTRAT_TEST_TEMPLATE"

BACKEND_ENV = "MACROSTRAT_TEST_BACKEND"
"""Names the `database_cluster` backend of the ``database_url`` fixture."""

TEST_IMAGE_ENV = "MACROSTRAT_TEST_IMAGE"
"""Names the image of the ``docker_image`` fixture."""

DEFAULT_TEST_IMAGE = "macrostrat-test/postgis:15"
"""The image ``scripts/build-test-images`` builds for PostgreSQL 15 + PostGIS 3.3."""

REQUIRE_DOCKER_ENV = "MACROSTRAT_REQUIRE_DOCKER"
"""When ``1``, the Docker fixtures fail instead of skipping when Docker is unusable."""

TEST_DATABASE_PREFIX = "macrostrat_test_"
"""Every database these fixtures create starts with this prefix."""

_LOCK_KEY = 0x6D616372  # advisory lock guarding template creation across processes


def pytest_addoption(parser: pytest.Parser) -> None:
    """Register ``--teardown``."""
    group = parser.getgroup("macrostrat", "macrostrat database fixtures")
    group.addoption(
        "--teardown",
        action="store_true",
        dest="teardown",
        default=False,
        help="Tear down the test template database after the tests run",
    )


def _conninfo(url: str, dbname: str | None = None) -> str:
    """A libpq connection string for ``url`` (any SQLAlchemy driver suffix removed)."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if dbname is not None:
        parsed = parsed.set(database=dbname)
    return parsed.set(drivername="postgresql").render_as_string(hide_password=False)


def _answers(url: str) -> str | None:
    """None when ``url`` accepts a connection, else the reason it does not."""
    import psycopg

    try:
        with psycopg.connect(_conninfo(url), connect_timeout=5):
            return None
    except Exception as exc:
        return str(exc).strip() or type(exc).__name__


def create_template_database(
    url: str, name: str = TEMPLATE_NAME, extensions: tuple[str, ...] = ("postgis",)
) -> str:
    """Create template database ``name`` with ``extensions`` unless it exists.

    Safe when several processes race: creation happens under an advisory lock.

    Parameters:
        url: a URL of any database on the server (used as the maintenance
            connection).
        name: the template's name.
        extensions: extensions to create in it.
    """
    import psycopg
    from psycopg import sql

    from macrostrat.dinosaur.cluster._extensions import create_extensions

    with psycopg.connect(_conninfo(url), autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (_LOCK_KEY,))
        try:
            found = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (name,)
            ).fetchone()
            if found is None:
                conn.execute(
                    sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(
                        sql.Identifier(name)
                    )
                )
                try:
                    with psycopg.connect(
                        _conninfo(url, name), autocommit=True
                    ) as tconn:
                        create_extensions(tconn, extensions)
                    conn.execute(
                        sql.SQL("ALTER DATABASE {} IS_TEMPLATE true").format(
                            sql.Identifier(name)
                        )
                    )
                except BaseException:
                    drop_database_if_exists(url, name)
                    raise
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_KEY,))
    return name


def drop_database_if_exists(url: str, name: str) -> None:
    """Drop database ``name`` (even a template), closing its sessions first."""
    import psycopg
    from psycopg import sql

    with psycopg.connect(_conninfo(url), autocommit=True) as conn:
        exists = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (name,)
        ).fetchone()
        if exists is None:
            return
        ident = sql.Identifier(name)
        conn.execute(sql.SQL("ALTER DATABASE {} IS_TEMPLATE false").format(ident))
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(ident))


@contextlib.contextmanager
def clone_database(url: str, template: str) -> Iterator[str]:
    """Create a database from ``template``, yield its URL, then drop it.

    The new database is named ``macrostrat_test_<random>``.
    """
    import psycopg
    from psycopg import sql
    from sqlalchemy.engine import make_url

    name = f"{TEST_DATABASE_PREFIX}{secrets.token_hex(6)}"
    with psycopg.connect(_conninfo(url), autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                sql.Identifier(name), sql.Identifier(template)
            )
        )
    try:
        yield make_url(url).set(database=name).render_as_string(hide_password=False)
    finally:
        drop_database_if_exists(url, name)


def _docker_unusable(reason: str) -> NoReturn:
    """Skip the test with ``reason``, or fail it when ``$MACROSTRAT_REQUIRE_DOCKER=1``."""
    if os.environ.get(REQUIRE_DOCKER_ENV, "").strip() == "1":
        pytest.fail(f"{reason} [{REQUIRE_DOCKER_ENV}=1, so this fails]", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def docker_client() -> Iterator[DockerClient]:
    """A Docker client; skips the test when no Docker engine answers.

    Fails instead of skipping when ``$MACROSTRAT_REQUIRE_DOCKER=1``.
    """
    from macrostrat.dinosaur.cluster import docker_client_or_none

    client = docker_client_or_none()
    if client is None:
        _docker_unusable(
            "requires docker engine (none answers on DOCKER_HOST or the socket)"
        )
    yield client
    client.close()


def require_docker_image(client: DockerClient, image: str) -> str:
    """Return ``image``, or skip the test (naming it) when the engine lacks it.

    Fails instead of skipping when ``$MACROSTRAT_REQUIRE_DOCKER=1``.
    """
    from macrostrat.dinosaur.cluster import image_available

    if not image_available(client, image):
        _docker_unusable(
            f"requires docker image {image} (not present in the engine; build it "
            "with scripts/build-test-images, no registry needed)"
        )
    return image


@pytest.fixture(scope="session")
def docker_image(docker_client: DockerClient) -> str:
    """A local PostGIS image for Docker tests; skips when the engine lacks it."""
    image = os.environ.get(TEST_IMAGE_ENV) or DEFAULT_TEST_IMAGE
    return require_docker_image(docker_client, image)


def database_url_backend() -> str:
    """The backend the ``database_url`` fixture asks `database_cluster` for."""
    backend = os.environ.get(BACKEND_ENV)
    if backend:
        return backend
    return "docker" if os.environ.get("POSTGRES_IMAGE") else "auto"


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    """The URL (a ``str``) of a PostGIS-enabled database for the test session."""
    url = os.environ.get("TESTING_DATABASE")
    if url:
        reason = _answers(url)
        if reason is None:
            import psycopg

            from macrostrat.dinosaur.cluster._extensions import create_extensions

            with psycopg.connect(_conninfo(url), autocommit=True) as conn:
                create_extensions(conn, ("postgis",))
            yield url
            return
        warnings.warn(
            f"TESTING_DATABASE is set but does not answer ({reason}); "
            "falling back to a throwaway cluster",
            pytest.PytestWarning,
            stacklevel=1,
        )
    from macrostrat.dinosaur.cluster import check_backend, database_cluster

    image = os.environ.get("POSTGRES_IMAGE")
    with database_cluster(
        image,
        backend=check_backend(database_url_backend()),
        optimize_for_testing=True,
        extensions=("postgis",),
    ) as cluster_db:
        cluster_url = cluster_db.engine.url.render_as_string(hide_password=False)
        cluster_db.cleanup()
        yield cluster_url


@pytest.fixture(scope="session")
def database_template(
    database_url: str, request: pytest.FixtureRequest
) -> Iterator[str]:
    """The name of a template database with PostGIS, created once per server."""
    name = create_template_database(
        database_url, os.environ.get(TEMPLATE_ENV) or TEMPLATE_NAME
    )
    yield name
    if request.config.getoption("teardown", default=False):
        drop_database_if_exists(database_url, name)


@pytest.fixture(scope="module")
def module_database_url(database_url: str, database_template: str) -> Iterator[str]:
    """The URL of a fresh PostGIS database for this test module, dropped after it."""
    with clone_database(database_url, database_template) as url:
        yield url


@pytest.fixture
def empty_database_url(database_url: str, database_template: str) -> Iterator[str]:
    """The URL of a fresh PostGIS database for this test, dropped after it."""
    with clone_database(database_url, database_template) as url:
        yield url


def _database(url: str) -> Iterator[Database]:
    from macrostrat.database import Database

    with Database(url) as database:
        yield database


@pytest.fixture(scope="module")
def db(module_database_url: str) -> Iterator[Database]:
    """A `Database` on this module's fresh PostGIS database."""
    yield from _database(module_database_url)


@pytest.fixture
def empty_db(empty_database_url: str) -> Iterator[Database]:
    """A `Database` on this test's own fresh PostGIS database."""
    yield from _database(empty_database_url)


def _topology_or_skip(**options: Any) -> Iterator[Topology]:
    from macrostrat.dinosaur.cluster._pgbouncer import find_pgbouncer
    from macrostrat.dinosaur.cluster.topology import local_topology
    from macrostrat.dinosaur.errors import (
        BackendUnavailableError,
        PostgresNotFoundError,
    )

    try:
        from macrostrat.dinosaur.cluster import find_postgres_binaries

        find_postgres_binaries()
        if options.get("pgbouncer"):
            find_pgbouncer()
    except PostgresNotFoundError as exc:
        pytest.skip(f"requires PostgreSQL server binaries on this machine ({exc})")
    except BackendUnavailableError as exc:
        pytest.skip(f"requires pgbouncer ({exc})")
    with local_topology(extensions=("postgis",), **options) as topology:
        yield topology


@pytest.fixture(scope="module")
def replicated_topology() -> Iterator[Topology]:
    """A primary and one synchronous hot standby (local binaries), per module."""
    yield from _topology_or_skip(standbys=1, synchronous=True)


@pytest.fixture(scope="module")
def pgbouncer_topology() -> Iterator[Topology]:
    """A primary behind PgBouncer in transaction pooling mode, per module."""
    yield from _topology_or_skip(standbys=0, pgbouncer="transaction")


def _docker_topology_or_skip(
    client: DockerClient, image: str, **options: Any
) -> Iterator[DockerTopology]:
    from macrostrat.dinosaur.cluster import docker_topology
    from macrostrat.dinosaur.errors import BackendUnavailableError

    started = False
    try:
        with docker_topology(
            image=image, docker_client=client, extensions=("postgis",), **options
        ) as topology:
            started = True
            yield topology
    except BackendUnavailableError as exc:
        if started:
            raise
        _docker_unusable(f"requires a docker topology from image {image} ({exc})")


@pytest.fixture(scope="module")
def docker_replicated_topology(
    docker_client: DockerClient, docker_image: str
) -> Iterator[DockerTopology]:
    """A primary and one synchronous hot standby in containers, per module."""
    yield from _docker_topology_or_skip(
        docker_client, docker_image, standbys=1, synchronous=True
    )


@pytest.fixture(scope="module")
def docker_pgbouncer_topology(
    docker_client: DockerClient, docker_image: str
) -> Iterator[DockerTopology]:
    """A primary behind a PgBouncer container in transaction pooling mode, per module."""
    yield from _docker_topology_or_skip(
        docker_client, docker_image, standbys=0, pgbouncer="transaction"
    )
