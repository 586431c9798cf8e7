"""Throwaway topologies in Docker: standbys, PgBouncer, failover (issue #21).

Every test but the first needs an engine and a local image with PostGIS and
PgBouncer (``$MACROSTRAT_TEST_IMAGE``, default ``macrostrat-test/postgis:15``
from ``scripts/build-test-images``); the ``docker_client``/``docker_image``
fixtures skip naming whichever is missing. Nothing here pulls from a registry.
Each test's containers and network carry a label of their own, so what
outlives a topology is found through the engine.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from macrostrat.dinosaur.cluster import (
    TOPOLOGY_LABEL,
    _docker_pgbouncer,
    _docker_topology,
    database_cluster,
    docker_topology,
)
from macrostrat.dinosaur.cluster.docker import DATA_DIR
from macrostrat.dinosaur.errors import BackendUnavailableError
from macrostrat.dinosaur.testing import REQUIRE_DOCKER_ENV

docker = pytest.mark.docker
limit = pytest.mark.timeout(150)

_TEST_LABEL = "org.macrostrat.test"


def _labelled(client: Any, label: str) -> tuple[list[Any], list[Any]]:
    """Containers (running or not) and networks labelled ``label`` (key=value, or key)."""
    filters = {"label": label}
    return (
        client.containers.list(all=True, filters=filters),
        client.networks.list(filters=filters),
    )


@pytest.fixture
def tag(docker_client: Any) -> Iterator[dict[str, str]]:
    """Labels for this test's topology; fails the test if a container or network outlives it."""
    value = secrets.token_hex(6)
    yield {_TEST_LABEL: value}
    containers, networks = _labelled(docker_client, f"{_TEST_LABEL}={value}")
    assert containers == [], "a container outlived the topology"
    assert networks == [], "a network outlived the topology"


def test_bad_options_are_refused_before_anything_starts() -> None:
    # Entering is where a topology starts: these fail before any engine is asked.
    refused = [
        (docker_topology(standbys=-1), ValueError, "standbys must be an integer >= 0"),
        (docker_topology(standbys=True), ValueError, "standbys must be an integer"),
        (
            docker_topology(pgbouncer="statement"),  # type: ignore[arg-type]
            ValueError,
            "pgbouncer must be None, 'session' or 'transaction', not 'statement'",
        ),
        (docker_topology(data_volume="kept"), TypeError, "data_volume"),
        (database_cluster(standbys=-2, backend="docker"), ValueError, "standbys"),
        (
            database_cluster(pgbouncer="statement", backend="local"),  # type: ignore[arg-type]
            ValueError,
            "pgbouncer must be",
        ),
    ]
    for cluster, error, message in refused:
        with pytest.raises(error, match=message):
            cluster.__enter__()


@docker
@limit
def test_standbys_stream_replay_and_refuse_writes(
    docker_replicated_topology: Any, docker_client: Any
) -> None:
    topo = docker_replicated_topology
    primary, (standby,) = topo.primary, topo.standbys
    with primary.connect() as conn:
        senders = conn.execute(
            "SELECT application_name, state FROM pg_stat_replication"
        ).fetchall()
        slots = conn.execute(
            "SELECT slot_name, active FROM pg_replication_slots"
        ).fetchall()
        conn.execute(
            "CREATE TABLE places (id int, geom geometry(Point, 4326));"
            "INSERT INTO places VALUES (1, ST_SetSRID(ST_MakePoint(7, 45), 4326))"
        )
    assert senders == [("standby_1", "streaming")]
    assert slots == [("standby_1", True)]
    topo.wait_for_replay()
    with standby.connect() as conn:
        assert conn.execute("SELECT pg_is_in_recovery()").fetchone() == (True,)
        assert conn.execute("SELECT id, ST_AsText(geom) FROM places").fetchall() == [
            (1, "POINT(7 45)")
        ]
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            conn.execute("INSERT INTO places VALUES (2, NULL)")
    # Two containers of the image, on the topology's own network, data on tmpfs.
    containers, networks = _labelled(docker_client, topo.label)
    assert sorted(c.name for c in containers) == sorted([primary.name, standby.name])
    assert [n.name for n in networks] == [topo.network]
    for container in containers:
        assert topo.network in container.attrs["NetworkSettings"]["Networks"]
        assert DATA_DIR in container.attrs["HostConfig"]["Tmpfs"]
    assert standby.container.image.id == primary.container.image.id


