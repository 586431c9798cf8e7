"""Login throttling per account and per client address, in PostgreSQL and in memory.

The database tests use the ``login_throttle`` table of a fresh PostGIS
database per test, through `/auth/login` on a real Starlette app.
"""

from __future__ import annotations

import hashlib
import logging
import socket
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from psycopg import sql
from sqlalchemy import select, text
from starlette.requests import Request
from starlette.testclient import TestClient

from macrostrat.auth_system.core import (
    THROTTLE_TABLE,
    AuthDatabase,
    DatabaseIdentityProvider,
    DatabaseThrottleStore,
    LoginThrottleEntry,
    set_auth_database,
)
from macrostrat.auth_system.errors import (
    AuthConfigurationError,
    LoginThrottleStoreError,
    TooManyLoginAttemptsError,
)
from macrostrat.auth_system.legacy import (
    JWTBackend,
    LoginThrottle,
    MemoryThrottleStore,
    ThrottleAttempt,
    ThrottlePolicy,
    ThrottleStore,
    create_backend,
    set_backend,
    set_identity_provider,
)
from macrostrat.auth_system.legacy import _passwords as passwords_module

RIGHT = "carol-password"


def _client(app, host: str = "127.0.0.1") -> TestClient:
    return TestClient(app, base_url="https://testserver", client=(host, 50000))


def _login(client, username: str = "carol", password: str = "wrong"):
    return client.post("/auth/login", json={"username": username, "password": password})


def _fail(client, times: int, username: str = "carol") -> None:
    for _ in range(times):
        assert _login(client, username).status_code == 401


def _retry_after(response) -> int:
    assert response.status_code == 429, response.text
    return int(response.headers["retry-after"])


def _rows(auth_store) -> dict[tuple[str, str], LoginThrottleEntry]:
    with auth_store.session() as session:
        rows = session.scalars(select(LoginThrottleEntry)).all()
    return {(r.kind, r.key): r for r in rows}


def _shift(auth_store, kind: str, key: str, column: str, seconds: float) -> None:
    """Move a row's timestamp ``seconds`` into the past (time passing)."""
    statement = sql.SQL(
        "UPDATE {table} SET {column} = {column} - make_interval(secs => %s) "
        "WHERE kind = %s AND key = %s"
    ).format(
        table=sql.Identifier(auth_store.schema, THROTTLE_TABLE),
        column=sql.Identifier(column),
    )
    with auth_store.database.engine.begin() as conn:
        raw = conn.connection.driver_connection
        assert raw.execute(statement, [seconds, kind, key]).rowcount == 1


@pytest.fixture
def users(backend, auth_store):
    provider = DatabaseIdentityProvider()
    set_identity_provider(provider)
    provider.create_user("carol", RIGHT, roles=["admin"])
    provider.create_user("dave", "dave-password")
    return provider


@pytest.fixture
def app(backend, users, make_app):
    return make_app(backend)


@pytest.fixture
def client(app):
    return _client(app)


@pytest.fixture
def scrypt_calls(monkeypatch):
    calls: list[int] = []
    real = passwords_module._scrypt

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(passwords_module, "_scrypt", counting)
    return calls


# The database store, through /login.


def test_five_failures_lock_the_account_even_for_the_right_password(
    client, auth_store, scrypt_calls, caplog
):
    caplog.set_level(logging.INFO, logger="macrostrat.auth_system.legacy.api")
    _fail(client, 4)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    _fail(client, 1)
    (warning,) = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert "locked account" in warning.getMessage()
    assert "'carol'" in warning.getMessage()
    scrypt_calls.clear()
    response = _login(client, password=RIGHT)
    assert 55 < _retry_after(response) <= 60
    assert response.json() == {
        "login": False,
        "username": None,
        "message": "too many failed login attempts; try again later",
    }
    assert client.cookies == {}
    assert scrypt_calls == []  # refused before any password hashing
    row = _rows(auth_store)[("account", "carol")]
    assert row.failures == 5
    assert row.locked_until is not None
    # Refused attempts are not counted.
    assert _login(client).status_code == 429
    assert _rows(auth_store)[("account", "carol")].failures == 5
    assert isinstance(auth_store.throttle_store, DatabaseThrottleStore)


