"""Database.get_table / get_model / automap / refresh_schema on the sample schema."""

from __future__ import annotations

import pytest
from sqlalchemy import Table, event, text
from sqlalchemy.exc import NoSuchTableError

from macrostrat.database import Database
from macrostrat.database.errors import ModelNotFoundError


def test_get_table_identity_cache(sample_db: Database) -> None:
    """'sample', 'public.sample', ('public', 'sample') and db['sample'] are one object."""
    fresh = Database(sample_db)
    table = fresh.get_table("sample")
    assert isinstance(table, Table)
    assert table.schema is None
    assert fresh.get_table("public.sample") is table
    assert fresh.get_table(("public", "sample")) is table
    assert fresh.get_table("other.sample", schema="public") is table
    assert fresh["sample"] is table
    formation = fresh.get_table("formation", schema="geology")
    assert formation is fresh.get_table("geology.formation")
    assert formation.schema == "geology"


def test_get_table_reflects_only_that_table(sample_db: Database) -> None:
    """Slow path: upstream reflected every table reachable through foreign keys."""
    fresh = Database(sample_db)
    table = fresh.get_table("sample")
    assert set(table.metadata.tables) == {"sample"}
    (fk,) = table.foreign_keys
    assert fk.target_fullname == "geology.formation.id"
    # the target resolves once it is reflected too
    formation = fresh.get_table("geology.formation")
    assert fk.column.table is formation


def test_get_table_views_and_missing_tables(sample_db: Database) -> None:
    fresh = Database(sample_db)
    view = fresh.get_table("sample_view")
    assert set(view.c.keys()) == {"id", "name"}
    assert fresh.get_table("MixedCase").c.Label is not None
    with pytest.raises(NoSuchTableError):
        fresh.get_table("no_such_table")


def test_get_table_prefers_the_mapped_table(sample_db: Database) -> None:
    fresh = Database(sample_db)
    before = fresh.get_table("sample")
    fresh.automap()
    assert fresh.get_table("sample") is fresh.model.sample.__table__
    assert fresh.get_table("sample") is not before
    # unmapped relations the mapper reflected come from its MetaData too
    assert fresh.get_table("no_key") is fresh.mapper.metadata.tables["no_key"]  # type: ignore[union-attr]


def test_get_model_reflects_lazily(sample_db: Database) -> None:
    fresh = Database(sample_db)
    with pytest.raises(ModelNotFoundError, match=r"public\.sample. Call db.automap"):
        fresh.get_model("sample", automap=False)
    sample = fresh.get_model("sample")
    assert fresh.mapper is not None
    assert fresh.mapper.reflected_schemas == {"public"}
    assert fresh.get_model("public.sample") is sample is fresh.model.sample
    # an FK target in another schema is mapped already; the schema is not yet reflected
    assert "geology_formation" in fresh.model
    assert (
        fresh.get_model("formation", schema="geology") is fresh.model.geology_formation
    )
    assert fresh.mapper.reflected_schemas == {"public"}
    with pytest.raises(ModelNotFoundError, match="after reflecting schema 'geology'"):
        fresh.get_model("geology.nothing")
    assert fresh.mapper.reflected_schemas == {"public", "geology"}
    assert fresh.get_model("MixedCase").__table__.name == "MixedCase"


def test_get_model_errors_are_lookup_errors(sample_db: Database) -> None:
    fresh = Database(sample_db)
    with pytest.raises(LookupError, match="after reflecting schema 'public'"):
        fresh.get_model("sample_view")
    with pytest.raises(ModelNotFoundError, match="primary key"):
        fresh.get_model("no_key")
    with pytest.raises(ModelNotFoundError):
        fresh.get_model("nothing.here")


def test_model_table_and_mapped_classes_properties(sample_db: Database) -> None:
    fresh = Database(sample_db)
    assert fresh.mapper is None
    assert fresh.model.sample is fresh.mapped_classes.sample
    assert fresh.table.sample is fresh.model.sample.__table__
    assert fresh.mapper is not None


def test_refresh_schema_rebuilds_tables_and_models(sample_db: Database) -> None:
    """Upstream kept stale get_table results and model classes after DDL."""
    fresh = Database(sample_db)
    with fresh.engine.begin() as conn:
        conn.execute(text("CREATE TABLE evolving (id int PRIMARY KEY)"))
    fresh.automap(schemas=["public"], views={"sample_view": ["id"]})
    old_model = fresh.model.evolving
    old_table = fresh.get_table("geology.formation")
    inspector = fresh.inspector
    with fresh.engine.begin() as conn:
        conn.execute(text("ALTER TABLE evolving ADD COLUMN note text"))
        conn.execute(text("ALTER TABLE geology.formation ADD COLUMN age int"))
    assert "note" not in fresh.get_table("evolving").c  # stale until refreshed
    fresh.refresh_schema()
    assert fresh.inspector is not inspector
    assert "note" in fresh.get_table("evolving").c
    assert "age" in fresh.get_table("geology.formation").c
    assert fresh.get_table("geology.formation") is not old_table
    new_model = fresh.model.evolving
    assert new_model is not old_model
    assert hasattr(new_model, "note")
    assert "sample_view" in fresh.model  # views are mapped again
    assert fresh.mapper is not None
    assert fresh.mapper.reflected_schemas >= {"public"}


def test_refresh_schema_automap_false_drops_models_until_next_use(
    sample_db: Database,
) -> None:
    fresh = Database(sample_db)
    fresh.automap(schemas=["geology"])
    fresh.refresh_schema(automap=False)
    assert fresh.mapper is None
    assert "geology_formation" in fresh.model  # re-automapped with the same schemas
    assert fresh.mapper is not None
    assert "geology" in fresh.mapper.reflected_schemas
    fresh.refresh_schema(automap=True)
    assert fresh.mapper is not None


def test_refresh_schema_without_models_does_not_automap(sample_db: Database) -> None:
    fresh = Database(sample_db)
    fresh.refresh_schema()
    assert fresh.mapper is None


def test_automap_reflects_schemas_in_one_pass(sample_db: Database) -> None:
    """automap of several schemas queries the catalog per schema, not per table."""
    fresh = Database(sample_db)
    seen: list[str] = []

    def listener(conn, cursor, statement, *args):  # type: ignore[no-untyped-def]
        seen.append(statement)

    event.listen(fresh.engine, "before_cursor_execute", listener)
    try:
        fresh.automap(schemas=["public", "geology"])
    finally:
        event.remove(fresh.engine, "before_cursor_execute", listener)
    assert fresh.mapper is not None
    assert len(fresh.model) >= 4
    assert len(seen) < 40
