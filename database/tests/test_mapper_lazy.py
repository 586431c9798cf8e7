"""Lazy mapping: models map on first use and end up exactly as eager automap maps them."""

from __future__ import annotations

import random
import threading
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import inspect, select, text
from sqlalchemy.orm import Session, configure_mappers

from macrostrat.database import Database
from macrostrat.database.errors import InvalidOptionError, ModelNotFoundError
from macrostrat.database.mapper import DatabaseMapper, ModelCollection

from .conftest import load_sql


@pytest.fixture(scope="module")
def lazy_db(sample_db: Database) -> Database:
    """The sample schema plus relationships.sql (pairs, links, self-references)."""
    load_sql(sample_db.engine, "relationships.sql")
    return sample_db


def _mapped(mapper: DatabaseMapper) -> set[str]:
    """Names of the classes mapped so far on the mapper's base."""
    registry = mapper.automap_base.registry
    return {m.class_.__name__ for m in registry.mappers}


def _signature(models: ModelCollection) -> dict[str, set[tuple[Any, ...]]]:
    """Every relationship of every model, with what decides its behaviour."""
    classes = models.items()
    configure_mappers()
    out: dict[str, set[tuple[Any, ...]]] = {}
    for key, cls in classes:
        rels = set()
        for rel in inspect(cls).relationships:
            pairs = tuple(
                sorted(
                    (
                        f"{left.table.name}.{left.name}",
                        f"{right.table.name}.{right.name}",
                    )
                    for left, right in rel.local_remote_pairs
                )
            )
            rels.add(
                (
                    rel.key,
                    rel.direction.name,
                    rel.mapper.class_.__name__,
                    pairs,
                    None if rel.secondary is None else rel.secondary.name,
                    tuple(sorted(p.key for p in rel._reverse_property)),
                    tuple(sorted(rel.cascade)),
                    rel.passive_deletes,
                    rel.uselist,
                )
            )
        out[key] = rels
    return out


def _fresh(db: Database, **kwargs: Any) -> Database:
    other = Database(db.engine)
    other.automap(**kwargs)
    return other


def test_lazy_models_match_eager_automap(lazy_db: Database) -> None:
    """Every relationship (names, direction, columns, links, cascades) is the same."""
    schemas = ["public", "geology"]
    eager = _fresh(lazy_db, schemas=schemas, lazy=False)
    lazy = _fresh(lazy_db, schemas=schemas)
    assert eager.mapper is not None
    assert lazy.mapper is not None
    assert not eager.mapper.lazy
    assert lazy.mapper.lazy
    # eager automap's order is a set's; lazy keeps the reflection order
    assert sorted(lazy.model.keys()) == sorted(eager.model.keys())
    expected = _signature(eager.model)
    assert _signature(lazy.model) == expected
    # the shapes of relationships.sql are all there
    assert {r[0] for r in expected["contact"]} >= {
        "_upper_formation",
        "_lower_formation",
    }
    assert any(r[4] == "sample_relation" for r in expected["sample"])


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_lazy_matches_eager_on_random_schemas(db: Database, seed: int) -> None:
    """Random tables, foreign keys (repeated, self, cross-schema) and link tables."""
    rng = random.Random(seed)
    schemas = [f"r{seed}a", f"r{seed}b"]
    names = [(s, f"t{i}") for s in schemas for i in range(12)]
    ddl = [f"CREATE SCHEMA {s};" for s in schemas]
    for i, (schema, table) in enumerate(names):
        cols = ["id serial PRIMARY KEY", "label text"]
        for n in range(rng.randrange(0, 4)):
            ts, tt = names[rng.randrange(0, i + 1)]
            null = "NOT NULL" if rng.random() < 0.3 else ""
            action = rng.choice(["", "ON DELETE CASCADE", "ON DELETE SET NULL"])
            if null and action.endswith("NULL"):
                action = ""
            cols.append(f"ref{n}_id integer {null} REFERENCES {ts}.{tt} (id) {action}")
        ddl.append(f"CREATE TABLE {schema}.{table} ({', '.join(cols)});")
    for n in range(4):
        (sa, ta), (sb, tb) = rng.choice(names), rng.choice(names)
        ddl.append(
            f"CREATE TABLE {schemas[0]}.link{n} (a_id integer REFERENCES {sa}.{ta} (id),"
            f" b_id integer REFERENCES {sb}.{tb} (id), PRIMARY KEY (a_id, b_id));"
        )
    ddl.append(
        f"CREATE TABLE {schemas[1]}.keyless (x integer REFERENCES {schemas[0]}.t0 (id));"
    )
    with db.engine.begin() as conn:
        conn.execute(text("\n".join(ddl)))
    eager = _fresh(db, schemas=schemas, lazy=False)
    lazy = _fresh(db, schemas=schemas)
    assert sorted(lazy.model.keys()) == sorted(eager.model.keys())
    assert f"{schemas[0]}_link0" not in lazy.model  # link tables are relationships
    assert f"{schemas[1]}_keyless" not in lazy.model
    assert _signature(lazy.model) == _signature(eager.model)


