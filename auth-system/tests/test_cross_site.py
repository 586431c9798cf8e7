"""Cross-site checks on every cookie-authenticated route that changes state.

`/logout` and `/refresh` (like `/login`) answer 403 to a request whose
``Origin`` names another site or whose ``Sec-Fetch-Site`` is ``cross-site``,
and then change nothing: the session stays logged in and the refresh token is
neither rotated nor revoked. State-changing app routes guarded by the core
dependencies or Starlette's ``@requires`` refuse such requests too.
"""

from __future__ import annotations

from typing import Annotated

import pytest
from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient
from starlette.applications import Starlette
from starlette.authentication import requires
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route

from macrostrat.auth_system.core import DatabaseIdentityProvider, has_access
from macrostrat.auth_system.legacy import (
    AuthAPI,
    AuthenticationMiddleware,
    create_backend,
    set_identity_provider,
)

CROSS_SITE = [
    {"origin": "https://evil.example"},
    {"origin": "null"},
    {"origin": "https://testserver.evil.example"},
    {"sec-fetch-site": "cross-site"},
    {"origin": "https://testserver", "sec-fetch-site": "cross-site"},
]
SAME_SITE = [
    {},
    {"origin": "https://testserver"},
    {"origin": "https://TestServer/", "sec-fetch-site": "same-origin"},
    {"sec-fetch-site": "same-origin"},
    {"sec-fetch-site": "none"},
]


def _ids(cases):
    return ["+".join(f"{k}={v}" for k, v in c.items()) or "no-headers" for c in cases]


@pytest.mark.parametrize("headers", CROSS_SITE, ids=_ids(CROSS_SITE))
def test_cross_site_logout_is_403_and_the_session_survives(client, login, headers):
    login("alice")
    before = dict(client.cookies)
    response = client.post("/auth/logout", headers=headers)
    assert response.status_code == 403
    assert "logout refused" in response.json()["message"]
    assert response.headers.get_list("set-cookie") == []  # nothing deleted
    assert dict(client.cookies) == before
    # Not revoked server-side either: both tokens still work.
    assert client.get("/auth/status").json() == {"login": True, "username": "alice"}
    assert client.get("/auth/secret").status_code == 200
    assert client.post("/auth/refresh").status_code == 200


@pytest.mark.parametrize("headers", CROSS_SITE, ids=_ids(CROSS_SITE))
def test_cross_site_refresh_is_403_and_rotates_nothing(
    client, login, send_cookies, headers
):
    login("bob")
    refresh_token = client.cookies["refresh_token_cookie"]
    response = client.post("/auth/refresh", headers=headers)
    assert response.status_code == 403
    assert "refresh refused" in response.json()["message"]
    assert response.headers.get_list("set-cookie") == []
    assert client.cookies["refresh_token_cookie"] == refresh_token
    # The refresh token was not spent: a same-site refresh still accepts it.
    send_cookies(client, {"refresh_token_cookie": refresh_token})
    assert client.post("/auth/refresh").status_code == 200


@pytest.mark.parametrize("headers", SAME_SITE, ids=_ids(SAME_SITE))
def test_same_site_logout_and_refresh_pass(client, login, headers):
    login("bob")
    assert client.post("/auth/refresh", headers=headers).status_code == 200
    response = client.post("/auth/logout", headers=headers)
    assert response.status_code == 200
    assert client.cookies == {}
    assert client.get("/auth/status").json()["login"] is False


def test_trusted_origin_may_refresh_and_log_out(
    secret_key, provider, make_app, make_client
):
    backend = create_backend(secret_key, trusted_origins=["https://app.example.org"])
    client = make_client(make_app(backend))
    creds = {"username": "bob", "password": "bob-password"}
    headers = {"origin": "https://app.example.org", "sec-fetch-site": "cross-site"}
    assert client.post("/auth/login", json=creds, headers=headers).status_code == 200
    assert client.post("/auth/refresh", headers=headers).status_code == 200
    assert client.post("/auth/logout", headers=headers).status_code == 200
    other = {"origin": "https://other.example.org"}
    client.post("/auth/login", json=creds)
    assert client.post("/auth/logout", headers=other).status_code == 403


