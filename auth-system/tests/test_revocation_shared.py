"""Revoked tokens shared by every app process through the auth database (issue #21).

Most tests build two app instances the way two worker processes behind a load
balancer run: each has its own `JWTBackend` (the same secret, no revocation
store given), its own `AuthDatabase` and engine, and its own Starlette app and
client, all on one PostgreSQL database. A request to an instance runs with that
instance's backend, identity provider and auth database current
(`use_backend`, `use_identity_provider`, `use_auth_database`), as they would
be process-wide in its own process. The contrast test gives each backend its
own in-process `RevocationStore`, the per-process behaviour.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import jwt
import pytest
from psycopg import sql
from sqlalchemy import select, text
from starlette.applications import Starlette
from starlette.authentication import requires
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route

from macrostrat.auth_system.core import (
    REVOCATION_TABLE,
    AuthDatabase,
    DatabaseIdentityProvider,
    DatabaseRevocationStore,
    RevokedToken,
    connect_engine,
    create_auth_schema,
    get_auth_database,
    get_user_token_from_cookie,
    set_auth_database,
    use_auth_database,
)
from macrostrat.auth_system.errors import (
    AuthConfigurationError,
    AuthNotConfiguredError,
    InvalidCredentialsError,
    LoginThrottleStoreError,
    RequestRefusedError,
    RevocationStoreError,
)
from macrostrat.auth_system.legacy import (
    AuthAPI,
    AuthenticationMiddleware,
    BaseRevocationStore,
    JWTBackend,
    RevocationStore,
    ThrottlePolicy,
    use_backend,
    use_identity_provider,
)
from macrostrat.database.errors import CommitOutcomeUnknown

ACCESS = "access_token_cookie"
REFRESH = "refresh_token_cookie"


async def whoami(request: Request) -> JSONResponse:
    user = request.user.display_name if request.user.is_authenticated else None
    return JSONResponse({"user": user})


@requires("authenticated", status_code=401)
async def private(request: Request) -> JSONResponse:
    return JSONResponse({"user": request.user.display_name})


class Instance:
    """One app process: its backend, auth database (engine), provider and client."""

    def __init__(
        self,
        url: str,
        secret_key: str,
        token_key: str,
        make_client,
        send_cookies,
        **options: Any,
    ) -> None:
        self._send_cookies = send_cookies
        self.db = AuthDatabase(url, token_key=token_key)
        self.backend = JWTBackend(secret_key, **options)
        self.provider = DatabaseIdentityProvider(self.db)
        app = Starlette(
            routes=[
                Mount("/auth", app=AuthAPI),
                Route("/whoami", whoami),
                Route("/private", private),
            ],
            middleware=[Middleware(AuthenticationMiddleware, backend=self.backend)],
        )
        # raise_server_exceptions (the default): a 500 would fail the test.
        self.client = make_client(app)

    @contextmanager
    def current(self) -> Iterator[None]:
        """This instance's configuration, as its own process would have it."""
        with (
            use_backend(self.backend),
            use_identity_provider(self.provider),
            use_auth_database(self.db),
        ):
            yield

    def get(self, path: str, **kwargs: Any):
        with self.current():
            return self.client.get(path, **kwargs)

    def post(self, path: str, **kwargs: Any):
        with self.current():
            return self.client.post(path, **kwargs)

    def login(self, username: str = "carol") -> dict[str, str]:
        """Log in; return the access and refresh tokens now in the cookie jar."""
        response = self.post(
            "/auth/login",
            json={"username": username, "password": f"{username}-password"},
        )
        assert response.status_code == 200, response.text
        return self.tokens()

    def tokens(self) -> dict[str, str]:
        return {name: self.client.cookies[name] for name in (ACCESS, REFRESH)}

    def use(self, tokens: dict[str, str]) -> None:
        """Make the client send these cookies (tokens copied from elsewhere)."""
        self._send_cookies(self.client, tokens)

    def close(self) -> None:
        self.client.close()
        self.db.database.engine.dispose()


def _jti(token: str) -> str:
    return str(jwt.decode(token, options={"verify_signature": False})["jti"])


def _rows(db: AuthDatabase) -> dict[str, Any]:
    with db.session() as session:
        return {r.jti: r.expires_at for r in session.scalars(select(RevokedToken))}


