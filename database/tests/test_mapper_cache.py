"""DatabaseModelCache: warm starts, invalidation, and refusing unsafe files."""

from __future__ import annotations

import logging
import os
import pickle
from pathlib import Path

import pytest
from sqlalchemy import MetaData, event, text

from macrostrat.database import Database
from macrostrat.database.errors import ModelCacheError
from macrostrat.database.mapper import DatabaseModelCache, catalog_fingerprint
from macrostrat.database.mapper.cache import check_private

from .conftest import load_sql


@pytest.fixture(scope="module")
def cached_db(db: Database) -> Database:
    """The module database with the sample schema loaded."""
    load_sql(db.engine, "sample-schema.sql")
    return db


@pytest.fixture
def cache_path(tmp_path: Path) -> Path:
    return tmp_path / "cache" / "models.pickle"


def _statements(db: Database) -> tuple[list[str], object]:
    seen: list[str] = []

    def listener(conn, cursor, statement, params, context, executemany) -> None:  # type: ignore[no-untyped-def]
        seen.append(statement)

    event.listen(db.engine, "before_cursor_execute", listener)
    return seen, listener


def test_warm_start_loads_from_cache_without_reflecting(
    cached_db: Database, cache_path: Path, module_database_url: str
) -> None:
    """A second Database maps from the cache: one fingerprint query, no reflection."""
    cached_db.automap(schemas=["public", "geology"], cache=cache_path)
    assert cached_db.mapper is not None
    assert not cached_db.mapper.loaded_from_cache
    assert cache_path.is_file()
    assert oct(cache_path.stat().st_mode & 0o777) == "0o600"
    assert oct(cache_path.parent.stat().st_mode & 0o777) == "0o700"

    with Database(module_database_url) as warm:
        seen, _ = _statements(warm)
        warm.automap(schemas=["public"], cache=DatabaseModelCache(cache_path))
        assert warm.mapper is not None
        assert warm.mapper.loaded_from_cache
        assert len(seen) == 1
        assert "hashtextextended" in seen[0]
        assert set(warm.model.keys()) == set(cached_db.model.keys())
        assert warm.mapper.reflected_schemas == {"public", "geology"}


def test_cached_models_keep_the_helper_mixins(
    cached_db: Database, cache_path: Path, module_database_url: str
) -> None:
    """Weakness 18: models built from a cache lost to_dict() and __repr__ upstream."""
    cached_db.automap(cache=cache_path)
    with Database(module_database_url) as warm:
        warm.automap(cache=cache_path)
        sample = warm.model.sample
        assert sample.loaded_from_cache is True
        obj = warm.get(sample, 1)
        assert repr(obj) == "sample(id: 1)"
        assert obj.to_dict()["name"] == "a"
        assert "_formation" in warm.mapper.models.sample.__mapper__.relationships
        # event dispatchers are left out of the file and rebuilt on access
        table = sample.__table__
        assert "dispatch" not in table.c.id.__dict__
        copy = table.to_metadata(MetaData())
        assert copy.c.keys() == table.c.keys()


def test_schema_change_invalidates_the_cache(
    empty_db: Database, cache_path: Path, empty_database_url: str
) -> None:
    """DDL changes the catalog fingerprint, so the next start reflects again."""
    with empty_db.engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (id int PRIMARY KEY)"))
    empty_db.automap(cache=cache_path)
    with empty_db.engine.connect() as conn:
        before = catalog_fingerprint(conn, ["public"])
        assert catalog_fingerprint(conn, ["public"]) == before
    with empty_db.engine.begin() as conn:
        conn.execute(text("ALTER TABLE t ADD COLUMN added text"))
    with empty_db.engine.connect() as conn:
        assert catalog_fingerprint(conn, ["public"]) != before
    with Database(empty_database_url) as again:
        again.automap(cache=cache_path)
        assert again.mapper is not None
        assert not again.mapper.loaded_from_cache
        assert "added" in again.model.t.__table__.c
    with Database(empty_database_url) as third:
        third.automap(cache=cache_path)
        assert third.mapper is not None
        assert third.mapper.loaded_from_cache


def test_other_schemas_or_use_cache_false_reflect(
    cached_db: Database, cache_path: Path
) -> None:
    """A cache covering fewer schemas is not used; use_cache=False skips reading."""
    cached_db.automap(schemas=["geology"], cache=cache_path)
    cached_db.automap(schemas=["public", "geology"])
    assert cached_db.mapper is not None
    assert not cached_db.mapper.loaded_from_cache
    cached_db.automap(schemas=["geology"], use_cache=False)
    assert cached_db.mapper is not None
    assert not cached_db.mapper.loaded_from_cache
    cached_db.automap(schemas=["geology"])
    assert cached_db.mapper is not None
    assert cached_db.mapper.loaded_from_cache


def test_views_are_part_of_the_cache_key(cached_db: Database, cache_path: Path) -> None:
    cached_db.automap(cache=cache_path, views={"sample_view": ["id"]})
    cached_db.automap(views={"sample_view": ["id"]})
    assert cached_db.mapper is not None
    assert cached_db.mapper.loaded_from_cache
    assert "sample_view" in cached_db.model
    cached_db.automap(views={"sample_view": ["name"]})
    assert not cached_db.mapper.loaded_from_cache
    assert [c.key for c in cached_db.table.sample_view.primary_key] == ["name"]


def _write_cache(db: Database, path: Path) -> None:
    db.automap(cache=path)
    assert path.is_file()


