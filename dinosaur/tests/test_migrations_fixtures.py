"""The fixture matrix: before/after schema pairs, planned, applied and re-diffed.

Each directory of ``fixtures/migrations`` holds ``before.sql`` (the live
schema), ``seed.sql`` (rows), ``after.sql`` (the ideal schema) and
``expect.txt``: ``safe``, or ``unsafe: HAZARD ...`` (the unsafe hazards the plan
must carry), optionally followed by ``allowed: fails`` when applying with those
hazards allowed must fail on the seeded rows (and keep everything).
"""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from macrostrat.database import Database
from macrostrat.dinosaur import (
    MigrationStatementError,
    UnsafeMigrationError,
    create_migration,
    needs_migration,
)
from macrostrat.dinosaur.diff import conninfo

FIXTURES = Path(__file__).parent / "fixtures" / "migrations"
CASES = sorted(p.name for p in FIXTURES.iterdir() if p.is_dir())


def run(target, script: str) -> None:
    with psycopg.connect(conninfo(target), autocommit=True) as conn:
        conn.execute(script)


def row_counts(target) -> dict[str, int]:
    """Rows per user table (PostGIS's own tables left out)."""
    with psycopg.connect(conninfo(target)) as conn:
        tables = conn.execute(
            "SELECT format('%I.%I', schemaname, tablename) FROM pg_tables "
            "WHERE schemaname NOT IN ('pg_catalog', 'information_schema') "
            "AND tablename <> 'spatial_ref_sys'"
        ).fetchall()
        return {
            t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
            for (t,) in tables
        }


def expectation(case: Path) -> tuple[set[str], bool]:
    unsafe: set[str] = set()
    fails = False
    for line in (case / "expect.txt").read_text().splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "unsafe":
            unsafe = set(value.split())
        elif key.strip() == "allowed" and value.strip() == "fails":
            fails = True
    return unsafe, fails


@pytest.mark.parametrize("name", CASES)
def test_fixture_pair(name: str, empty_db: Database, database_template: str) -> None:
    case = FIXTURES / name
    run(empty_db, (case / "before.sql").read_text())
    run(empty_db, (case / "seed.sql").read_text())
    before = row_counts(empty_db)
    assert sum(before.values()) > 0

    def init(db: Database) -> None:
        run(db, (case / "after.sql").read_text())

    expected_unsafe, allowed_fails = expectation(case)
    m = create_migration(empty_db, init, template=database_template)
    assert m.statements, "the pair must differ"
    found = {h.value for p in m.plan for h in p.unsafe_hazards()}
    assert found == expected_unsafe, m.plan

    if expected_unsafe:
        with pytest.raises(UnsafeMigrationError) as info:
            m.apply()
        assert set(info.value.hazards) == expected_unsafe
        assert row_counts(empty_db) == before
        if allowed_fails:
            with pytest.raises(MigrationStatementError):
                m.apply(allow_hazards=expected_unsafe)
            assert row_counts(empty_db) == before
            assert needs_migration(empty_db, init, template=database_template)
            return
        m.apply(allow_hazards=expected_unsafe, check_convergence=True)
        after = row_counts(empty_db)
        for table, rows in after.items():
            assert rows == before.get(table, rows)
        return

    m.apply(check_convergence=True)
    after = row_counts(empty_db)
    for table, rows in before.items():
        assert after[table] == rows, table
