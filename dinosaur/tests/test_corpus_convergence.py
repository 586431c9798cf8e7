"""Migration plans converge on the corpus of realistic schemas.

Each folder of ``fixtures/corpus`` is one schema, built by running its
``NN-*.sql`` files in order (``data.sql`` fills a full build with rows).  For
each schema:

- empty → full: the plan applies in one transaction and a new diff is empty;
- every prefix of its files → full: the same;
- full with rows → every prefix of its files: the drop direction, with every
  hazard allowed, applies and converges;
- full with rows → reduced (the first ``REDUCED[name]`` files): the plan is
  refused while its unsafe hazards are not allowed (and nothing changes),
  applies once they are allowed by name, converges, and the rows of the
  tables that stay are unchanged.

The platform's intermediate prefixes are marked ``slow``; the default run
still converges every schema from empty and from every small schema's
prefixes, and the platform from its middle prefix.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from macrostrat.dinosaur import (
    Hazard,
    UnsafeMigrationError,
    check_convergence,
    create_migration,
)
from macrostrat.dinosaur.diff import conninfo

CORPUS = Path(__file__).parent / "fixtures" / "corpus"
SCHEMAS = sorted(p.name for p in CORPUS.iterdir() if p.is_dir())
REDUCED = {
    "catalog": 2,
    "field_samples": 2,
    "geology_platform": 10,
    "tenancy": 2,
    "timeseries": 2,
}
PLATFORM_DEFAULT_PREFIX = 8


def files(name: str) -> list[Path]:
    """The schema's DDL files, in order."""
    return sorted((CORPUS / name).glob("[0-9][0-9]-*.sql"))


def prefix_cases() -> list[object]:
    cases: list[object] = []
    for name in SCHEMAS:
        n = len(files(name))
        for k in range(1, n + 1):
            slow = name == "geology_platform" and k != PLATFORM_DEFAULT_PREFIX
            marks = [pytest.mark.slow] if slow else []
            cases.append(pytest.param(name, k, id=f"{name}-{k}of{n}", marks=marks))
    return cases


Builder = Callable[[str, int, bool], str]


@pytest.fixture(scope="module")
def build(database_url: str, database_template: str) -> Iterator[Builder]:
    """Build a schema's first ``k`` files (and its data) in a new database.

    Full builds are cached (they are only read); every database made here is
    dropped when the module ends.
    """
    made: list[str] = []
    cache: dict[tuple[str, int], str] = {}
    admin = psycopg.connect(conninfo(database_url), autocommit=True)

    def make(name: str, k: int, data: bool = False, cached: bool = False) -> str:
        if cached and (name, k) in cache:
            return cache[(name, k)]
        db = f"corpus_{name[:20]}_{k}_{secrets.token_hex(3)}"
        admin.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                sql.Identifier(db), sql.Identifier(database_template)
            )
        )
        made.append(db)
        url = conninfo(database_url).rsplit("/", 1)[0] + "/" + db
        with psycopg.connect(url, autocommit=True) as conn:
            for f in files(name)[:k]:
                conn.execute(f.read_text())  # type: ignore[arg-type]
            if data:
                conn.execute((CORPUS / name / "data.sql").read_text())  # type: ignore[arg-type]
                conn.execute("ANALYZE")
        if cached:
            cache[(name, k)] = url
        return url

    def builder(name: str, k: int, data: bool = False) -> str:
        return make(name, k, data, cached=not data and k == len(files(name)))

    yield builder
    for db in made:
        admin.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                sql.Identifier(db)
            )
        )
    admin.close()


def tables(url: str) -> set[str]:
    """Every ordinary table and partition, as ``schema.name``."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT n.nspname || '.' || c.relname FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE c.relkind IN ('r', 'p') "
            "AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'public', 'topology')"
        ).fetchall()
    return {r[0] for r in rows}


def snapshot(url: str, keep: dict[str, list[str]]) -> dict[str, list[str]]:
    """The rows of each table in ``keep``, limited to the given columns, sorted."""
    out = {}
    with psycopg.connect(url) as conn:
        for table, columns in keep.items():
            schema, _, name = table.partition(".")
            query = sql.SQL(
                "SELECT row_to_json(x)::text FROM (SELECT {} FROM {}.{}) x"
            ).format(
                sql.SQL(", ").join(sql.Identifier(c) for c in columns),
                sql.Identifier(schema),
                sql.Identifier(name),
            )
            out[table] = sorted(r[0] for r in conn.execute(query).fetchall())
    return out


def leaf_columns(url: str) -> dict[str, list[str]]:
    """The columns of every leaf table (not partitioned parents), in order."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT n.nspname || '.' || c.relname, a.attname FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 "
            "AND NOT a.attisdropped WHERE c.relkind = 'r' "
            "AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'public', 'topology') "
            "ORDER BY 1, a.attnum"
        ).fetchall()
    out: dict[str, list[str]] = {}
    for table, column in rows:
        out.setdefault(table, []).append(column)
    return out


