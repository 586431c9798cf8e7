"""Malformed input to every auth route answers a client error (4xx), never 500.

The identity lookups run against real PostGIS, which refuses NUL characters in
text parameters: before the checks, a NUL in the user name surfaced as an
unhandled psycopg ``DataError`` (500). `make_test_client` re-raises server
errors, so a regression fails these tests with the exception itself.
"""

from __future__ import annotations

import json
from typing import Annotated

import pytest
from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from macrostrat.auth_system.core import (
    DatabaseIdentityProvider,
    LoginThrottleEntry,
    User,
    get_scopes,
    has_access,
)
from macrostrat.auth_system.errors import InvalidRequestError
from macrostrat.auth_system.legacy import (
    AuthAPI,
    AuthenticationMiddleware,
    set_identity_provider,
)
from macrostrat.auth_system.legacy.validation import (
    MAX_LOGIN_BODY_BYTES,
    MAX_PASSWORD_LENGTH,
    MAX_USERNAME_LENGTH,
    check_text,
)

JSON = {"content-type": "application/json"}


@pytest.fixture
def db_client(backend, auth_store, make_app, make_client):
    provider = DatabaseIdentityProvider()
    set_identity_provider(provider)
    provider.create_user("carol", "carol-password", roles=["admin"])
    return make_client(make_app(backend))


def _throttle_rows(auth_store) -> int:
    with auth_store.session() as session:
        return len(session.scalars(select(LoginThrottleEntry)).all())


# Login bodies: the text of each case is sent as is.
MALFORMED_LOGIN_BODIES = {
    "nul-in-username": r'{"username": "car\u0000ol", "password": "carol-password"}',
    "nul-only-username": r'{"username": "\u0000", "password": "x"}',
    "nul-in-password": r'{"username": "carol", "password": "carol-\u0000password"}',
    "lone-surrogate-username": r'{"username": "\ud800", "password": "x"}',
    "lone-surrogate-password": r'{"username": "carol", "password": "\udfff"}',
    "long-username": json.dumps(
        {"username": "u" * (MAX_USERNAME_LENGTH + 1), "password": "x"}
    ),
    "long-password": json.dumps(
        {"username": "carol", "password": "p" * (MAX_PASSWORD_LENGTH + 1)}
    ),
    "number-username": '{"username": 42, "password": "x"}',
    "list-username": '{"username": ["carol"], "password": "x"}',
    "null-username": '{"username": null, "password": "x"}',
    "object-username": '{"username": {"$ne": ""}, "password": "x"}',
    "bool-password": '{"username": "carol", "password": true}',
    "null-password": '{"username": "carol", "password": null}',
    "list-password": '{"username": "carol", "password": ["carol-password"]}',
    "number-password": '{"username": "carol", "password": 1.5}',
    "missing-password": '{"username": "carol"}',
    "array-body": '[{"username": "carol", "password": "carol-password"}]',
    "string-body": '"carol"',
    "number-body": "1e999",
    "deeply-nested": "[" * 5_000 + "]" * 5_000,
    "huge-integer": '{"username": ' + "9" * 5000 + ', "password": "x"}',
    "truncated": '{"username": "carol", "password": "car',
}


@pytest.mark.parametrize("case", sorted(MALFORMED_LOGIN_BODIES))
def test_malformed_login_body_is_422_before_any_lookup(db_client, auth_store, case):
    response = db_client.post(
        "/auth/login", content=MALFORMED_LOGIN_BODIES[case].encode(), headers=JSON
    )
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["login"] is False
    # The message says what is wrong without repeating the value.
    assert 0 < len(body["message"]) < 200
    assert "carol-password" not in body["message"]
    assert "\x00" not in body["message"]
    assert db_client.cookies == {}
    # Refused before the throttle counted anything.
    assert _throttle_rows(auth_store) == 0


@pytest.mark.parametrize(
    "content",
    [
        b"\xff\xfe{}",
        b'{"username": "caf\xe9", "password": "x"}',  # Latin-1, not UTF-8
        b'\xef\xbb\xbf{"username": "carol", "password": "x"}',  # a UTF-8 BOM
        '{"username": "carol", "password": "x"}'.encode("utf-16"),
    ],
)
def test_login_body_that_is_not_utf8_json_is_422(db_client, content):
    response = db_client.post("/auth/login", content=content, headers=JSON)
    assert response.status_code == 422
    assert response.json()["login"] is False


