"""core: the auth schema, API tokens and configuration against real PostGIS."""

from __future__ import annotations

import hashlib
import hmac
from datetime import timedelta

import pytest
from sqlalchemy import text

from macrostrat.auth_system.core import (
    SCHEMA,
    TOKEN_KEY_ENV,
    AuthDatabase,
    Base,
    Group,
    GroupMembers,
    LoginThrottleEntry,
    RevokedToken,
    Token,
    User,
    auth_schema_sql,
    connect_engine,
    create_auth_schema,
    dispose_engine,
    generate_api_token,
    get_access_token,
    get_auth_database,
    get_base,
    get_database,
    get_engine,
    get_session,
    get_session_maker,
    hash_api_token,
    set_auth_database,
)
from macrostrat.auth_system.core import _tokens as tokens_module
from macrostrat.auth_system.errors import (
    AuthConfigurationError,
    AuthDatabaseError,
    AuthNotConfiguredError,
    AuthSystemError,
)


@pytest.fixture(autouse=True)
def _forget_store():
    set_auth_database(None)
    yield
    set_auth_database(None)


def test_connect_engine_stores_the_database_where_it_is_read(auth_store, empty_db):
    # Upstream's connect_engine discarded the database: get_engine() raised.
    assert get_auth_database() is auth_store
    assert get_database() is empty_db
    assert get_engine().url == empty_db.engine.url
    assert get_base() is Base
    with get_session_maker()() as session:
        assert session.execute(text("SELECT 1")).scalar() == 1
    gen = get_session()
    session = next(gen)
    assert session.execute(text("SELECT 2")).scalar() == 2
    gen.close()
    dispose_engine()
    assert get_auth_database().get_user("nobody") is None  # reconnects


def test_unconfigured_core_raises_a_clear_error():
    for call in (get_auth_database, get_database, get_engine, get_session_maker):
        with pytest.raises(AuthNotConfiguredError, match="connect_engine"):
            call()
    with pytest.raises(RuntimeError):
        get_access_token("x" * 40)


def test_missing_tables_fail_at_connect(empty_db, token_key):
    with pytest.raises(AuthConfigurationError, match="create_auth_schema"):
        connect_engine(empty_db, token_key=token_key)
    with pytest.raises(AuthNotConfiguredError):
        get_auth_database()


