"""The pytest plugin `macrostrat.dinosaur.testing`, in this session and in sub-runs."""

from __future__ import annotations

import psycopg
import pytest

from macrostrat.dinosaur.testing import (
    REQUIRE_DOCKER_ENV,
    TEMPLATE_ENV,
    TEST_DATABASE_PREFIX,
    _conninfo,
)


def _databases(url: str) -> set[str]:
    with psycopg.connect(_conninfo(url)) as conn:
        return {row[0] for row in conn.execute("SELECT datname FROM pg_database")}


def test_database_url_is_a_postgis_string(database_url):
    assert isinstance(database_url, str)
    with psycopg.connect(_conninfo(database_url)) as conn:
        assert (
            conn.execute("SELECT postgis_lib_version()").fetchone()[0].startswith("3.")
        )


def test_module_and_test_databases_are_fresh_clones(db, empty_db, database_template):
    module_name = db.engine.url.database
    test_name = empty_db.engine.url.database
    assert module_name != test_name
    for name in (module_name, test_name):
        assert name.startswith(TEST_DATABASE_PREFIX)
    for database in (db, empty_db):
        assert (
            database.run_query("SELECT postgis_lib_version()").scalar().startswith("3.")
        )
        tables = database.run_query(
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"
        ).scalar()
        assert tables == 1  # spatial_ref_sys only
    assert database_template in _databases(database_url_of(db))


def database_url_of(database) -> str:
    return database.engine.url.render_as_string(hide_password=False)


INNER_TESTS = """
import json, os
from sqlalchemy import text

def _record(name):
    with open(os.environ["RECORD_FILE"], "a") as fh:
        fh.write(name + "\\n")

def test_a(empty_db):
    _record(empty_db.engine.url.database)
    with empty_db.engine.begin() as conn:
        conn.execute(text("CREATE TABLE only_in_a (id int)"))

def test_b(empty_db):
    _record(empty_db.engine.url.database)
    assert empty_db.run_query(
        "SELECT to_regclass('only_in_a') IS NULL").scalar()
"""


@pytest.fixture
def inner(pytester, monkeypatch, tmp_path):
    record = tmp_path / "names.txt"
    monkeypatch.setenv("RECORD_FILE", str(record))
    pytester.makepyfile(test_inner=INNER_TESTS)

    def run(*args):
        result = pytester.runpytest_subprocess(
            "-p", "macrostrat.dinosaur.testing", "-p", "no:cacheprovider", *args
        )
        names = record.read_text().split() if record.exists() else []
        record.unlink(missing_ok=True)
        return result, names

    return run


def test_per_test_databases_are_isolated_and_dropped(inner, database_url, monkeypatch):
    monkeypatch.setenv("TESTING_DATABASE", database_url)
    monkeypatch.setenv(TEMPLATE_ENV, "macrostrat_test_inner_template")
    result, names = inner()
    result.assert_outcomes(passed=2)
    assert len(set(names)) == 2
    remaining = _databases(database_url)
    assert not set(names) & remaining
    # Without --teardown the template stays for the next run ...
    assert "macrostrat_test_inner_template" in remaining
    # ... and --teardown removes it.
    result, _ = inner("--teardown")
    result.assert_outcomes(passed=2)
    assert "macrostrat_test_inner_template" not in _databases(database_url)


def test_unreachable_testing_database_warns_and_falls_back(
    inner, monkeypatch, tmp_path
):
    monkeypatch.setenv("TESTING_DATABASE", "postgresql://nobody@127.0.0.1:1/none")
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-docker.sock")
    result, names = inner("-W", "default")
    result.assert_outcomes(passed=2, warnings=1)
    result.stdout.fnmatch_lines(["*TESTING_DATABASE is set but does not answer*"])
    assert len(names) == 2


def test_docker_client_skips_naming_the_reason(pytester, monkeypatch, tmp_path):
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-docker.sock")
    monkeypatch.delenv(REQUIRE_DOCKER_ENV, raising=False)  # CI sets it
    pytester.makepyfile(test_docker="def test_needs_docker(docker_client):\n    pass\n")
    result = pytester.runpytest_subprocess("-p", "macrostrat.dinosaur.testing", "-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*requires docker engine*"])


def test_require_docker_turns_the_skip_into_a_failure(pytester, monkeypatch, tmp_path):
    """CI sets MACROSTRAT_REQUIRE_DOCKER=1 once the engine answers: a Docker
    tier that stopped working must fail the run, not skip quietly."""
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-docker.sock")
    monkeypatch.setenv(REQUIRE_DOCKER_ENV, "1")
    pytester.makepyfile(test_docker="def test_needs_docker(docker_client):\n    pass\n")
    result = pytester.runpytest_subprocess("-p", "macrostrat.dinosaur.testing", "-rA")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        ["*requires docker engine*MACROSTRAT_REQUIRE_DOCKER=1*"]
    )
    # Unset (or not 1): the old skip.
    monkeypatch.setenv(REQUIRE_DOCKER_ENV, "0")
    result = pytester.runpytest_subprocess("-p", "macrostrat.dinosaur.testing", "-rs")
    result.assert_outcomes(skipped=1)


@pytest.mark.docker
def test_require_docker_fails_on_a_missing_image(pytester, monkeypatch, docker_client):
    """With the engine up but the image absent (e.g. its build failed)."""
    monkeypatch.setenv(REQUIRE_DOCKER_ENV, "1")
    monkeypatch.setenv("MACROSTRAT_TEST_IMAGE", "macrostrat-test/absent:0")
    pytester.makepyfile(test_docker="def test_needs_image(docker_image):\n    pass\n")
    result = pytester.runpytest_subprocess("-p", "macrostrat.dinosaur.testing", "-rA")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        ["*requires docker image macrostrat-test/absent:0*MACROSTRAT_REQUIRE_DOCKER=1*"]
    )


def test_test_database_prefix_matches_the_database_package():
    """The plugin keeps its own copy (it must not import SQLAlchemy at import
    time); both must name test databases the same way."""
    from macrostrat.database.orm import TEST_DATABASE_PREFIX as orm_prefix

    assert orm_prefix == TEST_DATABASE_PREFIX


def test_plugin_import_loads_no_database_stack():
    """Loading the plugin (as every pytest run of an app does) must not import
    SQLAlchemy, psycopg, results or Docker: fixtures import them when used."""
    import subprocess
    import sys

    code = (
        "import sys, macrostrat.dinosaur.testing\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('sqlalchemy', 'psycopg', 'results', 'docker', 'testcontainers') "
        "or m.startswith('macrostrat.database'))\n"
        "print(heavy)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"


def test_every_public_dinosaur_name_resolves():
    import macrostrat.dinosaur as dinosaur

    for name in dinosaur.__all__:
        assert getattr(dinosaur, name) is not None, name
