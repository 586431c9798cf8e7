"""AuthAPI routes against a real Starlette app."""

from __future__ import annotations

import pytest


def test_login_sets_httponly_secure_samesite_cookies(login):
    response = login()
    assert response.status_code == 200
    cookies = response.headers.get_list("set-cookie")
    assert len(cookies) == 2
    for name in ("access_token_cookie", "refresh_token_cookie"):
        (header,) = [c for c in cookies if c.startswith(name + "=")]
        lower = header.lower()
        assert "httponly" in lower
        assert "; secure" in lower
        assert "samesite=lax" in lower
        assert "path=/" in lower
    access = next(c for c in cookies if c.startswith("access_token_cookie="))
    refresh = next(c for c in cookies if c.startswith("refresh_token_cookie="))
    assert "max-age=86400" in access.lower()
    assert "max-age=2592000" in refresh.lower()


def test_login_body_does_not_echo_token(login, client):
    response = login()
    assert response.json() == {"login": True, "username": "alice"}
    for token in client.cookies.values():
        assert token not in response.text


def test_secure_flag_can_be_turned_off_for_local_http(
    secret_key, provider, make_app, make_client
):
    from macrostrat.auth_system.legacy import create_backend

    backend = create_backend(secret_key, secure_cookies=False, samesite="strict")
    client = make_client(make_app(backend))
    response = client.post(
        "/auth/login", json={"username": "bob", "password": "bob-password"}
    )
    assert response.status_code == 200
    for cookie in response.headers.get_list("set-cookie"):
        lower = cookie.lower()
        assert "; secure" not in lower
        assert "httponly" in lower
        assert "samesite=strict" in lower


@pytest.mark.parametrize(
    "body",
    [
        {"username": "alice", "password": "wrong"},
        {"username": "nobody", "password": "alice-password"},
        {"username": "", "password": ""},
    ],
)
def test_bad_login_is_401_and_clears_cookies(client, body):
    response = client.post("/auth/login", json=body)
    assert response.status_code == 401
    assert response.json() == {
        "login": False,
        "username": None,
        "message": "user is not authenticated",
    }
    set_cookies = response.headers.get_list("set-cookie")
    assert any(c.startswith("access_token_cookie=") for c in set_cookies)
    assert client.cookies == {}


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"not json",
        b"[]",
        b'{"username": "alice"}',
        b'{"username": "alice", "password": 123}',
    ],
)
def test_malformed_login_is_422(client, content):
    response = client.post(
        "/auth/login", content=content, headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    assert response.json()["login"] is False


def test_status_without_and_with_login(client, login):
    assert client.get("/auth/status").json() == {
        "login": False,
        "username": None,
        "message": "user is not authenticated",
    }
    login("bob")
    response = client.get("/auth/status")
    assert response.status_code == 200
    assert response.json() == {"login": True, "username": "bob"}


def test_secret_requires_admin_role(client, login):
    assert client.get("/auth/secret").status_code == 403
    login("bob")
    assert client.get("/auth/secret").status_code == 403
    client.cookies.clear()
    login("alice")
    response = client.get("/auth/secret")
    assert response.status_code == 200
    assert response.json() == {"answer": 42}


def test_scopes_come_from_real_roles(client, login):
    assert client.get("/whoami").json() == {
        "user": None,
        "scopes": ["public"],
        "get_scopes": ["public"],
    }
    login("bob")
    body = client.get("/whoami").json()
    assert body["user"] == "bob"
    assert body["scopes"] == ["authenticated", "reader"]
    assert body["get_scopes"] == ["authenticated", "reader"]
    assert "admin" not in body["scopes"]


def test_refresh_issues_new_access_cookie(client, login):
    login("bob")
    client.cookies.pop("access_token_cookie")
    assert client.get("/private").status_code == 403
    response = client.post("/auth/refresh")
    assert response.status_code == 200
    assert response.json() == {"login": True, "refresh": True, "username": "bob"}
    # The refresh token is rotated too.
    access, refresh = response.headers.get_list("set-cookie")
    assert access.startswith("access_token_cookie=")
    assert refresh.startswith("refresh_token_cookie=")
    assert "httponly" in access.lower()
    assert "httponly" in refresh.lower()
    assert client.get("/private").json() == {"user": "bob"}


def test_refresh_picks_up_role_changes(client, login, provider):
    login("bob")
    provider.users["bob"].roles = ("admin",)
    assert client.get("/auth/secret").status_code == 403
    client.post("/auth/refresh")
    assert client.get("/auth/secret").status_code == 200


def test_refresh_for_deleted_user_is_401(client, login, provider):
    login("bob")
    del provider.users["bob"]
    assert client.post("/auth/refresh").status_code == 401


@pytest.mark.parametrize(
    "cookies",
    [{}, {"refresh_token_cookie": "garbage"}, {"refresh_token_cookie": ""}],
)
def test_refresh_without_valid_token_is_401_not_500(client, send_cookies, cookies):
    send_cookies(client, cookies)
    response = client.post("/auth/refresh")
    assert response.status_code == 401
    assert response.json()["login"] is False


def test_logout_deletes_cookies(client, login):
    login()
    response = client.post("/auth/logout")
    assert response.status_code == 200
    assert response.json() == {
        "login": False,
        "username": None,
        "message": "user is not authenticated",
    }
    names = {c.split("=", 1)[0] for c in response.headers.get_list("set-cookie")}
    assert names == {"access_token_cookie", "refresh_token_cookie"}
    for cookie in response.headers.get_list("set-cookie"):
        assert "max-age=0" in cookie.lower()
        assert "httponly" in cookie.lower()
    assert client.cookies == {}
    assert client.get("/auth/status").json()["login"] is False


def test_bearer_header_authenticates(client, login):
    login("bob")
    token = client.cookies.pop("access_token_cookie")
    client.cookies.clear()
    response = client.get("/private", headers={"Authorization": f"Bearer {token}"})
    assert response.json() == {"user": "bob"}


def test_header_without_bearer_scheme_is_rejected(client, login):
    login("bob")
    token = client.cookies["access_token_cookie"]
    client.cookies.clear()
    response = client.get("/private", headers={"Authorization": token})
    assert response.status_code == 403
