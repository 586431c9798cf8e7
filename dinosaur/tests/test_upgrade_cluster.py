"""`macrostrat.dinosaur.upgrade_cluster`: PostgreSQL 15 → 17 in a Docker volume.

The docker-marked tests need an engine and both local images
(``$MACROSTRAT_TEST_IMAGE``, default ``macrostrat-test/postgis:15``, and
``$MACROSTRAT_UPGRADE_IMAGE``, default ``macrostrat-test/postgis:17``, from
``scripts/build-test-images``) and skip naming whichever is missing. The
refusal and failure tests run first on the seeded volume and must leave it
untouched; the upgrade test after them upgrades it.
"""

from __future__ import annotations

import logging
import os
import secrets
from collections.abc import Iterator

import psycopg
import pytest
from sqlalchemy.engine import make_url

from macrostrat.dinosaur.cluster import database_cluster
from macrostrat.dinosaur.errors import DatabaseUpgradeError
from macrostrat.dinosaur.testing import require_docker_image
from macrostrat.dinosaur.upgrade_cluster import (
    check_database_cluster_version,
    count_database_tables,
    ensure_empty_docker_volume,
    replace_docker_volume,
    upgrade_database_cluster,
)
from macrostrat.dinosaur.upgrade_cluster import upgrade as upgrade_module
from macrostrat.dinosaur.upgrade_cluster.upgrade import _drop_bootstrap_role

SUPERUSER_PASSWORD = "old-cluster-pw"
MAPPER_PASSWORD = "mapper-pw"

SEED_POSTGRES = """
CREATE ROLE mapper LOGIN PASSWORD 'mapper-pw';
CREATE ROLE reader NOLOGIN;
CREATE TABLE notes (id int PRIMARY KEY, body text);
INSERT INTO notes SELECT i, 'note ' || i FROM generate_series(1, 50) i;
CREATE DATABASE gis OWNER mapper;
SET password_encryption = 'md5';
CREATE ROLE legacy LOGIN PASSWORD 'legacy-pw';
RESET password_encryption;
ALTER SYSTEM SET work_mem = '12MB';
ALTER SYSTEM SET max_connections = 120;
ALTER SYSTEM SET vacuum_defer_cleanup_age = 5;
"""
LEGACY_PASSWORD = "legacy-pw"
# A pg_hba.conf rule the new cluster does not have (the upgrade names it).
CUSTOM_HBA_RULE = "host gis mapper 10.99.0.0/16 scram-sha-256"

SEED_GIS = """
CREATE EXTENSION postgis;
INSERT INTO spatial_ref_sys (srid, auth_name, auth_srid, srtext, proj4text)
SELECT 990001, 'TEST', 990001, srtext, proj4text FROM spatial_ref_sys WHERE srid = 4326;
CREATE SCHEMA geo AUTHORIZATION mapper;
CREATE TABLE geo.points (id serial PRIMARY KEY, name text, geom geometry(Point, 4326));
INSERT INTO geo.points (name, geom)
SELECT 'p' || i, ST_SetSRID(ST_MakePoint(i * 0.37 - 90, i * 0.11 - 45), 4326)
FROM generate_series(1, 500) i;
CREATE TABLE geo.polys (id int PRIMARY KEY, geom geometry(Polygon, 3857));
INSERT INTO geo.polys
SELECT i, ST_Buffer(ST_SetSRID(ST_MakePoint(i * 1000, -i * 500), 3857), 250 + i, 8)
FROM generate_series(1, 40) i;
CREATE TABLE geo.custom (id int PRIMARY KEY, geom geometry(LineString, 990001));
INSERT INTO geo.custom VALUES
  (1, ST_SetSRID(ST_MakeLine(ST_MakePoint(0, 0), ST_MakePoint(1, 1)), 990001));
CREATE TABLE public.plain (id bigint PRIMARY KEY, payload jsonb, at timestamptz);
INSERT INTO public.plain
SELECT i, jsonb_build_object('i', i, 'sq', i * i), '2020-01-01'::timestamptz + i * interval '1 hour'
FROM generate_series(1, 2000) i;
CREATE TABLE public.empty_table (id int);
CREATE MATERIALIZED VIEW geo.point_count AS SELECT count(*) AS n FROM geo.points;
GRANT SELECT ON geo.points TO reader;
ALTER TABLE geo.points OWNER TO mapper;
"""

