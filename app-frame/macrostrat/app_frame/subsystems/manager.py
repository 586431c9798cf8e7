"""`SubsystemManager`: collect subsystems, order them by dependency, run hooks."""

from __future__ import annotations

import graphlib
import importlib.metadata
import logging
from collections.abc import Callable, Iterable, Iterator
from types import ModuleType
from typing import Any

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version

from ..errors import SubsystemError
from .defs import CoreSubsystem, Subsystem

__all__ = ["SubsystemManager", "installed_app_version"]

log = logging.getLogger(__name__)

PluginSpec = Subsystem | type[Subsystem]
"""A subsystem instance, or a subsystem class instantiated at `finalize`."""


def _name_of(plugin: PluginSpec) -> str:
    name = plugin.name
    if name:
        return name
    cls = plugin if isinstance(plugin, type) else type(plugin)
    return cls.__qualname__


def _version_of(app: Any) -> str | None:
    """The app's `version`, else the installed version of its package."""
    version = getattr(app, "version", None)
    if version is not None:
        return str(version)
    return installed_app_version(app)


def _app_name(app: Any) -> str:
    return str(getattr(app, "name", None) or "the application")


def _module_candidates(app: Any) -> list[str]:
    """Module or distribution names the app's package may be installed under."""
    names = []
    app_module = getattr(app, "app_module", None)
    if isinstance(app_module, str) and app_module:
        names.append(app_module)
    module = type(app).__module__
    if (
        module
        and module != "__main__"
        and not module.startswith(("macrostrat.app_frame", "builtins"))
    ):
        names.append(module)
    command_name = getattr(app, "command_name", None)
    if isinstance(command_name, str) and command_name:
        names.append(command_name)
    return names


def installed_app_version(app: Any) -> str | None:
    """The installed distribution version of the app's package, if one is found.

    Tried in turn: the app's `app_module` attribute, the module that defines
    the app's class (unless it is `macrostrat.app_frame` itself or
    `__main__`), and its `command_name`. For a dotted module name the longest
    prefix that names an installed distribution wins (`myapp.cli` ->
    `myapp.cli`, then `myapp`); a top-level package provided by exactly one
    distribution also counts.

    Args:
        app: The application.

    Returns:
        The version string, or `None` when no candidate is installed.
    """
    try:
        providers = importlib.metadata.packages_distributions()
    except Exception:  # unreadable metadata must not break version checks
        providers = {}
    for name in _module_candidates(app):
        parts = name.split(".")
        for end in range(len(parts), 0, -1):
            prefix = ".".join(parts[:end])
            try:
                return importlib.metadata.version(prefix)
            except (importlib.metadata.PackageNotFoundError, ValueError):
                pass
        dists = providers.get(parts[0], [])
        if len(set(dists)) == 1:
            return importlib.metadata.version(dists[0])
    return None