def test_group_writable_cache_file_is_refused(
    cached_db: Database, cache_path: Path
) -> None:
    """Security: never unpickle a file another user could have written."""
    _write_cache(cached_db, cache_path)
    cache_path.chmod(0o620)
    with pytest.raises(ModelCacheError, match=r"models\.pickle.*writable by group"):
        cached_db.automap(cache=cache_path)


def test_cache_file_owned_by_someone_else_is_refused(
    cached_db: Database, cache_path: Path
) -> None:
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        pytest.skip("needs root to give the file to another user")
    _write_cache(cached_db, cache_path)
    os.chown(cache_path, 65534, -1)
    with pytest.raises(ModelCacheError, match="owned by uid 65534"):
        cached_db.automap(cache=cache_path)


def test_world_writable_cache_directory_is_refused(
    cached_db: Database, cache_path: Path
) -> None:
    _write_cache(cached_db, cache_path)
    cache_path.parent.chmod(0o777)
    with pytest.raises(ModelCacheError, match=r"directory .* is unsafe: .*writable"):
        cached_db.automap(cache=cache_path)
    with pytest.raises(ModelCacheError):
        check_private(cache_path)


def test_symlinked_cache_file_is_refused(
    cached_db: Database, cache_path: Path, tmp_path: Path
) -> None:
    _write_cache(cached_db, cache_path)
    real = tmp_path / "cache" / "real.pickle"
    cache_path.rename(real)
    cache_path.symlink_to(real)
    with pytest.raises(ModelCacheError, match="symlink"):
        cached_db.automap(cache=cache_path)
    with pytest.raises(ModelCacheError, match="symlink"):
        check_private(cache_path)


def test_corrupt_or_foreign_cache_is_rebuilt(
    cached_db: Database, cache_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cache_path.parent.mkdir(mode=0o700)
    cache_path.write_bytes(b"not a cache")
    cache_path.chmod(0o600)
    with caplog.at_level(logging.WARNING):
        cached_db.automap(cache=cache_path)
    assert "not a cache file" in caplog.text
    assert cached_db.mapper is not None
    assert not cached_db.mapper.loaded_from_cache
    cached_db.automap()
    assert cached_db.mapper.loaded_from_cache
    # a header from another library version is ignored, then rewritten
    data = cache_path.read_bytes()
    magic_end = data.index(b"\n") + 1
    header = pickle.loads(data[magic_end:])
    header["versions"] = {"sqlalchemy": "0"}
    cache_path.write_bytes(data[:magic_end] + pickle.dumps(header))
    cached_db.automap()
    assert not cached_db.mapper.loaded_from_cache
    # truncated metadata
    good = cache_path.read_bytes()
    cache_path.write_bytes(good[: len(good) // 2])
    with caplog.at_level(logging.WARNING):
        cached_db.automap()
    assert "unreadable" in caplog.text
    assert "truncated or damaged" in caplog.text
    assert not cached_db.mapper.loaded_from_cache
    # one flipped byte in the last table's pickle: caught before any table loads
    good = cache_path.read_bytes()
    caplog.clear()
    cache_path.write_bytes(good[:-2] + bytes([good[-2] ^ 0xFF]) + good[-1:])
    with caplog.at_level(logging.WARNING):
        cached_db.automap()
    assert "truncated or damaged" in caplog.text
    assert not cached_db.mapper.loaded_from_cache
    cached_db.automap()
    assert cached_db.mapper.loaded_from_cache


def test_disabled_cache_and_helpers(tmp_path: Path) -> None:
    cache = DatabaseModelCache()
    assert not cache.enabled
    assert cache._metadata_cache_filename is None
    assert cache.load(lambda header: True) is None
    cache.clear()
    path = tmp_path / "x.pickle"
    cache = DatabaseModelCache(path)
    assert cache.enabled
    assert "x.pickle" in repr(cache)
    check_private(path)  # missing file: fine
    path.write_bytes(b"")
    path.chmod(0o600)
    check_private(path)
    cache.clear()
    assert not path.exists()


def test_reflection_pauses_the_collector_and_restores_it(
    cached_db: Database, module_database_url: str
) -> None:
    """automap() runs with the cyclic GC paused and leaves its state as it was."""
    import gc

    from macrostrat.database.mapper.cache import paused_gc

    seen: list[bool] = []

    def listener(*args: object) -> None:
        seen.append(gc.isenabled())

    for enabled in (True, False):
        (gc.enable if enabled else gc.disable)()
        try:
            with Database(module_database_url) as fresh:
                event.listen(fresh.engine, "before_cursor_execute", listener)
                fresh.automap(schemas=["public"], use_cache=False)
            assert gc.isenabled() is enabled
        finally:
            gc.enable()
    assert seen
    assert not any(seen), "reflection queries ran with the collector on"

    with paused_gc():
        assert not gc.isenabled()
        with paused_gc():
            assert not gc.isenabled()
        assert not gc.isenabled(), "an inner block must not re-enable the collector"
    assert gc.isenabled()


def test_a_table_holding_another_is_not_cached(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Each table must pickle alone; one that holds another table's column is refused."""
    from sqlalchemy import Column, ForeignKey, Integer, Table

    md = MetaData()
    parent = Table("parent", md, Column("id", Integer, primary_key=True))
    Table(
        "child",
        md,
        Column("id", Integer, primary_key=True),
        Column("parent_id", ForeignKey(parent.c.id)),  # a Column, not a string
    )
    cache = DatabaseModelCache(tmp_path / "c" / "models.pickle")
    header = cache.new_header(schemas=["public"], views={}, fingerprint="x")
    with caplog.at_level(logging.WARNING):
        cache.save(header, md)
    assert "refers to column parent.id directly" in caplog.text
    assert not (tmp_path / "c" / "models.pickle").exists()
