"""The package installs as part of the macrostrat namespace."""

from importlib.metadata import version

import macrostrat.package_tools


def test_version_matches_the_distribution():
    assert macrostrat.package_tools.__version__ == version("macrostrat.package_tools")


def test_macrostrat_is_a_namespace_package():
    import macrostrat

    assert getattr(macrostrat, "__file__", None) is None
    assert len(list(macrostrat.__path__)) >= 1
