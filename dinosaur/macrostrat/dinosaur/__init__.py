"""macrostrat.dinosaur."""

from importlib.metadata import version as _version

__version__ = _version("macrostrat.dinosaur")

__all__ = ["__version__"]