def _execute(db: AuthDatabase, statement: str, *params: Any) -> int:
    """Run ``statement`` with ``{table}`` as the revoked-token table; its rowcount."""
    query = sql.SQL(statement).format(
        table=sql.Identifier(db.schema, REVOCATION_TABLE),
        schema=sql.Identifier(db.schema),
    )
    with db.database.engine.begin() as conn:
        raw = conn.connection.driver_connection
        return raw.execute(query, params or None).rowcount


def _expire(db: AuthDatabase, *jtis: str) -> None:
    """Move revocations into the past (time passing, by the database's clock)."""
    for jti in jtis:
        assert (
            _execute(
                db,
                "UPDATE {table} SET expires_at = now() - interval '1 second' "
                "WHERE jti = %s",
                jti,
            )
            == 1
        )


@pytest.fixture
def make_instance(
    empty_db, empty_database_url, secret_key, token_key, make_client, send_cookies
):
    """Build app instances on this test's database (auth tables created once)."""
    create_auth_schema(empty_db)
    built: list[Instance] = []

    def make(**options: Any) -> Instance:
        instance = Instance(
            empty_database_url,
            secret_key,
            token_key,
            make_client,
            send_cookies,
            **options,
        )
        built.append(instance)
        return instance

    yield make
    for instance in built:
        instance.close()


@pytest.fixture
def two(make_instance):
    """Instances A and B, with a user ``carol`` (an admin)."""
    a, b = make_instance(), make_instance()
    a.provider.create_user("carol", "carol-password", roles=["admin"])
    return a, b


# Revocations made by one instance hold in the other.


def test_a_logout_on_one_instance_is_refused_by_the_other(two):
    a, b = two
    tokens = a.login()
    b.use(tokens)
    assert b.get("/private").json() == {"user": "carol"}  # B accepts A's tokens

    assert a.post("/auth/logout").status_code == 200

    assert b.get("/private").status_code == 401
    assert b.get("/whoami").json() == {"user": None}
    assert b.post("/auth/refresh").status_code == 401
    # Both token ids are rows of the one table, written through A's engine.
    assert set(_rows(b.db)) == {_jti(tokens[ACCESS]), _jti(tokens[REFRESH])}
    # Each instance uses its own store object (its own engine), not a shared one.
    assert a.db.revocation_store is not b.db.revocation_store
    with a.current():
        assert a.backend.revocation_store is a.db.revocation_store
    with b.current():
        assert b.backend.revocation_store is b.db.revocation_store


def test_refresh_rotation_on_one_instance_spends_the_old_token_on_the_other(two):
    a, b = two
    old = a.login()
    assert a.post("/auth/refresh").status_code == 200
    new = a.tokens()
    assert new[REFRESH] != old[REFRESH]

    b.use({REFRESH: old[REFRESH]})
    assert b.post("/auth/refresh").status_code == 401
    # The new token works on B (the refusal is about the old one only), and
    # B's rotation of it in turn spends it on A.
    b.use({REFRESH: new[REFRESH]})
    assert b.post("/auth/refresh").status_code == 200
    a.use({REFRESH: new[REFRESH]})
    assert a.post("/auth/refresh").status_code == 401
    assert set(_rows(a.db)) == {_jti(old[REFRESH]), _jti(new[REFRESH])}


def test_a_refresh_token_presented_twice_at_once_rotates_once(two, monkeypatch):
    """Both processes checked the token before either revoked it: one wins.

    The check is made to pass on both (as in that race); the revocation
    itself (one upsert) tells the second it was not first, and it is refused.
    """
    a, b = two
    tokens = a.login()
    b.use({REFRESH: tokens[REFRESH]})
    for instance in (a, b):
        monkeypatch.setattr(
            type(instance.db.revocation_store), "is_revoked", lambda self, jti: False
        )
    assert a.post("/auth/refresh").status_code == 200
    assert b.post("/auth/refresh").status_code == 401
    assert set(_rows(a.db)) == {_jti(tokens[REFRESH])}


