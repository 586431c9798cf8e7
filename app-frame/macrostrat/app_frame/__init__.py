"""macrostrat.app_frame."""

from importlib.metadata import version as _version

__version__ = _version("macrostrat.app_frame")

__all__ = ["__version__"]