# Starlette app routes behind @requires (the middleware).


@requires("authenticated")
async def change(request: Request) -> JSONResponse:
    return JSONResponse({"changed_by": request.user.display_name})


@pytest.fixture
def starlette_client(backend, provider, make_client):
    app = Starlette(
        routes=[
            Mount("/auth", app=AuthAPI),
            Route("/change", change, methods=["GET", "POST", "PUT", "DELETE"]),
        ],
        middleware=[Middleware(AuthenticationMiddleware, backend=backend)],
    )
    client = make_client(app)
    client.post("/auth/login", json={"username": "bob", "password": "bob-password"})
    return client


@pytest.mark.parametrize("headers", CROSS_SITE, ids=_ids(CROSS_SITE))
def test_cross_site_cookie_write_to_a_requires_route_is_refused(
    starlette_client, headers
):
    for method in ("POST", "PUT", "DELETE"):
        response = starlette_client.request(method, "/change", headers=headers)
        assert response.status_code == 403, method


@pytest.mark.parametrize("headers", SAME_SITE, ids=_ids(SAME_SITE))
def test_same_site_cookie_write_to_a_requires_route_passes(starlette_client, headers):
    for method in ("POST", "PUT", "DELETE"):
        response = starlette_client.request(method, "/change", headers=headers)
        assert response.status_code == 200, method
        assert response.json() == {"changed_by": "bob"}


def test_cross_site_get_and_bearer_writes_still_pass(starlette_client):
    evil = {"origin": "https://evil.example", "sec-fetch-site": "cross-site"}
    # Safe methods change nothing: cookies are used as usual.
    assert starlette_client.get("/change", headers=evil).status_code == 200
    # A Bearer header is not sent by browsers on their own: no CSRF risk.
    token = starlette_client.cookies["access_token_cookie"]
    starlette_client.cookies.clear()
    response = starlette_client.post(
        "/change", headers={**evil, "authorization": f"Bearer {token}"}
    )
    assert response.status_code == 200


# FastAPI routes behind the core dependencies (users and groups in PostGIS).


@pytest.fixture
def fastapi_client(backend, auth_store):
    provider = DatabaseIdentityProvider()
    set_identity_provider(provider)
    provider.create_user("ada", "ada-password", roles=["admin"])
    app = FastAPI()
    app.add_middleware(AuthenticationMiddleware, backend=backend)
    app.mount("/auth", AuthAPI)

    @app.api_route("/samples", methods=["GET", "POST", "PATCH", "DELETE"])
    def samples(access: Annotated[bool, Depends(has_access)]):
        return {"access": access}

    client = TestClient(app, base_url="https://testserver")
    response = client.post(
        "/auth/login", json={"username": "ada", "password": "ada-password"}
    )
    assert response.status_code == 200
    return client


@pytest.mark.parametrize("headers", CROSS_SITE, ids=_ids(CROSS_SITE))
def test_core_dependencies_refuse_cross_site_cookie_writes(fastapi_client, headers):
    for method in ("POST", "PATCH", "DELETE"):
        response = fastapi_client.request(method, "/samples", headers=headers)
        assert response.status_code == 403, method
        assert "Cross-site request refused" in response.json()["detail"]


@pytest.mark.parametrize("headers", SAME_SITE, ids=_ids(SAME_SITE))
def test_core_dependencies_accept_same_site_cookie_writes(fastapi_client, headers):
    response = fastapi_client.post("/samples", headers=headers)
    assert response.status_code == 200
    assert response.json() == {"access": True}


def test_core_dependencies_accept_cross_site_reads_and_api_tokens(
    fastapi_client, auth_store
):
    evil = {"origin": "https://evil.example"}
    assert fastapi_client.get("/samples", headers=evil).json() == {"access": True}
    token = auth_store.create_api_token("admin", 600)
    fastapi_client.cookies.clear()
    response = fastapi_client.post(
        "/samples", headers={**evil, "authorization": f"Bearer {token}"}
    )
    assert response.json() == {"access": True}
