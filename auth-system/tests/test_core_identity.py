"""DatabaseIdentityProvider: password login and ORCID users from PostGIS."""

from __future__ import annotations

import hashlib

import pytest
from starlette.testclient import TestClient

from macrostrat.auth_system.core import DatabaseIdentityProvider, DatabaseUser
from macrostrat.auth_system.errors import AuthConfigurationError
from macrostrat.auth_system.legacy import (
    BaseUser,
    IdentityProvider,
    set_identity_provider,
)


@pytest.fixture
def db_provider(backend, auth_store):
    provider = DatabaseIdentityProvider()
    set_identity_provider(provider)
    return provider


@pytest.fixture
def db_client(db_provider, make_app, backend):
    with TestClient(make_app(backend), base_url="https://testserver") as client:
        yield client


def _werkzeug_scrypt(password: str, salt: str = "AbCdEfGhIjKlMnOp") -> str:
    n, r, p = 2**14, 8, 1
    digest = hashlib.scrypt(
        password.encode(), salt=salt.encode(), n=n, r=r, p=p, maxmem=64 * 1024 * 1024
    )
    return f"scrypt:{n}:{r}:{p}${salt}${digest.hex()}"


def test_create_and_get_user(db_provider, auth_store):
    user = db_provider.create_user(
        "carol", "carol-pass", roles=["editors"], name="Carol", email="c@example.org"
    )
    assert isinstance(user, DatabaseUser)
    assert user.roles == ("editors",)
    again = db_provider.get_user("carol")
    assert (again.id, again.name, again.email) == (user.id, "Carol", "c@example.org")
    assert again.hashed_password.startswith("scrypt-v1$")
    assert again.is_correct_password("carol-pass")
    assert not again.is_correct_password("wrong")
    assert db_provider.get_user("nobody") is None
    assert db_provider.store is auth_store


def test_explicit_store_is_used(auth_store):
    provider = DatabaseIdentityProvider(auth_store)
    provider.create_user("dan", None)
    assert provider.get_user("dan").hashed_password is None
    assert not provider.get_user("dan").is_correct_password("")


def test_login_against_the_database(db_client, db_provider):
    db_provider.create_user("carol", "carol-pass", roles=["admin"])
    response = db_client.post(
        "/auth/login", json={"username": "carol", "password": "carol-pass"}
    )
    assert response.status_code == 200
    assert db_client.get("/auth/secret").json() == {"answer": 42}
    bad = db_client.post("/auth/login", json={"username": "carol", "password": "x"})
    assert bad.status_code == 401


def test_legacy_hash_is_upgraded_in_the_database_on_login(
    db_client, auth_store, db_provider
):
    legacy = _werkzeug_scrypt("old-password")
    auth_store.create_user("eve", legacy, groups=["readers"])
    response = db_client.post(
        "/auth/login", json={"username": "eve", "password": "old-password"}
    )
    assert response.status_code == 200
    stored = auth_store.get_user("eve").hashed_password
    assert stored != legacy
    assert stored.startswith("scrypt-v1$")
    assert db_provider.get_user("eve").is_correct_password("old-password")
    # A failed login does not touch the hash.
    db_client.post("/auth/login", json={"username": "eve", "password": "nope"})
    assert auth_store.get_user("eve").hashed_password == stored


def test_find_or_create_orcid_user(db_provider, auth_store):
    orcid = "0000-0002-1825-0097"
    first = db_provider.find_or_create_orcid_user(orcid, "Josiah Carberry")
    assert (first.username, first.sub, first.name) == (orcid, orcid, "Josiah Carberry")
    assert first.roles == ()
    second = db_provider.find_or_create_orcid_user(orcid, None)
    assert second.id == first.id
    assert second.name == "Josiah Carberry"
    third = db_provider.find_or_create_orcid_user(orcid, "J. Carberry")
    assert third.id == first.id
    assert third.name == "J. Carberry"
    auth_store.add_member(first.id, "admin")
    assert db_provider.find_or_create_orcid_user(orcid).roles == ("admin",)


def test_save_user_stores_a_new_hash(db_provider, auth_store):
    user = db_provider.create_user("fay", "one")
    user.set_password("two")
    db_provider.save_user(user)
    assert db_provider.get_user("fay").is_correct_password("two")
    db_provider.save_user(BaseUser("ghost"))  # no hash: nothing to store


def test_base_provider_refuses_orcid_with_a_clear_error():
    with pytest.raises(AuthConfigurationError, match="find_or_create_orcid_user"):
        IdentityProvider().find_or_create_orcid_user("0000-0002-1825-0097", "X")


def test_orcid_id_taken_as_a_username_is_a_clear_error(db_provider, auth_store):
    from macrostrat.auth_system.errors import AuthSystemError

    orcid = "0000-0002-1825-0097"
    auth_store.create_user(orcid, None)  # a local user squatting the iD
    with pytest.raises(AuthSystemError, match=orcid) as info:
        db_provider.find_or_create_orcid_user(orcid, "J")
    assert info.value.__cause__ is not None
