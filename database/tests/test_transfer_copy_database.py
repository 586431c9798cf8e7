"""copy_database: pg_dump -Fc streamed into pg_restore, between real PostGIS databases."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from macrostrat.database.errors import InvalidOptionError, ToolError
from macrostrat.database.transfer import copy_database, copy_database_sync

from .test_transfer_dump_restore import (
    FINGERPRINT,
    SCHEMA_SQL,
    assert_same_schema,
    query,
    tables_of,
)


@pytest.fixture(scope="module")
def source_url(module_database_url: str) -> str:
    query(module_database_url, SCHEMA_SQL)
    return module_database_url


def test_copy_round_trip_keeps_every_row_and_geometry(
    source_url: str, empty_database_url: str
) -> None:
    streamed = copy_database_sync(source_url, empty_database_url, quiet=True)
    assert streamed > 100_000
    assert query(empty_database_url, FINGERPRINT) == query(source_url, FINGERPRINT)
    assert_same_schema(source_url, empty_database_url)


def test_copy_of_one_schema_with_the_async_api(
    source_url: str, empty_database_url: str
) -> None:
    asyncio.run(
        copy_database(
            source_url, empty_database_url, dump_args=["--schema=geo"], quiet=True
        )
    )
    assert tables_of(empty_database_url) == {"geo.units"}
    assert query(empty_database_url, "SELECT count(*) FROM geo.units") == [(500,)]


def test_failed_dump_commits_nothing(source_url: str, empty_database_url: str) -> None:
    """pg_dump fails (no matching table): pg_restore is killed before it sees EOF."""
    with pytest.raises(ToolError) as info:
        copy_database_sync(
            source_url,
            empty_database_url,
            dump_args=["--strict-names", "--table=public.no_such_table"],
            quiet=True,
        )
    assert info.value.tool == "pg_dump"
    assert "no matching tables" in info.value.stderr
    assert "Nothing was committed" in str(info.value)
    assert tables_of(empty_database_url) == set()


def test_failed_restore_commits_nothing(
    source_url: str, empty_database_url: str
) -> None:
    query(empty_database_url, "CREATE TABLE public.points (x int)")
    with pytest.raises(ToolError) as info:
        copy_database_sync(source_url, empty_database_url, quiet=True)
    assert info.value.tool == "pg_restore"
    assert "already exists" in info.value.stderr
    assert tables_of(empty_database_url) == {"public.points"}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"same": True}, "same database"), ({"bogus": 1}, "bogus")],
)
def test_bad_calls_are_refused(
    source_url: str, empty_database_url: str, kwargs: dict[str, Any], message: str
) -> None:
    target = source_url if kwargs.pop("same", False) else empty_database_url
    with pytest.raises(InvalidOptionError, match=message):
        copy_database_sync(source_url, target, quiet=True, **kwargs)
