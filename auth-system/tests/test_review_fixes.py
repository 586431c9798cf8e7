"""Fixes from the security review: login CSRF, timing, refresh rotation, revocation store."""

from __future__ import annotations

import logging
import time

import pytest

from macrostrat.auth_system.errors import AuthConfigurationError
from macrostrat.auth_system.legacy import (
    BaseUser,
    JWTBackend,
    RevocationStore,
    create_backend,
)
from macrostrat.auth_system.legacy import _passwords as passwords_module
from macrostrat.auth_system.legacy import api as api_module

CREDS = {"username": "bob", "password": "bob-password"}


# 1. Login CSRF


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data", None],
)
def test_login_refuses_non_json_content_type(client, content_type):
    headers = {"content-type": content_type} if content_type else {}
    response = client.post(
        "/auth/login",
        content=b'{"username": "bob", "password": "bob-password"}',
        headers=headers,
    )
    assert response.status_code == 415
    assert client.cookies == {}


def test_login_accepts_json_with_charset(client):
    response = client.post(
        "/auth/login",
        content=b'{"username": "bob", "password": "bob-password"}',
        headers={"content-type": "application/json; charset=utf-8"},
    )
    assert response.status_code == 200


@pytest.mark.parametrize(
    "headers",
    [
        {"origin": "https://evil.example"},
        {"origin": "null"},
        {"sec-fetch-site": "cross-site"},
        {"origin": "https://testserver", "sec-fetch-site": "cross-site"},
    ],
)
def test_login_refuses_cross_site_requests(client, headers):
    response = client.post("/auth/login", json=CREDS, headers=headers)
    assert response.status_code == 403
    assert "refused" in response.json()["message"]
    assert client.cookies == {}


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"origin": "https://testserver"},
        {"origin": "https://TestServer/", "sec-fetch-site": "same-origin"},
        {"sec-fetch-site": "same-origin"},
        {"sec-fetch-site": "none"},
    ],
)
def test_login_allows_same_origin_requests(client, headers):
    response = client.post("/auth/login", json=CREDS, headers=headers)
    assert response.status_code == 200


def test_trusted_origins_may_log_in(secret_key, provider, make_app, make_client):
    backend = create_backend(secret_key, trusted_origins=["https://app.example.org/"])
    client = make_client(make_app(backend))
    headers = {"origin": "https://app.example.org", "sec-fetch-site": "cross-site"}
    assert client.post("/auth/login", json=CREDS, headers=headers).status_code == 200
    headers = {"origin": "https://other.example.org"}
    assert client.post("/auth/login", json=CREDS, headers=headers).status_code == 403


# 2. and 8. Timing: equal hashing work


@pytest.fixture
def scrypt_calls(monkeypatch):
    calls: list[int] = []
    real = passwords_module._scrypt

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(passwords_module, "_scrypt", counting)
    return calls


@pytest.mark.parametrize(
    "stored", [None, "", "garbage", "scrypt-v1$bad", "scrypt-v1$1$8$1$AA$AA"]
)
def test_missing_or_unusable_hash_costs_one_scrypt(scrypt_calls, stored):
    assert passwords_module.verify_password("pw", stored) is False
    assert len(scrypt_calls) == 1


def test_unknown_user_user_without_hash_and_user_with_hash_cost_the_same(
    provider, scrypt_calls
):
    provider.users["orcid-only"] = BaseUser("orcid-only")  # no password hash
    counts = {}
    for username in ("nobody", "orcid-only", "bob"):
        scrypt_calls.clear()
        assert api_module._check_password(provider, username, "wrong") is None
        counts[username] = len(scrypt_calls)
    assert counts == {"nobody": 1, "orcid-only": 1, "bob": 1}


def test_legacy_hash_with_pepper_costs_the_same_on_success_and_failure(scrypt_calls):
    salt = "abc"
    import hashlib

    digest = hashlib.scrypt(
        b"secret-pw", salt=salt.encode(), n=2**14, r=8, p=1, dklen=64
    ).hex()
    stored = f"scrypt:16384:8:1${salt}${digest}"
    verify = passwords_module.verify_password
    assert verify("secret-pw", stored, legacy_pepper="x" * 40)
    success = len(scrypt_calls)
    scrypt_calls.clear()
    assert not verify("wrong", stored, legacy_pepper="x" * 40)
    assert len(scrypt_calls) == success == 2


