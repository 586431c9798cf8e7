"""``db.model`` does not depend on call order; every "not found" says where and what is close.

- ``get_model`` of another schema adds that schema to the default ones
  (``public``), never replaces them; ``refresh_schema`` reflects again what was
  mapped.
- Missing models and tables name the schemas searched and the closest names;
  ``get_table`` still raises a ``sqlalchemy.exc.NoSuchTableError``.
"""

from __future__ import annotations

import pickle

import pytest
from sqlalchemy import inspect, text
from sqlalchemy.exc import NoSuchTableError

from macrostrat.database import Database
from macrostrat.database.errors import ModelNotFoundError, TableNotFoundError


@pytest.mark.parametrize("lazy", [True, False])
def test_get_model_of_another_schema_keeps_public_mapped(
    sample_db: Database, lazy: bool
) -> None:
    """Upstream order: ``get_model("geology.formation")`` first, then ``db.model.sample``."""
    db = Database(sample_db)
    if not lazy:
        db.automap(lazy=False)
        db.refresh_schema(automap=False)  # no models until next use, eager then
    formation = db.get_model("geology.formation")
    assert db.mapper is not None
    assert db.mapper.reflected_schemas == {"public", "geology"}
    sample = db.model.sample
    assert db.table.sample is sample.__table__
    assert db.model.geology_formation is formation
    assert sample._formation.property.mapper.class_ is formation
    assert "sample_collection" in inspect(formation).relationships


def test_get_model_adds_to_the_schemas_of_the_last_automap(
    sample_db: Database,
) -> None:
    db = Database(sample_db)
    db.automap(schemas=["geology"])
    db.refresh_schema(automap=False)  # models dropped; rebuilt on next use
    db.get_model("sample")
    assert db.mapper is not None
    assert db.mapper.reflected_schemas == {"public", "geology"}


def test_refresh_schema_reflects_what_was_mapped(sample_db: Database) -> None:
    db = Database(sample_db)
    db.get_model("geology.formation")
    db.refresh_schema(automap=True)
    assert db.mapper is not None
    assert db.mapper.reflected_schemas == {"public", "geology"}
    assert db.model.sample.__table__.name == "sample"
    assert db.model.geology_formation.__table__.schema == "geology"
    db.refresh_schema(automap=False)
    assert db.mapper is None
    assert db.model.sample.__table__.name == "sample"
    assert db.mapper.reflected_schemas == {"public", "geology"}


def test_missing_model_names_the_schemas_and_the_closest(sample_db: Database) -> None:
    db = Database(sample_db)
    with pytest.raises(AttributeError) as info:
        db.model.sampel  # noqa: B018
    message = str(info.value)
    assert "no model named 'sampel' in schema 'public'" in message
    assert "did you mean: sample" in message
    other = Database(sample_db)
    other.get_model("geology.formation")
    with pytest.raises(AttributeError) as info:
        other.model.formation  # noqa: B018
    message = str(info.value)
    assert "in schemas 'geology', 'public'" in message
    assert "did you mean: geology_formation" in message
    with pytest.raises(AttributeError, match=r"\(known: "):
        db.model.zzzzzzzz  # noqa: B018


def test_missing_table_attribute_says_table(sample_db: Database) -> None:
    db = Database(sample_db)
    with pytest.raises(AttributeError) as info:
        db.table.sampel  # noqa: B018
    message = str(info.value)
    assert message.startswith("no table named 'sampel' in schema 'public'")
    assert "did you mean: sample" in message
    assert "model" not in message


def test_get_model_suggests_the_closest_models(sample_db: Database) -> None:
    db = Database(sample_db)
    with pytest.raises(ModelNotFoundError) as info:
        db.get_model("sampel")
    message = str(info.value)
    assert "after reflecting schema 'public'" in message
    assert "did you mean: sample" in message
    with pytest.raises(ModelNotFoundError, match=r"did you mean: geology\.formation"):
        db.get_model("geology.formaton")
    # a reflected table that cannot be a model: say why, not "did you mean"
    with pytest.raises(ModelNotFoundError, match="no primary key") as info:
        db.get_model("no_key")
    assert "map_view('no_key'" in str(info.value)


def test_get_table_missing_is_a_no_such_table_error_that_helps(
    sample_db: Database,
) -> None:
    db = Database(sample_db)
    with pytest.raises(NoSuchTableError) as info:
        db.get_table("sampel")
    err = info.value
    assert isinstance(err, TableNotFoundError)
    assert isinstance(err, LookupError)
    message = str(err)
    assert "no table or view named 'sampel' in schema 'public'" in message
    assert "did you mean: sample" in message
    assert err.suggestions[0] == "sample"
    assert (err.schema, err.table) == ("public", "sampel")
    assert isinstance(err.__cause__, NoSuchTableError)
    again = pickle.loads(pickle.dumps(err))
    assert str(again) == message
    assert again.suggestions == err.suggestions

    with pytest.raises(NoSuchTableError, match=r"did you mean: geology\.formation"):
        db.get_table("geology.formaton")
    with pytest.raises(NoSuchTableError, match="schema does not exist") as info:
        db.get_table("geolgy.formation")
    assert "did you mean: geology" in str(info.value)
    # nothing close: the schema is still named, and the cache holds nothing
    with pytest.raises(NoSuchTableError, match="in schema 'public'"):
        db.get_table("missing")
    assert ("public", "missing") not in db._reflection.table_cache
    with db.engine.begin() as conn:
        conn.execute(text("CREATE TABLE lookup_late (id int PRIMARY KEY)"))
    try:
        assert db.get_table("lookup_late").name == "lookup_late"
    finally:
        with db.engine.begin() as conn:
            conn.execute(text("DROP TABLE lookup_late"))


def test_map_view_of_a_missing_view_helps_too(sample_db: Database) -> None:
    db = Database(sample_db)
    db.automap()
    assert db.mapper is not None
    with pytest.raises(NoSuchTableError, match="did you mean: sample_view"):
        db.mapper.map_view("sample_veiw", ["id"])
