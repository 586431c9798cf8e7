"""`SubsystemManager`: classes and instances, order, errors, versions, hooks."""

from __future__ import annotations

import types

import pytest

from macrostrat.app_frame import (
    Application,
    CoreSubsystem,
    Subsystem,
    SubsystemError,
    SubsystemManager,
)


class Tiles(Subsystem):
    name = "tiles"


class Maps(Subsystem):
    name = "maps"
    dependencies = ["tiles"]


class Search(Subsystem):
    name = "search"
    dependencies = ["maps"]


def app(version: str | None = "2.1.0") -> Application:
    return Application("Host", version=version)


def test_accepts_classes_and_instances_and_keeps_dependency_order():
    """Upstream: add(SomeClass) raised TypeError and the order was a set."""
    host = app()
    mgr = SubsystemManager()
    mgr.add(Search)
    mgr.add(Maps(host))
    mgr.add(Tiles)
    ordered = mgr.order_plugins()
    assert isinstance(ordered, list)
    assert [p.name for p in ordered] == ["tiles", "maps", "search"]
    assert not mgr.is_ready
    with pytest.raises(SubsystemError, match="until loading is finished"):
        list(mgr)
    mgr.finalize(host)
    assert mgr.is_ready
    loaded = list(mgr)
    assert [s.name for s in loaded] == ["tiles", "maps", "search"]
    assert all(s.app is host for s in loaded)
    assert mgr.get("maps").name == "maps"
    with pytest.raises(AttributeError, match="Subsystem nope not found"):
        mgr.get("nope")


def test_independent_subsystems_keep_the_order_they_were_added():
    class B(Subsystem):
        name = "b"

    class A(Subsystem):
        name = "a"

    mgr = SubsystemManager()
    mgr.add_all(B, A)
    assert [p.name for p in mgr.order_plugins()] == ["b", "a"]


def test_missing_dependency_is_named():
    mgr = SubsystemManager()
    mgr.add(Maps)
    with pytest.raises(
        SubsystemError, match="'maps' depends on 'tiles', which is not loaded"
    ):
        mgr.finalize(app())


def test_cycles_are_named():
    class One(Subsystem):
        name = "one"
        dependencies = ["two"]

    class Two(Subsystem):
        name = "two"
        dependencies = ["one"]

    mgr = SubsystemManager()
    mgr.add_all(One, Two)
    with pytest.raises(SubsystemError, match="cycle") as info:
        mgr.order_plugins()
    assert "one" in str(info.value)
    assert "two" in str(info.value)


def test_unnamed_and_duplicate_subsystems():
    class Nameless(Subsystem):
        pass

    mgr = SubsystemManager()
    mgr.add(Nameless)
    with pytest.raises(SubsystemError, match="Nameless has no name"):
        mgr.order_plugins()
    mgr2 = SubsystemManager()
    mgr2.add_all(Tiles, Tiles)
    with pytest.raises(SubsystemError, match="Two subsystems are named 'tiles'"):
        mgr2.order_plugins()


def test_app_version_is_checked_against_the_real_version():
    """Upstream built Version() without arguments (TypeError) for any app_version."""

    class NeedsTwo(Subsystem):
        name = "needs-two"
        app_version = ">=2.0,<3"

    class NeedsThree(Subsystem):
        name = "needs-three"
        app_version = ">=3"

    ok = SubsystemManager()
    ok.add(NeedsTwo)
    ok.finalize(app("2.1.0"))
    assert [s.name for s in ok] == ["needs-two"]

    bad = SubsystemManager()
    bad.add(NeedsThree)
    with pytest.raises(
        SubsystemError,
        match=r"needs-three requires Host >=3, but its version is 2\.1\.0",
    ):
        bad.finalize(app("2.1.0"))

    early = SubsystemManager(app=app("2.1.0"))
    with pytest.raises(SubsystemError, match="needs-three"):
        early.add(NeedsThree)

    unversioned = SubsystemManager()
    unversioned.add(NeedsTwo)
    with pytest.raises(SubsystemError, match="declares no version"):
        unversioned.finalize(app(None))


def test_invalid_specifier_is_reported():
    class Weird(Subsystem):
        name = "weird"
        app_version = "not a specifier"

    mgr = SubsystemManager()
    mgr.add(Weird)
    with pytest.raises(SubsystemError, match="invalid app_version 'not a specifier'"):
        mgr.finalize(app())


def test_should_enable_works_for_classes_and_instances():
    """Upstream called should_enable unbound on classes (TypeError)."""

    class Off(Subsystem):
        name = "off"

        def should_enable(self, mgr):
            return False

    class NeedsOff(Subsystem):
        name = "needs-off"
        dependencies = ["off"]

    host = app()
    mgr = SubsystemManager()
    mgr.add(Off)
    mgr.add(Tiles)
    mgr.finalize(host)
    assert [s.name for s in mgr] == ["tiles"]

    instance_mgr = SubsystemManager()
    instance_mgr.add(Off(host))
    assert instance_mgr.order_plugins() == []

    dependent = SubsystemManager()
    dependent.add_all(Off, NeedsOff)
    with pytest.raises(
        SubsystemError, match="needs-off depends on off, which is disabled"
    ):
        dependent.finalize(host)