def test_nothing_is_mapped_until_used(lazy_db: Database) -> None:
    """automap() maps no class; a model maps itself and its neighbours only."""
    db = _fresh(lazy_db, schemas=["public", "geology"])
    mapper = db.mapper
    assert mapper is not None
    assert _mapped(mapper) == set()
    assert "sample" in db.model
    assert len(db.model) == len(db.model.keys())
    assert _mapped(mapper) == set()
    contact = db.model.contact
    assert _mapped(mapper) == {"contact", "geology_formation"}
    assert mapper._lazy is not None
    assert mapper._lazy.is_complete(contact)
    formation = mapper.automap_base.registry._class_registry["geology_formation"]
    assert not mapper._lazy.is_complete(formation)
    # the many-to-one pair exists on both sides already
    assert {"_upper_formation", "_lower_formation"} <= set(
        inspect(contact).relationships.keys()
    )
    assert "contact_upper_formation_collection" in inspect(formation).relationships


def test_a_neighbour_completes_itself_on_first_use(lazy_db: Database) -> None:
    """Reading a relationship the class lacks maps it, on the class or an instance."""
    db = _fresh(lazy_db, schemas=["public", "geology"])
    sample = db.model.sample
    formation = sample._formation.property.mapper.class_
    assert db.mapper is not None
    assert db.mapper._lazy is not None
    assert not db.mapper._lazy.is_complete(formation)
    # class attribute: completes geology_formation (contact becomes mapped)
    join = select(formation.name).join(formation.contact_upper_formation_collection)
    assert db.mapper._lazy.is_complete(formation)
    with Session(db.engine) as session:
        session.execute(join).all()
        navajo = session.execute(select(sample).where(sample.name == "c")).scalar_one()
        assert navajo._formation.name == "Navajo"
        assert navajo._formation.sample_formation_collection == [navajo]


def test_instance_access_and_assignment_complete_the_class(lazy_db: Database) -> None:
    """Setting a relationship the class did not have yet is not lost at flush."""
    db = _fresh(lazy_db, schemas=["public", "geology"])
    contact = db.model.contact
    formation = contact._upper_formation.property.mapper.class_
    with Session(db.engine) as session:
        morrison = session.execute(
            select(formation).where(formation.name == "Morrison")
        ).scalar_one()
        # instance read of a missing attribute
        sample = type(morrison.sample_formation_collection[0])
        assert sample.__name__ == "sample"
        unit_cls = db.model.unit
        child = unit_cls()
        parent = unit_cls()
        child._unit = parent  # complete already; plain assignment
        session.add(child)
        session.flush()
        assert child.parent_id == parent.id
        session.rollback()
    db2 = _fresh(lazy_db, schemas=["public", "geology"])
    contact2 = db2.model.contact
    formation2 = contact2._upper_formation.property.mapper.class_
    assert db2.mapper is not None
    assert db2.mapper._lazy is not None
    assert not db2.mapper._lazy.is_complete(formation2)
    with Session(db2.engine) as session:
        new = formation2(name="Chinle")
        # an object was constructed: its class has every relationship
        assert db2.mapper._lazy.is_complete(formation2)
        sample2 = db2.model.sample
        new.sample_formation_collection = [sample2(name="d")]
        session.add(new)
        session.flush()
        found = session.execute(select(sample2).where(sample2.name == "d")).scalar_one()
        assert found.formation_id == new.id
        session.rollback()
    db4 = _fresh(lazy_db, schemas=["public", "geology"])
    formation4 = db4.model.contact._upper_formation.property.mapper.class_
    assert db4.mapper is not None
    assert db4.mapper._lazy is not None
    with Session(db4.engine) as session:
        # an object made as the loader makes them (no __init__), class incomplete
        made = formation4.__mapper__.class_manager.new_instance()
        made.name = "Zuni"
        assert not db4.mapper._lazy.is_complete(formation4)
        # assigning a relationship the object's class does not have yet
        assert "sample_formation_collection" not in dir(formation4)
        made.sample_formation_collection = []
        assert db4.mapper._lazy.is_complete(formation4)
        sample4 = db4.model.sample
        made.sample_formation_collection.append(sample4(name="e"))
        session.add(made)
        session.flush()
        found = session.execute(select(sample4).where(sample4.name == "e")).scalar_one()
        assert found.formation_id == made.id
        session.rollback()
    db5 = _fresh(lazy_db, schemas=["public", "geology"])
    formation5 = db5.model.contact._upper_formation.property.mapper.class_
    assert db5.mapper is not None
    assert db5.mapper._lazy is not None
    with Session(db5.engine) as session:
        session.execute(select(formation5).where(formation5.name == "Navajo")).one()
        # querying a class is using it: it completes first
        assert db5.mapper._lazy.is_complete(formation5)
    db3 = _fresh(lazy_db, schemas=["public", "geology"])
    formation3 = db3.model.contact._upper_formation.property.mapper.class_
    # the declarative constructor accepts the relationship as a keyword
    obj = formation3(name="x", sample_formation_collection=[])
    assert obj.sample_formation_collection == []


