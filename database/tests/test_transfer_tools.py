"""Which client tools run: local ones, a container, or a clear error before running."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from macrostrat.database.errors import ToolVersionError
from macrostrat.database.transfer import pg_dump_to_file_sync, select_tools
from macrostrat.database.transfer.tools import find_client_tools

REAL = find_client_tools()


def _script(path: Path, body: str) -> None:
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


def _old_tools(bindir: Path, record: Path) -> None:
    """Stand-ins reporting PostgreSQL 12 (no old client can be installed here)."""
    bindir.mkdir()
    for prog in ("pg_dump", "pg_restore", "psql"):
        _script(
            bindir / prog,
            f'echo "{prog} $*" >> {record}\n'
            f'if [ "$1" = "--version" ]; then echo "{prog} (PostgreSQL) 12.22"; exit 0; fi\n'
            "exit 3\n",
        )


def test_real_tool_symlinks_are_used(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """$MACROSTRAT_PG_BINDIR pointing at symlinks to the real client programs."""
    assert REAL is not None
    assert REAL.bindir is not None
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for prog in ("pg_dump", "pg_restore", "psql"):
        (bindir / prog).symlink_to(REAL.bindir / prog)
    monkeypatch.setenv("MACROSTRAT_PG_BINDIR", str(bindir))
    tools = select_tools(make_url(database_url))
    assert (tools.kind, tools.bindir, tools.version) == ("local", bindir, REAL.version)
    assert tools.argv("pg_dump", "-x")[0] == str(bindir / "pg_dump")
    pg_dump_to_file_sync(database_url, tmp_path / "d.dump", quiet=True)
    assert (tmp_path / "d.dump").read_bytes().startswith(b"PGDMP")


def test_old_local_tools_without_docker_raise_before_running(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Stand-in tools that report version 12 against the real server; no docker on PATH."""
    record = tmp_path / "calls.txt"
    _old_tools(tmp_path / "old", record)
    monkeypatch.setenv("MACROSTRAT_PG_BINDIR", str(tmp_path / "old"))
    monkeypatch.setenv("PATH", str(tmp_path / "old"))
    out = tmp_path / "d.dump"
    with pytest.raises(ToolVersionError) as info:
        pg_dump_to_file_sync(database_url, out, quiet=True)
    server = REAL.version if REAL else None
    assert info.value.tool_version == 12
    assert "version 12" in str(info.value)
    assert f"PostgreSQL {info.value.server_version}" in str(info.value)
    assert info.value.server_version == server
    assert record.read_text().split("\n")[:-1] == ["pg_dump --version"]
    assert not out.exists()


