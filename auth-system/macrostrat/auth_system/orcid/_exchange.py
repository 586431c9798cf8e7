"""The authorization-code exchange at ORCID's token endpoint (standard library).

`urllib.request` is used, run in a worker thread by the callback route, so the
package needs no HTTP client dependency for one POST per login.
"""

from __future__ import annotations

import json
import logging
import unicodedata
import urllib.error
import urllib.request
from dataclasses import dataclass
from urllib.parse import urlencode

from ..errors import OrcidLoginError
from ._settings import OrcidSettings, is_valid_orcid

__all__ = ["OrcidIdentity", "exchange_code"]

log = logging.getLogger(__name__)

_MAX_BODY = 1024 * 1024
_MAX_NAME = 255  # the width of the user table's name column


def _clean_name(value: object) -> str | None:
    """ORCID's ``name`` as storable text, or None.

    Control characters (NUL among them, which PostgreSQL refuses) and lone
    surrogates are dropped, and the name is cut to 255 characters.
    """
    if not isinstance(value, str):
        return None
    kept = "".join(c for c in value if unicodedata.category(c) not in ("Cc", "Cs"))
    kept = kept.strip()[:_MAX_NAME].strip()
    return kept or None


@dataclass(frozen=True)
class OrcidIdentity:
    """Who ORCID says logged in: the iD and (if public) the name."""

    orcid: str
    name: str | None


def _error_description(body: bytes) -> str:
    try:
        data = json.loads(body)
    except ValueError:
        return ""
    if not isinstance(data, dict):
        return ""
    parts = [str(data[k]) for k in ("error", "error_description") if data.get(k)]
    return ": ".join(parts)


def exchange_code(settings: OrcidSettings, code: str) -> OrcidIdentity:
    """POST ``code`` to ``<base>/oauth/token``; return the iD and name.

    Parameters:
        settings: the ORCID client settings.
        code: the authorization code from the callback.

    Raises:
        OrcidLoginError: 401 when ORCID refuses the code, 502 when the endpoint
            cannot be reached or answers something unusable.
    """
    data = urlencode(
        {
            "client_id": settings.client_id,
            "client_secret": settings.client_secret,
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": settings.redirect_uri,
        }
    ).encode("ascii")
    request = urllib.request.Request(
        settings.token_url,
        data=data,
        method="POST",
        headers={
            "Accept": "application/json",
            "Content-Type": "application/x-www-form-urlencoded",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=settings.timeout) as response:
            body = response.read(_MAX_BODY)
    except urllib.error.HTTPError as err:
        detail = _error_description(err.read(_MAX_BODY))
        err.close()
        log.warning("ORCID token endpoint answered %s %s", err.code, detail)
        status = 401 if err.code in (400, 401, 403) else 502
        message = f"ORCID refused the authorization code (HTTP {err.code})"
        raise OrcidLoginError(
            f"{message}: {detail}" if detail else message, status
        ) from err
    except (urllib.error.URLError, OSError) as err:
        log.warning("ORCID token endpoint unreachable: %s", err)
        raise OrcidLoginError(
            f"ORCID token endpoint {settings.token_url} could not be reached", 502
        ) from err
    try:
        payload = json.loads(body)
    except ValueError as err:
        raise OrcidLoginError(
            "ORCID token endpoint answered invalid JSON", 502
        ) from err
    orcid = payload.get("orcid") if isinstance(payload, dict) else None
    if not is_valid_orcid(orcid):
        raise OrcidLoginError("ORCID token response has no valid 'orcid' iD", 502)
    return OrcidIdentity(orcid=orcid, name=_clean_name(payload.get("name")))