# Every table, every row, geometries as exact EWKB.
SNAPSHOT_QUERIES = {
    "postgres": {"notes": "SELECT id, body FROM notes ORDER BY id"},
    "gis": {
        "geo.points": "SELECT id, name, ST_AsEWKB(geom) FROM geo.points ORDER BY id",
        "geo.polys": "SELECT id, ST_AsEWKB(geom) FROM geo.polys ORDER BY id",
        "geo.custom": "SELECT id, ST_AsEWKB(geom) FROM geo.custom ORDER BY id",
        "public.plain": "SELECT id, payload, at FROM public.plain ORDER BY id",
        "public.empty_table": "SELECT id FROM public.empty_table",
        "geo.point_count": "SELECT n FROM geo.point_count",
        "srid 990001": "SELECT srid, auth_name, srtext FROM spatial_ref_sys WHERE srid = 990001",
    },
}

DOCKER = pytest.mark.docker


@pytest.fixture(scope="module")
def images(docker_client, docker_image) -> dict[int, str]:
    new = os.environ.get("MACROSTRAT_UPGRADE_IMAGE") or "macrostrat-test/postgis:17"
    return {15: docker_image, 17: require_docker_image(docker_client, new)}


def _url(db, database: str | None = None) -> str:
    url = make_url(db.engine.url).set(drivername="postgresql")
    if database:
        url = url.set(database=database)
    return url.render_as_string(hide_password=False)


def _snapshot(url_for) -> dict:
    snapshot = {}
    for database, queries in SNAPSHOT_QUERIES.items():
        with psycopg.connect(url_for(database)) as conn:
            for name, query in queries.items():
                snapshot[(database, name)] = conn.execute(query).fetchall()
    return snapshot


@pytest.fixture(scope="module")
def seeded(docker_client, images) -> Iterator[tuple[str, dict]]:
    """A volume with a PostgreSQL 15 cluster (two databases, PostGIS, roles, an
    MD5 password hash, ALTER SYSTEM settings, a custom pg_hba.conf rule)."""
    volume = f"macrostrat-upgrade-{secrets.token_hex(4)}"
    docker_client.volumes.create(volume)
    with database_cluster(
        images[15], backend="docker", data_volume=volume, password=SUPERUSER_PASSWORD
    ) as db:
        with psycopg.connect(_url(db), autocommit=True) as conn:
            for statement in SEED_POSTGRES.strip().rstrip(";").split(";\n"):
                conn.execute(statement)
        with psycopg.connect(_url(db, "gis"), autocommit=True) as conn:
            conn.execute(SEED_GIS)
        snapshot = _snapshot(lambda name: _url(db, name))
    assert len(snapshot[("gis", "geo.points")]) == 500
    docker_client.containers.run(
        images[15],
        entrypoint=["sh", "-c", f"echo '{CUSTOM_HBA_RULE}' >> /v/pg_hba.conf"],
        volumes={volume: {"bind": "/v", "mode": "rw"}},
        remove=True,
        user="0",
    )
    yield volume, snapshot
    for name in [v.name for v in docker_client.volumes.list()]:
        if name == volume or name.startswith(f"{volume}_"):
            docker_client.volumes.get(name).remove(force=True)


def _config_digest(client, image: str, volume: str) -> str:
    """Checksums of the cluster's version and configuration files (an upgrade
    must never rewrite them; the new cluster gets its own)."""
    script = (
        "cd /v && sha256sum PG_VERSION pg_hba.conf pg_ident.conf postgresql.conf "
        "postgresql.auto.conf"
    )
    return client.containers.run(
        image,
        entrypoint=["sh", "-c", script],
        volumes={volume: {"bind": "/v", "mode": "ro"}},
        remove=True,
        user="0",
    ).decode()


def _volume_names(client, volume: str) -> set[str]:
    return {v.name for v in client.volumes.list() if v.name.startswith(volume)}


def test_count_database_tables_ignores_catalogs(empty_db):
    """Upstream counted information_schema.tables (hundreds of catalog views)."""
    assert count_database_tables(empty_db) == 0  # spatial_ref_sys is PostGIS's
    empty_db.run_sql("CREATE TABLE a (id int); CREATE TABLE b (id int)")
    assert count_database_tables(empty_db) == 2