def test_nul_in_username_would_reach_postgresql_as_an_error(auth_store):
    """Why the route checks first: the database refuses the value outright."""
    import psycopg

    with auth_store.database.engine.connect() as conn:
        raw = conn.connection.driver_connection
        with pytest.raises(psycopg.DataError):
            raw.execute("SELECT %s::text", ["car\x00ol"])


def test_identity_lookups_with_unstorable_text_find_nobody(auth_store):
    """The store answers "not found" for NUL or surrogates instead of raising."""
    for value in ("car\x00ol", "\ud800"):
        assert auth_store.get_user(value) is None
        assert auth_store.get_user_by_sub(value) is None
        assert auth_store.group_ids_for(value) == []
        assert auth_store.get_access_token(value) is None


def test_longest_accepted_fields_reach_the_password_check(db_client):
    response = db_client.post(
        "/auth/login",
        json={
            "username": "u" * MAX_USERNAME_LENGTH,
            "password": "p" * MAX_PASSWORD_LENGTH,
        },
    )
    assert response.status_code == 401


def test_unicode_user_names_and_passwords_still_work(db_client):
    provider = DatabaseIdentityProvider()
    provider.create_user("Zoë-北京", "pässwörd-🔑")
    response = db_client.post(
        "/auth/login", json={"username": "Zoë-北京", "password": "pässwörd-🔑"}
    )
    assert response.status_code == 200


def test_oversized_login_body_is_413(db_client):
    padding = "x" * MAX_LOGIN_BODY_BYTES
    body = json.dumps({"username": "carol", "password": "x", "pad": padding})
    response = db_client.post("/auth/login", content=body.encode(), headers=JSON)
    assert response.status_code == 413
    assert response.json()["login"] is False


