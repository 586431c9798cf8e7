"""Upstream's ``macrostrat.database.mapper.utils`` import path.

Upstream kept the naming functions and the model/table collections here; they
now live in `macrostrat.database.mapper.naming`, `.collections` and `.base`
and are re-exported so that existing imports keep working.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table

from .base import primary_key
from .collections import ModelCollection, TableCollection
from .legacy import BaseCollection
from .naming import (
    classname_for_table,
    name_for_collection_relationship,
    name_for_scalar_relationship,
    trim_postfix,
)

__all__ = [
    "BaseCollection",
    "ModelCollection",
    "TableCollection",
    "classname_for_table",
    "name_for_collection_relationship",
    "name_for_scalar_relationship",
    "primary_key",
    "trim_postfix",
]


def _classname_for_table(cls: Any, table_name: str, table: Table) -> str:
    """Upstream's automap ``classname_for_table`` hook: the model key of ``table``."""
    return classname_for_table(table)
