"""Plain data classes exchanged by the core dependencies (upstream's Pydantic models).

They are standard-library dataclasses, so the package does not need Pydantic;
FastAPI accepts dataclasses as request and response models.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

__all__ = ["AccessToken", "GroupTokenRequest", "TokenData", "UserInfo"]


@dataclass(frozen=True)
class TokenData:
    """Who a request's access cookie names, and that user's group ids."""

    sub: str
    groups: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class UserInfo:
    """Public information about a user (upstream ``model.User``)."""

    username: str
    email: str | None = None
    full_name: str | None = None
    disabled: bool | None = None


@dataclass(frozen=True)
class AccessToken:
    """A newly created API token (the plaintext is shown only once)."""

    group: int
    token: str


@dataclass(frozen=True)
class GroupTokenRequest:
    """A request for an API token: lifetime in seconds and the group."""

    expiration: int
    group_id: int


def __getattr__(name: str) -> Any:
    """Deprecated aliases: ``User`` is now `UserInfo`."""
    if name == "User":
        warnings.warn(
            "macrostrat.auth_system.core.model.User is deprecated; use UserInfo "
            "(core.User is the SQLAlchemy table model)",
            DeprecationWarning,
            stacklevel=2,
        )
        return UserInfo
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
