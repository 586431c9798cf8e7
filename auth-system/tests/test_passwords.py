"""Password hashing: scrypt from the standard library, legacy werkzeug hashes."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from macrostrat.auth_system.legacy import (
    BaseUser,
    create_backend,
    hash_password,
    needs_rehash,
    verify_password,
)
from macrostrat.auth_system.legacy import _passwords as passwords_module


def _werkzeug_scrypt(password: str, salt: str = "AbCdEfGhIjKlMnOp") -> str:
    n, r, p = 2**14, 8, 1
    digest = hashlib.scrypt(
        password.encode(), salt=salt.encode(), n=n, r=r, p=p, maxmem=64 * 1024 * 1024
    )
    return f"scrypt:{n}:{r}:{p}${salt}${digest.hex()}"


def _werkzeug_pbkdf2(password: str, salt: str = "qrstuvwxyz012345") -> str:
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt.encode(), 1000)
    return f"pbkdf2:sha256:1000${salt}${digest.hex()}"


def test_hash_round_trip_and_per_password_salt():
    first = hash_password("correct horse")
    second = hash_password("correct horse")
    assert first != second
    assert first.startswith("scrypt-v1$")
    assert verify_password("correct horse", first)
    assert verify_password("correct horse", second)
    assert not verify_password("correct horsE", first)
    assert not needs_rehash(first)


@pytest.mark.parametrize(
    "stored",
    [None, "", "scrypt-v1$bad", "scrypt-v1$99999999$8$1$AA$AA", "md5$x$y", "plain"],
)
def test_malformed_hashes_never_verify(stored):
    assert not verify_password("anything", stored)
    assert needs_rehash(stored)


def test_verify_uses_constant_time_compare(monkeypatch):
    calls = []
    real = hmac.compare_digest

    def spy(a, b):
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(passwords_module.hmac, "compare_digest", spy)
    stored = hash_password("pw")
    assert verify_password("pw", stored)
    assert not verify_password("pw", _werkzeug_pbkdf2("other"))
    assert len(calls) == 2


@pytest.mark.parametrize("make", [_werkzeug_scrypt, _werkzeug_pbkdf2])
def test_legacy_werkzeug_hashes_verify(make):
    stored = make("hunter2")
    assert verify_password("hunter2", stored)
    assert not verify_password("hunter3", stored)
    assert needs_rehash(stored)


def test_legacy_peppered_hash_verifies_with_pepper_only():
    stored = _werkzeug_pbkdf2("PEPPER" + "hunter2")
    assert not verify_password("hunter2", stored)
    assert verify_password("hunter2", stored, legacy_pepper="PEPPER")


def test_hash_does_not_depend_on_the_jwt_secret(backend):
    user = BaseUser("carol", "pw-carol")
    assert user.is_correct_password("pw-carol")
    create_backend("a-completely-different-secret-key-0123456789")
    assert user.is_correct_password("pw-carol")


def test_upstream_style_hash_upgrades_on_login(client, provider, secret_key):
    # Upstream hashed secret_key + password with werkzeug.
    user = BaseUser("dave", hashed_password=_werkzeug_scrypt(secret_key + "pw-dave"))
    provider.users["dave"] = user
    response = client.post(
        "/auth/login", json={"username": "dave", "password": "pw-dave"}
    )
    assert response.status_code == 200
    assert provider.saved == ["dave"]
    assert user.hashed_password.startswith("scrypt-v1$")
    assert not user.password_needs_upgrade
    assert verify_password("pw-dave", user.hashed_password)


def test_failed_login_does_not_upgrade(client, provider):
    user = BaseUser("erin", hashed_password=_werkzeug_pbkdf2("pw-erin"))
    provider.users["erin"] = user
    response = client.post("/auth/login", json={"username": "erin", "password": "nope"})
    assert response.status_code == 401
    assert provider.saved == []
    assert user.hashed_password.startswith("pbkdf2:")


def test_unknown_user_still_spends_a_hash(client, monkeypatch):
    seen = []
    real = passwords_module._scrypt

    def spy(*args, **kwargs):
        seen.append(args[1])
        return real(*args, **kwargs)

    monkeypatch.setattr(passwords_module, "_scrypt", spy)
    response = client.post("/auth/login", json={"username": "ghost", "password": "x"})
    assert response.status_code == 401
    assert len(seen) == 1
