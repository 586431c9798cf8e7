"""Token validation matrix: every bad token is treated as no token."""

from __future__ import annotations

import base64
import hmac
import json
import time
import uuid
from typing import Annotated

import jwt
import pytest
from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient

from macrostrat.auth_system.core import DatabaseIdentityProvider, has_access


def _claims(**overrides):
    now = int(time.time())
    claims = {
        "iat": now,
        "nbf": now,
        "exp": now + 600,
        "type": "access",
        "identity": "alice",
        "role": "admin",
        "roles": ["admin"],
        "jti": uuid.uuid4().hex,
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not _DROP}


_DROP = object()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unsigned(claims) -> str:
    header = _b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    return f"{header}.{_b64(json.dumps(claims).encode())}."


def _bad_tokens(key: str) -> dict[str, str]:
    now = int(time.time())
    good = jwt.encode(_claims(), key, algorithm="HS256")
    head, payload, sig = good.split(".")
    tampered_payload = _b64(json.dumps(_claims(identity="mallory")).encode())
    return {
        "expired": jwt.encode(_claims(exp=now - 10, iat=now - 100, nbf=now - 100), key),
        "not-yet-valid": jwt.encode(_claims(nbf=now + 600), key),
        "tampered-payload": f"{head}.{tampered_payload}.{sig}",
        "tampered-signature": f"{head}.{payload}.{sig[:-4]}AAAA",
        "wrong-key": jwt.encode(_claims(), "x" * 48, algorithm="HS256"),
        "wrong-algorithm-hs512": jwt.encode(_claims(), key, algorithm="HS512"),
        "alg-none": _unsigned(_claims()),
        "wrong-type": jwt.encode(_claims(type="refresh"), key),
        "unknown-type": jwt.encode(_claims(type="admin"), key),
        "missing-exp": jwt.encode(_claims(exp=_DROP), key),
        "missing-iat": jwt.encode(_claims(iat=_DROP), key),
        "missing-nbf": jwt.encode(_claims(nbf=_DROP), key),
        "missing-type": jwt.encode(_claims(type=_DROP), key),
        "missing-identity": jwt.encode(_claims(identity=_DROP), key),
        "missing-jti": jwt.encode(_claims(jti=_DROP), key),
        "float-exp": jwt.encode(_claims(exp=now + 600.5), key),
        "float-iat": jwt.encode(_claims(iat=now + 0.5), key),
        "non-string-identity": jwt.encode(_claims(identity=42), key),
        "bad-roles": jwt.encode(_claims(roles="admin"), key),
        "garbage": "ekadqw4fw",
    }


CASES = sorted(_bad_tokens("k" * 64))


def test_the_reference_token_is_accepted(client, backend, send_cookies):
    token = jwt.encode(_claims(), backend.encode_key, algorithm="HS256")
    send_cookies(client, {"access_token_cookie": token})
    response = client.get("/auth/secret")
    assert response.status_code == 200


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("where", ["cookie", "header"])
def test_bad_access_token_is_rejected(client, backend, send_cookies, case, where):
    token = _bad_tokens(backend.encode_key)[case]
    kwargs = {}
    if where == "cookie":
        send_cookies(client, {"access_token_cookie": token})
    else:
        kwargs = {"headers": {"Authorization": f"Bearer {token}"}}
    assert client.get("/auth/secret", **kwargs).status_code == 403
    assert client.get("/whoami", **kwargs).json()["scopes"] == ["public"]
    assert client.get("/auth/status", **kwargs).json()["login"] is False


@pytest.mark.parametrize("case", CASES)
def test_bad_refresh_token_is_401(client, backend, send_cookies, case):
    token = _bad_tokens(backend.encode_key)[case]
    if case == "wrong-type":
        # An access token presented as a refresh token.
        token = jwt.encode(_claims(type="access"), backend.encode_key)
    send_cookies(client, {"refresh_token_cookie": token})
    response = client.post("/auth/refresh")
    assert response.status_code == 401


