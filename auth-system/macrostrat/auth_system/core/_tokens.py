"""Opaque API tokens: generation and keyed hashing (HMAC-SHA256).

Only ``hmac-sha256$<hex>`` digests are stored, keyed with a server secret that
never appears in source or in the database, so a leaked table cannot be used to
look tokens up or to test guesses offline. HMAC accepts input of any length.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from hmac import compare_digest

from ..errors import AuthConfigurationError

__all__ = [
    "MIN_TOKEN_KEY_BYTES",
    "check_token_key",
    "generate_api_token",
    "hash_api_token",
    "token_matches",
]

MIN_TOKEN_KEY_BYTES = 32
_PREFIX = "hmac-sha256$"


def check_token_key(key: str | bytes | None) -> bytes:
    """Return ``key`` as bytes, or raise `AuthConfigurationError` if unusable.

    Parameters:
        key: the server key for API-token hashes, at least 32 bytes.
    """
    if not isinstance(key, (str, bytes)):
        raise AuthConfigurationError(
            "API tokens need a server key (token_key, or the environment variable "
            "MACROSTRAT_AUTH_TOKEN_KEY); generate one with "
            "`python -c 'import secrets; print(secrets.token_urlsafe(48))'`."
        )
    raw = key.encode("utf-8") if isinstance(key, str) else key
    if len(raw) < MIN_TOKEN_KEY_BYTES:
        raise AuthConfigurationError(
            f"The API-token key is {len(raw)} bytes long; at least "
            f"{MIN_TOKEN_KEY_BYTES} bytes are required."
        )
    return raw


def generate_api_token() -> str:
    """A new random API token (256 bits, URL-safe text)."""
    return secrets.token_urlsafe(32)


def hash_api_token(token: str, key: bytes) -> str:
    """The stored form of ``token``: ``hmac-sha256$`` and the hex HMAC under ``key``.

    Parameters:
        token: the plaintext token (any length).
        key: the server key (see `check_token_key`).
    """
    digest = hmac.new(key, token.encode("utf-8"), hashlib.sha256).hexdigest()
    return _PREFIX + digest


def token_matches(token: str, stored: str, key: bytes) -> bool:
    """Whether ``token`` hashes to ``stored``, compared in constant time."""
    return compare_digest(hash_api_token(token, key), stored)