def test_the_account_lock_holds_from_every_address(app, client):
    _fail(client, 5)
    elsewhere = _client(app, "192.0.2.7")
    assert _retry_after(_login(elsewhere, password=RIGHT)) > 0
    # Case variants are the same account for the counter.
    assert _login(elsewhere, "CAROL").status_code == 429


def test_unknown_account_is_locked_with_the_same_answer(app, client, scrypt_calls):
    _fail(client, 5, "nobody")
    _fail(_client(app, "192.0.2.8"), 5, "carol")
    scrypt_calls.clear()
    unknown = _login(client, "nobody")
    known = _login(_client(app, "192.0.2.8"), "carol", RIGHT)
    assert unknown.status_code == known.status_code == 429
    assert unknown.json() == known.json()
    assert 0 < _retry_after(unknown) <= 60
    assert set(unknown.headers) == set(known.headers)
    assert scrypt_calls == []


def test_the_address_limit_counts_across_accounts(
    secret_key, users, make_app, auth_store
):
    backend = create_backend(
        secret_key, login_throttle=LoginThrottle(address_limit=4, account_limit=100)
    )
    app = make_app(backend)
    client = _client(app)
    for name in ("u1", "u2", "u3", "u4"):
        _fail(client, 1, name)
    assert _retry_after(_login(client, password=RIGHT)) <= 60
    assert _rows(auth_store)[("address", "127.0.0.1")].failures == 4
    # Another client address is not locked.
    assert _login(_client(app, "192.0.2.9"), password=RIGHT).status_code == 200


def test_success_resets_the_account_counter(client, auth_store):
    _fail(client, 4)
    assert _login(client, password=RIGHT).status_code == 200
    assert ("account", "carol") not in _rows(auth_store)
    # The address keeps its four failures (a success does not erase them).
    assert _rows(auth_store)[("address", "127.0.0.1")].failures == 4
    client.cookies.clear()
    _fail(client, 4)
    assert _login(client, password=RIGHT).status_code == 200


def test_a_success_does_not_lock_the_address_it_completes(
    secret_key, users, make_app, auth_store
):
    backend = create_backend(
        secret_key, login_throttle=LoginThrottle(address_limit=3, account_limit=100)
    )
    client = _client(make_app(backend))
    _fail(client, 1, "u1")
    _fail(client, 1, "u2")
    # The third attempt reaches the address limit but succeeds: no lock.
    assert _login(client, password=RIGHT).status_code == 200
    row = _rows(auth_store)[("address", "127.0.0.1")]
    assert (row.failures, row.locked_until) == (2, None)
    client.cookies.clear()
    _fail(client, 1, "u3")  # the third failure locks
    assert _login(client, "dave", "dave-password").status_code == 429


def test_locks_double_per_failure_up_to_the_cap(client, auth_store):
    _fail(client, 5)
    assert 55 < _retry_after(_login(client)) <= 60
    _shift(auth_store, "account", "carol", "locked_until", 61)  # the lock ends
    _fail(client, 1)  # the sixth failure is checked, then locks for longer
    assert 115 < _retry_after(_login(client, password=RIGHT)) <= 120
    _shift(auth_store, "account", "carol", "locked_until", 121)
    _fail(client, 1)
    assert 235 < _retry_after(_login(client)) <= 240
    with auth_store.session() as session:
        session.execute(
            text(
                "UPDATE macrostrat_auth.login_throttle SET failures = 40 "
                "WHERE kind = 'account'"
            )
        )
    _shift(auth_store, "account", "carol", "locked_until", 241)
    _fail(client, 1)
    assert 895 < _retry_after(_login(client)) <= 900


def test_the_count_starts_again_after_the_window(client, auth_store):
    _fail(client, 4)
    for kind, key in (("account", "carol"), ("address", "127.0.0.1")):
        _shift(auth_store, kind, key, "first_failure", 901)
    _fail(client, 4)  # counted from one again: 4 < 5
    assert _rows(auth_store)[("account", "carol")].failures == 4
    assert _login(client, password=RIGHT).status_code == 200