def test_delete_cascades_match_eager(lazy_db: Database) -> None:
    """Deleting an object reached through a relationship cascades as eagerly mapped.

    ``contact.upper_formation_id`` is NOT NULL, so automap gives the
    one-to-many ``delete-orphan``: deleting a formation deletes its contacts.
    The formation's class is only a neighbour of ``sample`` until
    ``sample._formation`` loads one of its instances (that query completes it).
    """
    counts = {}
    for lazy in (False, True):
        db = _fresh(lazy_db, schemas=["public", "geology"], lazy=lazy)
        sample = db.model.sample
        with Session(db.engine) as session:
            session.execute(
                text(
                    "INSERT INTO contact (upper_formation_id, lower_formation_id)"
                    " VALUES (2, 1)"
                )
            )
            navajo_sample = session.execute(
                select(sample).where(sample.name == "c")
            ).scalar_one()
            if lazy:
                assert db.mapper is not None
                assert db.mapper._lazy is not None
                formation = sample._formation.property.mapper.class_
                assert not db.mapper._lazy.is_complete(formation)
            navajo = navajo_sample._formation
            if lazy:
                assert db.mapper._lazy.is_complete(type(navajo))
            navajo_sample.formation_id = None
            session.flush()
            session.delete(navajo)
            session.flush()
            counts[lazy] = session.execute(
                text("SELECT count(*) FROM contact")
            ).scalar()
            session.rollback()
    assert counts == {False: 0, True: 0}


def test_an_orphan_of_an_incomplete_class_is_deleted_at_flush(
    lazy_db: Database,
) -> None:
    """delete-orphan works on a class first met through a relationship.

    An object the ORM makes without ``__init__`` (as the loader does) while
    its class is incomplete completes the class when the flush's cascade
    reaches it; objects loaded through a relationship come from a query of
    their class, which completes it first.
    """
    db = _fresh(lazy_db, schemas=["public", "geology"])
    assert db.mapper is not None
    assert db.mapper._lazy is not None
    formation = db.model.geology_formation
    contact = db.mapper.automap_base.registry._class_registry["contact"]
    assert not db.mapper._lazy.is_complete(contact)
    with Session(db.engine) as session:
        session.execute(
            text(
                "INSERT INTO contact (upper_formation_id, lower_formation_id)"
                " VALUES (1, 2), (1, 2)"
            )
        )
        new = formation(name="Kayenta")
        made = contact.__mapper__.class_manager.new_instance()
        made.lower_formation_id = 1
        new.contact_upper_formation_collection.append(made)
        session.add(new)
        session.flush()
        assert db.mapper._lazy.is_complete(contact)
        assert made.upper_formation_id == new.id
        new.contact_upper_formation_collection.remove(made)
        morrison = session.get(formation, 1)
        morrison.contact_upper_formation_collection.pop()
        session.flush()  # NOT NULL foreign key: both orphans deleted
        left = session.execute(text("SELECT count(*) FROM contact")).scalar()
        assert left == 1
        session.rollback()


