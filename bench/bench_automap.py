"""Reflection speed: `Database.automap()`, `get_table()` and the model cache.

Builds 3 schemas x 100 tables with about 500 foreign keys (some tables point
at one table twice, some cross schemas) on a throwaway local cluster, then
times, in ``--repeat`` interleaved rounds, a fresh object every run:

- automap against the baseline, SQLAlchemy's own ``automap_base().prepare(
  autoload_with=engine, schema=s)`` for each schema (measured in this run;
  target <= 1.2x): eager ``automap(lazy=False)`` maps every table like the
  baseline; the default lazy ``automap()`` reflects and maps on first use;
  ``get_table("s1.s1_t050")`` reflects that one table only;
- everything mapped *and configured* (relationships set up, as the first
  query does): the baseline plus ``configure_mappers()``, our eager automap
  plus ``configure_mappers()``, and ``automap()`` + ``map_all()``. The
  relationship counts are printed: SQLAlchemy's default names collide when a
  table has two foreign keys to one table, so it keeps fewer of them;
- the model cache (target: warm >= 10x faster than cold): cold
  ``automap(cache=...)`` (reflect, write the file) against warm (fingerprint
  query, header checks, table directory), then warm plus the first query on
  one model (maps it and its neighbours) and warm plus ``map_all()``; and the
  same cold and warm with ``lazy=False`` for reference.

    uv run python bench/bench_automap.py [--repeat N]

Prints best and median times and their ratios to each table's first row
(best-of-N is the steadier figure on a shared machine), then one JSON line.
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import Engine, inspect, select
from sqlalchemy.ext.automap import automap_base
from sqlalchemy.orm import configure_mappers

from macrostrat.database import Database
from macrostrat.dinosaur.cluster import database_cluster

SCHEMAS = ["s0", "s1", "s2"]


def build_schema(tables: int = 100, foreign_keys: int = 500, seed: int = 7) -> str:
    """DDL for len(SCHEMAS) x ``tables`` tables and ``foreign_keys`` foreign keys."""
    rng = random.Random(seed)
    # Table names are unique across schemas, so that SQLAlchemy's default class
    # names do not collide and the baseline maps every table too.
    names = [(s, f"{s}_t{i:03d}") for s in SCHEMAS for i in range(tables)]
    targets: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for _ in range(foreign_keys):
        i = rng.randrange(1, len(names))
        targets.setdefault(names[i], []).append(names[rng.randrange(0, i)])
    ddl = [f"CREATE SCHEMA {s};" for s in SCHEMAS]
    for schema, table in names:
        cols = [
            "id serial PRIMARY KEY",
            "name text NOT NULL",
            "value double precision",
            "created timestamptz DEFAULT now()",
        ]
        for n, (rs, rt) in enumerate(targets.get((schema, table), [])):
            cols.append(f"ref{n}_id integer REFERENCES {rs}.{rt} (id)")
        ddl.append(f"CREATE TABLE {schema}.{table} ({', '.join(cols)});")
    return "\n".join(ddl)


def measure_rounds(
    cases: dict[str, Callable[[], object]], rounds: int
) -> dict[str, list[float]]:
    """Time every case once per round, interleaved, with a full GC before each.

    Interleaving spreads machine noise (other processes, the server sharing
    the CPU) evenly over the cases being compared.
    """
    times: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(rounds):
        for name, func in cases.items():
            gc.collect()
            start = time.perf_counter()
            func()
            times[name].append(time.perf_counter() - start)
    return times


def print_rows(title: str, rows: list[tuple[str, list[float]]]) -> None:
    """Best and median of each row, and both relative to the first row."""
    base_best, base_med = min(rows[0][1]), statistics.median(rows[0][1])
    print(f"\n{title}")
    print(
        f"{'case':<46} {'best s':>8} {'median s':>9} {'x base (best)':>14} {'(median)':>9}"
    )
    for name, times in rows:
        best, med = min(times), statistics.median(times)
        print(
            f"{name:<46} {best:>8.3f} {med:>9.3f} {best / base_best:>14.2f} "
            f"{med / base_med:>9.2f}"
        )


def count_relationships(engine: Engine) -> tuple[int, int]:
    """Relationships made by SQLAlchemy's automap and by ours, on the same schemas.

    SQLAlchemy's default names collide when a table has two foreign keys to
    one table, so it keeps fewer relationships (and configures them faster).
    """
    base = automap_base()
    for schema in SCHEMAS:
        base.prepare(autoload_with=engine, schema=schema)
    configure_mappers()
    theirs = sum(len(inspect(cls).relationships) for cls in base.classes)
    db = Database(engine)
    db.automap(schemas=SCHEMAS, use_cache=False)
    ours = sum(len(inspect(cls).relationships) for cls in db.model)
    return theirs, ours


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="rounds (default 5)")
    args = parser.parse_args()
    n = args.repeat

    with (
        database_cluster(backend="local", optimize_for_testing=True) as cluster,
        tempfile.TemporaryDirectory() as tmp,
    ):
        engine: Engine = cluster.engine
        raw = engine.raw_connection()
        try:
            raw.driver_connection.execute(build_schema())  # type: ignore[union-attr]
            raw.commit()
        finally:
            raw.close()
        cache_file = Path(tmp) / "cache" / "models.pickle"

        def sqlalchemy_automap() -> None:
            base = automap_base()
            for schema in SCHEMAS:
                base.prepare(autoload_with=engine, schema=schema)

        def sqlalchemy_configured() -> None:
            sqlalchemy_automap()
            configure_mappers()

        def eager_automap() -> None:
            Database(engine).automap(schemas=SCHEMAS, use_cache=False, lazy=False)

        def lazy_automap() -> None:
            Database(engine).automap(schemas=SCHEMAS, use_cache=False)

        def eager_configured() -> None:
            eager_automap()
            configure_mappers()

        def lazy_map_all() -> None:
            db = Database(engine)
            db.automap(schemas=SCHEMAS, use_cache=False)
            assert db.mapper is not None
            db.mapper.map_all()

        def one_table() -> None:
            Database(engine).get_table("s1.s1_t050")

        def cache_cold(lazy: bool = True) -> None:
            cache_file.unlink(missing_ok=True)
            Database(engine).automap(schemas=SCHEMAS, cache=cache_file, lazy=lazy)

        def cache_warm(lazy: bool = True) -> Database:
            db = Database(engine)
            db.automap(schemas=SCHEMAS, cache=cache_file, lazy=lazy)
            assert db.mapper is not None
            assert db.mapper.loaded_from_cache
            return db

        def warm_first_query() -> None:
            db = cache_warm()
            model = db.model.s1_s1_t050
            with engine.connect() as conn:
                conn.execute(select(model).limit(1)).all()

        def warm_map_all() -> None:
            db = cache_warm()
            assert db.mapper is not None
            db.mapper.map_all()

        sqlalchemy_automap()  # warm up the server's catalog caches for everyone
        sa_rels, our_rels = count_relationships(engine)
        inspector = Database(engine).inspector
        tables = sum(len(inspector.get_table_names(schema=s)) for s in SCHEMAS)
        fks = sum(
            len(found)
            for s in SCHEMAS
            for found in inspector.get_multi_foreign_keys(schema=s).values()
        )
        print(f"{len(SCHEMAS)} schemas, {tables} tables, {fks} foreign keys")

        cases = {
            "SQLAlchemy automap, prepare() per schema": sqlalchemy_automap,
            "Database.automap(schemas, lazy=False)": eager_automap,
            "Database.automap(schemas) (lazy)": lazy_automap,
            "Database.get_table('s1.s1_t050')": one_table,
            "SQLAlchemy automap + configure_mappers()": sqlalchemy_configured,
            "automap(lazy=False) + configure_mappers()": eager_configured,
            "Database.automap(schemas) + map_all()": lazy_map_all,
            "automap(cache=...) cold: reflect+write": cache_cold,
            "automap(cache=...) warm: check+load": cache_warm,
            "warm + first query on one model": warm_first_query,
            "warm + map_all()": warm_map_all,
            "lazy=False cold: reflect+map+write": lambda: cache_cold(lazy=False),
            "lazy=False warm: check+load+map": lambda: cache_warm(lazy=False),
        }
        times = measure_rounds(cases, n)
        rows = list(times.items())
        print_rows("automap (target <= 1.2x) and get_table of one table", rows[0:4])
        print_rows(
            "every model mapped and configured (relationships: SQLAlchemy "
            f"{sa_rels}, ours {our_rels})",
            rows[4:7],
        )
        print_rows("model cache (target: warm >= 10x faster than cold)", rows[7:11])
        print_rows("model cache with lazy=False (for reference)", rows[11:13])
        medians = {name: round(statistics.median(t), 4) for name, t in rows}
        bests = {name: round(min(t), 4) for name, t in rows}
        print(json.dumps({"bench": "automap", "best_s": bests, "median_s": medians}))


if __name__ == "__main__":
    main()
