"""`database_cluster(backend="docker")` against a real Docker engine.

Every test needs an engine and a local PostGIS image (``$MACROSTRAT_TEST_IMAGE``,
default ``macrostrat-test/postgis:15`` from ``scripts/build-test-images``); the
``docker_client``/``docker_image`` fixtures skip naming whichever is missing.
Nothing here pulls from a registry.
"""

from __future__ import annotations

import logging
import secrets
import textwrap
import time
from collections.abc import Iterator

import psycopg
import pytest
from sqlalchemy.engine import make_url

from macrostrat.dinosaur.cluster import choose_backend, database_cluster
from macrostrat.dinosaur.cluster.docker import DATA_DIR
from macrostrat.dinosaur.errors import (
    BackendUnavailableError,
    ClusterError,
    ClusterStartError,
)

pytestmark = pytest.mark.docker


def _containers(client, image: str) -> set[str]:
    """Ids of every container (running or not) created from ``image``."""
    return {c.id for c in client.containers.list(all=True, filters={"ancestor": image})}


def _show(db, name: str) -> str:
    return db.run_query(f"SHOW {name}").scalar()


@pytest.fixture
def tag(docker_client) -> Iterator[dict]:
    """Options that label this test's containers; fails the test if one outlives it.

    (Other people's containers may run from the same image meanwhile, so the
    containers are found by this label, passed through to testcontainers.)
    """
    value = secrets.token_hex(6)
    label = f"org.macrostrat.test={value}"
    yield {"labels": {"org.macrostrat.test": value}}
    deadline = time.monotonic() + 10  # the engine may still be removing it
    while docker_client.containers.list(all=True, filters={"label": label}):
        assert time.monotonic() < deadline, "a container outlived the cluster"
        time.sleep(0.2)


def _tagged(client, tag: dict):
    """The one container carrying ``tag``'s label."""
    ((key, value),) = tag["labels"].items()
    found = client.containers.list(all=True, filters={"label": f"{key}={value}"})
    assert len(found) == 1
    return found[0]


@pytest.fixture
def volume(docker_client) -> Iterator[str]:
    name = f"macrostrat-test-{secrets.token_hex(4)}"
    docker_client.volumes.create(name)
    yield name
    docker_client.volumes.get(name).remove(force=True)


def test_runs_postgis_in_memory_and_removes_the_container(
    docker_client, docker_image, tag
):
    with database_cluster(
        docker_image, backend="docker", extensions=("postgis",), **tag
    ) as db:
        container = _tagged(docker_client, tag)
        assert container.status == "running"
        assert container.attrs["HostConfig"]["Tmpfs"] == {
            DATA_DIR: "uid=999,gid=999,mode=0700"
        }
        assert _show(db, "data_directory") == DATA_DIR
        assert _show(db, "server_version_num").startswith("15")
        assert db.run_query("SELECT postgis_lib_version()").scalar().startswith("3.3")
        assert db.run_query("SELECT ST_AsText(ST_MakePoint(1, 2))").scalar() == (
            "POINT(1 2)"
        )
        # A random password, not testcontainers' fixed "test", and it is required.
        url = make_url(db.engine.url)
        assert url.password not in (None, "", "test")
        bad = url.set(password="wrong").render_as_string(hide_password=False)
        with pytest.raises(psycopg.OperationalError, match="password authentication"):
            psycopg.connect(bad.replace("+psycopg", ""), connect_timeout=5)


def test_in_memory_false_keeps_data_off_tmpfs(docker_client, docker_image, tag):
    with database_cluster(docker_image, backend="docker", in_memory=False, **tag) as db:
        container = _tagged(docker_client, tag)
        assert not container.attrs["HostConfig"].get("Tmpfs")
        assert db.run_query("SELECT 1").scalar() == 1


def test_optimize_for_testing_turns_durability_off(docker_image, tag):
    with database_cluster(
        docker_image,
        backend="docker",
        optimize_for_testing=True,
        in_memory=False,
        **tag,
    ) as db:
        assert _show(db, "fsync") == "off"
        assert _show(db, "synchronous_commit") == "off"
        assert _show(db, "full_page_writes") == "off"
        assert _show(db, "wal_level") == "minimal"


def test_config_as_a_mapping(docker_image, tag):
    with database_cluster(
        docker_image,
        backend="docker",
        config={"work_mem": "7MB", "jit": False},
        **tag,
    ) as db:
        assert _show(db, "work_mem") == "7MB"
        assert _show(db, "jit") == "off"


def test_config_as_a_file_adds_to_the_defaults(docker_image, tag, tmp_path):
    """Upstream assigned into the Path (TypeError); here the file is included
    after the cluster's own postgresql.conf, so it overrides settings while the
    server still listens on the container's network (the connection proves it)."""
    conf = tmp_path / "extra.conf"
    conf.write_text("work_mem = '9MB'\nstatement_timeout = 12345\n")
    with database_cluster(docker_image, backend="docker", config=conf, **tag) as db:
        assert _show(db, "work_mem") == "9MB"
        assert _show(db, "statement_timeout") == "12345ms"
        assert _show(db, "listen_addresses") == "*"