def test_prefix_empty_means_local_tools_never_docker(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """command_prefix=[]: local only, even when a (stand-in) docker answers."""
    record = tmp_path / "calls.txt"
    _old_tools(tmp_path / "old", record)
    _script(tmp_path / "old" / "docker", f'echo "docker $*" >> {record}\necho 28.0\n')
    monkeypatch.setenv("MACROSTRAT_PG_BINDIR", str(tmp_path / "old"))
    monkeypatch.setenv("PATH", str(tmp_path / "old"))
    with pytest.raises(ToolVersionError, match=r"command_prefix=\[\]"):
        select_tools(make_url(database_url), command_prefix=[])
    assert "docker" not in record.read_text()
    # and with the real tools, [] runs them (upstream fell back to Docker)
    monkeypatch.setenv("MACROSTRAT_PG_BINDIR", str(REAL.bindir))  # type: ignore[union-attr]
    assert select_tools(make_url(database_url), command_prefix=[]).kind == "local"


def test_old_local_tools_fall_back_to_docker_image(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A recording stand-in for `docker` (no engine here) that runs the real tools.

    It checks the image (from $MACROSTRAT_PG_TOOLS_IMAGE with {major}), that
    the password is passed by name only, and runs the real program.
    """
    assert REAL is not None
    record = tmp_path / "calls.txt"
    _old_tools(tmp_path / "old", record)
    _script(
        tmp_path / "old" / "docker",
        f'echo "docker $*" >> {record}\n'
        'if [ "$1" = "version" ]; then echo 28.0; exit 0; fi\n'
        f'echo "PGPASSWORD set: ${{PGPASSWORD:+yes}}" >> {record}\n'
        "shift 11\n"  # run --rm -i --network host --log-driver none -e X -e Y
        f'echo "image $1" >> {record}\nshift\n'
        f'prog=$1\nshift\nexec {REAL.bindir}/$prog "$@"\n',
    )
    monkeypatch.setenv("MACROSTRAT_PG_BINDIR", str(tmp_path / "old"))
    monkeypatch.setenv("PATH", f"{tmp_path / 'old'}{os.pathsep}/usr/bin:/bin")
    monkeypatch.setenv("MACROSTRAT_PG_TOOLS_IMAGE", "macrostrat-test/postgis:{major}")
    out = tmp_path / "d.dump"
    pg_dump_to_file_sync(database_url, out, quiet=True)
    assert out.read_bytes().startswith(b"PGDMP")
    calls = record.read_text()
    assert f"image macrostrat-test/postgis:{REAL.version}" in calls
    assert "PGPASSWORD set: yes" in calls
    password = make_url(database_url).password
    assert password
    assert password not in calls
    assert "-e PGPASSWORD -e PGAPPNAME" in calls


@pytest.mark.docker
def test_real_docker_image(
    docker_client: object, database_url: str, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """With a Docker engine and the local test image, old local tools use the container."""
    import docker.errors

    assert REAL is not None
    image = f"macrostrat-test/postgis:{REAL.version}"
    try:
        docker_client.images.get(image)  # type: ignore[attr-defined]
    except docker.errors.ImageNotFound:
        pytest.skip(f"requires image {image}")
    _old_tools(tmp_path / "old", tmp_path / "calls.txt")
    monkeypatch.setenv("MACROSTRAT_PG_BINDIR", str(tmp_path / "old"))
    monkeypatch.setenv("MACROSTRAT_PG_TOOLS_IMAGE", "macrostrat-test/postgis:{major}")
    out = tmp_path / "d.dump"
    pg_dump_to_file_sync(database_url, out, quiet=True)
    assert out.read_bytes().startswith(b"PGDMP")


@pytest.mark.docker
def test_newer_server_uses_container_tools_for_real(
    docker_client: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A PostgreSQL 17 server in Docker, local PostgreSQL 15 tools: no stand-ins.

    The local pg_dump is too old for the server, so the dump and the restore
    run from the locally built ``macrostrat-test/postgis:17`` image, and the
    data round-trips (geometries included).
    """
    from macrostrat.database.transfer import pg_restore_from_file_sync
    from macrostrat.dinosaur.cluster import database_cluster
    from macrostrat.dinosaur.testing import require_docker_image

    assert REAL is not None
    image = require_docker_image(docker_client, "macrostrat-test/postgis:17")  # type: ignore[arg-type]
    if REAL.version >= 17:
        pytest.skip("requires local client tools older than PostgreSQL 17")
    monkeypatch.setenv("MACROSTRAT_PG_TOOLS_IMAGE", "macrostrat-test/postgis:{major}")
    with database_cluster(image, backend="docker", extensions=("postgis",)) as server:
        url = server.engine.url
        server.run_sql(
            "CREATE TABLE sites (id int PRIMARY KEY, geom geometry(Point, 4326));"
            "INSERT INTO sites SELECT i, ST_SetSRID(ST_MakePoint(i, i / 2.0), 4326)"
            " FROM generate_series(1, 300) i;"
        )
        tools = select_tools(url)
        assert tools.kind == "docker"
        assert tools.image == image
        assert tools.version == 17
        out = tmp_path / "d.dump"
        pg_dump_to_file_sync(url, out, quiet=True)
        assert out.read_bytes().startswith(b"PGDMP")
        copy = url.set(database="restored")
        pg_restore_from_file_sync(out, copy, create=True, quiet=True)
        query = (
            "SELECT count(*), md5(string_agg(ST_AsEWKB(geom)::text, ',' ORDER BY id))"
            " FROM sites"
        )
        from sqlalchemy import create_engine, text

        engines = [create_engine(url), create_engine(copy)]
        try:
            results = [e.connect().execute(text(query)).one() for e in engines]
        finally:
            for e in engines:
                e.dispose()
        assert results[0] == results[1]
        assert results[0][0] == 300


@pytest.mark.parametrize(
    ("prefix", "expected"),
    [
        (
            ["docker", "exec", "-i", "db"],
            ["docker", "exec", "-e", "PGPASSWORD", "-e", "PGAPPNAME", "-i", "db"],
        ),
        (
            ["/usr/bin/podman", "run", "--rm", "img"],
            ["/usr/bin/podman", "run", "-e", "PGPASSWORD", "-e", "PGAPPNAME", "--rm", "img"],
        ),
        (["ssh", "host"], ["ssh", "host"]),
        (["docker", "compose", "exec", "db"], ["docker", "compose", "exec", "db"]),
    ],
)  # fmt: skip
def test_container_prefix_forwards_credentials_by_name(
    prefix: list[str], expected: list[str]
) -> None:
    """docker/podman exec|run prefixes get ``-e PGPASSWORD -e PGAPPNAME``; others are kept."""
    tools = select_tools(make_url("postgresql://u:secret@h/db"), command_prefix=prefix)
    assert list(tools.prefix) == expected
    assert "secret" not in tools.argv("pg_dump", "x")


@pytest.mark.docker
def test_docker_exec_prefix_dumps_a_password_protected_server(
    docker_client: object, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """``command_prefix=["docker", "exec", "-i", <container>]`` reaches a server that needs a password.

    The server is a real container from ``macrostrat-test/postgis:15``; pg_dump
    runs inside it and connects to the container's own network address, which
    its pg_hba.conf answers with a password check (shown first: psql without
    PGPASSWORD is refused).  The password travels as an environment variable
    named by ``-e PGPASSWORD``, never on the command line.
    """
    import logging
    import subprocess

    from macrostrat.dinosaur.cluster import database_cluster
    from macrostrat.dinosaur.testing import require_docker_image

    image = require_docker_image(docker_client, "macrostrat-test/postgis:15")  # type: ignore[arg-type]
    with database_cluster(image, backend="docker") as server:
        url = server.engine.url
        assert url.password
        server.run_sql("CREATE TABLE marker (id int); INSERT INTO marker VALUES (42);")
        port = str(url.port)
        [container] = [
            c
            for c in docker_client.containers.list()  # type: ignore[attr-defined]
            if any(
                b.get("HostPort") == port
                for b in (c.ports.get("5432/tcp") or [])
            )
        ]  # fmt: skip
        ip = subprocess.run(
            ["docker", "exec", container.id, "hostname", "-i"],
            capture_output=True, text=True, check=True,
        ).stdout.split()[0]  # fmt: skip
        refused = subprocess.run(
            ["docker", "exec", container.id, "psql", "-w", "-h", ip,
             "-U", str(url.username), "-d", str(url.database), "-c", "SELECT 1"],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        assert refused.returncode != 0
        assert "password" in refused.stderr
        inside = url.set(host=ip, port=5432)
        out = tmp_path / "inside.dump"
        with caplog.at_level(logging.DEBUG, logger="macrostrat.database.transfer"):
            pg_dump_to_file_sync(
                inside,
                out,
                quiet=True,
                command_prefix=["docker", "exec", "-i", container.id],
                args=["--table", "marker"],
            )
        assert out.read_bytes().startswith(b"PGDMP")
        [run] = [
            r.getMessage()
            for r in caplog.records
            if r.getMessage().startswith("running ")
        ]
        assert run.startswith(
            f"running docker exec -e PGPASSWORD -e PGAPPNAME -i {container.id} pg_dump"
        )
        assert url.password not in run
        restored = subprocess.run(
            ["docker", "exec", "-i", container.id, "pg_restore", "-f", "-"],
            input=out.read_bytes(), capture_output=True, check=True,
        ).stdout  # fmt: skip
        assert b"42" in restored
