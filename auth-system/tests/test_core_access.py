"""core dependencies in a FastAPI app: users from cookies, API tokens, groups, scopes."""

from __future__ import annotations

from typing import Annotated

import pytest
from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient
from starlette.middleware.authentication import AuthenticationMiddleware

from macrostrat.auth_system.core import (
    DatabaseIdentityProvider,
    get_groups,
    get_groups_from_header_token,
    get_scopes,
    get_user_id,
    get_user_token_from_cookie,
    has_access,
    require_scopes,
)
from macrostrat.auth_system.legacy import AuthAPI, JWTBackend, set_identity_provider


@pytest.fixture
def core_client(backend, auth_store):
    provider = DatabaseIdentityProvider()
    set_identity_provider(provider)
    provider.create_user("ada", "ada-password", roles=["admin", "readers"])
    provider.create_user("ben", "ben-password", roles=["readers"])

    app = FastAPI()
    app.add_middleware(AuthenticationMiddleware, backend=backend)
    app.mount("/auth", AuthAPI)

    @app.get("/whoami")
    def whoami(
        groups: Annotated[list[int], Depends(get_groups)],
        uid: Annotated[str | None, Depends(get_user_id)],
        access: Annotated[bool, Depends(has_access)],
        scopes: Annotated[list[str], Depends(get_scopes)],
        token_data: Annotated[object, Depends(get_user_token_from_cookie)],
        header_group: Annotated[int | None, Depends(get_groups_from_header_token)],
    ):
        return {
            "groups": groups,
            "uid": uid,
            "access": access,
            "scopes": scopes,
            "cookie_sub": token_data.sub if token_data else None,
            "header_group": header_group,
        }

    @app.get("/readers", dependencies=[Depends(require_scopes("readers"))])
    def readers():
        return {"ok": True}

    @app.get("/admin")
    def admin(scopes: Annotated[list[str], Depends(require_scopes("admin"))]):
        return {"scopes": scopes}

    with TestClient(app, base_url="https://testserver") as client:
        yield client


def _login(client, name):
    response = client.post(
        "/auth/login", json={"username": name, "password": f"{name}-password"}
    )
    assert response.status_code == 200, response.text


def test_anonymous_request_has_no_access(core_client):
    assert core_client.get("/whoami").json() == {
        "groups": [],
        "uid": None,
        "access": False,
        "scopes": ["public"],
        "cookie_sub": None,
        "header_group": None,
    }


def test_development_environment_does_not_bypass_checks(
    core_client, monkeypatch: pytest.MonkeyPatch
):
    # Upstream: ENVIRONMENT=development made has_access() always true.
    monkeypatch.setenv("ENVIRONMENT", "development")
    assert core_client.get("/whoami").json()["access"] is False
    assert core_client.get("/admin").status_code == 401


def test_cookie_user_gets_groups_from_the_database(core_client, auth_store):
    _login(core_client, "ben")
    body = core_client.get("/whoami").json()
    assert body["uid"] == "ben"
    assert body["cookie_sub"] == "ben"
    assert body["groups"] == auth_store.group_ids_for("ben")
    assert body["access"] is False
    assert body["scopes"] == ["authenticated", "readers"]
    assert core_client.get("/readers").json() == {"ok": True}
    response = core_client.get("/admin")
    assert response.status_code == 403
    assert "admin" in response.json()["detail"]


def test_admin_group_gives_access(core_client):
    _login(core_client, "ada")
    body = core_client.get("/whoami").json()
    assert body["access"] is True
    assert body["scopes"] == ["authenticated", "admin", "readers"]
    assert core_client.get("/admin").status_code == 200


def test_membership_changes_apply_without_new_login(core_client, auth_store):
    _login(core_client, "ben")
    assert core_client.get("/admin").status_code == 403
    user = auth_store.get_user("ben")
    auth_store.add_member(user.id, "admin")
    assert core_client.get("/admin").status_code == 200


def test_api_token_gives_its_group(core_client, auth_store):
    token = auth_store.create_api_token("admin", 600)
    response = core_client.get("/whoami", headers={"Authorization": f"Bearer {token}"})
    body = response.json()
    admin_id = auth_store.create_group("admin")
    assert body["header_group"] == admin_id
    assert body["groups"] == [admin_id]
    assert body["access"] is True
    assert body["uid"] is None
    assert body["scopes"] == ["admin"]
    assert (
        core_client.get(
            "/admin", headers={"Authorization": f"Bearer {token}"}
        ).status_code
        == 200
    )


def test_reader_token_is_not_admin(core_client, auth_store):
    token = auth_store.create_api_token("readers", 600)
    headers = {"Authorization": f"Bearer {token}"}
    assert core_client.get("/whoami", headers=headers).json()["access"] is False
    assert core_client.get("/readers", headers=headers).status_code == 200
    assert core_client.get("/admin", headers=headers).status_code == 403


