"""The FastAPI example (examples/fastapi_app.py), driven with TestClient."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi.testclient import TestClient

from macrostrat.auth_system.core import (
    DatabaseIdentityProvider,
    get_auth_database,
    set_auth_database,
)
from macrostrat.auth_system.errors import AuthConfigurationError
from macrostrat.auth_system.legacy.context import _reset

EXAMPLE = Path(__file__).parents[1] / "examples" / "fastapi_app.py"


@pytest.fixture
def example():
    spec = importlib.util.spec_from_file_location("fastapi_app_example", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    yield module
    try:
        get_auth_database().database.engine.dispose()
    except RuntimeError:
        pass
    _reset()
    set_auth_database(None)


@pytest.fixture
def env(monkeypatch, empty_database_url, fake_orcid, secret_key, token_key):
    values = {
        "SECRET_KEY": secret_key,
        "MACROSTRAT_AUTH_TOKEN_KEY": token_key,
        "DATABASE_URL": empty_database_url,
        "ORCID_CLIENT_ID": "APP-EXAMPLE",
        "ORCID_CLIENT_SECRET": "example-secret",
        "ORCID_REDIRECT_URI": "https://testserver/auth/orcid/callback",
        "ORCID_BASE_URL": fake_orcid.base_url,
    }
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    return values


def test_example_protects_an_endpoint_with_scopes(example, env):
    client = TestClient(example.create_app(), base_url="https://testserver")
    assert client.get("/samples").status_code == 401
    provider = DatabaseIdentityProvider()
    provider.create_user("reader", "reader-password", roles=["readers"])
    provider.create_user("outsider", "outsider-password")

    login = client.post(
        "/auth/login", json={"username": "outsider", "password": "outsider-password"}
    )
    assert login.status_code == 200
    assert client.get("/samples").status_code == 403

    client.post(
        "/auth/login", json={"username": "reader", "password": "reader-password"}
    )
    response = client.get("/samples")
    assert response.status_code == 200
    assert response.json() == {
        "samples": ["granite", "basalt"],
        "scopes": ["authenticated", "readers"],
    }
    client.post("/auth/logout")
    assert client.get("/samples").status_code == 401


def test_example_accepts_api_tokens(example, env):
    client = TestClient(example.create_app(), base_url="https://testserver")
    token = get_auth_database().create_api_token("readers", 3600)
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get("/samples", headers=headers).json()["scopes"] == ["readers"]
    headers = {"Authorization": "Bearer wrong-token-value"}
    assert client.get("/samples", headers=headers).status_code == 401


def test_example_orcid_login(example, env, fake_orcid):
    client = TestClient(
        example.create_app(), base_url="https://testserver", follow_redirects=False
    )
    redirect = client.get("/auth/orcid/login")
    state = parse_qs(urlsplit(redirect.headers["location"]).query)["state"][0]
    done = client.get(f"/auth/orcid/callback?code=abc&state={state}")
    assert done.status_code == 303
    assert client.get("/auth/status").json()["username"] == "0000-0002-1825-0097"
    assert client.get("/samples").status_code == 403  # no groups yet


@pytest.mark.parametrize(
    ("name", "value", "match"),
    [
        ("SECRET_KEY", "short", "secret key"),
        ("MACROSTRAT_AUTH_TOKEN_KEY", "short", "API-token key"),
        ("ORCID_BASE_URL", "http://orcid.org", "https"),
    ],
)
def test_example_misconfiguration_fails_at_startup(
    example, env, monkeypatch, name, value, match
):
    monkeypatch.setenv(name, value)
    with pytest.raises(AuthConfigurationError, match=match):
        example.create_app()


def test_example_is_about_a_dozen_lines():
    source = EXAMPLE.read_text()
    body = source[source.index("def create_app") : source.index("    @app.get")]
    lines = [line for line in body.splitlines()[2:] if line.strip()]
    assert len(lines) <= 14


def _without_docstrings(block: str) -> list[str]:
    return [line for line in block.splitlines() if '"""' not in line]


@pytest.mark.parametrize(
    "doc",
    [
        EXAMPLE.parents[1] / "README.md",
        EXAMPLE.parents[2] / "docs" / "auth-system.md",
    ],
)
def test_docs_show_the_example_verbatim(doc):
    source = EXAMPLE.read_text()
    block = source[source.index("def create_app") : source.index("    return app")]
    text = doc.read_text()
    start = text.index("def create_app")
    shown = text[start : text.index("    return app", start)]
    assert _without_docstrings(shown) == _without_docstrings(block)