@docker
@limit
def test_synchronous_commits_wait_for_the_first_standby(
    docker_replicated_topology: Any,
) -> None:
    topo = docker_replicated_topology
    primary, standby = topo.primary, topo.standbys[0]
    with primary.connect() as conn:
        assert conn.execute(
            "SELECT application_name, sync_state FROM pg_stat_replication"
        ).fetchall() == [("standby_1", "sync")]
        assert conn.execute("SHOW synchronous_commit").fetchone() == ("on",)
        conn.execute("CREATE TABLE synced (v int)")
    with standby.connect() as conn:  # promoted, it must not wait for a standby
        assert conn.execute("SHOW synchronous_standby_names").fetchone() == ("",)

    # Frozen, the standby cannot flush: a commit waits for it (SyncRep) until
    # cancelled, while a commit asking only for a local flush does not.
    standby.container.pause()
    try:
        with primary.connect() as writer, primary.connect() as watcher:
            notices: list[str] = []
            writer.add_notice_handler(lambda d: notices.append(d.message_primary))
            failures: list[BaseException] = []

            def commit() -> None:
                try:
                    writer.execute("INSERT INTO synced VALUES (1)")
                except BaseException as exc:  # reported by the assertion below
                    failures.append(exc)

            thread = threading.Thread(target=commit)
            thread.start()
            deadline = time.monotonic() + 30
            while True:
                row = watcher.execute(
                    "SELECT wait_event FROM pg_stat_activity WHERE pid = %s",
                    (writer.info.backend_pid,),
                ).fetchone()
                if row == ("SyncRep",):
                    break
                assert time.monotonic() < deadline, f"no SyncRep wait: {row}"
                time.sleep(0.05)
            assert thread.is_alive()
            watcher.execute("SELECT pg_cancel_backend(%s)", (writer.info.backend_pid,))
            thread.join(30)
            assert not thread.is_alive()
            assert failures == []
            assert any("synchronous replication" in n for n in notices), notices
            writer.execute("SET synchronous_commit = local")
            writer.execute("INSERT INTO synced VALUES (2)")  # returns at once
    finally:
        standby.container.unpause()
    topo.wait_for_replay()
    with standby.connect() as conn:
        assert conn.execute("SELECT v FROM synced ORDER BY v").fetchall() == [
            (1,),
            (2,),
        ]


@docker
@limit
def test_pgbouncer_container_pools_transactions(
    docker_pgbouncer_topology: Any,
) -> None:
    topo = docker_pgbouncer_topology
    bouncer = topo.pgbouncer
    assert topo.url() == bouncer.url()
    assert bouncer.container.name.endswith("-pgbouncer")
    options = {"autocommit": True, "connect_timeout": 5}
    if not bouncer.supports_prepared_statements:
        options["prepare_threshold"] = None
    pid_sql = "SELECT pg_backend_pid()"
    with (
        psycopg.connect(topo.url(), **options) as first,
        psycopg.connect(topo.url(), **options) as second,
    ):
        pids = [c.execute(pid_sql).fetchone() for c in (first, second, first)]
        for i in range(8):  # past psycopg's prepare threshold
            assert first.execute("SELECT %s::int", (i,)).fetchone() == (i,)
        assert second.execute("SELECT ST_AsText(ST_MakePoint(1, 2))").fetchone() == (
            "POINT(1 2)",
        )
    # Two open clients, one server backend: transaction pooling.
    assert len(set(pids)) == 1
    with topo.primary.connect() as a, topo.primary.connect() as b:
        assert a.info.backend_pid != b.info.backend_pid  # direct: one each
        (address,) = a.execute(
            "SELECT host(client_addr) FROM pg_stat_activity WHERE pid = %s",
            (pids[0][0],),
        ).fetchone()
    # That backend serves PgBouncer's container, over the topology's network.
    networks = bouncer.container.attrs["NetworkSettings"]["Networks"]
    assert address == networks[topo.network]["IPAddress"]
    pools = {row[1]: row[-1] for row in bouncer.admin("SHOW POOLS")}
    assert pools["postgres"] == "transaction"


