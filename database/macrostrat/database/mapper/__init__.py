"""Automapped ORM models: one base per `Database`, naming rules and a safe cache.

- `DatabaseMapper`: reflects schemas and maps their tables (and views given a
  primary key) on a base of its own, each model on first use by default
  (`macrostrat.database.mapper.lazy`).
- `ModelCollection` / `TableCollection`: the mapped classes and tables by key.
- `ModelHelperMixins`: ``to_dict()`` and ``__repr__`` on every model.
- `DatabaseModelCache`: reflected definitions on disk, checked before unpickling,
  invalidated by a catalog fingerprint and loaded one table at a time.
- `macrostrat.database.mapper.naming`: model keys and relationship names.
- `AutomapError`, `BaseModel`, `model_builder`: upstream's names
  (`macrostrat.database.mapper.legacy`).
"""

from .automap import DatabaseMapper, ViewSpec
from .base import ModelHelperMixins, primary_key
from .cache import DatabaseModelCache, catalog_fingerprint
from .collections import ModelCollection, TableCollection
from .legacy import AutomapError, BaseModel, model_builder
from .naming import (
    RelationshipNamer,
    classname_for_table,
    model_key,
    name_for_collection_relationship,
    name_for_scalar_relationship,
    parse_table_name,
)

__all__ = [
    "AutomapError",
    "BaseModel",
    "DatabaseMapper",
    "DatabaseModelCache",
    "ModelCollection",
    "ModelHelperMixins",
    "RelationshipNamer",
    "TableCollection",
    "ViewSpec",
    "catalog_fingerprint",
    "classname_for_table",
    "model_builder",
    "model_key",
    "name_for_collection_relationship",
    "name_for_scalar_relationship",
    "parse_table_name",
    "primary_key",
]
