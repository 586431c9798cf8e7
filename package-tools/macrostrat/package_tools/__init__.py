"""macrostrat.package_tools."""

from importlib.metadata import version as _version

__version__ = _version("macrostrat.package_tools")

__all__ = ["__version__"]