def test_bootstrap_role_creation_is_dropped_from_globals():
    sql = 'CREATE ROLE postgres;\nALTER ROLE postgres WITH SUPERUSER;\nCREATE ROLE "Odd";\n'
    assert _drop_bootstrap_role(sql, "postgres") == (
        'ALTER ROLE postgres WITH SUPERUSER;\nCREATE ROLE "Odd";\n'
    )
    assert 'CREATE ROLE "Odd"' not in _drop_bootstrap_role(sql, "Odd")


@DOCKER
def test_version_of_a_missing_volume_is_none_and_not_created(docker_client, images):
    name = f"macrostrat-absent-{secrets.token_hex(4)}"
    assert check_database_cluster_version(docker_client, name, image=images[15]) is None
    assert name not in {v.name for v in docker_client.volumes.list()}


@DOCKER
def test_trust_authentication_is_refused(docker_client, seeded):
    with pytest.raises(ValueError, match="trust"):
        upgrade_database_cluster(docker_client, seeded[0], 17, auth_method="trust")


@DOCKER
def test_refuses_while_a_container_uses_the_volume(docker_client, images, seeded):
    volume, _ = seeded
    with (
        database_cluster(
            images[15],
            backend="docker",
            data_volume=volume,
            password=SUPERUSER_PASSWORD,
        ),
        pytest.raises(DatabaseUpgradeError, match="in use by running container"),
    ):
        upgrade_database_cluster(docker_client, volume, 17, version_images=images)
    assert _volume_names(docker_client, volume) == {volume}
    assert check_database_cluster_version(docker_client, volume, image=images[15]) == 15


@DOCKER
def test_refuses_to_lose_an_unlisted_database(docker_client, images, seeded):
    volume, _ = seeded
    with pytest.raises(DatabaseUpgradeError, match=r"gis exist.*would be lost"):
        upgrade_database_cluster(
            docker_client, volume, 17, ["postgres"], version_images=images
        )
    with pytest.raises(DatabaseUpgradeError, match="nope do not exist"):
        upgrade_database_cluster(
            docker_client,
            volume,
            17,
            ["postgres", "gis", "nope"],
            version_images=images,
        )
    # Nothing left behind, nothing changed.
    assert _volume_names(docker_client, volume) == {volume}
    assert check_database_cluster_version(docker_client, volume, image=images[15]) == 15
    assert not docker_client.containers.list(all=True, filters={"volume": volume})


@DOCKER
def test_explicit_scram_is_refused_while_roles_have_md5_hashes(
    docker_client, images, seeded
):
    """scram-sha-256 would lock out roles whose migrated hashes are MD5."""
    volume, _ = seeded
    with pytest.raises(DatabaseUpgradeError, match=r"lock out role\(s\) legacy"):
        upgrade_database_cluster(
            docker_client,
            volume,
            17,
            version_images=images,
            auth_method="scram-sha-256",
        )
    assert _volume_names(docker_client, volume) == {volume}
    assert check_database_cluster_version(docker_client, volume, image=images[15]) == 15


@DOCKER
def test_a_failed_verification_leaves_the_volume_untouched(
    docker_client, images, seeded, monkeypatch
):
    """The restore is verified; a mismatch (forced here: the row counts read on
    the new cluster report one row too many) aborts before any swap."""
    volume, _ = seeded
    digest = _config_digest(docker_client, images[15], volume)
    real_counts = upgrade_module.table_row_counts

    def counts_with_a_mismatch(cluster, database):
        counts = real_counts(cluster, database)
        if "upgrade-target" in cluster.name and counts:
            first = sorted(counts)[0]
            counts[first] += 1
        return counts

    monkeypatch.setattr(upgrade_module, "table_row_counts", counts_with_a_mismatch)
    with pytest.raises(DatabaseUpgradeError, match="differs after the restore"):
        upgrade_database_cluster(docker_client, volume, 17, version_images=images)
    # The original keeps its files (the old server ran on it, so its WAL and
    # statistics moved on; the upgrade test later compares every row); no
    # backup was made, no _new is left.
    assert _config_digest(docker_client, images[15], volume) == digest
    assert check_database_cluster_version(docker_client, volume, image=images[15]) == 15
    assert _volume_names(docker_client, volume) == {volume}
    assert not docker_client.containers.list(all=True, filters={"volume": volume})
    assert not [
        n for n in docker_client.networks.list() if n.name.startswith(f"{volume}-")
    ]


