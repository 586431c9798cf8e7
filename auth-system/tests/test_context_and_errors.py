"""Configured values (process-wide, with scoped overrides) and the error tree."""

from __future__ import annotations

import asyncio
import threading
import time

import jwt
import pytest
from starlette.applications import Starlette
from starlette.authentication import AuthenticationError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

import macrostrat.auth_system.errors as errors_module
from macrostrat.auth_system.core import (
    AuthDatabase,
    get_auth_database,
    require_scopes,
    set_auth_database,
    use_auth_database,
)
from macrostrat.auth_system.errors import (
    AuthConfigurationError,
    AuthDatabaseError,
    AuthNotConfiguredError,
    AuthSystemError,
    InvalidArgumentError,
    InvalidCallError,
    InvalidCredentialsError,
    InvalidRequestError,
    LoginThrottleStoreError,
    MissingDependencyError,
    OrcidLoginError,
    RequestRefusedError,
    RevocationStoreError,
    TokenClaimError,
    TooManyLoginAttemptsError,
)
from macrostrat.auth_system.legacy import (
    BaseUser,
    IdentityProvider,
    JWTBackend,
    LoginThrottle,
    MemoryThrottleStore,
    create_backend,
    get_backend,
    get_identity_provider,
    set_backend,
    set_identity_provider,
    use_backend,
    use_identity_provider,
)
from macrostrat.auth_system.legacy.context import _reset
from macrostrat.auth_system.legacy.validation import read_json_object


@pytest.fixture(autouse=True)
def _clean_context():
    _reset()
    yield
    _reset()


def _in_thread(func):
    """``func()`` run in a new thread (which starts from an empty context)."""
    result: list[object] = []
    thread = threading.Thread(target=lambda: result.append(func()))
    thread.start()
    thread.join()
    return result[0]


# -- the backend and identity provider slots ----------------------------------


def test_the_configured_backend_reaches_every_thread():
    backend = create_backend("p" * 48)
    assert get_backend() is backend
    assert _in_thread(get_backend) is backend


def test_use_backend_takes_precedence_in_its_context_only():
    process_wide = create_backend("p" * 48)
    scoped = JWTBackend("s" * 48)
    with use_backend(scoped) as current:
        assert current is scoped
        assert get_backend() is scoped
        # another thread does not share this context: it sees the process's
        assert _in_thread(get_backend) is process_wide
    assert get_backend() is process_wide


def test_setting_the_backend_inside_an_override_does_not_defeat_it():
    scoped = JWTBackend("s" * 48)
    later = JWTBackend("l" * 48)
    with use_backend(scoped):
        set_backend(later)
        assert get_backend() is scoped
    assert get_backend() is later


def test_overrides_nest_and_restore():
    outer, inner = JWTBackend("o" * 48), JWTBackend("i" * 48)
    with use_backend(outer):
        with use_backend(inner):
            assert get_backend() is inner
        assert get_backend() is outer
    with pytest.raises(AuthNotConfiguredError):
        get_backend()


def test_an_override_reaches_tasks_started_in_its_context():
    scoped = JWTBackend("s" * 48)

    async def main() -> tuple[JWTBackend, JWTBackend]:
        with use_backend(scoped):
            inside = await asyncio.create_task(_current_backend())
        outside = await asyncio.create_task(_current_backend())
        return inside, outside

    async def _current_backend() -> JWTBackend:
        return get_backend()

    set_backend(JWTBackend("p" * 48))
    inside, outside = asyncio.run(main())
    assert inside is scoped
    assert outside is not scoped


def test_an_override_reaches_requests_of_a_test_client_in_its_context(make_client):
    async def whose(request: Request) -> JSONResponse:
        return JSONResponse({"key": str(get_backend().encode_key)})

    app = Starlette(routes=[Route("/whose", whose)])
    create_backend("p" * 48)
    client = make_client(app)
    with use_backend(JWTBackend("s" * 48)):
        assert client.get("/whose").json() == {"key": "s" * 48}
    assert client.get("/whose").json() == {"key": "p" * 48}


def test_use_identity_provider_takes_precedence_in_its_context_only():
    process_wide, scoped = IdentityProvider(), IdentityProvider()
    set_identity_provider(process_wide)
    with use_identity_provider(scoped) as current:
        assert current is scoped
        assert get_identity_provider() is scoped
        assert _in_thread(get_identity_provider) is process_wide
    assert get_identity_provider() is process_wide


# -- the auth database slot and the throttle's default store ------------------


def test_use_auth_database_overrides_the_database_and_the_throttle_store(
    auth_store, token_key
):
    throttle = LoginThrottle()
    assert throttle.store is auth_store.throttle_store
    other = AuthDatabase(auth_store.database, token_key=token_key)
    with use_auth_database(other):
        assert get_auth_database() is other
        assert throttle.store is other.throttle_store
        assert _in_thread(get_auth_database) is auth_store
    with use_auth_database(None):
        with pytest.raises(AuthNotConfiguredError):
            get_auth_database()
        assert isinstance(throttle.store, MemoryThrottleStore)
    assert get_auth_database() is auth_store
    assert throttle.store is auth_store.throttle_store
    set_auth_database(None)
    assert isinstance(throttle.store, MemoryThrottleStore)


