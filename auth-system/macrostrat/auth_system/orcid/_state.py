"""The signed, short-lived ``state`` cookie of an ORCID login attempt."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from hmac import compare_digest

from ..errors import OrcidLoginError

__all__ = ["STATE_COOKIE", "new_state", "read_state_cookie", "sign_state"]

STATE_COOKIE = "orcid_state"
_LABEL = b"macrostrat.auth_system orcid state v1"
_MAX_COOKIE = 512


def _key(secret: str | bytes) -> bytes:
    raw = secret.encode("utf-8") if isinstance(secret, str) else secret
    return hmac.new(raw, _LABEL, hashlib.sha256).digest()


def _mac(secret: str | bytes, state: str, expires: int) -> str:
    message = f"{state}.{expires}".encode()
    return hmac.new(_key(secret), message, hashlib.sha256).hexdigest()


def new_state() -> str:
    """A fresh random ``state`` (256 bits, URL-safe)."""
    return secrets.token_urlsafe(32)


def sign_state(secret: str | bytes, state: str, max_age: int) -> str:
    """The cookie value ``<state>.<expires>.<mac>`` for ``state``."""
    expires = int(time.time()) + int(max_age)
    return f"{state}.{expires}.{_mac(secret, state, expires)}"


def _parse_cookie(cookie: str) -> tuple[str, int, str] | None:
    """``(state, expires, mac)`` of a cookie value, or None if it is malformed."""
    parts = cookie.split(".") if len(cookie) <= _MAX_COOKIE else []
    if len(parts) != 3:
        return None
    value, expires_text, mac = parts
    # ASCII digits only (str.isdigit accepts other scripts' digits), and at
    # most _MAX_COOKIE of them, so int() cannot fail.
    if not expires_text.isascii() or not expires_text.isdigit():
        return None
    return value, int(expires_text), mac


def read_state_cookie(
    secret: str | bytes, cookie: str | None, state: str | None
) -> tuple[str, int]:
    """Check the callback's ``state`` against the signed cookie.

    Returns the state and its expiry (Unix time).

    Raises:
        OrcidLoginError: (400) the parameter or cookie is missing, the cookie is
            forged or expired, or the two do not match.
    """
    if not state:
        raise OrcidLoginError("ORCID callback has no state parameter")
    if not cookie:
        raise OrcidLoginError(
            f"ORCID login state cookie ({STATE_COOKIE}) is missing or expired; "
            "start the login again"
        )
    parsed = _parse_cookie(cookie)
    if parsed is None:
        raise OrcidLoginError("ORCID login state cookie is malformed")
    value, expires, mac = parsed
    if not compare_digest(
        mac.encode("ascii", "replace"), _mac(secret, value, expires).encode("ascii")
    ):
        raise OrcidLoginError("ORCID login state cookie has a bad signature")
    if expires < time.time():
        raise OrcidLoginError("ORCID login state has expired; start the login again")
    if not compare_digest(value.encode("utf-8"), state.encode("utf-8")):
        raise OrcidLoginError(
            "ORCID state mismatch: the callback does not belong to this browser's "
            "login attempt (possible CSRF)"
        )
    return value, expires