def test_cookie_user_and_token_groups_combine(core_client, auth_store):
    _login(core_client, "ben")
    token = auth_store.create_api_token("admin", 600)
    body = core_client.get(
        "/whoami", headers={"Authorization": f"Bearer {token}"}
    ).json()
    assert body["access"] is True
    assert body["uid"] == "ben"
    assert body["scopes"] == ["authenticated", "admin", "readers"]


@pytest.mark.parametrize(
    "header",
    [
        "Bearer not-a-known-token-at-all",
        "Bearer " + "z" * 500,
        "Bearer ",
        "Basic YWxhZGRpbjpvcGVuc2VzYW1l",
        "tokenwithoutscheme",
    ],
)
def test_unknown_or_malformed_api_token_is_401(core_client, auth_store, header):
    # Upstream answered 500 (AttributeError on None).
    response = core_client.get("/whoami", headers={"Authorization": header})
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert "token" in response.json()["detail"].lower()


def test_expired_api_token_is_401(core_client, auth_store):
    from sqlalchemy import text

    token = auth_store.create_api_token("admin", 600)
    with auth_store.session() as session:
        session.execute(
            text("UPDATE macrostrat_auth.token SET expires_on = now() - interval '1 s'")
        )
    response = core_client.get("/admin", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401


def test_long_api_token_over_http(core_client, auth_store):
    token = "L" * 300
    auth_store.create_api_token("admin", 600, token=token)
    response = core_client.get("/admin", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200


def test_invalid_or_revoked_cookie_counts_as_anonymous(core_client):
    _login(core_client, "ada")
    stolen = dict(core_client.cookies)

    def replay():
        core_client.cookies.clear()
        for name, value in stolen.items():
            core_client.cookies.set(name, value)
        return core_client.get("/whoami").json()

    assert replay()["access"] is True  # the copied cookies do authenticate
    assert core_client.post("/auth/logout").status_code == 200
    body = replay()
    assert body["uid"] is None
    assert body["access"] is False
    core_client.cookies.clear()
    core_client.cookies.set("access_token_cookie", "garbage")
    assert core_client.get("/whoami").json()["scopes"] == ["public"]


def test_refresh_token_in_access_cookie_is_anonymous(core_client):
    _login(core_client, "ada")
    access = core_client.cookies.get("access_token_cookie")
    refresh = core_client.cookies.get("refresh_token_cookie")
    core_client.cookies.clear()
    core_client.cookies.set("access_token_cookie", access)
    assert core_client.get("/whoami").json()["access"] is True
    core_client.cookies.set("access_token_cookie", refresh)
    assert core_client.get("/whoami").json()["access"] is False


def test_require_scopes_needs_names():
    with pytest.raises(ValueError):
        require_scopes()
    with pytest.raises(ValueError):
        require_scopes("")


def test_core_without_a_jwt_backend_is_a_configuration_error(auth_store):
    from starlette.requests import Request

    from macrostrat.auth_system.errors import AuthNotConfiguredError
    from macrostrat.auth_system.legacy.context import _reset

    _reset()
    request = Request({"type": "http", "method": "GET", "path": "/", "headers": []})
    with pytest.raises(AuthNotConfiguredError, match="create_backend"):
        has_access(request)


def test_bearer_access_jwt_is_a_user_not_an_api_token(core_client, backend):
    _login(core_client, "ben")
    token = core_client.cookies.get("access_token_cookie")
    core_client.cookies.clear()
    headers = {"Authorization": f"Bearer {token}"}
    body = core_client.get("/whoami", headers=headers).json()
    assert body["uid"] == "ben"
    assert body["header_group"] is None
    assert body["scopes"] == ["authenticated", "readers"]
    assert core_client.get("/readers", headers=headers).status_code == 200
    assert core_client.get("/admin", headers=headers).status_code == 403


def test_bearer_api_token_still_works_beside_jwts(core_client, auth_store):
    token = auth_store.create_api_token("readers", 600)
    headers = {"Authorization": f"Bearer {token}"}
    assert core_client.get("/readers", headers=headers).status_code == 200
    assert core_client.get("/admin", headers=headers).status_code == 403
    assert core_client.get("/whoami", headers=headers).json()["uid"] is None


def test_bearer_jwt_that_is_not_a_valid_access_token_is_401(core_client, backend):
    refresh = backend.create_token("refresh", "ben", ["readers"])
    expired = backend.create_token("access", "ben", ["readers"], max_age=-10)
    foreign = JWTBackend("f" * 48).create_token("access", "ben", ["readers"])
    for token in (refresh, expired):
        response = core_client.get(
            "/readers", headers={"Authorization": f"Bearer {token}"}
        )
        assert response.status_code == 401
    # A JWT from another key is not ours: it is looked up as an API token.
    response = core_client.get(
        "/readers", headers={"Authorization": f"Bearer {foreign}"}
    )
    assert response.status_code == 401
    assert "API token" in response.json()["detail"]