def test_a_lock_that_just_ended_does_not_restart_the_count(client, auth_store):
    _fail(client, 5)
    _shift(auth_store, "account", "carol", "first_failure", 3600)
    _shift(auth_store, "account", "carol", "locked_until", 61)
    # The window has passed since the first failure but not since the lock.
    _fail(client, 1)
    assert _rows(auth_store)[("account", "carol")].failures == 6
    assert _login(client).status_code == 429


def test_two_apps_on_one_database_share_the_counters(
    secret_key, users, make_app, auth_store, empty_database_url, token_key
):
    """Two app instances with their own backends and engines: two processes."""
    other = AuthDatabase(empty_database_url, token_key=token_key)
    try:
        backend_a = JWTBackend(
            secret_key, login_throttle=LoginThrottle(store=auth_store.throttle_store)
        )
        backend_b = JWTBackend(
            secret_key, login_throttle=LoginThrottle(store=other.throttle_store)
        )
        assert backend_a.login_throttle.store is not backend_b.login_throttle.store
        client_a = _client(make_app(backend_a))
        client_b = _client(make_app(backend_b), "192.0.2.10")

        set_backend(backend_a)
        _fail(client_a, 3)
        set_backend(backend_b)
        _fail(client_b, 2)
        assert _retry_after(_login(client_b, password=RIGHT)) > 0
        set_backend(backend_a)
        assert _retry_after(_login(client_a, password=RIGHT)) > 0
    finally:
        other.database.engine.dispose()


def test_memory_stores_are_per_process(secret_key, users, make_app):
    """The contrast: without the database, each process counts on its own."""
    backend_a = JWTBackend(
        secret_key, login_throttle=LoginThrottle(store=MemoryThrottleStore())
    )
    backend_b = JWTBackend(
        secret_key, login_throttle=LoginThrottle(store=MemoryThrottleStore())
    )
    client_a = _client(make_app(backend_a))
    client_b = _client(make_app(backend_b), "192.0.2.10")
    set_backend(backend_a)
    _fail(client_a, 3)
    set_backend(backend_b)
    _fail(client_b, 2)
    assert _login(client_b, password=RIGHT).status_code == 200


def test_concurrent_attempts_cannot_pass_the_limit(
    auth_store, empty_database_url, token_key
):
    """Checking and counting are one step: 20 racing attempts, exactly 5 pass."""
    other = AuthDatabase(empty_database_url, token_key=token_key)
    stores = [auth_store.throttle_store, other.throttle_store]
    policy = ThrottlePolicy()
    barrier = threading.Barrier(20)

    def attempt(i: int) -> bool:
        barrier.wait()
        try:
            stores[i % 2].begin([("account", "carol")], policy)
        except TooManyLoginAttemptsError:
            return False
        return True

    try:
        with ThreadPoolExecutor(20) as pool:
            results = list(pool.map(attempt, range(20)))
    finally:
        other.database.engine.dispose()
    assert results.count(True) == 5
    assert _rows(auth_store)[("account", "carol")].failures == 5


def test_reset_unlocks_and_prune_drops_stale_counters(client, auth_store):
    store = auth_store.throttle_store
    assert isinstance(store, ThrottleStore)
    _fail(client, 5)
    assert _login(client, password=RIGHT).status_code == 429
    store.reset("account", "carol")
    assert _login(client, password=RIGHT).status_code == 200
    client.cookies.clear()
    _fail(client, 1, "dave")
    policy = ThrottlePolicy()
    assert store.prune(policy) == 0
    for kind, key in (("account", "dave"), ("address", "127.0.0.1")):
        _shift(auth_store, kind, key, "first_failure", 901)
    assert store.prune(policy) == 2
    assert _rows(auth_store) == {}


def test_store_without_its_table_fails_closed(empty_db, token_key):
    store = AuthDatabase(empty_db, token_key=token_key).throttle_store
    with pytest.raises(LoginThrottleStoreError, match="login_throttle") as info:
        store.begin([("account", "carol")], ThrottlePolicy())
    assert info.value.__cause__ is not None
    assert "carol" not in str(info.value)


