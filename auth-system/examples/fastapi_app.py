"""Authentication for a FastAPI app in a dozen lines (password, ORCID, API tokens).

Run it with ``uvicorn --factory fastapi_app:create_app`` and these variables:
``SECRET_KEY`` and ``MACROSTRAT_AUTH_TOKEN_KEY`` (the JWT and API-token keys, each
at least 32 bytes), ``DATABASE_URL`` (PostgreSQL), ``ORCID_CLIENT_ID``, ``ORCID_CLIENT_SECRET``, ``ORCID_REDIRECT_URI``
and optionally ``ORCID_BASE_URL`` (``https://sandbox.orcid.org`` to try it out).
Cookies are ``Secure``: serve it over https (or pass ``secure_cookies=False`` to
`create_backend` for local http only).
"""

from __future__ import annotations

import os
from typing import Annotated

from fastapi import Depends, FastAPI
from starlette.routing import Router

from macrostrat.auth_system.core import (
    DatabaseIdentityProvider,
    connect_engine,
    require_scopes,
)
from macrostrat.auth_system.legacy import (
    AuthAPI,
    AuthenticationMiddleware,
    create_backend,
    set_identity_provider,
)
from macrostrat.auth_system.orcid import OrcidAPI, OrcidSettings


def create_app() -> FastAPI:
    """Build the app; every setting is checked here, before it serves a request."""
    backend = create_backend(os.environ["SECRET_KEY"])
    connect_engine(os.environ["DATABASE_URL"], create_schema=True)
    set_identity_provider(DatabaseIdentityProvider())
    orcid = OrcidAPI(OrcidSettings.from_env())

    app = FastAPI()
    app.add_middleware(AuthenticationMiddleware, backend=backend)
    app.mount("/auth", Router([*AuthAPI.routes, *orcid.routes]))

    @app.get("/samples")
    def samples(scopes: Annotated[list[str], Depends(require_scopes("readers"))]):
        """Only members of the ``readers`` group (cookie or API token) get here."""
        return {"samples": ["granite", "basalt"], "scopes": scopes}

    return app