def test_revoke_says_which_call_was_first(make_instance):
    """The database store and the in-process one agree on ``first``."""
    db = make_instance().db
    now = int(time.time())
    for store in (db.revocation_store, RevocationStore()):
        assert store.revoke("once", now + 100) is True
        assert store.revoke("once", now + 200) is False
        assert store.revoke("gone", now - 5) is False  # nothing to revoke


def test_in_process_stores_given_explicitly_stay_per_instance(make_instance):
    """The contrast: an explicit store wins over the database, and is per process."""
    store_a, store_b = RevocationStore(), RevocationStore()
    a = make_instance(revocation_store=store_a)
    b = make_instance(revocation_store=store_b)
    a.provider.create_user("carol", "carol-password")
    tokens = a.login()
    b.use(tokens)

    assert a.post("/auth/logout").status_code == 200

    # Revoked in A's memory only: B still accepts both tokens.
    assert store_a.is_revoked(_jti(tokens[REFRESH]))
    assert not store_b.is_revoked(_jti(tokens[REFRESH]))
    assert b.get("/private").json() == {"user": "carol"}
    assert b.post("/auth/refresh").status_code == 200
    assert _rows(a.db) == {}
    with a.current():  # an auth database is current, yet the given store is used
        assert a.backend.revocation_store is store_a


# Pruning.


def test_expired_revocations_are_not_revoked_and_are_pruned(make_instance):
    db = make_instance().db
    store = db.revocation_store
    now = int(time.time())
    store.revoke("stale", now + 600)
    store.revoke("live", now + 600)
    _expire(db, "stale")
    # Expiry is the database's now(): the row is still there but means nothing.
    assert not store.is_revoked("stale")
    assert store.is_revoked("live")
    assert store.prune() == 1
    assert set(_rows(db)) == {"live"}
    assert store.prune() == 0


def test_revokes_prune_expired_rows_at_most_once_per_interval(make_instance):
    db = make_instance().db
    now = int(time.time())
    DatabaseRevocationStore(db, prune_interval=0).revoke("old", now + 600)
    _expire(db, "old")

    store = DatabaseRevocationStore(db, prune_interval=3600)
    store.revoke("first", now + 600)  # the first revoke prunes
    assert set(_rows(db)) == {"first"}
    _expire(db, "first")
    store.revoke("second", now + 600)  # within the interval: no prune
    assert set(_rows(db)) == {"first", "second"}

    every_time = DatabaseRevocationStore(db, prune_interval=0)
    every_time.revoke("third", now + 600)
    assert set(_rows(db)) == {"second", "third"}
    every_time.revoke("fourth", now + 600)
    assert set(_rows(db)) == {"second", "third", "fourth"}


def test_a_logout_prunes_expired_rows_through_the_default_store(two):
    a, _b = two
    now = int(time.time())
    DatabaseRevocationStore(a.db, prune_interval=0).revoke("long-gone", now + 600)
    _expire(a.db, "long-gone")
    tokens = a.login()
    assert a.post("/auth/logout").status_code == 200
    assert set(_rows(a.db)) == {_jti(tokens[ACCESS]), _jti(tokens[REFRESH])}


def test_revoke_keeps_the_later_expiry_and_skips_past_ones(make_instance):
    db = make_instance().db
    store = db.revocation_store
    now = int(time.time())
    store.revoke("x", now + 1000)  # (this first revoke also prunes)
    later = _rows(db)["x"]
    store.revoke("past", now - 5)  # nothing to keep: no row
    assert set(_rows(db)) == {"x"}
    store.revoke("x", now + 100)  # an earlier expiry does not shorten it
    assert _rows(db)["x"] == later
    store.revoke("x", now + 5000)
    assert _rows(db)["x"] > later
    assert abs(_rows(db)["x"].timestamp() - (now + 5000)) < 1


# Failures: the token is refused (fail closed), never a 500.