# An identity provider that raises: the attempt is taken back, not counted.


def _user_database_down(token_key: str) -> DatabaseIdentityProvider:
    """A provider whose user database is down (nothing listens on its port)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"postgresql://nobody@127.0.0.1:{port}/users"
    return DatabaseIdentityProvider(AuthDatabase(url, token_key=token_key))


def _server_error(response) -> None:
    """The server's own 500: no traceback, no driver message for the client."""
    assert response.status_code == 500, response.text
    assert response.text == "Internal Server Error"


def test_a_user_database_outage_locks_no_account_and_no_address(
    app, users, auth_store, token_key, caplog
):
    down = _user_database_down(token_key)
    calls: list[str] = []
    real_get_user = down.get_user

    def get_user(username: str):
        calls.append(username)
        return real_get_user(username)

    down.get_user = get_user  # type: ignore[method-assign]
    client = TestClient(
        app,
        base_url="https://testserver",
        client=("127.0.0.1", 50000),
        raise_server_exceptions=False,
    )
    caplog.set_level(logging.WARNING, logger="macrostrat.auth_system.legacy.api")
    set_identity_provider(down)
    # More than the account limit (5) for one account, then more than the
    # address limit (20) across accounts: each is the server's 500, never 429.
    for _ in range(6):
        _server_error(_login(client, password=RIGHT))
    for i in range(21):
        _server_error(_login(client, f"user{i}"))
    assert len(calls) == 27  # the provider was asked every time
    assert _rows(auth_store) == {}  # nothing counted, nothing locked
    assert "could not be checked" in caplog.text

    set_identity_provider(users)  # the user database is back
    assert _login(client, password=RIGHT).status_code == 200
    down.store.database.engine.dispose()


def test_a_failed_hash_upgrade_after_the_right_password_is_not_counted(app, auth_store):
    salt = "qrstuvwxyz012345"
    digest = hashlib.pbkdf2_hmac("sha256", RIGHT.encode(), salt.encode(), 1000)
    legacy_hash = f"pbkdf2:sha256:1000${salt}${digest.hex()}"
    auth_store.set_password_hash("carol", legacy_hash)
    # Saving the upgraded hash fails in the database itself.
    statement = sql.SQL(
        "CREATE FUNCTION {schema}.refuse() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN RAISE EXCEPTION 'users are read-only'; END $$; "
        "CREATE TRIGGER refuse BEFORE UPDATE ON {table} "
        "FOR EACH ROW EXECUTE FUNCTION {schema}.refuse()"
    ).format(
        schema=sql.Identifier(auth_store.schema),
        table=sql.Identifier(auth_store.schema, "user"),
    )
    with auth_store.database.engine.begin() as conn:
        conn.connection.driver_connection.execute(statement)
    client = TestClient(
        app,
        base_url="https://testserver",
        client=("127.0.0.1", 50000),
        raise_server_exceptions=False,
    )
    for _ in range(6):
        _server_error(_login(client, password=RIGHT))
    assert _rows(auth_store) == {}
    with auth_store.database.engine.begin() as conn:
        conn.execute(text(f'DROP TRIGGER refuse ON {auth_store.schema}."user"'))
    assert _login(client, password=RIGHT).status_code == 200
    assert _rows(auth_store) == {}


def test_the_database_store_is_used_when_an_auth_database_is_configured(
    backend, auth_store
):
    assert backend.login_throttle.store is auth_store.throttle_store
    set_auth_database(None)
    memory = backend.login_throttle.store
    assert isinstance(memory, MemoryThrottleStore)
    assert backend.login_throttle.store is memory


# Client addresses and proxies.


def _request(client_host: str, forwarded: list[str] = ()) -> Request:
    headers = [(b"x-forwarded-for", value.encode()) for value in forwarded]
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/auth/login",
        "headers": headers,
        "client": (client_host, 1234),
        "query_string": b"",
    }
    return Request(scope)


