"""The ``macrostrat.database.utils`` import layout of earlier releases.

New code should import from the package root or from the focused modules
(`macrostrat.database.admin`, `.engine`, `.postgresql`, `.sequences`,
`.query`); this module re-exports their names so that existing imports keep
working, including the small ORM and reflection helpers (`get_or_create` from
`macrostrat.database.orm`; `reflect_table`, `db_session`, `get_dataframe`,
`allow_shutdown` from ``_helpers``) and the SQL runner's functions from
`macrostrat.database.query`.

The database lifecycle functions here (and at the package root) also take
upstream's parameter names (``_input=``, ``engine=``, ``url=``) with a
``DeprecationWarning``, and ``drop_database(url, force, allow_missing)``
positionally, as upstream did; `macrostrat.database.admin` has them under our
names only.
"""

from __future__ import annotations

import logging
import warnings
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine

from . import admin as _admin
from ._helpers import allow_shutdown, db_session, get_dataframe, reflect_table
from ._renamed import renamed_parameters
from .admin import DatabaseTarget
from .engine import DatabaseInput, create_engine
from .orm import get_or_create
from .query import (
    execute,
    get_sql_text,
    run_fixtures,
    run_query,
    run_sql,
    run_sql_file,
)

if TYPE_CHECKING:
    from .core import Database

__all__ = [
    "DatabaseInput",
    "DatabaseTarget",
    "allow_shutdown",
    "close_all_connections",
    "connection_args",
    "create_database",
    "create_engine",
    "database_exists",
    "db_isready",
    "db_session",
    "drop_database",
    "execute",
    "get_database_url",
    "get_dataframe",
    "get_db_model",
    "get_or_create",
    "get_sql_text",
    "reflect_table",
    "run_fixtures",
    "run_query",
    "run_sql",
    "run_sql_file",
    "temp_database",
    "template_database",
    "temporary_database",
    "wait_for_database",
]

log = logging.getLogger(__name__)

_input_is_target = renamed_parameters({"_input": "target"})

# Upstream's names for the first parameter (and drop_database's positions).
close_all_connections = renamed_parameters({"engine": "target"})(
    _admin.close_all_connections
)
connection_args = _input_is_target(_admin.connection_args)
create_database = _input_is_target(_admin.create_database)
database_exists = renamed_parameters({"url": "target"})(_admin.database_exists)
db_isready = _input_is_target(_admin.db_isready)
drop_database = renamed_parameters(
    {"_input": "target"}, positional=("force", "allow_missing")
)(_admin.drop_database)
get_database_url = _input_is_target(_admin.get_database_url)
template_database = _input_is_target(_admin.template_database)
temporary_database = _input_is_target(_admin.temporary_database)
wait_for_database = _input_is_target(_admin.wait_for_database)


def temp_database(*args: Any, **kwargs: Any) -> AbstractContextManager[Engine]:
    """Deprecated alias of `temporary_database` (same arguments)."""
    warnings.warn(
        "temp_database is deprecated; use temporary_database",
        DeprecationWarning,
        stacklevel=2,
    )
    return temporary_database(*args, **kwargs)


@renamed_parameters({"model_name": "name"})  # upstream's name
def get_db_model(db: Database, name: str) -> Any:
    """The automapped model called ``name`` (``db.model.<name>``).

    Raises:
        AttributeError: the database has no such model.
    """
    return getattr(db.model, name)
