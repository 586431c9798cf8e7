"""Password hashing with the standard library's scrypt.

New hashes have the form ``scrypt-v1$<n>$<r>$<p>$<salt>$<hash>`` (salt and hash
in URL-safe base64 without padding). They do not depend on the JWT secret, so the
secret can be rotated without locking users out.

Legacy werkzeug-style hashes (``scrypt:N:r:p$salt$hex`` and
``pbkdf2:<digest>:<iterations>$salt$hex``) are verified too, so that they can be
upgraded on the next successful login (see `needs_rehash`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

__all__ = ["hash_password", "needs_rehash", "verify_password"]

_PREFIX = "scrypt-v1"
SCRYPT_N = 2**15
SCRYPT_R = 8
SCRYPT_P = 1
_SALT_BYTES = 16
_DKLEN = 64
_MAX_N = 2**20


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _scrypt(password: bytes, salt: bytes, n: int, r: int, p: int, dklen: int) -> bytes:
    maxmem = 128 * n * r * p + 2 * 1024 * 1024
    return hashlib.scrypt(
        password, salt=salt, n=n, r=r, p=p, maxmem=maxmem, dklen=dklen
    )


def hash_password(plaintext: str) -> str:
    """Hash ``plaintext`` with scrypt and a fresh random 16-byte salt.

    Parameters:
        plaintext: the password as given by the user.
    """
    salt = secrets.token_bytes(_SALT_BYTES)
    digest = _scrypt(
        plaintext.encode("utf-8"), salt, SCRYPT_N, SCRYPT_R, SCRYPT_P, _DKLEN
    )
    return f"{_PREFIX}${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${_b64(salt)}${_b64(digest)}"


def _verify_werkzeug(plaintext: str, stored: str) -> bool:
    try:
        method, salt, hexdigest = stored.split("$", 2)
        expected = bytes.fromhex(hexdigest)
        parts = method.split(":")
        password = plaintext.encode("utf-8")
        if parts[0] == "scrypt":
            n, r, p = (int(x) for x in parts[1:4]) if len(parts) > 1 else (2**15, 8, 1)
            if not 1 < n <= _MAX_N:
                return False
            actual = _scrypt(
                password, salt.encode("utf-8"), n, r, p, len(expected) or 64
            )
        elif parts[0] == "pbkdf2":
            name = parts[1] if len(parts) > 1 else "sha256"
            iterations = int(parts[2]) if len(parts) > 2 else 600000
            actual = hashlib.pbkdf2_hmac(
                name, password, salt.encode("utf-8"), iterations
            )
        else:
            return False
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual, expected)


def _verify_scrypt_v1(plaintext: str, stored: str) -> bool | None:
    """Check a ``scrypt-v1`` hash; None if the hash cannot be used."""
    try:
        _, n_text, r_text, p_text, salt, digest = stored.split("$")
        expected = _unb64(digest)
        n, r, p = int(n_text), int(r_text), int(p_text)
        if not 1 < n <= _MAX_N or not expected:
            return None
        actual = _scrypt(
            plaintext.encode("utf-8"), _unb64(salt), n, r, p, len(expected)
        )
    except (ValueError, TypeError):
        return None
    return hmac.compare_digest(actual, expected)


def _waste(plaintext: str) -> bool:
    """Spend the work of one verification and return False."""
    _verify_scrypt_v1(plaintext, DUMMY_HASH)
    return False


def verify_password(
    plaintext: str, stored: str | None, *, legacy_pepper: str = ""
) -> bool:
    """Check ``plaintext`` against a stored hash in constant time.

    A missing or unusable hash (such as an ORCID-only account's) costs the
    same scrypt work as a wrong password, so it does not reveal that the
    account exists. Legacy werkzeug hashes cost what their own parameters
    say (and twice that with ``legacy_pepper``) until they are upgraded on
    the next successful login.

    Parameters:
        plaintext: the password to check.
        stored: a hash from `hash_password` or a legacy werkzeug hash.
        legacy_pepper: for legacy werkzeug hashes only, a string that was
            prepended to the password before hashing (upstream used the JWT
            secret). Both the bare and the peppered password are always
            checked, so success and failure cost the same.
    """
    if not isinstance(plaintext, str):
        return _waste("")
    if not stored or not isinstance(stored, str):
        return _waste(plaintext)
    if stored.startswith(_PREFIX + "$"):
        result = _verify_scrypt_v1(plaintext, stored)
        return _waste(plaintext) if result is None else result
    if stored.split("$", 1)[0].split(":", 1)[0] not in ("scrypt", "pbkdf2"):
        return _waste(plaintext)
    bare = _verify_werkzeug(plaintext, stored)
    peppered = bool(legacy_pepper) and _verify_werkzeug(
        legacy_pepper + plaintext, stored
    )
    return bare or peppered


def needs_rehash(stored: str | None) -> bool:
    """Whether ``stored`` should be replaced by a fresh `hash_password` hash."""
    if not stored or not stored.startswith(_PREFIX + "$"):
        return True
    try:
        _, n, r, p, _salt, _digest = stored.split("$")
        return (int(n), int(r), int(p)) != (SCRYPT_N, SCRYPT_R, SCRYPT_P)
    except ValueError:
        return True


# A hash used to spend the same time on unknown users as on known ones.
DUMMY_HASH = hash_password(secrets.token_urlsafe(16))