def test_oversized_streamed_body_without_length_is_413(db_client):
    def chunks():
        yield b'{"username": "carol", "password": "'
        for _ in range(MAX_LOGIN_BODY_BYTES // 1024 + 2):
            yield b"p" * 1024
        yield b'"}'

    response = db_client.post("/auth/login", content=chunks(), headers=JSON)
    assert "content-length" not in {k.lower() for k in response.request.headers}
    assert response.status_code == 413


@pytest.mark.parametrize("origin", ["https://[", "http://[::1", "\x7f", "https://"])
def test_malformed_origin_is_refused_not_500(db_client, origin):
    headers = {**JSON, "origin": origin}
    body = b'{"username": "carol", "password": "carol-password"}'
    response = db_client.post("/auth/login", content=body, headers=headers)
    assert response.status_code == 403
    assert db_client.cookies == {}


def test_check_text_names_the_field_but_not_the_value():
    with pytest.raises(InvalidRequestError) as info:
        check_text("secret\x00value", "password", max_length=10)
    assert info.value.status_code == 422
    assert "password" in str(info.value)
    assert "secret" not in str(info.value)
    assert isinstance(info.value, ValueError)
    assert check_text("ok", "username", max_length=2) == "ok"


# Tokens and cookies: the legacy routes and middleware.

MALFORMED_TOKENS = [
    b"\xe9.\xe9.\xe9",
    b"\x01.\x02.\x03",
    b"..",
    b"a.b.c",
    b"eyJhbGciOiJIUzI1NiJ9.e30.",
    b"eyJhbGciOiJub25lIn0.bnVsbA.",  # payload: null
    b"eyJhbGciOiJIUzI1NiJ9.WzFd.c2ln",  # payload: [1]
    b"x" * 20_000,
]


@pytest.mark.parametrize("token", MALFORMED_TOKENS, ids=range(len(MALFORMED_TOKENS)))
def test_malformed_tokens_are_anonymous_on_legacy_routes(db_client, token):
    cookie = b"access_token_cookie=" + token + b"; refresh_token_cookie=" + token
    for headers in (
        {"authorization": b"Bearer " + token},
        {"cookie": cookie},
    ):
        assert db_client.get("/auth/status", headers=headers).json()["login"] is False
        assert db_client.get("/whoami", headers=headers).json()["user"] is None
        assert db_client.get("/private", headers=headers).status_code == 403
        assert db_client.post("/auth/refresh", headers=headers).status_code == 401
        assert db_client.post("/auth/logout", headers=headers).status_code == 200


def test_token_with_nul_identity_is_refused(db_client, backend, send_cookies):
    token = backend.create_token("access", "car\x00ol")
    send_cookies(db_client, {"access_token_cookie": token})
    assert db_client.get("/auth/status").json()["login"] is False
    refresh = backend.create_token("refresh", "car\x00ol")
    send_cookies(db_client, {"refresh_token_cookie": refresh})
    assert db_client.post("/auth/refresh").status_code == 401


# Tokens and cookies: the core dependencies.


@pytest.fixture
def core_app(backend, auth_store):
    DatabaseIdentityProvider(auth_store).create_user("dora", None, roles=["admin"])
    app = FastAPI()
    app.add_middleware(AuthenticationMiddleware, backend=backend)
    app.mount("/auth", AuthAPI)

    @app.get("/access")
    def access(
        ok: Annotated[bool, Depends(has_access)],
        scopes: Annotated[list[str], Depends(get_scopes)],
    ):
        return {"access": ok, "scopes": scopes}

    return TestClient(app, base_url="https://testserver")


@pytest.mark.parametrize("token", MALFORMED_TOKENS, ids=range(len(MALFORMED_TOKENS)))
def test_malformed_tokens_on_core_dependencies_are_401_or_anonymous(core_app, token):
    bearer = core_app.get("/access", headers={"authorization": b"Bearer " + token})
    assert bearer.status_code == 401
    cookie = core_app.get(
        "/access", headers={"cookie": b"access_token_cookie=" + token}
    )
    assert cookie.status_code == 200
    assert cookie.json() == {"access": False, "scopes": ["public"]}


@pytest.mark.parametrize(
    "header",
    [b"Bearer", b"Bearer ", b"Basic Y2Fyb2w6eA==", b"bearer\tx", b"\xff\xfe", b"Token"],
)
def test_malformed_authorization_headers_are_401(core_app, header):
    response = core_app.get("/access", headers={"authorization": header})
    assert response.status_code == 401


# ORCID callback parameters and state cookie.


@pytest.fixture
def orcid_client(backend, auth_store, fake_orcid):
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.routing import Mount, Router

    from macrostrat.auth_system.orcid import OrcidAPI, OrcidSettings

    set_identity_provider(DatabaseIdentityProvider())
    orcid = OrcidAPI(
        OrcidSettings(
            client_id="APP-TESTCLIENT0001",
            client_secret="orcid-client-secret",
            redirect_uri="https://testserver/auth/orcid/callback",
            base_url=fake_orcid.base_url,
        )
    )
    app = Starlette(
        routes=[Mount("/auth", app=Router([*AuthAPI.routes, *orcid.routes]))],
        middleware=[Middleware(AuthenticationMiddleware, backend=backend)],
    )
    return TestClient(app, base_url="https://testserver", follow_redirects=False)


def _orcid_state(client) -> str:
    from urllib.parse import parse_qs, urlsplit

    location = client.get("/auth/orcid/login").headers["location"]
    return parse_qs(urlsplit(location).query)["state"][0]


@pytest.mark.parametrize(
    "query",
    [
        "code=abc%00def&state={state}",
        "code=" + "c" * 600 + "&state={state}",
        "code=abc&state={state}%00",
        "code=abc&state=" + "s" * 300,
        "error=" + "e" * 300 + "&state={state}",
        "code=abc&state=%ff%fe",
    ],
)
def test_malformed_orcid_callback_parameters_are_400(orcid_client, fake_orcid, query):
    state = _orcid_state(orcid_client)
    response = orcid_client.get("/auth/orcid/callback?" + query.format(state=state))
    assert response.status_code == 400
    assert response.json()["login"] is False
    assert fake_orcid.requests == []  # nothing was sent to ORCID


@pytest.mark.parametrize(
    "cookie",
    [
        b"a.b.c",
        "state.\u0661\u0662.mac".encode(),  # Arabic-Indic digits: no expiry
        b"state." + b"9" * 5000 + b".mac",
        b"x" * 2000,
        b"..",
        b"\xff.\x00.\xfe",
    ],
)
def test_malformed_orcid_state_cookie_is_400(orcid_client, fake_orcid, cookie):
    response = orcid_client.get(
        "/auth/orcid/callback?code=abc&state=state",
        headers={"cookie": b"orcid_state=" + cookie},
    )
    assert response.status_code == 400
    assert fake_orcid.requests == []


def test_orcid_name_with_nul_and_overlong_is_cleaned_not_500(
    orcid_client, fake_orcid, auth_store
):
    fake_orcid.reply_json(
        {"orcid": "0000-0002-1825-0097", "name": "Josiah\x00 Carberry" + "y" * 400}
    )
    state = _orcid_state(orcid_client)
    response = orcid_client.get(f"/auth/orcid/callback?code=abc&state={state}")
    assert response.status_code == 303
    with auth_store.session() as session:
        user = session.scalars(select(User)).one()
    assert user.name.startswith("Josiah Carberry")
    assert "\x00" not in user.name
    assert len(user.name) == 255
