"""DatabaseMapper: naming, per-database bases, views, PostGIS types, mixins."""

from __future__ import annotations

import warnings

import pytest
from geoalchemy2 import Geography, Geometry
from sqlalchemy import Column, Integer, inspect, select, text
from sqlalchemy.orm import Session, configure_mappers

from macrostrat.database import Database
from macrostrat.database.errors import InvalidOptionError
from macrostrat.database.mapper import (
    DatabaseMapper,
    ModelCollection,
    ModelHelperMixins,
    TableCollection,
    classname_for_table,
    model_key,
    name_for_collection_relationship,
    name_for_scalar_relationship,
    parse_table_name,
    primary_key,
)
from macrostrat.database.mapper.naming import trim_postfix

from .conftest import load_sql


def _rels(cls: type) -> set[str]:
    """The relationship names of a mapped class (configures the mappers)."""
    return set(inspect(cls).relationships.keys())


@pytest.fixture(scope="module")
def rel_db(sample_db: Database) -> Database:
    """The sample schema plus relationships.sql, automapped (public + geology)."""
    load_sql(sample_db.engine, "relationships.sql")
    sample_db.automap(schemas=["public", "geology"])
    return sample_db


def test_model_keys_and_upstream_relationship_names(rel_db: Database) -> None:
    """Keys `sample` / `geology_formation`, relationship `sample._formation`."""
    model = rel_db.model
    assert "sample" in model
    assert "geology_formation" in model
    sample = model.sample
    assert "_formation" in _rels(sample)
    assert "_unit" in _rels(model.unit)  # self-reference, upstream name
    assert "unit_collection" in _rels(model.unit)


def test_two_foreign_keys_to_one_table_get_distinct_names(rel_db: Database) -> None:
    """Weakness 19: upstream kept one `_formation` relationship and lost the other."""
    contact = rel_db.model.contact
    formation = rel_db.model.geology_formation
    assert "_upper_formation" in _rels(contact)
    assert "_lower_formation" in _rels(contact)
    assert "_formation" not in _rels(contact)
    assert "contact_upper_formation_collection" in _rels(formation)
    assert "contact_lower_formation_collection" in _rels(formation)
    with Session(rel_db.engine) as session:
        f1, f2 = session.scalars(select(formation).order_by(formation.id)).all()
        c = contact(_upper_formation=f1, _lower_formation=f2)
        session.add(c)
        session.flush()
        assert (c.upper_formation_id, c.lower_formation_id) == (f1.id, f2.id)
        assert f1.contact_upper_formation_collection == [c]
        session.rollback()