def test_missing_config_file_is_a_clear_error(docker_image, tmp_path):
    with (
        pytest.raises(ClusterError, match="does not exist"),
        database_cluster(docker_image, backend="docker", config=tmp_path / "nope.conf"),
    ):
        pass


def test_data_volume_keeps_data_between_clusters(
    docker_client, docker_image, volume, tag
):
    options = {
        "backend": "docker",
        "data_volume": volume,
        "password": "volume-pw",
        **tag,
    }
    with database_cluster(docker_image, **options) as db:
        assert _show(db, "fsync") == "on"  # a volume turns the test settings off
        db.run_sql("CREATE TABLE kept (id int); INSERT INTO kept VALUES (42)")
    with database_cluster(docker_image, optimize_for_testing=True, **options) as db:
        assert db.run_query("SELECT id FROM kept").scalar() == 42
        assert _show(db, "fsync") == "on"
    # The volume survives; a wrong password is refused at once with a hint.
    docker_client.volumes.get(volume)
    with (
        pytest.raises(ClusterStartError, match="same user and password"),
        database_cluster(
            docker_image,
            backend="docker",
            data_volume=volume,
            password="other",
            **tag,
        ),
    ):
        pass


def test_environment_reaches_the_server_and_credentials(docker_image, tag):
    env = {"POSTGRES_INITDB_ARGS": "--data-checksums", "POSTGRES_PASSWORD": "pw-env"}
    with database_cluster(docker_image, backend="docker", environment=env, **tag) as db:
        assert _show(db, "data_checksums") == "on"
        assert make_url(db.engine.url).password == "pw-env"


def test_user_database_and_driver(docker_image, tag):
    with database_cluster(
        docker_image,
        backend="docker",
        user="alice",
        database="app",
        driver="psycopg",
        **tag,
    ) as db:
        assert db.engine.url.drivername == "postgresql+psycopg"
        assert db.run_query("SELECT current_user").scalar() == "alice"
        assert db.run_query("SELECT current_database()").scalar() == "app"
        assert db.run_query(
            "SELECT rolsuper FROM pg_roles WHERE rolname = 'alice'"
        ).scalar()


def test_build_from_a_context_directory(docker_client, docker_image, tmp_path):
    """A Dockerfile FROM the local image builds offline; its init script runs."""
    (tmp_path / "Dockerfile").write_text(
        f"FROM {docker_image}\nCOPY init.sql /docker-entrypoint-initdb.d/\n"
    )
    (tmp_path / "init.sql").write_text(
        "CREATE EXTENSION postgis;\n"
        "CREATE TABLE built (geom geometry(Point, 4326));\n"
        "INSERT INTO built VALUES (ST_SetSRID(ST_MakePoint(3, 4), 4326));\n"
    )
    image_tag = f"macrostrat-test/built:{secrets.token_hex(4)}"
    try:
        with database_cluster(image_tag, backend="docker", context=tmp_path) as db:
            assert db.run_query("SELECT ST_AsText(geom) FROM built").scalar() == (
                "POINT(3 4)"
            )
        docker_client.images.get(image_tag)  # built once, kept
        # build=True rebuilds even though the image is there.
        (tmp_path / "init.sql").write_text("CREATE TABLE rebuilt (id int);\n")
        with database_cluster(
            image_tag, backend="docker", build=True, context=tmp_path
        ) as db:
            assert db.run_query("SELECT to_regclass('rebuilt') IS NOT NULL").scalar()
        assert _containers(docker_client, image_tag) == set()
    finally:
        docker_client.images.remove(image_tag, force=True)


def test_build_without_a_context_is_refused(docker_image):
    with (
        pytest.raises(ClusterError, match="needs a context"),
        database_cluster(docker_image, backend="docker", build=True),
    ):
        pass


def test_container_removed_after_an_exception_in_the_body(
    docker_client, docker_image, tag
):
    def body() -> None:
        with database_cluster(docker_image, backend="docker", **tag) as db:
            assert _tagged(docker_client, tag).status == "running"
            db.run_query("SELECT 1")
            raise ZeroDivisionError

    with pytest.raises(ZeroDivisionError):
        body()


def test_failed_start_reports_the_log_and_removes_the_container(docker_image, tag):
    with (
        pytest.raises(ClusterStartError) as info,
        database_cluster(
            docker_image, backend="docker", config={"shared_buffers": "lots"}, **tag
        ),
    ):
        pass
    assert "shared_buffers" in str(info.value)


