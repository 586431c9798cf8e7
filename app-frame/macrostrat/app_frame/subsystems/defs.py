"""Base classes shared by the application and its subsystems."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar, Protocol

# Upstream defined SubsystemError here; it lives in `errors` now.
from ..errors import SubsystemError as SubsystemError

__all__ = ["ApplicationBase", "CoreSubsystem", "Subsystem", "SubsystemLookup"]


class ApplicationBase:
    """What subsystems and compose helpers may rely on in an application.

    [`Application`][macrostrat.app_frame.Application] is the concrete class;
    this base exists so that subsystems can be typed without importing it.

    Attributes:
        name: The human-readable name, e.g. `"Macrostrat"`.
        command_name: The name of the control command, e.g. `"macrostrat"`.
        project_prefix: Used as `COMPOSE_PROJECT_NAME`.
        envvar_prefix: The prefix of the app's environment variables, e.g.
            `"MACROSTRAT_"`.
        version: The application's version (checked against
            `Subsystem.app_version`), or `None` when it declares none.
        app_module: The module the application lives in, if known.
    """

    name: str
    command_name: str
    project_prefix: str
    envvar_prefix: str
    version: str | None = None
    app_module: str | None = None
    # Set by the app's `DockerComposeManager`, where the compose commands find it.
    _compose_manager: CoreSubsystem


class Subsystem:
    """A pluggable part of an application, managed by a `SubsystemManager`.

    Subclasses set `name` (required for ordering), `dependencies` (names of
    subsystems that must load first) and optionally `app_version`, a PEP 440
    specifier (e.g. `">=2.0"`) that the application's `version` must satisfy.
    Hooks are methods named `on_<hook>` (`run_hook("app-start")` calls
    `on_app_start`).

    Args:
        app: The application the subsystem belongs to.
    """

    name: ClassVar[str | None] = None
    dependencies: ClassVar[list[str]] = []
    app_version: ClassVar[str | None] = None

    def __init__(self, app: Any) -> None:
        self.app = app

    def should_enable(self, mgr: SubsystemLookup) -> bool:
        """Tell whether this subsystem should be loaded (default: always).

        Called on the instance, also for subsystems that were added as
        classes (after they are instantiated at `finalize`).

        Args:
            mgr: The manager that is loading it (a `SubsystemManager`).
        """
        return True


class SubsystemLookup(Protocol):
    """What a subsystem may ask of the manager loading it (`should_enable`'s `mgr`).

    [`SubsystemManager`][macrostrat.app_frame.SubsystemManager] implements
    it; the protocol lets these base classes (below the manager) name it
    without importing it.
    """

    @property
    def is_ready(self) -> bool:
        """Whether loading is finished (the subsystems can be listed)."""
        ...

    def get(self, name: str) -> Subsystem:
        """The loaded subsystem called `name` (once loading is finished)."""
        ...

    def __iter__(self) -> Iterator[Subsystem]:
        """The loaded subsystems in dependency order (once loading is finished)."""
        ...


class CoreSubsystem(Subsystem):
    """Marker base class for subsystems that every app of a kind has.

    [`DockerComposeManager`][macrostrat.app_frame.DockerComposeManager] is one.
    """
