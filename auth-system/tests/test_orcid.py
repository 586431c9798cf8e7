"""ORCID login: authorization-code flow against a stand-in token endpoint on loopback."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import func, select, text
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Mount, Router
from starlette.testclient import TestClient

from macrostrat.auth_system.core import DatabaseIdentityProvider, RevokedToken, User
from macrostrat.auth_system.errors import AuthConfigurationError, OrcidLoginError
from macrostrat.auth_system.legacy import (
    AuthAPI,
    AuthenticationMiddleware,
    IdentityProvider,
    create_backend,
    set_identity_provider,
)
from macrostrat.auth_system.orcid import (
    ORCID_PRODUCTION,
    ORCID_SANDBOX,
    STATE_COOKIE,
    OrcidAPI,
    OrcidIdentity,
    OrcidSettings,
    exchange_code,
    is_valid_orcid,
)
from macrostrat.auth_system.orcid import _state as state_module

ORCID = "0000-0002-1825-0097"
REDIRECT = "https://testserver/auth/orcid/callback"


def _settings(fake, **kwargs) -> OrcidSettings:
    return OrcidSettings(
        client_id="APP-TESTCLIENT0001",
        client_secret="orcid-client-secret",
        redirect_uri=REDIRECT,
        base_url=fake.base_url,
        **kwargs,
    )


@pytest.fixture
def orcid_app(backend, auth_store, fake_orcid):
    provider = DatabaseIdentityProvider()
    set_identity_provider(provider)

    def build(backend=backend, **kwargs):
        orcid = OrcidAPI(_settings(fake_orcid, **kwargs))
        app = Starlette(
            routes=[Mount("/auth", app=Router([*AuthAPI.routes, *orcid.routes]))],
            middleware=[Middleware(AuthenticationMiddleware, backend=backend)],
        )
        return TestClient(app, base_url="https://testserver", follow_redirects=False)

    return build


@pytest.fixture
def client(orcid_app):
    with orcid_app() as client:
        yield client


def _start(client) -> str:
    response = client.get("/auth/orcid/login")
    assert response.status_code == 302
    return parse_qs(urlsplit(response.headers["location"]).query)["state"][0]


def _set_cookie(response, name):
    return [
        c for c in response.headers.get_list("set-cookie") if c.startswith(name + "=")
    ]


def test_login_redirects_to_orcid_authorize(client, fake_orcid):
    response = client.get("/auth/orcid/login")
    assert response.status_code == 302
    url = urlsplit(response.headers["location"])
    assert f"{url.scheme}://{url.netloc}" == fake_orcid.base_url
    assert url.path == "/oauth/authorize"
    query = {k: v[0] for k, v in parse_qs(url.query).items()}
    assert query["client_id"] == "APP-TESTCLIENT0001"
    assert query["response_type"] == "code"
    assert query["scope"] == "/authenticate"
    assert query["redirect_uri"] == REDIRECT
    assert len(query["state"]) >= 43
    assert "client_secret" not in url.query
    (cookie,) = _set_cookie(response, STATE_COOKIE)
    lower = cookie.lower()
    assert "httponly" in lower
    assert "; secure" in lower
    assert "samesite=lax" in lower
    assert "max-age=600" in lower
    assert cookie.split("=", 1)[1].startswith(query["state"] + ".")
    assert fake_orcid.requests == []


def test_each_login_gets_a_new_state(client):
    assert _start(client) != _start(client)


def test_full_flow_creates_user_and_sets_login_cookies(client, fake_orcid, auth_store):
    state = _start(client)
    response = client.get(f"/auth/orcid/callback?code=abc123&state={state}")
    assert response.status_code == 303
    assert response.headers["location"] == "/"
    (request,) = fake_orcid.requests
    assert request == {
        "path": "/oauth/token",
        "accept": "application/json",
        "content-type": "application/x-www-form-urlencoded",
        "client_id": "APP-TESTCLIENT0001",
        "client_secret": "orcid-client-secret",
        "grant_type": "authorization_code",
        "code": "abc123",
        "redirect_uri": REDIRECT,
    }
    for name in ("access_token_cookie", "refresh_token_cookie"):
        (cookie,) = _set_cookie(response, name)
        assert "httponly" in cookie.lower()
        assert "; secure" in cookie.lower()
    (deleted,) = _set_cookie(response, STATE_COOKIE)
    assert "max-age=0" in deleted.lower()
    assert "orcid-access" not in response.text
    user = auth_store.get_user(ORCID)
    assert (user.sub, user.name) == (ORCID, "Josiah Carberry")
    assert client.get("/auth/status").json() == {"login": True, "username": ORCID}


def test_second_login_finds_the_same_user(client, auth_store):
    for _ in range(2):
        state = _start(client)
        assert (
            client.get(f"/auth/orcid/callback?code=c&state={state}").status_code == 303
        )
    with auth_store.session() as session:
        assert session.scalar(select(func.count()).select_from(User)) == 1


def test_roles_come_from_the_users_groups(client, auth_store):
    user = auth_store.upsert_orcid_user(ORCID, None)
    auth_store.add_member(user.id, "admin")
    state = _start(client)
    client.get(f"/auth/orcid/callback?code=c&state={state}")
    assert client.get("/auth/secret").json() == {"answer": 42}


def _no_login(response, fake_orcid, status, match):
    assert response.status_code == status
    body = response.json()
    assert body["login"] is False
    assert match in body["message"]
    assert not _set_cookie(response, "access_token_cookie")


def test_state_mismatch_is_rejected_before_the_exchange(client, fake_orcid):
    _start(client)
    response = client.get("/auth/orcid/callback?code=c&state=attacker-state")
    _no_login(response, fake_orcid, 400, "mismatch")
    assert fake_orcid.requests == []


def test_missing_state_parameter(client, fake_orcid):
    _start(client)
    _no_login(client.get("/auth/orcid/callback?code=c"), fake_orcid, 400, "state")
    assert fake_orcid.requests == []


def test_missing_state_cookie(client, fake_orcid):
    state = _start(client)
    client.cookies.clear()
    response = client.get(f"/auth/orcid/callback?code=c&state={state}")
    _no_login(response, fake_orcid, 400, "cookie")
    assert fake_orcid.requests == []


def test_forged_state_cookie(client, fake_orcid):
    _start(client)
    client.cookies.clear()
    client.cookies.set(STATE_COOKIE, "chosen.9999999999.deadbeef")
    response = client.get("/auth/orcid/callback?code=c&state=chosen")
    _no_login(response, fake_orcid, 400, "signature")


@pytest.mark.parametrize("value", ["garbage", "a.b.c", "a.1", "a.notanumber.x"])
def test_malformed_state_cookie(client, fake_orcid, value):
    client.cookies.set(STATE_COOKIE, value)
    response = client.get("/auth/orcid/callback?code=c&state=a")
    assert response.status_code == 400
    assert fake_orcid.requests == []


def test_expired_state(client, fake_orcid, backend):
    cookie = state_module.sign_state(backend.encode_key, "old-state", -1)
    client.cookies.set(STATE_COOKIE, cookie)
    response = client.get("/auth/orcid/callback?code=c&state=old-state")
    _no_login(response, fake_orcid, 400, "expired")


def test_state_cannot_be_replayed(client, fake_orcid):
    state = _start(client)
    cookie = client.cookies.get(STATE_COOKIE)
    assert client.get(f"/auth/orcid/callback?code=c&state={state}").status_code == 303
    client.cookies.clear()
    client.cookies.set(STATE_COOKIE, cookie)
    replay = client.get(f"/auth/orcid/callback?code=c&state={state}")
    _no_login(replay, fake_orcid, 400, "already used")
    assert len(fake_orcid.requests) == 1


def test_state_comparison_is_constant_time(client, monkeypatch):
    calls = []
    real = state_module.compare_digest

    def spy(a, b):
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(state_module, "compare_digest", spy)
    state = _start(client)
    client.get(f"/auth/orcid/callback?code=c&state={state}")
    assert (state.encode(), state.encode()) in calls
    assert len(calls) == 2  # the signature, then the state


def test_user_denied_at_orcid(client, fake_orcid):
    state = _start(client)
    response = client.get(
        f"/auth/orcid/callback?error=access_denied&error_description=x&state={state}"
    )
    _no_login(response, fake_orcid, 401, "access_denied")
    assert fake_orcid.requests == []


def test_missing_code(client, fake_orcid):
    state = _start(client)
    _no_login(
        client.get(f"/auth/orcid/callback?state={state}"), fake_orcid, 400, "code"
    )


@pytest.mark.parametrize(
    ("status", "body", "expected", "match"),
    [
        (
            400,
            {"error": "invalid_grant", "error_description": "Reused code"},
            401,
            "Reused code",
        ),
        (401, {"error": "invalid_client"}, 401, "invalid_client"),
        (500, {"error": "server_error"}, 502, "HTTP 500"),
        (200, {"name": "No iD"}, 502, "orcid"),
        (200, {"orcid": "0000-0002-1825-0098", "name": "Bad checksum"}, 502, "orcid"),
        (200, ["not", "an", "object"], 502, "orcid"),
    ],
)
def test_token_endpoint_failures(
    client, fake_orcid, auth_store, status, body, expected, match
):
    fake_orcid.reply_json(body, status)
    state = _start(client)
    response = client.get(f"/auth/orcid/callback?code=c&state={state}")
    _no_login(response, fake_orcid, expected, match)
    assert auth_store.get_user(ORCID) is None


def test_token_endpoint_invalid_json(client, fake_orcid):
    fake_orcid.body = b"<html>oops</html>"
    state = _start(client)
    response = client.get(f"/auth/orcid/callback?code=c&state={state}")
    _no_login(response, fake_orcid, 502, "JSON")


def test_token_endpoint_unreachable(orcid_app, fake_orcid):
    fake_orcid.close()
    with orcid_app() as client:
        state = _start(client)
        response = client.get(f"/auth/orcid/callback?code=c&state={state}")
    _no_login(response, fake_orcid, 502, "could not be reached")


def test_allow_list_of_ids_refuses_others_without_creating_them(
    orcid_app, fake_orcid, auth_store
):
    with orcid_app(allowed_orcids={"0000-0001-5109-3700"}) as client:
        state = _start(client)
        response = client.get(f"/auth/orcid/callback?code=c&state={state}")
    _no_login(response, fake_orcid, 403, "may not log in")
    assert auth_store.get_user(ORCID) is None


def test_allow_list_of_ids_admits_listed(orcid_app):
    with orcid_app(allowed_orcids={ORCID}) as client:
        state = _start(client)
        assert (
            client.get(f"/auth/orcid/callback?code=c&state={state}").status_code == 303
        )


def test_allow_list_of_groups(orcid_app, fake_orcid, auth_store):
    with orcid_app(allowed_groups={"editors"}) as client:
        state = _start(client)
        refused = client.get(f"/auth/orcid/callback?code=c&state={state}")
        _no_login(refused, fake_orcid, 403, "may not log in")
        assert auth_store.get_user(ORCID) is None  # refused without a row
        user = auth_store.create_user(ORCID, None, sub=ORCID)
        state = _start(client)
        refused = client.get(f"/auth/orcid/callback?code=c&state={state}")
        _no_login(refused, fake_orcid, 403, "may not log in")
        auth_store.add_member(user.id, "editors")
        state = _start(client)
        assert (
            client.get(f"/auth/orcid/callback?code=c&state={state}").status_code == 303
        )


def test_state_cookie_secure_flag_follows_backend(orcid_app, secret_key):
    backend = create_backend(secret_key, secure_cookies=False)
    with orcid_app(backend=backend) as client:
        (cookie,) = _set_cookie(client.get("/auth/orcid/login"), STATE_COOKIE)
    assert "; secure" not in cookie.lower()
    assert "httponly" in cookie.lower()


def test_success_redirect_is_configurable(orcid_app):
    with orcid_app(success_redirect="/welcome") as client:
        state = _start(client)
        response = client.get(f"/auth/orcid/callback?code=c&state={state}")
    assert response.headers["location"] == "/welcome"


def test_exchange_code_directly(fake_orcid):
    identity = exchange_code(_settings(fake_orcid), "xyz")
    assert identity == OrcidIdentity(orcid=ORCID, name="Josiah Carberry")
    fake_orcid.reply_json({"orcid": ORCID, "name": ""})
    assert exchange_code(_settings(fake_orcid), "xyz").name is None


# Configuration: misconfiguration fails when the settings are built.

GOOD = {
    "client_id": "APP-1",
    "client_secret": "s",
    "redirect_uri": "https://example.org/auth/orcid/callback",
}


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"client_id": ""}, "client_id"),
        ({"client_secret": "  "}, "client_secret"),
        ({"redirect_uri": ""}, "redirect_uri"),
        ({"redirect_uri": "/auth/orcid/callback"}, "redirect_uri"),
        ({"redirect_uri": "http://example.org/cb"}, "https"),
        ({"base_url": "http://orcid.org"}, "https"),
        ({"base_url": "https://orcid.org/oauth"}, "base URL"),
        ({"base_url": "ftp://orcid.org"}, "base_url"),
        ({"allowed_orcids": {"0000-0002-1825-0098"}}, "invalid"),
        ({"allowed_orcids": {"not-an-orcid"}}, "invalid"),
        ({"success_redirect": "//evil.example"}, "success_redirect"),
        ({"state_max_age": 0}, "state_max_age"),
        ({"timeout": -1}, "timeout"),
        ({"scope": ""}, "scope"),
    ],
)
def test_bad_settings_fail_at_startup(change, match):
    with pytest.raises(AuthConfigurationError, match=match):
        OrcidSettings(**{**GOOD, **change})


def test_settings_defaults_and_urls():
    settings = OrcidSettings(**{**GOOD, "client_secret": "very-secret-value"})
    assert "very-secret-value" not in repr(settings)
    assert settings.base_url == ORCID_PRODUCTION == "https://orcid.org"
    assert settings.authorize_url == "https://orcid.org/oauth/authorize"
    assert settings.token_url == "https://orcid.org/oauth/token"
    assert not settings.restricted
    assert "client_secret" not in repr(settings)
    sandbox = OrcidSettings(**GOOD, base_url=ORCID_SANDBOX + "/")
    assert sandbox.token_url == "https://sandbox.orcid.org/oauth/token"


def test_settings_from_env():
    with pytest.raises(AuthConfigurationError) as info:
        OrcidSettings.from_env({"ORCID_CLIENT_ID": "APP-1"})
    assert "ORCID_CLIENT_SECRET" in str(info.value)
    assert "ORCID_REDIRECT_URI" in str(info.value)
    settings = OrcidSettings.from_env(
        {
            "ORCID_CLIENT_ID": "APP-1",
            "ORCID_CLIENT_SECRET": "s",
            "ORCID_REDIRECT_URI": "https://example.org/cb",
            "ORCID_BASE_URL": ORCID_SANDBOX,
            "ORCID_ALLOWED_IDS": f"{ORCID}, 0000-0001-5109-3700",
            "ORCID_ALLOWED_GROUPS": "admin,editors",
        }
    )
    assert settings.base_url == ORCID_SANDBOX
    assert settings.allowed_orcids == {ORCID, "0000-0001-5109-3700"}
    assert settings.allowed_groups == {"admin", "editors"}
    assert settings.restricted


def test_orcid_api_checks_its_arguments(backend):
    with pytest.raises(AuthConfigurationError, match="OrcidSettings"):
        OrcidAPI({"client_id": "x"})  # type: ignore[arg-type]
    with pytest.raises(AuthConfigurationError, match="find_or_create_orcid_user"):
        OrcidAPI(OrcidSettings(**GOOD), provider=IdentityProvider())
    assert OrcidAPI(OrcidSettings(**GOOD), provider=DatabaseIdentityProvider())


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        (ORCID, True),
        ("0000-0002-1694-233X", True),
        ("0000-0002-1825-0098", False),
        ("0000-0002-1825-009", False),
        ("https://orcid.org/0000-0002-1825-0097", False),
        (None, False),
    ],
)
def test_is_valid_orcid(value, ok):
    assert is_valid_orcid(value) is ok


def test_orcid_login_error_carries_status():
    err = OrcidLoginError("nope", 403)
    assert err.status_code == 403
    assert OrcidLoginError("x").status_code == 400


# Security review fixes


def test_group_allow_list_refusal_creates_no_row(orcid_app, fake_orcid, auth_store):
    with orcid_app(allowed_groups={"editors"}) as client:
        state = _start(client)
        response = client.get(f"/auth/orcid/callback?code=c&state={state}")
    _no_login(response, fake_orcid, 403, "may not log in")
    assert auth_store.get_user(ORCID) is None
    assert auth_store.get_user_by_sub(ORCID) is None


def test_listed_id_is_created_even_with_a_group_allow_list(orcid_app, auth_store):
    with orcid_app(allowed_groups={"editors"}, allowed_orcids={ORCID}) as client:
        state = _start(client)
        assert (
            client.get(f"/auth/orcid/callback?code=c&state={state}").status_code == 303
        )
    assert auth_store.get_user_by_sub(ORCID) is not None


def _spent_states(auth_store) -> int:
    with auth_store.session() as session:
        return session.scalar(select(func.count()).select_from(RevokedToken))


def test_error_callback_does_not_spend_the_state(
    client, backend, fake_orcid, auth_store
):
    # With an auth database, spent states are rows of its revoked_token table.
    assert backend.revocation_store is auth_store.revocation_store
    state = _start(client)
    cookie = client.cookies.get(STATE_COOKIE)
    denied = client.get(f"/auth/orcid/callback?error=access_denied&state={state}")
    assert denied.status_code == 401
    no_code = client.get(f"/auth/orcid/callback?state={state}")
    assert no_code.status_code == 400
    assert not backend.revocation_store.is_revoked(f"orcid-state:{state}")
    assert _spent_states(auth_store) == 0
    client.cookies.set(STATE_COOKIE, cookie)
    ok = client.get(f"/auth/orcid/callback?code=c&state={state}")
    assert ok.status_code == 303
    assert backend.revocation_store.is_revoked(f"orcid-state:{state}")
    assert _spent_states(auth_store) == 1


def test_a_failing_revocation_store_answers_503_and_logs_nobody_in(
    client, fake_orcid, auth_store, caplog
):
    state = _start(client)
    with auth_store.database.engine.begin() as conn:
        conn.execute(text("DROP TABLE macrostrat_auth.revoked_token"))
    response = client.get(f"/auth/orcid/callback?code=c&state={state}")
    assert response.status_code == 503
    assert response.json()["login"] is False
    assert "revoked_token" not in response.text
    assert "access_token_cookie" not in response.headers.get("set-cookie", "")
    assert fake_orcid.requests == []  # the code was never exchanged
    assert auth_store.get_user_by_sub(ORCID) is None
    assert "revoked_token" in caplog.text


def test_error_parameter_is_quoted_in_messages_and_logs(client, fake_orcid, caplog):
    import logging

    caplog.set_level(logging.INFO, logger="macrostrat.auth_system.orcid")
    state = _start(client)
    response = client.get(
        "/auth/orcid/callback",
        params={"error": "x\nERROR forged entry", "state": state},
    )
    assert response.status_code == 401
    assert "'x\\nERROR forged entry'" in response.json()["message"]
    messages = [r.getMessage() for r in caplog.records]
    assert any("forged entry" in m for m in messages)
    assert not any("\n" in m for m in messages)


def test_orcid_id_taken_by_a_local_username_is_409(client, fake_orcid, auth_store):
    auth_store.create_user(ORCID, None)  # a local account named like the iD
    state = _start(client)
    response = client.get(f"/auth/orcid/callback?code=c&state={state}")
    _no_login(response, fake_orcid, 409, "conflicts")


def test_orcid_refresh_cookie_is_scoped_to_the_auth_mount(client):
    state = _start(client)
    response = client.get(f"/auth/orcid/callback?code=c&state={state}")
    (refresh,) = _set_cookie(response, "refresh_token_cookie")
    assert "path=/auth;" in refresh.lower() + ";"


def test_orcid_api_checks_configuration_at_construction(secret_key):
    from macrostrat.auth_system.legacy.context import _reset

    _reset()
    with pytest.raises(AuthConfigurationError, match="create_backend"):
        OrcidAPI(OrcidSettings(**GOOD), provider=DatabaseIdentityProvider())
    create_backend(secret_key)
    try:
        with pytest.raises(AuthConfigurationError, match="identity provider"):
            OrcidAPI(OrcidSettings(**GOOD))
        set_identity_provider(IdentityProvider())
        with pytest.raises(AuthConfigurationError, match="find_or_create_orcid_user"):
            OrcidAPI(OrcidSettings(**GOOD))

        class CreateOnly(IdentityProvider):
            def find_or_create_orcid_user(self, orcid, name=None):
                return None

        set_identity_provider(CreateOnly())
        assert OrcidAPI(OrcidSettings(**GOOD))
        with pytest.raises(AuthConfigurationError, match="find_orcid_user"):
            OrcidAPI(OrcidSettings(**GOOD, allowed_groups={"editors"}))
    finally:
        _reset()


@pytest.mark.parametrize(
    "target",
    [
        "/\\evil.example",
        "\\\\evil.example",
        "/ok\\path",
        "http://evil.example/",
        "javascript:alert(1)",
        "/a\nb",
        "https:///nohost",
        "",
    ],
)
def test_success_redirect_must_be_a_local_path_or_https(target):
    with pytest.raises(AuthConfigurationError, match="success_redirect"):
        OrcidSettings(**GOOD, success_redirect=target)


@pytest.mark.parametrize(
    "target",
    ["/", "/welcome?x=1", "https://app.example.org/in", "http://localhost:3000/"],
)
def test_success_redirect_accepts_paths_and_https(target):
    assert OrcidSettings(**GOOD, success_redirect=target).success_redirect == target