def test_relationship_names_that_look_internal(db: Database) -> None:
    """Foreign keys to ``sa_region`` and ``_audit`` give ``_sa_region`` and ``__audit``."""
    with db.engine.begin() as conn:
        conn.execute(
            text(
                "CREATE SCHEMA odd;"
                "CREATE TABLE odd.sa_region (id int PRIMARY KEY);"
                'CREATE TABLE odd."_audit" (id int PRIMARY KEY);'
                "CREATE TABLE odd.child (id int PRIMARY KEY,"
                " region_id int REFERENCES odd.sa_region (id),"
                ' audit_id int REFERENCES odd."_audit" (id));'
                "CREATE TABLE odd.other (id int PRIMARY KEY,"
                " child_id int REFERENCES odd.child (id));"
                "INSERT INTO odd.sa_region VALUES (7); INSERT INTO odd._audit VALUES (8);"
            )
        )
    for lazy in (False, True):
        other = _fresh(db, schemas=["odd"], lazy=lazy)
        child = other.model.odd_other._child.property.mapper.class_
        assert child._sa_region.property.mapper.class_.__name__ == "odd_sa_region"
        assert child.__audit.property.mapper.class_.__name__ == "odd__audit"
        with Session(other.engine) as session:
            row = child(id=1)
            row._sa_region = session.get(other.model.odd_sa_region, 7)
            session.add(row)
            session.flush()
            assert row.region_id == 7
            session.rollback()


@pytest.mark.filterwarnings("ignore:relationship .* will copy column")
def test_duplicate_foreign_key_constraints_keep_both(db: Database) -> None:
    """Two constraints on the same columns give two relationships, as eagerly.

    (SQLAlchemy warns that both write ``chi.par_id``, in either mode.)
    """
    with db.engine.begin() as conn:
        conn.execute(
            text(
                "CREATE SCHEMA dup;"
                "CREATE TABLE dup.par (id int PRIMARY KEY);"
                "CREATE TABLE dup.chi (id int PRIMARY KEY,"
                " par_id int REFERENCES dup.par (id));"
                "ALTER TABLE dup.chi ADD CONSTRAINT dup_fk FOREIGN KEY (par_id)"
                " REFERENCES dup.par (id)"
            )
        )
    eager = _fresh(db, schemas=["dup"], lazy=False)
    lazy = _fresh(db, schemas=["dup"])
    assert _signature(lazy.model) == _signature(eager.model)
    assert len(inspect(lazy.model.dup_chi).relationships) == 2


def test_unknown_attributes_still_raise(lazy_db: Database) -> None:
    """Completion does not hide real typos."""
    db = _fresh(lazy_db, schemas=["public", "geology"])
    sample = db.model.sample
    formation = sample._formation.property.mapper.class_
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        formation.nope  # noqa: B018
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        sample().nope  # noqa: B018
    with pytest.raises(AttributeError, match="no model named 'nope'"):
        db.model.nope  # noqa: B018
    with pytest.raises(AttributeError, match="did you mean: sample"):
        db.model.sampel  # noqa: B018
    with pytest.raises(KeyError):
        db.model["nope"]


def test_iterating_the_collection_maps_everything(lazy_db: Database) -> None:
    """values(), items() and iteration hand out completed classes."""
    db = _fresh(lazy_db, schemas=["public", "geology"])
    assert db.mapper is not None
    assert db.mapper._lazy is not None
    classes = list(db.model)
    assert len(classes) == len(db.model.keys())
    assert all(db.mapper._lazy.is_complete(cls) for cls in classes)
    assert all(cls in db.model for cls in classes)
    assert db.table.sample is db.model.sample.__table__


def test_table_membership_maps_one_model_at_most(lazy_db: Database) -> None:
    """``table in db.table`` looks at the model keyed like the table only."""
    db = _fresh(lazy_db, schemas=["public", "geology"])
    assert db.mapper is not None
    unit = lazy_db.get_table("unit")  # another MetaData's Table object
    assert unit not in db.table
    assert _mapped(db.mapper) == {"unit"}
    assert db.get_table("unit") in db.table


def test_colliding_model_keys_are_an_error_in_get_model(db: Database) -> None:
    """Public ``kc_thing`` and ``kc.thing`` share a key: get_model says so."""
    with db.engine.begin() as conn:
        conn.execute(
            text(
                "CREATE SCHEMA kc; CREATE TABLE kc.thing (id int PRIMARY KEY);"
                "CREATE TABLE kc_thing (id int PRIMARY KEY)"
            )
        )
    other = _fresh(db, schemas=["public", "kc"])
    mapped = other.model.kc_thing.__table__
    wrong = "kc.thing" if mapped.schema is None else "kc_thing"
    with pytest.raises(ModelNotFoundError, match="collide"):
        other.get_model(wrong)
    assert other.get_model("kc_thing" if mapped.schema is None else "kc.thing")


