"""Upstream compatibility: every name and signature of `macrostrat.auth_system` 1.1.

The table is generated from the upstream API reference
(`api-appframe-auth-utils-tools.md`, section 4): one row per public name, with
its upstream import path and, for callables, upstream's parameters. Each name
must import from that path, and each signature must accept upstream's
positional and keyword forms (checked with `inspect.Signature.bind`). Real
calls in upstream's forms follow.

Parameter specs: names in order; `name=` is optional, `*args`/`**kwargs` are
variadic, names after `*` or `*args` are keyword-only. `None` marks a
non-callable (a constant, a router, a declarative model) or a class whose
constructor belongs to another library. A `deprecated` flag means access warns
with `DeprecationWarning`.

The `core` request dependencies are a separate table (`DEPENDENCIES`): FastAPI
decides what a dependency takes from the request by reading its signature, so
the signature they show is `(request)` only (upstream's parameters would become
query parameters a client could set). Upstream's direct-call forms are proven
by real calls instead, and the FastAPI-facing signature is checked too.
"""

# No `from __future__ import annotations`: FastAPI must resolve the routes'
# annotations, which name local objects.
import asyncio
import inspect
from typing import Annotated, Any

import pytest
from fastapi import Depends, FastAPI
from fastapi.security import HTTPAuthorizationCredentials
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.testclient import TestClient

from macrostrat.auth_system.errors import MissingDependencyError

L = "macrostrat.auth_system.legacy"
C = "macrostrat.auth_system.core"

UPSTREAM: list[tuple[str, str, str | None, bool]] = [
    # 4.1 legacy package
    (L, "AuthenticationError", None, False),  # Starlette's class
    (L, "AuthenticationMiddleware", None, False),  # Starlette's class
    (L, "AuthAPI", None, False),  # a Starlette Router
    (L, "get_backend", "", False),
    (L, "JWTBackend", "encode_key", False),
    (L, "authenticate_request", "request", False),
    (L, "get_scopes", "request", False),
    # legacy/backend.py
    (f"{L}.backend", "hour", None, False),
    (f"{L}.backend", "day", None, False),
    (f"{L}.backend", "month", None, False),
    (f"{L}.backend", "JWTBackend", "encode_key", False),
    (f"{L}.backend", "JWTBackend.set_cookie", "response, type, **data", False),
    (f"{L}.backend", "JWTBackend._encode", "payload, **kwargs", False),
    (f"{L}.backend", "JWTBackend._decode", "token, **kwargs", False),
    (f"{L}.backend", "JWTBackend.get_identity", "request, type=", False),
    (f"{L}.backend", "JWTBackend.authenticate", "request", False),
    (f"{L}.backend", "JWTBackend.set_login_cookies", "response, **data", False),
    (f"{L}.backend", "JWTBackend.set_access_cookie", "response, **data", False),
    (f"{L}.backend", "JWTBackend.logout", "response", False),
    # legacy/context.py
    (f"{L}.context", "get_backend", "", False),
    (f"{L}.context", "get_identity_provider", "", False),
    (f"{L}.context", "set_identity_provider", "provider", False),
    (f"{L}.context", "create_backend", "secret_key", False),
    (f"{L}.context", "get_secret_key", "", False),
    # legacy/identity.py
    (f"{L}.identity", "IdentityProvider", "", False),
    (f"{L}.identity", "IdentityProvider.create_user", "username, password", False),
    (f"{L}.identity", "IdentityProvider.get_user", "username", False),
    (f"{L}.identity", "BaseUser", "username, password", False),
    (f"{L}.identity", "BaseUser.set_password", "plaintext", False),
    (f"{L}.identity", "BaseUser.is_correct_password", "plaintext", False),
    # legacy/api.py
    (f"{L}.api", "AuthAPI", None, False),
    (f"{L}.api", "UnauthorizedResponse", "**kwargs", False),
    # 4.2 core/main.py constants and FastAPI security objects
    (f"{C}.main", "ALGORITHM", None, True),
    (f"{C}.main", "ACCESS_TOKEN_EXPIRE_MINUTES", None, True),
    (f"{C}.main", "GROUP_TOKEN_LENGTH", None, True),
    (f"{C}.main", "GROUP_TOKEN_SALT", None, True),
    (f"{C}.main", "OAuth2AuthorizationCodeBearerWithCookie", "*, authorizationUrl, tokenUrl, auto_error=", False),
    (f"{C}.main", "OAuth2AuthorizationCodeBearerWithCookie.__call__", "request", False),
    (f"{C}.main", "oauth2_scheme", "request", False),
    (f"{C}.main", "http_bearer", "request", False),
    # core/model.py (upstream's were pydantic models: keyword fields)
    (f"{C}.model", "TokenData", "*, sub, groups=", False),
    (f"{C}.model", "User", "*, username, email=, full_name=, disabled=", True),
    (f"{C}.model", "AccessToken", "*, group, token", False),
    (f"{C}.model", "GroupTokenRequest", "*, expiration, group_id", False),
    # core/schema.py (declarative models)
    (f"{C}.schema", "Base", None, False),
    (f"{C}.schema", "GroupMembers", None, False),
    (f"{C}.schema", "Group", None, False),
    (f"{C}.schema", "User", None, False),
    (f"{C}.schema", "Token", None, False),
    # core/database.py
    (f"{C}.database", "get_database", "", False),
    (f"{C}.database", "get_engine", "", False),
    (f"{C}.database", "get_base", "", False),
    (f"{C}.database", "connect_engine", "uri, schema", False),
    (f"{C}.database", "dispose_engine", "", False),
    (f"{C}.database", "get_session_maker", "", False),
    (f"{C}.database", "get_session", "", False),
    (f"{C}.database", "get_access_token", "token", False),
]  # fmt: skip