@docker
@limit
def test_database_cluster_on_docker_with_a_standby_and_session_pooling(
    docker_client: Any, docker_image: str, tag: dict[str, str]
) -> None:
    with database_cluster(
        docker_image,
        backend="docker",
        standbys=1,
        pgbouncer="session",
        optimize_for_testing=True,
        labels=tag,
    ) as db:
        assert db.run_query(
            "SELECT application_name, state FROM pg_stat_replication"
        ).all() == [("standby_1", "streaming")]
        containers, networks = _labelled(
            docker_client, f"{_TEST_LABEL}={tag[_TEST_LABEL]}"
        )
        assert sorted(c.name.rsplit("-", 1)[-1] for c in containers) == [
            "1",
            "pgbouncer",
            "primary",
        ]
        assert {c.status for c in containers} == {"running"}
        assert len(networks) == 1
        url = db.engine.url
        bouncer_port = url.port
        conninfo = url.set(drivername="postgresql").render_as_string(False)
        with (
            psycopg.connect(conninfo, autocommit=True) as first,
            psycopg.connect(conninfo, autocommit=True) as second,
        ):
            first_pids = {
                first.execute("SELECT pg_backend_pid()").fetchone() for _ in range(3)
            }
            second_pid = second.execute("SELECT pg_backend_pid()").fetchone()
        assert len(first_pids) == 1  # a client keeps its server backend
        assert second_pid not in first_pids  # and has it to itself
        with psycopg.connect(conninfo, autocommit=True) as third:
            third_pid = third.execute("SELECT pg_backend_pid()").fetchone()
        assert third_pid in first_pids | {second_pid}  # a pooled backend, reused
        admin = url.set(drivername="postgresql", database="pgbouncer")
        with psycopg.connect(
            admin.render_as_string(False), autocommit=True, prepare_threshold=None
        ) as conn:
            pools = {row[1]: row[-1] for row in conn.execute("SHOW POOLS")}
    assert pools["postgres"] == "session"
    published = {
        int(binding["HostPort"])
        for c in containers
        for binding in (c.attrs["NetworkSettings"]["Ports"].get("6432/tcp") or ())
    }
    assert bouncer_port in published


@docker
@limit
def test_failover_to_a_promoted_standby(
    docker_client: Any, docker_image: str, tag: dict[str, str]
) -> None:
    with docker_topology(
        image=docker_image, standbys=2, synchronous=True, labels=tag
    ) as topo:
        primary, (first, second) = topo.primary, topo.standbys
        with psycopg.connect(topo.multi_host_url(), autocommit=True) as conn:
            assert conn.info.port == primary.port
            conn.execute("CREATE TABLE t (v int); INSERT INTO t VALUES (1)")
        topo.wait_for_replay()
        # A stopped standby gives its slot back.
        second.stop()
        assert second.status == "exited"
        assert not second.running
        with primary.connect() as conn:
            slots = conn.execute(
                "SELECT slot_name FROM pg_replication_slots"
            ).fetchall()
        assert slots == [("standby_1",)]
        primary.kill()  # as a crash would
        assert not primary.running
        first.promote()
        with psycopg.connect(
            topo.multi_host_url(), autocommit=True, connect_timeout=5
        ) as conn:
            assert conn.info.port == first.port
            assert conn.execute("SELECT pg_is_in_recovery()").fetchone() == (False,)
            conn.execute("SET statement_timeout = '20s'")
            conn.execute(
                "INSERT INTO t VALUES (2)"
            )  # no synchronous standby to wait for
            assert conn.execute("SELECT v FROM t ORDER BY v").fetchall() == [(1,), (2,)]
        network = topo.network
        assert len(_labelled(docker_client, topo.label)[0]) == 3
    assert _labelled(docker_client, topo.label) == ([], [])
    assert docker_client.networks.list(names=[network]) == []


