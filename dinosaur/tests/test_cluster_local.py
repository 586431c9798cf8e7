"""The local-binaries backend of `database_cluster`, against real PostgreSQL servers.

Every test here starts real servers with the PostgreSQL binaries installed on
this machine; nothing is mocked.
"""

from __future__ import annotations

import gc
import os
import shutil
import tempfile
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import text

from macrostrat.dinosaur.cluster import (
    LocalCluster,
    _binaries,
    choose_backend,
    database_cluster,
    find_postgres_binaries,
)
from macrostrat.dinosaur.errors import (
    BackendUnavailableError,
    ClusterError,
    ClusterStartError,
    PostgresNotFoundError,
)


def process_alive(pid: int) -> bool:
    """Whether a process with ``pid`` exists (zombies count as gone)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "State:\tZ" not in status


def _cluster_paths(db) -> tuple[Path, int]:
    data = Path(db.run_query("SHOW data_directory").scalar())
    pid = int((data / "postmaster.pid").read_text().split()[0])
    return data, pid


def test_finds_installed_binaries():
    found = find_postgres_binaries()
    assert (found.bindir / "initdb").exists()
    assert found.version >= 10
    assert (
        f"{found.version}." in found.version_string
        or str(found.version) in found.version_string
    )
    assert find_postgres_binaries(found.version).bindir == found.bindir


def test_binaries_env_override_must_hold_the_programs(monkeypatch, tmp_path):
    monkeypatch.setenv(_binaries.BINDIR_ENV, str(tmp_path))
    with pytest.raises(PostgresNotFoundError, match=_binaries.BINDIR_ENV):
        find_postgres_binaries()


def test_binaries_env_override_is_used_first(monkeypatch):
    real = find_postgres_binaries()
    monkeypatch.setenv(_binaries.BINDIR_ENV, str(real.bindir))
    assert find_postgres_binaries().bindir == real.bindir


def test_unknown_major_version_is_a_clear_error():
    with pytest.raises(PostgresNotFoundError, match="No PostgreSQL 3 server binaries"):
        find_postgres_binaries(3)


def test_cluster_with_postgis_and_full_cleanup(no_docker):
    with database_cluster(backend="local", extensions=("postgis",)) as db:
        data, pid = _cluster_paths(db)
        version = db.run_query("SELECT postgis_lib_version()").scalar()
        assert version.startswith("3.")
        point = db.run_query(
            "SELECT ST_AsText(ST_SetSRID(ST_MakePoint(1, 2), 4326))"
        ).scalar()
        assert point == "POINT(1 2)"
        assert str(data).startswith("/dev/shm/")
        assert process_alive(pid)
    assert not process_alive(pid)
    assert not data.exists()
    assert not data.parent.exists()


def test_cleanup_after_an_exception_in_the_body(no_docker):
    with pytest.raises(ZeroDivisionError):  # noqa: PT012, SIM117
        with database_cluster(backend="local") as db:
            data, pid = _cluster_paths(db)
            _ = 1 / 0
    assert not process_alive(pid)
    assert not data.parent.exists()


def test_cleanup_after_keyboard_interrupt(no_docker):
    with pytest.raises(KeyboardInterrupt):  # noqa: PT012, SIM117
        with database_cluster(backend="local") as db:
            data, pid = _cluster_paths(db)
            raise KeyboardInterrupt
    assert not process_alive(pid)
    assert not data.parent.exists()


def test_startup_failure_shows_the_server_log_and_leaves_nothing(no_docker):
    before = set(Path("/dev/shm").glob("macrostrat-pg-*"))
    with pytest.raises(ClusterStartError) as info:  # noqa: SIM117
        with database_cluster(backend="local", config={"shared_buffers": "lots"}):
            pytest.fail("the body must not run")
    assert "shared_buffers" in str(info.value)
    assert info.value.log_tail is not None
    assert "shared_buffers" in info.value.log_tail
    assert set(Path("/dev/shm").glob("macrostrat-pg-*")) == before


def test_settings_user_and_database(no_docker):
    with database_cluster(
        backend="local",
        user="geologist",
        database="field data",
        optimize_for_testing=True,
        config={"work_mem": "12MB", "jit": False},
        in_memory=False,
    ) as db:
        row = db.run_query(
            "SELECT current_user, current_database(), current_setting('work_mem'), "
            "current_setting('jit'), current_setting('fsync'), "
            "current_setting('data_directory')"
        ).one()
        assert row[:5] == ("geologist", "field data", "12MB", "off", "off")
        assert row[5].startswith(tempfile.gettempdir())
        assert db.engine.url.database == "field data"


def test_config_file_is_included(no_docker, tmp_path):
    conf = tmp_path / "extra.conf"
    conf.write_text("work_mem = '7MB'\nstatement_timeout = '41s'\n")
    with database_cluster(backend="local", config=conf) as db:
        assert db.run_query("SHOW work_mem").scalar() == "7MB"
        assert db.run_query("SHOW statement_timeout").scalar() == "41s"


def test_missing_config_file_is_refused(no_docker, tmp_path):
    with pytest.raises(ClusterError, match="does not exist"):  # noqa: SIM117
        with database_cluster(backend="local", config=tmp_path / "nope.conf"):
            pass


def test_tcp_connections_need_the_password(no_docker):
    with database_cluster(backend="local", driver="psycopg") as db:
        url = db.engine.url
        assert url.drivername == "postgresql+psycopg"
        good = url.set(drivername="postgresql").render_as_string(hide_password=False)
        with psycopg.connect(good) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
        bad = url.set(drivername="postgresql", password="wrong").render_as_string(
            hide_password=False
        )
        with pytest.raises(psycopg.OperationalError, match="password"):
            psycopg.connect(bad)


@pytest.fixture
def shared_dir():
    """A directory other users may traverse (a root server user must reach it)."""
    path = Path(tempfile.mkdtemp(prefix="macrostrat-test-"))
    path.chmod(0o711)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_persistent_data_directory_survives_and_is_reused(no_docker, shared_dir):
    data = shared_dir / "cluster"
    with database_cluster(backend="local", data_volume=str(data)) as db:
        with db.engine.begin() as conn:
            conn.execute(text("CREATE TABLE kept (id int)"))
            conn.execute(text("INSERT INTO kept VALUES (42)"))
        _, pid = _cluster_paths(db)
    assert not process_alive(pid)
    assert (data / "PG_VERSION").exists()
    with database_cluster(backend="local", data_volume=str(data)) as db:
        assert db.run_query("SELECT id FROM kept").scalar() == 42


@pytest.mark.skipif(os.geteuid() != 0, reason="requires running as root")
def test_unreachable_data_directory_is_a_clear_error(no_docker, tmp_path):
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    with pytest.raises(ClusterError, match="cannot reach"):  # noqa: SIM117
        with database_cluster(backend="local", data_volume=str(private / "data")):
            pass


@pytest.mark.skipif(os.geteuid() != 0, reason="requires running as root")
def test_root_runs_the_server_as_an_unprivileged_user(no_docker):
    with LocalCluster() as cluster:
        pid = int((cluster.data_directory / "postmaster.pid").read_text().split()[0])
        uid_line = next(
            line
            for line in Path(f"/proc/{pid}/status").read_text().splitlines()
            if line.startswith("Uid:")
        )
        assert int(uid_line.split()[1]) != 0
        assert cluster.data_directory.stat().st_uid != 0


def test_unknown_extension_is_a_clear_error(no_docker):
    with pytest.raises(ClusterError, match="'no_such_extension' is not installed"):  # noqa: SIM117
        with database_cluster(backend="local", extensions=("no_such_extension",)):
            pass


def test_unknown_option_is_a_type_error(no_docker):
    with pytest.raises(TypeError, match="colour"):  # noqa: SIM117
        with database_cluster(backend="local", colour="blue"):
            pass


def test_unknown_backend_is_a_value_error():
    with pytest.raises(ValueError, match="backend must be"):
        choose_backend("kubernetes")


def test_auto_uses_local_binaries_without_docker(no_docker):
    assert choose_backend("auto") == "local"


def test_docker_backend_without_an_engine_fails_clearly(no_docker):
    with pytest.raises(BackendUnavailableError, match="No Docker engine answers"):  # noqa: SIM117
        with database_cluster("postgis/postgis:15-3.3", backend="docker"):
            pass


def test_auto_without_any_backend_names_the_three_ways(
    no_docker, monkeypatch, tmp_path
):
    monkeypatch.setattr(_binaries, "DEBIAN_ROOT", tmp_path / "none")
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv(_binaries.BINDIR_ENV, raising=False)
    with pytest.raises(BackendUnavailableError) as info:
        choose_backend("auto")
    message = str(info.value)
    assert "Docker" in message
    assert "postgresql-15-postgis-3" in message
    assert "TESTING_DATABASE" in message


def test_garbage_collected_cluster_is_stopped():
    cluster = LocalCluster().start()
    base = cluster.base
    pid = int((cluster.data_directory / "postmaster.pid").read_text().split()[0])
    del cluster
    gc.collect()
    assert not process_alive(pid)
    assert base is not None
    assert not base.exists()


def test_stop_is_idempotent_and_start_only_once():
    cluster = LocalCluster()
    with cluster, pytest.raises(ClusterError, match="already started"):
        cluster.start()
    cluster.stop()
    assert not cluster.running
