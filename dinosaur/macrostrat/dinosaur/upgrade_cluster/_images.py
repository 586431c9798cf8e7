"""The PostgreSQL images an upgrade runs: one per major version, and a helper image.

Below `describe` and `upgrade` (both use them); `upgrade` re-exports both
names, their documented import path.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from ..cluster.docker import image_available
from ..errors import DatabaseUpgradeError

if TYPE_CHECKING:
    from docker import DockerClient

__all__ = ["default_version_images", "helper_image"]

default_version_images: dict[int, str] = {
    11: "mdillon/postgis:11",
    14: "postgis/postgis:14-3.3",
    15: "postgis/postgis:15-3.3",
    16: "postgis/postgis:16-3.4",
    17: "postgis/postgis:17-3.5",
}
"""PostgreSQL major → the PostGIS image that runs it (upstream's two, plus newer)."""


def helper_image(
    client: DockerClient, version_images: Mapping[int, str] | None = None
) -> str:
    """A PostgreSQL image present locally, for helper commands (``cat``, ``cp``)."""
    images = dict(version_images or default_version_images)
    for version in sorted(images, reverse=True):
        if image_available(client, images[version]):
            return images[version]
    raise DatabaseUpgradeError(
        "no PostgreSQL image is present locally to run helper commands in "
        f"(looked for {', '.join(images.values())})"
    )