@docker
@limit
def test_an_interrupted_start_removes_everything(
    docker_client: Any,
    docker_image: str,
    tag: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: list[str] = []

    def interrupted(container: Any, *args: Any, **kwargs: Any) -> Any:
        label = f"{_TEST_LABEL}={tag[_TEST_LABEL]}"
        seen.extend(c.name for c in _labelled(docker_client, label)[0])
        raise KeyboardInterrupt

    monkeypatch.setattr(_docker_topology, "start_pgbouncer", interrupted)
    with (
        pytest.raises(KeyboardInterrupt),
        docker_topology(
            image=docker_image, standbys=1, pgbouncer="session", labels=tag
        ),
    ):
        pytest.fail("the topology started")
    # Primary, standby and PgBouncer existed; the tag fixture checks they are gone.
    assert sorted(name.rsplit("-", 1)[-1] for name in seen) == [
        "1",
        "pgbouncer",
        "primary",
    ]


@docker
@limit
def test_an_image_without_pgbouncer_is_named(
    docker_image: str, tag: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_docker_pgbouncer, "_EXECUTABLE", "no-such-pgbouncer")
    with (
        pytest.raises(BackendUnavailableError, match=r"has no pgbouncer.*build-test"),
        docker_topology(
            image=docker_image, standbys=0, pgbouncer="transaction", labels=tag
        ),
    ):
        pytest.fail("the topology started")


@docker
@limit
def test_plugin_fixtures_skip_or_fail_naming_a_missing_pgbouncer(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    docker_client: Any,
    docker_image: str,
) -> None:
    """The plugin's Docker topologies skip like the other Docker fixtures, or
    fail with ``MACROSTRAT_REQUIRE_DOCKER=1``, when the image lacks PgBouncer."""
    before = _labelled(docker_client, TOPOLOGY_LABEL)
    pytester.makeconftest(
        "from macrostrat.dinosaur.cluster import _docker_pgbouncer\n"
        "_docker_pgbouncer._EXECUTABLE = 'no-such-pgbouncer'\n"
    )
    pytester.makepyfile(
        test_inner="def test_pooled(docker_pgbouncer_topology):\n    pass\n"
    )
    monkeypatch.setenv("MACROSTRAT_TEST_IMAGE", docker_image)
    monkeypatch.setenv("TESTCONTAINERS_RYUK_DISABLED", "true")
    monkeypatch.delenv(REQUIRE_DOCKER_ENV, raising=False)
    result = pytester.runpytest_subprocess("-p", "macrostrat.dinosaur.testing", "-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(
        [f"*requires a docker topology from image {docker_image}*has no pgbouncer*"]
    )
    monkeypatch.setenv(REQUIRE_DOCKER_ENV, "1")
    result = pytester.runpytest_subprocess("-p", "macrostrat.dinosaur.testing", "-rA")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*has no pgbouncer*MACROSTRAT_REQUIRE_DOCKER=1*"])
    after = _labelled(docker_client, TOPOLOGY_LABEL)  # the sub-runs left nothing
    assert [{x.id for x in found} for found in after] == [
        {x.id for x in found} for found in before
    ]


@docker
@limit
def test_an_interrupt_while_the_network_is_created_leaks_nothing(
    docker_client: Any,
    docker_image: str,
    tag: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from docker.models.networks import NetworkCollection

    create = NetworkCollection.create
    made: list[str] = []

    def created_then_interrupted(self: Any, *args: Any, **kwargs: Any) -> Any:
        made.append(create(self, *args, **kwargs).name)
        raise KeyboardInterrupt

    monkeypatch.setattr(NetworkCollection, "create", created_then_interrupted)
    with (
        pytest.raises(KeyboardInterrupt),
        docker_topology(image=docker_image, standbys=1, labels=tag),
    ):
        pytest.fail("the topology started")
    assert len(made) == 1  # the tag fixture checks it is gone


@docker
@limit
def test_members_are_reached_as_testcontainers_reaches_the_primary(
    docker_client: Any,
    docker_image: str,
    tag: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """In testcontainers' ``bridge_ip`` mode every member is reached at its own
    address on its own port; no member but the primary (whose environment
    testcontainers sets) shows the password in ``docker inspect``."""
    from testcontainers.core.config import ConnectionMode, testcontainers_config

    monkeypatch.setattr(
        testcontainers_config, "connection_mode_override", ConnectionMode.bridge_ip
    )
    with docker_topology(
        image=docker_image, standbys=1, pgbouncer="session", labels=tag
    ) as topo:
        members = [*topo.standbys, topo.pgbouncer]
        for member in (topo.primary, *members):
            assert member is not None
            member.container.reload()
            networks = member.container.attrs["NetworkSettings"]["Networks"]
            assert member.host == networks[topo.network]["IPAddress"]
        assert [m.port for m in members] == [5432, 6432]
        topo.wait_for_replay()
        for member in members:
            with psycopg.connect(member.url(), connect_timeout=5) as conn:
                assert conn.execute("SELECT 1").fetchone() == (1,)
            env = " ".join(member.container.attrs["Config"]["Env"] or [])
            assert topo.primary.password not in env
