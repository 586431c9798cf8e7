"""Legacy names not covered through the routes: direct calls and the revocation store."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time

import pytest
from starlette.requests import Request

from macrostrat.auth_system.core import (
    AccessToken,
    GroupTokenRequest,
    TokenData,
    UserInfo,
)
from macrostrat.auth_system.legacy import (
    AuthenticationError,
    JWTBackend,
    RevocationStore,
    UnauthorizedResponse,
    authenticate_request,
    get_backend,
    get_scopes,
    set_backend,
)
from macrostrat.auth_system.legacy.context import _reset


def _request(cookies: dict[str, str] | None = None, headers=None) -> Request:
    raw = [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    if cookies:
        raw.append(
            (b"cookie", "; ".join(f"{k}={v}" for k, v in cookies.items()).encode())
        )
    return Request({"type": "http", "method": "GET", "path": "/", "headers": raw})


@pytest.fixture
def fresh_backend():
    backend = JWTBackend("r" * 48)
    set_backend(backend)
    yield backend
    _reset()


def test_set_backend_makes_it_current(fresh_backend):
    assert get_backend() is fresh_backend


def test_authenticate_request_and_get_scopes(fresh_backend):
    token = fresh_backend.create_token("access", "bob", ["reader"])
    creds, user = asyncio.run(
        authenticate_request(_request({"access_token_cookie": token}))
    )
    assert user.display_name == "bob"
    assert list(creds.scopes) == ["authenticated", "reader"]
    creds, user = asyncio.run(authenticate_request(_request()))
    assert not user.is_authenticated
    assert list(creds.scopes) == ["public"]
    scopes = asyncio.run(get_scopes(_request({"access_token_cookie": token})))
    assert scopes == ["authenticated", "reader"]


def test_get_identity_raises_authentication_error(fresh_backend):
    with pytest.raises(AuthenticationError, match="Could not find"):
        fresh_backend.get_identity(_request())
    with pytest.raises(AuthenticationError, match="Bearer"):
        fresh_backend.get_identity(_request(headers={"Authorization": "Basic abc"}))
    with pytest.raises(AuthenticationError, match="Invalid token"):
        fresh_backend.get_identity(_request({"access_token_cookie": "x.y.z"}))


def test_unauthorized_response():
    response = UnauthorizedResponse()
    assert response.status_code == 401
    assert json.loads(response.body) == {
        "login": False,
        "username": None,
        "message": "user is not authenticated",
    }
    other = UnauthorizedResponse(status_code=200, message="custom")
    assert other.status_code == 200
    assert json.loads(other.body)["message"] == "custom"


def test_revocation_store_revokes_and_prunes():
    store = RevocationStore()
    now = int(time.time())
    store.revoke("old", now - 5)
    assert not store.is_revoked("old")  # already expired: nothing to keep
    assert len(store) == 0
    store.revoke("current", now + 600)
    assert store.is_revoked("current")
    assert not store.is_revoked("old")
    assert not store.is_revoked("never")


def test_custom_revocation_store_is_used_on_logout(fresh_backend):
    class Recording(RevocationStore):
        def __init__(self):
            super().__init__()
            self.revoked = []

        def revoke(self, jti, expires_at):
            self.revoked.append(jti)
            super().revoke(jti, expires_at)

    store = Recording()
    backend = JWTBackend("r" * 48, revocation_store=store)
    token = backend.create_token("access", "bob")
    backend.revoke_request_tokens(_request({"access_token_cookie": token}))
    assert store.revoked == [backend._decode(token)["jti"]]
    with pytest.raises(AuthenticationError, match="revoked"):
        backend.decode_token(token)


def test_core_data_classes():
    data = TokenData(sub="0000-0002-1825-0097")
    assert data.groups == []
    assert TokenData(sub="a", groups=[1, 2]).groups == [1, 2]
    assert AccessToken(group=3, token="t").group == 3
    assert GroupTokenRequest(expiration=3600, group_id=1).expiration == 3600
    info = UserInfo(username="ann", email="a@example.org")
    assert info.full_name is None
    assert info.disabled is None
    with pytest.raises(dataclasses.FrozenInstanceError):
        info.username = "bob"  # type: ignore[misc]


def test_upstream_model_user_is_a_deprecated_alias_of_user_info():
    from macrostrat.auth_system.core import model

    with pytest.warns(DeprecationWarning, match="UserInfo"):
        alias = model.User
    assert alias is model.UserInfo
    with pytest.raises(AttributeError):
        model.Nope  # noqa: B018


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("ALGORITHM", "HS256"),
        ("ACCESS_TOKEN_EXPIRE_MINUTES", 1440),
        ("GROUP_TOKEN_LENGTH", 32),
    ],
)
def test_upstream_core_main_constants_warn(name, value):
    from macrostrat.auth_system.core import main

    with pytest.warns(DeprecationWarning, match=name):
        assert getattr(main, name) == value
