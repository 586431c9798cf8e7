"""Fixtures: a real Starlette app using the legacy auth package.

Clients are Starlette `TestClient`s (httpx2) on https://testserver, so the
cookie jar honours the Secure flag, Max-Age and Path the way a browser would.
"""

from __future__ import annotations

import json
import secrets
from typing import Any

import httpx2
import pytest
from starlette.applications import Starlette
from starlette.authentication import requires
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route
from starlette.testclient import TestClient

from macrostrat.auth_system.legacy import (
    AuthAPI,
    AuthenticationMiddleware,
    BaseUser,
    IdentityProvider,
    create_backend,
    get_scopes,
    set_identity_provider,
)
from macrostrat.auth_system.legacy.context import _reset


def make_test_client(app: Any) -> TestClient:
    """A Starlette `TestClient` on https://testserver, so Secure cookies are sent.

    The ASGI scope's client address is ``127.0.0.1`` (what the login log
    records), not Starlette's default ``testclient``.
    """
    return TestClient(app, base_url="https://testserver", client=("127.0.0.1", 50000))


def _send_cookies(client: TestClient, cookies: dict[str, str]) -> None:
    """Make the client's next requests carry exactly these cookie values.

    Every cookie of the same name is dropped from the jar first, whatever its
    domain or path, so a stored cookie cannot shadow the given value (httpx2's
    per-request ``cookies=`` would send both). The values are stored for every
    path on the host, the way a stolen or forged cookie would be replayed.
    """
    for name, value in cookies.items():
        client.cookies.delete(name)
        client.cookies.set(name, value)


class InMemoryProvider(IdentityProvider):
    def __init__(self) -> None:
        self.users: dict[str, BaseUser] = {}
        self.saved: list[str] = []

    def create_user(self, username: str, password: str, roles=()) -> BaseUser:
        user = BaseUser(username, password, roles=roles)
        self.users[username] = user
        return user

    def get_user(self, username: str) -> BaseUser | None:
        return self.users.get(username)

    def save_user(self, user: BaseUser) -> None:
        self.saved.append(user.username)
        self.users[user.username] = user


@pytest.fixture
def secret_key() -> str:
    return secrets.token_urlsafe(48)


@pytest.fixture
def backend(secret_key):
    backend = create_backend(secret_key)
    yield backend
    _reset()


@pytest.fixture
def provider(backend) -> InMemoryProvider:
    provider = InMemoryProvider()
    provider.create_user("alice", "alice-password", roles=["admin"])
    provider.create_user("bob", "bob-password", roles=["reader"])
    set_identity_provider(provider)
    return provider


async def whoami(request: Request) -> JSONResponse:
    return JSONResponse(
        {
            "user": request.user.display_name
            if request.user.is_authenticated
            else None,
            "scopes": list(request.auth.scopes),
            "get_scopes": await get_scopes(request),
        }
    )


@requires("authenticated")
async def private(request: Request) -> JSONResponse:
    return JSONResponse({"user": request.user.display_name})


def _make_app(backend) -> Starlette:
    return Starlette(
        routes=[
            Mount("/auth", app=AuthAPI),
            Route("/whoami", whoami),
            Route("/private", private),
        ],
        middleware=[Middleware(AuthenticationMiddleware, backend=backend)],
    )


@pytest.fixture
def make_app():
    return _make_app


@pytest.fixture
def make_client():
    return make_test_client


@pytest.fixture
def send_cookies():
    return _send_cookies


@pytest.fixture
def app(backend, provider) -> Starlette:
    return _make_app(backend)


@pytest.fixture
def client(app) -> TestClient:
    return make_test_client(app)


@pytest.fixture
def login(client):
    def _login(username: str = "alice", password: str | None = None) -> httpx2.Response:
        password = password if password is not None else f"{username}-password"
        return client.post(
            "/auth/login", json={"username": username, "password": password}
        )

    return _login


# Core: a real auth schema in a fresh PostGIS database per test.


@pytest.fixture
def token_key() -> str:
    return secrets.token_urlsafe(48)


@pytest.fixture
def auth_store(empty_db, token_key):
    """`connect_engine` on a fresh database, creating the auth tables."""
    from macrostrat.auth_system.core import connect_engine, set_auth_database

    store = connect_engine(empty_db, token_key=token_key, create_schema=True)
    yield store
    set_auth_database(None)


# ORCID: a stand-in token endpoint served on loopback (no outside network).


class FakeOrcid:
    """A real HTTP server on 127.0.0.1 answering ``POST /oauth/token``."""

    def __init__(self) -> None:
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
        from urllib.parse import parse_qs

        self.requests: list[dict[str, str]] = []
        self.status = 200
        self.body: bytes = b""
        self.reply_json(
            {
                "access_token": "orcid-access",
                "token_type": "bearer",
                "refresh_token": "orcid-refresh",
                "expires_in": 631138518,
                "scope": "/authenticate",
                "name": "Josiah Carberry",
                "orcid": "0000-0002-1825-0097",
            }
        )
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                form = parse_qs(self.rfile.read(length).decode())
                fake.requests.append(
                    {
                        "path": self.path,
                        "accept": self.headers.get("accept"),
                        "content-type": self.headers.get("content-type"),
                        **{k: v[0] for k, v in form.items()},
                    }
                )
                self.send_response(fake.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(fake.body)))
                self.end_headers()
                self.wfile.write(fake.body)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def reply_json(self, data: Any, status: int = 200) -> None:
        self.status = status
        self.body = json.dumps(data).encode()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fake_orcid(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    server = FakeOrcid()
    yield server
    server.close()
