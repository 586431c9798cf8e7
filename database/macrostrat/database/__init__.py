"""macrostrat.database: PostgreSQL/PostGIS from Python over SQLAlchemy 2 and psycopg 3."""

from importlib.metadata import version as _version

from .core import Database
from .engine import create_engine, normalize_url

__version__ = _version("macrostrat.database")

__all__ = ["Database", "__version__", "create_engine", "normalize_url"]