# The FastAPI dependencies: (module, name, upstream's parameters).
DEPENDENCIES: list[tuple[str, str, str]] = [
    (f"{C}.main", "get_groups_from_header_token", "header_token"),
    (f"{C}.main", "get_user_token_from_cookie", "token"),
    (f"{C}.main", "get_groups", "user_token_data=, header_token="),
    (f"{C}.main", "get_user_id", "user_token_data="),
    (f"{C}.main", "has_access", "groups"),
    # re-exported at the package root of core
    (C, "get_groups", "user_token_data=, header_token="),
    (C, "get_groups_from_header_token", "header_token"),
    (C, "get_user_id", "user_token_data="),
    (C, "get_user_token_from_cookie", "token"),
    (C, "has_access", "groups"),
]


# -- the table checks: the `upstream_api` fixture of the root conftest.py ------
# (rows marked deprecated must warn when imported; the others are not checked
# for warnings)


@pytest.mark.parametrize(("module", "qualname", "spec", "deprecated"), UPSTREAM)
def test_name_imports_from_its_upstream_path(
    upstream_api, module, qualname, spec, deprecated
):
    upstream_api.check_import(module, qualname, spec, deprecated=deprecated)


@pytest.mark.parametrize(
    ("module", "qualname", "spec", "deprecated"),
    [row for row in UPSTREAM if row[2] is not None],
)
@pytest.mark.parametrize("form", ["positional", "keyword", "required"])
def test_signature_accepts_upstream_calls(
    upstream_api, module, qualname, spec, deprecated, form
):
    upstream_api.check_call_form(module, qualname, spec, form, deprecated=deprecated)


@pytest.mark.parametrize(("module", "name", "spec"), DEPENDENCIES)
def test_dependency_imports_and_shows_fastapi_only_the_request(module, name, spec):
    namespace: dict[str, Any] = {}
    exec(f"from {module} import {name}", namespace)
    dependency = namespace[name]
    assert list(inspect.signature(dependency).parameters) == ["request"]


# -- real calls: the dependencies in upstream's direct-call forms -------------

UPSTREAM_ARGS = "with upstream's arguments"


def test_pure_dependencies_in_upstream_forms():
    from macrostrat.auth_system.core import TokenData, get_groups, get_user_id

    user = TokenData(sub="0000-0002-1825-0097", groups=[1, 2])
    with pytest.warns(DeprecationWarning, match="get_groups"):
        assert get_groups(user_token_data=user, header_token=5) == [1, 2, 5]
    with pytest.warns(DeprecationWarning, match=UPSTREAM_ARGS):
        assert get_groups(user, 2) == [1, 2]
    with pytest.warns(DeprecationWarning, match=UPSTREAM_ARGS):
        assert get_groups(None, None) == []
    with pytest.warns(DeprecationWarning, match=UPSTREAM_ARGS):
        assert get_groups() == []
    with pytest.warns(DeprecationWarning, match="get_user_id"):
        assert get_user_id(user_token_data=user) == "0000-0002-1825-0097"
    with pytest.warns(DeprecationWarning, match=UPSTREAM_ARGS):
        assert get_user_id(None) is None
    with pytest.raises(TypeError, match="upstream's arguments"):
        get_groups(user, 2, 3)


