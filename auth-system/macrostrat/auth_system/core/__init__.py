"""API tokens, groups and scopes on PostgreSQL tables (``macrostrat_auth``).

Typical use with FastAPI::

    from macrostrat.auth_system.core import connect_engine, has_access

    connect_engine(os.environ["DATABASE_URL"], token_key=os.environ["TOKEN_KEY"])

    @app.get("/data")
    def data(access: bool = Depends(has_access)): ...

The user comes from the access cookie issued by the configured
`macrostrat.auth_system.legacy.JWTBackend` (password or ORCID login); API
tokens come in an ``Authorization: Bearer`` header. See `main` for the rules.

Upstream's modules `main`, `database`, `model` and `schema` keep their
names; the implementation modules (``_store``, ``_ddl``, ``_tokens``,
``_identity``, ``_throttle``, ``_revocations``) are private: import their
names from here.
"""

from __future__ import annotations

from ._ddl import auth_schema_sql, create_auth_schema
from ._identity import DatabaseIdentityProvider, DatabaseUser
from ._revocations import REVOCATION_TABLE, DatabaseRevocationStore
from ._store import TOKEN_KEY_ENV, AuthDatabase
from ._throttle import THROTTLE_TABLE, DatabaseThrottleStore
from ._tokens import generate_api_token, hash_api_token
from .database import (
    connect_engine,
    dispose_engine,
    get_access_token,
    get_auth_database,
    get_base,
    get_database,
    get_engine,
    get_session,
    get_session_maker,
    set_auth_database,
    use_auth_database,
)
from .main import (
    get_groups,
    get_groups_from_header_token,
    get_scopes,
    get_user_id,
    get_user_token_from_cookie,
    has_access,
    require_scopes,
)
from .model import AccessToken, GroupTokenRequest, TokenData, UserInfo
from .schema import (
    SCHEMA,
    Base,
    Group,
    GroupMembers,
    LoginThrottleEntry,
    RevokedToken,
    Token,
    User,
)

__all__ = [
    "REVOCATION_TABLE",
    "SCHEMA",
    "THROTTLE_TABLE",
    "TOKEN_KEY_ENV",
    "AccessToken",
    "AuthDatabase",
    "Base",
    "DatabaseIdentityProvider",
    "DatabaseRevocationStore",
    "DatabaseThrottleStore",
    "DatabaseUser",
    "Group",
    "GroupMembers",
    "GroupTokenRequest",
    "LoginThrottleEntry",
    "RevokedToken",
    "Token",
    "TokenData",
    "User",
    "UserInfo",
    "auth_schema_sql",
    "connect_engine",
    "create_auth_schema",
    "dispose_engine",
    "generate_api_token",
    "get_access_token",
    "get_auth_database",
    "get_base",
    "get_database",
    "get_engine",
    "get_groups",
    "get_groups_from_header_token",
    "get_scopes",
    "get_session",
    "get_session_maker",
    "get_user_id",
    "get_user_token_from_cookie",
    "has_access",
    "hash_api_token",
    "require_scopes",
    "set_auth_database",
    "use_auth_database",
]