@DOCKER
def test_upgrade_15_to_17_keeps_every_row_geometry_and_role(
    docker_client, images, seeded, caplog
):
    volume, before = seeded
    # An earlier backup must survive: the upgrade picks a new name.
    docker_client.volumes.create(f"{volume}_backup")
    docker_client.containers.run(
        images[15],
        entrypoint=["sh", "-c", "echo earlier > /b/marker"],
        volumes={f"{volume}_backup": {"bind": "/b", "mode": "rw"}},
        remove=True,
        user="0",
    )

    # A stopped container on the volume does not block the upgrade; it is named.
    stopped = docker_client.containers.create(
        images[15], volumes={volume: {"bind": "/v", "mode": "ro"}}
    )
    try:
        with caplog.at_level(logging.WARNING):
            result = upgrade_database_cluster(
                docker_client, volume, 17, version_images=images
            )
    finally:
        stopped.remove(force=True)
    warnings = "\n".join(r.getMessage() for r in caplog.records)
    assert f"stopped container(s) {stopped.name} mount volume {volume}" in warnings
    # MD5 hashes: md5 authentication (never trust), with the role named.
    assert result.auth_method == "md5"
    assert "legacy have MD5 password hashes" in warnings
    # What is not carried over is named: a setting 17 removed, a custom rule.
    assert "vacuum_defer_cleanup_age = '5' (unknown to the new major)" in warnings
    assert CUSTOM_HBA_RULE in warnings
    assert "work_mem" not in warnings

    assert (result.from_version, result.to_version) == (15, 17)
    assert sorted(result.databases) == ["gis", "postgres"]
    assert result.row_counts["gis"][("geo", "points")] == 500
    assert result.row_counts["gis"][("public", "plain")] == 2000
    assert result.superuser_password is None  # the old password was migrated
    assert result.backup_volume == f"{volume}_backup_2"
    marker = docker_client.containers.run(
        images[15],
        entrypoint=["cat", "/b/marker"],
        volumes={f"{volume}_backup": {"bind": "/b", "mode": "ro"}},
        remove=True,
    )
    assert marker.strip() == b"earlier"
    assert _volume_names(docker_client, volume) == {
        volume,
        f"{volume}_backup",
        f"{volume}_backup_2",
    }
    assert check_database_cluster_version(docker_client, volume, image=images[17]) == 17
    assert (
        check_database_cluster_version(
            docker_client, result.backup_volume, image=images[15]
        )
        == 15
    )

    with database_cluster(
        images[17], backend="docker", data_volume=volume, password=SUPERUSER_PASSWORD
    ) as db:
        assert db.run_query("SHOW server_version_num").scalar().startswith("17")
        after = _snapshot(lambda name: _url(db, name))
        assert after == before
        with psycopg.connect(_url(db, "gis")) as conn:
            assert conn.execute("SELECT postgis_lib_version() >= '3.4'").fetchone()[0]
            assert conn.execute(
                "SELECT has_table_privilege('reader', 'geo.points', 'SELECT')"
            ).fetchone()[0]
            owner = conn.execute(
                "SELECT tableowner FROM pg_tables WHERE tablename = 'points'"
            ).fetchone()[0]
            assert owner == "mapper"
            # No host line of the upgraded cluster trusts anyone.
            rules = conn.execute(
                "SELECT type, auth_method FROM pg_hba_file_rules"
            ).fetchall()
            assert rules
            assert not [r for r in rules if r[0].startswith("host") and r[1] == "trust"]
        # ALTER SYSTEM settings came along (max_connections needs a restart).
        assert db.run_query("SHOW work_mem").scalar() == "12MB"
        assert db.run_query("SHOW max_connections").scalar() == "120"
        # The role with an MD5 hash still logs in over TCP with its password.
        legacy = make_url(_url(db)).set(username="legacy", password=LEGACY_PASSWORD)
        with psycopg.connect(legacy.render_as_string(hide_password=False)) as conn:
            assert conn.execute("SELECT current_user").fetchone()[0] == "legacy"
        # The role and its password came along.
        mapper = make_url(_url(db, "gis")).set(
            username="mapper", password=MAPPER_PASSWORD
        )
        with psycopg.connect(mapper.render_as_string(hide_password=False)) as conn:
            assert conn.execute("SELECT count(*) FROM geo.points").fetchone()[0] == 500
        with pytest.raises(psycopg.OperationalError, match="password authentication"):
            psycopg.connect(
                mapper.set(password="wrong").render_as_string(hide_password=False)
            )


