"""Introspection of lazily mapped models sees whole classes, as eager automap does.

A lazy mapper maps a class reached through a relationship (a *neighbour*)
with its columns and only the relationships made so far; it completes itself
on first use. Whatever reads its mapper (``inspect(cls)``, ``cls.__mapper__``,
``class_mapper``, schema generators such as marshmallow-sqlalchemy) must see
every relationship, exactly as ``automap(lazy=False)`` maps them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from geoalchemy2 import Geography, Geometry
from marshmallow import fields
from marshmallow_sqlalchemy import ModelConverter, SQLAlchemyAutoSchema
from sqlalchemy import inspect, select
from sqlalchemy.orm import Mapper, Session, class_mapper, configure_mappers

from macrostrat.database import Database

from .conftest import load_sql

SCHEMAS = ["public", "geology"]


@pytest.fixture(scope="module")
def rel_db(sample_db: Database) -> Database:
    """The sample schema plus relationships.sql (pairs, links, self-references)."""
    load_sql(sample_db.engine, "relationships.sql")
    return sample_db


@pytest.fixture(scope="module")
def eager(rel_db: Database) -> Database:
    """The same tables mapped eagerly: what every lazy class must look like."""
    db = Database(rel_db.engine)
    db.automap(schemas=SCHEMAS, lazy=False)
    configure_mappers()
    return db


def _lazy(rel_db: Database) -> Database:
    db = Database(rel_db.engine)
    db.automap(schemas=SCHEMAS)
    return db


def _neighbour(db: Database) -> type:
    """``geology_formation`` reached through ``contact``: mapped, not completed."""
    contact = db.model.contact
    formation = contact._upper_formation.property.mapper.class_
    assert db.mapper is not None
    assert db.mapper._lazy is not None
    assert not db.mapper._lazy.is_complete(formation)
    return formation


# Each way of reading a mapper, given the class: what it says about relationships.
READERS: dict[str, Callable[[type], set[str]]] = {
    "inspect().relationships": lambda cls: set(inspect(cls).relationships.keys()),
    "__mapper__.relationships": lambda cls: set(
        cls.__mapper__.relationships.keys()  # type: ignore[attr-defined]
    ),
    "class_mapper().relationships": lambda cls: set(
        class_mapper(cls).relationships.keys()
    ),
    "inspect().attrs": lambda cls: {
        p.key for p in inspect(cls).attrs if hasattr(p, "direction")
    },
    "__mapper__.iterate_properties": lambda cls: {
        p.key
        for p in cls.__mapper__.iterate_properties  # type: ignore[attr-defined]
        if hasattr(p, "direction")
    },
    "inspect().all_orm_descriptors": lambda cls: {
        key
        for key, attr in inspect(cls).all_orm_descriptors.items()
        if hasattr(getattr(attr, "property", None), "direction")
    },
    "__mapper__.get_property": lambda cls: {
        key
        for key in ("sample_formation_collection", "contact_lower_formation_collection")
        if cls.__mapper__.get_property(key).key == key  # type: ignore[attr-defined]
    },
    "__mapper__.has_property": lambda cls: {
        key
        for key in ("sample_formation_collection", "contact_lower_formation_collection")
        if cls.__mapper__.has_property(key)  # type: ignore[attr-defined]
    },
    "inspect(instance).mapper.relationships": lambda cls: set(
        _instance_mapper(cls).relationships.keys()
    ),
}


def _instance_mapper(cls: type) -> Mapper[Any]:
    """The mapper of a loaded-like instance, reached without constructing one."""
    mapper: Mapper[Any] = cls.__mapper__  # type: ignore[attr-defined]
    return inspect(mapper.class_manager.new_instance()).mapper


@pytest.mark.parametrize("reader", list(READERS))
def test_a_neighbour_is_complete_to_every_reader(
    rel_db: Database, eager: Database, reader: str
) -> None:
    """The first read of an uncompleted class already lists every relationship."""
    db = _lazy(rel_db)
    formation = _neighbour(db)
    want = set(inspect(eager.model.geology_formation).relationships.keys())
    got = READERS[reader](formation)
    if reader.endswith(("get_property", "has_property")):
        assert got == {
            "sample_formation_collection",
            "contact_lower_formation_collection",
        }
    else:
        assert got == want
    assert "sample_formation_collection" in want


def test_every_mapper_attribute_matches_eager(
    rel_db: Database, eager: Database
) -> None:
    """attrs, column_attrs, relationships and descriptors of every class reached."""
    db = _lazy(rel_db)
    seen: set[str] = set()
    todo = [db.model.contact]
    while todo:
        cls = todo.pop()
        if cls.__name__ in seen:
            continue
        seen.add(cls.__name__)
        lazy_mapper = inspect(cls)
        eager_mapper = inspect(eager.model[cls.__name__])
        assert set(lazy_mapper.attrs.keys()) == set(eager_mapper.attrs.keys())
        assert set(lazy_mapper.column_attrs.keys()) == set(
            eager_mapper.column_attrs.keys()
        )
        assert set(lazy_mapper.relationships.keys()) == set(
            eager_mapper.relationships.keys()
        )
        assert set(lazy_mapper.all_orm_descriptors.keys()) == set(
            eager_mapper.all_orm_descriptors.keys()
        )
        todo.extend(rel.mapper.class_ for rel in lazy_mapper.relationships)
    # everything connected to contact by foreign keys
    assert seen == {"contact", "geology_formation", "sample"}


class PostGISConverter(ModelConverter):
    """marshmallow-sqlalchemy has no field for PostGIS types: a raw field will do."""

    SQLA_TYPE_MAPPING = {
        **ModelConverter.SQLA_TYPE_MAPPING,
        Geometry: fields.Raw,
        Geography: fields.Raw,
    }


def _schema_fields(model: type) -> dict[str, tuple[str, Any]]:
    """The fields marshmallow-sqlalchemy generates for ``model``: name, kind, columns."""
    meta = type(
        "Meta",
        (),
        {
            "model": model,
            "include_relationships": True,
            "include_fk": True,
            "model_converter": PostGISConverter,
        },
    )
    schema = type(f"{model.__name__}Schema", (SQLAlchemyAutoSchema,), {"Meta": meta})
    out: dict[str, tuple[str, Any]] = {}
    for name, field in schema().fields.items():
        inner = getattr(field, "inner", field)  # a list of related objects
        columns = getattr(inner, "columns", None)
        out[name] = (type(field).__name__, tuple(columns) if columns else None)
    return out


def test_marshmallow_schemas_of_classes_used_directly(
    rel_db: Database, eager: Database
) -> None:
    """A class from ``db.model`` generates the same schema lazily and eagerly."""
    db = _lazy(rel_db)
    for key, expected in eager.model.items():
        assert _schema_fields(db.model[key]) == _schema_fields(expected), key


@pytest.mark.parametrize(
    ("start", "path"),
    [
        ("contact", ("_upper_formation",)),
        ("sample", ("_formation",)),
        ("contact", ("_upper_formation", "sample_formation_collection")),
        ("contact", ("_lower_formation", "sample_via_sample_formation_collection")),
        ("unit", ("_unit",)),
        ("sample", ("sample_via_sample_relation_child_collection",)),
    ],
)
def test_marshmallow_schemas_of_classes_reached_through_relationships(
    rel_db: Database, eager: Database, start: str, path: tuple[str, ...]
) -> None:
    """A class first met as a relationship's target generates its whole schema."""
    db = _lazy(rel_db)
    cls = db.model[start]
    for name in path:
        cls = getattr(cls, name).property.mapper.class_
    expected = eager.model[cls.__name__]
    assert _schema_fields(cls) == _schema_fields(expected)


def test_introspection_keeps_mapping_lazy(rel_db: Database) -> None:
    """Reading a model, or querying it, maps its neighbours but never their neighbours."""
    db = _lazy(rel_db)
    mapper = db.mapper
    assert mapper is not None
    unit = db.model.unit
    assert {m.class_.__name__ for m in mapper.automap_base.registry.mappers} == {"unit"}
    inspect(unit).relationships  # noqa: B018
    with Session(db.engine) as session:
        session.execute(select(unit)).all()
    assert {m.class_.__name__ for m in mapper.automap_base.registry.mappers} == {"unit"}
    db.model.contact  # noqa: B018
    mapped = {m.class_.__name__ for m in mapper.automap_base.registry.mappers}
    assert mapped == {"unit", "contact", "geology_formation"}
    with Session(db.engine) as session:
        session.execute(select(db.model.contact)).all()
    assert {m.class_.__name__ for m in mapper.automap_base.registry.mappers} == mapped
