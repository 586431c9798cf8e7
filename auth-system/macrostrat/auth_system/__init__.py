"""macrostrat.auth_system."""

from importlib.metadata import version as _version

__version__ = _version("macrostrat.auth_system")

__all__ = ["__version__"]