# -- the legacy pepper is passed explicitly -----------------------------------


def _werkzeug_pbkdf2(password: str, salt: str = "s4lt") -> str:
    import hashlib

    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt.encode(), 1000)
    return f"pbkdf2:sha256:1000${salt}${digest.hex()}"


def test_the_legacy_pepper_is_an_argument_not_the_current_backend():
    user = BaseUser("olga", hashed_password=_werkzeug_pbkdf2("PEPPER" + "pw"))
    create_backend("PEPPER" + "x" * 40)  # no longer consulted by the model
    assert not user.is_correct_password("pw")
    assert user.is_correct_password("pw", legacy_pepper="PEPPER")


def test_a_user_class_with_upstreams_password_check_still_logs_in(
    backend, make_app, make_client
):
    class UpstreamUser(BaseUser):
        def is_correct_password(self, plaintext):  # upstream's signature
            return plaintext == "open sesame"

    class Provider(IdentityProvider):
        def get_user(self, username):
            return UpstreamUser(username, "ignored") if username == "ali" else None

    set_identity_provider(Provider())
    client = make_client(make_app(backend))
    response = client.post(
        "/auth/login", json={"username": "ali", "password": "open sesame"}
    )
    assert response.status_code == 200


# -- the error tree -----------------------------------------------------------

MIXINS = {
    AuthConfigurationError: ValueError,
    AuthNotConfiguredError: RuntimeError,
    InvalidArgumentError: ValueError,
    InvalidCallError: TypeError,
    MissingDependencyError: ImportError,
    InvalidRequestError: ValueError,
    InvalidCredentialsError: AuthenticationError,
    TokenClaimError: jwt.InvalidTokenError,
    RequestRefusedError: HTTPException,
    TooManyLoginAttemptsError: AuthSystemError,
    OrcidLoginError: AuthSystemError,
    AuthDatabaseError: AuthSystemError,
    LoginThrottleStoreError: AuthDatabaseError,
    RevocationStoreError: AuthDatabaseError,
}


@pytest.mark.parametrize("name", errors_module.__all__)
def test_every_error_is_rooted_and_drawn_in_the_tree(name):
    cls = getattr(errors_module, name)
    assert issubclass(cls, AuthSystemError)
    assert f" {name}" in errors_module.__doc__ or name == "AuthSystemError"
    if cls is not AuthSystemError:
        assert issubclass(cls, MIXINS[cls])


def test_an_invalid_token_keeps_pyjwts_error_as_cause_but_not_in_the_message():
    backend = JWTBackend("k" * 48)
    expired = jwt.encode(
        {"iat": 1, "nbf": 1, "exp": 2, "type": "access", "identity": "x", "jti": "j"},
        "k" * 48,
        algorithm="HS256",
    )
    with pytest.raises(InvalidCredentialsError) as info:
        backend.decode_token(expired)
    assert isinstance(info.value, AuthenticationError)
    assert isinstance(info.value.__cause__, jwt.ExpiredSignatureError)
    assert str(info.value.__cause__) not in str(info.value)


def test_a_non_integer_claim_is_a_pyjwt_error_of_ours():
    backend = JWTBackend("k" * 48)
    now = int(time.time())
    token = jwt.encode(
        {"iat": now - 0.5, "nbf": now, "exp": now + 60}, "k" * 48, algorithm="HS256"
    )
    with pytest.raises(TokenClaimError, match="'iat'") as info:
        backend._decode(token)
    assert isinstance(info.value, jwt.PyJWTError)


def test_bad_arguments_and_calls_are_rooted_builtin_errors():
    backend = JWTBackend("k" * 48)
    with pytest.raises(InvalidArgumentError, match="token type"):
        backend.create_token("bogus", "x")
    with pytest.raises(InvalidCallError, match="both"):  # conn and upstream's name
        asyncio.run(backend.authenticate(_request(), request=_request()))
    with pytest.raises(AuthConfigurationError):
        require_scopes()


def test_a_dependency_refusal_is_an_http_exception_of_ours():
    create_backend("k" * 48)
    dependency = require_scopes("readers")
    with pytest.raises(RequestRefusedError) as info:
        dependency(_request())
    assert isinstance(info.value, HTTPException)
    assert info.value.status_code == 401
    assert info.value.headers == {"WWW-Authenticate": "Bearer"}


def test_malformed_bodies_keep_the_parse_error_as_cause():
    async def body() -> dict:
        return await read_json_object(_request(body=b'{"a": '), max_bytes=100)

    with pytest.raises(InvalidRequestError, match="not valid JSON") as info:
        asyncio.run(body())
    assert isinstance(info.value.__cause__, ValueError)


def _request(body: bytes = b"") -> Request:
    async def receive() -> dict:
        return {"type": "http.request", "body": body, "more_body": False}

    scope = {"type": "http", "method": "GET", "path": "/", "headers": []}
    return Request(scope, receive)
