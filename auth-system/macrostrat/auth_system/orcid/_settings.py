"""`OrcidSettings`: the ORCID client configuration, checked when it is built."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TypeGuard
from urllib.parse import urlsplit

from ..errors import AuthConfigurationError

__all__ = [
    "ORCID_PRODUCTION",
    "ORCID_SANDBOX",
    "OrcidSettings",
    "is_valid_orcid",
]

ORCID_PRODUCTION = "https://orcid.org"
ORCID_SANDBOX = "https://sandbox.orcid.org"
_ORCID_RE = re.compile(r"^\d{4}-\d{4}-\d{4}-\d{3}[\dX]$")
_LOOPBACK = {"127.0.0.1", "::1", "localhost"}


def is_valid_orcid(value: object) -> TypeGuard[str]:
    """Whether ``value`` is an ORCID iD with a correct ISO 7064 11,2 check digit."""
    if not isinstance(value, str) or not _ORCID_RE.match(value):
        return False
    digits = value.replace("-", "")
    total = 0
    for char in digits[:-1]:
        total = (total + int(char)) * 2
    check = (12 - total % 11) % 11
    return digits[-1] == ("X" if check == 10 else str(check))


def _url(name: str, value: object, *, allow_path: bool) -> str:
    if not isinstance(value, str) or not value:
        raise AuthConfigurationError(f"ORCID {name} is missing")
    parts = urlsplit(value)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise AuthConfigurationError(
            f"ORCID {name} must be an absolute http(s) URL, got {value!r}"
        )
    if parts.scheme == "http" and parts.hostname not in _LOOPBACK:
        raise AuthConfigurationError(
            f"ORCID {name} must use https (plain http is allowed only on "
            f"loopback hosts), got {value!r}"
        )
    if not allow_path and parts.path not in ("", "/"):
        raise AuthConfigurationError(
            f"ORCID {name} is a base URL such as {ORCID_SANDBOX!r}, got {value!r}"
        )
    if parts.query or parts.fragment:
        raise AuthConfigurationError(f"ORCID {name} must not have a query or fragment")
    return value.rstrip("/") if not allow_path else value


def _check_redirect(target: object) -> None:
    """Accept a path on this site (``/x``) or an https URL, nothing else.

    Backslashes, control characters and paths starting with ``//`` or ``/\\``
    (which browsers treat as another host) are refused. Plain http is
    accepted on loopback hosts only.
    """
    ok = isinstance(target, str) and bool(target)
    if ok:
        assert isinstance(target, str)
        if "\\" in target or any(ord(c) < 0x21 or ord(c) == 0x7F for c in target):
            ok = False
        elif target.startswith("/"):
            ok = not target.startswith("//")
        else:
            parts = urlsplit(target)
            ok = bool(parts.hostname) and (
                parts.scheme == "https"
                or (parts.scheme == "http" and parts.hostname in _LOOPBACK)
            )
    if not ok:
        raise AuthConfigurationError(
            "ORCID success_redirect must be a path starting with a single '/' or "
            f"an https URL, without backslashes, got {target!r}"
        )


@dataclass(frozen=True)
class OrcidSettings:
    """How the application talks to ORCID (OAuth 2.0 authorization-code flow).

    Every value is checked here, so a misconfigured application fails at startup.

    Parameters:
        client_id: the ORCID client id (``APP-...``).
        client_secret: the ORCID client secret.
        redirect_uri: the absolute URL of this app's ``/orcid/callback``, as
            registered with ORCID.
        base_url: ``https://orcid.org`` (default) or ``https://sandbox.orcid.org``.
            Plain ``http`` is accepted for loopback hosts only (tests).
        allowed_orcids: if given, ORCID iDs that may log in.
        allowed_groups: if given, group names (user roles) that may log in. A
            user passes when their iD or one of their groups is allowed.
        success_redirect: where the browser goes after logging in: a path
            starting with a single ``/`` or an absolute https URL (no
            backslashes).
        scope: the OAuth scope requested (``/authenticate``).
        state_max_age: seconds a login attempt (its ``state``) stays valid.
        timeout: seconds to wait for the token endpoint.
    """

    client_id: str
    client_secret: str = field(repr=False)
    redirect_uri: str
    base_url: str = ORCID_PRODUCTION
    allowed_orcids: frozenset[str] | None = None
    allowed_groups: frozenset[str] | None = None
    success_redirect: str = "/"
    scope: str = "/authenticate"
    state_max_age: int = 600
    timeout: float = 10.0

    def __post_init__(self) -> None:
        for name in ("client_id", "client_secret", "scope"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value.strip():
                raise AuthConfigurationError(f"ORCID {name} is missing or empty")
        object.__setattr__(
            self, "base_url", _url("base_url", self.base_url, allow_path=False)
        )
        _url("redirect_uri", self.redirect_uri, allow_path=True)
        _check_redirect(self.success_redirect)
        if self.allowed_orcids is not None:
            ids = frozenset(self.allowed_orcids)
            bad = sorted(i for i in ids if not is_valid_orcid(i))
            if bad:
                raise AuthConfigurationError(
                    f"ORCID allowed_orcids has invalid iD(s): {', '.join(map(repr, bad))}"
                )
            object.__setattr__(self, "allowed_orcids", ids)
        if self.allowed_groups is not None:
            object.__setattr__(self, "allowed_groups", frozenset(self.allowed_groups))
        for name in ("state_max_age", "timeout"):
            value = getattr(self, name)
            if (
                isinstance(value, bool)
                or not isinstance(value, (int, float))
                or value <= 0
            ):
                raise AuthConfigurationError(f"ORCID {name} must be a positive number")

    @property
    def authorize_url(self) -> str:
        """``<base>/oauth/authorize``."""
        return f"{self.base_url}/oauth/authorize"

    @property
    def token_url(self) -> str:
        """``<base>/oauth/token``."""
        return f"{self.base_url}/oauth/token"

    @property
    def restricted(self) -> bool:
        """Whether an allow-list limits who may log in."""
        return self.allowed_orcids is not None or self.allowed_groups is not None

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, prefix: str = "ORCID_"
    ) -> OrcidSettings:
        """Read settings from environment variables.

        ``ORCID_CLIENT_ID``, ``ORCID_CLIENT_SECRET``, ``ORCID_REDIRECT_URI``
        (required), ``ORCID_BASE_URL``, ``ORCID_ALLOWED_IDS`` and
        ``ORCID_ALLOWED_GROUPS`` (comma-separated), ``ORCID_SUCCESS_REDIRECT``.

        Raises:
            AuthConfigurationError: naming every missing required variable.
        """
        env = os.environ if environ is None else environ
        required = ("CLIENT_ID", "CLIENT_SECRET", "REDIRECT_URI")
        missing = [prefix + k for k in required if not env.get(prefix + k)]
        if missing:
            raise AuthConfigurationError(
                f"ORCID login is not configured: set {', '.join(missing)}"
            )

        def _list(key: str) -> frozenset[str] | None:
            raw = env.get(prefix + key)
            if raw is None:
                return None
            return frozenset(_split(raw))

        return cls(
            client_id=env[prefix + "CLIENT_ID"],
            client_secret=env[prefix + "CLIENT_SECRET"],
            redirect_uri=env[prefix + "REDIRECT_URI"],
            base_url=env.get(prefix + "BASE_URL") or ORCID_PRODUCTION,
            allowed_orcids=_list("ALLOWED_IDS"),
            allowed_groups=_list("ALLOWED_GROUPS"),
            success_redirect=env.get(prefix + "SUCCESS_REDIRECT") or "/",
        )


def _split(raw: str) -> Iterable[str]:
    return [item.strip() for item in raw.split(",") if item.strip()]