def test_instances_must_belong_to_the_app_and_add_after_finalize_fails():
    mgr = SubsystemManager()
    mgr.add(Tiles(app()))
    with pytest.raises(SubsystemError, match="wrong app"):
        mgr.finalize(app())

    done = SubsystemManager()
    done.finalize(app())
    with pytest.raises(SubsystemError, match="already loaded"):
        done.add(Tiles)
    with pytest.raises(SubsystemError, match="already loaded"):
        done.finalize(app())


def test_failing_constructor_is_wrapped():
    class Broken(Subsystem):
        name = "broken"

        def __init__(self, app):
            raise RuntimeError("no config")

    mgr = SubsystemManager()
    mgr.add(Broken)
    with pytest.raises(
        SubsystemError, match="Could not load subsystem broken: no config"
    ) as info:
        mgr.finalize(app())
    assert isinstance(info.value.__cause__, RuntimeError)


def test_wrong_types_are_rejected():
    with pytest.raises(TypeError):
        SubsystemManager(int)  # type: ignore[arg-type]

    class Special(Subsystem):
        name = "special"

    mgr = SubsystemManager(Special)
    with pytest.raises(SubsystemError, match="expected a Special"):
        mgr.add(Tiles)
    with pytest.raises(SubsystemError, match="expected a Subsystem"):
        SubsystemManager().add(42)  # type: ignore[arg-type]


def test_add_module_skips_non_classes_and_bases():
    """Upstream called issubclass() on every module attribute (TypeError)."""
    module = types.ModuleType("plugins")
    module.CONSTANT = 3
    module.helper = lambda: None
    module.Subsystem = Subsystem
    module.CoreSubsystem = CoreSubsystem
    module.Tiles = Tiles
    module.Maps = Maps
    module.dict_class = dict
    mgr = SubsystemManager()
    mgr.add_module(module)
    mgr.finalize(app())
    assert [s.name for s in mgr] == ["tiles", "maps"]


def test_hooks_run_in_order_and_bookkeeping_is_per_manager():
    calls = []

    class First(Subsystem):
        name = "first"

        def on_app_start(self, value):
            calls.append(("first", value))

    class Second(Subsystem):
        name = "second"
        dependencies = ["first"]

        def on_app_start(self, value):
            calls.append(("second", value))

    host = app()
    mgr = SubsystemManager()
    mgr.add_all(Second, First, Tiles)
    mgr.finalize(host)
    mgr.run_hook("app-start", 7)
    assert calls == [("first", 7), ("second", 7)]
    assert mgr.hooks_fired == ("app-start",)
    other = SubsystemManager()
    other.finalize(host)
    assert other.hooks_fired == ()


def test_app_version_falls_back_to_the_installed_distribution():
    """Apps that do not pass version= got "declares no version" for any app_version."""
    import importlib.metadata

    from macrostrat.app_frame.subsystems import installed_app_version

    class NeedsPytest(Subsystem):
        name = "needs-pytest"
        app_version = ">=1"

    class NeedsOldPytest(Subsystem):
        name = "needs-old-pytest"
        app_version = "<1"

    pytest_version = importlib.metadata.version("pytest")
    # The command name names the installed distribution.
    by_command = Application("PyTest Host", command_name="pytest")
    assert installed_app_version(by_command) == pytest_version
    ok = SubsystemManager()
    ok.add(NeedsPytest)
    ok.finalize(by_command)
    assert [s.name for s in ok] == ["needs-pytest"]
    bad = SubsystemManager()
    bad.add(NeedsOldPytest)
    with pytest.raises(SubsystemError, match=f"its version is {pytest_version}"):
        bad.finalize(Application("PyTest Host", command_name="pytest"))

    # app_module, and the module defining an Application subclass (longest
    # installed prefix of a dotted name).
    by_module = Application("Host")
    by_module.app_module = "packaging.version"  # type: ignore[attr-defined]
    assert installed_app_version(by_module) == importlib.metadata.version("packaging")

    class PackagedApp(Application):
        pass

    PackagedApp.__module__ = "macrostrat.app_frame_demo_missing.cli"
    assert installed_app_version(PackagedApp("Host")) is None
    PackagedApp.__module__ = "typer.main"
    assert installed_app_version(PackagedApp("Host")) == importlib.metadata.version(
        "typer"
    )

    # An explicit version still wins over the installed one.
    explicit = Application("PyTest Host", command_name="pytest", version="0.5")
    bad = SubsystemManager()
    bad.add(NeedsOldPytest)
    bad.finalize(explicit)
    assert [s.name for s in bad] == ["needs-old-pytest"]
