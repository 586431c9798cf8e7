"""Backend construction and the configuration context."""

from __future__ import annotations

import pytest

from macrostrat.auth_system.errors import (
    AuthConfigurationError,
    AuthNotConfiguredError,
    AuthSystemError,
)
from macrostrat.auth_system.legacy import (
    IdentityProvider,
    JWTBackend,
    create_backend,
    get_backend,
    get_identity_provider,
    get_secret_key,
    set_identity_provider,
)
from macrostrat.auth_system.legacy.context import _reset


@pytest.fixture(autouse=True)
def _clean_context():
    _reset()
    yield
    _reset()


@pytest.mark.parametrize("key", [None, "", "short", "x" * 31, b"y" * 31, 12345])
def test_missing_or_short_secret_fails_at_construction(key):
    with pytest.raises(AuthConfigurationError, match="secret key"):
        JWTBackend(key)
    with pytest.raises(AuthConfigurationError):
        create_backend(key)
    with pytest.raises(AuthNotConfiguredError):
        get_backend()


@pytest.mark.parametrize("algorithm", ["none", "RS256", "ES256", "hs256", ""])
def test_only_hmac_algorithms_can_be_configured(algorithm):
    with pytest.raises(AuthConfigurationError, match="algorithm"):
        JWTBackend("k" * 64, algorithm=algorithm)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"samesite": "none", "secure_cookies": False},
        {"samesite": "sideways"},
        {"access_max_age": 0},
        {"refresh_max_age": -1},
        {"access_max_age": 1.5},
    ],
)
def test_invalid_cookie_settings_fail_at_construction(kwargs):
    with pytest.raises(AuthConfigurationError):
        JWTBackend("k" * 64, **kwargs)


def test_configured_algorithm_is_the_only_one_accepted():
    import jwt

    hs512 = JWTBackend("k" * 64, algorithm="HS512")
    hs256 = JWTBackend("k" * 64)
    token = hs512.create_token("access", "alice")
    assert hs512.decode_token(token)["identity"] == "alice"
    assert jwt.get_unverified_header(token)["alg"] == "HS512"
    with pytest.raises(jwt.InvalidAlgorithmError):
        hs256._decode(token)


def test_unset_context_raises_runtime_error():
    with pytest.raises(RuntimeError, match="No authentication backend"):
        get_backend()
    with pytest.raises(RuntimeError, match="No identity provider"):
        get_identity_provider()
    with pytest.raises(AuthSystemError):
        get_secret_key()


def test_create_backend_sets_context_and_secret():
    key = "s" * 40
    backend = create_backend(key, secure_cookies=False)
    assert get_backend() is backend
    assert get_secret_key() == key
    assert backend.secure_cookies is False
    provider = IdentityProvider()
    set_identity_provider(provider)
    assert get_identity_provider() is provider


def test_defaults_match_upstream_names_and_lifetimes():
    backend = JWTBackend("k" * 64)
    assert backend.algorithm == "HS256"
    assert backend.secure_cookies is True
    assert backend.samesite == "lax"
    assert backend.access_max_age == 86400
    assert backend.refresh_max_age == 2592000
    assert backend.cookie_name("access") == "access_token_cookie"
    assert backend.cookie_name("refresh") == "refresh_token_cookie"


def test_base_identity_provider_finds_nobody():
    provider = IdentityProvider()
    assert provider.get_user("x") is None
    assert provider.create_user("x", "y") is None
    assert provider.save_user(None) is None  # type: ignore[arg-type]


def test_set_cookie_without_response_returns_token():
    backend = JWTBackend("k" * 64)
    token = backend.set_cookie(None, "access", identity="bob", role="reader")
    payload = backend.decode_token(token)
    assert payload["roles"] == ["reader"]
    assert payload["identity"] == "bob"