def test_forwarded_for_is_ignored_unless_the_proxy_is_trusted(secret_key):
    plain = JWTBackend(secret_key)
    proxied = JWTBackend(secret_key, trusted_proxies=["10.0.0.0/8", "127.0.0.1"])
    request = _request("10.1.2.3", ["198.51.100.7"])
    assert plain.client_address(request) == "10.1.2.3"
    assert proxied.client_address(request) == "198.51.100.7"
    # The rightmost untrusted hop is the client; spoofed entries left of it
    # are ignored.
    spoofed = _request("10.1.2.3", ["1.1.1.1, 198.51.100.7", "10.9.9.9"])
    assert proxied.client_address(spoofed) == "198.51.100.7"
    # An untrusted peer's header is never read.
    assert proxied.client_address(_request("203.0.113.5", ["1.1.1.1"])) == (
        "203.0.113.5"
    )
    # Garbage stops the walk at the last trusted hop.
    assert proxied.client_address(_request("10.1.2.3", ["nonsense"])) == "10.1.2.3"
    assert proxied.client_address(_request("::ffff:127.0.0.1", ["192.0.2.1"])) == (
        "192.0.2.1"
    )
    with pytest.raises(AuthConfigurationError, match="trusted_proxies"):
        JWTBackend(secret_key, trusted_proxies=["not-an-address"])


def test_forwarded_addresses_count_separately_only_behind_trusted_proxies(
    secret_key, users, make_app
):
    def throttle():
        return LoginThrottle(address_limit=2, account_limit=100)

    untrusted = create_backend(secret_key, login_throttle=throttle())
    client = _client(make_app(untrusted))
    for forwarded in ("198.51.100.1", "198.51.100.2"):
        response = client.post(
            "/auth/login",
            json={"username": "x", "password": "y"},
            headers={"x-forwarded-for": forwarded},
        )
        assert response.status_code == 401
    # The header did not change the address: 127.0.0.1 is locked.
    locked = client.post(
        "/auth/login",
        json={"username": "carol", "password": RIGHT},
        headers={"x-forwarded-for": "198.51.100.3"},
    )
    assert locked.status_code == 429

    trusted = create_backend(
        secret_key, login_throttle=throttle(), trusted_proxies=["127.0.0.1"]
    )
    client = _client(make_app(trusted))
    for forwarded in ("198.51.100.1", "198.51.100.2", "198.51.100.1"):
        client.post(
            "/auth/login",
            json={"username": "x", "password": "y"},
            headers={"x-forwarded-for": forwarded},
        )
    ok = client.post(
        "/auth/login",
        json={"username": "carol", "password": RIGHT},
        headers={"x-forwarded-for": "198.51.100.3"},
    )
    assert ok.status_code == 200
    denied = client.post(
        "/auth/login",
        json={"username": "carol", "password": RIGHT},
        headers={"x-forwarded-for": "198.51.100.1"},
    )
    assert denied.status_code == 429


def test_ipv6_clients_count_per_64(secret_key, users, make_app):
    backend = create_backend(
        secret_key, login_throttle=LoginThrottle(address_limit=2, account_limit=100)
    )
    app = make_app(backend)
    _fail(_client(app, "2001:db8::1"), 1, "x")
    _fail(_client(app, "2001:db8::2"), 1, "y")
    assert _login(_client(app, "2001:db8::ffff"), password=RIGHT).status_code == 429
    other_net = _client(app, "2001:db8:0:1::1")
    assert _login(other_net, password=RIGHT).status_code == 200


# Configuration.


def test_throttling_can_be_turned_off(secret_key, users, make_app):
    backend = create_backend(secret_key, login_throttle=False)
    assert backend.login_throttle.enabled is False
    client = _client(make_app(backend))
    _fail(client, 8)
    assert _login(client, password=RIGHT).status_code == 200


def test_limits_are_configurable(secret_key, users, make_app):
    backend = create_backend(
        secret_key,
        login_throttle=LoginThrottle(account_limit=2, base_delay=5, max_delay=10),
    )
    client = _client(make_app(backend))
    _fail(client, 2)
    assert 0 < _retry_after(_login(client, password=RIGHT)) <= 5


