"""The publish decision for one package: private, unclassified, published, or to publish.

Shared by `publish` (the plan) and `legacy_publish` (upstream's
``package_exists``), below both.
"""

from __future__ import annotations

import enum
import os
from collections.abc import Mapping
from dataclasses import dataclass

from .index import published_files
from .workspace import PRIVATE_CLASSIFIER, Package

__all__ = ["Action", "PublishItem", "decide", "upload_env_for"]


class Action(str, enum.Enum):
    """What `publish_packages` does with a package."""

    PUBLISH = "publish"
    PRIVATE = "private"
    NO_CLASSIFIERS = "no-classifiers"
    PUBLISHED = "published"


@dataclass(frozen=True)
class PublishItem:
    """The decision for one package.

    Attributes:
        package: The package.
        action: What happens to it.
        reason: Why, in words.
        existing: Its current version's files already on the index.
        verify: Its current version is on the index without our release
            tag: it is built and compared with the files there before
            anything is uploaded.
    """

    package: Package
    action: Action
    reason: str
    existing: frozenset[str] = frozenset()
    verify: bool = False


def decide(package: Package, check_url: str, timeout: float) -> PublishItem:
    """What publishing does with ``package``, from its classifiers and the index.

    Parameters:
        package: the package.
        check_url: the simple index to ask which of its files exist.
        timeout: seconds to wait for the index.

    Raises:
        IndexQueryError: the index cannot be asked.
    """
    if package.private:
        return PublishItem(package, Action.PRIVATE, f"marked {PRIVATE_CLASSIFIER!r}")
    if not package.classifiers:
        return PublishItem(
            package,
            Action.NO_CLASSIFIERS,
            f"has no classifiers (add some, or {PRIVATE_CLASSIFIER!r} to keep it private)",
        )
    existing = published_files(
        check_url, package.name, package.version, timeout=timeout
    )
    wheel = any(name.endswith(".whl") for name in existing)
    sdist = any(not name.endswith(".whl") for name in existing)
    if wheel and sdist:
        return PublishItem(package, Action.PUBLISHED, "already on the index", existing)
    if existing:
        reason = f"partly uploaded ({', '.join(sorted(existing))}); uploading the rest"
        return PublishItem(package, Action.PUBLISH, reason, existing)
    return PublishItem(package, Action.PUBLISH, "not on the index yet")


def upload_env_for(env: Mapping[str, str] | None) -> dict[str, str]:
    """uv's credentials from the environment; a bare password is taken as a token."""
    result = dict(os.environ if env is None else env)
    if result.get("UV_PUBLISH_PASSWORD") and not result.get("UV_PUBLISH_USERNAME"):
        result["UV_PUBLISH_USERNAME"] = "__token__"
    return result