def test_a_store_that_cannot_be_used_refuses_tokens_with_401_and_logs(two, caplog):
    a, b = two
    tokens = a.login()
    b.use(tokens)
    assert b.get("/private").status_code == 200
    _execute(a.db, "DROP TABLE {table}")
    caplog.set_level(logging.ERROR, logger="macrostrat.auth_system")

    assert b.get("/private").status_code == 401
    refresh = b.post("/auth/refresh")
    assert refresh.status_code == 401
    assert REVOCATION_TABLE not in refresh.text
    assert b.get("/auth/status").json()["login"] is False
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors
    assert all(REVOCATION_TABLE in r.getMessage() for r in errors)
    assert all(_jti(tokens[ACCESS]) not in r.getMessage() for r in errors)

    # The refusal keeps its causes: the store's error, then the driver's.
    with b.current(), pytest.raises(InvalidCredentialsError) as info:
        b.backend.decode_token(tokens[ACCESS])
    assert isinstance(info.value.__cause__, RevocationStoreError)
    assert info.value.__cause__.__cause__ is not None
    # The core dependencies answer 401 for such a Bearer token.
    request = Request(
        {
            "type": "http",
            "method": "GET",
            "path": "/",
            "query_string": b"",
            "headers": [(b"authorization", f"Bearer {tokens[ACCESS]}".encode())],
        }
    )
    with b.current(), pytest.raises(RequestRefusedError) as refused:
        get_user_token_from_cookie(request)
    assert refused.value.status_code == 401

    # Logout cannot revoke: the cookies go all the same, and the answer says so.
    logout = a.post("/auth/logout")
    assert logout.status_code == 503
    assert REVOCATION_TABLE not in logout.text
    assert {c.split("=")[0] for c in logout.headers.get_list("set-cookie")} == {
        ACCESS,
        REFRESH,
    }
    assert a.client.cookies.get(ACCESS) is None

    # Once the table is back, the tokens (never revoked) work again.
    create_auth_schema(a.db.database)
    assert b.get("/private").status_code == 200


def test_a_refresh_that_cannot_revoke_the_old_token_issues_nothing(two):
    a, b = two
    tokens = a.login()
    _execute(
        a.db,
        "CREATE FUNCTION {schema}.refuse() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN RAISE EXCEPTION 'revocations are read-only'; END $$; "
        "CREATE TRIGGER refuse BEFORE INSERT OR UPDATE ON {table} "
        "FOR EACH ROW EXECUTE FUNCTION {schema}.refuse()",
    )
    response = a.post("/auth/refresh")
    assert response.status_code == 503
    assert "set-cookie" not in response.headers
    assert a.tokens() == tokens
    _execute(a.db, "DROP TRIGGER refuse ON {table}")
    # Not rotated: the old token is still good (once).
    b.use({REFRESH: tokens[REFRESH]})
    assert b.post("/auth/refresh").status_code == 200
    assert a.post("/auth/refresh").status_code == 401


def _lose_commits(
    db: AuthDatabase, monkeypatch: pytest.MonkeyPatch, *, reads_too: bool = False
) -> None:
    """Make ``db``'s engine end commits in `CommitOutcomeUnknown`.

    What a `macrostrat.database` engine raises when the connection is lost
    during ``COMMIT`` and the server cannot say what became of the
    transaction (that path is tested in the database package). Only
    transactions that wrote, unless ``reads_too``: one that wrote nothing has
    nothing to lose. The transaction is rolled back, which the client cannot
    know.
    """
    dialect = db.database.engine.dialect
    real = dialect.do_commit

    def do_commit(dbapi_connection: Any) -> None:
        raw = getattr(dbapi_connection, "driver_connection", dbapi_connection)
        row = raw.execute("SELECT pg_current_xact_id_if_assigned()::text").fetchone()
        if row[0] is None and not reads_too:
            real(dbapi_connection)
            return
        raise CommitOutcomeUnknown(
            "the connection was lost while committing, and it is still in progress",
            xid=row[0],
            status="in progress",
        )

    monkeypatch.setattr(dialect, "do_commit", do_commit)