# 5. Revocation store: pruning and a cap


def test_revocation_store_prunes_expired_entries(monkeypatch):
    store = RevocationStore()
    now = int(time.time())
    for i in range(50):
        store.revoke(f"soon-{i}", now + 10)
    store.revoke("late", now + 1000)
    assert len(store) == 51
    monkeypatch.setattr(time, "time", lambda: now + 20)
    assert not store.is_revoked("soon-3")
    store.revoke("another", now + 1000)
    assert len(store) == 2
    assert store.is_revoked("late")
    assert store.is_revoked("another")
    assert len(store._heap) == 2


def test_revocation_store_is_capped_evicting_the_soonest_to_expire():
    store = RevocationStore(max_entries=3)
    now = int(time.time())
    store.revoke("a", now + 300)
    store.revoke("b", now + 100)
    store.revoke("c", now + 200)
    store.revoke("d", now + 400)
    assert len(store) == 3
    assert not store.is_revoked("b")
    assert all(store.is_revoked(j) for j in "acd")


def test_revocation_store_rejects_bad_cap():
    with pytest.raises(AuthConfigurationError, match="max_entries"):
        RevocationStore(max_entries=0)


def test_re_revoking_keeps_the_later_expiry():
    store = RevocationStore()
    now = int(time.time())
    store.revoke("x", now + 500)
    store.revoke("x", now + 100)
    for i in range(200):  # forces a heap rebuild and pruning
        store.revoke(f"y{i}", now + 50)
    assert store.is_revoked("x")


# 7. Refresh tokens: own path, rotation, reuse refused


def _cookie(response, name):
    (header,) = [
        c for c in response.headers.get_list("set-cookie") if c.startswith(name + "=")
    ]
    return header.lower()


def test_refresh_cookie_is_scoped_to_the_auth_mount(login):
    response = login()
    assert "path=/;" in _cookie(response, "access_token_cookie") + ";"
    assert "path=/auth" in _cookie(response, "refresh_token_cookie")


def test_refresh_cookie_path_is_configurable(
    secret_key, provider, make_app, make_client
):
    backend = create_backend(secret_key, refresh_cookie_path="/auth/refresh")
    client = make_client(make_app(backend))
    response = client.post("/auth/login", json=CREDS)
    assert "path=/auth/refresh" in _cookie(response, "refresh_token_cookie")
    with pytest.raises(AuthConfigurationError, match="refresh_cookie_path"):
        JWTBackend(secret_key, refresh_cookie_path="auth")


def test_refresh_rotates_and_old_refresh_token_is_refused(client, login, send_cookies):
    login("bob")
    old = client.cookies["refresh_token_cookie"]
    response = client.post("/auth/refresh")
    assert response.status_code == 200
    new = client.cookies["refresh_token_cookie"]
    assert new != old
    assert "path=/auth" in _cookie(response, "refresh_token_cookie")
    send_cookies(client, {"refresh_token_cookie": old})
    replay = client.post("/auth/refresh")
    assert replay.status_code == 401
    send_cookies(client, {"refresh_token_cookie": new})
    assert client.post("/auth/refresh").status_code == 200


def test_logout_deletes_the_refresh_cookie_at_its_path(client, login):
    login()
    response = client.post("/auth/logout")
    paths = {
        c.split(";")[0].split("=")[0]
        + "@"
        + next(p.split("=")[1] for p in c.split("; ") if p.lower().startswith("path="))
        for c in response.headers.get_list("set-cookie")
    }
    assert "refresh_token_cookie@/auth" in paths
    assert "access_token_cookie@/" in paths


# 11. Failed logins are logged with the username and client


def test_failed_login_is_logged_with_username_and_client(client, caplog):
    caplog.set_level(logging.INFO, logger=api_module.__name__)
    client.post("/auth/login", json={"username": "eve\nforged", "password": "x"})
    message = caplog.records[-1].getMessage()
    assert "'eve\\nforged'" in message
    assert "\n" not in message
    assert "127.0.0.1" in message
