"""macrostrat.database."""

from importlib.metadata import version as _version

__version__ = _version("macrostrat.database")

__all__ = ["__version__"]