def test_database_dependencies_in_upstream_forms(backend, auth_store):
    from macrostrat.auth_system.core import (
        get_groups_from_header_token,
        get_user_token_from_cookie,
        has_access,
    )

    admin = auth_store.create_group("admin")
    readers = auth_store.create_group("readers")
    auth_store.create_user("ada", groups=["readers"])
    with pytest.warns(DeprecationWarning, match="has_access"):
        assert has_access(groups=[readers, admin]) is True
    with pytest.warns(DeprecationWarning, match=UPSTREAM_ARGS):
        assert has_access([readers]) is False

    access = backend.create_token("access", "ada")
    with pytest.warns(DeprecationWarning, match="get_user_token_from_cookie"):
        data = get_user_token_from_cookie(token=access)
    assert (data.sub, data.groups) == ("ada", [readers])
    with pytest.warns(DeprecationWarning, match=UPSTREAM_ARGS):
        assert get_user_token_from_cookie(None) is None
    with pytest.warns(DeprecationWarning, match=UPSTREAM_ARGS):
        assert get_user_token_from_cookie("not-a-jwt") is None
    refresh = backend.create_token("refresh", "ada")
    with pytest.warns(DeprecationWarning, match=UPSTREAM_ARGS):
        assert get_user_token_from_cookie(refresh) is None

    token = auth_store.create_api_token("readers", 3600)
    credentials = HTTPAuthorizationCredentials(scheme="Bearer", credentials=token)
    with pytest.warns(DeprecationWarning, match="get_groups_from_header_token"):
        assert get_groups_from_header_token(header_token=credentials) == readers
    with pytest.warns(DeprecationWarning, match=UPSTREAM_ARGS):
        assert get_groups_from_header_token(token) == readers
    with pytest.warns(DeprecationWarning, match=UPSTREAM_ARGS):
        assert get_groups_from_header_token(None) is None
    # an unknown token answers 401, as through a request (upstream: 500)
    unknown = HTTPAuthorizationCredentials(scheme="Bearer", credentials="nope")
    with (
        pytest.warns(DeprecationWarning, match=UPSTREAM_ARGS),
        pytest.raises(HTTPException) as caught,
    ):
        get_groups_from_header_token(unknown)
    assert caught.value.status_code == 401


def test_dependencies_take_no_query_parameters_in_fastapi(backend, auth_store):
    from macrostrat.auth_system.core import get_groups, has_access

    app = FastAPI()

    @app.get("/x")
    def x(
        groups: Annotated[list[int], Depends(get_groups)],
        access: Annotated[bool, Depends(has_access)],
    ):
        return {"groups": groups, "access": access}

    assert "parameters" not in app.openapi()["paths"]["/x"]["get"]
    with TestClient(app) as client:
        response = client.get("/x", params={"groups": "1", "header_token": "1"})
    assert response.json() == {"groups": [], "access": False}


# -- real calls: upstream's FastAPI security objects and constants ------------