def test_a_commit_with_an_unknown_outcome_answers_503_or_401_never_500(
    two, monkeypatch
):
    a, b = two
    tokens = a.login()
    b.use(tokens)
    _lose_commits(a.db, monkeypatch)

    refresh = a.post("/auth/refresh")
    assert refresh.status_code == 503  # fails closed: no new tokens
    assert "set-cookie" not in refresh.headers
    assert a.tokens() == tokens
    logout = a.post("/auth/logout")
    assert logout.status_code == 503
    assert "outcome" not in logout.text  # the client is told nothing more
    assert a.client.cookies.get(ACCESS) is None

    # The store's error says the outcome is unknown, not that it failed.
    with pytest.raises(RevocationStoreError, match="outcome is unknown") as info:
        a.db.revocation_store.revoke("x", int(time.time()) + 60)
    assert isinstance(info.value.__cause__, CommitOutcomeUnknown)
    assert "could not" not in str(info.value)
    assert "revoked_token" in str(info.value)
    # The login throttle fails closed with its own error.
    with pytest.raises(LoginThrottleStoreError, match="outcome is unknown"):
        a.db.throttle_store.begin([("account", "carol")], ThrottlePolicy())

    # A revocation check whose commit is lost: the token is refused (401).
    assert b.get("/private").status_code == 200
    _lose_commits(b.db, monkeypatch, reads_too=True)
    assert b.get("/private").status_code == 401
    assert b.post("/auth/refresh").status_code == 401


# Wiring.


def test_the_default_store_follows_the_configured_auth_database(
    empty_db, secret_key, token_key
):
    backend = JWTBackend(secret_key)
    own = backend.revocation_store
    assert isinstance(own, RevocationStore)
    store = connect_engine(empty_db, token_key=token_key, create_schema=True)
    try:
        assert isinstance(store.revocation_store, DatabaseRevocationStore)
        assert backend.revocation_store is store.revocation_store
        with use_auth_database(None):
            assert backend.revocation_store is own
        explicit = RevocationStore()
        backend.revocation_store = explicit
        assert backend.revocation_store is explicit
        backend.revocation_store = None
        assert backend.revocation_store is store.revocation_store
    finally:
        set_auth_database(None)
    assert backend.revocation_store is own


def test_stores_are_checked_at_construction(secret_key, empty_db, token_key):
    with pytest.raises(AuthConfigurationError, match="revocation_store"):
        JWTBackend(secret_key, revocation_store=object())
    db = AuthDatabase(empty_db, token_key=token_key)
    for interval in (-1, float("nan"), "60", True):
        with pytest.raises(AuthConfigurationError, match="prune_interval"):
            DatabaseRevocationStore(db, prune_interval=interval)


def test_a_database_without_the_table_says_what_to_run_and_creates_nothing(
    empty_db, token_key
):
    create_auth_schema(empty_db)
    AuthDatabase(empty_db, token_key=token_key).create_user("zoe", None)
    with empty_db.engine.begin() as conn:
        conn.execute(text("DROP TABLE macrostrat_auth.revoked_token"))

    with pytest.raises(AuthConfigurationError) as info:
        connect_engine(empty_db, token_key=token_key)
    message = str(info.value)
    assert "earlier version" in message
    assert "revoked_token" in message
    assert "create_auth_schema(db, 'macrostrat_auth')" in message
    assert "safe to re-run" in message
    assert "create_schema=True" in message
    with pytest.raises(AuthNotConfiguredError):
        get_auth_database()
    with empty_db.engine.connect() as conn:
        regclass = "SELECT to_regclass('macrostrat_auth.revoked_token')"
        assert conn.execute(text(regclass)).scalar() is None

    create_auth_schema(empty_db)  # what the message says: adds the table only
    try:
        store = connect_engine(empty_db, token_key=token_key)
        assert store.get_user("zoe") is not None
        store.revocation_store.revoke("j", int(time.time()) + 60)
        assert store.revocation_store.is_revoked("j")
    finally:
        set_auth_database(None)


def test_a_blocking_store_is_asked_off_the_event_loop(make_instance):
    class Recording(BaseRevocationStore):
        def __init__(self) -> None:
            self.on_loop: list[bool] = []

        def revoke(self, jti: str, expires_at: int) -> None:
            pass

        def is_revoked(self, jti: str) -> bool:
            try:
                asyncio.get_running_loop()
            except RuntimeError:
                self.on_loop.append(False)
            else:
                self.on_loop.append(True)
            return False

    class InProcess(Recording):
        blocking = False

    for store, on_loop in ((Recording(), False), (InProcess(), True)):
        instance = make_instance(revocation_store=store)
        token = instance.backend.create_token("access", "carol")
        instance.use({ACCESS: token})
        assert instance.get("/private").json() == {"user": "carol"}
        assert store.on_loop == [on_loop]
        assert store.prune() == 0