def test_auto_chooses_docker_when_the_image_is_present(docker_image, tag):
    assert choose_backend("auto", docker_image) == "docker"
    with database_cluster(docker_image, backend="auto", **tag) as db:
        assert _show(db, "data_directory") == DATA_DIR


def test_auto_falls_back_to_local_without_pulling(docker_client, caplog):
    absent = f"macrostrat-test/absent:{secrets.token_hex(4)}"
    with caplog.at_level(logging.INFO, logger="macrostrat.dinosaur.cluster"):
        assert choose_backend("auto", absent) == "local"
    assert f"image {absent} is not present" in caplog.text


def test_explicit_docker_with_an_unobtainable_image_names_the_fix(docker_client):
    absent = f"macrostrat-test/absent:{secrets.token_hex(4)}"
    with (
        pytest.raises(BackendUnavailableError, match="build-test-images"),
        database_cluster(absent, backend="docker"),
    ):
        pass


PLUGIN_TEST = textwrap.dedent(
    """
    def test_database_url_runs_in_docker(database_url, db):
        from sqlalchemy import text

        assert db.run_query("SHOW data_directory").scalar() == "/var/lib/postgresql/data"
        assert db.run_query("SELECT postgis_lib_version()").scalar().startswith("3.")
    """
)


def test_database_url_fixture_docker_path(
    pytester, monkeypatch, docker_client, docker_image
):
    monkeypatch.delenv("TESTING_DATABASE", raising=False)
    monkeypatch.delenv("MACROSTRAT_TEST_BACKEND", raising=False)
    monkeypatch.setenv("POSTGRES_IMAGE", docker_image)
    pytester.makepyfile(test_inner=PLUGIN_TEST)
    result = pytester.runpytest_subprocess(
        "-p", "macrostrat.dinosaur.testing", "-p", "no:cacheprovider"
    )
    result.assert_outcomes(passed=1)


def test_docker_image_fixture_skips_naming_a_missing_image(
    pytester, monkeypatch, docker_client
):
    monkeypatch.setenv("MACROSTRAT_TEST_IMAGE", "macrostrat-test/absent:0")
    monkeypatch.delenv("MACROSTRAT_REQUIRE_DOCKER", raising=False)  # CI sets it
    pytester.makepyfile(test_img="def test_needs_image(docker_image):\n    pass\n")
    result = pytester.runpytest_subprocess("-p", "macrostrat.dinosaur.testing", "-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(
        ["*requires docker image macrostrat-test/absent:0*build-test-images*"]
    )


def test_docker_stop_is_a_fast_clean_shutdown_with_a_client_connected(
    docker_client, docker_image
):
    """SIGTERM is PostgreSQL's smart shutdown: with a client connected it waits
    until docker kills it (crash recovery on the next start). The image's stop
    signal must be SIGINT, a fast shutdown that ends within seconds."""
    container = docker_client.containers.run(
        docker_image,
        detach=True,
        environment={"POSTGRES_PASSWORD": "pw"},
        ports={"5432/tcp": ("127.0.0.1", None)},
        tmpfs={DATA_DIR: "uid=999,gid=999,mode=0700"},
    )
    try:
        container.reload()
        port = container.ports["5432/tcp"][0]["HostPort"]
        url = f"postgresql://postgres:pw@127.0.0.1:{port}/postgres"
        deadline = time.monotonic() + 60
        while True:
            try:
                conn = psycopg.connect(url, connect_timeout=2)
                break
            except psycopg.OperationalError:
                assert time.monotonic() < deadline, container.logs(tail=20)
                time.sleep(0.3)
        try:  # the server ends the session; no commit on exit
            assert conn.execute("SELECT 1").fetchone() == (1,)
            started = time.monotonic()
            container.stop(timeout=20)
            elapsed = time.monotonic() - started
        finally:
            conn.close()
        assert elapsed < 8, f"docker stop took {elapsed:.1f} s"
        assert container.wait(timeout=10)["StatusCode"] == 0
        logs = container.logs().decode(errors="replace")
        assert "fast shutdown request" in logs
        assert "database system is shut down" in logs
    finally:
        container.remove(force=True)


def test_a_client_created_for_the_cluster_is_closed(docker_image, tag, monkeypatch):
    """A Docker client that docker_cluster_url makes itself is closed again
    (a real client; only its close() is recorded)."""
    from macrostrat.dinosaur.cluster import docker as docker_module

    made = []
    real = docker_module.docker_client_or_none

    def recording_client(*args, **kwargs):
        client = real(*args, **kwargs)
        closed = []
        original_close = client.close

        def close():
            closed.append(True)
            original_close()

        client.close = close
        made.append(closed)
        return client

    monkeypatch.setattr(docker_module, "docker_client_or_none", recording_client)
    with database_cluster(docker_image, backend="docker", **tag) as db:
        assert db.run_query("SELECT 1").scalar() == 1
    assert made == [[True]]