def test_fastapi_security_objects_behave_as_upstream():
    from macrostrat.auth_system.core.main import (
        OAuth2AuthorizationCodeBearerWithCookie,
        http_bearer,
        oauth2_scheme,
    )

    assert isinstance(oauth2_scheme, OAuth2AuthorizationCodeBearerWithCookie)
    assert oauth2_scheme.auto_error is False
    strict = OAuth2AuthorizationCodeBearerWithCookie(
        authorizationUrl="/security/login", tokenUrl="/security/callback"
    )
    app = FastAPI()

    @app.get("/cookie")
    def cookie(token: Annotated[str | None, Depends(oauth2_scheme)]):
        return {"token": token}

    @app.get("/strict")
    def strict_route(token: Annotated[str, Depends(strict)]):
        return {"token": token}

    @app.get("/header")
    def header(
        credentials: Annotated[
            HTTPAuthorizationCredentials | None, Depends(http_bearer)
        ],
    ):
        return {"credentials": credentials.credentials if credentials else None}

    with TestClient(app) as client:
        client.cookies.set("Authorization", "Bearer abc.def")
        assert client.get("/cookie").json() == {"token": "abc.def"}
        assert client.get("/strict").json() == {"token": "abc.def"}
        client.cookies.set("Authorization", "Basic abc")
        assert client.get("/cookie").json() == {"token": None}
        client.cookies.clear()
        assert client.get("/cookie").json() == {"token": None}
        response = client.get("/strict")
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == "Bearer"
        headers = {"Authorization": "Bearer xyz"}
        assert client.get("/header", headers=headers).json() == {"credentials": "xyz"}
        assert client.get("/header").json() == {"credentials": None}


def test_fastapi_objects_without_fastapi_say_what_is_missing(monkeypatch):
    import sys

    import macrostrat.auth_system.core as core
    from macrostrat.auth_system.core import main

    monkeypatch.setitem(sys.modules, "fastapi", None)
    monkeypatch.delitem(sys.modules, f"{C}._fastapi_security", raising=False)
    monkeypatch.delattr(core, "_fastapi_security", raising=False)
    with pytest.raises(ImportError, match="install fastapi") as info:
        exec(f"from {C}.main import oauth2_scheme", {})
    assert isinstance(info.value, MissingDependencyError)
    assert isinstance(info.value.__cause__, ModuleNotFoundError)
    # the dependencies themselves do not need FastAPI
    assert callable(main.get_groups)


def test_group_token_salt_is_upstreams_deprecated_constant():
    from macrostrat.auth_system.core import main

    with pytest.warns(DeprecationWarning, match="GROUP_TOKEN_SALT"):
        salt = main.GROUP_TOKEN_SALT
    assert isinstance(salt, bytes)
    assert salt.startswith(b"$2b$12$")
    assert len(salt) == 29  # a bcrypt salt: "$2b$12$" and 22 characters


# -- real calls: legacy names in upstream's keyword forms ---------------------


def _request(cookies: dict[str, str]) -> Request:
    header = "; ".join(f"{k}={v}" for k, v in cookies.items()).encode()
    scope = {
        "type": "http",
        "method": "GET",
        "path": "/",
        "headers": [(b"cookie", header)],
    }
    return Request(scope)


def test_authenticate_accepts_upstreams_request_keyword(backend):
    token = backend.create_token("access", "bob", ["reader"])
    request = _request({"access_token_cookie": token})
    with pytest.warns(DeprecationWarning, match="request="):
        creds, user = asyncio.run(backend.authenticate(request=request))
    assert user.display_name == "bob"
    assert list(creds.scopes) == ["authenticated", "reader"]
    creds, user = asyncio.run(backend.authenticate(request))  # positional: no warning
    assert user.display_name == "bob"
    with pytest.raises(TypeError, match="both"):
        asyncio.run(backend.authenticate(request, request=request))


def test_legacy_calls_in_upstream_keyword_forms(backend):
    from macrostrat.auth_system.legacy import BaseUser, create_backend, get_secret_key
    from macrostrat.auth_system.legacy.api import UnauthorizedResponse

    key = "k" * 48
    assert create_backend(secret_key=key).encode_key == key
    assert get_secret_key() == key
    user = BaseUser(username="ada", password="correct horse")
    assert user.is_correct_password(plaintext="correct horse")
    user.set_password(plaintext="battery staple")
    assert not user.is_correct_password("correct horse")
    assert UnauthorizedResponse().status_code == 401
    assert backend.get_identity(
        request=_request({"access_token_cookie": backend.create_token("access", "x")}),
        type="access",
    ) in {"x"}


def test_model_keyword_construction():
    from macrostrat.auth_system.core import model

    assert model.TokenData(sub="a", groups=[1]).groups == [1]
    assert model.AccessToken(group=1, token="t").token == "t"
    assert model.GroupTokenRequest(expiration=60, group_id=2).group_id == 2
    with pytest.warns(DeprecationWarning, match="UserInfo"):
        user_cls = model.User
    assert user_cls(username="ada", email=None, full_name=None, disabled=None)