def test_concurrent_first_use_from_threads(lazy_db: Database) -> None:
    """Threads asking for models at once get one class each, fully mapped."""
    db = _fresh(lazy_db, schemas=["public", "geology"])
    keys = ["sample", "contact", "unit", "geology_formation"] * 4
    found: list[type] = []
    errors: list[BaseException] = []
    start = threading.Barrier(len(keys))

    def use(key: str) -> None:
        try:
            start.wait()
            cls = db.model[key]
            configure_mappers()
            found.append(cls)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=use, args=(k,)) for k in keys]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len({id(cls) for cls in found}) == 4


def test_reflecting_another_schema_extends_completed_classes(db: Database) -> None:
    """A class completed before a new schema is reflected gains its relationships."""
    with db.engine.begin() as conn:
        conn.execute(
            text(
                "CREATE SCHEMA ext_a; CREATE SCHEMA ext_b;"
                "CREATE TABLE ext_a.parent (id int PRIMARY KEY);"
                "CREATE TABLE ext_b.child (id int PRIMARY KEY,"
                " parent_id int REFERENCES ext_a.parent (id))"
            )
        )
    other = Database(db.engine)
    other.automap(schemas=["ext_a"])
    parent = other.model.ext_a_parent
    assert "ext_b_child_collection" not in inspect(parent).relationships
    assert other.mapper is not None
    other.mapper.reflect_schema("ext_b")
    configure_mappers()
    assert "ext_b_child_collection" in inspect(parent).relationships
    assert "_parent" in inspect(other.model.ext_b_child).relationships


def test_warm_start_loads_only_the_tables_it_uses(
    lazy_db: Database, tmp_path: Path
) -> None:
    """From a cache, a model unpickles its own and its neighbours' tables only."""
    cache = tmp_path / "models.pickle"
    _fresh(lazy_db, schemas=["public", "geology"], cache=cache)
    warm = _fresh(lazy_db, schemas=["public", "geology"], cache=cache)
    mapper = warm.mapper
    assert mapper is not None
    assert mapper.loaded_from_cache
    loaded = mapper._source.metadata.tables
    assert len(loaded) == 0
    unit = warm.model.unit
    assert set(loaded) == {"unit"}
    assert warm.get_table("contact").name == "contact"
    assert set(loaded) == {"unit", "contact"}
    assert unit.__table__ is warm.get_table("unit")
    # a foreign key of a loaded table loads its target when resolved
    (fk,) = [
        f
        for f in warm.get_table("contact").foreign_keys
        if f.parent.name == "upper_formation_id"
    ]
    assert fk.column.table.key == "geology.formation"
    assert "geology.formation" in loaded
    assert "sample" not in loaded
    # whole-schema operations on the models' own MetaData see every table
    assert len(unit.metadata.sorted_tables) == len(mapper._lazy.index)
    # the full MetaData is there for whoever asks for it
    assert {"sample", "geology.formation", "sample_relation"} <= set(
        mapper.metadata.tables
    )
    with Session(warm.engine) as session:
        assert session.execute(select(warm.model.sample)).scalars().all()


def test_lazy_mapping_refuses_custom_hooks(lazy_db: Database) -> None:
    """Replaced hooks need the eager path; asking for both is a clear error."""
    with pytest.raises(InvalidOptionError, match="lazy=False"):
        DatabaseMapper(lazy_db, lazy=True, classname_for_table=lambda *a: "x")
    mapper = DatabaseMapper(lazy_db, classname_for_table=lambda b, n, t: f"T_{n}")
    assert mapper.lazy is False


def test_views_map_lazily(lazy_db: Database) -> None:
    """A view given a primary key is a lazy model like any other."""
    db = Database(lazy_db.engine)
    db.automap(views={"sample_view": ["id"]})
    assert db.mapper is not None
    assert "sample_view" not in _mapped(db.mapper)
    view = db.model.sample_view
    assert [c.name for c in inspect(view).primary_key] == ["id"]
    again = db.mapper.map_view("sample_view", ["id"])
    assert again is view
