"""macrostrat.utils."""

from importlib.metadata import version as _version

__version__ = _version("macrostrat.utils")

__all__ = ["__version__"]