@pytest.mark.parametrize(
    "kwargs",
    [
        {"account_limit": 0},
        {"address_limit": -1},
        {"account_limit": 2.5},
        {"account_limit": True},
        {"window": 0},
        {"base_delay": float("inf")},
        {"base_delay": 100, "max_delay": 50},
        {"enabled": "yes"},
        {"store": object()},
    ],
)
def test_bad_throttle_settings_fail_at_construction(kwargs):
    with pytest.raises(AuthConfigurationError, match="throttle"):
        LoginThrottle(**kwargs)


def test_backend_refuses_other_throttle_values(secret_key):
    with pytest.raises(AuthConfigurationError, match="login_throttle"):
        JWTBackend(secret_key, login_throttle="yes")
    assert JWTBackend(secret_key).login_throttle.policy == ThrottlePolicy()


# The memory store, with a controlled clock.


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_memory_store_follows_the_same_rules():
    clock = Clock()
    store = MemoryThrottleStore(clock=clock)
    policy = ThrottlePolicy(account_limit=2, address_limit=3, base_delay=10)
    keys = [("account", "carol"), ("address", "127.0.0.1")]
    first = store.begin(keys, policy)
    assert isinstance(first, ThrottleAttempt)
    store.begin(keys, policy)  # the second counted attempt locks the account
    with pytest.raises(TooManyLoginAttemptsError) as info:
        store.begin(keys, policy)
    assert info.value.retry_after == 10
    assert info.value.kinds == ("account",)
    clock.now += 10
    store.begin([("account", "carol")], policy)  # third failure: 20 s
    with pytest.raises(TooManyLoginAttemptsError) as info:
        store.begin([("account", "carol")], policy)
    assert info.value.retry_after == 20
    # Success clears the account.
    clock.now += 20
    attempt = store.begin([("account", "carol")], policy)
    store.succeeded(attempt)
    store.begin([("account", "carol")], policy)
    assert len(store) == 2


def test_memory_store_window_and_address_refund():
    clock = Clock()
    store = MemoryThrottleStore(clock=clock)
    policy = ThrottlePolicy(address_limit=2, window=60)
    address = [("address", "192.0.2.1")]
    store.begin(address, policy)
    attempt = store.begin(address, policy)  # reaches the limit: locks
    store.succeeded(attempt)  # ... but succeeded: lock lifted, count 1
    store.begin(address, policy)  # count 2: locks again
    with pytest.raises(TooManyLoginAttemptsError):
        store.begin(address, policy)
    clock.now += 61 + 60  # past the lock, then a whole window
    store.begin(address, policy)  # starts again at 1: not locked
    store.begin(address, policy)
    with pytest.raises(TooManyLoginAttemptsError):
        store.begin(address, policy)
    assert store.prune(policy) == 0
    clock.now += 10_000
    assert store.prune(policy) == 1


def test_memory_store_takes_back_abandoned_attempts():
    clock = Clock()
    store = MemoryThrottleStore(clock=clock)
    policy = ThrottlePolicy(account_limit=2, address_limit=2)
    keys = [("account", "carol"), ("address", "192.0.2.1")]
    first = store.begin(keys, policy)
    second = store.begin(keys, policy)  # reaches both limits: locks both
    with pytest.raises(TooManyLoginAttemptsError):
        store.begin(keys, policy)
    store.abandoned(second)  # lifts the locks it set; one failure each
    third = store.begin(keys, policy)  # locks again
    store.abandoned(third)
    store.abandoned(first)
    assert len(store) == 0  # nothing left counted
    throttle = LoginThrottle(store=store)
    throttle.abandoned(None)  # throttling off: nothing to do
    attempt = throttle.begin("Carol", "192.0.2.1")
    throttle.abandoned(attempt)
    assert len(store) == 0


def test_memory_store_is_bounded():
    clock = Clock()
    store = MemoryThrottleStore(max_entries=10, clock=clock)
    policy = ThrottlePolicy(account_limit=1)
    store.begin([("account", "locked")], policy)
    for i in range(30):
        clock.now += 1
        store.begin([("address", f"192.0.2.{i}")], policy)
        assert len(store) <= 10
    # Unlocked counters go first; the locked account is kept.
    with pytest.raises(TooManyLoginAttemptsError):
        store.begin([("account", "locked")], policy)
