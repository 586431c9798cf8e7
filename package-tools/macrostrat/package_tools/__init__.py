"""Version, check, build and publish the packages of a uv workspace.

The `mono` command line (`macrostrat.package_tools:mono`) is a thin layer
over the functions here:

- [`load_workspace`][macrostrat.package_tools.load_workspace] finds the
  packages, their versions and their dependencies on each other;
- [`write_changeset`][macrostrat.package_tools.write_changeset] records a
  change, [`plan_versions`][macrostrat.package_tools.plan_versions] and
  [`apply_versions`][macrostrat.package_tools.apply_versions] turn the
  recorded changes into versions, dependency floors and CHANGELOG sections;
- [`workspace_status`][macrostrat.package_tools.workspace_status] finds what
  would fail a release, and
  [`check_index`][macrostrat.package_tools.check_index] what clashes with
  the versions a package index has released;
- [`build_packages`][macrostrat.package_tools.build_packages] and
  [`check_wheels`][macrostrat.package_tools.check_wheels] build and check;
- [`plan_publish`][macrostrat.package_tools.plan_publish] and
  [`publish_packages`][macrostrat.package_tools.publish_packages] upload and tag.

The library logs (logger `macrostrat.package_tools`) and never prints.
"""

import logging
from importlib.metadata import version as _version

from ._process import Command
from .build import Built, build_packages, check_wheels, wheel_problems
from .changesets import (
    ChangeKind,
    Changeset,
    load_changesets,
    parse_changeset,
    write_changeset,
)
from .cli import mono
from .errors import (
    ChangesetError,
    CheckError,
    CommandError,
    IndexQueryError,
    MetadataCheckError,
    PackageToolsError,
    PublishError,
    VersioningError,
    WorkspaceError,
)
from .index import IndexFile, published_files, released_versions
from .index_check import IndexCheck, PackageReleases, check_index, verify_files
from .install import install_commands, install_packages
from .publish import (
    Action,
    PublishItem,
    PublishPlan,
    PublishResult,
    plan_publish,
    publish_packages,
    readiness_problems,
)
from .status import PackageStatus, StatusReport, workspace_status
from .versioning import (
    Release,
    VersionPlan,
    apply_versions,
    bump_version,
    floor_problem,
    plan_versions,
    raise_floor,
)
from .workspace import (
    PRIVATE_CLASSIFIER,
    Bump,
    Dependency,
    Package,
    Workspace,
    WorkspaceConfig,
    find_workspace_root,
    load_workspace,
)

__version__ = _version("macrostrat.package_tools")

__all__ = [
    "PRIVATE_CLASSIFIER",
    "Action",
    "Built",
    "Bump",
    "ChangeKind",
    "Changeset",
    "ChangesetError",
    "CheckError",
    "Command",
    "CommandError",
    "Dependency",
    "IndexCheck",
    "IndexFile",
    "IndexQueryError",
    "MetadataCheckError",
    "Package",
    "PackageReleases",
    "PackageStatus",
    "PackageToolsError",
    "PublishError",
    "PublishItem",
    "PublishPlan",
    "PublishResult",
    "Release",
    "StatusReport",
    "VersionPlan",
    "VersioningError",
    "Workspace",
    "WorkspaceConfig",
    "WorkspaceError",
    "__version__",
    "apply_versions",
    "build_packages",
    "bump_version",
    "check_index",
    "check_wheels",
    "find_workspace_root",
    "floor_problem",
    "install_commands",
    "install_packages",
    "load_changesets",
    "load_workspace",
    "mono",
    "parse_changeset",
    "plan_publish",
    "plan_versions",
    "publish_packages",
    "published_files",
    "raise_floor",
    "readiness_problems",
    "released_versions",
    "verify_files",
    "wheel_problems",
    "workspace_status",
    "write_changeset",
]

logging.getLogger(__name__).addHandler(logging.NullHandler())