@pytest.mark.parametrize("key", [None, "", "short", "k" * 31, 42])
def test_missing_or_short_token_key_fails_at_connect(
    empty_db, key, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.delenv(TOKEN_KEY_ENV, raising=False)
    with pytest.raises(AuthConfigurationError, match="key"):
        connect_engine(empty_db, token_key=key, create_schema=True)


def test_token_key_from_environment(empty_db, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv(TOKEN_KEY_ENV, "e" * 40)
    store = connect_engine(empty_db, create_schema=True)
    assert store.token_key == b"e" * 40


@pytest.mark.parametrize("groups", [(), ("",), (True,), (1.5,)])
def test_bad_access_groups_fail_at_connect(empty_db, token_key, groups):
    with pytest.raises(AuthConfigurationError, match="access_groups"):
        AuthDatabase(empty_db, token_key=token_key, access_groups=groups)


@pytest.mark.parametrize("schema", ["", "x" * 64])
def test_bad_schema_name_is_rejected(schema):
    with pytest.raises(AuthConfigurationError, match="schema"):
        auth_schema_sql(schema)


def test_schema_ddl_is_idempotent_and_quotes_odd_names(empty_db, token_key):
    odd = 'Auth "tables"; DROP'
    create_auth_schema(empty_db, odd)
    create_auth_schema(empty_db, odd)
    store = connect_engine(empty_db, odd, token_key=token_key)
    user = store.create_user("zoe", None, groups=["admin"])
    assert [g.name for g in user.groups] == ["admin"]
    with empty_db.engine.connect() as conn:
        count = conn.execute(
            text(
                "SELECT count(*) FROM information_schema.tables WHERE table_schema = :s"
            ),
            {"s": odd},
        ).scalar()
        # user, group, group_members, token, login_throttle, revoked_token
        assert count == 6
        # Nothing landed in the default schema name.
        assert (
            conn.execute(text("SELECT to_regclass('macrostrat_auth.user')")).scalar()
            is None
        )


def test_models_match_the_ddl(auth_store):
    assert SCHEMA == "macrostrat_auth"
    for model in (User, Group, GroupMembers, Token, LoginThrottleEntry, RevokedToken):
        assert model.__table__.schema == SCHEMA
        with auth_store.session() as session:
            session.execute(model.__table__.select().limit(1)).all()


def test_api_token_is_stored_as_keyed_hash_only(auth_store, token_key):
    token = auth_store.create_api_token("editors", timedelta(hours=1))
    with auth_store.session() as session:
        (stored,) = session.scalars(
            Token.__table__.select().with_only_columns(Token.token)
        )
    assert token not in stored
    expected = hmac.new(token_key.encode(), token.encode(), hashlib.sha256).hexdigest()
    assert stored == "hmac-sha256$" + expected
    assert stored == hash_api_token(token, token_key.encode())
    # No fixed salt: another server key gives another hash.
    assert hash_api_token(token, b"o" * 32) != stored


def test_valid_token_is_found_and_used_on_is_set(auth_store):
    group_id = auth_store.create_group("editors")
    token = auth_store.create_api_token(group_id, 3600)
    row = get_access_token(token)
    assert row is not None
    assert row.group == group_id
    assert row.used_on is not None
    assert row.used_on.tzinfo is not None


def test_unknown_and_empty_tokens_give_none_not_errors(auth_store):
    auth_store.create_api_token("editors", 3600)
    assert get_access_token(generate_api_token()) is None
    assert get_access_token("") is None


def test_expired_token_is_refused(auth_store):
    token = auth_store.create_api_token("editors", 3600)
    with auth_store.session() as session:
        session.execute(
            text("UPDATE macrostrat_auth.token SET expires_on = now() - interval '1 s'")
        )
    assert get_access_token(token) is None


@pytest.mark.parametrize("length", [16, 72, 73, 200, 4000])
def test_long_tokens_work(auth_store, length):
    # bcrypt (upstream) raised for tokens over 72 bytes.
    token = ("é" + "x" * length)[:length]
    auth_store.create_api_token("editors", 3600, token=token)
    assert get_access_token(token) is not None
    assert get_access_token(token[:-1] + "y") is None


def test_token_lookup_compares_in_constant_time(auth_store, monkeypatch):
    calls = []
    real = tokens_module.compare_digest

    def spy(a, b):
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(tokens_module, "compare_digest", spy)
    token = auth_store.create_api_token("editors", 3600)
    assert get_access_token(token) is not None
    assert calls
    assert calls[-1][0] == hash_api_token(token, auth_store.token_key)


def test_revoke_api_token(auth_store):
    token = auth_store.create_api_token("editors", 3600)
    assert auth_store.revoke_api_token(token) is True
    assert auth_store.revoke_api_token(token) is False
    assert get_access_token(token) is None


@pytest.mark.parametrize(
    "kwargs", [{"expires_in": 0}, {"expires_in": -5}, {"expires_in": timedelta(0)}]
)
def test_token_lifetime_must_be_positive(auth_store, kwargs):
    with pytest.raises(ValueError, match="expires_in"):
        auth_store.create_api_token("editors", **kwargs)


def test_short_explicit_token_is_refused(auth_store):
    with pytest.raises(ValueError, match="16 characters"):
        auth_store.create_api_token("editors", 60, token="short")


def test_generated_tokens_are_random_and_long():
    tokens = {generate_api_token() for _ in range(50)}
    assert len(tokens) == 50
    assert all(len(t) >= 43 for t in tokens)


def test_duplicate_username_is_a_clear_error(auth_store):
    auth_store.create_user("ann", None)
    with pytest.raises(AuthSystemError, match="ann") as info:
        auth_store.create_user("ann", None)
    assert isinstance(info.value, AuthDatabaseError)
    assert info.value.__cause__ is not None


def test_groups_and_members(auth_store):
    user = auth_store.create_user("ann", None, groups=["readers", "admin"])
    assert sorted(g.name for g in user.groups) == ["admin", "readers"]
    ids = auth_store.group_ids_for("ann")
    assert sorted(auth_store.group_names(ids)) == ["admin", "readers"]
    assert auth_store.group_ids_for("nobody") == []
    assert auth_store.group_names([]) == []
    assert auth_store.create_group("admin") in ids
    assert auth_store.access_group_ids() == {auth_store.create_group("admin")}


def test_duplicate_user_error_does_not_leak_the_password_hash(auth_store):
    from macrostrat.auth_system.legacy import hash_password

    hashed = hash_password("ann-password")
    auth_store.create_user("ann", hashed)
    with pytest.raises(AuthSystemError) as info:
        auth_store.create_user("ann", hashed)
    message = str(info.value)
    assert hashed not in message
    assert hashed.split("$")[-1] not in message
    assert "duplicate key" in message
    assert info.value.__cause__ is not None


def test_store_built_from_a_url_hides_sql_parameters(empty_database_url, token_key):
    store = AuthDatabase(empty_database_url, token_key=token_key)
    try:
        store.create_schema()
        assert store.database.engine.hide_parameters is True
        store.create_user("ann", "secret-hash-value")
        with pytest.raises(AuthSystemError) as info:
            store.create_user("ann", "secret-hash-value")
        assert "secret-hash-value" not in str(info.value)
        assert "secret-hash-value" not in str(info.value.__cause__)
    finally:
        store.database.engine.dispose()