def test_refresh_token_cannot_act_as_access_token(client, login, send_cookies):
    login("alice")
    refresh = client.cookies["refresh_token_cookie"]
    client.cookies.clear()
    send_cookies(client, {"access_token_cookie": refresh})
    assert client.get("/auth/secret").status_code == 403
    client.cookies.clear()
    assert (
        client.get(
            "/auth/secret", headers={"Authorization": f"Bearer {refresh}"}
        ).status_code
        == 403
    )


def test_access_token_cannot_refresh(client, login, send_cookies):
    login("alice")
    access = client.cookies["access_token_cookie"]
    client.cookies.clear()
    send_cookies(client, {"refresh_token_cookie": access})
    response = client.post("/auth/refresh")
    assert response.status_code == 401


def test_refresh_replay_after_logout_is_401(client, login, send_cookies):
    login("alice")
    stolen = dict(client.cookies)
    assert set(stolen) == {"access_token_cookie", "refresh_token_cookie"}
    assert client.post("/auth/logout").status_code == 200
    assert dict(client.cookies) == {}
    send_cookies(client, stolen)
    replay = client.post("/auth/refresh")
    assert replay.status_code == 401
    send_cookies(client, stolen)
    assert client.get("/auth/secret").status_code == 403


def test_logout_revocation_is_per_session(client, login, make_client, app):
    login("alice")
    other = make_client(app)
    other.post("/auth/login", json={"username": "alice", "password": "alice-password"})
    client.post("/auth/logout")
    assert other.post("/auth/refresh").status_code == 200
    assert other.get("/auth/secret").status_code == 200


def test_issued_time_claims_are_integers(client, login, backend):
    login("bob")
    for type in ("access", "refresh"):
        payload = backend._decode(client.cookies[f"{type}_token_cookie"])
        for claim in ("iat", "nbf", "exp"):
            assert isinstance(payload[claim], int)
            assert not isinstance(payload[claim], bool)
        assert payload["type"] == type
        assert payload["identity"] == "bob"
        assert payload["roles"] == ["reader"]
        assert payload["role"] == "reader"
        lifetime = payload["exp"] - payload["iat"]
        assert lifetime == (86400 if type == "access" else 2592000)


def test_every_bad_access_cookie_gives_no_core_access(backend, auth_store):
    """The same matrix through the core dependencies (groups from PostGIS)."""
    user = DatabaseIdentityProvider(auth_store).create_user(
        "alice", None, roles=["admin"]
    )
    assert user.roles == ("admin",)
    app = FastAPI()

    @app.get("/access")
    def access(ok: Annotated[bool, Depends(has_access)]):
        return {"access": ok}

    client = TestClient(app, base_url="https://testserver")
    good = jwt.encode(_claims(), backend.encode_key, algorithm="HS256")
    client.cookies.set("access_token_cookie", good)
    assert client.get("/access").json() == {"access": True}
    for case, token in _bad_tokens(backend.encode_key).items():
        client.cookies.set("access_token_cookie", token)
        assert client.get("/access").json() == {"access": False}, case


def test_jwt_signatures_are_compared_in_constant_time(client, login, monkeypatch):
    """PyJWT checks HMAC signatures with hmac.compare_digest (observed, not timed)."""
    login("alice")
    calls = []
    real = hmac.compare_digest

    def spy(a, b):
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    assert client.get("/auth/secret").status_code == 200
    token = client.cookies["access_token_cookie"]
    signature = base64.urlsafe_b64decode(token.split(".")[2] + "==")
    assert any(signature in (a, b) for a, b in calls)


def test_password_checks_are_constant_time(client, monkeypatch):
    """Both a wrong password and an unknown user go through hmac.compare_digest."""
    calls = []
    real = hmac.compare_digest

    def spy(a, b):
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    for username in ("alice", "nobody"):
        calls.clear()
        response = client.post(
            "/auth/login", json={"username": username, "password": "wrong"}
        )
        assert response.status_code == 401
        assert len(calls) == 1, username
        assert len(calls[0][0]) == 64  # an scrypt digest, not the plaintext