@DOCKER
def test_replacing_a_volume_empties_it_first(docker_client, images):
    """Upstream copied over the old files, leaving those the new cluster lacks."""
    src, dst = (f"macrostrat-copy-{secrets.token_hex(4)}" for _ in range(2))

    def sh(volume: str, script: str, mode: str = "rw") -> bytes:
        return docker_client.containers.run(
            images[15],
            entrypoint=["sh", "-c", script],
            volumes={volume: {"bind": "/v", "mode": mode}},
            remove=True,
            user="0",
        )

    try:
        for name in (src, dst):
            docker_client.volumes.create(name)
        sh(src, "echo new > /v/PG_VERSION && mkdir /v/base && echo x > /v/base/f")
        sh(dst, "echo old > /v/PG_VERSION && echo stale > /v/stale_file")
        replace_docker_volume(docker_client, src, dst, image=images[15])
        listing = sh(dst, "cd /v && find . | sort && cat PG_VERSION", mode="ro")
        assert listing.decode().split() == [
            ".",
            "./PG_VERSION",
            "./base",
            "./base/f",
            "new",
        ]
        # A volume that a container uses is never emptied.
        holder = docker_client.containers.create(
            images[15], volumes={dst: {"bind": "/v", "mode": "ro"}}
        )
        try:
            with pytest.raises(DatabaseUpgradeError, match="use it"):
                ensure_empty_docker_volume(docker_client, dst)
        finally:
            holder.remove(force=True)
    finally:
        for name in (src, dst):
            docker_client.volumes.get(name).remove(force=True)


def test_wait_for_ready_connects_and_times_out(database_url):
    from sqlalchemy import create_engine

    from macrostrat.dinosaur import wait_for_ready as from_root
    from macrostrat.dinosaur.upgrade_cluster import wait_for_ready

    assert from_root is wait_for_ready  # upstream re-exported it at the root
    engine = create_engine(
        database_url.replace("postgresql://", "postgresql+psycopg://", 1)
    )
    try:
        wait_for_ready(engine, timeout=5)
        assert engine.pool.checkedout() == 0  # the probe connection was closed
    finally:
        engine.dispose()
    dead = create_engine("postgresql+psycopg://nobody@127.0.0.1:1/none")
    with pytest.raises(TimeoutError, match="did not accept connections"):
        wait_for_ready(dead, timeout=0.5)


@DOCKER
def test_an_upstream_trust_cluster_gets_a_password_not_trust(docker_client, images):
    """Upstream volumes used trust authentication and often no superuser
    password; the upgraded cluster must still require one, and say which."""
    volume = f"macrostrat-trust-{secrets.token_hex(4)}"
    docker_client.volumes.create(volume)
    try:
        with database_cluster(
            images[15],
            backend="docker",
            data_volume=volume,
            environment={"POSTGRES_HOST_AUTH_METHOD": "trust"},
        ) as db:
            db.run_sql("CREATE TABLE t (id int); INSERT INTO t VALUES (1), (2)")
            db.run_sql("ALTER ROLE postgres PASSWORD NULL")
        result = upgrade_database_cluster(
            docker_client, volume, 17, version_images=images
        )
        assert result.superuser_password
        assert result.row_counts["postgres"] == {("public", "t"): 2}
        with database_cluster(
            images[17],
            backend="docker",
            data_volume=volume,
            password=result.superuser_password,
        ) as db:
            assert db.run_query("SELECT count(*) FROM t").scalar() == 2
            url = make_url(db.engine.url).set(drivername="postgresql")
            with pytest.raises(
                psycopg.OperationalError, match="password authentication"
            ):
                psycopg.connect(
                    url.set(password="guess").render_as_string(hide_password=False)
                )
    finally:
        for v in docker_client.volumes.list():
            if v.name == volume or v.name.startswith(f"{volume}_"):
                v.remove(force=True)
