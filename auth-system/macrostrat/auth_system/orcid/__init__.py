"""ORCID login: the OAuth 2.0 authorization-code flow.

Typical use, beside the password routes::

    from starlette.routing import Router
    from macrostrat.auth_system.legacy import AuthAPI
    from macrostrat.auth_system.orcid import OrcidAPI, OrcidSettings

    orcid = OrcidAPI(OrcidSettings.from_env())  # fails now if misconfigured
    app.mount("/auth", Router([*AuthAPI.routes, *orcid.routes]))

Users are found or created with the identity provider's
``find_or_create_orcid_user`` (see
`macrostrat.auth_system.core.DatabaseIdentityProvider`).
"""

from __future__ import annotations

from ._exchange import OrcidIdentity, exchange_code
from ._routes import OrcidAPI
from ._settings import ORCID_PRODUCTION, ORCID_SANDBOX, OrcidSettings, is_valid_orcid
from ._state import STATE_COOKIE

__all__ = [
    "ORCID_PRODUCTION",
    "ORCID_SANDBOX",
    "STATE_COOKIE",
    "OrcidAPI",
    "OrcidIdentity",
    "OrcidSettings",
    "exchange_code",
    "is_valid_orcid",
]