class SubsystemManager:
    """Collect an application's subsystems, load them in dependency order, run hooks.

    Add subsystems (instances, or classes that are instantiated with the app)
    with `add`, `add_all` or `add_module`, then call `finalize(app)`: the
    subsystems are ordered so that each comes after its `dependencies`
    (otherwise in the order they were added), classes are instantiated, those
    whose `should_enable(manager)` is false are dropped, and each
    `app_version` specifier is checked against the app's `version` (or,
    without one, the installed version of its package). After
    that the manager iterates over the loaded subsystems and `run_hook` calls
    their `on_<hook>` methods in that order.

    Every problem (an unnamed or duplicate subsystem, a missing dependency, a
    cycle, an incompatible or unparsable version, a constructor that fails)
    raises [`SubsystemError`][macrostrat.app_frame.SubsystemError] naming
    the subsystems concerned.

    Args:
        subsystem_cls: The base class every subsystem must derive from.
        app: The application, if known now; then `add` checks versions at
            once instead of at `finalize`.

    Raises:
        TypeError: `subsystem_cls` is not a `Subsystem` subclass.
    """

    def __init__(
        self, subsystem_cls: type[Subsystem] = Subsystem, *, app: Any = None
    ) -> None:
        if not (
            isinstance(subsystem_cls, type) and issubclass(subsystem_cls, Subsystem)
        ):
            raise TypeError(
                f"subsystem_cls must be a Subsystem subclass, not {subsystem_cls!r}"
            )
        self._subsystem_cls = subsystem_cls
        self._app = app
        self._init_store: list[PluginSpec] | None = []
        self._store: list[Subsystem] | None = None
        self._hooks_fired: list[str] = []

    # -- state --------------------------------------------------------------

    @property
    def is_ready(self) -> bool:
        """Whether `finalize` has run."""
        return self._store is not None

    @property
    def hooks_fired(self) -> tuple[str, ...]:
        """The hooks run so far by this manager, in order."""
        return tuple(self._hooks_fired)

    def __iter__(self) -> Iterator[Subsystem]:
        """Iterate over the loaded subsystems in dependency order.

        Raises:
            SubsystemError: `finalize` has not run yet.
        """
        if self._store is None:
            raise SubsystemError("Cannot list subsystems until loading is finished.")
        return iter(list(self._store))

    # -- adding -------------------------------------------------------------

    def add(self, plugin: PluginSpec) -> None:
        """Add a subsystem (an instance, or a class instantiated at `finalize`).

        An instance whose `should_enable(manager)` is false is ignored.

        Args:
            plugin: The subsystem.

        Raises:
            SubsystemError: the manager is already finalized, `plugin` is not a
                subsystem of the expected class, or (when the app is known) its
                `app_version` does not match.
        """
        name = _name_of(plugin) if hasattr(plugin, "name") else repr(plugin)
        if self._init_store is None:
            raise SubsystemError(
                f"Cannot add subsystem {name}: subsystems are already loaded"
            )
        base = self._subsystem_cls
        is_class = isinstance(plugin, type) and issubclass(plugin, base)
        if not is_class and not isinstance(plugin, base):
            raise SubsystemError(
                f"Cannot add {plugin!r}: expected a {base.__name__} subclass or instance"
            )
        if not is_class:
            assert isinstance(plugin, Subsystem)
            if not plugin.should_enable(self):
                log.info("Subsystem %s is disabled", name)
                return
        if self._app is not None:
            self._check_version(plugin, self._app)
        self._init_store.append(plugin)

    def add_all(self, *plugins: PluginSpec) -> None:
        """Add several subsystems in turn (see `add`)."""
        for plugin in plugins:
            self.add(plugin)

    def add_module(self, module: ModuleType) -> None:
        """Add every named subsystem class defined or imported in `module`.

        Other attributes (functions, constants, non-subsystem classes) are
        ignored, and so are classes without a `name` (abstract bases such as
        `Subsystem` itself).
        """
        skip = {Subsystem, CoreSubsystem, self._subsystem_cls}
        for obj in list(vars(module).values()):
            if (
                isinstance(obj, type)
                and issubclass(obj, self._subsystem_cls)
                and obj not in skip
                and obj.name
            ):
                self.add(obj)

    # -- ordering and loading ---------------------------------------------

    def order_plugins(
        self, store: Iterable[PluginSpec] | None = None
    ) -> list[PluginSpec]:
        """Return the subsystems ordered so that dependencies come first.

        Subsystems that do not depend on each other keep the order they were
        added in.

        Args:
            store: The subsystems to order; by default those added so far.

        Raises:
            SubsystemError: a subsystem has no name, two share a name, a
                dependency is missing, or the dependencies form a cycle.
        """
        plugins = list((self._init_store or []) if store is None else store)
        by_name: dict[str, PluginSpec] = {}
        for plugin in plugins:
            if not plugin.name:
                raise SubsystemError(
                    f"Subsystem {_name_of(plugin)} has no name; set the `name` "
                    "class attribute so that others can depend on it"
                )
            if plugin.name in by_name:
                raise SubsystemError(f"Two subsystems are named {plugin.name!r}")
            by_name[plugin.name] = plugin
        graph = {name: list(p.dependencies or []) for name, p in by_name.items()}
        for name, deps in graph.items():
            missing = [dep for dep in deps if dep not in by_name]
            if missing:
                raise SubsystemError(
                    f"Subsystem {name!r} depends on {', '.join(map(repr, missing))}, "
                    "which is not loaded",
                    details=f"Loaded subsystems: {', '.join(by_name) or 'none'}",
                )
        try:
            graphlib.TopologicalSorter(graph).prepare()
        except graphlib.CycleError as exc:
            cycle = " -> ".join(exc.args[1])
            raise SubsystemError(
                f"Subsystem dependencies form a cycle: {cycle}"
            ) from exc
        ordered: list[str] = []
        done: set[str] = set()
        while len(ordered) < len(graph):
            for name, deps in graph.items():
                if name not in done and all(dep in done for dep in deps):
                    ordered.append(name)
                    done.add(name)
                    break
        return [by_name[name] for name in ordered]

    def finalize(self, app: Any) -> None:
        """Load the subsystems for `app`; after this no more can be added.

        Classes are instantiated with `app` in dependency order; a subsystem
        instance must have been created for this same `app`.

        Raises:
            SubsystemError: see `order_plugins`; also when a subsystem was made
                for another app, its constructor fails, its `app_version` does
                not match, or a loaded subsystem depends on a disabled one.
        """
        if self._store is not None or self._init_store is None:
            raise SubsystemError("Subsystems are already loaded")
        self._app = app
        loaded: list[Subsystem] = []
        disabled: set[str] = set()
        for plugin in self.order_plugins():
            name = _name_of(plugin)
            self._check_version(plugin, app)
            if isinstance(plugin, type):
                try:
                    instance = plugin(app)
                except Exception as exc:
                    raise SubsystemError(
                        f"Could not load subsystem {name}: {exc}"
                    ) from exc
                if not instance.should_enable(self):
                    log.info("Subsystem %s is disabled", name)
                    disabled.add(name)
                    continue
            else:
                if plugin.app is not app:
                    raise SubsystemError(
                        f"Subsystem {name} was initialized against the wrong app"
                    )
                instance = plugin
            needs = [dep for dep in instance.dependencies or [] if dep in disabled]
            if needs:
                raise SubsystemError(
                    f"Subsystem {name} depends on {', '.join(needs)}, which is disabled"
                )
            loaded.append(instance)
        self._store = loaded
        self._init_store = None

    def _check_version(self, plugin: PluginSpec, app: Any) -> None:
        if not self._is_compatible(plugin, app):
            raise SubsystemError(
                f"Subsystem {_name_of(plugin)} requires {_app_name(app)} "
                f"{plugin.app_version}, but its version is {_version_of(app)}"
            )

    def _is_compatible(self, plugin: PluginSpec, app: Any = None) -> bool:
        """Whether the app's version satisfies the subsystem's `app_version`.

        The version is the app's `version`, else the installed distribution
        version of its package (see `installed_app_version`).
        """
        spec = plugin.app_version
        if spec is None:
            return True
        app = self._app if app is None else app
        name = _name_of(plugin)
        version = _version_of(app)
        if version is None:
            tried = ", ".join(_module_candidates(app)) or "none"
            raise SubsystemError(
                f"Subsystem {name} requires {_app_name(app)} {spec}, "
                "but the application declares no version and no installed "
                "distribution gives one",
                details=(
                    "Pass version=... to Application, or set its app_module to "
                    f"the app's installed package (tried: {tried})."
                ),
            )
        try:
            specifiers = SpecifierSet(spec, prereleases=True)
        except InvalidSpecifier as exc:
            raise SubsystemError(
                f"Subsystem {name} has an invalid app_version {spec!r}"
            ) from exc
        try:
            parsed = Version(str(version))
        except InvalidVersion as exc:
            raise SubsystemError(
                f"{_app_name(app)} has an invalid version {version!r}"
            ) from exc
        return parsed in specifiers

    # -- lookup and hooks -----------------------------------------------------

    def get(self, name: str) -> Subsystem:
        """Return the loaded subsystem called `name`.

        Raises:
            AttributeError: no loaded subsystem has that name.
            SubsystemError: `finalize` has not run yet.
        """
        for subsystem in self:
            if subsystem.name == name:
                return subsystem
        raise AttributeError(f"Subsystem {name} not found")

    def _iter_hooks(self, hook_name: str) -> Iterator[Callable[..., Any]]:
        method = "on_" + hook_name.replace("-", "_")
        for subsystem in self:
            hook = getattr(subsystem, method, None)
            if callable(hook):
                log.info("  subsystem: %s", _name_of(subsystem))
                yield hook

    def run_hook(self, hook_name: str, *args: Any, **kwargs: Any) -> None:
        """Call `on_<hook_name>` (dashes become underscores) on every subsystem.

        Subsystems without that method are skipped. The hook name is recorded
        in this manager's `hooks_fired`.
        """
        self._hooks_fired.append(hook_name)
        for hook in self._iter_hooks(hook_name):
            hook(*args, **kwargs)
