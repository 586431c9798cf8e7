"""Which backend the `database_url` fixture asks for (no engine needed)."""

from __future__ import annotations

import pytest

from macrostrat.dinosaur.testing import BACKEND_ENV, database_url_backend


@pytest.mark.parametrize(
    ("backend_env", "image_env", "expected"),
    [
        (None, None, "auto"),
        (None, "macrostrat-test/postgis:15", "docker"),
        ("local", "macrostrat-test/postgis:15", "local"),
        ("docker", None, "docker"),
        ("auto", None, "auto"),
    ],
)
def test_database_url_backend(monkeypatch, backend_env, image_env, expected):
    for name, value in ((BACKEND_ENV, backend_env), ("POSTGRES_IMAGE", image_env)):
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
    assert database_url_backend() == expected


def test_local_backend_env_keeps_the_fixture_off_docker(pytester, monkeypatch):
    """With MACROSTRAT_TEST_BACKEND=local, POSTGRES_IMAGE does not pull the
    fixture into Docker (CI relies on this to keep the bulk of the suite local)."""
    monkeypatch.delenv("TESTING_DATABASE", raising=False)
    monkeypatch.setenv(BACKEND_ENV, "local")
    monkeypatch.setenv("POSTGRES_IMAGE", "macrostrat-test/absent:0")
    pytester.makepyfile(
        test_inner=(
            "def test_local(db):\n"
            "    d = db.run_query('SHOW data_directory').scalar()\n"
            "    assert d != '/var/lib/postgresql/data'\n"
        )
    )
    result = pytester.runpytest_subprocess(
        "-p", "macrostrat.dinosaur.testing", "-p", "no:cacheprovider"
    )
    result.assert_outcomes(passed=1)