def test_corpus_is_realistic_in_size() -> None:
    """The platform is as big as the issue asks (>= 15 schemas, >= 150 tables)."""
    text = "\n".join(f.read_text() for f in files("geology_platform"))
    assert text.count("CREATE SCHEMA ") >= 15
    assert text.count("CREATE TABLE ") >= 150
    assert text.count("CREATE FUNCTION ") >= 40
    assert len(SCHEMAS) >= 5


@pytest.mark.parametrize("name", SCHEMAS)
def test_empty_to_full_converges(name: str, build: Builder) -> None:
    full = build(name, len(files(name)))
    live = build(name, 0)
    m = create_migration(live, full, privileges=True)
    assert m.statements
    ddl = "\n".join(f.read_text() for f in files(name))
    for kind in ("GRANT ", "ALTER DEFAULT PRIVILEGES"):
        # grants and default privileges are planned like everything else
        assert (kind in ddl) == any(kind in s for s in m.statements), kind
    unsafe = {h.value for p in m.plan for h in p.unsafe_hazards()}
    # creating everything from nothing touches no data; only grants and
    # row-level security need allowing
    assert unsafe <= {"AUTHZ_UPDATE"}, [p for p in m.plan if p.unsafe]
    m.apply(allow_hazards=unsafe, check_convergence=True)
    check_convergence(live, full, privileges=True)
    assert tables(live) == tables(full)


@pytest.mark.parametrize(("name", "k"), prefix_cases())
def test_prefix_to_full_converges(name: str, k: int, build: Builder) -> None:
    full = build(name, len(files(name)))
    live = build(name, k)
    m = create_migration(live, full, privileges=True)
    if k == len(files(name)):
        assert m.statements == []
        return
    unsafe = {h.value for p in m.plan for h in p.unsafe_hazards()}
    assert "DELETES_DATA" not in unsafe
    m.apply(allow_hazards=unsafe, check_convergence=True)
    check_convergence(live, full, privileges=True)


@pytest.mark.parametrize(
    ("name", "k"),
    [c for c in prefix_cases() if c.values[1] < len(files(c.values[0]))],  # type: ignore[attr-defined]
)
def test_full_to_every_prefix_converges(name: str, k: int, build: Builder) -> None:
    """The drop direction: every object of the later files goes, in order."""
    live = build(name, len(files(name)), True)  # a fresh copy, with rows
    m = create_migration(live, build(name, k), privileges=True)
    assert m.statements
    m.apply(allow_hazards=list(Hazard), check_convergence=True)


@pytest.mark.parametrize("name", SCHEMAS)
def test_full_with_data_to_reduced(name: str, build: Builder) -> None:
    reduced = build(name, REDUCED[name])
    live = build(name, len(files(name)), True)
    before_tables = tables(live)
    kept_columns = leaf_columns(reduced)
    assert kept_columns, "the reduced schema keeps some tables"
    before = snapshot(live, kept_columns)
    assert any(before.values()), "the kept tables have rows"

    m = create_migration(live, reduced, privileges=True)
    unsafe = sorted({h.value for p in m.plan for h in p.unsafe_hazards()})
    assert "DELETES_DATA" in unsafe
    with pytest.raises(UnsafeMigrationError) as refused:
        m.apply()
    assert refused.value.hazards == unsafe
    assert tables(live) == before_tables  # nothing was applied

    m.apply(allow_hazards=unsafe, check_convergence=True)
    check_convergence(live, reduced, privileges=True)
    assert tables(live) == tables(reduced)
    assert snapshot(live, kept_columns) == before
