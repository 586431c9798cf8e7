"""Reflection speed: `Database.automap()`, `get_table()` and the model cache.

Builds 3 schemas x 100 tables with about 500 foreign keys (some tables point
at one table twice, some cross schemas) on a throwaway local cluster, then
times, in ``--repeat`` interleaved rounds, a fresh object every run:

- baseline: SQLAlchemy's own ``automap_base().prepare(autoload_with=engine,
  schema=s)`` for each schema (measured in this run);
- ``Database.automap(schemas)`` with no model cache (target <= 1.2x baseline);
- ``Database.get_table("s1.s1_t050")``: reflects that one table only;
- the model cache: cold ``automap(cache=...)`` (reflect, map, write the file)
  against warm (fingerprint query, checks, unpickle, map); and the part the
  cache replaces on its own: reflecting the catalog into a ``MetaData``
  against loading it from the cache (target >= 10x).

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

from sqlalchemy import Engine, MetaData
from sqlalchemy.ext.automap import automap_base

from macrostrat.database import Database
from macrostrat.database.mapper import DatabaseModelCache, catalog_fingerprint
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

        def our_automap() -> None:
            Database(engine).automap(schemas=SCHEMAS, use_cache=False)

        def one_table() -> None:
            Database(engine).get_table("s1.s1_t050")

        def cache_cold() -> None:
            cache_file.unlink(missing_ok=True)
            Database(engine).automap(schemas=SCHEMAS, cache=cache_file)

        def cache_warm() -> None:
            db = Database(engine)
            db.automap(schemas=SCHEMAS, cache=cache_file)
            assert db.mapper is not None
            assert db.mapper.loaded_from_cache

        def reflect_catalog() -> None:
            metadata = MetaData()
            with engine.connect() as conn:
                for schema in SCHEMAS:
                    metadata.reflect(conn, schema=schema)

        cache = DatabaseModelCache(cache_file)

        def load_catalog() -> None:
            def verify(header: dict) -> bool:
                with engine.connect() as conn:
                    live = catalog_fingerprint(conn, header["schemas"])
                return bool(live == header["fingerprint"])

            assert cache.load(lambda header: True, verify) is not None

        sqlalchemy_automap()  # warm up the server's catalog caches for everyone
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
            "Database.automap(schemas)": our_automap,
            "Database.get_table('s1.s1_t050')": one_table,
            "automap(cache=...) cold: reflect+map+write": cache_cold,
            "automap(cache=...) warm: check+load+map": cache_warm,
            "reflect the catalog (MetaData.reflect)": reflect_catalog,
            "load it from the cache (fingerprint+unpickle)": load_catalog,
        }
        times = measure_rounds(cases, n)
        rows = list(times.items())
        print_rows("automap (target <= 1.2x) and get_table of one table", rows[0:3])
        print_rows("model cache, end to end (mapping included)", rows[3:5])
        print_rows("what the cache replaces (target >= 10x faster)", rows[5:7])
        medians = {name: round(statistics.median(t), 4) for name, t in rows}
        bests = {name: round(min(t), 4) for name, t in rows}
        print(json.dumps({"bench": "automap", "best_s": bests, "median_s": medians}))


if __name__ == "__main__":
    main()