def test_association_table_next_to_a_direct_fk(rel_db: Database) -> None:
    """Weakness 19: upstream raised ArgumentError ('Error creating backref') here."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        configure_mappers()
    sample = rel_db.model.sample
    formation = rel_db.model.geology_formation
    # direct FK (sample.formation_id) and the link table both give formation a
    # collection of samples: both are qualified.
    assert "sample_formation_collection" in _rels(formation)
    assert "sample_via_sample_formation_collection" in _rels(formation)
    assert "geology_formation_collection" in _rels(sample)
    with Session(rel_db.engine) as session:
        s = session.get(sample, 1)
        f2 = session.get(formation, 2)
        s.geology_formation_collection.append(f2)
        session.flush()
        assert s in f2.sample_via_sample_formation_collection
        assert s not in f2.sample_formation_collection
        session.rollback()


def test_self_referential_association_table(rel_db: Database) -> None:
    """Both directions of sample_relation get their own names on `sample`."""
    sample = rel_db.model.sample
    assert "sample_via_sample_relation_parent_collection" in _rels(sample)
    assert "sample_via_sample_relation_child_collection" in _rels(sample)
    assert "sample_relation" not in rel_db.model  # link tables are not classes


def test_collections_behave_as_mappings(rel_db: Database) -> None:
    """Weakness 19: TableCollection had no [], len, and `in` was always False."""
    models, tables = rel_db.model, rel_db.table
    assert isinstance(models, ModelCollection)
    assert isinstance(tables, TableCollection)
    assert tables["sample"] is models.sample.__table__ is tables.sample
    assert "sample" in tables
    assert "nope" not in tables
    assert tables["sample"] in tables
    assert models.sample in models
    assert len(tables) == len(models) > 3
    assert set(tables.keys()) == set(models.keys())
    assert list(models) == models.values()
    assert list(tables) == tables.values()
    assert dict(tables.items())["sample"] is tables.sample
    assert tables.get("nope") is None
    assert models.get("nope", 1) == 1
    with pytest.raises(KeyError):
        tables["nope"]
    with pytest.raises(AttributeError, match="no model named 'nope'"):
        models.nope  # noqa: B018
    assert "sample" in dir(models)
    assert "sample" in repr(models)
    assert "contact" in repr(tables)


def test_postgis_columns_reflect_as_geoalchemy_types(rel_db: Database) -> None:
    """geometry/geography columns become GeoAlchemy2 types, not NullType."""
    table = rel_db.table.sample
    assert isinstance(table.c.location.type, Geometry)
    assert table.c.location.type.srid == 4326
    assert isinstance(table.c.footprint.type, Geography)


def test_model_helper_mixins(rel_db: Database) -> None:
    """to_dict() and the en-dash __repr__ on every model."""
    sample = rel_db.model.sample
    assert issubclass(sample, ModelHelperMixins)
    s = sample(name="x")
    assert repr(s) == "sample(id: \u2013)"
    assert s.to_dict()["name"] == "x"
    assert set(s.to_dict()) >= {"id", "formation_id"}
    with Session(rel_db.engine) as session:
        got = session.get(sample, 1)
        assert repr(got) == "sample(id: 1)"
        assert primary_key(got) == {"id": 1}
    assert sample.loaded_from_cache is False


def test_map_view_with_explicit_primary_key(rel_db: Database) -> None:
    """Views (and key-less tables) map when given a primary key."""
    mapper = rel_db.mapper
    assert mapper is not None
    assert "sample_view" not in mapper.models
    assert "no_key" not in mapper.models
    view_cls = mapper.map_view("sample_view", primary_key=["id"])
    assert mapper.models.sample_view is view_cls
    assert mapper.map_view("public.sample_view", primary_key="id") is view_cls
    with Session(rel_db.engine) as session:
        names = session.scalars(select(view_cls.name).order_by(view_cls.id)).all()
    assert names == ["a", "b", "c"]
    # a table automap already saw (and skipped for lack of a key)
    no_key = mapper.map_view("no_key", primary_key=["x", "y"])
    assert [c.key for c in no_key.__table__.primary_key] == ["x", "y"]
    assert mapper.views["public.no_key"] == ("x", "y")
    with pytest.raises(InvalidOptionError, match="already mapped"):
        mapper.map_view("sample_view", primary_key=["name"])
    with pytest.raises(InvalidOptionError, match="no column"):
        DatabaseMapper(rel_db).map_view("sample_view", primary_key=["nope"])
    with pytest.raises(InvalidOptionError, match="must name a column"):
        mapper.map_view("other_view", primary_key=[])


def test_automap_views_option(empty_db: Database) -> None:
    """`db.automap(views=...)` maps views in the same pass as the tables."""
    load_sql(empty_db.engine, "sample-schema.sql")
    empty_db.automap(views={"sample_view": ["id"]})
    assert "sample_view" in empty_db.model
    with pytest.raises(InvalidOptionError):
        empty_db.automap(views={"sample_view": []})


def test_each_database_has_its_own_models(rel_db: Database, empty_db: Database) -> None:
    """Weakness 18: one shared automap base leaked models between databases."""
    with empty_db.engine.begin() as conn:
        conn.execute(text("CREATE TABLE only_here (id int PRIMARY KEY)"))
    empty_db.automap()
    assert set(empty_db.model.keys()) == {"only_here", "spatial_ref_sys"}
    assert "sample" not in empty_db.model
    assert "only_here" not in rel_db.model
    assert empty_db.mapper is not None
    assert rel_db.mapper is not None
    assert empty_db.mapper.automap_base is not rel_db.mapper.automap_base
    assert empty_db.mapper.metadata is not rel_db.mapper.metadata


def test_reautomap_updates_classes(empty_db: Database) -> None:
    """Weakness 18: a second automap never remapped existing classes upstream."""
    with empty_db.engine.begin() as conn:
        conn.execute(text("CREATE TABLE grows (id int PRIMARY KEY)"))
    empty_db.automap()
    old = empty_db.model.grows
    with empty_db.engine.begin() as conn:
        conn.execute(text("ALTER TABLE grows ADD COLUMN extra text"))
    empty_db.automap()
    new = empty_db.model.grows
    assert new is not old
    assert hasattr(new, "extra")
    assert not hasattr(old, "extra")


def test_relationships_across_schemas_reflected_together(empty_db: Database) -> None:
    """A table in a later schema pointing at an earlier one still gets relationships."""
    with empty_db.engine.begin() as conn:
        conn.execute(
            text(
                "CREATE SCHEMA a; CREATE SCHEMA b;"
                "CREATE TABLE a.parent (id int PRIMARY KEY);"
                "CREATE TABLE b.child (id int PRIMARY KEY,"
                " parent_id int REFERENCES a.parent (id))"
            )
        )
    empty_db.automap(schemas=["a", "b"])
    assert "_parent" in _rels(empty_db.model.b_child)
    assert "b_child_collection" in _rels(empty_db.model.a_parent)


def test_mapper_options_and_registration(sample_db: Database) -> None:
    """Hooks can be replaced; unknown options are refused; classes can be added."""
    with pytest.raises(InvalidOptionError, match="unknown DatabaseMapper option"):
        DatabaseMapper(sample_db, nope=1)
    mapper = DatabaseMapper(
        sample_db,
        classname_for_table=lambda base, name, table: f"T_{name}",
    )
    mapper.reflect_database(["public"])
    assert "T_sample" in mapper.models
    assert mapper.reflected_schemas == frozenset({"public"})
    mapper.reflect_database(["public"])  # already reflected: no-op
    assert "public" in repr(mapper)

    class Extra(mapper.automap_base):  # type: ignore[name-defined,misc]
        __tablename__ = "extra_table"
        id = Column(Integer, primary_key=True)

    mapper.register_models(Extra)
    assert mapper.models.extra_table is Extra


def test_deprecated_mapper_methods(sample_db: Database) -> None:
    """automap_view and reflect_table still work, with a DeprecationWarning."""
    mapper = DatabaseMapper(sample_db.engine)
    with pytest.warns(DeprecationWarning, match="map_view"):
        cls = mapper.automap_view(
            "sample_view", Column("id", Integer, primary_key=True)
        )
    assert cls.__table__.name == "sample_view"
    with pytest.warns(DeprecationWarning, match="get_table"):
        table = mapper.reflect_table("sample")
    assert table.schema == "public"


def test_naming_helpers() -> None:
    """parse_table_name, model_key, trim_postfix and the upstream name functions."""
    assert parse_table_name("t") == ("public", "t")
    assert parse_table_name("s.t.u") == ("s", "t.u")
    assert parse_table_name("s.t", schema="x") == ("x", "t")
    assert parse_table_name(("s", "t")) == ("s", "t")
    assert model_key(None, "t") == model_key("public", "t") == "t"
    assert model_key("geology", "formation") == "geology_formation"
    assert trim_postfix("formation_id") == "formation"
    assert trim_postfix("_id") == "_id"
    assert trim_postfix("name") == "name"


def test_upstream_name_functions(rel_db: Database) -> None:
    """The plain upstream hooks are still importable and give upstream's names."""
    sample = rel_db.model.sample
    formation = rel_db.model.geology_formation
    table = sample.__table__
    (fk,) = [
        f for f in table.foreign_key_constraints if f.referred_table.name == "formation"
    ]
    assert name_for_scalar_relationship(None, sample, formation, fk) == "_formation"
    assert (
        name_for_collection_relationship(None, formation, sample, fk)
        == "sample_collection"
    )
    assert classname_for_table(formation.__table__) == "geology_formation"


def test_upstream_import_path_and_collection_constructors(rel_db: Database) -> None:
    """`macrostrat.database.mapper.utils` keeps upstream's names importable."""
    from macrostrat.database.mapper import utils

    assert utils.ModelCollection is ModelCollection
    assert utils.TableCollection is TableCollection
    assert utils.trim_postfix("unit_id") == "unit"
    sample = rel_db.model.sample
    by_key = ModelCollection({"x": sample})
    assert by_key.x is sample
    registered = ModelCollection([sample])
    registered.add("alias", sample)
    assert registered.keys() == ["sample", "alias"]
    assert registered.items()[0] == ("sample", sample)
    tables = TableCollection(registered)
    assert tables.get("alias") is sample.__table__
    assert tables.items()[1] == ("alias", sample.__table__)
    assert "alias" in dir(tables)
